//! `haxdp run` end to end: two load balancers and a client on a bridge, each
//! in its own network namespace. Root only; run through `cargo xtask test`.
//!
//! Timings are read from a tcpdump in the client's namespace (kernel capture
//! timestamps of the adverts and gratuitous ARPs), so they are what the LAN
//! saw, not what the daemons believe.

use std::time::Duration;

use haxdp_tests::node::{
    has_vip, haxdp_config, mac_of, mdi_v3, wait_vip, Node, Rx, PASS_AUTH, VIP,
};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{require_root, wait_for, workspace_bin, Lan, Netns, Proc, TempDir};

fn last_advert_from(ev: &[Seen], src: &str, before: f64) -> Option<f64> {
    ev.iter()
        .filter_map(|e| match e {
            Seen::Advert { t, src: s, .. } if s == src && *t <= before => Some(*t),
            _ => None,
        })
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))
}

fn first_garp_by(ev: &[Seen], mac: &str, after: f64) -> Option<f64> {
    ev.iter().find_map(|e| match e {
        Seen::Garp { t, addr, mac: m } if addr == VIP && m == mac && *t > after => Some(*t),
        _ => None,
    })
}

fn ping_vip(client: &Netns) -> bool {
    client
        .try_exec(&["ping", "-c", "1", "-W", "1", VIP])
        .status
        .success()
}

fn crash_failover(rx: Rx) {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let tmp = TempDir::new("crash");
    let cap = Capture::start(client, "eth0", &tmp.path.join("tcpdump.txt"));
    let mut lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), rx);
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), rx);

    assert!(
        wait_vip(h1, true, Duration::from_secs(5)),
        "lb1 (priority 100) never took the VIP:\n{}",
        lb1.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!has_vip(h2), "both nodes hold the VIP:\n{}", lb2.log());
    assert!(ping_vip(client), "the VIP does not answer the client");

    lb1.proc().signal(libc::SIGKILL);
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "lb2 did not take over after lb1 was killed:\n{}",
        lb2.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    let ev = cap.events();
    // lb1 is dead: its last advert on the wire is the one the deadline counts from.
    let last = last_advert_from(&ev, "192.0.2.10", f64::MAX)
        .unwrap_or_else(|| panic!("no advert from lb1 seen: {ev:?}"));
    let garp = first_garp_by(&ev, &mac_of(1), last).unwrap_or_else(|| {
        panic!(
            "lb2 sent no gratuitous ARP after lb1 died: {ev:?}\n{}",
            lb2.log()
        )
    });
    let gap = garp - last;
    let limit = mdi_v3(90, 10) + 0.020;
    eprintln!(
        "{rx:?}: lb1's last advert to lb2's first GARP: {:.1} ms (limit {:.1} ms)",
        gap * 1e3,
        limit * 1e3
    );
    assert!(
        gap <= limit,
        "takeover took {:.1} ms after lb1's last advert; RFC 9568 allows Master_Down_Interval {:.1} ms (+20 ms)",
        gap * 1e3,
        (limit - 0.020) * 1e3
    );
    assert!(
        ping_vip(client),
        "the VIP does not answer after the takeover"
    );

    // lb1 restarts: the VIP its crash left behind is removed at start, and
    // lb1 (higher priority, preempt) takes the VIP back; lb2 releases it.
    lb1.start();
    assert!(
        wait_for(Duration::from_secs(5), || {
            (has_vip(h1) && !has_vip(h2)).then_some(())
        })
        .is_some(),
        "after lb1's restart the VIP should be on lb1 only (lb1 {}, lb2 {}):\n{}\n{}",
        has_vip(h1),
        has_vip(h2),
        lb1.log(),
        lb2.log()
    );
}

#[test]
fn crash_failover_socket_path() {
    crash_failover(Rx::Socket);
}

#[test]
fn crash_failover_xdp_path() {
    crash_failover(Rx::Xdp);
}

