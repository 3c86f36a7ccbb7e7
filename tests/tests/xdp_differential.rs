//! One acceptance rule, checked: thousands of generated frames (valid VRRPv2/v3
//! adverts from `haxdp_tests::frames`, then mutated: bit flips, truncation, trailing
//! bytes, interval 0, TTL, version/type, count, checksum, IP header fields, IPv4
//! options, IPv6) are judged by the XDP program under BPF_PROG_TEST_RUN and by the
//! socket path's rule (`haxdp_vrrp::packet::accept_frame`: the stack's IP checks,
//! then `accept_advert` = TTL, decode(), watched VRID, version, auth, allowlist).
//! Both must give the same verdict and, for a drop, the same `DropReason` (read as
//! the DROPS counter that moved); for an accepted advert the kernel's record must
//! hold what decode() read.
//!
//! Needs root; seeded (`HAXDP_DIFF_SEED`, `HAXDP_DIFF_FRAMES` to change), bounded in
//! time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use haxdp::xdp::loader::{AdvertEvents, XdpLoader};
use haxdp_common::*;
use haxdp_tests::frames::{self, Advert};
use haxdp_tests::require_root;
use haxdp_vrrp::packet::{accept_frame, pass_auth, FrameVerdict, Watched};
use haxdp_vrrp::{Family, Version};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// BPF_PROG_TEST_RUN without a context runs as if on the caller's loopback.
const LO: u32 = 1;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The instances both sides watch, on the loopback ifindex.
struct Instance {
    vrid: u8,
    family: Family,
    version: Version,
    pass: Option<&'static [u8]>,
    allowed: Option<Vec<IpAddr>>,
}

fn instances() -> Vec<Instance> {
    vec![
        Instance {
            vrid: 51,
            family: Family::V4,
            version: Version::V3,
            pass: None,
            allowed: None,
        },
        Instance {
            vrid: 51,
            family: Family::V6,
            version: Version::V3,
            pass: None,
            allowed: None,
        },
        Instance {
            vrid: 52,
            family: Family::V4,
            version: Version::V2,
            pass: Some(b"secret"),
            allowed: None,
        },
        Instance {
            vrid: 53,
            family: Family::V4,
            version: Version::V2,
            pass: None,
            allowed: None,
        },
        Instance {
            vrid: 54,
            family: Family::V4,
            version: Version::V3,
            pass: None,
            allowed: Some(vec![ip("192.0.2.1"), ip("192.0.2.2")]),
        },
    ]
}

fn family_code(f: Family) -> u8 {
    match f {
        Family::V4 => FAMILY_V4,
        Family::V6 => FAMILY_V6,
    }
}

/// The valid (or almost valid) adverts mutations start from.
fn base_adverts(rng: &mut Rng) -> Advert {
    let n = 1 + rng.below(3);
    let v4s = |base: u8| -> Vec<IpAddr> {
        (0..n)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, base + i as u8)))
            .collect()
    };
    let v6s: Vec<IpAddr> = (0..n)
        .map(|i| IpAddr::V6(format!("2001:db8::{:x}", 0x100 + i).parse().expect("v6")))
        .collect();
    let prio = if rng.chance(10) { 0 } else { rng.byte() };
    let mut a = match rng.below(9) {
        0 | 1 => Advert::v3(51, prio, ip("192.0.2.1"), v4s(100)),
        2 => Advert::v3(51, prio, ip("2001:db8::1"), v6s),
        3 => Advert::v2_pass(52, prio, ip("192.0.2.1"), v4s(100), b"secret"),
        4 => Advert::v2_pass(52, prio, ip("192.0.2.3"), v4s(100), b"guess"),
        5 => {
            let mut a = Advert::v2_pass(53, prio, ip("192.0.2.4"), v4s(100), b"");
            a.auth_type = AUTH_NONE;
            a
        }
        6 => Advert::v3(54, prio, ip("192.0.2.1"), v4s(150)),
        7 => Advert::v3(54, prio, ip("192.0.2.9"), v4s(150)),
        _ => Advert::v3(99, prio, ip("192.0.2.1"), v4s(100)),
    };
    if rng.chance(20) {
        a.interval_cs = [0, 1, 50, 100, 4095][rng.below(5)];
        if a.version == 2 {
            a.interval_cs = [0, 100, 300, 25500][rng.below(4)];
        }
    }
    a
}

const L3: usize = 14;

fn is_v6(f: &[u8]) -> bool {
    f.get(12..14) == Some(&[0x86, 0xdd])
}

