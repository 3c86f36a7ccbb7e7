//! The XDP advert tracker, run by the kernel: BPF_PROG_TEST_RUN on hand-built
//! frames (one per verdict and drop reason), and attached to a veth that
//! receives adverts from a real keepalived in a neighbouring namespace.
//!
//! Needs root; run through `cargo xtask test`. Nothing here skips.

use std::net::IpAddr;
use std::time::Duration;

use haxdp::xdp::loader::{AdvertEvents, XdpLoader};
use haxdp_common::*;
use haxdp_tests::frames::{self, Advert};
use haxdp_tests::{require_root, wait_for, Netns, TempDir};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// BPF_PROG_TEST_RUN without a context runs as if on the caller's loopback.
const LO: u32 = 1;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// A private copy of the tracker, loaded through the daemon's own loader
/// (`XdpLoader`, pinned in a private directory, attached nowhere), so the tests
/// drive the kernel through the same user-space API the daemon uses.
struct Tracker {
    fp: XdpLoader,
    events: AdvertEvents,
    _rt: tokio::runtime::Runtime,
}

impl Tracker {
    fn new() -> Self {
        require_root();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = std::path::PathBuf::from(PIN_ROOT)
            .join(format!("test-xdp-{}", haxdp_tests::unique_tag()));
        let (fp, events) = {
            let _g = rt.enter();
            let mut fp = XdpLoader::load_pinned_at(dir)
                .unwrap_or_else(|e| panic!("loading the XDP object: {e}"));
            let events = fp.take_events().expect("EVENTS ring");
            (fp, events)
        };
        Tracker {
            fp,
            events,
            _rt: rt,
        }
    }

    fn watch(&mut self, vrid: u8, family: u8, conf: InstanceConf) {
        self.fp
            .watch(LO, vrid, family, conf)
            .unwrap_or_else(|e| panic!("watch VRID {vrid}: {e}"));
    }

    /// Runs one frame; returns the verdict and the frame as the program left it.
    fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.fp
            .test_run(frame)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN: {e}"))
    }

    fn verdict(&mut self, frame: &[u8]) -> u32 {
        self.run(frame).0
    }

    fn drops(&self) -> Vec<u64> {
        self.fp
            .drop_counters()
            .expect("DROPS")
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }

    fn dropped(&self, reason: DropReason) -> u64 {
        self.fp.drop_count(reason).expect("DROPS")
    }

    fn stat(&self, index: u32) -> u64 {
        self.fp.stats().expect("STATS")[index as usize].1
    }

    fn peer(&self, vrid: u8, src: IpAddr) -> Option<PeerState> {
        self.fp
            .peer(&PeerKey::new(LO, vrid, src))
            .expect("PEERS lookup")
    }

    fn peer_count(&self) -> usize {
        self.fp.peers().expect("PEERS").len()
    }

    fn take_events(&mut self) -> Vec<AdvertEvent> {
        let _g = self._rt.enter();
        self.events.try_drain()
    }
}

fn v3_conf() -> InstanceConf {
    InstanceConf::new(VERSION_MASK_V3, AUTH_NONE, b"")
}

fn v2_pass_conf(pass: &[u8]) -> InstanceConf {
    InstanceConf::new(VERSION_MASK_V2, AUTH_PASS, pass)
}

#[test]
fn valid_v3_ipv4_advert_passes_and_is_recorded() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let src = ip("192.0.2.1");
    let addrs = vec![ip("192.0.2.100"), ip("192.0.2.101")];
    let frame = Advert::v3(51, 100, src, addrs.clone()).frame();
    let (verdict, out) = t.run(&frame);
    assert_eq!(verdict, XDP_PASS, "drops: {:?}", t.drops());
    assert_eq!(out, frame, "a valid advert must pass unmodified");

    let st = t.peer(51, src).expect("peer recorded");
    assert_eq!(
        (st.priority, st.version, st.interval_cs, st.naddrs),
        (100, 3, 100, 2)
    );
    assert_eq!(st.count, 1);
    assert!(st.last_ns > 0);
    assert_eq!(t.stat(STAT_VALID), 1);

    let events = t.take_events();
    assert_eq!(events.len(), 1);
    let ev = events[0];
    assert_eq!(ev.change, CHANGE_NEW_PEER);
    assert_eq!(
        (ev.vrid, ev.priority, ev.version, ev.interval_cs),
        (51, 100, 3, 100)
    );
    assert_eq!(ev.ifindex, LO);
    assert_eq!(ev.src_ip(), src);
    assert_eq!(ev.dst_ip(), ip("224.0.0.18"));
    assert_eq!(ev.addresses(), addrs);
    assert_eq!(ev.ktime_ns, st.last_ns);
    assert!(
        t.drops().iter().all(|&n| n == 0),
        "no drops: {:?}",
        t.drops()
    );
}

#[test]
fn unchanged_adverts_only_move_timestamps_and_changes_push_events() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let src = ip("192.0.2.1");
    let base = Advert::v3(51, 100, src, vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&base.frame()), XDP_PASS);
    assert_eq!(t.take_events().len(), 1);
    let first = t.peer(51, src).expect("peer");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(t.verdict(&base.frame()), XDP_PASS);
    }
    assert!(
        t.take_events().is_empty(),
        "unchanged adverts must not wake user space"
    );
    let st = t.peer(51, src).expect("peer");
    assert_eq!(st.count, 4);
    assert!(st.last_ns > first.last_ns && st.prev_ns > first.last_ns - 1);
    assert!(st.min_gap_ns >= 2_000_000, "gap min {} ns", st.min_gap_ns);
    assert!(st.max_gap_ns >= st.min_gap_ns);
    assert_eq!(t.stat(STAT_EVENTS), 1);

    let mut a = base.clone();
    a.priority = 120;
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    let ev = t.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].change, CHANGE_PRIORITY);
    assert_eq!(ev[0].priority, 120);

    a.interval_cs = 50;
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    assert_eq!(t.take_events()[0].change, CHANGE_INTERVAL);

    a.addrs.push(ip("192.0.2.102"));
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    let ev = t.take_events();
    assert_eq!(ev[0].change, CHANGE_ADDRS);
    assert_eq!(ev[0].addresses(), a.addrs);

    // RFC 9568 6.4.2: priority 0 means the master is leaving; it is pushed every time.
    a.priority = 0;
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    assert_eq!(
        t.take_events()[0].change,
        CHANGE_PRIORITY | CHANGE_PRIO_ZERO
    );
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    assert_eq!(t.take_events()[0].change, CHANGE_PRIO_ZERO);
}

