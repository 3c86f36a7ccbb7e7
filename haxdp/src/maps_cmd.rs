//! `haxdp maps`: print the pinned BPF maps of this network namespace.
//!
//! Opens the pins directly, so it works while the daemon is hung: the view an
//! operator reaches for when a failover did (or did not) happen.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use aya::maps::{HashMap, Map, MapData, PerCpuArray};
use haxdp_common::{
    drop_reason_name, pin_dir, stat_name, InstanceConf, InstanceKey, InstanceRoom, PeerKey,
    PeerState, DROP_REASON_COUNT, FAMILY_V6, INSTANCE_F_ALLOWLIST, MAP_ALLOWED, MAP_DROPS,
    MAP_INSTANCES, MAP_PEERS, MAP_ROOM, MAP_STATS, PEERS_UNKNOWN_PER_INSTANCE, STAT_COUNT,
    VERSION_MASK_V2, VERSION_MASK_V3,
};
use serde::Serialize;

use crate::clock::monotonic_ns;
use crate::xdp::loader::{read_peers, sum_counters, XdpLoaderError};

#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    #[error("cannot read the network namespace of this process: {0}")]
    Netns(#[source] std::io::Error),
    #[error(
        "no haxdp maps pinned for this network namespace at {0}: is haxdp running here? \
         (ip netns exec NS haxdp maps)"
    )]
    NotPinned(PathBuf),
    #[error("cannot open the pinned map {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: aya::maps::MapError,
    },
    #[error(transparent)]
    Read(#[from] XdpLoaderError),
}

/// One peer as `haxdp maps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRow {
    pub ifindex: u32,
    pub ifname: String,
    pub vrid: u8,
    pub family: &'static str,
    pub address: IpAddr,
    pub priority: u8,
    pub version: u8,
    pub interval_cs: u16,
    pub adverts: u64,
    /// Age of the last advert in ms (CLOCK_MONOTONIC now minus the kernel timestamp).
    pub last_advert_age_ms: f64,
    /// Gaps between adverts in ms; absent until two adverts were seen.
    pub gap_min_ms: Option<f64>,
    pub gap_max_ms: Option<f64>,
    pub addresses_advertised: u8,
    /// Protected by the daemon (a configured or known router): always has room in
    /// PEERS and is never pruned.
    pub protected: bool,
    /// The instance's report epoch when this source was last reported.
    pub reported_epoch: u32,
}

/// One instance the daemon told the XDP program to accept.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceRow {
    pub ifindex: u32,
    pub ifname: String,
    pub vrid: u8,
    pub family: &'static str,
    pub versions: Vec<u8>,
    pub auth: &'static str,
    /// Raised each time the daemon asked for a report of every live source.
    pub report_epoch: u32,
    /// Unprotected sources holding room in PEERS, and the most the instance admits.
    pub unknown_peers: u64,
    pub unknown_peers_max: u32,
    /// New sources refused because that room was full.
    pub refused_peers: u64,
    /// The source allowlist, if the instance has one (`check_unicast_src`).
    pub allowed_sources: Option<Vec<IpAddr>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MapsReport {
    pub pin_dir: PathBuf,
    pub instances: Vec<InstanceRow>,
    pub peers: Vec<PeerRow>,
    pub drops: BTreeMap<&'static str, u64>,
    pub stats: BTreeMap<&'static str, u64>,
}

fn family_name(family: u8) -> &'static str {
    if family == FAMILY_V6 {
        "ipv6"
    } else {
        "ipv4"
    }
}