/// Offset and IP-declared length of the VRRP message, if the header says.
fn vrrp_span(f: &[u8]) -> Option<(usize, usize)> {
    if is_v6(f) {
        let len = usize::from(u16::from_be_bytes([*f.get(L3 + 4)?, *f.get(L3 + 5)?]));
        Some((L3 + 40, len))
    } else {
        let ihl = usize::from(f.get(L3)? & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([*f.get(L3 + 2)?, *f.get(L3 + 3)?]));
        Some((L3 + ihl, total.checked_sub(ihl)?))
    }
}

/// Rewrites the IPv4 header checksum (if the header is there).
fn fix_ip_checksum(f: &mut [u8]) {
    if is_v6(f) {
        return;
    }
    let ihl = usize::from(f[L3] & 0x0f) * 4;
    if ihl < 20 || f.len() < L3 + ihl {
        return;
    }
    f[L3 + 10..L3 + 12].copy_from_slice(&[0, 0]);
    let c = frames::checksum(&f[L3..L3 + ihl]);
    f[L3 + 10..L3 + 12].copy_from_slice(&c.to_be_bytes());
}

/// Rewrites the VRRP checksum as a sender would for the message the IP header
/// declares (v2: the message alone; v3: with the pseudo-header).
fn fix_vrrp_checksum(f: &mut [u8]) {
    let Some((off, len)) = vrrp_span(f) else {
        return;
    };
    if len < 8 || f.len() < off + len {
        return;
    }
    f[off + 6..off + 8].copy_from_slice(&[0, 0]);
    let mut input = Vec::new();
    if f[off] >> 4 == 3 {
        if is_v6(f) {
            input.extend_from_slice(&f[L3 + 8..L3 + 40]);
            input.extend_from_slice(&(len as u32).to_be_bytes());
            input.extend_from_slice(&[0, 0, 0, 112]);
        } else {
            input.extend_from_slice(&f[L3 + 12..L3 + 20]);
            input.extend_from_slice(&[0, 112]);
            input.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    input.extend_from_slice(&f[off..off + len]);
    let c = frames::checksum(&input);
    f[off + 6..off + 8].copy_from_slice(&c.to_be_bytes());
}

/// Sets the IP length field to `len` bytes of VRRP message.
fn set_vrrp_len(f: &mut [u8], len: usize) {
    if is_v6(f) {
        f[L3 + 4..L3 + 6].copy_from_slice(&(len as u16).to_be_bytes());
    } else {
        let ihl = usize::from(f[L3] & 0x0f) * 4;
        f[L3 + 2..L3 + 4].copy_from_slice(&((ihl + len) as u16).to_be_bytes());
        fix_ip_checksum(f);
    }
}

fn flip_bits(rng: &mut Rng, f: &mut [u8], lo: usize, hi: usize) {
    let hi = hi.min(f.len());
    if lo >= hi {
        return;
    }
    for _ in 0..1 + rng.below(3) {
        let at = lo + rng.below(hi - lo);
        f[at] ^= 1 << rng.below(8);
    }
}

/// One generated frame and what was done to it.
fn generate(rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let a = base_adverts(rng);
    let mut f = a.frame();
    let vrrp_off = if a.src.is_ipv6() { L3 + 40 } else { L3 + 20 };
    let what = match rng.below(16) {
        0 => "unchanged",
        1 => {
            flip_bits(rng, &mut f, 0, usize::MAX);
            "bit flips anywhere"
        }
        2 => {
            flip_bits(rng, &mut f, vrrp_off, vrrp_off + 8);
            fix_vrrp_checksum(&mut f);
            "VRRP header bit flips, checksum fixed"
        }
        3 => {
            flip_bits(rng, &mut f, L3, vrrp_off);
            fix_ip_checksum(&mut f);
            fix_vrrp_checksum(&mut f);
            "IP header bit flips, checksums fixed"
        }
        4 => {
            // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
            let n = 14 + rng.below(f.len() - 14);
            f.truncate(n);
            "truncated"
        }
        5 => {
            let extra = 1 + rng.below(12);
            let len = f.len() - vrrp_off + extra;
            f.extend((0..extra).map(|_| rng.byte()));
            set_vrrp_len(&mut f, len);
            if rng.chance(70) {
                fix_vrrp_checksum(&mut f);
            }
            "trailing bytes inside the IP length"
        }
        6 => {
            let n = 1 + rng.below(30);
            f.extend(std::iter::repeat_n(0, n));
            "link-layer padding"
        }
        7 => {
            f[vrrp_off + 4] &= 0xf0;
            f[vrrp_off + 5] = 0;
            if f[vrrp_off] >> 4 == 2 {
                f[vrrp_off + 4] = a.auth_type;
            }
            fix_vrrp_checksum(&mut f);
            "interval 0"
        }
        8 => {
            let ttl_at = if a.src.is_ipv6() { L3 + 7 } else { L3 + 8 };
            f[ttl_at] = if rng.chance(50) { 254 } else { rng.byte() };
            fix_ip_checksum(&mut f);
            "TTL"
        }
        9 => {
            f[vrrp_off] = (rng.byte() & 0xf0) | (f[vrrp_off] & 0x0f);
            if rng.chance(50) {
                f[vrrp_off] = (f[vrrp_off] & 0xf0) | (rng.byte() & 0x0f);
            }
            fix_vrrp_checksum(&mut f);
            "version/type"
        }
        10 => {
            f[vrrp_off + 3] = if rng.chance(30) {
                65 + rng.byte() / 2
            } else {
                rng.byte() % 5
            };
            fix_vrrp_checksum(&mut f);
            "count mismatch"
        }
        11 => {
            f[vrrp_off + 6] = rng.byte();
            f[vrrp_off + 7] = rng.byte();
            if rng.chance(10) {
                f[vrrp_off + 6..vrrp_off + 8].copy_from_slice(&[0xff, 0xff]);
            }
            "checksum field"
        }
        12 if !a.src.is_ipv6() => {
            // IPv4 options: NOP words (1..=10 of them), header and total fixed.
            let words = 1 + rng.below(10);
            let mut g = f[..L3 + 20].to_vec();
            for _ in 0..words {
                g.extend_from_slice(&[1, 1, 1, 1]);
            }
            g.extend_from_slice(&f[L3 + 20..]);
            g[L3] = 0x40 | (5 + words as u8);
            let total = u16::from_be_bytes([g[L3 + 2], g[L3 + 3]]) + 4 * words as u16;
            g[L3 + 2..L3 + 4].copy_from_slice(&total.to_be_bytes());
            fix_ip_checksum(&mut g);
            f = g;
            "IPv4 options"
        }
        13 => {
            let len = if rng.chance(50) {
                rng.below(80)
            } else {
                rng.below(0x10000)
            };
            if is_v6(&f) {
                f[L3 + 4..L3 + 6].copy_from_slice(&(len as u16).to_be_bytes());
            } else {
                f[L3 + 2..L3 + 4].copy_from_slice(&(len as u16).to_be_bytes());
                fix_ip_checksum(&mut f);
            }
            "IP length field"
        }
        14 => {
            // Too many addresses, every other field right.
            let n = MAX_ADDRS_V4 + 1 + rng.below(10);
            let addrs = (0..n)
                .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i as u8)))
                .collect();
            let mut b = a.clone();
            if b.src.is_ipv6() {
                b = Advert::v3(51, 100, ip("192.0.2.1"), vec![]);
            }
            b.addrs = addrs;
            f = b.frame();
            "too many addresses"
        }
        _ => {
            let at = L3 + rng.below(f.len() - L3);
            f[at] = rng.byte();
            fix_ip_checksum(&mut f);
            fix_vrrp_checksum(&mut f);
            "one random byte, checksums fixed"
        }
    };
    (f, what)
}