#[test]
fn valid_v2_pass_advert_passes() {
    let mut t = Tracker::new();
    // keepalived sends only the first 8 bytes of a longer password.
    t.watch(52, FAMILY_V4, v2_pass_conf(b"secret12"));
    let src = ip("192.0.2.2");
    let frame = Advert::v2_pass(52, 150, src, vec![ip("192.0.2.200")], b"secret12").frame();
    assert_eq!(t.verdict(&frame), XDP_PASS, "drops: {:?}", t.drops());
    let st = t.peer(52, src).expect("peer");
    // RFC 3768 5.3.7: one second, recorded in centiseconds.
    assert_eq!((st.priority, st.version, st.interval_cs), (150, 2, 100));
    let ev = t.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].addresses(), vec![ip("192.0.2.200")]);
}

#[test]
fn valid_v3_ipv6_advert_passes() {
    let mut t = Tracker::new();
    t.watch(53, FAMILY_V6, v3_conf());
    let src = ip("2001:db8::1");
    let addrs = vec![ip("2001:db8::100"), ip("2001:db8::101")];
    let frame = Advert::v3(53, 200, src, addrs.clone()).frame();
    assert_eq!(t.verdict(&frame), XDP_PASS, "drops: {:?}", t.drops());
    let st = t.peer(53, src).expect("peer");
    assert_eq!((st.priority, st.version, st.naddrs), (200, 3, 2));
    let ev = t.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].family, FAMILY_V6);
    assert_eq!(ev[0].src_ip(), src);
    assert_eq!(ev[0].dst_ip(), ip("ff02::12"));
    assert_eq!(ev[0].addresses(), addrs);
}

#[test]
fn vlan_tagged_advert_is_passed_untouched_and_not_tracked() {
    // An 802.1Q (or 802.1ad) tagged advert belongs to the VLAN interface, not to
    // the one the program is attached to: it is not this instance's advert.
    let mut t = Tracker::new();
    t.watch(54, FAMILY_V4, v3_conf());
    let mut a = Advert::v3(54, 90, ip("192.0.2.3"), vec![ip("192.0.2.54")]);
    a.vlan = Some(100);
    let frame = a.frame();
    let (verdict, out) = t.run(&frame);
    assert_eq!(verdict, XDP_PASS, "drops: {:?}", t.drops());
    assert_eq!(out, frame, "passed unmodified");
    assert!(t.peer(54, ip("192.0.2.3")).is_none(), "no PEERS entry");
    assert_eq!(t.peer_count(), 0);
    assert_eq!(t.stat(STAT_VALID), 0);
    assert!(t.drops().iter().all(|&n| n == 0), "{:?}", t.drops());
    assert!(t.take_events().is_empty());
    // 802.1ad (QinQ outer tag) the same.
    let mut ad = frame.clone();
    ad[12..14].copy_from_slice(&[0x88, 0xa8]);
    assert_eq!(t.run(&ad), (XDP_PASS, ad.clone()));
    assert_eq!(t.peer_count(), 0);
}

#[test]
fn non_vrrp_frame_passes_untouched() {
    let mut t = standard_tracker();
    let frame = frames::tcp_frame();
    let (verdict, out) = t.run(&frame);
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame);
    assert!(t.drops().iter().all(|&n| n == 0));
    assert_eq!(t.stat(STAT_VALID), 0);
    assert!(t.take_events().is_empty());
}

/// A tracker watching VRID 51 (v3, IPv4 and IPv6) and VRID 52 (v2 PASS "secret").
fn standard_tracker() -> Tracker {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    t.watch(51, FAMILY_V6, v3_conf());
    t.watch(52, FAMILY_V4, v2_pass_conf(b"secret"));
    t
}

/// Runs `frame` on [`standard_tracker`] and asserts a drop counted under `reason`
/// alone, with no peer recorded and no event.
fn assert_dropped(frame: &[u8], reason: DropReason) {
    let mut t = standard_tracker();
    let name = reason.name();
    assert_eq!(t.verdict(frame), XDP_DROP, "expected a drop for {name}");
    let drops = t.drops();
    for (i, n) in drops.iter().enumerate() {
        let want = u64::from(i as u32 == reason.index());
        assert_eq!(
            *n,
            want,
            "{} counter after a {name} frame: {drops:?}",
            drop_reason_name(i as u32)
        );
    }
    assert_eq!(t.peer_count(), 0, "a dropped advert must not create a peer");
    assert!(t.take_events().is_empty());
}

