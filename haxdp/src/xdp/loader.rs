//! Loads, attaches and pins the XDP advert tracker; reads its maps.
//!
//! The object is built by `cargo xtask build-ebpf` and embedded at compile time
//! (`build.rs` refuses a missing or stale one). Maps are pinned under
//! `/sys/fs/bpf/haxdp/<inode of the network namespace>/`: bpffs is shared by all
//! network namespaces of a host, so two daemons in two namespaces must not share
//! a directory, and `haxdp maps` finds the pins of the namespace it runs in.

use std::collections::HashMap as StdHashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpError, XdpMode};
use aya::Ebpf;
use haxdp_common::{
    by_vrid_index, drop_reason_name, fresh_peer, pin_dir, stat_name, AdvertEvent, DropReason,
    InstanceConf, InstanceKey, InstanceRoom, PeerKey, PeerState, VridInstances, VridWay,
    ALLOWED_PER_INSTANCE, BY_VRID_MAX_ENTRIES, DROP_REASON_COUNT, INSTANCE_F_ALLOWLIST,
    MAPS_FRESH_AT_HANDOVER, MAP_ALLOWED, MAP_BY_VRID, MAP_DROPS, MAP_EVENTS, MAP_INSTANCES,
    MAP_PEERS, MAP_ROOM, MAP_SEEN, MAP_STATS, PEERS_PROTECTED_PER_INSTANCE, PEER_F_PROTECTED,
    PINNED_MAPS, PROG_XDP, STAT_COUNT,
};
use tokio::io::unix::AsyncFd;

use super::seen::{SeenEntries, SeenMap};
use crate::clock::monotonic_ns;

/// The XDP object, built by `cargo xtask build-ebpf`.
pub fn ebpf_object() -> &'static [u8] {
    static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("HAXDP_EBPF_OBJECT"));
    OBJECT
}

/// `bpf_map_update_elem` flag: create only (include/uapi/linux/bpf.h).
const BPF_NOEXIST: u64 = 1;

/// The magic number `statfs(2)` reports for bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const BPFFS_MOUNT: &str = "/sys/fs/bpf";

#[derive(Debug, thiserror::Error)]
pub enum XdpLoaderError {
    #[error("cannot read the network namespace of this thread (/proc/thread-self/ns/net): {0}")]
    Netns(#[source] io::Error),
    #[error("bpffs is not mounted at {BPFFS_MOUNT} and mounting it failed (run as root): {0}")]
    MountBpffs(#[source] io::Error),
    #[error("cannot prepare the pin directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the kernel refused the XDP object (needs root, kernel 5.8+ for ring buffers): {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error(
        "{0} is missing from the embedded XDP object; rebuild it with `cargo xtask build-ebpf`"
    )]
    Missing(&'static str),
    #[error("the kernel refused the XDP program: {0}")]
    Program(#[source] Box<ProgramError>),
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("cannot pin BPF map {name} at {path}: {source}")]
    Pin {
        name: &'static str,
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("interface {0} does not exist in this network namespace")]
    UnknownInterface(String),
    #[error(
        "interface {ifname} already has an XDP program; remove it (`ip link set dev {ifname} xdp off`) \
         or run without the XDP fast path"
    )]
    AlreadyAttached { ifname: String },
    #[error(
        "XDP cannot be attached to {ifname}: native mode: {native}; generic (skb) mode: {skb}"
    )]
    AttachFailed {
        ifname: String,
        native: Box<ProgramError>,
        skb: Box<ProgramError>,
    },
    #[error("XDP is not attached to {0}")]
    NotAttached(String),
    #[error("the advert ring buffer needs a tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("VRID {vrid} on ifindex {ifindex} is not watched by the XDP program")]
    NotWatched { ifindex: u32, vrid: u8 },
    #[error(
        "VRID {vrid} on ifindex {ifindex} already protects {PEERS_PROTECTED_PER_INSTANCE} \
         peers, the most it may; {addr} is not protected"
    )]
    TooManyProtected {
        ifindex: u32,
        vrid: u8,
        addr: IpAddr,
    },
    #[error(
        "an allowlist of {count} sources is too long for the XDP program (at most \
         {ALLOWED_PER_INSTANCE} per instance)"
    )]
    AllowlistTooLong { count: usize },
    #[error("{addr} is not of the instance's address family")]
    WrongFamily { addr: IpAddr },
    #[error(
        "BPF map {name} changed layout in this build (running: {running}; this build: {new}); \
         it cannot take the running daemon's maps over: the running daemon keeps the VIPs, \
         and `systemctl restart haxdp` (a failover) starts this build"
    )]
    LayoutChanged {
        name: &'static str,
        running: String,
        new: String,
    },
    #[error("XDP link of {ifname}: {what}")]
    Link { ifname: String, what: String },
}

fn program_err(e: ProgramError) -> XdpLoaderError {
    XdpLoaderError::Program(Box::new(e))
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> XdpLoaderError {
    move |source| XdpLoaderError::Map { name, source }
}

/// Which XDP mode is live on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver, before an skb exists.
    Native,
    /// Generic XDP in the stack: every driver has it, slower.
    Skb,
}

/// The loaded tracker: programs, maps and their pins.
pub struct XdpLoader {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    links: StdHashMap<String, aya::programs::xdp::XdpLinkId>,
    /// Links pinned for a successor process (`pin_links`), by interface.
    pinned_links: StdHashMap<String, aya::programs::links::PinnedLink>,
    /// Handed over: the successor uses the pins, they stay when this process exits.
    keep_pins: bool,
    /// PEERS' descriptor, for the lookups of every backup refresh (`peer`): looking the
    /// map up by name in aya's table hashes the name each time.
    peers_fd: std::os::fd::RawFd,
    /// SEEN, mapped into this process (`None` if mmap(2) failed: every read is then
    /// a PEERS lookup).
    seen: Option<SeenMap>,
    /// Which SEEN entries the PEERS records name.
    seen_entries: SeenEntries,
}

impl XdpLoader {
    /// Loads the embedded object and pins its maps for this network namespace,
    /// replacing pins a crashed daemon left behind.
    pub fn load() -> Result<XdpLoader, XdpLoaderError> {
        let netns = haxdp_common::current_netns_inode().map_err(XdpLoaderError::Netns)?;
        let dir = pin_dir(netns);
        Self::load_pinned_at(dir)
    }

    /// As [`XdpLoader::load`], with the records of the crashed predecessor's pins already
    /// read ([`crashed_peers`]): the daemon reads them before it starts the load, for its
    /// resume decision, and they are not read again here.
    pub fn load_after_crash(
        previous: &[(PeerKey, PeerState)],
    ) -> Result<XdpLoader, XdpLoaderError> {
        let netns = haxdp_common::current_netns_inode().map_err(XdpLoaderError::Netns)?;
        Self::load_at(pin_dir(netns), previous)
    }

    /// As [`XdpLoader::load`], pinning under `dir` (tests use a private directory).
    pub fn load_pinned_at(dir: PathBuf) -> Result<XdpLoader, XdpLoaderError> {
        let previous = if dir.exists() {
            previous_peers_at(&dir)
        } else {
            Vec::new()
        };
        Self::load_at(dir, &previous)
    }

