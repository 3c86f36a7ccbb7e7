//! Reloads and network changes without a failover: HUP applies a changed instance in
//! place, and an interface deleted and created again is used again. Root only; run through
//! `cargo xtask test`. Each drill samples the VIP on both nodes every 10 ms.

use std::time::{Duration, Instant};

use haxdp_tests::node::{has_vip, haxdp_config, pair, wait_vip, Node, Rx, VIP};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{require_root, wait_for, Lan, Netns, TempDir};

const VIP2: &str = "192.0.2.101";
/// The [`pair`] of these tests: 100 ms adverts, settled for 0.5 s.
const PAIR_INT: &str = "0.1";
const PAIR_SETTLE: Duration = Duration::from_millis(500);

fn has_addr(ns: &Netns, addr: &str) -> bool {
    let out = ns.exec(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/"))
}

/// Samples both nodes for `d`: (samples with the VIP on both, samples on neither).
fn watch(a: &Netns, b: &Netns, d: Duration) -> (usize, usize, usize) {
    let (mut both, mut none, mut n) = (0, 0, 0);
    let end = Instant::now() + d;
    while Instant::now() < end {
        let (x, y) = (has_vip(a), has_vip(b));
        both += usize::from(x && y);
        none += usize::from(!x && !y);
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    (both, none, n)
}

/// State changes in the node's log (`VI_1: Backup -> Master (...)`).
fn transitions(node: &Node<'_>) -> usize {
    let log = node.log();
    ["Initialize", "Backup", "Master", "Fault"]
        .iter()
        .map(|s| log.matches(&format!(": {s} -> ")).count())
        .sum()
}

fn hup_and_wait(node: &Node<'_>, what: &str) {
    let before = node.log().matches("configuration reloaded").count();
    node.proc().signal(libc::SIGHUP);
    let done = wait_for(Duration::from_secs(5), || {
        (node.log().matches("configuration reloaded").count() > before).then_some(())
    });
    assert!(done.is_some(), "{what}: no reload logged:\n{}", node.log());
}

/// keepalived applies a changed instance across a reload without leaving its state; so
/// must haxdp: master 100 -> 110 with one more VIP, backup 90 -> 95, and a tracking
/// change, each a HUP with no transition on either node and the VIP never leaving.
#[test]
fn hup_with_changed_priority_and_vips_keeps_the_master() {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let tmp = TempDir::new("reload");
    let cap = Capture::start(client, "eth0", &tmp.path.join("tcpdump.txt"));
    let (lb1, lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    let (t1, t2) = (transitions(&lb1), transitions(&lb2));

    // Config management rewrites both nodes: the master's priority up, the backup's
    // too, one more VIP on both (the address list of the adverts must match on both
    // sides, RFC 9568 7.1, so the backup, like keepalived's, is reloaded with it).
    let vips2 = format!("  virtual_ipaddress {{\n    {VIP}/24\n    {VIP2}/24\n  }}\n");
    let one = format!("  virtual_ipaddress {{\n    {VIP}/24\n  }}\n");
    let conf1 = haxdp_config("lb1", 110, 3, "0.1", "").replace(&one, &vips2);
    let conf2 = haxdp_config("lb2", 95, 3, "0.1", "").replace(&one, &vips2);
    assert!(
        conf1.contains(VIP2) && conf2.contains(VIP2),
        "test config: {conf1}"
    );
    std::fs::write(&lb1.conf, &conf1).expect("write lb1 config");
    std::fs::write(&lb2.conf, &conf2).expect("write lb2 config");
    lb2.proc().signal(libc::SIGHUP);
    hup_and_wait(&lb1, "master");
    let (both, none, n) = watch(h1, h2, Duration::from_millis(1500));
    assert_eq!(
        (both, none),
        (0, 0),
        "{n} samples; lb1:\n{}\nlb2:\n{}",
        lb1.log(),
        lb2.log()
    );
    assert!(
        lb2.log().contains("configuration reloaded"),
        "lb2: {}",
        lb2.log()
    );
    assert!(has_addr(h1, VIP2), "the added VIP is not on the master");
    assert!(
        cap.events()
            .iter()
            .any(|e| matches!(e, Seen::Garp { addr, .. } if addr == VIP2)),
        "no gratuitous ARP for the added VIP"
    );
    // A tracking change on the backup: a weighted track_file that lowers it.
    let track = tmp.file("weight", "0\n");
    let conf2t = conf2.replacen(
        "vrrp_instance VI_1 {",
        &format!(
            "vrrp_track_file tf {{\n  file {}\n  weight -10\n}}\nvrrp_instance VI_1 {{\n  track_file {{\n    tf\n  }}",
            track.display()
        ),
        1,
    );
    std::fs::write(&lb2.conf, &conf2t).expect("write lb2 config");
    hup_and_wait(&lb2, "backup tracking");
    let (both, none, n) = watch(h1, h2, Duration::from_millis(1500));
    assert_eq!((both, none), (0, 0), "{n} samples; lb2:\n{}", lb2.log());
    assert_eq!(
        (transitions(&lb1), transitions(&lb2)),
        (t1, t2),
        "a reload caused a state change:\nlb1:\n{}\nlb2:\n{}",
        lb1.log(),
        lb2.log()
    );
    assert!(has_vip(h1) && has_addr(h1, VIP2) && !has_vip(h2));

    // A priority lowered below the backup's (95): it preempts, exactly one handover.
    std::fs::write(&lb1.conf, conf1.replace("priority 110", "priority 80")).expect("write");
    hup_and_wait(&lb1, "master lowered");
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "the backup did not take over from a master lowered below it:\n{}",
        lb2.log()
    );
    let (both, _, n) = watch(h1, h2, Duration::from_millis(1500));
    assert!(both <= 10, "{both} of {n} samples with two holders");
    assert!(!has_vip(h1) && has_vip(h2));
    assert_eq!(transitions(&lb2), t2 + 1, "lb2:\n{}", lb2.log());
    assert_eq!(transitions(&lb1), t1 + 1, "lb1:\n{}", lb1.log());
}

/// A reload whose instance cannot be built (an interface that does not exist) changes
/// nothing: refused with the reason, shown in `status`.
#[test]
fn hup_that_cannot_be_built_changes_nothing() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (lb1, _lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    let t1 = transitions(&lb1);
    let conf = haxdp_config("lb1", 110, 3, "0.1", "")
        + &haxdp_config("lb1", 100, 3, "0.1", "")
            .replace("global_defs {\n  router_id lb1\n}\n", "")
            .replace("VI_1", "VI_2")
            .replace("interface eth0", "interface nosuch0")
            .replace("virtual_router_id 51", "virtual_router_id 52")
            .replace(VIP, "192.0.2.102");
    std::fs::write(&lb1.conf, conf).expect("write");
    lb1.proc().signal(libc::SIGHUP);
    let refused = wait_for(Duration::from_secs(5), || {
        lb1.log().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "not refused:\n{}", lb1.log());
    let (both, none, n) = watch(h1, h2, Duration::from_millis(800));
    assert_eq!((both, none), (0, 0), "{n} samples");
    assert_eq!(transitions(&lb1), t1);
    let st = h1.exec(&[
        haxdp_tests::workspace_bin("haxdp").to_str().expect("path"),
        "status",
        "--json",
    ]);
    let st = String::from_utf8_lossy(&st.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&st).expect("status is JSON");
    assert_eq!(v["last_reload"]["accepted"], false, "status: {st}");
    assert!(
        v["last_reload"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nosuch0")),
        "status does not name the cause: {st}"
    );
    // The running instance kept its old priority.
    assert_eq!(v["instances"][0]["base_priority"], 100, "status: {st}");
    assert_eq!(
        v["instances"].as_array().map(Vec::len),
        Some(1),
        "status: {st}"
    );
}

/// Re-creates `which` node's interface (deleted, then created again with a new ifindex)
/// while both run, then kills the master: the pair must end with one holder, and the
/// backup must take over within its master-down interval (plus slack) even though its
/// interface was replaced. keepalived 2.2.7 re-adopts the interface; haxdp used to keep
/// the instance in FAULT on the dead ifindex forever.
fn recreated_interface_is_used_again(which: usize) {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (mut lb1, lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    lan.recreate_link(which);
    let node = if which == 0 { &lb1 } else { &lb2 };
    let adopted = wait_for(Duration::from_secs(5), || {
        node.log().contains("adopting it").then_some(())
    });
    assert!(adopted.is_some(), "not re-adopted:\n{}", node.log());
    // Back to one holder, the master (preempt is on).
    assert!(
        wait_vip(h1, true, Duration::from_secs(5)),
        "lb1:\n{}",
        lb1.log()
    );
    std::thread::sleep(Duration::from_millis(800));
    let (both, none, n) = watch(h1, h2, Duration::from_millis(1000));
    assert_eq!((both, none), (0, 0), "{n} samples");
    assert!(has_vip(h1) && !has_vip(h2));
    // The backup still hears the master: now kill the master; the backup takes over.
    if let Some(p) = lb1.proc.as_ref() {
        p.signal(libc::SIGKILL);
    }
    let t0 = Instant::now();
    // kill -9 leaves the VIP on lb1's interface: take it off as a dead host's would be.
    h1.exec(&["ip", "link", "set", "eth0", "down"]);
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "the backup did not take over after its interface was re-created:\n{}",
        lb2.log()
    );
    let took = t0.elapsed();
    // v3 0.1 s, priority 90: Master_Down_Interval 364 ms.
    assert!(
        took < Duration::from_millis(900),
        "takeover took {took:?}:\n{}",
        lb2.log()
    );
    lb1.proc = None;
}

#[test]
fn backup_interface_recreated_is_used_again() {
    recreated_interface_is_used_again(1);
}

#[test]
fn master_interface_recreated_is_used_again() {
    recreated_interface_is_used_again(0);
}

/// The backup's XDP program detached by hand (`bpftool link detach`): the daemon
/// notices before any takeover decision, attaches it again, and neither node holds the
/// VIP twice; a real master failure afterwards still fails over.
#[test]
fn detached_xdp_program_is_noticed_and_attached_again() {
    require_root();
    haxdp_tests::require_program("bpftool", "bpftool");
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (mut lb1, lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    let out = h2.exec(&["bpftool", "-j", "net", "show", "dev", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&text).expect("bpftool json");
    // aya attaches through a bpf_link: find the one of this program and detach it.
    let prog = v[0]["xdp"][0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no XDP program on the backup's eth0: {text}"));
    let links = h2.exec(&["bpftool", "-j", "link", "show"]);
    let links: serde_json::Value = serde_json::from_slice(&links.stdout).expect("bpftool json");
    let link = links
        .as_array()
        .and_then(|a| a.iter().find(|l| l["prog_id"].as_u64() == Some(prog)))
        .and_then(|l| l["id"].as_u64())
        .unwrap_or_else(|| panic!("no bpf_link for program {prog}: {links}"));
    h2.exec(&["bpftool", "link", "detach", "id", &link.to_string()]);
    let gone = h2.exec(&["bpftool", "-j", "net", "show", "dev", "eth0"]);
    let gone: serde_json::Value = serde_json::from_slice(&gone.stdout).expect("bpftool json");
    // The daemon may already have attached it again; it must at least have been gone.
    let _ = gone;
    let noticed = wait_for(Duration::from_secs(3), || {
        lb2.log().contains("no longer attached").then_some(())
    });
    assert!(noticed.is_some(), "not noticed:\n{}", lb2.log());
    let (both, none, n) = watch(h1, h2, Duration::from_millis(2000));
    assert_eq!((both, none), (0, 0), "{n} samples; lb2:\n{}", lb2.log());
    let again = h2.exec(&["bpftool", "-j", "net", "show", "dev", "eth0"]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).expect("bpftool json");
    assert!(
        again[0]["xdp"][0]["id"].is_u64(),
        "the program is not attached again: {again}"
    );
    if let Some(p) = lb1.proc.as_ref() {
        p.signal(libc::SIGKILL);
    }
    h1.exec(&["ip", "link", "set", "eth0", "down"]);
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "no takeover after the re-attach:\n{}",
        lb2.log()
    );
    lb1.proc = None;
}

/// Both members of a sync group on one interface fault together when its link goes down
/// and must both come back when it returns (found by the simulator: each member's fault
/// was propagated to the other, and each then held the other in Fault for ever). The
/// backup side: the master stays, the backup returns to BACKUP and takes over when the
/// master dies.
#[test]
fn sync_group_on_one_link_recovers_from_a_link_flap() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let conf = |prio: u8| {
        format!(
            "vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n}}\n\
             vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
             vrrp_instance VI_2 {{\n  interface eth0\n  virtual_router_id 52\n  priority {prio}\n  \
             advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    {VIP2}/24\n  }}\n}}\n"
        )
    };
    let mut lb1 = Node::haxdp(h1, "lb1", &conf(100), Rx::Xdp);
    let lb2 = Node::haxdp(h2, "lb2", &conf(90), Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    std::thread::sleep(Duration::from_millis(500));
    // The backup's link flaps for 1 s: both members FAULT, then both BACKUP again.
    h2.exec(&["ip", "link", "set", "eth0", "down"]);
    std::thread::sleep(Duration::from_secs(1));
    h2.exec(&["ip", "link", "set", "eth0", "up"]);
    let back = wait_for(Duration::from_secs(3), || {
        let log = lb2.log();
        (log.matches("Fault -> Backup").count() >= 2).then_some(())
    });
    assert!(
        back.is_some(),
        "the sync group stayed in FAULT:\n{}",
        lb2.log()
    );
    let (both, _, n) = watch(h1, h2, Duration::from_millis(1000));
    assert_eq!(both, 0, "{n} samples");
    // The master dies: both VIPs move to the recovered backup.
    if let Some(p) = lb1.proc.as_ref() {
        p.signal(libc::SIGKILL);
    }
    h1.exec(&["ip", "link", "set", "eth0", "down"]);
    let moved = wait_for(Duration::from_secs(3), || {
        (has_addr(h2, VIP) && has_addr(h2, VIP2)).then_some(())
    });
    assert!(
        moved.is_some(),
        "lb2 did not take both VIPs:\n{}",
        lb2.log()
    );
    lb1.proc = None;
}

/// A daemon of the drill table: haxdp or keepalived 2.2.7, in the same lab.
enum Lb<'a> {
    Haxdp(Node<'a>),
    Ka(haxdp_tests::Proc, TempDir),
}

impl Lb<'_> {
    fn start<'a>(ns: &'a Netns, ka: bool, name: &str, conf: &str) -> Lb<'a> {
        if ka {
            let dir = TempDir::new(name);
            let p = haxdp_tests::node::keepalived(ns, &dir, name, conf);
            Lb::Ka(p, dir)
        } else {
            Lb::Haxdp(Node::haxdp(ns, name, conf, Rx::Xdp))
        }
    }
    fn log(&self) -> String {
        match self {
            Lb::Haxdp(n) => n.log(),
            Lb::Ka(p, _) => p.log_text(),
        }
    }
    fn transitions(&self) -> usize {
        match self {
            Lb::Haxdp(n) => transitions(n),
            Lb::Ka(p, _) => {
                let log = p.log_text();
                [
                    "Entering MASTER STATE",
                    "Entering BACKUP STATE",
                    "Entering FAULT STATE",
                ]
                .iter()
                .map(|s| log.matches(s).count())
                .sum()
            }
        }
    }
    fn write_conf(&self, conf: &str) {
        match self {
            Lb::Haxdp(n) => std::fs::write(&n.conf, conf).expect("write"),
            Lb::Ka(_, dir) => {
                // The launcher wrote one `NAME.conf` there.
                for e in std::fs::read_dir(&dir.path).expect("dir").flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "conf") {
                        std::fs::write(&p, conf).expect("write");
                    }
                }
            }
        }
    }
    fn signal(&self, sig: i32) {
        match self {
            Lb::Haxdp(n) => n.proc().signal(sig),
            Lb::Ka(p, _) => p.signal(sig),
        }
    }
}

