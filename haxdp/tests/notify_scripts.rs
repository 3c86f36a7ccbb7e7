//! keepalived-style notify: real scripts, FIFO lines, state files.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use haxdp::notify::{Notifier, NotifySpec, NotifyState};

mod common;
use common::TempDir;

/// `rec.sh DELAY WORDS...`: sleeps DELAY then appends WORDS as one line to `log`.
fn recorder(d: &TempDir) -> (PathBuf, PathBuf) {
    let log = d.path().join("log");
    let script = d.path().join("rec.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nd=$1; shift; sleep $d; echo \"$*\" >> {}\n",
            log.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, log)
}

#[tokio::test]
async fn scripts_run_in_order_with_args_appended() {
    let d = TempDir::new("notify-order");
    let (rec, log) = recorder(&d);
    let r = rec.display();
    // The master script is slow: if scripts of one instance ran concurrently, the backup
    // lines would land before it.
    let spec = NotifySpec {
        notify_master: Some(format!("{r} 0.3 master").into()),
        notify_backup: Some(format!("{r} 0 backup").into()),
        notify_fault: Some(format!("{r} 0 fault").into()),
        notify_stop: Some(format!("{r} 0 stop").into()),
        notify: Some(format!("{r} 0.05 generic").into()),
        ..NotifySpec::default()
    };
    let n = Notifier::new(d.path().join("state")).expect("notifier");
    let start = Instant::now();
    n.transition("VI_1", &spec, NotifyState::Master, 100);
    n.transition("VI_1", &spec, NotifyState::Backup, 98);
    n.transition("VI_1", &spec, NotifyState::Fault, 98);
    n.transition("VI_1", &spec, NotifyState::Stop, 98);
    // transition() only enqueues.
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "transition blocked: {:?}",
        start.elapsed()
    );
    n.drain().await;
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "master",
            "generic INSTANCE VI_1 MASTER 100",
            "backup",
            "generic INSTANCE VI_1 BACKUP 98",
            "fault",
            "generic INSTANCE VI_1 FAULT 98",
            "stop",
            "generic INSTANCE VI_1 STOP 98",
        ]
    );
    let state = std::fs::read_to_string(n.state_file("VI_1")).expect("state file");
    assert_eq!(state, "STATE=STOP\n");
    n.shutdown().await;
}

#[tokio::test]
async fn seed_notify_strings_and_shell_strings() {
    // Seed 002's style: notify_master "/scripts/notify.sh master 192.168.8.100".
    let d = TempDir::new("notify-seed");
    let (rec, log) = recorder(&d);
    let spec = NotifySpec {
        notify_master: Some(format!("{} 0 master 192.0.2.100", rec.display()).into()),
        // Shell syntax (`$`, `&&`): runs through /bin/sh; the appended args are quoted and
        // land at the end of the string, as they would at the end of argv.
        notify: Some(format!("test -n \"$HOME\" && {} 0 shell", rec.display()).into()),
        ..NotifySpec::default()
    };
    let n = Notifier::new(d.path().join("state")).expect("notifier");
    n.transition("VI 2", &spec, NotifyState::Master, 150);
    n.drain().await;
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "master 192.0.2.100\nshell INSTANCE VI 2 MASTER 150\n"
    );
    assert_eq!(
        std::fs::read_to_string(n.state_file("VI 2")).expect("state"),
        "STATE=MASTER\n"
    );
}

#[tokio::test]
async fn hung_script_is_killed_and_queue_moves_on() {
    let d = TempDir::new("notify-hang");
    let (rec, log) = recorder(&d);
    let spec_hang = NotifySpec {
        notify_master: Some("sleep 30".into()),
        timeout: Duration::from_millis(200),
        ..NotifySpec::default()
    };
    let spec_ok = NotifySpec {
        notify_backup: Some(format!("{} 0 backup", rec.display()).into()),
        ..NotifySpec::default()
    };
    let n = Notifier::new(d.path().join("state")).expect("notifier");
    let start = Instant::now();
    n.transition("VI_1", &spec_hang, NotifyState::Master, 100);
    n.transition("VI_1", &spec_ok, NotifyState::Backup, 100);
    n.drain().await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "backup\n");
}

