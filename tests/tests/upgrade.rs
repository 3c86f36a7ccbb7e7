//! Planned restart and upgrade (`haxdp upgrade`): the running daemon hands its state to a
//! successor started from the binary on disk, and the VIP never moves. keepalived has no
//! such path (its restart sends priority 0: a failover, and back with preemption).
//! Root only; run through `cargo xtask test`.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use haxdp_tests::node::{has_vip, haxdp_config, pair, wait_vip, Node, Rx, VIP};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{require_root, wait_for, workspace_bin, Lan, Netns, Proc, TempDir};

const LB1: &str = "192.0.2.10";
const LB2: &str = "192.0.2.11";
/// 200 ms adverts: a hand-over that silenced the master for 0.6 s would let the backup
/// (Master_Down_Interval 0.67 s) take over.
const INT: &str = "0.2";
const INT_S: f64 = 0.2;

fn upgrade(ns: &Netns, bin: &Path) -> Output {
    ns.try_exec(&[bin.to_str().expect("path"), "upgrade"])
}

fn status(ns: &Netns) -> serde_json::Value {
    let out = ns.try_exec(&[
        workspace_bin("haxdp").to_str().expect("path"),
        "status",
        "--json",
    ]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// How long the [`pair`] of these tests settles.
const PAIR_SETTLE: Duration = Duration::from_millis(800);

/// A client on the LAN: pings the VIP every millisecond and holds one TCP connection to
/// an echo server on the VIP (on lb1), exchanging a byte every 20 ms; it reports pings
/// lost and whether the connection broke.
struct Client {
    ping: Proc,
    tcp: Proc,
    _server: Proc,
}

const ECHO_SERVER: &str = "import socket\n\
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('192.0.2.100', 7000)); s.listen(4)\n\
while True:\n    c,_=s.accept()\n    while True:\n        d=c.recv(64)\n        if not d: break\n        c.sendall(d)\n";

const ECHO_CLIENT: &str = "import socket, sys, time\n\
c=socket.create_connection(('192.0.2.100', 7000), timeout=2)\n\
n=0\nend=time.time()+float(sys.argv[1])\n\
try:\n    while time.time()<end:\n        c.sendall(b'x')\n        if c.recv(1)!=b'x': raise Exception('short read')\n        n+=1\n        time.sleep(0.02)\n    print('tcp ok', n, flush=True)\n\
except Exception as e:\n    print('tcp broke', n, repr(e), flush=True)\n";

impl Client {
    fn start(server_ns: &Netns, ns: &Netns, dir: &TempDir, count: u32, secs: u32) -> Self {
        let server = server_ns.spawn(
            &["python3", "-c", ECHO_SERVER],
            &dir.path.join("echo-server.log"),
        );
        // The server listens once the VIP is there (it is: lb1 is master).
        std::thread::sleep(Duration::from_millis(500));
        let ping = ns.spawn(
            &[
                "ping",
                "-q",
                "-i",
                "0.001",
                "-c",
                &count.to_string(),
                "-W",
                "1",
                VIP,
            ],
            &dir.path.join("ping.log"),
        );
        let tcp = ns.spawn(
            &["python3", "-c", ECHO_CLIENT, &secs.to_string()],
            &dir.path.join("tcp.log"),
        );
        Client {
            ping,
            tcp,
            _server: server,
        }
    }

    /// (pings sent, pings received, the TCP client's verdict).
    fn finish(mut self, within: Duration) -> (u64, u64, String) {
        assert!(self.ping.wait_exit(within).is_some(), "ping did not end");
        assert!(
            self.tcp.wait_exit(within).is_some(),
            "tcp client did not end"
        );
        let text = self.ping.log_text();
        // "N packets transmitted, M received, ..."
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("no ping summary:\n{text}"))
            .to_string();
        let nums: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        (nums[0], nums[1], self.tcp.log_text().trim().to_string())
    }
}

/// The adverts of `src` between `from` and `to` (capture time): the longest gap.
fn longest_gap(seen: &[Seen], src: &str, from: f64, to: f64) -> f64 {
    let ts: Vec<f64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Advert { t, src: s, .. } if s == src && *t >= from && *t <= to => Some(*t),
            _ => None,
        })
        .collect();
    ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

fn wall() -> f64 {
    haxdp_tests::prober::wall_now()
}