/// Interface name for an ifindex in this namespace, or `if<N>` if it is gone.
pub fn ifname(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if{ifindex}");
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn open(dir: &std::path::Path, name: &str) -> Result<Map, MapsError> {
    let path = dir.join(name);
    let data = MapData::from_pin(&path).map_err(|source| MapsError::Open {
        path: path.clone(),
        source,
    })?;
    Map::from_map_data(data).map_err(|source| MapsError::Open { path, source })
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Reads the pins of this network namespace.
pub fn collect() -> Result<MapsReport, MapsError> {
    let netns = haxdp_common::current_netns_inode().map_err(MapsError::Netns)?;
    let dir = pin_dir(netns);
    if dir.join(MAP_PEERS).exists() {
        return collect_at(dir);
    }
    // `ip netns exec` gives each command its own mount namespace with a fresh
    // /sys, so a daemon started that way has its bpffs (and pins) where this
    // command cannot see them. Reach them through the daemon's root instead:
    // /proc/PID/root resolves paths in that process's mount namespace, and
    // needs nothing from the daemon itself (it may be hung).
    for pid in daemons_in_netns(netns) {
        let theirs =
            PathBuf::from(format!("/proc/{pid}/root")).join(dir.strip_prefix("/").unwrap_or(&dir));
        if theirs.join(MAP_PEERS).exists() {
            return collect_at(theirs);
        }
    }
    Err(MapsError::NotPinned(dir))
}

/// Pids of processes named `haxdp` in the network namespace `netns`.
fn daemons_in_netns(netns: u64) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "haxdp")
        })
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == netns)
        })
        .collect()
}

/// Reads the pins under `dir`.
pub fn collect_at(dir: PathBuf) -> Result<MapsReport, MapsError> {
    if !dir.join(MAP_PEERS).exists() {
        return Err(MapsError::NotPinned(dir));
    }
    let open_err = |name: &'static str| {
        let path = dir.join(name);
        move |source| MapsError::Open { path, source }
    };
    let peers_map: HashMap<MapData, PeerKey, PeerState> =
        HashMap::try_from(open(&dir, MAP_PEERS)?).map_err(open_err(MAP_PEERS))?;
    let instances_map: HashMap<MapData, InstanceKey, InstanceConf> =
        HashMap::try_from(open(&dir, MAP_INSTANCES)?).map_err(open_err(MAP_INSTANCES))?;
    let drops_map: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(open(&dir, MAP_DROPS)?).map_err(open_err(MAP_DROPS))?;
    let stats_map: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(open(&dir, MAP_STATS)?).map_err(open_err(MAP_STATS))?;
    let room_map: HashMap<MapData, InstanceKey, InstanceRoom> =
        HashMap::try_from(open(&dir, MAP_ROOM)?).map_err(open_err(MAP_ROOM))?;
    let allowed_map: HashMap<MapData, PeerKey, u32> =
        HashMap::try_from(open(&dir, MAP_ALLOWED)?).map_err(open_err(MAP_ALLOWED))?;
    let allowed_keys: Vec<PeerKey> = allowed_map.keys().filter_map(Result::ok).collect();

    let now = monotonic_ns();
    let mut peers: Vec<PeerRow> = read_peers(&peers_map)?
        .into_iter()
        .map(|(k, st)| PeerRow {
            ifindex: k.ifindex,
            ifname: ifname(k.ifindex),
            vrid: k.vrid,
            family: family_name(k.family),
            address: k.ip(),
            priority: st.priority,
            version: st.version,
            interval_cs: st.interval_cs,
            adverts: st.count,
            last_advert_age_ms: ms(now.saturating_sub(st.last_ns)),
            gap_min_ms: (st.count >= 2).then(|| ms(st.min_gap_ns)),
            gap_max_ms: (st.count >= 2).then(|| ms(st.max_gap_ns)),
            addresses_advertised: st.naddrs,
            protected: st.is_protected(),
            reported_epoch: st.reported_epoch,
        })
        .collect();
    peers.sort_by(|a, b| {
        (a.ifindex, a.vrid, a.family, a.address).cmp(&(b.ifindex, b.vrid, b.family, b.address))
    });

    let mut instances = Vec::new();
    for entry in instances_map.iter() {
        let (k, conf) = match entry {
            Ok(kv) => kv,
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(source) => {
                return Err(MapsError::Open {
                    path: dir.join(MAP_INSTANCES),
                    source,
                })
            }
        };
        let room = room_map.get(&k, 0).unwrap_or_default();
        let mut versions = Vec::new();
        if conf.versions_mask & VERSION_MASK_V2 != 0 {
            versions.push(2);
        }
        if conf.versions_mask & VERSION_MASK_V3 != 0 {
            versions.push(3);
        }
        instances.push(InstanceRow {
            ifindex: k.ifindex,
            ifname: ifname(k.ifindex),
            vrid: k.vrid,
            family: family_name(k.family),
            versions,
            auth: if conf.auth_type == haxdp_common::AUTH_PASS {
                "pass"
            } else {
                "none"
            },
            report_epoch: conf.report_epoch,
            unknown_peers: room.admitted.wrapping_sub(conf.peers_released),
            unknown_peers_max: PEERS_UNKNOWN_PER_INSTANCE,
            refused_peers: room.refused,
            allowed_sources: (conf.flags & INSTANCE_F_ALLOWLIST != 0).then(|| {
                let mut v: Vec<IpAddr> = allowed_keys
                    .iter()
                    .filter(|a| a.instance() == k)
                    .map(|a| a.ip())
                    .collect();
                v.sort();
                v
            }),
        });
    }
    instances.sort_by_key(|i| (i.ifindex, i.vrid, i.family));

    let drops = sum_counters(&drops_map, DROP_REASON_COUNT, drop_reason_name, MAP_DROPS)?
        .into_iter()
        .collect();
    let stats = sum_counters(&stats_map, STAT_COUNT, stat_name, MAP_STATS)?
        .into_iter()
        .collect();
    Ok(MapsReport {
        pin_dir: dir,
        instances,
        peers,
        drops,
        stats,
    })
}

