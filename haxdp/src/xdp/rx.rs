//! The daemon's view of the XDP fast path: which VRIDs to watch, the kernel
//! timestamp of a peer's last advert, and the adverts the program pushes to its
//! ring buffer, turned into adverts for the state machine.
//!
//! What the program reports and when is the delivery contract of `haxdp_common`
//! (its crate documentation): new sources, changed adverts, sources back from
//! silence, and the next advert of every source after [`KernelRx::request_reports`].
//! Call `request_reports` whenever the state machine may not know the routers that
//! are there (it left Fault or Initialize, it became Master, it was rebuilt): every
//! live router then reaches it within one of its advert intervals.

use std::collections::HashMap;
use std::net::IpAddr;

use haxdp_common::{
    AdvertEvent, InstanceConf, InstanceKey, PeerKey, PeerState, AUTH_NONE, AUTH_PASS, FAMILY_V4,
    FAMILY_V6, VERSION_MASK_V2, VERSION_MASK_V3,
};
use haxdp_vrrp::{Advert, Family, InstanceConfig, Version};

use super::loader::XdpLoader;
pub use super::loader::{XdpAttachMode, XdpLoaderError};

/// A changed advert reported by the XDP program.
#[derive(Debug, Clone)]
pub struct KernelAdvert {
    pub ifindex: u32,
    pub family: Family,
    pub src: IpAddr,
    pub advert: Advert,
    /// `bpf_ktime_get_ns()` when the advert arrived (CLOCK_MONOTONIC).
    pub rx_ns: u64,
    /// The same for the source's previous accepted advert; `None` for its first.
    pub prev_rx_ns: Option<u64>,
}

fn family_code(f: Family) -> u8 {
    match f {
        Family::V4 => FAMILY_V4,
        Family::V6 => FAMILY_V6,
    }
}

fn peer_key(ifindex: u32, cfg: &InstanceConfig, addr: IpAddr) -> Result<PeerKey, XdpLoaderError> {
    if Family::of(&addr) != cfg.family {
        return Err(XdpLoaderError::WrongFamily { addr });
    }
    Ok(PeerKey::new(ifindex, cfg.vrid, addr))
}

/// Bytes of one checkpoint record: a PEERS key and its value.
const CHECKPOINT_RECORD: usize = std::mem::size_of::<PeerKey>() + std::mem::size_of::<PeerState>();

pub struct KernelRx {
    fast: XdpLoader,
    /// VRRPv2 PASS data per watched instance: the XDP program has already
    /// checked it, and the state machine compares it again (RFC 3768 7.1).
    auth: HashMap<(u32, u8, u8), Option<[u8; 8]>>,
}

impl KernelRx {
    pub fn load() -> Result<Self, XdpLoaderError> {
        Ok(Self {
            fast: XdpLoader::load()?,
            auth: HashMap::new(),
        })
    }

    /// See [`XdpLoader::load_after_crash`].
    pub fn load_after_crash(previous: &[(PeerKey, PeerState)]) -> Result<Self, XdpLoaderError> {
        Ok(Self {
            fast: XdpLoader::load_after_crash(previous)?,
            auth: HashMap::new(),
        })
    }

    /// See [`XdpLoader::load_handover`]: the running daemon's maps, pinned at `dir`.
    pub fn load_handover(dir: std::path::PathBuf) -> Result<Self, XdpLoaderError> {
        Ok(Self {
            fast: XdpLoader::load_handover(dir)?,
            auth: HashMap::new(),
        })
    }

    /// The pin directory of this namespace's maps (a successor loads from it).
    pub fn pin_dir(&self) -> &std::path::Path {
        self.fast.pin_dir()
    }

    pub fn attach(&mut self, ifname: &str) -> Result<XdpAttachMode, XdpLoaderError> {
        self.fast.attach(ifname)
    }

    /// See [`XdpLoader::pin_links`].
    pub fn pin_links(&mut self) -> Result<Vec<String>, XdpLoaderError> {
        self.fast.pin_links()
    }

    /// See [`XdpLoader::adopt_link`].
    pub fn adopt_link(&mut self, ifname: &str) -> Result<(), XdpLoaderError> {
        self.fast.adopt_link(ifname)
    }

    /// See [`XdpLoader::release_link_pins`].
    pub fn release_link_pins(&mut self) {
        self.fast.release_link_pins()
    }

    /// See [`XdpLoader::take_back_links`].
    pub fn take_back_links(&mut self) -> Vec<(String, XdpLoaderError)> {
        self.fast.take_back_links()
    }

    /// See [`XdpLoader::keep_pins`].
    pub fn keep_pins(&mut self) {
        self.fast.keep_pins()
    }

    /// See [`XdpLoader::program_id`].
    pub fn program_id(&self) -> Option<u32> {
        self.fast.program_id()
    }

    /// See [`XdpLoader::forget_attachment`].
    pub fn forget_attachment(&mut self, ifname: &str) {
        self.fast.forget_attachment(ifname)
    }

