//! Types shared by the XDP advert tracker (`haxdp-ebpf`) and user space (`haxdp`).
//!
//! Everything here crosses the kernel boundary as raw bytes, so every type is
//! `#[repr(C)]`, `Copy`, has explicit padding fields and uses integer flags instead
//! of `bool`/`enum`/`Option`: the byte layout is the same on both sides and
//! `bytemuck::Pod` proves at compile time that there is no hidden padding.
#![no_std]

#[cfg(feature = "user")]
extern crate std;

use bytemuck::{Pod, Zeroable};

/// Map names, as the loader finds them in the object and as they are pinned.
pub const MAP_INSTANCES: &str = "INSTANCES";
pub const MAP_PEERS: &str = "PEERS";
pub const MAP_EVENTS: &str = "EVENTS";
pub const MAP_DROPS: &str = "DROPS";
pub const MAP_STATS: &str = "STATS";
/// Every map the loader pins, in the order `haxdp maps` reads them.
pub const PINNED_MAPS: [&str; 5] = [MAP_INSTANCES, MAP_PEERS, MAP_EVENTS, MAP_DROPS, MAP_STATS];

/// The advert tracker.
pub const PROG_XDP: &str = "haxdp";
/// A bare `XDP_PASS` program in the same object: the baseline of the benchmark.
pub const PROG_BARE_PASS: &str = "haxdp_bare_pass";

/// Root of the pins. bpffs is shared by every network namespace of a host, so the
/// loader pins under `<PIN_ROOT>/<inode of the netns>/` (see [`pin_dir`]).
pub const PIN_ROOT: &str = "/sys/fs/bpf/haxdp";

/// Address families as the kernel side encodes them (not AF_* values).
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// `InstanceConf::versions_mask` bits: `1 << version`.
pub const VERSION_MASK_V2: u8 = 1 << 2;
pub const VERSION_MASK_V3: u8 = 1 << 3;

/// VRRPv2 authentication types (RFC 3768 5.3.6). Type 2 (IP AH) is carried by
/// protocol 51, not 112, so the tracker never validates it.
pub const AUTH_NONE: u8 = 0;
pub const AUTH_PASS: u8 = 1;

/// Largest address list the tracker accepts: 64 IPv4 or 16 IPv6 addresses.
///
/// The checksum loop in eBPF must be bounded for the verifier, and the event
/// carries the whole list so the daemon never re-reads the packet. Adverts with a
/// longer list are dropped and counted as [`DROP_TOO_MANY_ADDRS`]; keepalived's
/// configs in practice carry a handful of VIPs per instance.
pub const MAX_ADDR_BYTES: usize = 256;
pub const MAX_ADDRS_V4: usize = MAX_ADDR_BYTES / 4;
pub const MAX_ADDRS_V6: usize = MAX_ADDR_BYTES / 16;
/// Fixed VRRP header (RFC 9568 5.1) and VRRPv2 authentication data (RFC 3768 5.1).
pub const VRRP_HEADER_LEN: usize = 8;
pub const VRRP_V2_AUTH_LEN: usize = 8;
/// Longest VRRP message the checksum loop covers.
pub const MAX_VRRP_LEN: usize = VRRP_HEADER_LEN + MAX_ADDR_BYTES + VRRP_V2_AUTH_LEN;

/// Capacity of INSTANCES: 255 VRIDs x 2 families on a few interfaces.
pub const INSTANCES_MAX_ENTRIES: u32 = 2048;
/// Capacity of PEERS.
///
/// PEERS is a plain, preallocated hash map, deliberately not an LRU map: when it is
/// full a new source is refused (and counted as [`DROP_PEERS_FULL`]) while every
/// existing record, the current master's included, stays. A flood of spoofed
/// sources can therefore hide new peers but never evict the master whose
/// timestamps hold the backup back (the split brain this project exists to avoid).
/// The daemon removes peers it has not heard from (`Fastpath::prune_peers`).
pub const PEERS_MAX_ENTRIES: u32 = 1024;
/// Size of the EVENTS ring buffer (a power of two multiple of the page size).
pub const EVENTS_BYTE_SIZE: u32 = 256 * 1024;

/// DROPS indices: why an advert was dropped (RFC 9568 7.1 receiver checks).
pub const DROP_BAD_TTL: u32 = 0;
pub const DROP_BAD_VERSION: u32 = 1;
pub const DROP_BAD_TYPE: u32 = 2;
pub const DROP_BAD_LENGTH: u32 = 3;
pub const DROP_TRUNCATED: u32 = 4;
pub const DROP_FRAGMENT: u32 = 5;
pub const DROP_TOO_MANY_ADDRS: u32 = 6;
pub const DROP_BAD_CHECKSUM: u32 = 7;
pub const DROP_VRID_NOT_WATCHED: u32 = 8;
pub const DROP_VERSION_MISMATCH: u32 = 9;
pub const DROP_AUTH_MISMATCH: u32 = 10;
pub const DROP_PEERS_FULL: u32 = 11;
pub const DROP_REASON_COUNT: u32 = 12;

