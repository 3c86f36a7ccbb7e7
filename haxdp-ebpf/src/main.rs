//! The XDP advert tracker.
//!
//! Sees every packet of the interface. Anything that is not IP protocol / next
//! header 112 (VRRP) leaves with `XDP_PASS` after reading the EtherType and the
//! protocol byte; a frame with an 802.1Q/802.1ad tag leaves after the EtherType
//! (it belongs to a VLAN interface, not to this one). VRRP adverts get the checks of
//! `haxdp_common::DropReason`, in its order (RFC 9568 7.1 plus what the Linux stack
//! checks before a raw socket would see them); an invalid one is counted by reason in
//! DROPS and dropped. A valid one updates its peer's record in PEERS
//! (`haxdp_common::track_advert`: kernel timestamp, gaps, priority, interval, address
//! hash) and is pushed to EVENTS when the delivery contract (haxdp-common's crate
//! documentation) says so. A new source of an instance whose unknown-source room is
//! full takes the place of the instance's lowest-priority unknown record if its own
//! priority is higher (`evict_for`), and is dropped as `peers_full` otherwise. Valid adverts then continue (`XDP_PASS`) so tcpdump still
//! shows them; the daemon's send socket carries a drop-all filter so the stack
//! neither queues them nor answers unicast adverts with ICMP protocol-unreachable.
#![no_std]
#![no_main]
// BPF has atomic add/fetch-add and compare-and-swap (BPF_ATOMIC, -mcpu v3), but core's
// Atomic*::fetch_add is a compare-and-swap loop on this target, so the intrinsics are
// used: they map to BPF_ADD | BPF_FETCH and BPF_CMPXCHG directly.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{atomic_cxchg, atomic_xadd, AtomicOrdering};

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use aya_log_ebpf::info;
use haxdp_common::*;

/// The object's license, which the loader passes to the kernel with each program (the
/// kernel lets only GPL-compatible programs call GPL-only helpers). "GPL": the crate's
/// license is GPL-2.0-or-later, and it is what aya assumed while the section was missing.
#[no_mangle]
#[link_section = "license"]
pub static LICENSE: [u8; 4] = *b"GPL\0";

// Each map's symbol, which is its name in the object, is its static's name: `#[map]`
// without `name = "..."` (the macro takes only a string literal, so it cannot be given
// haxdp-common's constant). The check below fails the build when a static's name and
// the constant the loader looks up differ.
const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

macro_rules! map_names {
    ($($map:ident = $name:ident),* $(,)?) => {
        $(const _: () = assert!(same_str(stringify!($map), $name));)*
    };
}

map_names!(
    INSTANCES = MAP_INSTANCES,
    PEERS = MAP_PEERS,
    ROOM = MAP_ROOM,
    ALLOWED = MAP_ALLOWED,
    EVENTS = MAP_EVENTS,
    DROPS = MAP_DROPS,
    STATS = MAP_STATS,
    SEEN = MAP_SEEN,
    BY_VRID = MAP_BY_VRID,
);

#[map]
static INSTANCES: HashMap<InstanceKey, InstanceConf> =
    HashMap::with_max_entries(INSTANCES_MAX_ENTRIES, 0);

// What the program reads INSTANCES through: an array entry per (VRID, family).
#[map]
static BY_VRID: Array<VridInstances> = Array::with_max_entries(BY_VRID_MAX_ENTRIES, 0);

// Preallocated (flags 0) and not LRU: see `PEERS_MAX_ENTRIES` for why a full room
// refuses newcomers (only a higher-priority one takes the lowest-priority unknown
// record's place, never a protected one's), and how the room is shared out.
#[map]
static PEERS: HashMap<PeerKey, PeerState> = HashMap::with_max_entries(PEERS_MAX_ENTRIES, 0);

// Per-instance admission counters and unknown-record slots, written here only
// (atomic adds and compare-and-swaps, in place).
#[map]
static ROOM: HashMap<InstanceKey, InstanceRoom> =
    HashMap::with_max_entries(INSTANCES_MAX_ENTRIES, 0);

// Allowlisted sources (only consulted for instances with INSTANCE_F_ALLOWLIST).
// Written by user space only, so not preallocated (BPF_F_NO_PREALLOC).
#[map]
static ALLOWED: HashMap<PeerKey, u32> = HashMap::with_max_entries(ALLOWED_MAX_ENTRIES, 1);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTE_SIZE, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_REASON_COUNT, 0);

#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

// The newest advert time of each protected source, by `PeerState::seen` - 1: a copy
// of PEERS' `last_ns` that user space reads through mmap(2) without a system call.
// Indices are handed out by user space; this program only writes the times.
#[map]
static SEEN: Array<u64> = Array::with_max_entries(SEEN_MAX_ENTRIES, BPF_F_MMAPABLE);