struct Kernel {
    fp: XdpLoader,
    events: AdvertEvents,
    rt: tokio::runtime::Runtime,
}

impl Kernel {
    fn new(insts: &[Instance]) -> Self {
        require_root();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = std::path::PathBuf::from(PIN_ROOT)
            .join(format!("test-diff-{}", haxdp_tests::unique_tag()));
        let (mut fp, events) = {
            let _g = rt.enter();
            let mut fp = XdpLoader::load_pinned_at(dir)
                .unwrap_or_else(|e| panic!("loading the XDP object: {e}"));
            let events = fp.take_events().expect("EVENTS");
            (fp, events)
        };
        for i in insts {
            let mask = match i.version {
                Version::V2 => VERSION_MASK_V2,
                Version::V3 => VERSION_MASK_V3,
            };
            let conf = match i.pass {
                Some(p) => InstanceConf::new(mask, AUTH_PASS, p),
                None => InstanceConf::new(mask, AUTH_NONE, b""),
            };
            let fam = family_code(i.family);
            fp.watch(LO, i.vrid, fam, conf).expect("watch");
            fp.set_allowed_sources(LO, i.vrid, fam, i.allowed.as_deref())
                .expect("allowlist");
        }
        Kernel { fp, events, rt }
    }

    fn drops(&self) -> Vec<u64> {
        self.fp
            .drop_counters()
            .expect("DROPS")
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }

    fn valid(&self) -> u64 {
        self.fp.stats().expect("STATS")[STAT_VALID as usize].1
    }