/// Stable, snake_case name of a drop reason (for `haxdp maps`, metrics and logs).
pub const fn drop_reason_name(code: u32) -> &'static str {
    match code {
        DROP_BAD_TTL => "bad_ttl",
        DROP_BAD_VERSION => "bad_version",
        DROP_BAD_TYPE => "bad_type",
        DROP_BAD_LENGTH => "bad_length",
        DROP_TRUNCATED => "truncated",
        DROP_FRAGMENT => "fragment",
        DROP_TOO_MANY_ADDRS => "too_many_addrs",
        DROP_BAD_CHECKSUM => "bad_checksum",
        DROP_VRID_NOT_WATCHED => "vrid_not_watched",
        DROP_VERSION_MISMATCH => "version_mismatch",
        DROP_AUTH_MISMATCH => "auth_mismatch",
        DROP_PEERS_FULL => "peers_full",
        _ => "unknown",
    }
}

/// STATS indices: what happened to adverts that passed every check.
pub const STAT_VALID: u32 = 0;
pub const STAT_EVENTS: u32 = 1;
/// The ring buffer was full; the change is kept in `PeerState::pending_change`
/// and pushed with the peer's next advert.
pub const STAT_EVENTS_LOST: u32 = 2;
pub const STAT_COUNT: u32 = 3;

pub const fn stat_name(code: u32) -> &'static str {
    match code {
        STAT_VALID => "valid",
        STAT_EVENTS => "events",
        STAT_EVENTS_LOST => "events_lost",
        _ => "unknown",
    }
}

/// `AdvertEvent::change` bits: what the election cares about changed.
pub const CHANGE_NEW_PEER: u16 = 1 << 0;
pub const CHANGE_PRIORITY: u16 = 1 << 1;
/// Set on every priority-0 advert: the master is leaving (RFC 9568 6.4.2/6.4.3).
pub const CHANGE_PRIO_ZERO: u16 = 1 << 2;
pub const CHANGE_INTERVAL: u16 = 1 << 3;
pub const CHANGE_ADDRS: u16 = 1 << 4;
pub const CHANGE_VERSION: u16 = 1 << 5;
/// The peer was silent for more than [`RESUMED_AFTER_INTERVALS`] of its own
/// advert intervals, long enough for RFC 9568 to have declared it down; its
/// advert is reported even if unchanged. Without this a master that restarts
/// (or a partition that heals) with the same content as before would never
/// reach the daemons that still hold its old record.
pub const CHANGE_RESUMED: u16 = 1 << 6;
/// See [`CHANGE_RESUMED`]: 3 intervals, the Master_Down_Interval without skew.
pub const RESUMED_AFTER_INTERVALS: u64 = 3;

/// INSTANCES key: one VRRP instance the daemon runs on an interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct InstanceKey {
    pub ifindex: u32,
    pub vrid: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    pub _pad: [u8; 2],
}

/// INSTANCES value: what the kernel side needs to validate adverts for an instance.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct InstanceConf {
    /// Accepted VRRP versions: [`VERSION_MASK_V2`] | [`VERSION_MASK_V3`].
    pub versions_mask: u8,
    /// VRRPv2 auth type the sender must use: [`AUTH_NONE`] or [`AUTH_PASS`].
    pub auth_type: u8,
    pub _pad: [u8; 6],
    /// PASS password, zero padded to 8 bytes as keepalived sends it.
    pub auth_pass: [u8; 8],
}

/// PEERS key: one advert source for one instance.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct PeerKey {
    pub ifindex: u32,
    pub family: u8,
    pub vrid: u8,
    pub _pad: [u8; 2],
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
}

/// PEERS value: what the kernel saw from a peer. Times are `bpf_ktime_get_ns()`,
/// i.e. CLOCK_MONOTONIC, comparable with `clock_gettime(CLOCK_MONOTONIC)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PeerState {
    pub last_ns: u64,
    pub prev_ns: u64,
    /// Valid adverts seen.
    pub count: u64,
    /// Smallest/largest gap between two adverts; 0 until two were seen.
    pub min_gap_ns: u64,
    pub max_gap_ns: u64,
    /// Hash of the address list (FNV-1a over 32-bit words).
    pub addr_hash: u64,
    pub priority: u8,
    pub version: u8,
    /// Advertised interval in centiseconds (VRRPv2 seconds are scaled by 100).
    pub interval_cs: u16,
    pub naddrs: u8,
    pub _pad: u8,
    /// Change bits not yet delivered because the ring buffer was full.
    pub pending_change: u16,
}