// Not pinned: per-CPU parse buffer, see `scratch()`.
#[map]
static SCRATCH: PerCpuArray<AdvertEvent> = PerCpuArray::with_max_entries(1, 0);

const ETH_HLEN: usize = 14;
// EtherTypes, compared in wire order to save the byte swap.
const ETH_P_IP: u16 = 0x0800_u16.to_be();
const ETH_P_IPV6: u16 = 0x86DD_u16.to_be();
const IPPROTO_VRRP: u8 = 112;
const IPV4_MIN_HLEN: usize = 20;
const IPV4_MAX_HWORDS: usize = 15;
const IPV6_HLEN: usize = 40;
const VRRP_TYPE_ADVERTISEMENT: u8 = 1;
const MAX_VRRP_WORDS: usize = MAX_VRRP_LEN / 4;
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const EEXIST: i32 = 17;

/// Bytes the early exit reads: the EtherType (12..14), IPv6's Next Header (20) and
/// IPv4's Protocol (23).
const EARLY_LEN: usize = 24;

#[xdp]
pub fn haxdp(ctx: XdpContext) -> u32 {
    // The early exit, first on every packet: one bounds check, the EtherType and the
    // protocol byte compared in wire order, no stack and no callee-saved register
    // (the x86 JIT pushes only the ones a function uses, arch/x86/net/bpf_jit_comp.c
    // detect_reg_usage), so a non-VRRP frame costs a few instructions more than a bare
    // XDP_PASS. Anything else (a VRRP frame, or one too short for this check, whose
    // verdict `try_haxdp` gives as before) goes to the out-of-line path.
    let start = ctx.data();
    if start + EARLY_LEN <= ctx.data_end() {
        // SAFETY: the check above proved bytes 0..EARLY_LEN are in the packet; packet
        // data has no alignment guarantee, hence the unaligned read.
        let ethertype = unsafe { ((start + 12) as *const u16).read_unaligned() };
        let proto_at = if ethertype == ETH_P_IP {
            ETH_HLEN + 9
        } else if ethertype == ETH_P_IPV6 {
            ETH_HLEN + 6
        } else {
            return XDP_PASS;
        };
        // SAFETY: proto_at < EARLY_LEN, checked above.
        if unsafe { *((start + proto_at) as *const u8) } != IPPROTO_VRRP {
            return XDP_PASS;
        }
    }
    slow_path(ctx.ctx)
}

/// Everything but the early exit, as a BPF-to-BPF call so that its registers and stack
/// stay out of the early exit's prologue.
#[inline(never)]
fn slow_path(ctx: *mut aya_ebpf::bindings::xdp_md) -> u32 {
    match try_haxdp(&XdpContext::new(ctx)) {
        Ok(action) => action,
        Err(()) => aya_ebpf::bindings::xdp_action::XDP_ABORTED,
    }
}

/// Baseline for `cargo xtask bench-xdp`: the cost of running any XDP program.
#[xdp]
pub fn haxdp_bare_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// The one bounds check every packet read goes through: the verifier accepts a
/// packet access only after a comparison of `data + off + len` with `data_end`.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    // SAFETY: ptr_at proved `off..off + size_of::<T>()` lies inside the packet;
    // packet data has no alignment guarantee, hence the unaligned read.
    ptr_at::<T>(ctx, off).map(|p| unsafe { core::ptr::read_unaligned(p) })
}