#[test]
fn graceful_stop_hands_over_after_skew() {
    require_root();
    let rx = Rx::Xdp;
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let tmp = TempDir::new("term");
    let cap = Capture::start(client, "eth0", &tmp.path.join("tcpdump.txt"));
    let mut lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), rx);
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), rx);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    std::thread::sleep(Duration::from_millis(300));

    lb1.proc().signal(libc::SIGTERM);
    let code = lb1
        .proc
        .as_mut()
        .expect("running")
        .wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "haxdp should exit 0 on TERM:\n{}", lb1.log());
    assert!(!has_vip(h1), "lb1 kept the VIP after TERM");
    assert!(wait_vip(h2, true, Duration::from_secs(3)), "{}", lb2.log());
    std::thread::sleep(Duration::from_millis(200));
    let ev = cap.events();
    let prio0 = ev
        .iter()
        .find_map(|e| match e {
            Seen::Advert {
                t, src, prio: 0, ..
            } if src == "192.0.2.10" => Some(*t),
            _ => None,
        })
        .unwrap_or_else(|| panic!("lb1 sent no priority-0 advert on TERM: {ev:?}"));
    let garp = first_garp_by(&ev, &mac_of(1), prio0).expect("lb2 sent no GARP");
    let skew = (256.0 - 90.0) * 0.1 / 256.0;
    let gap = garp - prio0;
    eprintln!(
        "priority-0 advert to GARP: {:.1} ms (Skew_Time {:.1} ms)",
        gap * 1e3,
        skew * 1e3
    );
    assert!(
        gap <= skew + 0.020,
        "takeover {:.1} ms after the priority-0 advert; RFC 9568 6.4.2 allows Skew_Time {:.1} ms (+20 ms)",
        gap * 1e3,
        skew * 1e3
    );
}

#[test]
fn partition_heals_to_one_master() {
    require_root();
    let rx = Rx::Xdp;
    let lan = Lan::new(3);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), rx);
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), rx);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());

    // Partition: the bridge drops protocol 112 to and from lb2's port
    // (nftables bridge family; the kernel here has no netem or tc actions).
    let port = lan.port_of(1);
    lan.bridge.exec(&["nft", "add", "table", "bridge", "part"]);
    lan.bridge.exec(&[
        "nft",
        "add",
        "chain",
        "bridge",
        "part",
        "filt",
        "{ type filter hook forward priority 0 ; }",
    ]);
    for dir in ["iifname", "oifname"] {
        lan.bridge.exec(&[
            "nft", "add", "rule", "bridge", "part", "filt", "meta", dir, &port, "ip", "protocol",
            "112", "drop",
        ]);
    }
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "lb2 should become master while partitioned:\n{}",
        lb2.log()
    );
    assert!(has_vip(h1), "lb1 should stay master while partitioned");

    lan.bridge
        .exec(&["nft", "delete", "table", "bridge", "part"]);
    let healed = std::time::Instant::now();
    assert!(
        wait_vip(h2, false, Duration::from_secs(3)),
        "lb2 kept the VIP after the partition healed:\n{}",
        lb2.log()
    );
    let took = healed.elapsed().as_secs_f64();
    // One advert interval plus skew, with scheduling slack for this check's polling.
    let limit = 0.1 + (256.0 - 90.0) * 0.1 / 256.0 + 0.1;
    eprintln!(
        "dual master resolved {:.1} ms after heal (limit {:.1} ms)",
        took * 1e3,
        limit * 1e3
    );
    assert!(
        took <= limit,
        "dual master lasted {:.1} ms after heal",
        took * 1e3
    );
    assert!(
        has_vip(h1),
        "lb1 (higher priority) must hold the VIP after heal"
    );
    // The loser no longer answers ARP for the VIP.
    let out = lan.hosts[2].try_exec(&["arping", "-c", "2", "-w", "2", "-I", "eth0", VIP]);
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    if out.status.success() {
        assert!(
            !text.contains(&mac_of(1)),
            "lb2 still answers ARP for the VIP: {text}"
        );
    }
}

/// keepalived 2.2.7 (Debian's package) as the peer.
fn keepalived(ns: &Netns, dir: &TempDir, name: &str, prio: u8, state: &str) -> Proc {
    let config = format!(
        "global_defs {{\n  router_id {name}\n  enable_script_security\n}}\n\
         vrrp_instance VI_1 {{\n  state {state}\n  interface eth0\n  virtual_router_id 51\n  \
         priority {prio}\n  advert_int 1\n{PASS_AUTH}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    );
    haxdp_tests::node::keepalived(ns, dir, name, &config)
}

#[test]
fn interop_keepalived_master_haxdp_backup_v2() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let dir = TempDir::new("ka");
    let mut ka = keepalived(h1, &dir, "ka1", 100, "MASTER");
    let conf = haxdp_config("lb2", 90, 2, "1", PASS_AUTH);
    let hx = Node::haxdp(h2, "lb2", &conf, Rx::Xdp);
    assert!(
        wait_vip(h1, true, Duration::from_secs(8)),
        "keepalived never became master: {}",
        ka.log_text()
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !has_vip(h2),
        "haxdp took the VIP from a healthy keepalived master (auth or checksum mismatch?):\n{}",
        hx.log()
    );
    // keepalived stops (priority-0 advert): haxdp takes over after Skew_Time.
    ka.signal(libc::SIGTERM);
    ka.wait_exit(Duration::from_secs(5));
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "haxdp did not take over from a stopping keepalived:\n{}",
        hx.log()
    );
    // keepalived comes back with the higher priority and preempts: haxdp yields.
    let ka2 = keepalived(h1, &dir, "ka1b", 100, "BACKUP");
    assert!(
        wait_vip(h2, false, Duration::from_secs(8)),
        "haxdp did not yield to a higher-priority keepalived:\n{}\n{}",
        hx.log(),
        ka2.log_text()
    );
    assert!(wait_vip(h1, true, Duration::from_secs(3)));
}

