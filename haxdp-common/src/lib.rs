//! Types shared by the XDP advert tracker (`haxdp-ebpf`) and user space (`haxdp`).
//!
//! Everything here crosses the kernel boundary as raw bytes, so every type is
//! `#[repr(C)]`, `Copy`, has explicit padding fields and uses integer flags instead
//! of `bool`/`enum`/`Option`: the byte layout is the same on both sides and
//! `bytemuck::Pod` proves at compile time that there is no hidden padding.
//!
//! # The delivery contract: what the kernel reports, when, and what user space may ask
//!
//! The XDP program sees every advert; user space hears only some of them, through the
//! EVENTS ring buffer. This is the whole contract between the two (the XDP program,
//! the daemon and the simulator all rely on exactly this; [`track_advert`] is the
//! function that implements it, and the XDP program calls it):
//!
//! 1. **Which adverts are checked.** Every frame of the interface that is IPv4/IPv6
//!    protocol 112 without an 802.1Q/802.1ad tag (a tagged frame belongs to a VLAN
//!    interface, not to this one, and is passed untouched). An advert that fails one of
//!    the checks listed in [`DropReason`], in that order, is counted under that reason
//!    in DROPS and dropped. The socket receive path applies the same checks in the same
//!    order (`haxdp_vrrp::accept_advert`), and a differential test holds the two equal.
//! 2. **Which accepted adverts are reported**, i.e. pushed whole to EVENTS
//!    ([`AdvertEvent`], with its `CHANGE_*` bits saying why):
//!    - the first advert of a source the instance has no record of ([`CHANGE_NEW_PEER`]),
//!      including a source admitted in the place of a lower-priority unknown record
//!      (see 5.; the record that made way is not reported, its source is simply no
//!      longer tracked until it is admitted again);
//!    - an advert whose priority, interval, address list or version differs from the
//!      previous one of the same source ([`CHANGE_PRIORITY`], [`CHANGE_INTERVAL`],
//!      [`CHANGE_ADDRS`], [`CHANGE_VERSION`]); every priority-0 advert
//!      ([`CHANGE_PRIO_ZERO`]);
//!    - the first advert after the source was silent for more than one and a half of
//!      its own intervals, and more than one interval plus [`RESUMED_JITTER_NS`]: it
//!      missed at least one advert ([`CHANGE_RESUMED`]);
//!    - the first advert of every source after each report request of its instance
//!      ([`CHANGE_REQUESTED`], see 4.).
//!
//!    Anything else (an unchanged advert) only moves the source's [`PeerState`]
//!    (`last_ns`, `count`, gaps).
//! 3. **When.** On that advert, by the CPU that received it. If the ring buffer is full
//!    the bits are kept in `PeerState::pending_change` and delivered with the source's
//!    next advert, so a change is late by at most one of the source's intervals, never
//!    lost while the source keeps advertising.
//! 4. **What user space may ask.**
//!    - *Report on request*: increment the instance's [`InstanceConf::report_epoch`]
//!      (`KernelRx::request_reports`; `watch` does it too). Every source whose record
//!      was last reported at another epoch is reported with its next advert, once. So
//!      within one advert interval of each live router, user space hears every router
//!      the instance can hear, whatever its state machine knew before (a backup that
//!      leaves Fault, a new master, a reloaded instance).
//!    - *Read any source's record* (`PeerState`, PEERS map) at any time: `last_ns` is
//!      the kernel timestamp of its newest accepted advert, which is what the takeover
//!      re-check reads.
//!    - Protect sources (configured or known routers, [`PEER_F_PROTECTED`]) so that they
//!      always have room in PEERS and are never made to give way, and restrict who may
//!      speak ([`INSTANCE_F_ALLOWLIST`]).
//! 5. **Who gets a record.** A protected source always has one. An unknown
//!    (unprotected) source gets one while its instance has fewer than
//!    [`PEERS_UNKNOWN_PER_INSTANCE`] unknown records. When that room is full, a new
//!    source whose advert carries a priority *higher* than the lowest current priority
//!    among the instance's unknown records takes that record's place (the old record
//!    is removed, counted in [`InstanceRoom::evicted`]); otherwise (lower or equal
//!    priority, or priority 0) the advert is dropped as [`DropReason::PeersFull`] and
//!    counted in [`InstanceRoom::refused`]. So spoofed sources can only keep out
//!    routers that are no better than them; a spoofer with a higher priority than a
//!    real router would win the election anyway (against that: allowlists,
//!    [`INSTANCE_F_ALLOWLIST`]). A source that lost its record is a new source again
//!    with its next advert.
#![no_std]