#[inline(always)]
fn bump(map: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn drop_for(reason: DropReason) -> Result<u32, ()> {
    bump(&DROPS, reason.index());
    Ok(XDP_DROP)
}

fn try_haxdp(ctx: &XdpContext) -> Result<u32, ()> {
    // Fast path: at most two reads (EtherType, protocol) for a non-VRRP frame.
    // An 802.1Q/802.1ad tagged frame (EtherType 0x8100/0x88a8) is neither IPv4 nor
    // IPv6 here, so it passes untouched: it is an advert of the VLAN interface, not
    // of this one, and the VLAN interface's own receive path judges it.
    let Some(ethertype) = read::<u16>(ctx, 12) else {
        return Ok(XDP_PASS);
    };
    let l3 = ETH_HLEN;
    if ethertype == ETH_P_IP {
        match read::<u8>(ctx, l3 + 9) {
            Some(IPPROTO_VRRP) => advert_v4(ctx, l3),
            _ => Ok(XDP_PASS),
        }
    } else if ethertype == ETH_P_IPV6 {
        // Only a VRRP header right after the fixed IPv6 header is tracked;
        // extension headers are not used by VRRP senders.
        match read::<u8>(ctx, l3 + 6) {
            Some(IPPROTO_VRRP) => advert_v6(ctx, l3),
            _ => Ok(XDP_PASS),
        }
    } else {
        Ok(XDP_PASS)
    }
}

/// Where the VRRP message sits, as the IP layer tells the VRRP checks.
struct Ip {
    family: u8,
    /// Offset of the VRRP message from the start of the frame, and its length
    /// (from the IP header; the frame was checked to hold it).
    off: usize,
    len: usize,
    /// One's complement partial sum of the pseudo-header (RFC 9568 5.2.8), without
    /// the length, which is added once the message length is known to be right.
    pseudo: u64,
}

#[inline(always)]
fn be16_word(v: u16) -> u64 {
    // Packet words are summed as loaded (native order); build constant words the
    // same way so the sum is right on either endianness.
    u64::from(u16::from_ne_bytes(v.to_be_bytes()))
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// The per-CPU record an advert is parsed into; pushed to EVENTS as a whole when
/// something changed. Keeping it in a map instead of on the stack keeps the
/// program inside the verifier's 512-byte stack.
#[inline(always)]
fn scratch() -> Result<&'static mut AdvertEvent, ()> {
    // SAFETY: per-CPU slot; XDP runs with preemption off, so nothing else on this
    // CPU touches it while the program runs.
    SCRATCH.get_ptr_mut(0).map(|p| unsafe { &mut *p }).ok_or(())
}

#[inline(always)]
fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

fn advert_v4(ctx: &XdpContext, l3: usize) -> Result<u32, ()> {
    // The checks of ip_rcv_core() (net/ipv4/ip_input.c), in its order: the stack
    // drops such packets before a raw socket sees them, so the socket path never
    // accepts them either.
    let Some(hdr) = read::<[u8; IPV4_MIN_HLEN]>(ctx, l3) else {
        return drop_for(DropReason::Truncated);
    };
    let ihl_words = usize::from(hdr[0] & 0x0f);
    if hdr[0] >> 4 != 4 || ihl_words < 5 {
        return drop_for(DropReason::BadIpHeader);
    }
    let ihl = ihl_words * 4;
    if l3 + ihl > frame_len(ctx) {
        return drop_for(DropReason::Truncated);
    }
    // Header checksum over IHL words (options included; ip_fast_csum()).
    let Some(hsum) = ipv4_header_sum(ctx.ctx, l3, hdr[0]) else {
        return drop_for(DropReason::Truncated);
    };
    if fold(hsum) != 0xffff {
        return drop_for(DropReason::BadIpHeader);
    }
    let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if l3 + total > frame_len(ctx) {
        return drop_for(DropReason::Truncated);
    }
    if total < ihl {
        return drop_for(DropReason::BadIpHeader);
    }
    // VRRP adverts are never fragmented; a fragment cannot be checksummed here.
    if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
        return drop_for(DropReason::Fragment);
    }
    // RFC 9568 7.1: the TTL must be 255, so the advert cannot come from off-link.
    if hdr[8] != 255 {
        return drop_for(DropReason::BadTtl);
    }
    let len = total - ihl;
    let ev = scratch()?;
    ev.src = [0; 16];
    ev.dst = [0; 16];
    ev.src[..4].copy_from_slice(&hdr[12..16]);
    ev.dst[..4].copy_from_slice(&hdr[16..20]);
    let pseudo = word(&hdr, 12) + word(&hdr, 16) + be16_word(u16::from(IPPROTO_VRRP));
    advert(
        ctx,
        ev,
        Ip {
            family: FAMILY_V4,
            off: l3 + ihl,
            len,
            pseudo,
        },
    )
}

fn advert_v6(ctx: &XdpContext, l3: usize) -> Result<u32, ()> {
    // The checks of ipv6_rcv() (net/ipv6/ip6_input.c) before a raw socket sees it.
    let Some(hdr) = read::<[u8; IPV6_HLEN]>(ctx, l3) else {
        return drop_for(DropReason::Truncated);
    };
    if hdr[0] >> 4 != 6 {
        return drop_for(DropReason::BadIpHeader);
    }
    let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    if l3 + IPV6_HLEN + len > frame_len(ctx) {
        return drop_for(DropReason::Truncated);
    }
    // RFC 9568 7.1: the hop limit must be 255.
    if hdr[7] != 255 {
        return drop_for(DropReason::BadTtl);
    }
    let ev = scratch()?;
    ev.src.copy_from_slice(&hdr[8..24]);
    ev.dst.copy_from_slice(&hdr[24..40]);
    // The IPv6 pseudo-header (RFC 8200 8.1) carries a 32-bit length; VRRP lengths
    // fit in 16 bits, so its high word is zero.
    let mut pseudo = be16_word(u16::from(IPPROTO_VRRP));
    let mut i = 8;
    while i < 40 {
        pseudo += word(&hdr, i);
        i += 4;
    }
    advert(
        ctx,
        ev,
        Ip {
            family: FAMILY_V6,
            off: l3 + IPV6_HLEN,
            len,
            pseudo,
        },
    )
}

