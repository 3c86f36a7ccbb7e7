//! vrrp_script behaviour with real processes.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use haxdp::track::{
    CheckState, CommandKind, ItemKind, RunStatus, ScriptCommand, ScriptSpec, ScriptUser,
    TrackEvent, Tracker,
};
use tokio::sync::mpsc;

mod common;
use common::TempDir;

/// A pid is gone when /proc has no entry, or only a zombie nobody reaped yet (our pid 1
/// may not reap orphans).
fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.starts_with('Z'))
            .unwrap_or(false),
    }
}

async fn next_event(rx: &mut mpsc::Receiver<TrackEvent>, within: Duration) -> TrackEvent {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("no track event in time")
        .expect("event channel closed")
}

fn fast(name: &str, command: &str) -> ScriptSpec {
    let mut s = ScriptSpec::new(name, command);
    s.interval = Duration::from_millis(50);
    s.timeout = Duration::from_secs(5);
    s
}

#[tokio::test]
async fn exit_codes_decide_success() {
    let d = TempDir::new("exit");
    let ok = d.script("ok.sh", "exit 0");
    let bad = d.script("bad.sh", "exit 1");
    let t = Duration::from_secs(5);
    let out = ScriptCommand::parse(ok.to_str().expect("utf8 path"))
        .expect("parse")
        .run(&[], None, t)
        .await;
    assert_eq!(out.status, RunStatus::Exited(0));
    let out = ScriptCommand::parse(bad.to_str().expect("utf8 path"))
        .expect("parse")
        .run(&[], None, t)
        .await;
    assert_eq!(out.status, RunStatus::Exited(1));
    assert!(!out.status.success());
    let out = ScriptCommand::parse("/nonexistent/haxdp-check")
        .expect("parse")
        .run(&[], None, t)
        .await;
    assert!(
        matches!(out.status, RunStatus::SpawnFailed(_)),
        "{:?}",
        out.status
    );
    assert!(!out.status.success());
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let d = TempDir::new("timeout");
    let pidfile = d.path().join("child.pid");
    // The script starts a background child, records its pid and then outlives the timeout.
    let cmd = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
    let c = ScriptCommand::parse(&cmd).expect("parse");
    assert!(matches!(c.kind(), CommandKind::Shell { .. }));
    let start = Instant::now();
    let out = c.run(&[], None, Duration::from_millis(300)).await;
    assert_eq!(out.status, RunStatus::TimedOut);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    let child: i32 = std::fs::read_to_string(&pidfile)
        .expect("child pid written")
        .trim()
        .parse()
        .expect("pid");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pid_gone(child) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        pid_gone(child),
        "background child {child} survived the timeout"
    );
}

#[tokio::test]
async fn runs_never_overlap() {
    let d = TempDir::new("overlap");
    let lock = d.path().join("lock");
    let runs = d.path().join("runs");
    let overlap = d.path().join("overlap");
    // mkdir is atomic: a second concurrent run would fail to take the lock.
    let cmd = format!(
        "mkdir {l} || {{ echo x >> {o}; exit 1; }}; echo r >> {r}; sleep 0.3; rmdir {l}",
        l = lock.display(),
        o = overlap.display(),
        r = runs.display()
    );
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    tracker.add_script(fast("slow", &cmd)).expect("add");
    // Interval 50 ms, each run 300 ms: about 4 runs in 1.3 s if strictly sequential.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    tracker.shutdown().await;
    let n = std::fs::read_to_string(&runs)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(n >= 2, "only {n} runs");
    assert!(!overlap.exists(), "two runs of one script overlapped");
    let ev = rx.try_recv().expect("an Up event");
    assert_eq!(
        (ev.check.as_str(), ev.kind, ev.state),
        ("slow", ItemKind::Script, CheckState::Up)
    );
}