fn good_v3() -> Advert {
    Advert::v3(51, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")])
}

/// Rewrites the IPv4 header checksum of an Ethernet frame (no VLAN tag).
fn fix_ip_checksum(f: &mut [u8]) {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = frames::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// The frame of `a` around `vrrp`, with the IPv4 total length / IPv6 payload
/// length claiming `extra` more bytes, which follow the message.
fn with_trailing(a: &Advert, vrrp: &[u8], extra: usize) -> Vec<u8> {
    let mut m = vrrp.to_vec();
    m.extend(std::iter::repeat_n(0xa5, extra));
    a.frame_around(&m)
}

#[test]
fn drop_bad_ttl() {
    let mut a = good_v3();
    a.ttl = 64;
    assert_dropped(&a.frame(), DropReason::BadTtl);
    let mut a6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
    a6.ttl = 1;
    assert_dropped(&a6.frame(), DropReason::BadTtl);
}

#[test]
fn drop_bad_version() {
    let mut a = good_v3();
    a.version = 4;
    assert_dropped(&a.frame(), DropReason::BadVersion);
    // VRRPv2 is IPv4 only (RFC 3768).
    let mut a6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
    a6.version = 2;
    assert_dropped(&a6.frame(), DropReason::BadVersion);
}

#[test]
fn drop_bad_type() {
    let mut a = good_v3();
    a.typ = 2;
    assert_dropped(&a.frame(), DropReason::BadType);
}

#[test]
fn drop_bad_length() {
    let a = good_v3();
    let mut m = a.vrrp();
    m[3] = 3; // three addresses claimed, one present
    assert_dropped(&a.frame_around(&m), DropReason::BadLength);
    // Shorter than the VRRP header.
    assert_dropped(&a.frame_around(&m[..6]), DropReason::BadLength);
}

#[test]
fn drop_trailing_bytes_after_the_message() {
    // RFC 9568 7.1 and decode(): the IP length must be exactly the message's.
    // keepalived refuses such an advert too ("vrrp packet too long").
    for extra in [1, 2, 4, 8] {
        let a = good_v3();
        assert_dropped(&with_trailing(&a, &a.vrrp(), extra), DropReason::BadLength);
        let v2 = Advert::v2_pass(52, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"secret");
        assert_dropped(
            &with_trailing(&v2, &v2.vrrp(), extra),
            DropReason::BadLength,
        );
        let a6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
        assert_dropped(
            &with_trailing(&a6, &a6.vrrp(), extra),
            DropReason::BadLength,
        );
    }
}

#[test]
fn ethernet_padding_after_the_ip_length_is_not_part_of_the_advert() {
    let mut t = standard_tracker();
    let mut f = good_v3().frame();
    f.resize(f.len() + 14, 0); // the 60-byte minimum frame pads a short advert
    assert_eq!(t.verdict(&f), XDP_PASS, "drops: {:?}", t.drops());
    assert_eq!(t.stat(STAT_VALID), 1);
}

#[test]
fn drop_zero_interval() {
    // RFC 9568 5.2.7 (Max Adver Int 0) and RFC 3768 5.3.7 (Adver Int 0).
    let mut a = good_v3();
    a.interval_cs = 0;
    assert_dropped(&a.frame(), DropReason::ZeroInterval);
    let mut v2 = Advert::v2_pass(52, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"secret");
    v2.interval_cs = 0;
    assert_dropped(&v2.frame(), DropReason::ZeroInterval);
    let mut a6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
    a6.interval_cs = 0;
    assert_dropped(&a6.frame(), DropReason::ZeroInterval);
}

#[test]
fn drop_bad_ip_header() {
    let good = good_v3().frame();
    let mut f = good.clone();
    f[24] ^= 0xff; // header checksum
    assert_dropped(&f, DropReason::BadIpHeader);
    let mut f = good.clone();
    f[14] = 0x44; // IHL 4
    fix_ip_checksum(&mut f);
    assert_dropped(&f, DropReason::BadIpHeader);
    let mut f = good.clone();
    f[16..18].copy_from_slice(&10u16.to_be_bytes()); // total length < IHL
    fix_ip_checksum(&mut f);
    assert_dropped(&f, DropReason::BadIpHeader);
    let mut f6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]).frame();
    f6[14] = 0x40; // IPv6 version 4
    assert_dropped(&f6, DropReason::BadIpHeader);
}

#[test]
fn ipv4_options_are_accepted_and_skipped() {
    // IHL 6 with one NOP/NOP/NOP/EOL option word: the stack accepts it and so does
    // keepalived (the VRRP message starts after IHL), so the tracker does too.
    let mut t = standard_tracker();
    let a = good_v3();
    let plain = a.frame();
    let mut f = plain[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&plain[34..]);
    f[14] = 0x46;
    let total = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut f);
    assert_eq!(t.verdict(&f), XDP_PASS, "drops: {:?}", t.drops());
    assert_eq!(t.peer(51, ip("192.0.2.1")).expect("peer").priority, 100);
}

#[test]
fn drop_bad_auth_type() {
    let mut a = Advert::v2_pass(52, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"secret");
    a.auth_type = 2; // IP AH, not carried by protocol 112
    assert_dropped(&a.frame(), DropReason::BadAuthType);
}

#[test]
fn drop_truncated() {
    let mut f = good_v3().frame();
    f.truncate(f.len() - 2); // the IP length now claims more than the frame holds
    assert_dropped(&f, DropReason::Truncated);
    let mut f6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]).frame();
    f6.truncate(f6.len() - 1);
    assert_dropped(&f6, DropReason::Truncated);
    assert_dropped(&good_v3().frame()[..30], DropReason::Truncated);
}

#[test]
fn drop_fragment() {
    let mut a = good_v3();
    a.frag = 0x2000; // more fragments
    assert_dropped(&a.frame(), DropReason::Fragment);
}

#[test]
fn drop_too_many_addrs() {
    let addrs = (0..=MAX_ADDRS_V4)
        .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i as u8)))
        .collect();
    let a = Advert::v3(51, 100, ip("192.0.2.1"), addrs);
    assert_dropped(&a.frame(), DropReason::TooManyAddrs);
}

#[test]
fn drop_bad_checksum() {
    let a = good_v3();
    let mut m = a.vrrp();
    m[2] ^= 1; // priority changed after the checksum was computed
    assert_dropped(&a.frame_around(&m), DropReason::BadChecksum);
    // A VRRPv3 checksum without the pseudo-header (holo's slip) is wrong too.
    let mut m = a.vrrp();
    m[6..8].copy_from_slice(&[0, 0]);
    let c = frames::checksum(&m);
    m[6..8].copy_from_slice(&c.to_be_bytes());
    assert_dropped(&a.frame_around(&m), DropReason::BadChecksum);
}