/// EVENTS record: a full advert, pushed only when something in it changed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct AdvertEvent {
    pub ktime_ns: u64,
    pub ifindex: u32,
    /// `CHANGE_*` bits.
    pub change: u16,
    pub interval_cs: u16,
    pub family: u8,
    pub vrid: u8,
    pub version: u8,
    pub priority: u8,
    pub naddrs: u8,
    pub _pad: [u8; 3],
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// `naddrs` addresses of 4 or 16 bytes each; the rest is zero.
    pub addrs: [u8; MAX_ADDR_BYTES],
}

impl Default for AdvertEvent {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

#[cfg(feature = "user")]
mod user {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;
    use std::vec::Vec;

    // SAFETY: each type is repr(C), Copy and has no padding (bytemuck::Pod proves it).
    unsafe impl aya::Pod for InstanceKey {}
    unsafe impl aya::Pod for InstanceConf {}
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for PeerState {}
    unsafe impl aya::Pod for AdvertEvent {}

    fn ip_from(family: u8, bytes: &[u8; 16]) -> IpAddr {
        if family == FAMILY_V6 {
            IpAddr::V6(Ipv6Addr::from(*bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        }
    }

    fn ip_bytes(addr: IpAddr) -> (u8, [u8; 16]) {
        let mut out = [0u8; 16];
        match addr {
            IpAddr::V4(a) => {
                out[..4].copy_from_slice(&a.octets());
                (FAMILY_V4, out)
            }
            IpAddr::V6(a) => (FAMILY_V6, a.octets()),
        }
    }

    impl PeerKey {
        pub fn new(ifindex: u32, vrid: u8, addr: IpAddr) -> Self {
            let (family, addr) = ip_bytes(addr);
            PeerKey {
                ifindex,
                family,
                vrid,
                _pad: [0; 2],
                addr,
            }
        }

        pub fn ip(&self) -> IpAddr {
            ip_from(self.family, &self.addr)
        }
    }

    impl InstanceConf {
        /// `password` is truncated to 8 bytes, as VRRPv2 PASS auth carries only 8
        /// (RFC 3768 5.3.10; keepalived truncates the same way).
        pub fn new(versions_mask: u8, auth_type: u8, password: &[u8]) -> Self {
            let mut auth_pass = [0u8; 8];
            let n = password.len().min(8);
            auth_pass[..n].copy_from_slice(&password[..n]);
            InstanceConf {
                versions_mask,
                auth_type,
                _pad: [0; 6],
                auth_pass,
            }
        }
    }

    impl AdvertEvent {
        pub fn src_ip(&self) -> IpAddr {
            ip_from(self.family, &self.src)
        }

        pub fn dst_ip(&self) -> IpAddr {
            ip_from(self.family, &self.dst)
        }

        /// The advertised address list.
        pub fn addresses(&self) -> Vec<IpAddr> {
            let size = if self.family == FAMILY_V6 { 16 } else { 4 };
            let n = usize::from(self.naddrs).min(MAX_ADDR_BYTES / size);
            self.addrs[..n * size]
                .chunks_exact(size)
                .map(|c| {
                    let mut b = [0u8; 16];
                    b[..size].copy_from_slice(c);
                    ip_from(self.family, &b)
                })
                .collect()
        }

        /// Decodes a ring buffer record; `None` if it is shorter than an event.
        pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
            let raw = bytes.get(..core::mem::size_of::<Self>())?;
            Some(bytemuck::pod_read_unaligned(raw))
        }
    }

    /// Where the maps of the network namespace with inode `netns_inode` are pinned.
    pub fn pin_dir(netns_inode: u64) -> PathBuf {
        PathBuf::from(PIN_ROOT).join(std::format!("{netns_inode}"))
    }

    /// Inode of the calling thread's network namespace. `thread-self`, not `self`:
    /// `setns(2)` moves a single thread, and `/proc/self` names the main thread.
    pub fn current_netns_inode() -> std::io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino())
    }
}

#[cfg(feature = "user")]
pub use user::{current_netns_inode, pin_dir};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<InstanceKey>(), 8);
        assert_eq!(core::mem::size_of::<InstanceConf>(), 16);
        assert_eq!(core::mem::size_of::<PeerKey>(), 24);
        assert_eq!(core::mem::size_of::<PeerState>(), 56);
        assert_eq!(core::mem::size_of::<AdvertEvent>(), 56 + MAX_ADDR_BYTES);
    }

    #[test]
    fn every_drop_reason_has_a_distinct_name() {
        for a in 0..DROP_REASON_COUNT {
            assert_ne!(drop_reason_name(a), "unknown", "reason {a}");
            for b in 0..a {
                assert_ne!(drop_reason_name(a), drop_reason_name(b));
            }
        }
        assert_eq!(drop_reason_name(DROP_REASON_COUNT), "unknown");
    }
}
