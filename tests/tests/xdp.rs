//! The XDP advert tracker, run by the kernel: BPF_PROG_TEST_RUN on hand-built
//! frames (one per verdict and drop reason), and attached to a veth that
//! receives adverts from a real keepalived in a neighbouring namespace.
//!
//! Needs root; run through `cargo xtask test`. Nothing here skips.

#[path = "../../xtask/src/frames.rs"]
mod frames;

use std::net::IpAddr;
use std::time::Duration;

use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::Ebpf;
use frames::Advert;
use haxdp_common::*;
use haxdp_tests::{require_root, wait_for, Netns, TempDir};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
/// BPF_PROG_TEST_RUN without a context runs as if on the caller's loopback.
const LO: u32 = 1;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// A private copy of the tracker: its own maps, nothing pinned or attached.
struct Tracker {
    ebpf: Ebpf,
    events: RingBuf<MapData>,
}

impl Tracker {
    fn new() -> Self {
        require_root();
        let mut ebpf = Ebpf::load(haxdp::fastpath::ebpf_object())
            .unwrap_or_else(|e| panic!("loading the XDP object: {e}"));
        let prog: &mut Xdp = ebpf
            .program_mut(PROG_XDP)
            .expect("program haxdp in the object")
            .try_into()
            .expect("an XDP program");
        prog.load()
            .unwrap_or_else(|e| panic!("the verifier refused haxdp: {e}"));
        let events = RingBuf::try_from(ebpf.take_map(MAP_EVENTS).expect("EVENTS map"))
            .expect("EVENTS is a ring buffer");
        Tracker { ebpf, events }
    }

    fn watch(&mut self, vrid: u8, family: u8, conf: InstanceConf) {
        let mut map: HashMap<_, InstanceKey, InstanceConf> =
            HashMap::try_from(self.ebpf.map_mut(MAP_INSTANCES).expect("INSTANCES")).expect("hash");
        let key = InstanceKey {
            ifindex: LO,
            vrid,
            family,
            _pad: [0; 2],
        };
        map.insert(key, conf, 0).expect("insert instance");
    }

    /// Runs one frame; returns the verdict and the frame as the program left it.
    fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(PROG_XDP)
            .expect("program")
            .try_into()
            .expect("xdp");
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.data_out = Some(&mut out);
        let r = prog
            .test_run(opts)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN: {e}"));
        out.truncate(r.data_size_out as usize);
        (r.return_value, out)
    }

    fn verdict(&mut self, frame: &[u8]) -> u32 {
        self.run(frame).0
    }

    fn counters(&self, name: &str, count: u32) -> Vec<u64> {
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(name).expect("counter map")).expect("per-cpu");
        (0..count)
            .map(|i| map.get(&i, 0).expect("counter").iter().sum())
            .collect()
    }

    fn drops(&self) -> Vec<u64> {
        self.counters(MAP_DROPS, DROP_REASON_COUNT)
    }

    fn stat(&self, index: u32) -> u64 {
        self.counters(MAP_STATS, STAT_COUNT)[index as usize]
    }

    fn peer(&self, vrid: u8, src: IpAddr) -> Option<PeerState> {
        let map: HashMap<_, PeerKey, PeerState> =
            HashMap::try_from(self.ebpf.map(MAP_PEERS).expect("PEERS")).expect("hash");
        map.get(&PeerKey::new(LO, vrid, src), 0).ok()
    }

    fn peer_count(&self) -> usize {
        let map: HashMap<_, PeerKey, PeerState> =
            HashMap::try_from(self.ebpf.map(MAP_PEERS).expect("PEERS")).expect("hash");
        map.keys().filter(Result::is_ok).count()
    }

    fn take_events(&mut self) -> Vec<AdvertEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            out.push(AdvertEvent::from_bytes(&item).expect("a whole AdvertEvent"));
        }
        out
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
fn vlan_tagged_advert_passes() {
    let mut t = Tracker::new();
    t.watch(54, FAMILY_V4, v3_conf());
    let mut a = Advert::v3(54, 90, ip("192.0.2.3"), vec![ip("192.0.2.54")]);
    a.vlan = Some(100);
    assert_eq!(t.verdict(&a.frame()), XDP_PASS, "drops: {:?}", t.drops());
    assert_eq!(t.peer(54, ip("192.0.2.3")).expect("peer").priority, 90);
}

#[test]
fn non_vrrp_frame_passes_untouched() {
    let mut t = Tracker::new();
    let frame = frames::tcp_frame();
    let (verdict, out) = t.run(&frame);
    assert_eq!(verdict, XDP_PASS);
    assert_eq!(out, frame);
    assert!(t.drops().iter().all(|&n| n == 0));
    assert_eq!(t.stat(STAT_VALID), 0);
    assert!(t.take_events().is_empty());
}