    /// Loads under `dir`; `previous`: the PEERS records of the pins there, if a daemon did
    /// not exit cleanly.
    fn load_at(
        dir: PathBuf,
        previous: &[(PeerKey, PeerState)],
    ) -> Result<XdpLoader, XdpLoaderError> {
        ensure_bpffs()?;
        // Pins of a daemon that did not exit cleanly: its maps are not reused (a newer
        // build may have another layout), but the records of the routers it protected
        // are carried over.
        let carried: Vec<(PeerKey, PeerState)> = previous
            .iter()
            .filter(|(_, st)| st.flags & PEER_F_PROTECTED != 0)
            .copied()
            .collect();
        if dir.exists() {
            tracing::warn!(
                dir = %dir.display(),
                carried = carried.len(),
                "removing stale haxdp BPF pins, keeping the protected PEERS records"
            );
            std::fs::remove_dir_all(&dir).map_err(|source| XdpLoaderError::PinDir {
                path: dir.clone(),
                source,
            })?;
        }
        std::fs::create_dir_all(&dir).map_err(|source| XdpLoaderError::PinDir {
            path: dir.clone(),
            source,
        })?;
        // `EbpfLoader::new()`, not `Ebpf::load`: aya 0.14's `Ebpf::load` reads and parses
        // the kernel's BTF (/sys/kernel/btf/vmlinux, ~6 MB in 4 KiB reads) a second time
        // on top of the one `new()` reads, and every start waits for both.
        let ebpf = aya::EbpfLoader::new()
            .load(ebpf_object())
            .map_err(|e| XdpLoaderError::Load(Box::new(e)))?;
        for name in PINNED_MAPS {
            let map = ebpf.map(name).ok_or(XdpLoaderError::Missing(name))?;
            let path = dir.join(name);
            map.pin(&path)
                .map_err(|source| XdpLoaderError::Pin { name, path, source })?;
        }
        let mut fast = Self::verified(ebpf, dir)?;
        fast.restore_peers(&carried)?;
        Ok(fast)
    }