#[cfg(feature = "user")]
extern crate std;

use bytemuck::{Pod, Zeroable};

/// Map names, as the loader finds them in the object and as they are pinned.
pub const MAP_INSTANCES: &str = "INSTANCES";
pub const MAP_PEERS: &str = "PEERS";
pub const MAP_ROOM: &str = "ROOM";
pub const MAP_ALLOWED: &str = "ALLOWED";
pub const MAP_EVENTS: &str = "EVENTS";
pub const MAP_DROPS: &str = "DROPS";
pub const MAP_STATS: &str = "STATS";
pub const MAP_SEEN: &str = "SEEN";
pub const MAP_BY_VRID: &str = "BY_VRID";
/// Every map the loader pins, in the order `haxdp maps` reads them.
pub const PINNED_MAPS: [&str; 9] = [
    MAP_INSTANCES,
    MAP_PEERS,
    MAP_ROOM,
    MAP_ALLOWED,
    MAP_EVENTS,
    MAP_DROPS,
    MAP_STATS,
    MAP_SEEN,
    MAP_BY_VRID,
];
/// Maps a hand-over may create afresh when the running daemon (an older build) has not
/// pinned them: what they hold is rebuilt by the successor, and until then their
/// readers fall back to the maps that are carried over.
pub const MAPS_FRESH_AT_HANDOVER: [&str; 2] = [MAP_SEEN, MAP_BY_VRID];

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

/// Capacity of INSTANCES (and ROOM): 255 VRIDs x 2 families on a few interfaces.
pub const INSTANCES_MAX_ENTRIES: u32 = 2048;
/// Room in PEERS for sources an instance does not know (not [`PEER_F_PROTECTED`]);
/// also the number of [`InstanceRoom::slots`] (a power of two: the XDP program masks
/// slot indices with it).
pub const PEERS_UNKNOWN_PER_INSTANCE: u32 = 8;
/// Room in PEERS for the sources user space protects per instance (configured unicast
/// peers, the master it follows); `protect_peer` refuses more.
pub const PEERS_PROTECTED_PER_INSTANCE: u32 = 8;
/// Capacity of PEERS: every instance's whole room, so the map as a whole never fills.
///
/// PEERS is a preallocated hash map, deliberately not an LRU map: recency decides
/// nothing, so a flood of spoofed sources can never push out a protected record (the
/// master a backup follows, whose timestamps hold it back: the split brain this
/// project exists to avoid), nor an unknown record of a priority at least as high as
/// theirs. Only priority decides which unknown record makes way for a newcomer when
/// the instance's room is full (contract 5. at the top of this crate).
///
/// Room is per instance (ifindex, VRID, family), so spoofed sources of one instance
/// cannot take room from another, nor from the routers an instance knows:
/// - an instance holds at most [`PEERS_UNKNOWN_PER_INSTANCE`] unprotected sources.
///   The XDP program counts admissions in the instance's [`InstanceRoom::admitted`]
///   with an atomic add (`__sync_fetch_and_add`, BPF_ATOMIC); user space counts the
///   unprotected records it removed (pruned, or protected later) in
///   [`InstanceConf::peers_released`]. Each counter has a single writer, so user
///   space's whole-value map updates never lose a kernel increment; the room in use
///   is `admitted - peers_released` (wrapping). User space counts only the records its
///   own delete removed: one the XDP program removed first released no room.
/// - **Priority-aware admission.** The XDP program keeps, in the instance's
///   [`InstanceRoom::slots`], the address and current priority of each unknown record
///   ([`RoomSlot`]; the record names its slot in [`PeerState::slot`]; a priority
///   change rewrites the slot). When the room is full, it finds the lowest slot
///   priority with a bounded loop of [`PEERS_UNKNOWN_PER_INSTANCE`] byte reads; if the
///   newcomer's priority is higher (never for priority 0, never on a tie), it
///   confirms the slot with PEERS (the record exists, is unprotected, names the slot,
///   and its own priority is lower too), claims the slot (atomic compare-and-swap,
///   BPF_CMPXCHG), deletes the old record and inserts the newcomer's: one unknown
///   record out, one in, so the counters do not move (only the CPU whose delete
///   succeeded proceeds, so two CPUs never both take one record's place). Otherwise
///   the source is refused: counted in [`InstanceRoom::refused`] and in DROPS as
///   [`DropReason::PeersFull`], and the records already there all stay.
/// - User space never writes ROOM (see [`InstanceRoom`]), so it keeps the slots
///   consistent through PEERS, which the XDP program reads as the truth: pruning or
///   protecting a record leaves its slot *stale* (the record is gone, or protected,
///   with `slot` reset to 0), and the XDP program gives stale slots to the next
///   admitted sources; `unprotect_peer` resets `slot` to 0 and the record gets a
///   stale slot with its next advert (if the room is over its size meanwhile, it
///   waits for one and cannot be made to give way until then); `unwatch` removes the
///   ROOM value with its slots. A stale slot is never a victim, so a protected record
///   is never removed by the XDP program. One race remains: `protect_peer` flags a
///   record that the XDP program judged unprotected a moment before and removes;
///   `protect_peer` reads the record back and, finding it gone, takes the room it
///   gave back and creates the protected record afresh (its timestamps come back
///   with its next advert).
/// - [`PEERS_PROTECTED_PER_INSTANCE`] more are for sources user space protects
///   ([`PEER_F_PROTECTED`]): inserted or flagged by user space, never counted against
///   the unknown room and never pruned (only `unwatch` removes them).
///
/// So PEERS holds at most `INSTANCES_MAX_ENTRIES x (8 + 8)` = 32768 records. The
/// kernel preallocates them (the 24-byte key, the 64-byte [`PeerState`], the hash
/// table's element header, and 32768 buckets): the map's `memlock` in
/// `/proc/PID/fdinfo` is 4,981,920 bytes (4.75 MiB) on Linux 6.18, against 145 KiB for
/// the former 1024-entry map; ROOM adds 722,480 bytes (706 KiB; 177 KiB before it held
/// the slots), ALLOWED (not preallocated) 65 KiB. It
/// is charged to the daemon's memory cgroup. The daemon removes peers it has not heard
/// from (`XdpLoader::prune_peers`); that returns their room.
pub const PEERS_MAX_ENTRIES: u32 =
    INSTANCES_MAX_ENTRIES * (PEERS_UNKNOWN_PER_INSTANCE + PEERS_PROTECTED_PER_INSTANCE);