/// Neither log has a transition line (haxdp's `A -> B` or keepalived's `Entering`).
fn assert_no_transition(logs: &[(&str, &String)]) {
    for (who, log) in logs {
        assert!(
            !log.contains("Entering") && !log.contains(" -> "),
            "{who} logged a transition:\n{log}"
        );
    }
}

/// Whether the backup (lb2) advertised or announced the VIP from `t0` on.
fn backup_spoke(seen: &[Seen], t0: f64) -> bool {
    seen.iter().any(|s| match s {
        Seen::Advert { src, t, .. } => src == LB2 && *t >= t0,
        Seen::Garp { mac, t, .. } => mac.ends_with(":0b") && *t >= t0,
    })
}

/// Upgrades `node` `times` times through `bin`, each checked: the CLI says it handed
/// over, and the daemon answering is a new process.
fn upgrade_times(node: &Node<'_>, bin: &Path, times: usize) -> Vec<String> {
    let mut answers = Vec::new();
    for k in 0..times {
        let before = status(node.ns)["pid"].as_u64().unwrap_or(0);
        let out = upgrade(node.ns, bin);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && said.contains("handed over"),
            "upgrade {k}: {said}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            node.log()
        );
        let after = wait_for(Duration::from_secs(5), || {
            let p = status(node.ns)["pid"].as_u64().unwrap_or(0);
            (p != 0 && p != before).then_some(p)
        });
        assert!(
            after.is_some(),
            "upgrade {k}: no new daemon answers\n{}",
            node.log()
        );
        answers.push(said);
    }
    answers
}

/// The master's daemon upgraded 20 times while a client pings the VIP every millisecond
/// and holds a TCP connection to it: no transition on either node, no priority-0 advert,
/// nothing from the backup on the wire, the longest advert gap under 1.5 intervals, no
/// ping lost, the connection intact.
#[test]
fn master_upgraded_twenty_times_keeps_the_vip() {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let dir = TempDir::new("upgrade");
    let cap = Capture::start(client, "eth0", &dir.path.join("tcpdump.log"));
    let (lb1, lb2) = pair(&lan, INT, PAIR_SETTLE);
    let (mark1, mark2) = (lb1.log().len(), lb2.log().len());
    let c = Client::start(h1, client, &dir, 20_000, 25);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = wall();
    let began = Instant::now();
    upgrade_times(&lb1, &workspace_bin("haxdp"), 20);
    let t1 = wall();
    eprintln!("20 upgrades in {:.1} s", began.elapsed().as_secs_f64());
    let (sent, received, tcp) = c.finish(Duration::from_secs(120));
    let seen = cap.events();
    let gap = longest_gap(&seen, LB1, t0, t1);
    let since1 = lb1.log().get(mark1..).unwrap_or_default().to_string();
    let since2 = lb2.log().get(mark2..).unwrap_or_default().to_string();
    eprintln!(
        "pings {received}/{sent}, {tcp}, longest advert gap {:.0} ms",
        gap * 1e3
    );
    assert_no_transition(&[("lb1", &since1), ("lb2", &since2)]);
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::Advert { prio: 0, t, .. } if *t >= t0)),
        "a priority-0 advert went out"
    );
    assert!(
        !backup_spoke(&seen, t0),
        "the backup advertised or announced the VIP"
    );
    assert!(
        gap > 0.0 && gap < 1.5 * INT_S,
        "longest advert gap {gap:.3} s"
    );
    assert_eq!(sent, received, "pings lost");
    assert!(tcp.starts_with("tcp ok"), "{tcp}");
    assert!(has_vip(h1) && !has_vip(h2));
    let st = status(h1);
    assert!(
        st["start_mode"]
            .as_str()
            .unwrap_or("")
            .contains("handed over from pid"),
        "{st}"
    );
    assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
}

/// The same for the backup: upgraded 20 times, it never takes over and the master sees
/// nothing but its adverts (no preemption, no transition).
#[test]
fn backup_upgraded_keeps_following() {
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let dir = TempDir::new("upgrade-b");
    let cap = Capture::start(client, "eth0", &dir.path.join("tcpdump.log"));
    let (lb1, lb2) = pair(&lan, INT, PAIR_SETTLE);
    let (mark1, mark2) = (lb1.log().len(), lb2.log().len());
    let t0 = wall();
    upgrade_times(&lb2, &workspace_bin("haxdp"), 20);
    // A Master_Down_Interval after the last hand-over: the backup still follows.
    std::thread::sleep(Duration::from_millis(1000));
    let seen = cap.events();
    let since1 = lb1.log().get(mark1..).unwrap_or_default().to_string();
    let since2 = lb2.log().get(mark2..).unwrap_or_default().to_string();
    assert_no_transition(&[("lb1", &since1), ("lb2", &since2)]);
    assert!(
        !backup_spoke(&seen, t0),
        "the backup advertised or announced the VIP"
    );
    assert!(has_vip(h1) && !has_vip(h2));
    let st = status(h2);
    assert_eq!(st["instances"][0]["state"], "BACKUP", "{st}");
}