#[test]
fn interop_haxdp_master_keepalived_backup_v2() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let dir = TempDir::new("ka");
    let conf = haxdp_config("lb1", 100, 2, "1", PASS_AUTH);
    let hx = Node::haxdp(h1, "lb1", &conf, Rx::Xdp);
    let ka = keepalived(h2, &dir, "ka2", 90, "BACKUP");
    assert!(wait_vip(h1, true, Duration::from_secs(8)), "{}", hx.log());
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !has_vip(h2),
        "keepalived took the VIP from a healthy haxdp master (does it accept our adverts?):\n{}",
        ka.log_text()
    );
    hx.proc().signal(libc::SIGKILL);
    // keepalived's Master_Down_Interval at 1 s adverts, priority 90: 3.65 s.
    assert!(
        wait_vip(h2, true, Duration::from_secs(6)),
        "keepalived did not take over from a crashed haxdp:\n{}",
        ka.log_text()
    );
}

#[test]
fn interop_v3_both_directions() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let dir = TempDir::new("ka3");
    let hx = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), Rx::Xdp);
    let ka = haxdp_tests::node::keepalived(
        h2,
        &dir,
        "ka",
        &format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
             priority 90\n  advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
        ),
    );
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", hx.log());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !has_vip(h2),
        "keepalived (VRRPv3) took the VIP from a healthy haxdp master:\n{}",
        ka.log_text()
    );
    hx.proc().signal(libc::SIGTERM);
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "keepalived (VRRPv3) did not take over from a stopping haxdp:\n{}",
        ka.log_text()
    );
}

/// A backup daemon stopped for three Master_Down_Intervals while the master
/// stays healthy must not take over when it resumes.
fn stalled_backup_stays_backup(rx: Rx) {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), rx);
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), rx);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    assert!(wait_vip(h2, false, Duration::from_secs(2)), "{}", lb2.log());
    std::thread::sleep(Duration::from_millis(300));
    let before = lb2.log().matches("-> Master").count();
    lb2.proc().signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs_f64(3.0 * mdi_v3(90, 10)));
    lb2.proc().signal(libc::SIGCONT);
    // Watch for a while: any takeover would show as the VIP on lb2.
    let took = wait_for(Duration::from_millis(800), || has_vip(h2).then_some(()));
    assert!(
        took.is_none(),
        "{rx:?}: the stalled backup took the VIP from a healthy master:\n{}",
        lb2.log()
    );
    assert_eq!(
        lb2.log().matches("-> Master").count(),
        before,
        "{rx:?}: the stalled backup went to Master:\n{}",
        lb2.log()
    );
    assert!(has_vip(h1), "the master lost its VIP");
}

#[test]
fn stalled_backup_stays_backup_socket_path() {
    stalled_backup_stays_backup(Rx::Socket);
}

#[test]
fn stalled_backup_stays_backup_xdp_path() {
    stalled_backup_stays_backup(Rx::Xdp);
}