/// Capacity of ALLOWED (allowlisted sources, all instances), written by user space only
/// (so not preallocated).
pub const ALLOWED_MAX_ENTRIES: u32 = 4096;
/// Capacity of SEEN: one entry per protected PEERS record there can be.
pub const SEEN_MAX_ENTRIES: u32 = INSTANCES_MAX_ENTRIES * PEERS_PROTECTED_PER_INSTANCE;
/// `BPF_F_MMAPABLE` (include/uapi/linux/bpf.h, Linux 5.5): an array map user space can
/// `mmap(2)`, so that reading it costs no system call.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Longest allowlist one instance may have.
pub const ALLOWED_PER_INSTANCE: usize = 64;
/// Size of the EVENTS ring buffer (a power of two multiple of the page size).
pub const EVENTS_BYTE_SIZE: u32 = 256 * 1024;

/// Why an advert was dropped: the DROPS index, one name per reason.
///
/// This is the one acceptance rule of haxdp. The XDP program and the socket receive
/// path (`haxdp_vrrp::accept_frame` / `accept_advert`) make these checks **in this
/// order** (the declaration order below is not the order; see the numbered list) and
/// drop an advert for the first that fails:
///
/// IP layer (on the socket path the Linux stack makes these before a raw socket sees
/// the packet: `ip_rcv_core()`, `ipv6_rcv()`, and IPv4 reassembly):
/// 1. [`Truncated`](Self::Truncated): the frame is shorter than the fixed IP header.
/// 2. [`BadIpHeader`](Self::BadIpHeader): IPv4 version is not 4 or IHL < 5; IPv6
///    version is not 6.
/// 3. IPv4: [`Truncated`](Self::Truncated) if shorter than IHL;
///    [`BadIpHeader`](Self::BadIpHeader) if the header checksum is wrong (IPv4 options
///    are accepted, as by the stack and by keepalived: the VRRP message starts after
///    IHL).
/// 4. [`Truncated`](Self::Truncated): the frame is shorter than the IP total length
///    (IPv4) or 40 + payload length (IPv6); [`BadIpHeader`](Self::BadIpHeader) if the
///    IPv4 total length is shorter than IHL. Bytes after the IP length are link-layer
///    padding and are ignored.
/// 5. [`Fragment`](Self::Fragment): IPv4 MF set or a fragment offset (adverts are
///    never fragmented; the kernel would reassemble, XDP cannot).
/// 6. [`BadTtl`](Self::BadTtl): TTL / hop limit is not 255 (RFC 9568 7.1).
///
/// VRRP message, `len` = IP total length - IHL, or the IPv6 payload length (these are
/// exactly the checks of `haxdp_vrrp::decode`, in its order, with the tracker's limit
/// on the address count inserted after the type):
/// 7. [`BadLength`](Self::BadLength): `len` < 8.
/// 8. [`BadVersion`](Self::BadVersion): version is not 2 or 3.
/// 9. [`BadType`](Self::BadType): type is not ADVERTISEMENT (1).
/// 10. [`BadVersion`](Self::BadVersion): VRRPv2 over IPv6 (RFC 3768 is IPv4 only).
/// 11. [`TooManyAddrs`](Self::TooManyAddrs): more than [`MAX_ADDR_BYTES`] of addresses.
/// 12. [`BadLength`](Self::BadLength): `len` != 8 + count x 4|16 (+ 8 for VRRPv2): the
///     message must be complete (RFC 9568 7.1) and nothing may follow it.
/// 13. [`BadChecksum`](Self::BadChecksum) (VRRPv3 includes the pseudo-header, RFC 9568
///     5.2.8).
/// 14. [`BadAuthType`](Self::BadAuthType): VRRPv2 auth type not 0 or 1 (RFC 3768
///     5.3.6; type 2, IP AH, is not implemented).
/// 15. [`ZeroInterval`](Self::ZeroInterval): Max Adver Int (VRRPv3) or Adver Int
///     (VRRPv2) is 0 (RFC 9568 5.2.7 / RFC 3768 5.3.7: the master-down interval would
///     be only the skew time).
///
/// Instance (interface, VRID, family):
/// 16. [`VridNotWatched`](Self::VridNotWatched): no such instance on this interface.
/// 17. [`VersionMismatch`](Self::VersionMismatch): not the instance's VRRP version.
/// 18. [`AuthMismatch`](Self::AuthMismatch): VRRPv2 auth type or PASS data differs.
/// 19. [`SourceNotAllowed`](Self::SourceNotAllowed): the instance has an allowlist
///     ([`INSTANCE_F_ALLOWLIST`]) and the source is not in it.
/// 20. [`PeersFull`](Self::PeersFull) (XDP only): a new unprotected source, no room
///     left for the instance, and no unknown record of a lower priority than the
///     advert's to take the place of (see [`PEERS_MAX_ENTRIES`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    BadTtl = 0,
    BadVersion = 1,
    BadType = 2,
    BadLength = 3,
    Truncated = 4,
    Fragment = 5,
    TooManyAddrs = 6,
    BadChecksum = 7,
    VridNotWatched = 8,
    VersionMismatch = 9,
    AuthMismatch = 10,
    PeersFull = 11,
    ZeroInterval = 12,
    BadIpHeader = 13,
    BadAuthType = 14,
    SourceNotAllowed = 15,
}