    /// The tracker of `ebpf` (its maps created or opened), its logs forwarded and its
    /// program through the verifier.
    fn verified(mut ebpf: Ebpf, pin_dir: PathBuf) -> Result<XdpLoader, XdpLoaderError> {
        forward_ebpf_logs(&mut ebpf);
        let prog: &mut Xdp = ebpf
            .program_mut(PROG_XDP)
            .ok_or(XdpLoaderError::Missing(PROG_XDP))?
            .try_into()
            .map_err(program_err)?;
        prog.load().map_err(program_err)?;
        let peers_fd = map_fd(&ebpf, MAP_PEERS)?;
        let seen = match SeenMap::map(map_fd(&ebpf, MAP_SEEN)?) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "cannot mmap the SEEN map; backups read PEERS instead");
                None
            }
        };
        let mut fast = XdpLoader {
            ebpf,
            pin_dir,
            links: StdHashMap::new(),
            pinned_links: StdHashMap::new(),
            keep_pins: false,
            peers_fd,
            seen,
            seen_entries: SeenEntries::default(),
        };
        // Handed-over maps: the records keep the entries the predecessor gave them.
        let used: Vec<u16> = fast
            .peers()?
            .iter()
            .filter(|(_, st)| st.seen != 0)
            .map(|(_, st)| st.seen - 1)
            .collect();
        fast.seen_entries = SeenEntries::with_used(used, monotonic_ns());
        Ok(fast)
    }

    /// For a planned restart (`haxdp upgrade`): loads the embedded program on the maps a
    /// running daemon pinned at `dir`, so that the kernel's view (PEERS, ROOM, the event
    /// ring and its read position) goes on unbroken. Each pinned map's type, key and
    /// value size and size are compared with this build's definition first: a build
    /// with another layout is refused ([`XdpLoaderError::LayoutChanged`]) rather than run
    /// on maps it would misread.
    pub fn load_handover(dir: PathBuf) -> Result<XdpLoader, XdpLoaderError> {
        let obj = aya_obj::Object::parse(ebpf_object())
            .map_err(|e| XdpLoaderError::Load(Box::new(aya::EbpfError::ParseError(e))))?;
        let mut loader = aya::EbpfLoader::new();
        let paths: Vec<(&'static str, PathBuf)> =
            PINNED_MAPS.iter().map(|n| (*n, dir.join(n))).collect();
        let mut fresh = Vec::new();
        for (name, path) in &paths {
            if MAPS_FRESH_AT_HANDOVER.contains(name) && !path.exists() {
                // An older build runs and has no such map: this one starts it empty.
                fresh.push((*name, path.clone()));
                continue;
            }
            let def = obj.maps.get(*name).ok_or(XdpLoaderError::Missing(name))?;
            let info = aya::maps::MapInfo::from_pin(path).map_err(map_err(name))?;
            let running = (
                info.map_type().map(|t| t as u32).unwrap_or(u32::MAX),
                info.key_size(),
                info.value_size(),
                info.max_entries(),
            );
            let new = (
                def.map_type(),
                def.key_size(),
                def.value_size(),
                def.max_entries(),
            );
            // A ring buffer's "max entries" is its size in bytes; the kernel reports
            // what it was created with, as the object says.
            if running != new {
                let show = |t: (u32, u32, u32, u32)| {
                    format!("type {} key {} B value {} B entries {}", t.0, t.1, t.2, t.3)
                };
                return Err(XdpLoaderError::LayoutChanged {
                    name,
                    running: show(running),
                    new: show(new),
                });
            }
            loader.map_pin_path(name, path.as_path());
        }
        let ebpf = loader
            .load(ebpf_object())
            .map_err(|e| XdpLoaderError::Load(Box::new(e)))?;
        let fresh_by_vrid = fresh.iter().any(|(n, _)| *n == MAP_BY_VRID);
        for (name, path) in fresh {
            let map = ebpf.map(name).ok_or(XdpLoaderError::Missing(name))?;
            map.pin(&path)
                .map_err(|source| XdpLoaderError::Pin { name, path, source })?;
        }
        let mut fast = Self::verified(ebpf, dir)?;
        if fresh_by_vrid {
            fast.fill_by_vrid()?;
        }
        Ok(fast)
    }

    fn link_pin(&self, ifname: &str) -> PathBuf {
        self.pin_dir.join(format!("link-{ifname}"))
    }

    /// Pins the XDP link of every attached interface (`<pin dir>/link-IFNAME`), for a
    /// successor that replaces the program on it ([`XdpLoader::adopt_link`]): the link,
    /// and the program on the NIC, outlive this process. Returns the interfaces.
    pub fn pin_links(&mut self) -> Result<Vec<String>, XdpLoaderError> {
        let names: Vec<String> = self.links.keys().cloned().collect();
        for ifname in &names {
            let Some(id) = self.links.remove(ifname) else {
                continue;
            };
            let path = self.link_pin(ifname);
            let link_err = |what: String| XdpLoaderError::Link {
                ifname: ifname.clone(),
                what,
            };
            let prog = self.xdp()?;
            let link = prog.take_link(id).map_err(program_err)?;
            let fd = aya::programs::links::FdLink::try_from(link)
                .map_err(|e| link_err(format!("not a bpf_link ({e}); attached through netlink")))?;
            let _ = std::fs::remove_file(&path);
            let pinned = fd
                .pin(&path)
                .map_err(|e| link_err(format!("cannot pin at {}: {e}", path.display())))?;
            self.pinned_links.insert(ifname.clone(), pinned);
        }
        Ok(names)
    }

    /// The successor's side of [`XdpLoader::pin_links`]: replaces the program on the
    /// pinned link of `ifname` with ours, atomically (`BPF_LINK_UPDATE`: there is no
    /// moment without a program on the NIC). The pin stays until
    /// [`XdpLoader::release_link_pins`], so that the predecessor can take the link back
    /// if this process dies before the hand-over completes.
    pub fn adopt_link(&mut self, ifname: &str) -> Result<(), XdpLoaderError> {
        let path = self.link_pin(ifname);
        let link_err = |what: String| XdpLoaderError::Link {
            ifname: ifname.to_string(),
            what,
        };
        let pinned = aya::programs::links::PinnedLink::from_pin(&path)
            .map_err(|e| link_err(format!("no pinned link at {}: {e}", path.display())))?;
        let link =
            aya::programs::xdp::XdpLink::try_from(aya::programs::links::FdLink::from(pinned))
                .map_err(|e| link_err(format!("the pin is not an XDP link: {e}")))?;
        let prog = self.xdp()?;
        let id = prog.attach_to_link(link).map_err(program_err)?;
        self.links.insert(ifname.to_string(), id);
        Ok(())
    }

    /// Removes the link pins once the hand-over is complete: the links are ours (and go
    /// when this process does, as after a fresh start).
    pub fn release_link_pins(&mut self) {
        if let Ok(dir) = std::fs::read_dir(&self.pin_dir) {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with("link-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// The predecessor's rollback when its successor died before completing: takes each
    /// pinned link back and puts this process's program on it again.
    pub fn take_back_links(&mut self) -> Vec<(String, XdpLoaderError)> {
        let mut failed = Vec::new();
        let names: Vec<String> = self.pinned_links.keys().cloned().collect();
        for ifname in names {
            self.pinned_links.remove(&ifname);
            if let Err(e) = self.adopt_link(&ifname) {
                failed.push((ifname.clone(), e));
            }
            let _ = std::fs::remove_file(self.link_pin(&ifname));
        }
        failed
    }

    /// Handed over: the pins (maps and links) are the successor's now; dropping this
    /// process's handles must not remove them.
    pub fn keep_pins(&mut self) {
        self.keep_pins = true;
    }

    /// The records of protected sources (configured peers, followed masters): what a
    /// restarted daemon needs to find room for its master at once, before spoofed
    /// sources can take every unknown slot of the instance.
    pub fn protected_peers(&self) -> Result<Vec<(PeerKey, PeerState)>, XdpLoaderError> {
        Ok(self
            .peers()?
            .into_iter()
            .filter(|(_, st)| st.flags & PEER_F_PROTECTED != 0)
            .collect())
    }

    /// Puts records carried over from a previous daemon back into PEERS (existing
    /// records win). Protected records take no unknown room, so ROOM stays right.
    pub fn restore_peers(
        &mut self,
        recs: &[(PeerKey, PeerState)],
    ) -> Result<usize, XdpLoaderError> {
        let mut map: HashMap<&mut MapData, PeerKey, PeerState> = self.map_mut(MAP_PEERS)?;
        let mut n = 0;
        for (k, st) in recs
            .iter()
            .filter(|(_, st)| st.flags & PEER_F_PROTECTED != 0)
        {
            // A protected record holds no slot of the (new) ROOM, nor an entry of the
            // (new) SEEN: it gets one when it is protected again (`protect_peer`).
            let st = PeerState {
                slot: 0,
                seen: 0,
                ..*st
            };
            // BPF_NOEXIST (1): never overwrite what the program recorded since.
            match map.insert(k, st, 1) {
                Ok(()) => n += 1,
                Err(e) => tracing::debug!(error = %e, "PEERS record not carried over"),
            }
        }
        Ok(n)
    }

    /// The XDP program.
    fn xdp(&mut self) -> Result<&mut Xdp, XdpLoaderError> {
        self.ebpf
            .program_mut(PROG_XDP)
            .ok_or(XdpLoaderError::Missing(PROG_XDP))?
            .try_into()
            .map_err(program_err)
    }

    /// Where the maps are pinned.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Attaches to `ifname`: native mode, falling back to generic (skb) mode.
    pub fn attach(&mut self, ifname: &str) -> Result<XdpAttachMode, XdpLoaderError> {
        let prog = self.xdp()?;
        let native = match prog.attach(ifname, XdpMode::Driver) {
            Ok(link) => {
                self.links.insert(ifname.to_string(), link);
                return Ok(XdpAttachMode::Native);
            }
            Err(e) => e,
        };
        classify_attach_error(ifname, &native)?;
        match prog.attach(ifname, XdpMode::Skb) {
            Ok(link) => {
                tracing::warn!(ifname, error = %native, "native XDP refused, using generic (skb) XDP");
                self.links.insert(ifname.to_string(), link);
                Ok(XdpAttachMode::Skb)
            }
            Err(skb) => {
                classify_attach_error(ifname, &skb)?;
                Err(XdpLoaderError::AttachFailed {
                    ifname: ifname.to_string(),
                    native: Box::new(native),
                    skb: Box::new(skb),
                })
            }
        }
    }

    /// Detaches from `ifname`.
    /// The kernel's id of the loaded XDP program: what an interface's IFLA_XDP_PROG_ID
    /// says when this program is the one attached.
    pub fn program_id(&self) -> Option<u32> {
        let prog: &Xdp = self.ebpf.program(PROG_XDP)?.try_into().ok()?;
        prog.info().ok().map(|i| i.id())
    }

    /// Forgets the attachment to `ifname` without detaching: the interface is gone (or
    /// someone detached the program) and the link went with it.
    pub fn forget_attachment(&mut self, ifname: &str) {
        if let Some(link) = self.links.remove(ifname) {
            if let Ok(prog) = self
                .ebpf
                .program_mut(PROG_XDP)
                .ok_or(XdpLoaderError::Missing(PROG_XDP))
                .and_then(|p| <&mut Xdp>::try_from(p).map_err(program_err))
            {
                // The link is dead already; detaching only drops our handle on it.
                let _ = prog.detach(link);
            }
        }
    }

    pub fn detach(&mut self, ifname: &str) -> Result<(), XdpLoaderError> {
        let link = self
            .links
            .remove(ifname)
            .ok_or_else(|| XdpLoaderError::NotAttached(ifname.to_string()))?;
        let prog = self.xdp()?;
        prog.detach(link).map_err(program_err)
    }

    /// Starts accepting adverts for an instance (until then they are dropped as
    /// `vrid_not_watched`), or updates what it accepts. `family` is `FAMILY_V4` or
    /// `FAMILY_V6`; of `conf` only the versions and the VRRPv2 authentication are used.
    ///
    /// Watching an instance that is already watched keeps its peers, their room, its
    /// allowlist and raises its report epoch, so every live source is reported once
    /// more with its next advert (`CHANGE_REQUESTED`): a reloaded state machine hears
    /// the routers that were already there, and still has their kernel timestamps.
    pub fn watch(
        &mut self,
        ifindex: u32,
        vrid: u8,
        family: u8,
        conf: InstanceConf,
    ) -> Result<(), XdpLoaderError> {
        let key = instance_key(ifindex, vrid, family);
        // The room first: the XDP program refuses new peers of an instance without one.
        let mut room: HashMap<&mut MapData, InstanceKey, InstanceRoom> = self.map_mut(MAP_ROOM)?;
        match room.insert(key, InstanceRoom::default(), BPF_NOEXIST) {
            Ok(()) => {}
            Err(e) if errno_of(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(map_err(MAP_ROOM)(e)),
        }
        let old = self.instance_conf(&key)?;
        let mut new = InstanceConf {
            versions_mask: conf.versions_mask,
            auth_type: conf.auth_type,
            auth_pass: conf.auth_pass,
            ..InstanceConf::default()
        };
        match old {
            Some(old) => {
                new.flags = old.flags;
                new.peers_released = old.peers_released;
                // Never back to an old epoch: that could skip a source's report.
                new.report_epoch = old.report_epoch.wrapping_add(1).max(1);
            }
            None => new.report_epoch = 1,
        }
        self.put_instance(key, new)
    }

    /// Asks the XDP program to report every live source of the instance once, with
    /// its next advert (`CHANGE_REQUESTED`).
    pub fn request_reports(
        &mut self,
        ifindex: u32,
        vrid: u8,
        family: u8,
    ) -> Result<(), XdpLoaderError> {
        let key = instance_key(ifindex, vrid, family);
        let mut conf = self
            .instance_conf(&key)?
            .ok_or(XdpLoaderError::NotWatched { ifindex, vrid })?;
        conf.report_epoch = conf.report_epoch.wrapping_add(1).max(1);
        self.put_instance(key, conf)
    }

    /// The instance's INSTANCES value, if it is watched.
    pub fn instance_conf(&self, key: &InstanceKey) -> Result<Option<InstanceConf>, XdpLoaderError> {
        self.lookup(MAP_INSTANCES, key)
    }

    fn put_instance(&mut self, key: InstanceKey, conf: InstanceConf) -> Result<(), XdpLoaderError> {
        {
            let mut map: HashMap<&mut MapData, InstanceKey, InstanceConf> =
                self.map_mut(MAP_INSTANCES)?;
            map.insert(key, conf, 0).map_err(map_err(MAP_INSTANCES))?;
        }
        self.put_way(key, Some(conf))
    }

    /// Writes the instance's way of its BY_VRID entry, which the XDP program reads
    /// instead of INSTANCES (`None`: frees it, after INSTANCES lost the instance).
    fn put_way(
        &mut self,
        key: InstanceKey,
        conf: Option<InstanceConf>,
    ) -> Result<(), XdpLoaderError> {
        let index = by_vrid_index(key.vrid, key.family);
        let mut set = {
            let arr: Array<&MapData, VridInstances> = self.map(MAP_BY_VRID)?;
            arr.get(&index, 0).map_err(map_err(MAP_BY_VRID))?
        };
        let at = set.ways.iter().position(|w| w.ifindex == key.ifindex);
        match (conf, at) {
            (Some(conf), Some(at)) => set.ways[at].conf = conf,
            (Some(conf), None) => match set.ways.iter().position(|w| w.ifindex == 0) {
                Some(free) => {
                    set.ways[free] = VridWay {
                        ifindex: key.ifindex,
                        _pad: 0,
                        conf,
                    }
                }
                // More interfaces than ways: the program looks this one up in INSTANCES.
                None => set.overflow = 1,
            },
            (None, Some(at)) => set.ways[at] = VridWay::default(),
            (None, None) => {}
        }
        if conf.is_none() && set.overflow != 0 {
            // A way may be free for an instance that overflowed: lay the entry out again.
            set = self
                .by_vrid_from_instances()?
                .remove(&index)
                .unwrap_or_default();
        }
        let mut arr: Array<&mut MapData, VridInstances> = self.map_mut(MAP_BY_VRID)?;
        arr.set(index, set, 0).map_err(map_err(MAP_BY_VRID))
    }

    /// Every BY_VRID entry as INSTANCES says it should be, by index: one pass over
    /// INSTANCES, the first [`haxdp_common::BY_VRID_WAYS`] instances of a (VRID, family) in ways, the
    /// rest overflowed.
    fn by_vrid_from_instances(&self) -> Result<StdHashMap<u32, VridInstances>, XdpLoaderError> {
        let map: HashMap<&MapData, InstanceKey, InstanceConf> = self.map(MAP_INSTANCES)?;
        let mut sets: StdHashMap<u32, VridInstances> = StdHashMap::new();
        for rec in map.iter() {
            let (k, conf) = rec.map_err(map_err(MAP_INSTANCES))?;
            let set = sets.entry(by_vrid_index(k.vrid, k.family)).or_default();
            match set.ways.iter_mut().find(|w| w.ifindex == 0) {
                Some(way) => {
                    *way = VridWay {
                        ifindex: k.ifindex,
                        _pad: 0,
                        conf,
                    }
                }
                None => set.overflow = 1,
            }
        }
        Ok(sets)
    }

    /// Fills a BY_VRID created afresh at a hand-over from the running daemon's
    /// INSTANCES (an older build had no BY_VRID), before this program is attached.
    fn fill_by_vrid(&mut self) -> Result<(), XdpLoaderError> {
        let sets = self.by_vrid_from_instances()?;
        let mut arr: Array<&mut MapData, VridInstances> = self.map_mut(MAP_BY_VRID)?;
        for (index, set) in sets.into_iter().filter(|(i, _)| *i < BY_VRID_MAX_ENTRIES) {
            arr.set(index, set, 0).map_err(map_err(MAP_BY_VRID))?;
        }
        Ok(())
    }

    /// The instance's admission counters (see `PEERS_MAX_ENTRIES`).
    pub fn room(&self, key: &InstanceKey) -> Result<Option<InstanceRoom>, XdpLoaderError> {
        self.lookup(MAP_ROOM, key)
    }

    /// Marks a source as known to its instance: it always has room in PEERS, does
    /// not count against the unknown-source room and is never pruned. Creates its
    /// record (with no advert yet, `count` 0) if it has none. Returns the record's
    /// SEEN entry ([`XdpLoader::seen_entry`]).
    pub fn protect_peer(&mut self, key: &PeerKey) -> Result<Option<u16>, XdpLoaderError> {
        self.protect_record(key)?;
        self.seen_entry(key)
    }

    /// The SEEN entry of `key`'s protected record, into which the XDP program copies
    /// the record's newest advert time; handed out (zeroed first) if it has none.
    /// `None` when the record is not protected, SEEN is not mapped or every entry is
    /// taken: its readers then look PEERS up.
    pub fn seen_entry(&mut self, key: &PeerKey) -> Result<Option<u16>, XdpLoaderError> {
        if self.seen.is_none() {
            return Ok(None);
        }
        let Some(mut st) = self.peer(key)? else {
            return Ok(None);
        };
        if !st.is_protected() {
            return Ok(None);
        }
        if st.seen != 0 {
            return Ok(Some(st.seen - 1));
        }
        let now = monotonic_ns();
        let Some(index) = self.seen_entries.take(now) else {
            return Ok(None);
        };
        {
            let mut seen: Array<&mut MapData, u64> = self.map_mut(MAP_SEEN)?;
            seen.set(u32::from(index), 0, 0)
                .map_err(map_err(MAP_SEEN))?;
        }
        // A whole-value update, as in `flag_protected`: an advert the XDP program
        // records between the read and this write loses its timestamp until the next.
        // BPF_EXIST (2): a record removed meanwhile (unwatch) is not created again.
        st.seen = index + 1;
        let mut peers: HashMap<&mut MapData, PeerKey, PeerState> = self.map_mut(MAP_PEERS)?;
        match peers.insert(*key, st, 2) {
            Ok(()) => Ok(Some(index)),
            Err(e) => {
                self.seen_entries.give_back(index, now);
                if is_enoent(&e) {
                    Ok(None)
                } else {
                    Err(map_err(MAP_PEERS)(e))
                }
            }
        }
    }

    /// The time SEEN entry `index` holds (CLOCK_MONOTONIC ns, 0 if none yet): a plain
    /// memory read. `None` if SEEN is not mapped.
    pub fn seen_ns(&self, index: u16) -> Option<u64> {
        self.seen.as_ref()?.get(index)
    }

    fn protect_record(&mut self, key: &PeerKey) -> Result<(), XdpLoaderError> {
        let ikey = key.instance();
        let conf = self
            .instance_conf(&ikey)?
            .ok_or(XdpLoaderError::NotWatched {
                ifindex: key.ifindex,
                vrid: key.vrid,
            })?;
        let existing = self.peer(key)?;
        if existing.is_some_and(|st| st.is_protected()) {
            return Ok(());
        }
        let protected = self
            .peers()?
            .iter()
            .filter(|(k, st)| k.instance() == ikey && st.is_protected())
            .count();
        if protected >= PEERS_PROTECTED_PER_INSTANCE as usize {
            return Err(XdpLoaderError::TooManyProtected {
                ifindex: key.ifindex,
                vrid: key.vrid,
                addr: key.ip(),
            });
        }
        match existing {
            Some(st) => self.flag_protected(key, st, conf, 3),
            None => {
                let mut peers: HashMap<&mut MapData, PeerKey, PeerState> =
                    self.map_mut(MAP_PEERS)?;
                match peers.insert(*key, fresh_peer(PEER_F_PROTECTED), BPF_NOEXIST) {
                    Ok(()) => Ok(()),
                    // The XDP program created it meanwhile: flag that record.
                    Err(e) if errno_of(&e) == Some(libc::EEXIST) => self.protect_record(key),
                    Err(e) => Err(map_err(MAP_PEERS)(e)),
                }
            }
        }
    }

    /// Flags the existing unprotected record `st` of `key` as protected.
    fn flag_protected(
        &mut self,
        key: &PeerKey,
        mut st: PeerState,
        mut conf: InstanceConf,
        tries: u32,
    ) -> Result<(), XdpLoaderError> {
        let ikey = key.instance();
        // A whole-value update: an advert the XDP program records between the read
        // and this write loses its timestamp, and the next one brings it back. The
        // record leaves its slot in ROOM, which then reads as stale (free).
        st.flags |= PEER_F_PROTECTED;
        st.slot = 0;
        {
            let mut peers: HashMap<&mut MapData, PeerKey, PeerState> = self.map_mut(MAP_PEERS)?;
            peers.insert(*key, st, 0).map_err(map_err(MAP_PEERS))?;
        }
        // It held unknown-source room, which it gives back.
        conf.peers_released = conf.peers_released.wrapping_add(1);
        self.put_instance(ikey, conf)?;
        // The XDP program may have judged the record unprotected just before the
        // write and removed it for a higher-priority newcomer (a swap that kept the
        // room as full): then the room given back was not held, so take it back, and
        // protect the source again (a fresh record, or the one it got since).
        match self.peer(key)? {
            Some(now) if now.is_protected() => Ok(()),
            _ => {
                conf.peers_released = conf.peers_released.wrapping_sub(1);
                self.put_instance(ikey, conf)?;
                match self.peer(key)? {
                    Some(again) if tries > 0 => self.flag_protected(key, again, conf, tries - 1),
                    Some(_) => Err(XdpLoaderError::Map {
                        name: MAP_PEERS,
                        source: MapError::KeyNotFound,
                    }),
                    None => self.protect_record(key),
                }
            }
        }
    }

    /// Takes the protection back: the source's record stays and counts against the
    /// unknown-source room again (which may then be over its limit until pruning).
    pub fn unprotect_peer(&mut self, key: &PeerKey) -> Result<(), XdpLoaderError> {
        let Some(mut st) = self.peer(key)? else {
            return Ok(());
        };
        if !st.is_protected() {
            return Ok(());
        }
        let ikey = key.instance();
        let Some(mut conf) = self.instance_conf(&ikey)? else {
            return Ok(());
        };
        // No slot yet: the XDP program gives it one with its next advert.
        st.flags &= !PEER_F_PROTECTED;
        st.slot = 0;
        if st.seen != 0 {
            self.seen_entries.give_back(st.seen - 1, monotonic_ns());
            st.seen = 0;
        }
        let mut peers: HashMap<&mut MapData, PeerKey, PeerState> = self.map_mut(MAP_PEERS)?;
        peers.insert(*key, st, 0).map_err(map_err(MAP_PEERS))?;
        conf.peers_released = conf.peers_released.wrapping_sub(1);
        self.put_instance(ikey, conf)
    }

    /// Sets (`Some`) or removes (`None`) the instance's source allowlist: with one,
    /// adverts from any other source are dropped as `source_not_allowed`.
    pub fn set_allowed_sources(
        &mut self,
        ifindex: u32,
        vrid: u8,
        family: u8,
        allowed: Option<&[IpAddr]>,
    ) -> Result<(), XdpLoaderError> {
        let ikey = instance_key(ifindex, vrid, family);
        let mut conf = self
            .instance_conf(&ikey)?
            .ok_or(XdpLoaderError::NotWatched { ifindex, vrid })?;
        let want: Vec<PeerKey> = allowed
            .unwrap_or_default()
            .iter()
            .map(|a| PeerKey::new(ifindex, vrid, *a))
            .collect();
        if let Some(k) = want.iter().find(|k| k.family != family) {
            return Err(XdpLoaderError::WrongFamily { addr: k.ip() });
        }
        if want.len() > ALLOWED_PER_INSTANCE {
            return Err(XdpLoaderError::AllowlistTooLong { count: want.len() });
        }
        let mut map: HashMap<&mut MapData, PeerKey, u32> = self.map_mut(MAP_ALLOWED)?;
        let old: Vec<PeerKey> = map
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.instance() == ikey)
            .collect();
        // Order matters to the XDP program reading concurrently: the new entries go in
        // before the flag is set, and the stale ones go after it changed, so no listed
        // source is ever refused on the way.
        for k in &want {
            map.insert(*k, 1, 0).map_err(map_err(MAP_ALLOWED))?;
        }
        let flags = if allowed.is_some() {
            conf.flags | INSTANCE_F_ALLOWLIST
        } else {
            conf.flags & !INSTANCE_F_ALLOWLIST
        };
        if flags != conf.flags {
            conf.flags = flags;
            self.put_instance(ikey, conf)?;
        }
        let stale: Vec<PeerKey> = old.into_iter().filter(|k| !want.contains(k)).collect();
        self.remove_keys::<u32>(MAP_ALLOWED, &stale).map(|_| ())
    }

    /// The instance's allowlist, `None` when it has none.
    pub fn allowed_sources(
        &self,
        key: &InstanceKey,
    ) -> Result<Option<Vec<IpAddr>>, XdpLoaderError> {
        let Some(conf) = self.instance_conf(key)? else {
            return Ok(None);
        };
        if conf.flags & INSTANCE_F_ALLOWLIST == 0 {
            return Ok(None);
        }
        let map: HashMap<&MapData, PeerKey, u32> = self.map(MAP_ALLOWED)?;
        Ok(Some(
            map.keys()
                .filter_map(Result::ok)
                .filter(|k| k.instance() == *key)
                .map(|k| k.ip())
                .collect(),
        ))
    }

    /// Stops accepting adverts for an instance and forgets its peers (protected ones
    /// included), its room and its allowlist.
    pub fn unwatch(&mut self, ifindex: u32, vrid: u8, family: u8) -> Result<(), XdpLoaderError> {
        let ikey = instance_key(ifindex, vrid, family);
        let mut map: HashMap<&mut MapData, InstanceKey, InstanceConf> =
            self.map_mut(MAP_INSTANCES)?;
        match map.remove(&ikey) {
            Ok(()) | Err(MapError::KeyNotFound) => {}
            Err(e) if is_enoent(&e) => {}
            Err(e) => return Err(map_err(MAP_INSTANCES)(e)),
        }
        self.put_way(ikey, None)?;
        let (stale, seen): (Vec<PeerKey>, Vec<u16>) = self
            .peers()?
            .into_iter()
            .filter(|(k, _)| k.instance() == ikey)
            .map(|(k, st)| (k, st.seen))
            .unzip();
        self.remove_keys::<PeerState>(MAP_PEERS, &stale)?;
        let now = monotonic_ns();
        for s in seen.into_iter().filter(|s| *s != 0) {
            self.seen_entries.give_back(s - 1, now);
        }
        let allowed: Vec<PeerKey> = {
            let map: HashMap<&MapData, PeerKey, u32> = self.map(MAP_ALLOWED)?;
            map.keys()
                .filter_map(Result::ok)
                .filter(|k| k.instance() == ikey)
                .collect()
        };
        self.remove_keys::<u32>(MAP_ALLOWED, &allowed)?;
        let mut room: HashMap<&mut MapData, InstanceKey, InstanceRoom> = self.map_mut(MAP_ROOM)?;
        match room.remove(&ikey) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(e) if is_enoent(&e) => Ok(()),
            Err(e) => Err(map_err(MAP_ROOM)(e)),
        }
    }

    /// One peer's record: the re-check before a takeover reads `last_ns` here.
    pub fn peer(&self, key: &PeerKey) -> Result<Option<PeerState>, XdpLoaderError> {
        const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
        // The `map_fd, key, value, flags` member of union bpf_attr
        // (include/uapi/linux/bpf.h).
        #[repr(C)]
        struct ElemAttr {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        let mut value = PeerState::default();
        let attr = ElemAttr {
            map_fd: self.peers_fd as u32,
            _pad: 0,
            key: key as *const PeerKey as u64,
            value: &mut value as *mut PeerState as u64,
            flags: 0,
        };
        // SAFETY: the descriptor is PEERS' (owned by `self.ebpf`, open while `self`
        // lives); key and value point at a PEERS key and value, which outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_ELEM,
                &attr as *const ElemAttr,
                std::mem::size_of::<ElemAttr>() as u32,
            )
        };
        if r == 0 {
            return Ok(Some(value));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        Err(XdpLoaderError::Map {
            name: MAP_PEERS,
            source: MapError::SyscallError(aya::sys::SyscallError {
                call: "bpf_map_lookup_elem",
                io_error: e,
            }),
        })
    }

    /// Every peer's record.
    /// Every PEERS record with `BPF_MAP_LOOKUP_BATCH` (Linux 5.6): one bpf(2) call per
    /// 256 records, where iterating costs two per record (`get_next_key`, then the
    /// lookup). What a wake-up that re-checks many backups reads once.
    pub fn peers_batch(&self) -> Result<Vec<(PeerKey, PeerState)>, XdpLoaderError> {
        use std::os::fd::{AsFd, AsRawFd};
        const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
        const CHUNK: usize = 256;
        let map = self
            .ebpf
            .map(MAP_PEERS)
            .ok_or(XdpLoaderError::Missing(MAP_PEERS))?;
        let aya::maps::Map::HashMap(data) = map else {
            return Err(XdpLoaderError::Missing(MAP_PEERS));
        };
        let fd = data.fd().as_fd().as_raw_fd();
        // The kernel's `batch` member of union bpf_attr (include/uapi/linux/bpf.h).
        #[repr(C)]
        #[derive(Default)]
        struct BatchAttr {
            in_batch: u64,
            out_batch: u64,
            keys: u64,
            values: u64,
            count: u32,
            map_fd: u32,
            elem_flags: u64,
            flags: u64,
        }
        let mut out = Vec::new();
        let mut keys = vec![PeerKey::default(); CHUNK];
        let mut values = vec![PeerState::default(); CHUNK];
        // A hash map's batch token is a bucket index (u32).
        let (mut token_in, mut token_out) = (0u32, 0u32);
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    &mut token_in as *mut u32 as u64
                },
                out_batch: &mut token_out as *mut u32 as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: CHUNK as u32,
                map_fd: fd as u32,
                ..Default::default()
            };
            // SAFETY: attr points at buffers of CHUNK keys and values of the map's
            // key and value sizes, and at the two tokens; all outlive the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    &mut attr as *mut BatchAttr,
                    std::mem::size_of::<BatchAttr>() as u32,
                )
            };
            let err = (r < 0).then(io::Error::last_os_error);
            let n = (attr.count as usize).min(CHUNK);
            out.extend(keys[..n].iter().copied().zip(values[..n].iter().copied()));
            match err {
                None => {}
                // ENOENT: the last records were in this call.
                Some(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                Some(e) => {
                    return Err(XdpLoaderError::Map {
                        name: MAP_PEERS,
                        source: MapError::SyscallError(aya::sys::SyscallError {
                            call: "bpf_map_lookup_batch",
                            io_error: e,
                        }),
                    })
                }
            }
            token_in = token_out;
            first = false;
        }
        Ok(out)
    }

    pub fn peers(&self) -> Result<Vec<(PeerKey, PeerState)>, XdpLoaderError> {
        let map: HashMap<&MapData, PeerKey, PeerState> = self.map(MAP_PEERS)?;
        read_peers(&map)
    }

    /// Drop counters by reason, summed over CPUs, in [`DropReason`] index order.
    pub fn drop_counters(&self) -> Result<Vec<(&'static str, u64)>, XdpLoaderError> {
        let map: PerCpuArray<&MapData, u64> = self.map(MAP_DROPS)?;
        sum_counters(&map, DROP_REASON_COUNT, drop_reason_name, MAP_DROPS)
    }

    /// One drop counter, summed over CPUs.
    pub fn drop_count(&self, reason: DropReason) -> Result<u64, XdpLoaderError> {
        let map: PerCpuArray<&MapData, u64> = self.map(MAP_DROPS)?;
        let per_cpu = map.get(&reason.index(), 0).map_err(map_err(MAP_DROPS))?;
        Ok(per_cpu.iter().sum())
    }

    /// Valid adverts, events pushed and events lost (ring buffer full).
    pub fn stats(&self) -> Result<Vec<(&'static str, u64)>, XdpLoaderError> {
        let map: PerCpuArray<&MapData, u64> = self.map(MAP_STATS)?;
        sum_counters(&map, STAT_COUNT, stat_name, MAP_STATS)
    }

    /// Removes unprotected peers not heard from for longer than `older_than_ns`
    /// (kernel monotonic time), giving their room back to their instance, and any
    /// record left of an instance that is no longer watched. PEERS never evicts on its
    /// own (see `PEERS_MAX_ENTRIES`). Returns how many were removed.
    pub fn prune_peers(&mut self, older_than_ns: u64) -> Result<usize, XdpLoaderError> {
        let now = monotonic_ns();
        let mut stale: Vec<PeerKey> = Vec::new();
        let mut released: StdHashMap<InstanceKey, u64> = StdHashMap::new();
        for (k, st) in self.peers()? {
            let ikey = k.instance();
            if self.instance_conf(&ikey)?.is_none() {
                // Left by an advert that raced with unwatch.
                stale.push(k);
                if st.seen != 0 {
                    self.seen_entries.give_back(st.seen - 1, now);
                }
            } else if !st.is_protected() && now.saturating_sub(st.last_ns) > older_than_ns {
                stale.push(k);
                released.entry(ikey).or_default();
            }
        }
        // Records first, then the room: the other order would let the XDP program
        // admit newcomers while the stale records still hold their slots in PEERS.
        // Only records this call removed give room back: one the XDP program removed
        // meanwhile (for a higher-priority newcomer) left no room behind.
        let removed = self.remove_keys::<PeerState>(MAP_PEERS, &stale)?;
        let mut n_removed = 0;
        for k in &removed {
            n_removed += 1;
            if let Some(n) = released.get_mut(&k.instance()) {
                *n += 1;
            }
        }
        for (ikey, n) in released {
            if n == 0 {
                continue;
            }
            if let Some(mut conf) = self.instance_conf(&ikey)? {
                conf.peers_released = conf.peers_released.wrapping_add(n);
                self.put_instance(ikey, conf)?;
            }
        }
        Ok(n_removed)
    }

    /// Removes `keys`; returns those that were there (and are gone now).
    fn remove_keys<V: aya::Pod>(
        &mut self,
        name: &'static str,
        keys: &[PeerKey],
    ) -> Result<Vec<PeerKey>, XdpLoaderError> {
        let mut map: HashMap<&mut MapData, PeerKey, V> = self.map_mut(name)?;
        let mut removed = Vec::with_capacity(keys.len());
        for k in keys {
            match map.remove(k) {
                Ok(()) => removed.push(*k),
                Err(MapError::KeyNotFound) => {}
                Err(e) if is_enoent(&e) => {}
                Err(e) => return Err(map_err(name)(e)),
            }
        }
        Ok(removed)
    }

    /// Runs the tracker once on `frame` with BPF_PROG_TEST_RUN, without attaching it:
    /// the kernel runs it as if the frame came in on the caller's loopback device
    /// (ifindex 1), against the same maps. Returns the verdict (`XDP_*`) and the frame
    /// as the program left it. For tests and benchmarks.
    pub fn test_run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>), XdpLoaderError> {
        let prog = self.xdp()?;
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.data_out = Some(&mut out);
        let r = prog.test_run(opts).map_err(program_err)?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out))
    }

    /// Takes the advert ring buffer. Call once, inside a tokio runtime.
    /// Taken a second time (a hand-over that rolled back), the ring is opened again from
    /// its pin: the read position lives in the map, nothing is read twice or lost.
    pub fn take_events(&mut self) -> Result<AdvertEvents, XdpLoaderError> {
        let map = match self.ebpf.take_map(MAP_EVENTS) {
            Some(m) => m,
            None => aya::maps::Map::RingBuf(
                MapData::from_pin(self.pin_dir.join(MAP_EVENTS)).map_err(map_err(MAP_EVENTS))?,
            ),
        };
        let ring = RingBuf::try_from(map).map_err(map_err(MAP_EVENTS))?;
        let fd = register_readable(ring).map_err(XdpLoaderError::Runtime)?;
        Ok(AdvertEvents { fd })
    }

    /// One value of the hash map `name`; `None` when the key is absent.
    fn lookup<K: aya::Pod, V: aya::Pod>(
        &self,
        name: &'static str,
        key: &K,
    ) -> Result<Option<V>, XdpLoaderError> {
        let map: HashMap<&MapData, K, V> = self.map(name)?;
        match map.get(key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(name)(e)),
        }
    }

    fn map<'a, T>(&'a self, name: &'static str) -> Result<T, XdpLoaderError>
    where
        T: TryFrom<&'a aya::maps::Map, Error = MapError>,
    {
        let map = self.ebpf.map(name).ok_or(XdpLoaderError::Missing(name))?;
        T::try_from(map).map_err(map_err(name))
    }

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T, XdpLoaderError>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
    {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(XdpLoaderError::Missing(name))?;
        T::try_from(map).map_err(map_err(name))
    }
}