#[test]
fn hup_keeps_unchanged_instances_and_refuses_broken_config() {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let tmp = TempDir::new("hup");
    let cap = Capture::start(client, "eth0", &tmp.path.join("tcpdump.txt"));
    let lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), Rx::Xdp);
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    std::thread::sleep(Duration::from_millis(500));
    let garps_before = cap
        .events()
        .iter()
        .filter(|e| matches!(e, Seen::Garp { .. }))
        .count();

    // Unchanged file: no transition, no VIP gap.
    let transitions_before = lb1.log().matches("-> Master").count();
    lb1.proc().signal(libc::SIGHUP);
    let reloaded = wait_for(Duration::from_secs(3), || {
        lb1.log().contains("configuration reloaded").then_some(())
    });
    assert!(reloaded.is_some(), "no reload logged:\n{}", lb1.log());
    for _ in 0..40 {
        assert!(
            has_vip(h1),
            "the VIP disappeared during an unchanged reload"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let garps_after = cap
        .events()
        .iter()
        .filter(|e| matches!(e, Seen::Garp { .. }))
        .count();
    assert_eq!(
        garps_before, garps_after,
        "an unchanged reload re-announced the VIP"
    );
    assert_eq!(
        lb1.log().matches("-> Master").count(),
        transitions_before,
        "a transition after an unchanged reload:\n{}",
        lb1.log()
    );
    assert!(
        !has_vip(h2),
        "lb2 took the VIP during lb1's reload:\n{}",
        lb2.log()
    );

    // Broken file: refused with its line, old configuration keeps running.
    std::fs::write(&lb1.conf, "vrrp_instance VI_1 {\n  virtual_router_id 999\n").expect("write");
    lb1.proc().signal(libc::SIGHUP);
    let refused = wait_for(Duration::from_secs(3), || {
        lb1.log().contains("reload refused").then_some(())
    });
    assert!(
        refused.is_some(),
        "broken config not refused:\n{}",
        lb1.log()
    );
    assert!(
        lb1.log().contains("keepalived.conf:"),
        "the refusal should name file:line:\n{}",
        lb1.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        has_vip(h1),
        "the master gave up its VIP after a refused reload"
    );
    assert!(!has_vip(h2));
}

#[test]
fn manual_failover_with_the_seeds_down_file() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let tmp = TempDir::new("down");
    // The seeds' check, verbatim but for the path; each node its own file.
    let node_conf = |name: &str, prio: u8| {
        let down = tmp.path.join(format!("down-{name}"));
        let script = format!(
            "vrrp_script chkfile {{\n  script \"[[ -f {} ]] && exit 1 || exit 0\"\n  interval 0.2\n  weight -20\n}}\n",
            down.display()
        );
        let track = "  track_script {\n    chkfile\n  }";
        (script + &haxdp_config(name, prio, 3, "0.1", track), down)
    };
    let (c1, down1) = node_conf("lb1", 100);
    let (c2, _down2) = node_conf("lb2", 90);
    let lb1 = Node::haxdp(h1, "lb1", &c1, Rx::Xdp);
    let lb2 = Node::haxdp(h2, "lb2", &c2, Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!has_vip(h2));

    // `touch down` on lb1: 100 - 20 = 80 < 90, so lb2 takes over.
    std::fs::write(&down1, "").expect("create down file");
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "lb2 did not take over after lb1's down file appeared:\n{}\n{}",
        lb1.log(),
        lb2.log()
    );
    assert!(
        wait_vip(h1, false, Duration::from_secs(1)),
        "lb1 kept the VIP"
    );
    let st = h1.try_exec(&[
        workspace_bin("haxdp").to_str().expect("utf-8"),
        "status",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&st.stdout)
        )
    });
    let inst = &v["instances"][0];
    assert_eq!(inst["effective_priority"], 80, "{v}");
    assert_eq!(inst["state"], "BACKUP", "{v}");
    assert_eq!(inst["master_addr"], "192.0.2.11", "{v}");
    assert!(
        inst["priority_reasons"].to_string().contains("chkfile"),
        "status should say what lowered the priority: {v}"
    );
    // `rm down`: lb1 is back at 100 and preempts.
    std::fs::remove_file(&down1).expect("remove down file");
    assert!(
        wait_vip(h1, true, Duration::from_secs(3)),
        "lb1 did not take the VIP back:\n{}",
        lb1.log()
    );
    assert!(
        wait_vip(h2, false, Duration::from_secs(1)),
        "lb2 kept the VIP"
    );
}