#[test]
fn drop_vrid_not_watched() {
    let a = Advert::v3(99, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")]);
    assert_dropped(&a.frame(), DropReason::VridNotWatched);
}

#[test]
fn drop_version_mismatch() {
    // VRID 51 runs VRRPv3 only.
    let a = Advert::v2_pass(51, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"secret");
    assert_dropped(&a.frame(), DropReason::VersionMismatch);
}

#[test]
fn drop_auth_mismatch() {
    let wrong = Advert::v2_pass(52, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"guess");
    assert_dropped(&wrong.frame(), DropReason::AuthMismatch);
    let mut no_auth = wrong.clone();
    no_auth.auth_type = AUTH_NONE;
    no_auth.auth_pass = [0; 8];
    assert_dropped(&no_auth.frame(), DropReason::AuthMismatch);
}

/// Source `n` of a spoofing flood: 198.51.100.0/22 and on.
fn spoofed(n: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0xc633_6400 + n))
}

#[test]
fn spoofed_sources_fill_only_their_instances_unknown_room() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    t.watch(60, FAMILY_V4, v3_conf());
    let master = ip("192.0.2.1");
    let configured = ip("192.0.2.2");
    let ikey = InstanceKey::new(LO, 51, FAMILY_V4);
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS);
    // The daemon protects a configured unicast peer before it ever spoke.
    t.fp.protect_peer(&PeerKey::new(LO, 51, configured))
        .expect("protect");
    // Spoofed sources take the rest of VRID 51's unknown room, then are refused
    // (at the master's priority: a higher one would take the lowest record's place,
    // see `a_higher_priority_newcomer_takes_the_place_of_the_lowest_unknown_source`).
    let room = PEERS_UNKNOWN_PER_INSTANCE;
    for i in 1..room {
        let a = Advert::v3(51, 100, spoofed(i), vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_PASS, "peer {i}: {:?}", t.drops());
    }
    for i in room..room + 50 {
        let a = Advert::v3(51, 100, spoofed(i), vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_DROP, "peer {i} must be refused");
    }
    assert_eq!(t.dropped(DropReason::PeersFull), 50);
    let r = t.fp.room(&ikey).expect("ROOM").expect("room of VRID 51");
    assert_eq!(r.refused, 50, "refused count visible per instance");
    assert_eq!(u64::from(room), r.admitted);

    // The master's record was not evicted and still moves.
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS);
    assert_eq!(t.peer(51, master).expect("master kept").count, 2);
    // The protected peer is accepted although the room is full, and its first
    // advert is reported as a new peer.
    let c = Advert::v3(51, 90, configured, vec![ip("192.0.2.100")]);
    t.take_events();
    assert_eq!(t.verdict(&c.frame()), XDP_PASS, "{:?}", t.drops());
    let ev = t.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].change & CHANGE_NEW_PEER, ev[0].prev_ns),
        (CHANGE_NEW_PEER, 0)
    );
    let st = t.peer(51, configured).expect("protected peer");
    assert!(st.is_protected() && st.count == 1);
    // Another VRID's room is untouched by VRID 51's flood.
    let other = Advert::v3(60, 100, spoofed(9999), vec![ip("192.0.2.160")]);
    assert_eq!(t.verdict(&other.frame()), XDP_PASS, "{:?}", t.drops());
    assert_eq!(
        t.fp.room(&InstanceKey::new(LO, 60, FAMILY_V4))
            .expect("ROOM")
            .expect("room")
            .refused,
        0
    );

    // Pruning gives the room back but never removes the protected peer.
    std::thread::sleep(Duration::from_millis(5));
    let removed = t.fp.prune_peers(1_000_000).expect("prune");
    assert_eq!(
        removed,
        room as usize + 1,
        "the flood, the master, VRID 60's peer"
    );
    assert!(
        t.peer(51, configured).is_some(),
        "protected peers are never pruned"
    );
    let late = Advert::v3(51, 250, ip("203.0.113.9"), vec![ip("192.0.2.100")]);
    assert_eq!(
        t.verdict(&late.frame()),
        XDP_PASS,
        "room is back: {:?}",
        t.drops()
    );
}

#[test]
fn protecting_a_known_peer_gives_its_unknown_room_back() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS);
    t.fp.protect_peer(&PeerKey::new(LO, 51, ip("192.0.2.1")))
        .expect("protect");
    // The whole unknown room is free again for others.
    for i in 0..PEERS_UNKNOWN_PER_INSTANCE {
        let a = Advert::v3(51, 250, spoofed(i), vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_PASS, "peer {i}: {:?}", t.drops());
    }
    let a = Advert::v3(51, 250, spoofed(1000), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&a.frame()), XDP_DROP);
    let st = t.peer(51, ip("192.0.2.1")).expect("kept");
    assert!(st.is_protected() && st.count == 1, "{st:?}");
    // At most PEERS_PROTECTED_PER_INSTANCE protected peers.
    for i in 1..PEERS_PROTECTED_PER_INSTANCE {
        t.fp.protect_peer(&PeerKey::new(LO, 51, spoofed(5000 + i)))
            .expect("protect");
    }
    assert!(matches!(
        t.fp.protect_peer(&PeerKey::new(LO, 51, ip("192.0.2.77"))),
        Err(haxdp::xdp::loader::XdpLoaderError::TooManyProtected { .. })
    ));
}

