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
//! documentation) says so. Valid adverts then continue (`XDP_PASS`) so tcpdump still
//! shows them; the daemon's send socket carries a drop-all filter so the stack
//! neither queues them nor answers unicast adverts with ICMP protocol-unreachable.
#![no_std]
#![no_main]
// BPF has atomic add/fetch-add (BPF_ATOMIC, -mcpu v3) but no compare-and-swap loop
// that core's Atomic*::fetch_add needs on this target, so the intrinsic is used.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use aya_log_ebpf::info;
use haxdp_common::*;

#[map(name = "INSTANCES")]
static INSTANCES: HashMap<InstanceKey, InstanceConf> =
    HashMap::with_max_entries(INSTANCES_MAX_ENTRIES, 0);

// Preallocated (flags 0) and not LRU: see `PEERS_MAX_ENTRIES` for why a full room
// refuses newcomers instead of evicting, and how the room is shared out.
#[map(name = "PEERS")]
static PEERS: HashMap<PeerKey, PeerState> = HashMap::with_max_entries(PEERS_MAX_ENTRIES, 0);

// Per-instance admission counters, written here only (atomic adds).
#[map(name = "ROOM")]
static ROOM: HashMap<InstanceKey, InstanceRoom> =
    HashMap::with_max_entries(INSTANCES_MAX_ENTRIES, 0);

// Allowlisted sources (only consulted for instances with INSTANCE_F_ALLOWLIST).
// Written by user space only, so not preallocated (BPF_F_NO_PREALLOC).
#[map(name = "ALLOWED")]
static ALLOWED: HashMap<PeerKey, u32> = HashMap::with_max_entries(ALLOWED_MAX_ENTRIES, 1);

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTE_SIZE, 0);

#[map(name = "DROPS")]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_REASON_COUNT, 0);

#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

// Not pinned: per-CPU parse buffer, see `scratch()`.
#[map(name = "SCRATCH")]
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

#[xdp]
pub fn haxdp(ctx: XdpContext) -> u32 {
    match try_haxdp(&ctx) {
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
    let mut hsum: u64 = 0;
    let mut i = 0;
    while i < IPV4_MAX_HWORDS {
        if i >= ihl_words {
            break;
        }
        let Some(w) = read::<u32>(ctx, l3 + i * 4) else {
            return drop_for(DropReason::Truncated);
        };
        hsum += u64::from(w);
        i += 1;
    }
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

    // One pass over the message: the checksum (VRRPv3 adds the pseudo-header,
    // for IPv4 too: RFC 9568 5.2.8, and keepalived computes it this way), the
    // address-list hash, and the copy of the addresses into the event record.
    // The length is now a multiple of 4 (8 + 4n or 16n, + 8), so whole words cover it.
    let mut sum = if version == 3 {
        ip.pseudo + be16_word(ip.len as u16)
    } else {
        0
    };
    let mut hash = FNV_OFFSET;
    let words = ip.len / 4;
    let addr_end = 2 + addr_bytes / 4;
    let out = ev.addrs.as_mut_ptr() as *mut u32;
    let mut i = 0;
    while i < MAX_VRRP_WORDS {
        if i >= words {
            break;
        }
        let Some(w) = read::<u32>(ctx, ip.off + i * 4) else {
            return drop_for(DropReason::Truncated);
        };
        sum += u64::from(w);
        // Branch-free "2 <= i < addr_end": the verifier walks every iteration,
        // and a branch here would double the states it keeps per iteration.
        let in_addrs = ((1i64.wrapping_sub(i as i64)) >> 63)
            & ((i as i64).wrapping_sub(addr_end as i64) >> 63);
        let m = in_addrs as u64;
        let next = (hash ^ u64::from(w)).wrapping_mul(FNV_PRIME);
        hash = (next & m) | (hash & !m);
        // Index (i - 2) mod 64: words before and after the list write zeros,
        // which leaves the unused tail of `addrs` zeroed.
        // SAFETY: the mask keeps the index inside the MAX_ADDR_BYTES / 4 words.
        unsafe {
            out.add(i.wrapping_sub(2) & (MAX_ADDR_BYTES / 4 - 1))
                .write_unaligned(w & (m as u32))
        };
        i += 1;
    }
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
    // SAFETY: the value is copied out at once; the daemon may update it concurrently
    // but a torn InstanceConf only fails one advert's auth check.
    let Some(conf) = (unsafe { INSTANCES.get(&ikey) }).copied() else {
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
    let Some(peer) = peer_record(&pkey, &ikey, &conf) else {
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

/// The source's PEERS record, created if it has none and its instance has room
/// (see `PEERS_MAX_ENTRIES`); `None` when refused (counted in the instance's ROOM).
#[inline(always)]
fn peer_record(pkey: &PeerKey, ikey: &InstanceKey, conf: &InstanceConf) -> Option<*mut PeerState> {
    if let Some(p) = PEERS.get_ptr_mut(pkey) {
        return Some(p);
    }
    let room = ROOM.get_ptr_mut(ikey)?;
    // SAFETY: map value pointer, valid for this program run; the fields are only
    // ever changed with atomic adds (BPF_ATOMIC | BPF_ADD, with BPF_FETCH here).
    let admitted = unsafe { core::ptr::addr_of_mut!((*room).admitted) };
    let refused = unsafe { core::ptr::addr_of_mut!((*room).refused) };
    // SeqCst, not Relaxed: LLVM 22's BPF backend lowers a monotonic atomicrmw add
    // to the legacy BPF_XADD (no BPF_FETCH) even when the old value is used, and
    // then reads the addend back as if it were the old value (seen in the object
    // with llvm-objdump). SeqCst gets BPF_ATOMIC | BPF_ADD | BPF_FETCH.
    let add = |p: *mut u64, v: u64| -> u64 {
        // SAFETY: `p` points into the ROOM value above.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(p, v) }
    };
    let before = add(admitted, 1);
    if before.wrapping_sub(conf.peers_released) >= u64::from(PEERS_UNKNOWN_PER_INSTANCE) {
        add(admitted, u64::MAX); // -1
        add(refused, 1);
        return None;
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
    // None only if the daemon pruned it in between: counted as full too.
    PEERS.get_ptr_mut(pkey)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