impl DropReason {
    /// Every reason, in DROPS index order.
    pub const ALL: [DropReason; 16] = [
        DropReason::BadTtl,
        DropReason::BadVersion,
        DropReason::BadType,
        DropReason::BadLength,
        DropReason::Truncated,
        DropReason::Fragment,
        DropReason::TooManyAddrs,
        DropReason::BadChecksum,
        DropReason::VridNotWatched,
        DropReason::VersionMismatch,
        DropReason::AuthMismatch,
        DropReason::PeersFull,
        DropReason::ZeroInterval,
        DropReason::BadIpHeader,
        DropReason::BadAuthType,
        DropReason::SourceNotAllowed,
    ];
    /// Number of DROPS slots.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// The DROPS index.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The reason at a DROPS index.
    pub const fn from_index(i: u32) -> Option<Self> {
        if i < Self::COUNT {
            Some(Self::ALL[i as usize])
        } else {
            None
        }
    }

    /// Stable, snake_case name (for `haxdp maps`, `haxdp status`, metrics and logs).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::BadTtl => "bad_ttl",
            DropReason::BadVersion => "bad_version",
            DropReason::BadType => "bad_type",
            DropReason::BadLength => "bad_length",
            DropReason::Truncated => "truncated",
            DropReason::Fragment => "fragment",
            DropReason::TooManyAddrs => "too_many_addrs",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::VridNotWatched => "vrid_not_watched",
            DropReason::VersionMismatch => "version_mismatch",
            DropReason::AuthMismatch => "auth_mismatch",
            DropReason::PeersFull => "peers_full",
            DropReason::ZeroInterval => "zero_interval",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadAuthType => "bad_auth_type",
            DropReason::SourceNotAllowed => "source_not_allowed",
        }
    }
}