/// In: where the message is and its length in words, where its address list ends (in
/// words) and the checksum's start (the pseudo-header for VRRPv3); out: the sum and the
/// address-list hash.
struct MessagePass {
    off: usize,
    words: usize,
    addr_end: usize,
    sum: u64,
    hash: u64,
}

/// The one pass over the message: the checksum (VRRPv3 adds the pseudo-header, for
/// IPv4 too: RFC 9568 5.2.8, and keepalived computes it this way), the address-list
/// hash, and the copy of the addresses into the event record. The length is a
/// multiple of 4 (8 + 4n or 16n, + 8), so whole words cover it. False if the frame
/// is shorter than the message.
///
/// A BPF-to-BPF call of its own, for the verifier: it walks the loop once per
/// possible length (up to MAX_VRRP_WORDS exits), and at the return each of those
/// states differs from the others only in this function's frame, which is gone, and
/// in r0, so the first return explores the rest of the program and the others are
/// pruned at the caller's next checkpoint (kernel/bpf/verifier.c is_state_visited).
/// Inlined, the exits kept packet pointers with as many ranges alive, and the whole
/// rest of the program was walked again for each.
#[inline(never)]
fn message_pass(
    ctx: *mut aya_ebpf::bindings::xdp_md,
    ev: &mut AdvertEvent,
    p: &mut MessagePass,
) -> bool {
    let ctx = XdpContext::new(ctx);
    let (words, addr_end) = (p.words, p.addr_end);
    let (mut sum, mut hash) = (p.sum, p.hash);
    let out = ev.addrs.as_mut_ptr() as *mut u32;
    let mut i = 0;
    while i < MAX_VRRP_WORDS {
        if i >= words {
            break;
        }
        let Some(w) = read::<u32>(&ctx, p.off + i * 4) else {
            return false;
        };
        sum += u64::from(w);
        // Branch-free "2 <= i < addr_end": the verifier walks every iteration,
        // and a branch here would double the states it keeps per iteration.
        let in_addrs = ((1i64.wrapping_sub(i as i64)) >> 63)
            & ((i as i64).wrapping_sub(addr_end as i64) >> 63);
        let m = in_addrs as u64;
        let next = (hash ^ u64::from(w)).wrapping_mul(FNV_PRIME);
        hash = (next & m) | (hash & !m);
        // Index (i - 2) mod 64: the words before and after the list write zeros.
        // SAFETY: the mask keeps the index inside the MAX_ADDR_BYTES / 4 words.
        unsafe {
            out.add(i.wrapping_sub(2) & (MAX_ADDR_BYTES / 4 - 1))
                .write_unaligned(w & (m as u32))
        };
        i += 1;
    }
    p.sum = sum;
    p.hash = hash;
    true
}

/// The sum of the words of the IPv4 header at `l3` whose first byte is `ver_ihl`, None
/// if the frame is shorter. Out of line for the verifier, as `message_pass` is: its up
/// to IPV4_MAX_HWORDS exits meet again at the return. The word count is worked out here
/// from the byte, not passed in: the loop's comparisons narrow it to one value per
/// exit, and the verifier carries that narrowing to every register holding the same
/// value (kernel/bpf/verifier.c sync_linked_regs), so a caller's copy would keep the
/// exits apart.
#[inline(never)]
fn ipv4_header_sum(ctx: *mut aya_ebpf::bindings::xdp_md, l3: usize, ver_ihl: u8) -> Option<u64> {
    let ctx = XdpContext::new(ctx);
    let ihl_words = usize::from(ver_ihl & 0x0f);
    let mut hsum: u64 = 0;
    let mut i = 0;
    while i < IPV4_MAX_HWORDS {
        if i >= ihl_words {
            break;
        }
        hsum += u64::from(read::<u32>(&ctx, l3 + i * 4)?);
        i += 1;
    }
    Some(hsum)
}