impl Drop for XdpLoader {
    fn drop(&mut self) {
        if self.keep_pins {
            return;
        }
        // Links go with `self.ebpf`; the pins would keep the maps alive, so they go.
        if let Err(e) = std::fs::remove_dir_all(&self.pin_dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.pin_dir.display(), error = %e, "cannot remove BPF pins");
            }
        }
    }
}

/// The PEERS records a crashed daemon's pins in this network namespace hold (what its
/// program saw until it died); empty when there are none. Read before a fresh load,
/// which removes those pins (`XdpLoader::load`).
pub fn crashed_peers() -> Vec<(PeerKey, PeerState)> {
    let Ok(netns) = haxdp_common::current_netns_inode() else {
        return Vec::new();
    };
    let dir = pin_dir(netns);
    if !dir.join(MAP_PEERS).exists() {
        return Vec::new();
    }
    previous_peers_at(&dir)
}

/// The newest advert (priority > 0) among `records` for VRID `vrid` on `ifindex`, from
/// any source, with its source.
pub fn newest_advert(
    records: &[(PeerKey, PeerState)],
    ifindex: u32,
    vrid: u8,
) -> Option<(u64, IpAddr)> {
    records
        .iter()
        .filter(|(k, st)| k.ifindex == ifindex && k.vrid == vrid && st.priority > 0 && st.count > 0)
        .map(|(k, st)| (st.last_ns, k.ip()))
        .max_by_key(|(t, _)| *t)
}