/// The reload and re-created-interface drills with keepalived 2.2.7 and haxdp in the same
/// lab, one after the other, printed as a table; haxdp must do no worse than keepalived.
/// 1. HUP on both nodes with the priorities raised and one more VIP: samples (10 ms) with
///    two holders or none, and state changes. 2. The backup's interface deleted and created
///    again, then the master killed: time until the backup holds the VIP.
#[test]
fn reload_and_recreated_interface_beside_keepalived() {
    require_root();
    let one = format!("  virtual_ipaddress {{\n    {VIP}/24\n  }}\n");
    let two = format!("  virtual_ipaddress {{\n    {VIP}/24\n    {VIP2}/24\n  }}\n");
    let mut rows = Vec::new();
    for ka in [true, false] {
        let name = if ka { "keepalived 2.2.7" } else { "haxdp" };
        let lan = Lan::new(2);
        let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
        let lb1 = Lb::start(h1, ka, "lb1", &haxdp_config("lb1", 100, 3, "0.1", ""));
        let lb2 = Lb::start(h2, ka, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""));
        assert!(
            wait_vip(h1, true, Duration::from_secs(6)),
            "{name}: {}",
            lb1.log()
        );
        std::thread::sleep(Duration::from_millis(800));
        let t = lb1.transitions() + lb2.transitions();
        lb1.write_conf(&haxdp_config("lb1", 110, 3, "0.1", "").replace(&one, &two));
        lb2.write_conf(&haxdp_config("lb2", 95, 3, "0.1", "").replace(&one, &two));
        lb2.signal(libc::SIGHUP);
        lb1.signal(libc::SIGHUP);
        let (both, none, n) = watch(h1, h2, Duration::from_millis(2000));
        let reload_changes = lb1.transitions() + lb2.transitions() - t;
        let vip2 = has_addr(h1, VIP2);
        lan.recreate_link(1);
        std::thread::sleep(Duration::from_secs(2));
        let (both2, _, _) = watch(h1, h2, Duration::from_millis(500));
        // The master's host dies: its link first, so that no priority-0 advert of a
        // daemon that notices the kill gets out (keepalived's VRRP child does).
        h1.exec(&["ip", "link", "set", "eth0", "down"]);
        let t0 = Instant::now();
        lb1.signal(libc::SIGKILL);
        let took = wait_for(Duration::from_secs(5), || has_vip(h2).then(|| t0.elapsed()));
        rows.push((name, both, none, n, reload_changes, vip2, both2, took));
        drop(lb2);
        drop(lb1);
    }
    eprintln!("| daemon | HUP: samples with two holders | with none | state changes | added VIP on master | re-created backup: two holders | master killed: backup takes over |");
    eprintln!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, both, none, n, ch, vip2, both2, took) in &rows {
        eprintln!(
            "| {name} | {both}/{n} | {none}/{n} | {ch} | {vip2} | {both2} | {} |",
            took.map_or_else(
                || "never (5 s)".to_string(),
                |d| format!("{} ms", d.as_millis())
            )
        );
    }
    let (ka, hx) = (&rows[0], &rows[1]);
    assert_eq!((hx.1, hx.2, hx.4), (0, 0, 0), "haxdp's reload: {rows:?}");
    assert!(hx.5, "haxdp: the added VIP is not on the master");
    assert!(
        hx.1 <= ka.1 && hx.2 <= ka.2,
        "haxdp worse than keepalived: {rows:?}"
    );
    assert_eq!(
        hx.6, 0,
        "haxdp: two holders after the backup's interface came back"
    );
    let hx_took = hx.7.expect("haxdp's backup never took over");
    assert!(
        hx_took < Duration::from_millis(900),
        "haxdp took {hx_took:?}"
    );
}