/// A binary upgrade as a package does it: the file the daemon was started from is
/// replaced (renamed over, as dpkg does) by another build, here the release build, whose
/// version string differs (`+debug`); `haxdp upgrade` hands over to it.
#[test]
fn binary_upgrade_hands_over_to_the_new_build() {
    require_root();
    let release = workspace_bin("haxdp")
        .parent()
        .and_then(|d| d.parent())
        .map(|t| t.join("release/haxdp"))
        .expect("target dir");
    assert!(
        release.exists(),
        "{} is missing: `cargo xtask test` builds it (cargo xtask deb)",
        release.display()
    );
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let bindir = TempDir::new("bin");
    let installed = bindir.path.join("haxdp");
    std::fs::copy(workspace_bin("haxdp"), &installed).expect("copy");
    let mut lb1 = Node::haxdp(h1, "lb1", &haxdp_config("lb1", 100, 3, INT, ""), Rx::Xdp);
    // Run from the "installed" copy.
    lb1.proc().signal(libc::SIGKILL);
    let _ = lb1
        .proc
        .as_mut()
        .map(|p| p.wait_exit(Duration::from_secs(5)));
    h1.exec(&["ip", "addr", "flush", "dev", "eth0", "to", "192.0.2.100/32"]);
    lb1.bin = installed.clone();
    std::fs::remove_dir_all(lb1.dir.path.join("state")).ok();
    lb1.start();
    assert!(wait_vip(h1, true, Duration::from_secs(8)), "{}", lb1.log());
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, INT, ""), Rx::Xdp);
    let up = wait_for(Duration::from_secs(8), || {
        lb2.log().contains("Entering BACKUP STATE").then_some(())
    });
    assert!(up.is_some(), "{}", lb2.log());
    let old = status(h1)["version"].as_str().unwrap_or("").to_string();
    let staged = bindir.path.join("haxdp.dpkg-new");
    std::fs::copy(&release, &staged).expect("copy release");
    std::fs::rename(&staged, &installed).expect("rename over");
    let mark2 = lb2.log().len();
    upgrade_times(&lb1, &installed, 1);
    let new = status(h1)["version"].as_str().unwrap_or("").to_string();
    assert!(
        old.ends_with("+debug") && !new.is_empty() && new != old,
        "{old} -> {new}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let since2 = lb2.log().get(mark2..).unwrap_or_default().to_string();
    assert!(!since2.contains("Entering"), "lb2:\n{since2}");
    assert!(has_vip(h1) && !has_vip(h2));
}

/// A configuration the new daemon refuses is not a hand-over: the running daemon goes
/// on, the VIP stays, and `haxdp upgrade` says why and fails.
#[test]
fn upgrade_with_a_bad_configuration_rolls_back() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (lb1, lb2) = pair(&lan, INT, PAIR_SETTLE);
    let pid = status(h1)["pid"].as_u64();
    std::fs::write(&lb1.conf, "vrrp_instance VI_1 {\n  priority 300\n}\n").expect("write");
    let mark1 = lb1.log().len();
    let mark2 = lb2.log().len();
    let out = upgrade(h1, &workspace_bin("haxdp"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("goes on"), "{said}");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(status(h1)["pid"].as_u64(), pid, "another daemon answers");
    let since1 = lb1.log().get(mark1..).unwrap_or_default().to_string();
    let since2 = lb2.log().get(mark2..).unwrap_or_default().to_string();
    assert!(!since1.contains("Entering") && !since2.contains("Entering"));
    assert!(has_vip(h1) && !has_vip(h2));
}

