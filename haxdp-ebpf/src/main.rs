//! The XDP advert tracker.
//!
//! Sees every packet of the interface. Anything that is not IP protocol / next
//! header 112 (VRRP) leaves with `XDP_PASS` after reading the EtherType and the
//! protocol byte. VRRP adverts get the receiver checks of RFC 9568 7.1; an invalid
//! one is counted by reason in DROPS and dropped. A valid one updates its peer's
//! record in PEERS (kernel timestamp, gaps, priority, interval, address hash) and
//! is pushed to EVENTS only when something the election cares about changed. Valid
//! adverts then continue (`XDP_PASS`) so tcpdump still shows them; the daemon's
//! send socket carries a drop-all filter so the stack neither queues them nor
//! answers unicast adverts with ICMP protocol-unreachable.
#![no_std]
#![no_main]

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

// Preallocated (flags 0) and not LRU: see `PEERS_MAX_ENTRIES` for why a full map
// refuses newcomers instead of evicting.
#[map(name = "PEERS")]
static PEERS: HashMap<PeerKey, PeerState> = HashMap::with_max_entries(PEERS_MAX_ENTRIES, 0);

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
const VLAN_HLEN: usize = 4;
// EtherTypes, compared in wire order to save the byte swap.
const ETH_P_IP: u16 = 0x0800_u16.to_be();
const ETH_P_IPV6: u16 = 0x86DD_u16.to_be();
const ETH_P_8021Q: u16 = 0x8100_u16.to_be();
const ETH_P_8021AD: u16 = 0x88A8_u16.to_be();
const IPPROTO_VRRP: u8 = 112;
const IPV4_MIN_HLEN: usize = 20;
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
fn drop_for(reason: u32) -> Result<u32, ()> {
    bump(&DROPS, reason);
    Ok(XDP_DROP)
}

fn try_haxdp(ctx: &XdpContext) -> Result<u32, ()> {
    // Fast path: at most two reads (EtherType, protocol) for a non-VRRP frame.
    let Some(mut ethertype) = read::<u16>(ctx, 12) else {
        return Ok(XDP_PASS);
    };
    let mut l3 = ETH_HLEN;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let Some(inner) = read::<u16>(ctx, 16) else {
            return Ok(XDP_PASS);
        };
        ethertype = inner;
        l3 += VLAN_HLEN;
    }
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
    /// Offset of the VRRP message from the start of the frame, and its length.
    off: usize,
    len: usize,
    /// One's complement partial sum of the pseudo-header (RFC 9568 5.2.8).
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