    /// The kernel's verdict, as a FrameVerdict without the decoded advert.
    fn judge(&mut self, frame: &[u8]) -> (Kernelside, Option<AdvertEvent>) {
        let before = self.drops();
        let valid = self.valid();
        let (action, out) = self.fp.test_run(frame).expect("BPF_PROG_TEST_RUN");
        let after = self.drops();
        let moved: Vec<DropReason> = (0..DROP_REASON_COUNT)
            .filter(|&i| after[i as usize] != before[i as usize])
            .filter_map(DropReason::from_index)
            .collect();
        let accepted = self.valid() - valid;
        let ev = {
            let _g = self.rt.enter();
            self.events.try_drain().into_iter().next()
        };
        let side = match (action, moved.as_slice(), accepted) {
            (XDP_PASS, [], 0) if out == frame => Kernelside::NotAdvert,
            (XDP_PASS, [], 1) if out == frame => Kernelside::Accepted,
            (XDP_DROP, [r], 0) => Kernelside::Dropped(*r),
            _ => Kernelside::Odd(format!(
                "action {action}, drops moved {moved:?}, valid +{accepted}, frame changed: {}",
                out != frame
            )),
        };
        // Keep every instance's room empty: each accepted source is new again.
        self.fp.prune_peers(0).expect("prune");
        (side, ev)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kernelside {
    NotAdvert,
    Accepted,
    Dropped(DropReason),
    Odd(String),
}

fn hex(f: &[u8]) -> String {
    f.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn xdp_and_socket_path_agree_on_every_frame() {
    let insts = instances();
    let mut kernel = Kernel::new(&insts);
    let seed: u64 = std::env::var("HAXDP_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x005e_ed0f_4a5d);
    let frames_n: usize = std::env::var("HAXDP_DIFF_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let mut rng = Rng(seed.wrapping_mul(2).wrapping_add(1));
    let started = Instant::now();
    let passes: Vec<[u8; 8]> = insts
        .iter()
        .map(|i| pass_auth(i.pass.unwrap_or(b"")))
        .collect();
    let mut mismatches = Vec::new();
    let mut seen: std::collections::BTreeMap<String, u32> = Default::default();
    let mut n = 0;
    while n < frames_n && started.elapsed() < Duration::from_secs(120) {
        n += 1;
        let (frame, what) = if rng.chance(2) {
            (frames::tcp_frame(), "TCP")
        } else {
            generate(&mut rng)
        };
        let model = accept_frame(&frame, |family, vrid| {
            insts
                .iter()
                .zip(&passes)
                .find(|(i, _)| i.family == family && i.vrid == vrid)
                .map(|(i, p)| Watched {
                    version: i.version,
                    auth: i.pass.map(|_| *p),
                    allowed_sources: i.allowed.as_deref(),
                })
        });
        let (side, ev) = kernel.judge(&frame);
        let label = match &model {
            FrameVerdict::NotAdvert => "not_advert".to_string(),
            FrameVerdict::Accepted { .. } => "accepted".to_string(),
            FrameVerdict::Dropped(r) => r.name().to_string(),
        };
        *seen.entry(label).or_default() += 1;
        let agree = match (&model, &side) {
            (FrameVerdict::NotAdvert, Kernelside::NotAdvert) => true,
            (FrameVerdict::Dropped(a), Kernelside::Dropped(b)) => a == b,
            (FrameVerdict::Accepted { src, advert }, Kernelside::Accepted) => {
                // What the kernel recorded is what decode() read: every accepted
                // source is new (rooms are pruned), so it was reported whole.
                ev.is_some_and(|e| {
                    e.src_ip() == *src
                        && e.vrid == advert.vrid
                        && e.priority == advert.priority
                        && e.interval_cs == advert.max_adver_int_cs
                        && e.addresses() == advert.addrs
                        && e.version == if advert.version == Version::V2 { 2 } else { 3 }
                })
            }
            _ => false,
        };
        if !agree && mismatches.len() < 12 {
            mismatches.push(format!(
                "frame {n} ({what}): socket path {model:?}, XDP {side:?}, event {:?}\n  {}",
                ev.map(|e| (e.src_ip(), e.vrid, e.priority, e.interval_cs, e.addresses())),
                hex(&frame)
            ));
        } else if !agree {
            mismatches.push(String::new());
        }
    }
    eprintln!(
        "{n} frames in {:?} (seed {seed:#x}); socket-path verdicts: {seen:?}",
        started.elapsed()
    );
    assert!(n >= frames_n.min(1000), "only {n} frames in the time bound");
    // The generator must reach the interesting verdicts, or the test proves little.
    for must in [
        "accepted",
        "bad_length",
        "bad_checksum",
        "zero_interval",
        "bad_ttl",
        "truncated",
        "bad_ip_header",
        "source_not_allowed",
        "auth_mismatch",
        "too_many_addrs",
    ] {
        assert!(seen.contains_key(must), "no frame was {must}: {seen:?}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {n} frames judged differently; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
