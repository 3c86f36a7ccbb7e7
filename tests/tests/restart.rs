//! A master's daemon killed (-9, a crash, `Restart=` bringing it back) must not fail the
//! VIP over when it comes back in time, and must not become a second master when it comes
//! back too late. Root only; run through `cargo xtask test`.

use std::time::{Duration, Instant};

use haxdp_tests::node::{has_vip, pair, wait_vip, Node};
use haxdp_tests::{require_root, wait_for, workspace_bin, Lan, Netns};

/// Samples both nodes every 20 ms for `d`: (samples on both, on none, longest run on both).
fn watch(a: &Netns, b: &Netns, d: Duration) -> (usize, usize, usize, usize) {
    let (mut both, mut none, mut n, mut run, mut longest) = (0, 0, 0, 0, 0);
    let end = Instant::now() + d;
    while Instant::now() < end {
        let (x, y) = (has_vip(a), has_vip(b));
        both += usize::from(x && y);
        none += usize::from(!x && !y);
        run = if x && y { run + 1 } else { 0 };
        longest = longest.max(run);
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    (both, none, longest, n)
}

fn start_mode(ns: &Netns) -> String {
    let out = ns.try_exec(&[
        workspace_bin("haxdp").to_str().expect("path"),
        "status",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["start_mode"].as_str().unwrap_or("").to_string()
}

/// The restarted daemon's start mode, once it answers (empty after 5 s without).
fn wait_start_mode(ns: &Netns) -> String {
    wait_for(Duration::from_secs(5), || {
        let m = start_mode(ns);
        (!m.is_empty()).then_some(m)
    })
    .unwrap_or_default()
}

fn kill9(node: &mut Node<'_>) {
    let p = node.proc.as_mut().expect("running");
    p.signal(libc::SIGKILL);
    assert!(p.wait_exit(Duration::from_secs(5)).is_some(), "did not die");
}

/// The [`pair`] of these tests: 1 s adverts (the backup, 90, waits 3.65 s from the
/// master's last advert), settled for 1.5 s.
const PAIR_INT: &str = "1";
const PAIR_SETTLE: Duration = Duration::from_millis(1500);

/// Killed and started again at once: the new daemon finds the checkpoint, resumes as
/// MASTER and advertises before the backup's timer fires; the VIP never moves. Before,
/// the new daemon started in BACKUP (removing the VIP), the backup took over after its
/// Master_Down_Interval, and the old master preempted it back: two failovers.
#[test]
fn master_crash_restarted_in_time_keeps_the_vip() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (mut lb1, lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    // Only what the backup logs from the crash on: at the pair's start the backup may
    // win the first election by a few milliseconds and be preempted (both daemons start
    // within one Master_Down_Interval of each other), which is not what is tested here.
    let mark = lb2.log().len();
    kill9(&mut lb1);
    lb1.start();
    let (both, none, _, n) = watch(h1, h2, Duration::from_secs(6));
    let since = lb2.log().get(mark..).unwrap_or_default().to_string();
    assert!(
        !since.contains("Backup -> Master"),
        "the backup took over after the crash:\n{since}\nlb1:\n{}",
        lb1.log()
    );
    assert_eq!((both, none), (0, 0), "{n} samples; lb1:\n{}", lb1.log());
    let mode = start_mode(h1);
    assert!(
        mode.contains("VI_1 resumed as MASTER"),
        "start mode: {mode}\n{}",
        lb1.log()
    );
}

/// Killed, and back only after the backup took over: not resumed (elected again, as a
/// fresh start), so never a second master beyond the preemption handover.
#[test]
fn master_crash_restarted_too_late_is_elected_again() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (mut lb1, lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    kill9(&mut lb1);
    // kill -9 leaves the VIP on the interface, as a crash does: the backup's takeover is
    // what matters; take it off as a rebooted host would not have it.
    h1.exec(&["ip", "addr", "del", "192.0.2.100/24", "dev", "eth0"]);
    assert!(
        wait_vip(h2, true, Duration::from_secs(6)),
        "no takeover:\n{}",
        lb2.log()
    );
    lb1.start();
    let back = wait_for(Duration::from_secs(8), || has_vip(h1).then_some(()));
    assert!(back.is_some(), "lb1 never preempted back:\n{}", lb1.log());
    let (both, none, longest, n) = watch(h1, h2, Duration::from_secs(3));
    assert_eq!((both, none), (0, 0), "{n} samples after the handover");
    let _ = longest;
    // The peer took over exactly once, and handed back once (preemption).
    let log2 = lb2.log();
    assert_eq!(
        (
            log2.matches("Backup -> Master").count(),
            log2.matches("Master -> Backup").count()
        ),
        (1, 1),
        "{log2}"
    );
    let mode = start_mode(h1);
    assert!(
        mode.contains("elected again"),
        "start mode: {mode}\n{}",
        lb1.log()
    );
    assert!(!lb1.log().contains("resumed as MASTER"), "{}", lb1.log());
}

/// A clean stop is not a crash: the next start is fresh (keepalived's meaning of stop).
#[test]
fn clean_stop_then_start_is_fresh() {
    require_root();
    let lan = Lan::new(2);
    let h1 = &lan.hosts[0];
    let (mut lb1, _lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    lb1.proc().signal(libc::SIGTERM);
    assert!(lb1
        .proc
        .as_mut()
        .expect("running")
        .wait_exit(Duration::from_secs(8))
        .is_some());
    lb1.start();
    let mode = wait_start_mode(h1);
    assert_eq!(mode, "fresh", "{}", lb1.log());
}

/// `kill -9` of the master's daemon, restarted at once, 20 times, 1 s adverts: every
/// restart resumes; the backup never takes over or speaks, the master's longest advert
/// gap stays under 1.5 intervals (the restarted process advertises from the checkpoint
/// before it loads its XDP program), and the VIP never leaves the master.
#[test]
fn master_killed_twenty_times_keeps_the_vip() {
    use haxdp_tests::observe::{Capture, Seen};
    require_root();
    let lan = Lan::new(3);
    let (h1, h2, client) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let dir = haxdp_tests::TempDir::new("kill9");
    let cap = Capture::start(client, "eth0", &dir.path.join("tcpdump.log"));
    let (mut lb1, lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    let mark2 = lb2.log().len();
    let t0 = haxdp_tests::prober::wall_now();
    let mut lost = Vec::new();
    for k in 0..20 {
        // A crash comes at any moment of the advert cycle: spread them over it.
        std::thread::sleep(Duration::from_millis((k * 397 % 1000) as u64));
        kill9(&mut lb1);
        lb1.start();
        let back = wait_start_mode(h1);
        assert!(
            back.contains("VI_1 resumed as MASTER"),
            "restart {k}: {back}\n{}",
            lb1.log()
        );
        if !has_vip(h1) || has_vip(h2) {
            lost.push(k);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let t1 = haxdp_tests::prober::wall_now();
    let seen = cap.events();
    let ts: Vec<f64> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Advert { t, src, .. } if src == "192.0.2.10" && *t >= t0 && *t <= t1 => Some(*t),
            _ => None,
        })
        .collect();
    let gap = ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    eprintln!(
        "20 kill -9 restarts: longest advert gap {:.0} ms",
        gap * 1e3
    );
    let since2 = lb2.log().get(mark2..).unwrap_or_default().to_string();
    assert!(
        !since2.contains("Entering") && !since2.contains(" -> "),
        "the backup changed state:\n{since2}"
    );
    assert!(
        !seen.iter().any(|s| match s {
            Seen::Advert { src, t, prio, .. } => *t >= t0 && (src == "192.0.2.11" || *prio == 0),
            Seen::Garp { mac, t, .. } => *t >= t0 && mac.ends_with(":0b"),
        }),
        "the backup spoke, or a priority-0 advert went out"
    );
    assert!(
        lost.is_empty(),
        "the VIP was not on the master after restarts {lost:?}"
    );
    assert!(gap > 0.0 && gap < 1.5, "longest advert gap {gap:.3} s");
}

/// The kernel's view until the crash decides too: the master's daemon stops (SIGSTOP, so
/// it writes no checkpoint), another router advertises (its XDP program records it in
/// PEERS), then the daemon dies. The restarted daemon finds that advert newer than its
/// last checkpoint in the crashed program's pinned PEERS and does not resume: it is
/// elected again. Without the check it resumed as MASTER beside the other router.
#[test]
fn master_crash_after_another_router_spoke_is_elected_again() {
    use haxdp_tests::forge::{parse_mac, Forged, Injector};
    require_root();
    let lan = Lan::new(3);
    let (h1, h3) = (&lan.hosts[0], &lan.hosts[2]);
    let (mut lb1, _lb2) = pair(&lan, PAIR_INT, PAIR_SETTLE);
    // Run lb1 where its pins outlive it (the host's mount namespace, as under systemd):
    // `ip netns exec` gives each process a private bpffs.
    lb1.proc().signal(libc::SIGTERM);
    let _ = lb1
        .proc
        .as_mut()
        .map(|p| p.wait_exit(Duration::from_secs(8)));
    lb1.net_only = true;
    lb1.start();
    assert!(
        wait_for(Duration::from_secs(8), || (start_mode(h1) == "fresh"
            && has_vip(h1))
        .then_some(()))
        .is_some(),
        "{}",
        lb1.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    lb1.proc().signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(300));
    let inj = Injector::open(&h3.name, "eth0", parse_mac("02:00:00:00:01:0c"));
    inj.send_v3(&Forged {
        vrid: 51,
        priority: 120,
        max_adver_int_cs: 100,
        src: "192.0.2.12".parse().expect("addr"),
        vips: vec!["192.0.2.100".parse().expect("addr")],
    });
    std::thread::sleep(Duration::from_millis(100));
    kill9(&mut lb1);
    lb1.start();
    let mode = wait_start_mode(h1);
    assert!(
        mode.contains("192.0.2.12 advertised after the last checkpoint: elected again"),
        "start mode: {mode}\n{}",
        lb1.log()
    );
}

/// The line number of the first line of `log` containing `what`.
fn line_of(log: &str, what: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(what))
}

/// A daemon restarted (a clean stop, then a start) beside its peer, as each role: it
/// hears the peer on a raw socket before the XDP program is through the verifier, then
/// moves to XDP without losing the peer: the backup follows lb1 again (protected in
/// PEERS, on the XDP path) and takes over through it when lb1 dies; the master preempts
/// back once, and the pair never holds the VIP twice. Before, every start waited for the
/// load (about 0.1-0.2 s here) before it opened a socket or heard anything.
fn restart_hears_before_xdp_is_loaded(restart_master: bool) {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let (mut lb1, mut lb2) = pair(&lan, "0.05", Duration::from_millis(500));
    let (node, ns) = if restart_master {
        (&mut lb1, h1)
    } else {
        (&mut lb2, h2)
    };
    node.stop();
    node.start();
    let log = wait_for(Duration::from_secs(5), || {
        let log = node.log();
        (log.contains("first VRRP advert heard") && log.contains("receive path xdp")).then_some(log)
    })
    .unwrap_or_else(|| panic!("no advert heard, or not on the XDP path:\n{}", node.log()));
    let heard = line_of(&log, "first VRRP advert heard");
    let loaded = line_of(&log, "XDP program loaded and verified");
    let on_xdp = line_of(&log, "receive path xdp");
    assert!(
        heard < loaded && loaded < on_xdp,
        "the restarted daemon did not hear its peer before the XDP program was loaded:\n{log}"
    );
    let st = wait_for(Duration::from_secs(3), || {
        let out = ns.try_exec(&[
            workspace_bin("haxdp").to_str().expect("path"),
            "status",
            "--json",
        ]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    })
    .expect("haxdp status --json answers");
    let path = st["instances"][0]["receive_path"].as_str().unwrap_or("");
    assert!(path.starts_with("xdp"), "receive path {path}:\n{st}");
    // Settled: lb1 master again (the restarted master preempted once), lb2 backup.
    assert!(wait_vip(h1, true, Duration::from_secs(3)), "{}", lb1.log());
    let (both, _, _, n) = watch(h1, h2, Duration::from_secs(2));
    assert_eq!(
        both,
        0,
        "{n} samples; lb1:\n{}\nlb2:\n{}",
        lb1.log(),
        lb2.log()
    );
    assert!(has_vip(h1) && !has_vip(h2), "lb2:\n{}", lb2.log());
    if !restart_master {
        // The followed master's record is protected in the XDP program's PEERS.
        let out = h2.try_exec(&[
            workspace_bin("haxdp").to_str().expect("path"),
            "maps",
            "--json",
        ]);
        let maps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let protected = maps["peers"].as_array().is_some_and(|p| {
            p.iter()
                .any(|r| r["address"] == "192.0.2.10" && r["protected"] == true)
        });
        assert!(protected, "lb1 is not protected in lb2's PEERS:\n{maps}");
        // And the XDP path carries the takeover: lb1 dies, lb2 takes the VIP.
        kill9(&mut lb1);
        // (A killed daemon leaves its VIP configured on h1: only lb2 is asked.)
        assert!(wait_vip(h2, true, Duration::from_secs(2)), "{}", lb2.log());
    } else {
        let since = lb2.log();
        assert_eq!(
            since.matches("Master -> Backup").count(),
            1,
            "lb2 gave the VIP back more than once:\n{since}"
        );
    }
}

#[test]
fn backup_restart_hears_its_master_before_xdp_is_loaded() {
    restart_hears_before_xdp_is_loaded(false);
}

#[test]
fn master_restart_hears_its_backup_before_xdp_is_loaded() {
    restart_hears_before_xdp_is_loaded(true);
}