/// keepalived's `dynamic_interfaces`: haxdp started before its interface exists waits for
/// it (and says so in `status`), then serves it once it appears. Without the keyword the
/// start is refused, as before.
#[test]
fn dynamic_interfaces_waits_for_the_interface() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let conf = format!(
        "global_defs {{\n  router_id lb1\n  dynamic_interfaces\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth1\n  virtual_router_id 51\n  \
         priority 100\n  advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    {VIP}/24 dev eth1\n  }}\n}}\n"
    );
    let lb = Node::haxdp(h, "lb1", &conf, Rx::Xdp);
    let waiting = wait_for(Duration::from_secs(5), || {
        lb.log().contains("waits for it").then_some(())
    });
    assert!(waiting.is_some(), "not waiting:\n{}", lb.log());
    let st = h.exec(&[
        haxdp_tests::workspace_bin("haxdp").to_str().expect("path"),
        "status",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("status json");
    assert_eq!(v["waiting_for_interface"][0], "VI_1 (eth1)", "status: {v}");
    // A veth pair inside the namespace (this kernel has no dummy driver); the peer end
    // up so that eth1 has carrier.
    h.exec(&[
        "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    h.exec(&["ip", "addr", "add", "198.51.100.1/24", "dev", "eth1"]);
    h.exec(&["ip", "link", "set", "eth1p", "up"]);
    h.exec(&["ip", "link", "set", "eth1", "up"]);
    let served = wait_for(Duration::from_secs(5), || {
        let out = h.exec(&["ip", "-o", "addr", "show", "dev", "eth1"]);
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!(" {VIP}/"))
            .then_some(())
    });
    assert!(
        served.is_some(),
        "the instance never served eth1:\n{}",
        lb.log()
    );

    // Without dynamic_interfaces: refused at start, naming the interface.
    let lan2 = Lan::new(1);
    let conf2 = conf.replace("  dynamic_interfaces\n", "");
    let mut lb2 = Node::haxdp(&lan2.hosts[0], "lb2", &conf2, Rx::Xdp);
    let code = lb2
        .proc
        .as_mut()
        .expect("started")
        .wait_exit(Duration::from_secs(5));
    assert!(
        code.is_some_and(|c| c != 0),
        "started without its interface:\n{}",
        lb2.log()
    );
    assert!(lb2.log().contains("eth1"), "{}", lb2.log());
}

/// The master's advert source address removed from its interface: as keepalived, the
/// instance goes to FAULT (the backup takes over) and comes back when the interface has
/// an address again (here the same one: the old master preempts back, one holder).
#[test]
fn removed_source_address_faults_until_it_is_back() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (lb1, _lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    h1.exec(&["ip", "addr", "del", "192.0.2.10/24", "dev", "eth0"]);
    assert!(
        wait_vip(h2, true, Duration::from_secs(3)),
        "the backup did not take over:\n{}",
        lb1.log()
    );
    assert!(
        lb1.log().contains("source address 192.0.2.10 removed"),
        "{}",
        lb1.log()
    );
    assert!(!has_vip(h1), "the faulted master kept the VIP");
    h1.exec(&["ip", "addr", "add", "192.0.2.10/24", "dev", "eth0"]);
    assert!(
        wait_vip(h1, true, Duration::from_secs(3)),
        "the master did not come back:\n{}",
        lb1.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let (both, none, n) = watch(h1, h2, Duration::from_millis(1000));
    assert_eq!((both, none), (0, 0), "{n} samples");
}