#[inline(always)]
fn fold(mut sum: u64) -> u64 {
    // Four folds bring any 64-bit sum below 2^16.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}

fn advert(ctx: &XdpContext, ev: &mut AdvertEvent, ip: Ip) -> Result<u32, ()> {
    // The VRRP message checks, in haxdp_vrrp::decode's order (DropReason 7-15).
    if ip.len < VRRP_HEADER_LEN {
        return drop_for(DropReason::BadLength);
    }
    let Some(vrrp) = read::<[u8; VRRP_HEADER_LEN]>(ctx, ip.off) else {
        return drop_for(DropReason::Truncated);
    };
    let version = vrrp[0] >> 4;
    if version != 3 && version != 2 {
        return drop_for(DropReason::BadVersion);
    }
    if vrrp[0] & 0x0f != VRRP_TYPE_ADVERTISEMENT {
        return drop_for(DropReason::BadType);
    }
    // VRRPv2 exists only for IPv4 (RFC 3768).
    if version == 2 && ip.family != FAMILY_V4 {
        return drop_for(DropReason::BadVersion);
    }
    let vrid = vrrp[1];
    let priority = vrrp[2];
    let naddrs = vrrp[3];
    let addr_size = if ip.family == FAMILY_V6 { 16 } else { 4 };
    let addr_bytes = usize::from(naddrs) * addr_size;
    if addr_bytes > MAX_ADDR_BYTES {
        return drop_for(DropReason::TooManyAddrs);
    }
    let auth_len = if version == 2 { VRRP_V2_AUTH_LEN } else { 0 };
    // RFC 9568 7.1: the message holds the header and `Count IPvX Addr` addresses
    // (and, RFC 3768 5.1, 8 bytes of authentication data), and nothing else: an
    // advert with trailing bytes is refused, as decode() and keepalived refuse it.
    if ip.len != VRRP_HEADER_LEN + addr_bytes + auth_len {
        return drop_for(DropReason::BadLength);
    }

    // One pass over the message (`message_pass`): checksum, address hash, copy.
    let mut pass = MessagePass {
        off: ip.off,
        words: ip.len / 4,
        addr_end: 2 + addr_bytes / 4,
        sum: if version == 3 {
            ip.pseudo + be16_word(ip.len as u16)
        } else {
            0
        },
        hash: FNV_OFFSET,
    };
    if !message_pass(ctx.ctx, ev, &mut pass) {
        return drop_for(DropReason::Truncated);
    }
    let MessagePass { sum, hash, .. } = pass;
    // A correct sum folds to all ones. decode() compares the carried field with the
    // complement of the sum of the rest, which can never be 0xffff (that needs an
    // all-zero message), while the folded test would also take 0xffff where 0x0000
    // is right (one's complement has two zeros): refuse 0xffff as decode() does.
    if fold(sum) != 0xffff || u16::from_ne_bytes([vrrp[6], vrrp[7]]) == 0xffff {
        return drop_for(DropReason::BadChecksum);
    }
    let interval_cs = if version == 2 {
        // RFC 3768 5.3.6: 0 none, 1 PASS; 2 (IP AH) is not carried by protocol 112.
        if vrrp[4] > AUTH_PASS {
            return drop_for(DropReason::BadAuthType);
        }
        // RFC 3768 5.3.7: VRRPv2 counts whole seconds.
        u16::from(vrrp[5]) * 100
    } else {
        // RFC 9568 5.2.7: 12-bit Max Advert Interval in centiseconds.
        u16::from_be_bytes([vrrp[4], vrrp[5]]) & 0x0fff
    };
    if interval_cs == 0 {
        return drop_for(DropReason::ZeroInterval);
    }

    let ifindex = ctx.ingress_ifindex() as u32;
    let ikey = InstanceKey {
        ifindex,
        vrid,
        family: ip.family,
        _pad: [0; 2],
    };
    let Some(conf) = instance_conf(&ikey) else {
        return drop_for(DropReason::VridNotWatched);
    };
    if conf.versions_mask & (1 << version) == 0 {
        return drop_for(DropReason::VersionMismatch);
    }
    if version == 2 {
        // RFC 3768 7.1: the auth type must be ours, and PASS data must match.
        if vrrp[4] != conf.auth_type {
            return drop_for(DropReason::AuthMismatch);
        }
        if conf.auth_type == AUTH_PASS {
            // RFC 3768 5.3.10: 8 bytes of password after the address list.
            let Some(pass) = read::<[u8; 8]>(ctx, ip.off + VRRP_HEADER_LEN + addr_bytes) else {
                return drop_for(DropReason::Truncated);
            };
            if u64::from_ne_bytes(pass) != u64::from_ne_bytes(conf.auth_pass) {
                return drop_for(DropReason::AuthMismatch);
            }
        }
    }

    let mut pkey = PeerKey {
        ifindex,
        family: ip.family,
        vrid,
        _pad: [0; 2],
        addr: [0; 16],
    };
    pkey.addr = ev.src;
    // keepalived's check_unicast_src (vrrp.c vrrp_check_packet): only listed sources.
    // SAFETY: only the presence of the key is used.
    if conf.flags & INSTANCE_F_ALLOWLIST != 0 && unsafe { ALLOWED.get(&pkey) }.is_none() {
        return drop_for(DropReason::SourceNotAllowed);
    }

    // SAFETY: kernel helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(peer) = peer_record(&pkey, &ikey, &conf, priority) else {
        return drop_for(DropReason::PeersFull);
    };
    // Updates from two CPUs for the same peer may interleave; a peer sends one
    // advert per interval, so at worst one gap sample is off.
    // SAFETY: map value pointer, valid for this program run.
    let st = unsafe { &mut *peer };
    let obs = Observed {
        now_ns: now,
        addr_hash: hash,
        priority,
        version,
        interval_cs,
        naddrs,
    };
    let change = track_advert(st, &obs, conf.report_epoch);
    if st.seen != 0 {
        // An aligned 8-byte store: a reader on another CPU sees the old or the new
        // time, never a mix (the array's values live in the mmap-able pages).
        if let Some(p) = SEEN.get_ptr_mut(u32::from(st.seen) - 1) {
            // SAFETY: map value pointer, valid for this program run.
            unsafe { *p = now };
        }
    }
    // An unknown source's slot carries its current priority (the eviction order);
    // one without a slot (unprotected by user space, or one that lost a race for a
    // slot) gets one. Neither happens to an unchanged advert of a slotted source.
    if st.flags & PEER_F_PROTECTED == 0 && (st.slot == 0 || change & CHANGE_PRIORITY != 0) {
        slot_track(&pkey, &ikey, st, priority);
    }
    bump(&STATS, STAT_VALID);
    if change != 0 {
        if change & CHANGE_NEW_PEER != 0 {
            info!(
                ctx,
                "haxdp: new VRRP peer for VRID {} on ifindex {}", vrid, ifindex
            );
        }
        ev.ktime_ns = now;
        ev.prev_ns = if change & CHANGE_NEW_PEER != 0 {
            0
        } else {
            st.prev_ns
        };
        ev.ifindex = ifindex;
        ev.change = change;
        ev.interval_cs = interval_cs;
        ev.family = ip.family;
        ev.vrid = vrid;
        ev.version = version;
        ev.priority = priority;
        ev.naddrs = naddrs;
        ev._pad = [0; 3];
        if EVENTS.output::<AdvertEvent>(&*ev, 0).is_ok() {
            bump(&STATS, STAT_EVENTS);
        } else {
            // Keep the change so the peer's next advert delivers it (contract 3.).
            st.pending_change = change;
            bump(&STATS, STAT_EVENTS_LOST);
        }
    }
    Ok(XDP_PASS)
}