/// Number of DROPS slots (the same as [`DropReason::COUNT`]).
pub const DROP_REASON_COUNT: u32 = DropReason::COUNT;

/// Name of the reason at a DROPS index; `"unknown"` past the end.
pub const fn drop_reason_name(code: u32) -> &'static str {
    match DropReason::from_index(code) {
        Some(r) => r.name(),
        None => "unknown",
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

/// `AdvertEvent::change` bits: why an accepted advert was reported (see the
/// delivery contract at the top of this crate).
pub const CHANGE_NEW_PEER: u16 = 1 << 0;
pub const CHANGE_PRIORITY: u16 = 1 << 1;
/// Set on every priority-0 advert: the master is leaving (RFC 9568 6.4.2/6.4.3).
pub const CHANGE_PRIO_ZERO: u16 = 1 << 2;
pub const CHANGE_INTERVAL: u16 = 1 << 3;
pub const CHANGE_ADDRS: u16 = 1 << 4;
pub const CHANGE_VERSION: u16 = 1 << 5;
/// The peer was silent for more than [`RESUMED_AFTER_HALF_INTERVALS`] halves of its
/// own advert interval: it skipped at least one advert (it was a backup, it restarted,
/// a partition healed, an advert was lost). Its advert is reported even if unchanged,
/// because a router that stopped and resumed may have changed role: a master must hear
/// a lower-priority router that became master again while its adverts look as before
/// (keepalived answers it with an advert of its own, RFC 9568 6.4.3 in keepalived's
/// reading), and a backup that still holds the old record must see it alive.
pub const CHANGE_RESUMED: u16 = 1 << 6;
/// User space asked for a report of every live source of the instance (it raised
/// [`InstanceConf::report_epoch`] past the epoch the source was last reported at,
/// [`PeerState::reported_epoch`]); this is the source's first advert since. Without it
/// a state machine that does not already follow the live master (it just left Fault,
/// it is Master, it was reloaded) would never hear it while its adverts do not
/// change, and would become a second master.
pub const CHANGE_REQUESTED: u16 = 1 << 7;
/// See [`CHANGE_RESUMED`]: 1.5 intervals. A master's adverts come one interval apart
/// with little jitter; a gap of half an interval more means one was not sent or lost.
pub const RESUMED_AFTER_HALF_INTERVALS: u64 = 3;
/// See [`CHANGE_RESUMED`]: a gap counts as a skipped advert only when it is at least
/// this much longer than one interval.
pub const RESUMED_JITTER_NS: u64 = 20_000_000;

/// `InstanceConf::flags`: adverts are accepted only from the sources in ALLOWED
/// (keepalived's `check_unicast_src`, haxdp's `haxdp_allowed_peers`).
pub const INSTANCE_F_ALLOWLIST: u8 = 1 << 0;
/// `PeerState::flags`: user space protects this source: it does not count against
/// the instance's unknown-source room, holds no slot in it, is never pruned and never
/// makes way for a newcomer.
pub const PEER_F_PROTECTED: u8 = 1 << 0;

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

/// BY_VRID: the XDP program's index of INSTANCES, one array entry per (VRID, family)
/// ([`by_vrid_index`]), each with up to [`BY_VRID_WAYS`] interfaces. An array lookup
/// is a bounds check and an offset (the verifier inlines it) where the hash map hashes
/// the key and walks a bucket, on every advert. INSTANCES stays what user space and a
/// hand-over read; user space writes both.
pub const BY_VRID_MAX_ENTRIES: u32 = 256 * 2;
/// Interfaces one (VRID, family) entry of BY_VRID holds; instances beyond them are
/// looked up in INSTANCES ([`VridInstances::overflow`]).
pub const BY_VRID_WAYS: usize = 8;

/// The BY_VRID index of (VRID, family).
#[inline(always)]
pub const fn by_vrid_index(vrid: u8, family: u8) -> u32 {
    (vrid as u32) * 2 + (family == FAMILY_V6) as u32
}

/// One interface's instance in a [`VridInstances`]: `ifindex` 0 for a free way.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct VridWay {
    pub ifindex: u32,
    pub _pad: u32,
    pub conf: InstanceConf,
}