#[tokio::test]
async fn seed_down_file_script_string() {
    // The exact string from the seeds, with a temp file instead of /etc/keepalived/down.
    let d = TempDir::new("seed");
    let down = d.path().join("down");
    let cmd = format!("[[ -f {} ]] && exit 1 || exit 0", down.display());
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    let mut spec = fast("chkfile", &cmd);
    spec.weight = -2;
    tracker.add_script(spec).expect("add");
    let wait = Duration::from_secs(5);
    assert_eq!(next_event(&mut rx, wait).await.state, CheckState::Up);
    std::fs::write(&down, "").expect("touch down");
    let ev = next_event(&mut rx, wait).await;
    assert_eq!(ev.state, CheckState::Down, "{}", ev.detail);
    assert!(ev.detail.contains("status 1"), "{}", ev.detail);
    std::fs::remove_file(&down).expect("rm down");
    assert_eq!(next_event(&mut rx, wait).await.state, CheckState::Up);
    assert_eq!(tracker.state("chkfile"), Some(CheckState::Up));
    tracker.shutdown().await;
}

#[tokio::test]
async fn killall_zero_seed_style() {
    let mut sleeper = tokio::process::Command::new("sleep")
        .arg("30")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sleep");
    let t = Duration::from_secs(5);
    let alive = ScriptCommand::parse("killall -0 sleep").expect("parse");
    assert!(matches!(alive.kind(), CommandKind::Exec { .. }));
    assert_eq!(alive.run(&[], None, t).await.status, RunStatus::Exited(0));
    let dead = ScriptCommand::parse("killall -0 haxdp-no-such-process").expect("parse");
    assert!(!dead.run(&[], None, t).await.status.success());
    let _ = sleeper.kill().await;
}

#[tokio::test]
async fn rise_and_fall_with_a_real_script() {
    let d = TempDir::new("risefall");
    let status = d.path().join("status");
    let log = d.path().join("log");
    std::fs::write(&status, "0").expect("write");
    let script = d.script(
        "flip.sh",
        &format!(
            "s=$(cat {st}); echo $s >> {lg}; exit $s",
            st = status.display(),
            lg = log.display()
        ),
    );
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    let mut spec = fast("flip", script.to_str().expect("utf8"));
    spec.rise = 3;
    spec.fall = 2;
    tracker.add_script(spec).expect("add");
    let wait = Duration::from_secs(5);
    assert_eq!(next_event(&mut rx, wait).await.state, CheckState::Up);

    let trailing = |want: &str| {
        let text = std::fs::read_to_string(&log).expect("log");
        text.lines().rev().take_while(|l| *l == want).count()
    };
    std::fs::write(&status, "1").expect("write");
    assert_eq!(next_event(&mut rx, wait).await.state, CheckState::Down);
    assert!(trailing("1") >= 2, "went down before `fall` failures");
    std::fs::write(&status, "0").expect("write");
    assert_eq!(next_event(&mut rx, wait).await.state, CheckState::Up);
    assert!(trailing("0") >= 3, "came up before `rise` successes");
    tracker.shutdown().await;
}

#[tokio::test]
async fn init_fail_reports_down_first() {
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    let mut spec = fast("never", "/bin/false");
    spec.init_fail = true;
    tracker.add_script(spec).expect("add");
    let ev = next_event(&mut rx, Duration::from_secs(5)).await;
    assert_eq!(ev.state, CheckState::Down);
    tracker.shutdown().await;
}

#[tokio::test]
async fn script_runs_as_the_configured_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test switches users and must run as root");
    }
    let d = TempDir::new("user");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out_file = d.path().join("uid");
    let cmd = format!("id -u > {}", out_file.display());
    let nobody = ScriptUser::lookup("nobody").expect("nobody exists");
    let out = ScriptCommand::parse(&cmd)
        .expect("parse")
        .run(&[], Some(nobody), Duration::from_secs(5))
        .await;
    assert_eq!(out.status, RunStatus::Exited(0));
    let uid: u32 = std::fs::read_to_string(&out_file)
        .expect("uid written")
        .trim()
        .parse()
        .expect("uid");
    assert_eq!(uid, nobody.uid);
}

#[tokio::test]
async fn duplicate_names_and_bad_specs_are_refused() {
    let (tx, _rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    tracker.add_script(fast("a", "/bin/true")).expect("add");
    assert!(tracker.add_script(fast("a", "/bin/true")).is_err());
    assert!(tracker.add_script(fast("b", "/x 'open")).is_err());
    let mut zero = fast("c", "/bin/true");
    zero.interval = Duration::ZERO;
    assert!(tracker.add_script(zero).is_err());
    let mut nouser = fast("d", "/bin/true");
    nouser.user = Some("haxdp-no-such-user".into());
    assert!(tracker.add_script(nouser).is_err());
    tracker.shutdown().await;
}