#[tokio::test]
async fn instances_do_not_wait_for_each_other() {
    let d = TempDir::new("notify-par");
    let (rec, log) = recorder(&d);
    let slow = NotifySpec {
        notify_master: Some(format!("{} 1 slow", rec.display()).into()),
        ..NotifySpec::default()
    };
    let fast = NotifySpec {
        notify_master: Some(format!("{} 0 fast", rec.display()).into()),
        ..NotifySpec::default()
    };
    let n = Notifier::new(d.path().join("state")).expect("notifier");
    n.transition("A", &slow, NotifyState::Master, 100);
    n.transition("B", &fast, NotifyState::Master, 100);
    n.drain().await;
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "fast\nslow\n");
}

#[tokio::test]
async fn fifo_lines_and_drops() {
    let d = TempDir::new("notify-fifo");
    let fifo = d.path().join("notify.fifo");
    let n = Notifier::new(d.path().join("state"))
        .expect("notifier")
        .with_fifo(&fifo)
        .expect("fifo created");
    let spec = NotifySpec::default();

    // No reader yet: the line is dropped and counted, and the call does not block.
    let start = Instant::now();
    n.transition("VI_1", &spec, NotifyState::Backup, 100);
    assert!(start.elapsed() < Duration::from_millis(200));
    assert_eq!(n.fifo_dropped(), 1);

    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open reader");
    n.transition("VI_1", &spec, NotifyState::Master, 100);
    n.transition("VI_2", &spec, NotifyState::Fault, 90);
    let mut got = String::new();
    let _ = reader.read_to_string(&mut got);
    assert_eq!(
        got,
        "INSTANCE \"VI_1\" MASTER 100\nINSTANCE \"VI_2\" FAULT 90\n"
    );
    assert_eq!(n.fifo_dropped(), 1);

    // A reader that stops reading: the pipe fills, later lines are dropped, nothing blocks.
    // Shrink the pipe to one page (fcntl(2) F_SETPIPE_SZ) so it fills after ~150 lines.
    // SAFETY: F_SETPIPE_SZ on a valid pipe fd; no memory is passed.
    let rc = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(rc >= 4096, "F_SETPIPE_SZ failed");
    let start = Instant::now();
    for _ in 0..500 {
        n.transition("VI_1", &spec, NotifyState::Backup, 100);
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(n.fifo_dropped() > 1, "a full pipe should drop lines");
    n.drain().await;

    // An existing non-FIFO path is refused.
    let plain = d.path().join("plain");
    std::fs::write(&plain, "").expect("write");
    assert!(Notifier::new(d.path().join("state"))
        .expect("notifier")
        .with_fifo(&plain)
        .is_err());
}

#[tokio::test]
async fn state_file_is_replaced_atomically() {
    let d = TempDir::new("notify-state");
    let dir = d.path().join("run");
    let n = Notifier::new(&dir).expect("notifier creates its directory");
    let spec = NotifySpec::default();
    n.transition("VI_1", &spec, NotifyState::Backup, 100);
    n.transition("VI_1", &spec, NotifyState::Master, 100);
    n.drain().await;
    assert_eq!(
        std::fs::read_to_string(dir.join("VI_1.state")).expect("state"),
        "STATE=MASTER\n"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["VI_1.state"], "temporary files left behind");
}

/// keepalived's notify_group_exec: `GROUP name STATE 0` to the generic script, the
/// state's own script as written, and no state file (those are per instance).
#[tokio::test]
async fn group_notifications_say_group_and_priority_zero() {
    let d = TempDir::new("notify-group");
    let (rec, log) = recorder(&d);
    let spec = NotifySpec {
        notify_fault: Some(format!("{} 0 group-fault", rec.display()).into()),
        notify: Some(format!("{} 0", rec.display()).into()),
        ..NotifySpec::default()
    };
    let n = Notifier::new(d.path().join("state")).expect("notifier");
    n.group_transition("G", &spec, NotifyState::Fault);
    n.drain().await;
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "group-fault\nGROUP G FAULT 0\n"
    );
    assert!(
        !n.state_file("G").exists(),
        "a group must not write an instance state file"
    );
}