#[test]
fn sync_group_members_fail_together() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let tmp = TempDir::new("sync");
    // The group's generic notify script appends its arguments to a log per node.
    let recorder = tmp.file(
        "group-notify.sh",
        "#!/bin/sh\necho \"$@\" >> \"$0.$1.log\"\n",
    );
    std::fs::set_permissions(
        &recorder,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    // The member's check is weighted, but in a sync group keepalived ignores member
    // weights: a failure must fault the whole group, not lower VI_1 alone (which would
    // leave VI_1 on lb2 and VI_2 on lb1).
    let conf = |name: &str, prio: u8, fail: &std::path::Path| {
        format!(
            "vrrp_script chk {{\n  script \"test ! -e {fail}\"\n  interval 0.1\n}}\n\
             vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n  \
             notify \"{rec} {name}\"\n}}\n\
             vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  track_script {{\n    chk weight -20\n  }}\n  \
             virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n\
             vrrp_instance VI_2 {{\n  interface eth0\n  virtual_router_id 52\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    192.0.2.101/24\n  }}\n}}\n",
            fail = fail.display(),
            rec = recorder.display()
        )
    };
    let fail1 = tmp.path.join("fail-lb1");
    let fail2 = tmp.path.join("fail-lb2");
    let lb1 = Node::haxdp(h1, "lb1", &conf("lb1", 100, &fail1), Rx::Xdp);
    let lb2 = Node::haxdp(h2, "lb2", &conf("lb2", 90, &fail2), Rx::Xdp);
    let holds = |ns: &Netns, a: &str| {
        let out = ns.try_exec(&["ip", "-o", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {a}/"))
    };
    let both_on = |ns: &Netns| holds(ns, "192.0.2.100") && holds(ns, "192.0.2.101");
    assert!(
        wait_for(Duration::from_secs(5), || both_on(h1).then_some(())).is_some(),
        "lb1 should hold both VIPs:\n{}",
        lb1.log()
    );
    // VI_1's check (weight 0) fails on lb1: VI_1 goes to Fault and takes
    // VI_2 with it, so lb2 ends up with both VIPs.
    std::fs::write(&fail1, "").expect("create");
    assert!(
        wait_for(Duration::from_secs(3), || both_on(h2).then_some(())).is_some(),
        "lb2 should take both VIPs of the group:\n{}\n{}",
        lb1.log(),
        lb2.log()
    );
    assert!(
        !holds(h1, "192.0.2.101"),
        "VI_2 stayed master on lb1 though its sync group is in fault:\n{}",
        lb1.log()
    );
    // keepalived's group notifications: `GROUP name STATE 0`, once per group transition
    // (not once per member).
    let notes = |name: &str, last: &str| -> Vec<String> {
        let path = format!("{}.{name}.log", recorder.display());
        let read = || {
            std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        wait_for(Duration::from_secs(3), || {
            let l = read();
            (l.last().map(String::as_str) == Some(last)).then_some(l)
        })
        .unwrap_or_else(read)
    };
    let lb1_notes = notes("lb1", "lb1 GROUP G FAULT 0");
    assert_eq!(
        lb1_notes,
        [
            "lb1 GROUP G BACKUP 0",
            "lb1 GROUP G MASTER 0",
            "lb1 GROUP G FAULT 0"
        ],
        "lb1's group notifications:\n{}",
        lb1.log()
    );
    let lb2_notes = notes("lb2", "lb2 GROUP G MASTER 0");
    assert_eq!(
        lb2_notes.first().map(String::as_str),
        Some("lb2 GROUP G BACKUP 0"),
        "{lb2_notes:?}"
    );
    assert_eq!(
        lb2_notes.last().map(String::as_str),
        Some("lb2 GROUP G MASTER 0"),
        "{lb2_notes:?}\n{}",
        lb2.log()
    );
    assert!(
        lb2_notes.windows(2).all(|w| w[0] != w[1]),
        "a group state notified twice in a row: {lb2_notes:?}"
    );
}

/// keepalived's sync-group election: a member whose master went silent waits until every
/// member sees its master down (one LAN losing adverts must not split the group across the
/// nodes); when the master node really dies, the whole group moves.
#[test]
fn sync_group_member_waits_for_the_group_then_all_move() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let conf = |prio: u8| {
        format!(
            "vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n\
             vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n\
             vrrp_instance VI_2 {{\n  interface eth0\n  virtual_router_id 52\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    192.0.2.101/24\n  }}\n}}\n"
        )
    };
    let lb1 = Node::haxdp(h1, "lb1", &conf(100), Rx::Xdp);
    let lb2 = Node::haxdp(h2, "lb2", &conf(90), Rx::Xdp);
    let holds = |ns: &Netns, a: &str| {
        let out = ns.try_exec(&["ip", "-o", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {a}/"))
    };
    let both = |ns: &Netns| holds(ns, "192.0.2.100") && holds(ns, "192.0.2.101");
    assert!(
        wait_for(Duration::from_secs(5), || both(h1).then_some(())).is_some(),
        "lb1 should hold both VIPs:\n{}",
        lb1.log()
    );
    // The bridge stops forwarding VI_1's adverts (VRID 51, the VRRP header's second
    // byte) to lb2; VI_2's still arrive.
    let port = lan.port_of(1);
    lan.bridge.exec(&["nft", "add", "table", "bridge", "syncg"]);
    lan.bridge.exec(&[
        "nft",
        "add",
        "chain",
        "bridge",
        "syncg",
        "filt",
        "{ type filter hook forward priority 0 ; }",
    ]);
    lan.bridge.exec(&[
        "nft", "add", "rule", "bridge", "syncg", "filt", "meta", "oifname", &port, "ip",
        "protocol", "112", "@th,8,8", "51", "drop",
    ]);
    // Five of lb2's Master_Down_Intervals (0.36 s): VI_1 alone must not take over.
    std::thread::sleep(Duration::from_millis(1800));
    let split = holds(h2, "192.0.2.100") || holds(h2, "192.0.2.101");
    lan.bridge
        .exec(&["nft", "delete", "table", "bridge", "syncg"]);
    assert!(
        !split,
        "lb2 took a VIP while only VI_1's adverts were lost: the group split:\n{}",
        lb2.log()
    );
    assert!(
        lb2.log()
            .contains("waiting for the other members of sync group G"),
        "lb2's VI_1 never saw its master down (did the nft rule match?):\n{}",
        lb2.log()
    );
    assert!(both(h1), "lb1 lost a VIP:\n{}", lb1.log());
    // The master node dies: both members' masters go silent, the group moves.
    std::thread::sleep(Duration::from_millis(300));
    lb1.proc().signal(libc::SIGKILL);
    assert!(
        wait_for(Duration::from_secs(3), || both(h2).then_some(())).is_some(),
        "lb2 should take both VIPs after lb1 died:\n{}",
        lb2.log()
    );
}

#[test]
fn ipv6_failover_sends_unsolicited_na() {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let tmp = TempDir::new("v6");
    let conf = |_name: &str, prio: u8| {
        format!(
            "vrrp_instance VI_6 {{\n  interface eth0\n  virtual_router_id 61\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    2001:db8::100/64\n  }}\n}}\n"
        )
    };
    let holds = |ns: &Netns| {
        let out = ns.try_exec(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(" 2001:db8::100/64")
    };
    let na = client.spawn(
        &[
            "tcpdump",
            "-l",
            "-n",
            "-e",
            "-tt",
            "-i",
            "eth0",
            "icmp6 and ip6[40] == 136",
        ],
        &tmp.path.join("na.txt"),
    );
    let lb1 = Node::haxdp(h1, "lb1", &conf("lb1", 100), Rx::Xdp);
    let lb2 = Node::haxdp(h2, "lb2", &conf("lb2", 90), Rx::Xdp);
    assert!(
        wait_for(Duration::from_secs(5), || holds(h1).then_some(())).is_some(),
        "lb1 never took the IPv6 VIP:\n{}",
        lb1.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!holds(h2), "both hold the IPv6 VIP:\n{}", lb2.log());
    let ping = client.try_exec(&["ping", "-6", "-c", "1", "-W", "1", "2001:db8::100"]);
    assert!(ping.status.success(), "the IPv6 VIP does not answer");
    lb1.proc().signal(libc::SIGKILL);
    assert!(
        wait_for(Duration::from_secs(3), || holds(h2).then_some(())).is_some(),
        "lb2 did not take over the IPv6 VIP:\n{}",
        lb2.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    let seen = na.log_text();
    assert!(
        seen.lines()
            .any(|l| l.contains(&mac_of(1)) && l.contains("2001:db8::100")),
        "no unsolicited neighbour advertisement for the VIP from lb2:\n{seen}"
    );
}

#[test]
fn notify_scripts_and_state_file_follow_transitions() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let tmp = TempDir::new("notify");
    let out = tmp.path.join("events");
    let script = tmp.file(
        "notify.sh",
        &format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    );
    std::process::Command::new("chmod")
        .args(["755", script.to_str().expect("utf-8")])
        .status()
        .expect("chmod");
    let extra = format!(
        "  notify_master \"{s} master-hook\"\n  notify_backup \"{s} backup-hook\"\n  notify {s}",
        s = script.display()
    );
    let lb1 = Node::haxdp(
        h1,
        "lb1",
        &haxdp_config("lb1", 100, 3, "0.1", &extra),
        Rx::Xdp,
    );
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    let state_file = lb1.dir.path.join("state").join("VI_1.state");
    let got = wait_for(Duration::from_secs(3), || {
        let ev = std::fs::read_to_string(&out).unwrap_or_default();
        let st = std::fs::read_to_string(&state_file).unwrap_or_default();
        (ev.contains("master-hook")
            && ev.contains("INSTANCE VI_1 MASTER 100")
            && st == "STATE=MASTER\n")
            .then_some(())
    });
    assert!(
        got.is_some(),
        "notify_master / notify / state file missing: events {:?}, state {:?}\n{}",
        std::fs::read_to_string(&out),
        std::fs::read_to_string(&state_file),
        lb1.log()
    );
    // The generic notify comes after the specific script, as in keepalived.
    let ev = std::fs::read_to_string(&out).unwrap_or_default();
    let m = ev.find("master-hook").expect("master-hook");
    let g = ev.find("INSTANCE VI_1 MASTER").expect("notify");
    assert!(m < g, "order of notify scripts: {ev}");
    let _ = lb2;
}

/// Bounded floods (`rate` packets/s for 10 s each) at a healthy pair:
/// bad checksums, spoofed low-priority adverts, and the same from tens of
/// thousands of sources. No crash, no takeover; the backup's CPU is reported.
fn floods_do_not_cause_takeover(rx: Rx, rate: u64, max_backup_cpu: Option<f64>) {
    use haxdp_tests::flood::{cpu_seconds, flood, FloodKind, FloodSpec};
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, attacker) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 2, "1", PASS_AUTH), rx);
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 2, "1", PASS_AUTH), rx);
    assert!(wait_vip(h1, true, Duration::from_secs(8)), "{}", lb1.log());
    std::thread::sleep(Duration::from_secs(1));
    let secs: u64 = std::env::var("HAXDP_FLOOD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for kind in [
        FloodKind::BadChecksum,
        FloodKind::SpoofedLowPriority,
        FloodKind::ManySources { sources: 50_000 },
    ] {
        let before_lb2 = lb2.log().matches("-> Master").count();
        let before_lb1 = lb1.log().matches("-> Backup").count();
        let cpu0 = cpu_seconds(lb2.proc().pid());
        let spec = FloodSpec {
            kind,
            vrid: 51,
            version: haxdp_vrrp::Version::V2,
            advert_int_cs: 100,
            vips: vec![VIP.parse().expect("vip")],
            auth: Some(haxdp_vrrp::pass_auth(b"1111")),
            rate,
            max_packets: rate * secs,
            max_duration: Duration::from_secs(secs),
        };
        let report = flood(&attacker.name, "eth0", spec).join().expect("flooder");
        let cpu = cpu_seconds(lb2.proc().pid()) - cpu0;
        std::thread::sleep(Duration::from_millis(500));
        eprintln!(
            "{rx:?} {kind:?}: {} packets at {:.0}/s; backup daemon CPU {:.2} s over {:.1} s",
            report.sent,
            report.rate(),
            cpu,
            report.elapsed.as_secs_f64()
        );
        assert!(report.sent > 0, "the flooder sent nothing");
        assert!(
            lb1.proc().pid() > 0
                && std::path::Path::new(&format!("/proc/{}", lb1.proc().pid())).exists(),
            "lb1 died under {kind:?}"
        );
        let diag = || {
            let maps = h2.try_exec(&[workspace_bin("haxdp").to_str().unwrap_or(""), "maps"]);
            let link = lan
                .bridge
                .try_exec(&["ip", "-s", "link", "show", &lan.port_of(1)]);
            format!(
                "{}\n--- haxdp maps on lb2:\n{}\n--- bridge port to lb2:\n{}",
                lb2.log()
                    .lines()
                    .filter(|l| !l.contains("new VRRP peer") && !l.contains("DEBUG"))
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
                    .join("\n"),
                String::from_utf8_lossy(&maps.stdout),
                String::from_utf8_lossy(&link.stdout)
            )
        };
        assert_eq!(
            lb2.log().matches("-> Master").count(),
            before_lb2,
            "{rx:?} {kind:?}: false takeover by the backup:\n{}",
            diag()
        );
        assert_eq!(
            lb1.log().matches("-> Backup").count(),
            before_lb1,
            "{rx:?} {kind:?}: the master stepped down"
        );
        assert!(
            has_vip(h1) && !has_vip(h2),
            "{rx:?} {kind:?}: VIP ownership changed"
        );
        if let Some(max) = max_backup_cpu {
            assert!(
                cpu <= max,
                "{rx:?} {kind:?}: backup used {cpu:.2} CPU s (limit {max})"
            );
        }
    }
}