fn advert_v4(ctx: &XdpContext, l3: usize) -> Result<u32, ()> {
    let Some(hdr) = read::<[u8; IPV4_MIN_HLEN]>(ctx, l3) else {
        return drop_for(DROP_TRUNCATED);
    };
    // RFC 9568 7.1: the TTL must be 255, so the advert cannot come from off-link.
    if hdr[8] != 255 {
        return drop_for(DROP_BAD_TTL);
    }
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if ihl < IPV4_MIN_HLEN {
        return drop_for(DROP_BAD_LENGTH);
    }
    // VRRP adverts are never fragmented; a fragment cannot be checksummed here.
    if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
        return drop_for(DROP_FRAGMENT);
    }
    let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if total < ihl + VRRP_HEADER_LEN {
        return drop_for(DROP_BAD_LENGTH);
    }
    let len = total - ihl;
    let ev = scratch()?;
    ev.src = [0; 16];
    ev.dst = [0; 16];
    ev.src[..4].copy_from_slice(&hdr[12..16]);
    ev.dst[..4].copy_from_slice(&hdr[16..20]);
    let pseudo = word(&hdr, 12)
        + word(&hdr, 16)
        + be16_word(u16::from(IPPROTO_VRRP))
        + be16_word(len as u16);
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
    let Some(hdr) = read::<[u8; IPV6_HLEN]>(ctx, l3) else {
        return drop_for(DROP_TRUNCATED);
    };
    // RFC 9568 7.1: the hop limit must be 255.
    if hdr[7] != 255 {
        return drop_for(DROP_BAD_TTL);
    }
    let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    if len < VRRP_HEADER_LEN {
        return drop_for(DROP_BAD_LENGTH);
    }
    let ev = scratch()?;
    ev.src.copy_from_slice(&hdr[8..24]);
    ev.dst.copy_from_slice(&hdr[24..40]);
    // The IPv6 pseudo-header (RFC 8200 8.1) carries a 32-bit length; VRRP lengths
    // fit in 16 bits, so its high word is zero.
    let mut pseudo = be16_word(u16::from(IPPROTO_VRRP)) + be16_word(len as u16);
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
    // The advert must be whole inside the frame (RFC 9568 7.1 "complete VRRP packet").
    if ptr_at::<[u8; 1]>(ctx, ip.off + ip.len - 1).is_none() {
        return drop_for(DROP_TRUNCATED);
    }
    let Some(vrrp) = read::<[u8; VRRP_HEADER_LEN]>(ctx, ip.off) else {
        return drop_for(DROP_TRUNCATED);
    };
    let version = vrrp[0] >> 4;
    // VRRPv2 exists only for IPv4 (RFC 3768).
    if !(version == 3 || (version == 2 && ip.family == FAMILY_V4)) {
        return drop_for(DROP_BAD_VERSION);
    }
    if vrrp[0] & 0x0f != VRRP_TYPE_ADVERTISEMENT {
        return drop_for(DROP_BAD_TYPE);
    }
    let vrid = vrrp[1];
    let priority = vrrp[2];
    let naddrs = vrrp[3];
    let addr_size = if ip.family == FAMILY_V6 { 16 } else { 4 };
    let addr_bytes = usize::from(naddrs) * addr_size;
    if addr_bytes > MAX_ADDR_BYTES {
        return drop_for(DROP_TOO_MANY_ADDRS);
    }
    let auth_len = if version == 2 { VRRP_V2_AUTH_LEN } else { 0 };
    // RFC 9568 7.1: the length must hold the header and `Count IPvX Addr` addresses.
    if ip.len < VRRP_HEADER_LEN + addr_bytes + auth_len || ip.len > MAX_VRRP_LEN {
        return drop_for(DROP_BAD_LENGTH);
    }

    // One pass over the message: the checksum (VRRPv3 adds the pseudo-header,
    // for IPv4 too: RFC 9568 5.2.8, and keepalived computes it this way), the
    // address-list hash, and the copy of the addresses into the event record.
    let mut sum = if version == 3 { ip.pseudo } else { 0 };
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
            return drop_for(DROP_TRUNCATED);
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
    let tail = ip.off + words * 4;
    if ip.len & 2 != 0 {
        let Some(w) = read::<u16>(ctx, tail) else {
            return drop_for(DROP_TRUNCATED);
        };
        sum += u64::from(w);
    }
    if ip.len & 1 != 0 {
        let Some(b) = read::<u8>(ctx, tail + (ip.len & 2)) else {
            return drop_for(DROP_TRUNCATED);
        };
        sum += u64::from(u16::from_ne_bytes([b, 0]));
    }
    if fold(sum) != 0xffff {
        return drop_for(DROP_BAD_CHECKSUM);
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
        return drop_for(DROP_VRID_NOT_WATCHED);
    };
    if conf.versions_mask & (1 << version) == 0 {
        return drop_for(DROP_VERSION_MISMATCH);
    }
    let interval_cs = if version == 2 {
        // RFC 3768 5.3.6: byte 4 is the auth type, which must match ours.
        if vrrp[4] != conf.auth_type {
            return drop_for(DROP_AUTH_MISMATCH);
        }
        if conf.auth_type == AUTH_PASS {
            // RFC 3768 5.3.10: 8 bytes of password after the address list.
            let Some(pass) = read::<[u8; 8]>(ctx, ip.off + VRRP_HEADER_LEN + addr_bytes) else {
                return drop_for(DROP_TRUNCATED);
            };
            if u64::from_ne_bytes(pass) != u64::from_ne_bytes(conf.auth_pass) {
                return drop_for(DROP_AUTH_MISMATCH);
            }
        }
        // RFC 3768 5.3.7: VRRPv2 counts whole seconds.
        u16::from(vrrp[5]) * 100
    } else {
        // RFC 9568 5.2.7: 12-bit Max Advert Interval in centiseconds.
        u16::from_be_bytes([vrrp[4], vrrp[5]]) & 0x0fff
    };

    // SAFETY: kernel helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let mut pkey = PeerKey {
        ifindex,
        family: ip.family,
        vrid,
        _pad: [0; 2],
        addr: [0; 16],
    };
    pkey.addr = ev.src;
    let Some(change) = track_peer(&pkey, now, hash, priority, version, interval_cs, naddrs) else {
        return drop_for(DROP_PEERS_FULL);
    };
    bump(&STATS, STAT_VALID);
    if change != 0 {
        if change & CHANGE_NEW_PEER != 0 {
            info!(
                ctx,
                "haxdp: new VRRP peer for VRID {} on ifindex {}", vrid, ifindex
            );
        }
        ev.ktime_ns = now;
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
            // Keep the change so the peer's next advert delivers it.
            if let Some(p) = PEERS.get_ptr_mut(&pkey) {
                // SAFETY: map value pointer, valid for this program run.
                unsafe { (*p).pending_change = change };
            }
            bump(&STATS, STAT_EVENTS_LOST);
        }
    }
    Ok(XDP_PASS)
}