    /// Tells the XDP program to accept this instance's adverts, or updates what it
    /// accepts (versions, VRRPv2 authentication). The peers it already tracks for
    /// the instance are kept (a rebuilt state machine still has the master's kernel
    /// timestamp), and every live one is reported once more with its next advert
    /// (as [`KernelRx::request_reports`] does).
    pub fn watch(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        auth_type: u8,
    ) -> Result<(), XdpLoaderError> {
        let fam = family_code(cfg.family);
        let mask = match cfg.version {
            Version::V2 => VERSION_MASK_V2,
            Version::V3 => VERSION_MASK_V3,
        };
        let (auth, pass) = match (auth_type, cfg.auth_pass) {
            (AUTH_PASS, Some(p)) => (AUTH_PASS, p),
            _ => (AUTH_NONE, [0; 8]),
        };
        self.fast
            .watch(ifindex, cfg.vrid, fam, InstanceConf::new(mask, auth, &pass))?;
        self.auth.insert(
            (ifindex, cfg.vrid, fam),
            cfg.auth_pass.filter(|_| auth == AUTH_PASS),
        );
        Ok(())
    }

    /// [`KernelRx::watch`], then protects `protected` (the instance's configured
    /// unicast peers) and sets its source allowlist (`None`: anyone may speak).
    pub fn watch_instance(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        auth_type: u8,
        protected: &[IpAddr],
        allowed: Option<&[IpAddr]>,
    ) -> Result<(), XdpLoaderError> {
        self.watch(ifindex, cfg, auth_type)?;
        self.set_allowed_sources(ifindex, cfg, allowed)?;
        for addr in protected {
            self.protect_peer(ifindex, cfg, *addr)?;
        }
        Ok(())
    }

    /// Asks the XDP program to report every live source of the instance once, with
    /// its next advert (`CHANGE_REQUESTED`), changed or not.
    pub fn request_reports(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
    ) -> Result<(), XdpLoaderError> {
        self.fast
            .request_reports(ifindex, cfg.vrid, family_code(cfg.family))
    }

    /// Protects a source of the instance (a configured unicast peer, the master it
    /// follows): it always has room in the PEERS map, whatever spoofed sources fill
    /// the rest, and is never pruned. At most `PEERS_PROTECTED_PER_INSTANCE`. Returns
    /// its SEEN entry, if it has one ([`KernelRx::seen_ns`]).
    pub fn protect_peer(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        addr: IpAddr,
    ) -> Result<Option<u16>, XdpLoaderError> {
        self.fast.protect_peer(&peer_key(ifindex, cfg, addr)?)
    }

    /// The SEEN entry of a protected source (see [`XdpLoader::seen_entry`]).
    pub fn seen_entry(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        addr: IpAddr,
    ) -> Result<Option<u16>, XdpLoaderError> {
        self.fast.seen_entry(&peer_key(ifindex, cfg, addr)?)
    }

    /// The newest advert time SEEN entry `index` holds (0 if none yet), read from
    /// memory; `None` if SEEN is not mapped.
    pub fn seen_ns(&self, index: u16) -> Option<u64> {
        self.fast.seen_ns(index)
    }

    /// Takes [`KernelRx::protect_peer`] back; the record stays.
    pub fn unprotect_peer(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        addr: IpAddr,
    ) -> Result<(), XdpLoaderError> {
        self.fast.unprotect_peer(&peer_key(ifindex, cfg, addr)?)
    }

    /// New sources of the instance the XDP program refused because its room in
    /// PEERS was full (they are also counted in the `peers_full` drop counter).
    pub fn refused_peers(&self, ifindex: u32, cfg: &InstanceConfig) -> Result<u64, XdpLoaderError> {
        let key = InstanceKey::new(ifindex, cfg.vrid, family_code(cfg.family));
        Ok(self.fast.room(&key)?.map(|r| r.refused).unwrap_or(0))
    }

    /// Sets (`Some`, even empty) or removes (`None`) the instance's source allowlist:
    /// with one, the XDP program drops adverts from any other source as
    /// `source_not_allowed` (keepalived's `check_unicast_src`).
    pub fn set_allowed_sources(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        allowed: Option<&[IpAddr]>,
    ) -> Result<(), XdpLoaderError> {
        self.fast
            .set_allowed_sources(ifindex, cfg.vrid, family_code(cfg.family), allowed)
    }

    pub fn unwatch(&mut self, ifindex: u32, cfg: &InstanceConfig) -> Result<(), XdpLoaderError> {
        let fam = family_code(cfg.family);
        self.auth.remove(&(ifindex, cfg.vrid, fam));
        self.fast.unwatch(ifindex, cfg.vrid, fam)
    }

    /// Kernel timestamp of the last valid advert from `addr` for the VRID; `None`
    /// if none was seen (also for a protected source that has not spoken yet).
    pub fn peer_last_ns(
        &self,
        ifindex: u32,
        vrid: u8,
        addr: IpAddr,
    ) -> Result<Option<u64>, XdpLoaderError> {
        Ok(self
            .fast
            .peer(&PeerKey::new(ifindex, vrid, addr))?
            .filter(|p| p.count > 0)
            .map(|p| p.last_ns))
    }