/// A protected source's record gets a SEEN entry, into which the program copies its
/// newest advert time; the entry is given back with the protection, and one given
/// back is not handed out again at once (a program run may still hold its index).
#[test]
fn a_protected_source_keeps_its_newest_advert_time_in_seen() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let master = ip("192.0.2.1");
    let key = PeerKey::new(LO, 51, master);
    let entry =
        t.fp.protect_peer(&key)
            .expect("protect")
            .expect("a SEEN entry");
    assert_eq!(t.fp.seen_ns(entry), Some(0), "zeroed before any advert");
    assert_eq!(t.fp.seen_entry(&key).expect("read"), Some(entry));
    for _ in 0..3 {
        assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS, "{:?}", t.drops());
        let st = t.peer(51, master).expect("recorded");
        assert!(st.last_ns > 0);
        assert_eq!(t.fp.seen_ns(entry), Some(st.last_ns));
    }
    // An unprotected source has none, and its adverts write no entry.
    let other = ip("192.0.2.2");
    let a = Advert::v3(51, 90, other, vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    assert_eq!(
        t.fp.seen_entry(&PeerKey::new(LO, 51, other)).expect("read"),
        None
    );
    let before = t.fp.seen_ns(entry);
    t.fp.unprotect_peer(&key).expect("unprotect");
    assert_eq!(t.peer(51, master).expect("kept").seen, 0);
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS);
    assert_eq!(t.fp.seen_ns(entry), before, "no longer written");
    // Protected again within REUSE_AFTER_NS: another entry, zeroed.
    let again =
        t.fp.protect_peer(&PeerKey::new(LO, 51, other))
            .expect("protect")
            .expect("a SEEN entry");
    assert_ne!(again, entry);
    assert_eq!(t.fp.seen_ns(again), Some(0));
}

/// The program finds an instance through BY_VRID's ways for its (VRID, family); more
/// interfaces than ways overflow into INSTANCES, and a way freed by unwatch is
/// given to an instance that overflowed.
#[test]
fn instances_beyond_the_ways_of_a_vrid_are_still_found() {
    let mut t = Tracker::new();
    let others: Vec<u32> = (100..100 + haxdp_common::BY_VRID_WAYS as u32).collect();
    for ifindex in &others {
        t.fp.watch(*ifindex, 51, FAMILY_V4, v3_conf())
            .expect("watch another interface");
    }
    assert_eq!(t.verdict(&good_v3().frame()), XDP_DROP, "LO is not watched");
    assert_eq!(t.dropped(DropReason::VridNotWatched), 1);
    t.watch(51, FAMILY_V4, v3_conf());
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS, "{:?}", t.drops());
    // A way frees up: LO moves into it, and stays found.
    t.fp.unwatch(others[0], 51, FAMILY_V4).expect("unwatch");
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS, "{:?}", t.drops());
    // Another family of the same VRID has an entry of its own.
    let v6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
    assert_eq!(t.verdict(&v6.frame()), XDP_DROP);
    t.fp.unwatch(LO, 51, FAMILY_V4).expect("unwatch");
    assert_eq!(t.verdict(&good_v3().frame()), XDP_DROP);
    assert_eq!(t.dropped(DropReason::VridNotWatched), 3);
}

#[test]
fn allowlist_drops_other_sources_as_source_not_allowed() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    t.watch(51, FAMILY_V6, v3_conf());
    let allowed = ip("192.0.2.2");
    t.fp.set_allowed_sources(LO, 51, FAMILY_V4, Some(&[allowed]))
        .expect("allowlist");
    let ok = Advert::v3(51, 100, allowed, vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&ok.frame()), XDP_PASS, "{:?}", t.drops());
    let other = Advert::v3(51, 100, ip("192.0.2.3"), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&other.frame()), XDP_DROP);
    assert_eq!(t.dropped(DropReason::SourceNotAllowed), 1);
    assert!(t.peer(51, ip("192.0.2.3")).is_none());
    // The allowlist is per instance: the IPv6 instance of the same VRID has none.
    let v6 = Advert::v3(51, 100, ip("2001:db8::3"), vec![ip("2001:db8::100")]);
    assert_eq!(t.verdict(&v6.frame()), XDP_PASS, "{:?}", t.drops());
    // Re-watching keeps the allowlist; removing it lets everyone speak again.
    t.watch(51, FAMILY_V4, v3_conf());
    assert_eq!(t.verdict(&other.frame()), XDP_DROP);
    assert_eq!(
        t.fp.allowed_sources(&InstanceKey::new(LO, 51, FAMILY_V4))
            .expect("read"),
        Some(vec![allowed])
    );
    t.fp.set_allowed_sources(LO, 51, FAMILY_V4, None)
        .expect("no allowlist");
    assert_eq!(t.verdict(&other.frame()), XDP_PASS, "{:?}", t.drops());
    assert_eq!(t.dropped(DropReason::SourceNotAllowed), 2);
    // An empty allowlist: nobody may speak.
    t.fp.set_allowed_sources(LO, 51, FAMILY_V4, Some(&[]))
        .expect("empty allowlist");
    assert_eq!(t.verdict(&ok.frame()), XDP_DROP);
}

#[test]
fn report_requests_push_every_live_peer_once() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let master = good_v3();
    let backup = Advert::v3(51, 90, ip("192.0.2.2"), vec![ip("192.0.2.100")]);
    for a in [&master, &backup] {
        assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    }
    assert_eq!(t.take_events().len(), 2, "two new peers");
    for a in [&master, &backup] {
        assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    }
    assert!(t.take_events().is_empty(), "unchanged adverts stay quiet");

    t.fp.request_reports(LO, 51, FAMILY_V4).expect("request");
    for a in [&master, &backup, &master, &backup] {
        assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    }
    let ev = t.take_events();
    assert_eq!(ev.len(), 2, "each live peer once: {ev:?}");
    assert!(ev.iter().all(|e| e.change == CHANGE_REQUESTED), "{ev:?}");
    let srcs: Vec<IpAddr> = ev.iter().map(|e| e.src_ip()).collect();
    assert_eq!(srcs, vec![ip("192.0.2.1"), ip("192.0.2.2")]);
    assert!(ev.iter().all(|e| e.prev_ns > 0 && e.prev_ns < e.ktime_ns));

    // watch() on a watched instance keeps the peers and asks for reports too,
    // with an epoch that only grows.
    let key = InstanceKey::new(LO, 51, FAMILY_V4);
    let before = t.fp.instance_conf(&key).expect("read").expect("watched");
    t.watch(51, FAMILY_V4, v3_conf());
    let after = t.fp.instance_conf(&key).expect("read").expect("watched");
    assert!(
        after.report_epoch > before.report_epoch,
        "{before:?} -> {after:?}"
    );
    assert_eq!(t.peer(51, ip("192.0.2.1")).expect("kept").count, 4);
    assert_eq!(t.verdict(&master.frame()), XDP_PASS);
    let ev = t.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].change, CHANGE_REQUESTED);
    assert!(matches!(
        t.fp.request_reports(LO, 77, FAMILY_V4),
        Err(haxdp::xdp::loader::XdpLoaderError::NotWatched { .. })
    ));
}