/// The instance's INSTANCES value, found through BY_VRID: the (VRID, family) entry's
/// ways by interface, then INSTANCES itself only if that entry overflowed.
#[inline(always)]
fn instance_conf(ikey: &InstanceKey) -> Option<InstanceConf> {
    let set = BY_VRID.get(by_vrid_index(ikey.vrid, ikey.family))?;
    let mut i = 0;
    while i < BY_VRID_WAYS {
        // The value is copied out at once; the daemon may update it concurrently but
        // a torn way only fails one advert's checks.
        if set.ways[i].ifindex == ikey.ifindex {
            return Some(set.ways[i].conf);
        }
        i += 1;
    }
    if set.overflow == 0 {
        return None;
    }
    // SAFETY: as above, copied out at once.
    unsafe { INSTANCES.get(ikey) }.copied()
}

// SeqCst, not Relaxed: LLVM 22's BPF backend lowers a monotonic atomicrmw add
// to the legacy BPF_XADD (no BPF_FETCH) even when the old value is used, and
// then reads the addend back as if it were the old value (seen in the object
// with llvm-objdump). SeqCst gets BPF_ATOMIC | BPF_ADD | BPF_FETCH.
#[inline(always)]
fn add(p: *mut u64, v: u64) -> u64 {
    // SAFETY: callers pass a pointer into a ROOM value, valid for this program run.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(p, v) }
}

/// BPF_ATOMIC | BPF_CMPXCHG: true if `*p` was `old` and is now `new`.
#[inline(always)]
fn cas(p: *mut u64, old: u64, new: u64) -> bool {
    // SAFETY: callers pass a pointer into a ROOM value, valid for this program run.
    unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(p, old, new)
    }
    .1
}

const UNKNOWN_SLOTS: usize = PEERS_UNKNOWN_PER_INSTANCE as usize;
const _: () = assert!(UNKNOWN_SLOTS.is_power_of_two());

#[inline(always)]
fn slot_ptr(room: *mut InstanceRoom, i: usize) -> *mut RoomSlot {
    // SAFETY: the mask keeps the index inside the PEERS_UNKNOWN_PER_INSTANCE slots
    // (a power of two), which the verifier sees as a bounded offset.
    unsafe {
        core::ptr::addr_of_mut!((*room).slots)
            .cast::<RoomSlot>()
            .add(i & (UNKNOWN_SLOTS - 1))
    }
}

/// A slot's claim word (see `RoomSlot::claims`): even while nobody writes the slot.
#[inline(always)]
fn claims_of(slot: *mut RoomSlot) -> *mut u64 {
    // SAFETY: `slot` points into a ROOM value.
    unsafe { core::ptr::addr_of_mut!((*slot).claims) }
}