/// BY_VRID value: the instances of one (VRID, family), by interface. Written by user
/// space only (whole-value updates, in place: a reader may see a way half written,
/// which at worst fails one advert's checks, as a torn [`InstanceConf`] would).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct VridInstances {
    /// Non-zero when more interfaces watch this (VRID, family) than `ways` holds: an
    /// advert whose interface is in no way is looked up in INSTANCES.
    pub overflow: u32,
    pub _pad: u32,
    pub ways: [VridWay; BY_VRID_WAYS],
}

/// INSTANCES value: what the kernel side needs to validate adverts for an instance.
/// Written by user space only (whole-value updates); the XDP program reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct InstanceConf {
    /// Accepted VRRP versions: [`VERSION_MASK_V2`] | [`VERSION_MASK_V3`].
    pub versions_mask: u8,
    /// VRRPv2 auth type the sender must use: [`AUTH_NONE`] or [`AUTH_PASS`].
    pub auth_type: u8,
    /// `INSTANCE_F_*` bits.
    pub flags: u8,
    pub _pad: u8,
    /// Raised by user space to ask for one report of every live source
    /// ([`CHANGE_REQUESTED`]); never lowered.
    pub report_epoch: u32,
    /// PASS password, zero padded to 8 bytes as keepalived sends it.
    pub auth_pass: [u8; 8],
    /// Unprotected PEERS records user space removed or protected since the instance
    /// was first watched (see [`PEERS_MAX_ENTRIES`]).
    pub peers_released: u64,
}

/// One slot of [`InstanceRoom::slots`]: an unknown (unprotected) source of the
/// instance and its current priority, so that the XDP program finds the
/// lowest-priority unknown record with a bounded loop over
/// [`PEERS_UNKNOWN_PER_INSTANCE`] slots instead of a walk over PEERS.
///
/// A slot is a hint that PEERS confirms: it is *live* only while PEERS holds an
/// unprotected record for `addr` whose [`PeerState::slot`] names this slot (index + 1).
/// Anything else (never used, the record pruned or protected, a torn read) is a
/// *stale* slot, which the XDP program may claim for another source.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RoomSlot {
    /// Claim word: odd while one CPU writes the slot. A CPU claims it with an atomic
    /// compare-and-swap from the even value it read (so of two CPUs that saw the slot
    /// stale, or the same victim in it, only one takes it), writes `addr` and
    /// `priority`, and makes it even again with an atomic add. Other CPUs skip an odd
    /// slot.
    pub claims: u64,
    /// Source address, as in [`PeerKey::addr`].
    pub addr: [u8; 16],
    /// Priority of the source's newest advert.
    pub priority: u8,
    pub _pad: [u8; 7],
}

/// ROOM value, one per watched instance: written by the XDP program only (atomic
/// adds and compare-and-swaps, in place), created zeroed by user space before the
/// instance is watched. User space never rewrites it: a whole-value update replaces
/// the map element, and what a CPU writes into the old one meanwhile would be lost.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct InstanceRoom {
    /// Unprotected sources admitted to PEERS since the instance was first watched,
    /// less the records the XDP program removed to make way for a newcomer that then
    /// could not be inserted (see [`PEERS_MAX_ENTRIES`]).
    pub admitted: u64,
    /// New sources refused because the instance's room was full.
    pub refused: u64,
    /// Unknown records that made way for a higher-priority newcomer.
    pub evicted: u64,
    /// Where the instance's unknown records are, with their priorities.
    pub slots: [RoomSlot; PEERS_UNKNOWN_PER_INSTANCE as usize],
}

/// PEERS key: one advert source for one instance (also the ALLOWED key).
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
    /// Valid adverts seen; 0 for a protected record no advert has reached yet.
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
    /// `PEER_F_*` bits.
    pub flags: u8,
    /// Change bits not yet delivered because the ring buffer was full.
    pub pending_change: u16,
    /// The instance's `report_epoch` when this source was last reported.
    pub reported_epoch: u32,
    /// Index + 1 of the [`InstanceRoom::slots`] entry that names this record; 0 for
    /// none (a protected record, or an unprotected one the XDP program has not given
    /// a slot yet). Written by the XDP program; user space resets it to 0 when it
    /// protects or unprotects the source.
    pub slot: u8,
    pub _pad: u8,
    /// Index + 1 of this record's SEEN entry, into which the XDP program copies
    /// `last_ns` with every accepted advert; 0 for none. Set by user space when it
    /// protects the source (the master a backup follows), so that the backup's
    /// refresh reads the master's newest advert time from memory instead of a
    /// lookup (see [`SEEN_MAX_ENTRIES`]); the XDP program only reads it.
    pub seen: u16,
}