/// Moves the calling thread into a named network namespace.
fn enter_netns(ns: &Netns) {
    let path = format!("/var/run/netns/{}", ns.name);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    use std::os::fd::AsRawFd;
    // SAFETY: valid namespace fd; CLONE_NEWNET moves only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns into {}: {}",
        ns.name,
        std::io::Error::last_os_error()
    );
}

fn ifindex_in(ns: &Netns, ifname: &str) -> u32 {
    let out = ns.exec(&["cat", &format!("/sys/class/net/{ifname}/ifindex")]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("ifindex of {ifname}: {e}"))
}

#[test]
fn attached_to_a_veth_it_tracks_a_real_keepalived() {
    require_root();
    let peer_ns = Netns::new("kp");
    let our_ns = Netns::new("xd");
    let tag = haxdp_tests::unique_tag();
    let (ka_if, our_if) = (format!("hk{tag}"), format!("hx{tag}"));
    haxdp_tests::sh(&[
        "ip",
        "link",
        "add",
        &ka_if,
        "netns",
        &peer_ns.name,
        "type",
        "veth",
        "peer",
        "name",
        &our_if,
        "netns",
        &our_ns.name,
    ]);
    peer_ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", &ka_if]);
    peer_ns.exec(&["ip", "link", "set", &ka_if, "up"]);
    our_ns.exec(&["ip", "addr", "add", "192.0.2.2/24", "dev", &our_if]);
    our_ns.exec(&["ip", "link", "set", &our_if, "up"]);
    let ifindex = ifindex_in(&our_ns, &our_if);

    let dir = TempDir::new("xdp-keepalived");
    let mut ka = haxdp_tests::node::keepalived(
        &peer_ns,
        &dir,
        "keepalived",
        &format!(
            "global_defs {{\n  router_id haxdp_xdp_test\n}}\n\
             vrrp_instance V3 {{\n  state MASTER\n  interface {ka_if}\n  virtual_router_id 51\n  \
             priority 150\n  advert_int 1\n  version 3\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n\
             vrrp_instance V2 {{\n  state MASTER\n  interface {ka_if}\n  virtual_router_id 52\n  \
             priority 120\n  advert_int 1\n  version 2\n  authentication {{\n    auth_type PASS\n    \
             auth_pass haxdp\n  }}\n  virtual_ipaddress {{\n    192.0.2.101/24\n  }}\n}}\n"
        ),
    );

    let our_ns_name = our_ns.name.clone();
    let result = std::thread::spawn(move || {
        let ns = Netns { name: our_ns_name };
        enter_netns(&ns);
        std::mem::forget(ns); // the outer guard deletes it
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            let mut fp =
                haxdp::xdp::loader::XdpLoader::load().unwrap_or_else(|e| panic!("load: {e}"));
            assert!(fp.pin_dir().join(MAP_PEERS).exists(), "maps pinned");
            let mut events = fp.take_events().unwrap_or_else(|e| panic!("events: {e}"));
            fp.watch(ifindex, 51, FAMILY_V4, v3_conf())
                .expect("watch v3");
            fp.watch(
                ifindex,
                52,
                FAMILY_V4,
                InstanceConf::new(VERSION_MASK_V2, AUTH_PASS, b"haxdp"),
            )
            .expect("watch v2");
            let mode = fp.attach(&our_if).unwrap_or_else(|e| panic!("attach: {e}"));
            // A second program on the same interface is refused with a typed error.
            let mut other = haxdp::xdp::loader::XdpLoader::load_pinned_at(
                std::path::PathBuf::from(PIN_ROOT)
                    .join(format!("test-{}", haxdp_tests::unique_tag())),
            )
            .expect("second load");
            match other.attach(&our_if) {
                Err(haxdp::xdp::loader::XdpLoaderError::AlreadyAttached { .. }) => {}
                other => panic!("expected AlreadyAttached, got {other:?}"),
            }
            drop(other);

            let keepalived = PeerKey::new(ifindex, 51, ip("192.0.2.1"));
            let mut got = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            while got.len() < 2 && tokio::time::Instant::now() < deadline {
                if let Ok(Ok(batch)) =
                    tokio::time::timeout(Duration::from_secs(1), events.next_batch()).await
                {
                    got.extend(batch);
                }
            }
            let seen = wait_for(Duration::from_secs(10), || {
                fp.peer(&keepalived)
                    .ok()
                    .flatten()
                    .filter(|st| st.count >= 3)
            });
            let report = haxdp::maps_cmd::collect().unwrap_or_else(|e| panic!("maps: {e}"));
            (
                mode,
                got,
                seen,
                fp.peers().expect("peers"),
                fp.drop_counters().expect("drops"),
                report,
            )
        })
    })
    .join();
    let (mode, events, seen, peers, drops, report) = match result {
        Ok(r) => r,
        Err(p) => {
            let log = std::fs::read_to_string(dir.path.join("keepalived.log")).unwrap_or_default();
            std::panic::resume_unwind(Box::new(format!("{p:?}; keepalived log:\n{log}")));
        }
    };
    ka.signal(libc::SIGTERM);
    let _ = ka.wait_exit(Duration::from_secs(5));
    let log = ka.log_text();

    assert!(matches!(
        mode,
        haxdp::xdp::loader::XdpAttachMode::Native | haxdp::xdp::loader::XdpAttachMode::Skb
    ));
    let st = seen.unwrap_or_else(|| {
        panic!(
            "no 3 adverts from keepalived tracked; peers {peers:?}, drops {drops:?}, log:\n{log}"
        )
    });
    assert_eq!((st.priority, st.version, st.interval_cs), (150, 3, 100));
    // Adverts one second apart: gaps near 1 s.
    assert!(
        st.min_gap_ns > 500_000_000 && st.max_gap_ns < 3_000_000_000,
        "{st:?}"
    );
    let v2 = peers
        .iter()
        .find(|(k, _)| k.vrid == 52)
        .unwrap_or_else(|| panic!("v2 PASS peer tracked: {peers:?}, drops {drops:?}"));
    assert_eq!((v2.1.priority, v2.1.version), (120, 2));
    let ev51 = events
        .iter()
        .find(|e| e.vrid == 51)
        .unwrap_or_else(|| panic!("event for VRID 51: {events:?}"));
    assert!(ev51.change & CHANGE_NEW_PEER != 0);
    assert_eq!(ev51.addresses(), vec![ip("192.0.2.100")]);
    let bad: Vec<_> = drops.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        bad.is_empty(),
        "keepalived's adverts must all validate: {bad:?}"
    );
    assert!(
        report
            .peers
            .iter()
            .any(|p| p.vrid == 51 && p.address == ip("192.0.2.1") && p.adverts >= 3),
        "haxdp maps shows the peer: {report:?}"
    );
}