/// Takes the slot for writing if its claim word is still the even `seen`.
#[inline(always)]
fn claim(slot: *mut RoomSlot, seen: u64) -> bool {
    seen & 1 == 0 && cas(claims_of(slot), seen, seen.wrapping_add(1))
}

/// Ends a `claim`: the claim word is even again, one claim later.
#[inline(always)]
fn unclaim(slot: *mut RoomSlot) {
    add(claims_of(slot), 1);
}

#[inline(always)]
fn read_claims(slot: *mut RoomSlot) -> u64 {
    // SAFETY: `slot` points into a ROOM value.
    unsafe { core::ptr::read_volatile(claims_of(slot)) }
}

/// The slot's address as two words (no memcmp/memcpy on this target). A torn read
/// names no record of this slot, so it reads as stale.
#[inline(always)]
fn slot_addr(slot: *const RoomSlot) -> [u64; 2] {
    // SAFETY: `slot` points into a ROOM value; `addr` is 8-byte aligned in it.
    unsafe {
        let a = core::ptr::addr_of!((*slot).addr).cast::<u64>();
        [
            core::ptr::read_volatile(a),
            core::ptr::read_volatile(a.add(1)),
        ]
    }
}

#[inline(always)]
fn addr_words(addr: &[u8; 16]) -> [u64; 2] {
    // SAFETY: 16 readable bytes; the target allows misaligned loads.
    unsafe {
        let a = addr.as_ptr().cast::<u64>();
        [a.read_unaligned(), a.add(1).read_unaligned()]
    }
}

#[inline(always)]
fn set_slot(slot: *mut RoomSlot, addr: &[u8; 16], priority: u8) {
    let w = addr_words(addr);
    // SAFETY: `slot` points into a ROOM value and this CPU holds its claim.
    unsafe {
        let a = core::ptr::addr_of_mut!((*slot).addr).cast::<u64>();
        a.write_volatile(w[0]);
        a.add(1).write_volatile(w[1]);
        (*slot).priority = priority;
    }
}

#[inline(always)]
fn slot_key(ikey: &InstanceKey, slot: *const RoomSlot) -> PeerKey {
    let w = slot_addr(slot);
    let mut addr = [0u8; 16];
    addr[..8].copy_from_slice(&w[0].to_ne_bytes());
    addr[8..].copy_from_slice(&w[1].to_ne_bytes());
    PeerKey {
        ifindex: ikey.ifindex,
        family: ikey.family,
        vrid: ikey.vrid,
        _pad: [0; 2],
        addr,
    }
}

/// The record a slot names, if the slot is live (see `RoomSlot`).
#[inline(always)]
fn slot_owner(key: &PeerKey, i: usize) -> Option<*mut PeerState> {
    let p = PEERS.get_ptr_mut(key)?;
    // SAFETY: map value pointer, valid for this program run.
    let st = unsafe { &*p };
    if st.flags & PEER_F_PROTECTED != 0 || usize::from(st.slot) != i + 1 {
        return None;
    }
    Some(p)
}

// The slot helpers are inlined like `peer_record`: as separate BPF functions LLVM
// passed the 4-byte aligned InstanceKey as one 8-byte stack load (the target allows
// misaligned access), which the verifier refuses ("misaligned stack access").

/// Records the new priority of the unprotected record `st` of `pkey` in its slot,
/// or gives it a stale slot of its instance if it has none (and there is one).
#[inline(always)]
fn slot_track(pkey: &PeerKey, ikey: &InstanceKey, st: &mut PeerState, priority: u8) {
    let Some(room) = ROOM.get_ptr_mut(ikey) else {
        return;
    };
    let me = addr_words(&pkey.addr);
    if st.slot != 0 {
        let slot = slot_ptr(room, usize::from(st.slot) - 1);
        if slot_addr(slot) == me {
            // SAFETY: `slot` points into the ROOM value above.
            unsafe { (*slot).priority = priority };
            return;
        }
        // Another CPU took the slot (a race for it): find another.
        st.slot = 0;
    }
    let mut i = 0;
    while i < UNKNOWN_SLOTS {
        let slot = slot_ptr(room, i);
        let seen = read_claims(slot);
        if seen & 1 == 0 && slot_owner(&slot_key(ikey, slot), i).is_none() && claim(slot, seen) {
            set_slot(slot, &pkey.addr, priority);
            st.slot = (i + 1) as u8;
            unclaim(slot);
            return;
        }
        i += 1;
    }
}

/// The source's PEERS record, created if it has none and its instance has room
/// (see `PEERS_MAX_ENTRIES`), or in the place of the instance's lowest-priority
/// unknown record when the room is full and `priority` is higher; `None` when
/// refused (counted in the instance's ROOM).
#[inline(always)]
fn peer_record(
    pkey: &PeerKey,
    ikey: &InstanceKey,
    conf: &InstanceConf,
    priority: u8,
) -> Option<*mut PeerState> {
    if let Some(p) = PEERS.get_ptr_mut(pkey) {
        return Some(p);
    }
    new_peer_record(pkey, ikey, conf, priority)
}