/// The PEERS records of the pins at `dir`; empty (and logged) when they cannot be read,
/// e.g. because an older build pinned another record layout.
fn previous_peers_at(dir: &Path) -> Vec<(PeerKey, PeerState)> {
    let path = dir.join(MAP_PEERS);
    let read = || -> Result<Vec<(PeerKey, PeerState)>, MapError> {
        let data = MapData::from_pin(&path)?;
        let map: HashMap<MapData, PeerKey, PeerState> =
            HashMap::try_from(aya::maps::Map::HashMap(data))?;
        Ok(map.iter().filter_map(Result::ok).collect())
    };
    match read() {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the previous daemon's PEERS records cannot be read (another layout?); starting without them");
            Vec::new()
        }
    }
}

/// Adverts whose content changed, as the XDP program pushed them.
pub struct AdvertEvents {
    fd: AsyncFd<RingBuf<MapData>>,
}

impl AdvertEvents {
    /// Waits until at least one event is there, then returns all that are.
    pub async fn next_batch(&mut self) -> Result<Vec<AdvertEvent>, XdpLoaderError> {
        loop {
            let mut guard = self
                .fd
                .readable_mut()
                .await
                .map_err(XdpLoaderError::Runtime)?;
            let batch = drain(guard.get_inner_mut());
            guard.clear_ready();
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
    }

    /// Whatever is queued now, without waiting.
    pub fn try_drain(&mut self) -> Vec<AdvertEvent> {
        drain(self.fd.get_mut())
    }
}

fn drain(ring: &mut RingBuf<MapData>) -> Vec<AdvertEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        match AdvertEvent::from_bytes(&item) {
            Some(ev) => out.push(ev),
            None => tracing::warn!(len = item.len(), "short record in the advert ring buffer"),
        }
    }
    out
}