/// A successor loads its program on the running daemon's pinned maps and sees what the
/// running program recorded; a pinned map of another layout (a build that changed a map)
/// is refused by name, before anything is loaded on it.
#[test]
fn handover_load_shares_the_maps_and_refuses_another_layout() {
    use haxdp::xdp::loader::{XdpLoader, XdpLoaderError};
    require_root();
    let dir = std::path::PathBuf::from(haxdp_common::PIN_ROOT)
        .join(format!("test-upgrade-{}", haxdp_tests::unique_tag()));
    let conf = haxdp_common::InstanceConf::new(haxdp_common::VERSION_MASK_V3, 0, &[]);
    let key = haxdp_common::InstanceKey::new(7, 51, haxdp_common::FAMILY_V4);
    let mut first = XdpLoader::load_pinned_at(dir.clone()).expect("load");
    first
        .watch(7, 51, haxdp_common::FAMILY_V4, conf)
        .expect("watch");
    first.keep_pins();
    drop(first);
    let mut second = XdpLoader::load_handover(dir.clone()).expect("load on the pinned maps");
    assert!(
        second.instance_conf(&key).expect("read").is_some(),
        "the successor does not see the running daemon's INSTANCES"
    );
    let master = haxdp_common::PeerKey::new(7, 51, "192.0.2.1".parse().unwrap());
    let entry = second
        .protect_peer(&master)
        .expect("protect")
        .expect("SEEN");
    second.keep_pins();
    drop(second);
    // The successor keeps the record's SEEN entry and does not hand it out again.
    let mut third = XdpLoader::load_handover(dir.clone()).expect("load on the pinned maps");
    assert_eq!(third.seen_entry(&master).expect("read"), Some(entry));
    let other = haxdp_common::PeerKey::new(7, 51, "192.0.2.2".parse().unwrap());
    let next = third.protect_peer(&other).expect("protect").expect("SEEN");
    assert_ne!(next, entry);
    third.keep_pins();
    drop(third);
    // A running build without SEEN (its pin absent): the successor creates it, and
    // the records it takes over get entries when asked.
    // The same for BY_VRID, which the successor fills from INSTANCES before its
    // program runs.
    std::fs::remove_file(dir.join(haxdp_common::MAP_SEEN)).expect("unpin SEEN");
    std::fs::remove_file(dir.join(haxdp_common::MAP_BY_VRID)).expect("unpin BY_VRID");
    let mut fourth = XdpLoader::load_handover(dir.clone()).expect("SEEN created afresh");
    assert!(dir.join(haxdp_common::MAP_SEEN).exists(), "SEEN pinned");
    assert!(fourth.seen_entry(&master).expect("read").is_some());
    let by_vrid = dir.join(haxdp_common::MAP_BY_VRID);
    let index = haxdp_common::by_vrid_index(51, haxdp_common::FAMILY_V4).to_le_bytes();
    let mut cmd = vec!["bpftool", "-j", "map", "lookup", "pinned"];
    cmd.push(by_vrid.to_str().unwrap());
    cmd.push("key");
    let index: Vec<String> = index.iter().map(|b| b.to_string()).collect();
    cmd.extend(index.iter().map(String::as_str));
    let out = haxdp_tests::sh(&cmd);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool json");
    // The first way (after `overflow` and its padding) is ifindex 7's.
    assert_eq!(v["value"][8], "0x07", "BY_VRID not filled: {v}");
    fourth.keep_pins();
    drop(fourth);
    // Another ROOM: a value 4 bytes longer than this build's.
    let room = dir.join(haxdp_common::MAP_ROOM);
    let show = haxdp_tests::sh(&[
        "bpftool",
        "-j",
        "map",
        "show",
        "pinned",
        room.to_str().unwrap(),
    ]);
    let info: serde_json::Value = serde_json::from_slice(&show.stdout).expect("bpftool json");
    std::fs::create_dir_all(&dir).expect("dir");
    let _ = std::fs::remove_file(&room);
    let made = haxdp_tests::sh(&[
        "bpftool",
        "map",
        "create",
        room.to_str().unwrap(),
        "type",
        "hash",
        "key",
        &info["bytes_key"].to_string(),
        "value",
        &(info["bytes_value"].as_u64().unwrap() + 4).to_string(),
        "entries",
        &info["max_entries"].to_string(),
        "name",
        "ROOM",
    ]);
    assert!(made.status.success(), "{made:?}");
    let refused = XdpLoader::load_handover(dir.clone());
    let _ = std::fs::remove_dir_all(&dir);
    match refused {
        Err(e @ XdpLoaderError::LayoutChanged { name: "ROOM", .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("keeps the VIPs"), "{msg}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a ROOM of another layout was taken over"),
    }
}