    /// Every PEERS record in one batched read (see [`XdpLoader::peers_batch`]).
    pub fn peers_batch(&self) -> Result<Vec<(PeerKey, PeerState)>, XdpLoaderError> {
        self.fast.peers_batch()
    }

    /// The kernel's whole record of one source of the instance.
    pub fn peer_state(
        &self,
        ifindex: u32,
        cfg: &InstanceConfig,
        addr: IpAddr,
    ) -> Result<Option<PeerState>, XdpLoaderError> {
        self.fast.peer(&peer_key(ifindex, cfg, addr)?)
    }

    /// Every source the kernel tracks for the instance.
    pub fn peers_of(
        &self,
        ifindex: u32,
        cfg: &InstanceConfig,
    ) -> Result<Vec<(IpAddr, PeerState)>, XdpLoaderError> {
        let key = InstanceKey::new(ifindex, cfg.vrid, family_code(cfg.family));
        Ok(self
            .fast
            .peers()?
            .into_iter()
            .filter(|(k, _)| k.instance() == key)
            .map(|(k, st)| (k.ip(), st))
            .collect())
    }

    /// The XDP program's drop counters, summed over CPUs: `(DropReason::name(),
    /// count)` for every reason, in `DropReason` index order. The socket path counts
    /// its own drops under the same names (`haxdp_vrrp::accept_advert`).
    pub fn drop_counters(&self) -> Result<Vec<(&'static str, u64)>, XdpLoaderError> {
        self.fast.drop_counters()
    }

    /// Writes the protected PEERS records (the routers this daemon knows) to `path`, so
    /// that the next daemon finds room for them at once (`restore_checkpoint`).
    pub fn save_checkpoint(&self, path: &std::path::Path) -> std::io::Result<usize> {
        let recs = self.fast.protected_peers().map_err(std::io::Error::other)?;
        let mut bytes = Vec::with_capacity(recs.len() * CHECKPOINT_RECORD);
        for (k, st) in &recs {
            bytes.extend_from_slice(bytemuck::bytes_of(k));
            bytes.extend_from_slice(bytemuck::bytes_of(st));
        }
        // Never through a symlink planted in the state dir.
        crate::ops::write_file_nofollow(path, &bytes)?;
        Ok(recs.len())
    }

    /// Reads a checkpoint written by `save_checkpoint` into PEERS and removes it; a file
    /// of another record size (another build) is ignored.
    pub fn restore_checkpoint(&mut self, path: &std::path::Path) -> std::io::Result<usize> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let _ = std::fs::remove_file(path);
        if bytes.len() % CHECKPOINT_RECORD != 0 {
            return Ok(0);
        }
        let recs: Vec<(PeerKey, PeerState)> = bytes
            .chunks_exact(CHECKPOINT_RECORD)
            .map(|c| {
                let (k, st) = c.split_at(std::mem::size_of::<PeerKey>());
                (
                    bytemuck::pod_read_unaligned(k),
                    bytemuck::pod_read_unaligned(st),
                )
            })
            .collect();
        self.fast
            .restore_peers(&recs)
            .map_err(std::io::Error::other)
    }

    /// Forgets peers silent for longer than `older_than_ns`, so that the
    /// bounded PEERS map has room for real peers after a spoofing flood.
    pub fn prune(&mut self, older_than_ns: u64) -> Result<usize, XdpLoaderError> {
        self.fast.prune_peers(older_than_ns)
    }

    /// Converts one ring-buffer record for the state machine.
    pub fn to_advert(&self, ev: &AdvertEvent) -> KernelAdvert {
        let family = if ev.family == FAMILY_V6 {
            Family::V6
        } else {
            Family::V4
        };
        let version = if ev.version == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let auth = match version {
            Version::V2 => self
                .auth
                .get(&(ev.ifindex, ev.vrid, ev.family))
                .copied()
                .flatten(),
            Version::V3 => None,
        };
        KernelAdvert {
            ifindex: ev.ifindex,
            family,
            src: ev.src_ip(),
            advert: Advert {
                version,
                vrid: ev.vrid,
                priority: ev.priority,
                max_adver_int_cs: ev.interval_cs,
                addrs: ev.addresses(),
                auth,
            },
            rx_ns: ev.ktime_ns,
            prev_rx_ns: (ev.prev_ns != 0).then_some(ev.prev_ns),
        }
    }

    /// Starts a task that forwards every ring-buffer record to `f` (which
    /// returns false to stop).
    pub fn spawn_events<F>(
        &mut self,
        mut f: F,
    ) -> Result<tokio::task::JoinHandle<()>, XdpLoaderError>
    where
        F: FnMut(AdvertEvent) -> bool + Send + 'static,
    {
        let mut events = self.fast.take_events()?;
        Ok(tokio::spawn(async move {
            loop {
                match events.next_batch().await {
                    Ok(batch) => {
                        for ev in batch {
                            if !f(ev) {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!("XDP event ring: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        }))
    }
}