/// Registers a BPF ring (advert events, aya-log records) with the tokio reactor.
fn register_readable<T: std::os::fd::AsRawFd>(inner: T) -> io::Result<AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("called outside a tokio runtime"));
    }
    // SAFETY: `inner` owns its fd (aya's RingBuf owns the map fd, EbpfLogger owns
    // its RingBuf) and AsyncFd owns `inner`, so the fd stays open and the same
    // for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// bpf_map_delete_elem reports a missing key as ENOENT, which aya passes on
/// as a syscall error rather than `KeyNotFound`.
fn is_enoent(e: &MapError) -> bool {
    errno_of(e) == Some(libc::ENOENT)
}

fn errno_of(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

/// The descriptor of map `name` of `ebpf` (PEERS is a hash map, SEEN an array), owned by
/// `ebpf` and open while it lives.
fn map_fd(ebpf: &Ebpf, name: &'static str) -> Result<std::os::fd::RawFd, XdpLoaderError> {
    use std::os::fd::{AsFd, AsRawFd};
    let data = match ebpf.map(name) {
        Some(aya::maps::Map::HashMap(d) | aya::maps::Map::Array(d)) => d,
        _ => return Err(XdpLoaderError::Missing(name)),
    };
    Ok(data.fd().as_fd().as_raw_fd())
}

fn instance_key(ifindex: u32, vrid: u8, family: u8) -> InstanceKey {
    InstanceKey {
        ifindex,
        vrid,
        family,
        _pad: [0; 2],
    }
}

/// Reads every PEERS record; a peer removed during the walk is skipped.
pub fn read_peers<T: std::borrow::Borrow<MapData>>(
    map: &HashMap<T, PeerKey, PeerState>,
) -> Result<Vec<(PeerKey, PeerState)>, XdpLoaderError> {
    let mut out = Vec::new();
    for entry in map.iter() {
        match entry {
            Ok(kv) => out.push(kv),
            Err(MapError::KeyNotFound) => {}
            Err(e) => return Err(map_err(MAP_PEERS)(e)),
        }
    }
    Ok(out)
}

/// Sums a per-CPU counter array, naming each index.
pub fn sum_counters<T: std::borrow::Borrow<MapData>>(
    map: &PerCpuArray<T, u64>,
    count: u32,
    name: fn(u32) -> &'static str,
    map_name: &'static str,
) -> Result<Vec<(&'static str, u64)>, XdpLoaderError> {
    (0..count)
        .map(|i| {
            let per_cpu = map.get(&i, 0).map_err(map_err(map_name))?;
            Ok((name(i), per_cpu.iter().sum()))
        })
        .collect()
}

fn errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::XdpError(XdpError::NetlinkError(n)) => n.raw_os_error(),
        _ => None,
    }
}