/// Updates the peer's record; returns the `CHANGE_*` bits the daemon must hear
/// about, or `None` when PEERS is full and the peer is new.
#[inline(always)]
fn track_peer(
    pkey: &PeerKey,
    now: u64,
    hash: u64,
    priority: u8,
    version: u8,
    interval_cs: u16,
    naddrs: u8,
) -> Option<u16> {
    let mut change: u16 = 0;
    if priority == 0 {
        change |= CHANGE_PRIO_ZERO;
    }
    // Updates from two CPUs for the same peer may interleave; a peer sends one
    // advert per interval, so at worst one gap sample is off.
    let peer = match PEERS.get_ptr_mut(pkey) {
        Some(p) => p,
        None => {
            let fresh = PeerState {
                last_ns: now,
                prev_ns: 0,
                count: 0,
                min_gap_ns: 0,
                max_gap_ns: 0,
                addr_hash: hash,
                priority,
                version,
                interval_cs,
                naddrs,
                _pad: 0,
                pending_change: 0,
            };
            // BPF_NOEXIST: never overwrite a record another CPU just created.
            match PEERS.insert(pkey, &fresh, 1) {
                Ok(()) => change |= CHANGE_NEW_PEER,
                Err(e) if e == -EEXIST => {}
                Err(_) => return None,
            }
            // None only if the daemon pruned it in between: counted as full too.
            PEERS.get_ptr_mut(pkey)?
        }
    };
    // SAFETY: map value pointer, valid for this program run.
    let st = unsafe { &mut *peer };
    if st.count > 0 {
        let gap = now.saturating_sub(st.last_ns);
        if st.count == 1 || gap < st.min_gap_ns {
            st.min_gap_ns = gap;
        }
        if gap > st.max_gap_ns {
            st.max_gap_ns = gap;
        }
        if st.priority != priority {
            change |= CHANGE_PRIORITY;
        }
        if st.interval_cs != interval_cs {
            change |= CHANGE_INTERVAL;
        }
        if st.addr_hash != hash || st.naddrs != naddrs {
            change |= CHANGE_ADDRS;
        }
        if st.version != version {
            change |= CHANGE_VERSION;
        }
        // 1 cs = 10 ms; the peer's previous interval decides what "silent" means.
        if gap > RESUMED_AFTER_INTERVALS * u64::from(st.interval_cs) * 10_000_000 {
            change |= CHANGE_RESUMED;
        }
        st.prev_ns = st.last_ns;
    }
    st.last_ns = now;
    st.count += 1;
    st.priority = priority;
    st.interval_cs = interval_cs;
    st.addr_hash = hash;
    st.naddrs = naddrs;
    st.version = version;
    change |= st.pending_change;
    st.pending_change = 0;
    Some(change)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