/// The raw-socket fallback is held to 20k adverts/s: every packet wakes user
/// space there, and at 60-70k/s on this 2-core lab its queue overflows and the
/// master's adverts are lost (keepalived's failure too). The XDP path is
/// the one held to the full flood.
#[test]
fn floods_socket_path() {
    floods_do_not_cause_takeover(Rx::Socket, 20_000, None);
}

/// With XDP the kernel drops or absorbs the flood: the backup daemon is not
/// woken per packet, so its CPU stays near zero (limit: 5% of one core).
#[test]
fn floods_xdp_path() {
    let secs: f64 = std::env::var("HAXDP_FLOOD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    floods_do_not_cause_takeover(Rx::Xdp, 70_000, Some(0.05 * secs));
}

#[test]
fn vip_deleted_by_hand_is_restored_and_usr1_dumps_state() {
    require_root();
    let lan = Lan::new(1);
    let h1 = &lan.hosts[0];
    let lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    h1.exec(&["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    let restored = wait_for(Duration::from_secs(2), || has_vip(h1).then_some(()));
    assert!(
        restored.is_some(),
        "a VIP deleted by hand while master was not restored:\n{}",
        lb1.log()
    );
    lb1.proc().signal(libc::SIGUSR1);
    let dump = lb1.dir.path.join("state").join("haxdp.data");
    let text = wait_for(Duration::from_secs(2), || {
        std::fs::read_to_string(&dump).ok()
    })
    .unwrap_or_else(|| panic!("USR1 wrote no {dump:?}:\n{}", lb1.log()));
    assert!(
        text.contains("VI_1: MASTER") && text.contains(VIP),
        "USR1 dump lacks the instance state: {text}"
    );
}

#[test]
fn unicast_peers_fail_over_without_multicast() {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let tmp = TempDir::new("ucast");
    let cap = Capture::start(client, "eth0", &tmp.path.join("tcpdump.txt"));
    let uc = |me: &str, peer: &str| {
        format!("  unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}")
    };
    let lb1 = Node::haxdp(
        h1,
        "lb1",
        &haxdp_config("lb1", 100, 3, "0.1", &uc("192.0.2.10", "192.0.2.11")),
        Rx::Xdp,
    );
    let lb2 = Node::haxdp(
        h2,
        "lb2",
        &haxdp_config("lb2", 90, 3, "0.1", &uc("192.0.2.11", "192.0.2.10")),
        Rx::Xdp,
    );
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !has_vip(h2),
        "both hold the VIP with unicast adverts:\n{}",
        lb2.log()
    );
    // The client, not a peer, must see no multicast adverts.
    let multicast = cap
        .events()
        .iter()
        .filter(|e| matches!(e, Seen::Advert { .. }))
        .count();
    assert_eq!(multicast, 0, "adverts reached a non-peer on the LAN");
    lb1.proc().signal(libc::SIGKILL);
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "lb2 did not take over with unicast adverts:\n{}",
        lb2.log()
    );
}

/// Another XDP program already owns the interface: the daemon says so, runs
/// on the raw-socket receive path, and `haxdp status` shows that path.
#[test]
fn occupied_xdp_hook_falls_back_to_the_socket_path() {
    require_root();
    let lan = Lan::new(1);
    let h1 = &lan.hosts[0];
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let ns_name = h1.name.clone();
    let holder = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{ns_name}")).expect("netns");
        use std::os::fd::AsRawFd;
        // SAFETY: valid namespace fd; moves only this thread.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let dir = std::path::PathBuf::from(haxdp_common::PIN_ROOT)
            .join(format!("test-hold-{}", haxdp_tests::unique_tag()));
        let mut other = haxdp::xdp::loader::XdpLoader::load_pinned_at(dir).expect("load");
        other
            .attach("eth0")
            .expect("the first XDP program attaches");
        ready_tx.send(()).expect("ready");
        let _ = stop_rx.recv_timeout(Duration::from_secs(30));
        drop(other);
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the holder attached its program");
    let lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""), Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    let log = lb1.log();
    assert!(
        log.contains("XDP cannot be attached") && log.contains("receive path socket"),
        "the fallback to the socket path was not reported:\n{log}"
    );
    let st = h1.try_exec(&[
        workspace_bin("haxdp").to_str().expect("utf-8"),
        "status",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&st.stdout)
        )
    });
    assert_eq!(v["instances"][0]["receive_path"], "socket", "{v}");
    let _ = stop_tx.send(());
    holder.join().expect("holder thread");
}