/// Fills VRID 51's unknown room with spoofed sources 0..8 at `priority`.
fn fill_unknown_room(t: &mut Tracker, priority: u8) {
    for i in 0..PEERS_UNKNOWN_PER_INSTANCE {
        let a = Advert::v3(51, priority, spoofed(i), vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_PASS, "peer {i}: {:?}", t.drops());
    }
}

/// How many of the spoofed sources 0..8 still have a record.
fn spoofed_left(t: &Tracker) -> Vec<u32> {
    (0..PEERS_UNKNOWN_PER_INSTANCE)
        .filter(|&i| t.peer(51, spoofed(i)).is_some())
        .collect()
}

#[test]
fn a_higher_priority_newcomer_takes_the_place_of_the_lowest_unknown_source() {
    // A backup that becomes master after the old master crashed was never heard
    // before; spoofed low-priority sources holding the whole room must not keep
    // it out (the other backups would become second masters).
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let ikey = InstanceKey::new(LO, 51, FAMILY_V4);
    fill_unknown_room(&mut t, 50);
    assert_eq!(t.take_events().len(), PEERS_UNKNOWN_PER_INSTANCE as usize);
    let router = ip("192.0.2.7");
    let a = Advert::v3(51, 100, router, vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&a.frame()), XDP_PASS, "{:?}", t.drops());
    let st = t.peer(51, router).expect("the router has a record");
    assert_eq!((st.priority, st.count), (100, 1));
    assert_eq!(
        spoofed_left(&t).len(),
        PEERS_UNKNOWN_PER_INSTANCE as usize - 1,
        "one priority-50 record made way"
    );
    assert_eq!(t.peer_count(), PEERS_UNKNOWN_PER_INSTANCE as usize);
    let ev = t.take_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].src_ip(), router);
    assert_eq!(ev[0].change & CHANGE_NEW_PEER, CHANGE_NEW_PEER);
    assert_eq!((ev[0].priority, ev[0].prev_ns), (100, 0));
    assert_eq!(t.dropped(DropReason::PeersFull), 0);
    let r = t.fp.room(&ikey).expect("ROOM").expect("room");
    assert_eq!(r.refused, 0);
    assert_eq!(r.admitted, u64::from(PEERS_UNKNOWN_PER_INSTANCE));
    // Its next advert only moves its record.
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    assert_eq!(t.peer(51, router).expect("kept").count, 2);
    assert!(t.take_events().is_empty());
}

#[test]
fn a_newcomer_no_better_than_the_lowest_unknown_source_is_still_refused() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let ikey = InstanceKey::new(LO, 51, FAMILY_V4);
    fill_unknown_room(&mut t, 50);
    t.take_events();
    // Ties do not evict, lower priorities do not, priority 0 (leaving) never does.
    for (n, prio) in [50u8, 49, 1, 0].into_iter().enumerate() {
        let a = Advert::v3(51, prio, ip("192.0.2.7"), vec![ip("192.0.2.100")]);
        assert_eq!(
            t.verdict(&a.frame()),
            XDP_DROP,
            "priority {prio} must be refused"
        );
        assert_eq!(t.dropped(DropReason::PeersFull), n as u64 + 1);
    }
    assert!(t.peer(51, ip("192.0.2.7")).is_none());
    assert_eq!(spoofed_left(&t).len(), PEERS_UNKNOWN_PER_INSTANCE as usize);
    assert!(t.take_events().is_empty());
    let r = t.fp.room(&ikey).expect("ROOM").expect("room");
    assert_eq!((r.refused, r.evicted), (4, 0));
    assert_eq!(r.admitted, u64::from(PEERS_UNKNOWN_PER_INSTANCE));
}