/// Runs `frame` on a tracker watching VRID 51 (v3, IPv4 and IPv6) and VRID 52
/// (v2 PASS "secret"), and asserts a drop counted under `reason` alone.
fn assert_dropped(frame: &[u8], reason: u32) {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    t.watch(51, FAMILY_V6, v3_conf());
    t.watch(52, FAMILY_V4, v2_pass_conf(b"secret"));
    let name = drop_reason_name(reason);
    assert_eq!(t.verdict(frame), XDP_DROP, "expected a drop for {name}");
    let drops = t.drops();
    for (i, n) in drops.iter().enumerate() {
        let want = u64::from(i as u32 == reason);
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

#[test]
fn drop_bad_ttl() {
    let mut a = good_v3();
    a.ttl = 64;
    assert_dropped(&a.frame(), DROP_BAD_TTL);
    let mut a6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
    a6.ttl = 1;
    assert_dropped(&a6.frame(), DROP_BAD_TTL);
}

#[test]
fn drop_bad_version() {
    let mut a = good_v3();
    a.version = 4;
    assert_dropped(&a.frame(), DROP_BAD_VERSION);
    // VRRPv2 is IPv4 only (RFC 3768).
    let mut a6 = Advert::v3(51, 100, ip("2001:db8::1"), vec![ip("2001:db8::100")]);
    a6.version = 2;
    assert_dropped(&a6.frame(), DROP_BAD_VERSION);
}

#[test]
fn drop_bad_type() {
    let mut a = good_v3();
    a.typ = 2;
    assert_dropped(&a.frame(), DROP_BAD_TYPE);
}

#[test]
fn drop_bad_length() {
    let a = good_v3();
    let mut m = a.vrrp();
    m[3] = 3; // three addresses claimed, one present
    assert_dropped(&a.frame_around(&m), DROP_BAD_LENGTH);
}

#[test]
fn drop_truncated() {
    let mut f = good_v3().frame();
    f.truncate(f.len() - 2); // the IP length now claims more than the frame holds
    assert_dropped(&f, DROP_TRUNCATED);
}

#[test]
fn drop_fragment() {
    let mut a = good_v3();
    a.frag = 0x2000; // more fragments
    assert_dropped(&a.frame(), DROP_FRAGMENT);
}

#[test]
fn drop_too_many_addrs() {
    let addrs = (0..=MAX_ADDRS_V4)
        .map(|i| IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i as u8)))
        .collect();
    let a = Advert::v3(51, 100, ip("192.0.2.1"), addrs);
    assert_dropped(&a.frame(), DROP_TOO_MANY_ADDRS);
}

#[test]
fn drop_bad_checksum() {
    let a = good_v3();
    let mut m = a.vrrp();
    m[2] ^= 1; // priority changed after the checksum was computed
    assert_dropped(&a.frame_around(&m), DROP_BAD_CHECKSUM);
    // A VRRPv3 checksum without the pseudo-header (holo's slip) is wrong too.
    let mut m = a.vrrp();
    m[6..8].copy_from_slice(&[0, 0]);
    let c = frames::checksum(&m);
    m[6..8].copy_from_slice(&c.to_be_bytes());
    assert_dropped(&a.frame_around(&m), DROP_BAD_CHECKSUM);
}

#[test]
fn drop_vrid_not_watched() {
    let a = Advert::v3(99, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")]);
    assert_dropped(&a.frame(), DROP_VRID_NOT_WATCHED);
}

#[test]
fn drop_version_mismatch() {
    // VRID 51 runs VRRPv3 only.
    let a = Advert::v2_pass(51, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"secret");
    assert_dropped(&a.frame(), DROP_VERSION_MISMATCH);
}

#[test]
fn drop_auth_mismatch() {
    let wrong = Advert::v2_pass(52, 100, ip("192.0.2.1"), vec![ip("192.0.2.100")], b"guess");
    assert_dropped(&wrong.frame(), DROP_AUTH_MISMATCH);
    let mut no_auth = wrong.clone();
    no_auth.auth_type = AUTH_NONE;
    no_auth.auth_pass = [0; 8];
    assert_dropped(&no_auth.frame(), DROP_AUTH_MISMATCH);
}

#[test]
fn full_peers_map_refuses_newcomers_and_keeps_the_master() {
    let mut t = Tracker::new();
    t.watch(51, FAMILY_V4, v3_conf());
    let master = ip("192.0.2.1");
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS);
    // Spoofed sources fill the map.
    for i in 1..PEERS_MAX_ENTRIES {
        let src = IpAddr::V4(std::net::Ipv4Addr::from(0xc633_6400 + i)); // 198.51.100.0/22..
        let a = Advert::v3(51, 250, src, vec![ip("192.0.2.100")]);
        assert_eq!(t.verdict(&a.frame()), XDP_PASS, "peer {i}: {:?}", t.drops());
    }
    assert_eq!(t.peer_count(), PEERS_MAX_ENTRIES as usize);
    let late = Advert::v3(51, 250, ip("203.0.113.9"), vec![ip("192.0.2.100")]);
    assert_eq!(t.verdict(&late.frame()), XDP_DROP);
    assert_eq!(t.drops()[DROP_PEERS_FULL as usize], 1);
    // The master's record was not evicted and still moves.
    assert_eq!(t.verdict(&good_v3().frame()), XDP_PASS);
    assert_eq!(t.peer(51, master).expect("master kept").count, 2);
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
            let mut fp = haxdp::fastpath::Fastpath::load().unwrap_or_else(|e| panic!("load: {e}"));
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
            let mut other = haxdp::fastpath::Fastpath::load_pinned_at(
                std::path::PathBuf::from(PIN_ROOT)
                    .join(format!("test-{}", haxdp_tests::unique_tag())),
            )
            .expect("second load");
            match other.attach(&our_if) {
                Err(haxdp::fastpath::FastpathError::AlreadyAttached { .. }) => {}
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
        haxdp::fastpath::XdpAttachMode::Native | haxdp::fastpath::XdpAttachMode::Skb
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