/// Human-readable rendering, grouped by interface and VRID.
pub fn render(r: &MapsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "haxdp BPF maps pinned at {}", r.pin_dir.display());
    let mut groups: BTreeMap<(String, u32, u8, &str), Vec<&PeerRow>> = BTreeMap::new();
    for i in &r.instances {
        groups
            .entry((i.ifname.clone(), i.ifindex, i.vrid, i.family))
            .or_default();
    }
    for p in &r.peers {
        groups
            .entry((p.ifname.clone(), p.ifindex, p.vrid, p.family))
            .or_default()
            .push(p);
    }
    if groups.is_empty() {
        let _ = writeln!(out, "no instances watched and no peers seen");
    }
    for ((ifname, ifindex, vrid, family), peers) in &groups {
        let watched = r
            .instances
            .iter()
            .find(|i| i.ifindex == *ifindex && i.vrid == *vrid && i.family == *family)
            .map(|i| {
                let v: Vec<String> = i.versions.iter().map(|v| format!("v{v}")).collect();
                let allow = match &i.allowed_sources {
                    Some(a) => {
                        let a: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                        format!(", allowed sources {}", a.join(" "))
                    }
                    None => String::new(),
                };
                format!(
                    "watched ({}, auth {}, report epoch {}, unknown peers {}/{}, refused {}{allow})",
                    v.join("+"),
                    i.auth,
                    i.report_epoch,
                    i.unknown_peers,
                    i.unknown_peers_max,
                    i.refused_peers
                )
            })
            .unwrap_or_else(|| "not watched".to_string());
        let _ = writeln!(out, "{ifname} VRID {vrid} {family}: {watched}");
        if peers.is_empty() {
            let _ = writeln!(out, "  no adverts seen");
        }
        for p in peers {
            let gaps = match (p.gap_min_ms, p.gap_max_ms) {
                (Some(lo), Some(hi)) => format!("gap min {lo:.1} ms max {hi:.1} ms"),
                _ => "gap -".to_string(),
            };
            let last = if p.adverts == 0 {
                "no advert yet".to_string()
            } else {
                format!("last {:.0} ms ago", p.last_advert_age_ms)
            };
            let _ = writeln!(
                out,
                "  peer {:<39} prio {:>3}  v{}  interval {} cs  adverts {}  {}  {}{}",
                p.address.to_string(),
                p.priority,
                p.version,
                p.interval_cs,
                p.adverts,
                last,
                gaps,
                if p.protected { "  protected" } else { "" }
            );
        }
    }
    let _ = writeln!(out, "drops:");
    for (name, n) in &r.drops {
        let _ = writeln!(out, "  {name:<18} {n}");
    }
    let _ = writeln!(out, "adverts:");
    for (name, n) in &r.stats {
        let _ = writeln!(out, "  {name:<18} {n}");
    }
    out
}

/// Runs `haxdp maps`; returns the process exit code.
pub fn run(json: bool) -> anyhow::Result<i32> {
    let report = match collect() {
        Ok(r) => r,
        Err(e @ MapsError::NotPinned(_)) => {
            eprintln!("haxdp: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(0)
}