#[inline(always)]
fn new_peer_record(
    pkey: &PeerKey,
    ikey: &InstanceKey,
    conf: &InstanceConf,
    priority: u8,
) -> Option<*mut PeerState> {
    let room = ROOM.get_ptr_mut(ikey)?;
    // SAFETY: map value pointer, valid for this program run; the counters are only
    // ever changed with atomic adds (BPF_ATOMIC | BPF_ADD, with BPF_FETCH here).
    let admitted = unsafe { core::ptr::addr_of_mut!((*room).admitted) };
    let refused = unsafe { core::ptr::addr_of_mut!((*room).refused) };
    let before = add(admitted, 1);
    if before.wrapping_sub(conf.peers_released) >= u64::from(PEERS_UNKNOWN_PER_INSTANCE) {
        add(admitted, u64::MAX); // -1
        let p = evict_for(pkey, ikey, room, priority);
        if p.is_none() {
            add(refused, 1);
        }
        return p;
    }
    // BPF_NOEXIST: never overwrite a record another CPU just created.
    match PEERS.insert(pkey, &fresh_peer(0), 1) {
        Ok(()) => {}
        Err(e) => {
            add(admitted, u64::MAX); // -1
            if e != -EEXIST {
                add(refused, 1);
                return None;
            }
        }
    }
    // None only if the daemon pruned it in between: counted as full too. The
    // slot is given after the advert is tracked (`slot_track`, as `slot` is 0).
    PEERS.get_ptr_mut(pkey)
}

/// Priority-aware admission to a full room: the unknown record with the lowest
/// priority makes way for `pkey` if `priority` is higher (never a protected record,
/// never for priority 0, never on a tie), and the room stays as full as it was.
#[inline(always)]
fn evict_for(
    pkey: &PeerKey,
    ikey: &InstanceKey,
    room: *mut InstanceRoom,
    priority: u8,
) -> Option<*mut PeerState> {
    if priority == 0 {
        return None;
    }
    // The lowest priority in the slots, without PEERS lookups: a flood of sources
    // that are no better than the room's worst costs eight byte reads each.
    let mut low = 0;
    let mut low_prio = u8::MAX;
    let mut i = 0;
    while i < UNKNOWN_SLOTS {
        // SAFETY: slot_ptr points into the ROOM value.
        let p =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*slot_ptr(room, i)).priority)) };
        if p < low_prio {
            low_prio = p;
            low = i;
        }
        i += 1;
    }
    if low_prio >= priority {
        return None;
    }
    let slot = slot_ptr(room, low);
    let seen = read_claims(slot);
    if seen & 1 != 0 {
        return None; // another CPU is writing this slot
    }
    // The slot must be live and its record (the truth) lower too. A stale slot in a
    // full room is a record being pruned, or an unprotected record without a slot:
    // refused, it resolves itself.
    let vkey = slot_key(ikey, slot);
    let victim = slot_owner(&vkey, low)?;
    // SAFETY: map value pointer, valid for this program run.
    if unsafe { (*victim).priority } >= priority || !claim(slot, seen) {
        return None;
    }
    let p = replace(pkey, &vkey, room, slot, low, priority);
    unclaim(slot);
    p
}

/// `evict_for` with the slot claimed: `vkey` out, `pkey` in.
#[inline(always)]
fn replace(
    pkey: &PeerKey,
    vkey: &PeerKey,
    room: *mut InstanceRoom,
    slot: *mut RoomSlot,
    index: usize,
    priority: u8,
) -> Option<*mut PeerState> {
    // Only the CPU whose delete succeeds has made room: one record out, one in. A
    // record the daemon pruned in between is not room (its release is on its way).
    if PEERS.remove(vkey).is_err() {
        return None;
    }
    // SAFETY: ROOM value pointer, valid for this program run.
    add(unsafe { core::ptr::addr_of_mut!((*room).evicted) }, 1);
    let mut fresh = fresh_peer(0);
    fresh.slot = (index + 1) as u8;
    if let Err(e) = PEERS.insert(pkey, &fresh, 1) {
        // One unknown record fewer and none more.
        // SAFETY: as above.
        add(
            unsafe { core::ptr::addr_of_mut!((*room).admitted) },
            u64::MAX,
        );
        if e != -EEXIST {
            return None;
        }
        // Another CPU created it meanwhile: use that record (it finds a slot).
        return PEERS.get_ptr_mut(pkey);
    }
    set_slot(slot, &pkey.addr, priority);
    PEERS.get_ptr_mut(pkey)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