/// Errors that no other mode will fix.
fn classify_attach_error(ifname: &str, e: &ProgramError) -> Result<(), XdpLoaderError> {
    if let ProgramError::UnknownInterface { .. } = e {
        return Err(XdpLoaderError::UnknownInterface(ifname.to_string()));
    }
    // The kernel answers EBUSY (bpf_link) or EEXIST (netlink) when a program
    // is already attached (net/core/dev.c dev_xdp_attach).
    if matches!(errno(e), Some(libc::EBUSY) | Some(libc::EEXIST)) {
        return Err(XdpLoaderError::AlreadyAttached {
            ifname: ifname.to_string(),
        });
    }
    Ok(())
}

fn ensure_bpffs() -> Result<(), XdpLoaderError> {
    let path = std::ffi::CString::new(BPFFS_MOUNT)
        .map_err(|e| XdpLoaderError::MountBpffs(io::Error::other(e)))?;
    // SAFETY: zeroed statfs is a valid out-parameter; path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    let fstype = c"bpf";
    // SAFETY: all pointers are NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            path.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(XdpLoaderError::MountBpffs(io::Error::last_os_error()));
    }
    Ok(())
}

/// Sends aya-log records of the XDP program to `tracing` (target `haxdp::ebpf`).
/// The logger is polled by a task on the current tokio runtime; without one the
/// records stay in their ring buffer and a debug line says so.
fn forward_ebpf_logs(ebpf: &mut Ebpf) {
    // The runtime first: the logger takes the log map out of `ebpf`, and a
    // logger dropped here would close the map's fd before the program that
    // refers to it is loaded (the verifier then fails with EBADF).
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no tokio runtime: XDP program logs are not forwarded");
        return;
    };
    let logger = match aya_log::EbpfLogger::init_with_logger(ebpf, TracingLog) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "XDP program logs are not forwarded");
            return;
        }
    };
    handle.spawn(async move {
        let Ok(mut fd) = register_readable(logger) else {
            tracing::warn!("XDP program logs are not forwarded: cannot poll the log ring");
            return;
        };
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}

struct TracingLog;

impl log::Log for TracingLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let msg = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "haxdp::ebpf", "{msg}"),
            log::Level::Warn => tracing::warn!(target: "haxdp::ebpf", "{msg}"),
            log::Level::Info => tracing::info!(target: "haxdp::ebpf", "{msg}"),
            log::Level::Debug => tracing::debug!(target: "haxdp::ebpf", "{msg}"),
            log::Level::Trace => tracing::trace!(target: "haxdp::ebpf", "{msg}"),
        }
    }

    fn flush(&self) {}
}