/// What the XDP program read from one accepted advert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `bpf_ktime_get_ns()` at arrival.
    pub now_ns: u64,
    pub addr_hash: u64,
    pub priority: u8,
    pub version: u8,
    pub interval_cs: u16,
    pub naddrs: u8,
}

/// A fresh PEERS record for a source's first advert, reported as [`CHANGE_NEW_PEER`]
/// by [`track_advert`] (its `count` is 0 until then).
#[inline(always)]
pub const fn fresh_peer(flags: u8) -> PeerState {
    PeerState {
        last_ns: 0,
        prev_ns: 0,
        count: 0,
        min_gap_ns: 0,
        max_gap_ns: 0,
        addr_hash: 0,
        priority: 0,
        version: 0,
        interval_cs: 0,
        naddrs: 0,
        flags,
        pending_change: 0,
        reported_epoch: 0,
        slot: 0,
        _pad: 0,
        seen: 0,
    }
}

/// The delivery contract (see the top of this crate) as one function: updates a
/// source's record with an accepted advert and returns the `CHANGE_*` bits to report
/// (0: only the timestamp moved). The XDP program runs it on the PEERS record in
/// place; a simulator can run it on its own records to deliver exactly what the
/// kernel delivers. `pending_change` is cleared here: a caller whose report could not
/// be delivered stores the bits back ([`PeerState::pending_change`]).
#[inline(always)]
pub fn track_advert(st: &mut PeerState, obs: &Observed, report_epoch: u32) -> u16 {
    let mut change: u16 = 0;
    if obs.priority == 0 {
        change |= CHANGE_PRIO_ZERO;
    }
    if st.count == 0 {
        change |= CHANGE_NEW_PEER;
    } else {
        let gap = obs.now_ns.saturating_sub(st.last_ns);
        if st.count == 1 || gap < st.min_gap_ns {
            st.min_gap_ns = gap;
        }
        if gap > st.max_gap_ns {
            st.max_gap_ns = gap;
        }
        if st.priority != obs.priority {
            change |= CHANGE_PRIORITY;
        }
        if st.interval_cs != obs.interval_cs {
            change |= CHANGE_INTERVAL;
        }
        if st.addr_hash != obs.addr_hash || st.naddrs != obs.naddrs {
            change |= CHANGE_ADDRS;
        }
        if st.version != obs.version {
            change |= CHANGE_VERSION;
        }
        // 1 cs = 10 ms, half of it 5 ms; the peer's previous interval decides what
        // "silent" means, with at least RESUMED_JITTER_NS of scheduling jitter allowed
        // past one interval (at 10 ms adverts half an interval is within a loaded
        // sender's jitter, and every late advert would wake user space).
        let interval_ns = (st.interval_cs as u64) * 10_000_000;
        let silent_ns = RESUMED_AFTER_HALF_INTERVALS * (st.interval_cs as u64) * 5_000_000;
        let silent_ns = if silent_ns < interval_ns + RESUMED_JITTER_NS {
            interval_ns + RESUMED_JITTER_NS
        } else {
            silent_ns
        };
        if gap > silent_ns {
            change |= CHANGE_RESUMED;
        }
        if st.reported_epoch != report_epoch {
            change |= CHANGE_REQUESTED;
        }
        st.prev_ns = st.last_ns;
    }
    st.reported_epoch = report_epoch;
    st.last_ns = obs.now_ns;
    st.count += 1;
    st.priority = obs.priority;
    st.interval_cs = obs.interval_cs;
    st.addr_hash = obs.addr_hash;
    st.naddrs = obs.naddrs;
    st.version = obs.version;
    change |= st.pending_change;
    st.pending_change = 0;
    change
}