#[test]
fn protected_records_are_never_evicted() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let ikey = InstanceKey::new(LO, 51, FAMILY_V4);
    // Known routers at priority 10: two heard before they were protected (they gave
    // their room and their slots back), one protected before it ever spoke.
    let known = [ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")];
    for k in &known[..2] {
        let a = Advert::v3(51, 10, *k, vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    }
    for k in &known {
        t.fp.protect_peer(&PeerKey::new(LO, 51, *k))
            .expect("protect");
    }
    let a = Advert::v3(51, 10, known[2], vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&a.frame()), XDP_PASS);
    // The whole unknown room is free, and fills with priority 50.
    fill_unknown_room(&mut t, 50);
    // A spoofed source that was unknown and lowest, then protected, keeps its record.
    let lowest = spoofed(3);
    let low = Advert::v3(51, 5, lowest, vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&low.frame()), XDP_PASS);
    t.fp.protect_peer(&PeerKey::new(LO, 51, lowest))
        .expect("protect");
    // Its room went back: one newcomer is admitted without evicting.
    let first = Advert::v3(51, 100, spoofed(100), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&first.frame()), XDP_PASS, "{:?}", t.drops());
    assert_eq!(t.fp.room(&ikey).expect("ROOM").expect("room").evicted, 0);
    // Higher-priority newcomers replace the seven priority-50 records, never the
    // protected ones at 5 and 10, then a full room of 100s refuses the rest.
    for i in 101..120 {
        let a = Advert::v3(51, 100, spoofed(i), vec![ip("192.0.2.100")]);
        let want = if i < 108 { XDP_PASS } else { XDP_DROP };
        assert_eq!(t.verdict(&a.frame()), want, "newcomer {i}: {:?}", t.drops());
    }
    for k in known.iter().chain([&lowest]) {
        let st = t.peer(51, *k).expect("protected record kept");
        assert!(st.is_protected(), "{k}: {st:?}");
    }
    assert_eq!(
        spoofed_left(&t),
        vec![3],
        "only the protected one of the 50s"
    );
    let r = t.fp.room(&ikey).expect("ROOM").expect("room");
    assert_eq!((r.evicted, r.refused), (7, 12));
    assert_eq!(t.peer_count(), 4 + PEERS_UNKNOWN_PER_INSTANCE as usize);
    assert_eq!(t.dropped(DropReason::PeersFull), 12);
}

#[test]
fn the_slots_follow_priority_changes_pruning_and_unprotecting() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    fill_unknown_room(&mut t, 200);
    // spoofed(5) lowers its priority: it is now the lowest unknown record.
    let five = Advert::v3(51, 20, spoofed(5), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&five.frame()), XDP_PASS);
    let a = Advert::v3(51, 100, ip("192.0.2.7"), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&a.frame()), XDP_PASS, "{:?}", t.drops());
    assert!(t.peer(51, spoofed(5)).is_none(), "the lowest made way");
    assert_eq!(spoofed_left(&t).len(), 7);
    // The newcomer raises its priority: another newcomer at 150 finds nobody lower.
    let up = Advert::v3(51, 250, ip("192.0.2.7"), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&up.frame()), XDP_PASS);
    let b = Advert::v3(51, 150, ip("192.0.2.8"), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&b.frame()), XDP_DROP);

    // Pruning empties the room; its stale slots are taken again by newcomers, and
    // the eviction order is theirs, not the pruned records'.
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(t.fp.prune_peers(1_000_000).expect("prune"), 8);
    assert_eq!(t.peer_count(), 0);
    for i in 0..PEERS_UNKNOWN_PER_INSTANCE {
        let prio = if i == 6 { 30 } else { 60 };
        let a = Advert::v3(51, prio, spoofed(200 + i), vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_PASS, "{i}: {:?}", t.drops());
    }
    assert_eq!(t.verdict(&b.frame()), XDP_PASS, "{:?}", t.drops());
    assert!(
        t.peer(51, spoofed(206)).is_none(),
        "the lowest after the prune"
    );
    assert_eq!(t.peer_count(), PEERS_UNKNOWN_PER_INSTANCE as usize);

    // A protected router that is unprotected again counts as unknown once more and
    // can make way like the others (the XDP program gives it a slot with its next
    // advert) once the room is back to its size.
    let r = ip("192.0.2.9");
    let rk = PeerKey::new(LO, 51, r);
    t.fp.protect_peer(&rk).expect("protect");
    let ra = Advert::v3(51, 40, r, vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&ra.frame()), XDP_PASS);
    t.fp.unprotect_peer(&rk).expect("unprotect");
    // Nine unknown records for eight slots: it has none until one is free, which
    // protecting another one does.
    t.fp.protect_peer(&PeerKey::new(LO, 51, spoofed(200)))
        .expect("protect");
    assert_eq!(t.verdict(&ra.frame()), XDP_PASS, "its slot");
    assert_ne!(t.peer(51, r).expect("unprotected").slot, 0);
    let c = Advert::v3(51, 50, ip("192.0.2.10"), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&c.frame()), XDP_PASS, "{:?}", t.drops());
    assert!(
        t.peer(51, r).is_none(),
        "the unprotected router at 40 made way"
    );
    assert!(t.peer(51, spoofed(200)).expect("protected").is_protected());

    // unwatch forgets the room with its slots; watching again starts empty.
    t.fp.unwatch(LO, 51, FAMILY_V4).expect("unwatch");
    t.watch(51, FAMILY_V4, v3_conf());
    let room =
        t.fp.room(&InstanceKey::new(LO, 51, FAMILY_V4))
            .expect("ROOM")
            .expect("room");
    assert_eq!(room, InstanceRoom::default());
    fill_unknown_room(&mut t, 50);
    assert_eq!(t.verdict(&a.frame()), XDP_PASS, "{:?}", t.drops());
}

/// The batched read of PEERS (one bpf(2) call per 256 records, what a wake-up that
/// re-checks many backups uses) returns exactly what iterating the map returns, across
/// several chunks: 40 VRIDs x 8 sources = 320 records.
#[test]
fn batched_peers_read_equals_the_iteration() {
    let mut t = Tracker::new();
    for vrid in 1..=40u8 {
        t.watch(vrid, FAMILY_V4, v3_conf());
        for host in 1..=8u8 {
            let src = ip(&format!("192.0.2.{host}"));
            let frame = Advert::v3(vrid, 100, src, vec![ip("192.0.2.100")]).frame();
            assert_eq!(t.run(&frame).0, XDP_PASS, "vrid {vrid} host {host}");
        }
    }
    let mut iterated = t.fp.peers().expect("PEERS");
    let mut batched = t.fp.peers_batch().expect("PEERS batch");
    assert_eq!(iterated.len(), 320);
    let key = |p: &(haxdp_common::PeerKey, haxdp_common::PeerState)| (p.0.vrid, p.0.addr);
    iterated.sort_by_key(key);
    batched.sort_by_key(key);
    assert_eq!(batched, iterated);
}