/// EVENTS record: a full advert, pushed when the delivery contract says so.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct AdvertEvent {
    pub ktime_ns: u64,
    /// Kernel timestamp of the source's previous accepted advert; 0 for its first.
    pub prev_ns: u64,
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
    unsafe impl aya::Pod for InstanceRoom {}
    unsafe impl aya::Pod for RoomSlot {}
    unsafe impl aya::Pod for PeerKey {}
    unsafe impl aya::Pod for PeerState {}
    unsafe impl aya::Pod for AdvertEvent {}
    unsafe impl aya::Pod for VridInstances {}

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

        /// The instance this source speaks for.
        pub fn instance(&self) -> InstanceKey {
            InstanceKey {
                ifindex: self.ifindex,
                vrid: self.vrid,
                family: self.family,
                _pad: [0; 2],
            }
        }
    }

    impl InstanceKey {
        pub fn new(ifindex: u32, vrid: u8, family: u8) -> Self {
            InstanceKey {
                ifindex,
                vrid,
                family,
                _pad: [0; 2],
            }
        }
    }

    impl InstanceConf {
        /// `password` is truncated to 8 bytes, as VRRPv2 PASS auth carries only 8
        /// (RFC 3768 5.3.10; keepalived truncates the same way). Epoch, flags and
        /// counters start at zero.
        pub fn new(versions_mask: u8, auth_type: u8, password: &[u8]) -> Self {
            let mut auth_pass = [0u8; 8];
            let n = password.len().min(8);
            auth_pass[..n].copy_from_slice(&password[..n]);
            InstanceConf {
                versions_mask,
                auth_type,
                auth_pass,
                ..InstanceConf::default()
            }
        }
    }

    impl PeerState {
        pub fn is_protected(&self) -> bool {
            self.flags & PEER_F_PROTECTED != 0
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
        assert_eq!(core::mem::size_of::<InstanceConf>(), 24);
        assert_eq!(core::mem::size_of::<RoomSlot>(), 32);
        assert_eq!(
            core::mem::size_of::<InstanceRoom>(),
            24 + 32 * PEERS_UNKNOWN_PER_INSTANCE as usize
        );
        assert_eq!(core::mem::size_of::<PeerKey>(), 24);
        assert_eq!(core::mem::size_of::<PeerState>(), 64);
        assert_eq!(core::mem::size_of::<VridInstances>(), 8 + BY_VRID_WAYS * 32);
        assert_eq!(core::mem::size_of::<AdvertEvent>(), 64 + MAX_ADDR_BYTES);
        assert_eq!(core::mem::offset_of!(InstanceConf, report_epoch), 4);
        assert_eq!(core::mem::offset_of!(PeerState, reported_epoch), 56);
        assert_eq!(core::mem::offset_of!(PeerState, slot), 60);
    }

    #[test]
    fn every_drop_reason_has_a_distinct_name_and_its_index() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index() as usize, i, "{r:?} is out of order in ALL");
            assert_eq!(DropReason::from_index(i as u32), Some(*r));
            assert_eq!(drop_reason_name(i as u32), r.name());
            for other in &DropReason::ALL[..i] {
                assert_ne!(r.name(), other.name());
            }
            assert!(r
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(drop_reason_name(DROP_REASON_COUNT), "unknown");
    }

    fn obs(now_ns: u64, priority: u8) -> Observed {
        Observed {
            now_ns,
            addr_hash: 7,
            priority,
            version: 3,
            interval_cs: 100,
            naddrs: 1,
        }
    }

    #[test]
    fn contract_reports_new_changed_resumed_and_requested_once() {
        let mut st = fresh_peer(0);
        assert_eq!(track_advert(&mut st, &obs(1_000, 100), 1), CHANGE_NEW_PEER);
        assert_eq!(track_advert(&mut st, &obs(2_000, 100), 1), 0);
        assert_eq!(track_advert(&mut st, &obs(3_000, 90), 1), CHANGE_PRIORITY);
        // A request (epoch 2): the next advert is reported once, then quiet again.
        assert_eq!(track_advert(&mut st, &obs(4_000, 90), 2), CHANGE_REQUESTED);
        assert_eq!(track_advert(&mut st, &obs(5_000, 90), 2), 0);
        // Silent for more than 3 intervals of 1 s.
        let later = 5_000 + 3_000_000_001;
        assert_eq!(track_advert(&mut st, &obs(later, 90), 2), CHANGE_RESUMED);
        st.pending_change = CHANGE_ADDRS;
        assert_eq!(track_advert(&mut st, &obs(later + 1, 90), 2), CHANGE_ADDRS);
        assert_eq!(st.count, 7);
    }
}
