//! Operable like keepalived (issue 13): keepalived 2.2.7's signals against a running
//! master, the stop sequence, `-V`, and systemd's notification protocol through a fake
//! NOTIFY_SOCKET. Root: each test builds its own namespaces (documentation addresses
//! only) and removes them.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use haxdp_tests::node::{has_vip, haxdp_config, wait_vip, VIP};
use haxdp_tests::{require_root, wait_for, workspace_bin, Lan, Netns, Proc, TempDir};

/// `haxdp -f CONF` (keepalived's form, no subcommand) in `ns` with its state and dump
/// directories in `dir`, on the socket receive path; `pre` goes before the binary
/// (e.g. `env NOTIFY_SOCKET=...`, which execs in place so the pid stays the daemon's).
fn start(ns: &Netns, dir: &TempDir, conf: &Path, pre: &[&str], extra: &[&str]) -> Proc {
    let bin = workspace_bin("haxdp");
    let state = dir.path.join("state");
    let dump = dir.path.join("dump");
    std::fs::create_dir_all(&dump).expect("dump dir");
    let mut argv: Vec<String> = pre.iter().map(|s| s.to_string()).collect();
    argv.extend(
        [
            bin.to_str().expect("utf-8"),
            "-f",
            conf.to_str().expect("utf-8"),
            "--state-dir",
            state.to_str().expect("utf-8"),
            "--dump-dir",
            dump.to_str().expect("utf-8"),
            "--log-level",
            "debug",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    argv.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ns.spawn(&argv, &dir.path.join("haxdp.log"))
}

fn script(dir: &TempDir, name: &str, out: &Path) -> PathBuf {
    let p = dir.file(
        name,
        &format!("#!/bin/sh\necho \"{name} $*\" >> {}\n", out.display()),
    );
    std::process::Command::new("chmod")
        .args(["755", p.to_str().expect("utf-8")])
        .status()
        .expect("chmod");
    p
}

fn running(p: &mut Proc) -> bool {
    p.wait_exit(Duration::from_millis(50)).is_none()
}

fn read_new(path: &Path, since: Option<std::time::SystemTime>) -> Option<String> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if let Some(t) = since {
        if m.modified().ok()? <= t {
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

#[test]
fn keepalived_signals_dump_and_keep_the_master_running_and_term_stops_it_truthfully() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = TempDir::new("ops-sig");
    let events = dir.path.join("events");
    let stop = script(&dir, "stop-hook", &events);
    let generic = script(&dir, "generic", &events);
    let extra = format!(
        "  notify_stop \"{}\"\n  notify \"{}\"",
        stop.display(),
        generic.display()
    );
    let conf = dir.file(
        "keepalived.conf",
        &haxdp_config("lb1", 100, 3, "0.1", &extra),
    );
    let mut p = start(h, &dir, &conf, &[], &["--no-xdp"]);
    assert!(
        wait_vip(h, true, Duration::from_secs(5)),
        "{}",
        p.log_text()
    );
    let dump = dir.path.join("dump");
    // A planted symlink where keepalived's dump goes must be replaced, not followed.
    let victim = dir.file("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, dump.join("keepalived.stats")).expect("symlink");

    let cases: [(i32, &str, &str); 4] = [
        (libc::SIGUSR2, "keepalived.stats", "VRRP Instance: VI_1"),
        (
            libc::SIGRTMIN() + 2,
            "keepalived.json",
            "\"iname\": \"VI_1\"",
        ),
        (libc::SIGRTMAX() - 1, "keepalived.stats", "Became master: 1"),
        (libc::SIGUSR1, "keepalived.data", "State = MASTER"),
    ];
    for (sig, file, want) in cases {
        let path = dump.join(file);
        let before = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| m.modified().ok());
        p.signal(sig);
        let text = wait_for(Duration::from_secs(3), || {
            read_new(&path, before).filter(|t| t.contains(want))
        });
        assert!(
            text.is_some(),
            "signal {sig}: no {file} containing {want:?}: {:?}\n{}",
            std::fs::read_to_string(&path),
            p.log_text()
        );
        assert!(
            running(&mut p),
            "signal {sig} ended the daemon\n{}",
            p.log_text()
        );
        assert!(has_vip(h), "signal {sig}: the master lost its VIP");
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "the stats dump was written through a symlink"
    );
    let json: String = std::fs::read_to_string(dump.join("keepalived.json")).unwrap();
    assert!(json.contains("\"state\": 2"), "{json}");
    // After STATS_CLEAR the counters start again from zero.
    p.signal(libc::SIGUSR2);
    std::thread::sleep(Duration::from_millis(300));
    let stats = std::fs::read_to_string(dump.join("keepalived.stats")).unwrap();
    assert!(
        stats.contains("Became master: 0"),
        "STATS_CLEAR did not clear:\n{stats}"
    );
    // Signals without a meaning do not end the daemon either.
    for sig in [
        libc::SIGALRM,
        libc::SIGRTMIN(),
        40,
        libc::SIGRTMAX(),
        libc::SIGPWR,
    ] {
        p.signal(sig);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            running(&mut p),
            "signal {sig} ended the daemon\n{}",
            p.log_text()
        );
    }
    assert!(has_vip(h));

    // TERM: priority 0, VIP released, notify_stop then STOP, state file STOP, exit 0.
    let t0 = Instant::now();
    p.signal(libc::SIGTERM);
    let code = p.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "TERM: exit {code:?}\n{}", p.log_text());
    assert!(t0.elapsed() < Duration::from_secs(8));
    assert!(!has_vip(h), "TERM left the VIP on the interface");
    let ev = std::fs::read_to_string(&events).unwrap_or_default();
    let s = ev
        .find("stop-hook")
        .unwrap_or_else(|| panic!("notify_stop did not run: {ev}"));
    let g = ev
        .find("generic INSTANCE VI_1 STOP")
        .unwrap_or_else(|| panic!("generic notify STOP did not run: {ev}"));
    assert!(s < g, "notify_stop runs before the generic notify: {ev}");
    let st = std::fs::read_to_string(dir.path.join("state").join("VI_1.state")).unwrap();
    assert_eq!(st, "STATE=STOP\n", "state file after stop");
    // keepalived's own lines, for log alerts written against keepalived.
    let log = p.log_text();
    for line in [
        "(VI_1) Entering BACKUP STATE (init)",
        "(VI_1) Entering MASTER STATE",
        "(VI_1) sent 0 priority",
    ] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
}

#[test]
fn dont_release_vrrp_keeps_the_vips_at_stop() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = TempDir::new("ops-v");
    let conf = dir.file("keepalived.conf", &haxdp_config("lb1", 100, 3, "0.1", ""));
    let mut p = start(h, &dir, &conf, &[], &["-V", "--no-xdp"]);
    assert!(
        wait_vip(h, true, Duration::from_secs(5)),
        "{}",
        p.log_text()
    );
    p.signal(libc::SIGTERM);
    assert_eq!(
        p.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        p.log_text()
    );
    assert!(
        has_vip(h),
        "-V: the VIP was removed at stop\n{}",
        p.log_text()
    );
    h.exec(&["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
}

/// Datagrams the daemon sent to the fake NOTIFY_SOCKET, as text.
struct FakeSystemd {
    sock: UnixDatagram,
    got: Vec<String>,
    raw: Vec<Vec<u8>>,
}

impl FakeSystemd {
    fn new(path: &Path) -> Self {
        let sock = UnixDatagram::bind(path).expect("bind NOTIFY_SOCKET");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        FakeSystemd {
            sock,
            got: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// Waits until some datagram satisfies `f`; returns its index.
    fn wait(&mut self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<usize> {
        if let Some(i) = self.got.iter().position(|m| f(m)) {
            return Some(i);
        }
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).to_string();
                self.got.push(m);
                self.raw.push(buf[..n].to_vec());
                if f(self.got.last().unwrap()) {
                    return Some(self.got.len() - 1);
                }
            }
        }
        None
    }

    fn count(&mut self, f: impl Fn(&str) -> bool) -> usize {
        self.got.iter().filter(|m| f(m)).count()
    }
}

#[test]
fn systemd_ready_reloading_watchdog_stopping() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = TempDir::new("ops-sd");
    let good = haxdp_config("lb1", 100, 3, "0.1", "");
    let conf = dir.file("keepalived.conf", &good);
    let sock_path = dir.path.join("notify.sock");
    let mut sd = FakeSystemd::new(&sock_path);
    let env_sock = format!("NOTIFY_SOCKET={}", sock_path.display());
    // 400 ms watchdog: pings every 200 ms.
    let mut p = start(
        h,
        &dir,
        &conf,
        &["env", &env_sock, "WATCHDOG_USEC=400000"],
        &["--no-xdp"],
    );
    let ready = sd.wait(Duration::from_secs(5), |m| m.contains("READY=1"));
    assert!(
        ready.is_some(),
        "no READY=1: {:?}\n{}",
        sd.got,
        p.log_text()
    );
    // READY comes once every instance runs.
    assert!(sd.got[ready.unwrap()].contains("STATUS=running 1 instance(s)"));
    std::thread::sleep(Duration::from_millis(1100));
    sd.wait(Duration::from_millis(100), |_| false);
    let pings = sd.count(|m| m.contains("WATCHDOG=1"));
    assert!(pings >= 3, "{pings} watchdog pings in 1.1 s: {:?}", sd.got);

    // HUP with a good file: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    let n = sd.got.len();
    p.signal(libc::SIGHUP);
    let r = sd.wait(Duration::from_secs(3), |m| m.contains("RELOADING=1"));
    let r = r.unwrap_or_else(|| panic!("no RELOADING=1: {:?}", sd.got));
    assert!(
        r >= n && sd.got[r].contains("MONOTONIC_USEC="),
        "{:?}",
        sd.got[r]
    );
    let again = sd.wait(Duration::from_secs(3), |m| {
        m.contains("READY=1") && m.contains("reloaded")
    });
    assert!(
        again.is_some_and(|i| i > r),
        "no READY=1 after reload: {:?}",
        sd.got
    );

    // HUP with a broken file: READY=1 again, STATUS says refused.
    std::fs::write(&conf, "vrrp_instance VI_1 {\n  priorty 100\n").unwrap();
    p.signal(libc::SIGHUP);
    let refused = sd.wait(Duration::from_secs(3), |m| {
        m.contains("READY=1") && m.contains("refused")
    });
    assert!(
        refused.is_some(),
        "no refused STATUS: {:?}\n{}",
        sd.got,
        p.log_text()
    );
    assert!(has_vip(h), "a refused reload dropped the VIP");

    p.signal(libc::SIGTERM);
    let stopping = sd.wait(Duration::from_secs(5), |m| m.contains("STOPPING=1"));
    assert!(stopping.is_some(), "no STOPPING=1: {:?}", sd.got);
    assert_eq!(
        p.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        p.log_text()
    );
}

/// Under systemd with stderr as the journal stream, events go to journald natively: one
/// datagram per event with PRIORITY (info 6, warning 4, error 3), SYSLOG_IDENTIFIER=haxdp
/// and no timestamp in MESSAGE; an informational config note is not a warning. The
/// journal socket is a fake one bind-mounted over /run/systemd/journal/socket in a private
/// mount namespace.
#[test]
fn journald_native_entries_with_priorities() {
    require_root();
    haxdp_tests::require_program("unshare", "util-linux");
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = TempDir::new("ops-jd");
    let events = dir.path.join("events");
    let hook = script(&dir, "hook", &events);
    let conf = dir.file(
        "keepalived.conf",
        &haxdp_config(
            "lb1",
            100,
            3,
            "0.1",
            &format!("  notify \"{}\"", hook.display()),
        ),
    );
    let sock_path = dir.path.join("journal.sock");
    let mut jd = FakeSystemd::new(&sock_path);
    let bin = workspace_bin("haxdp");
    let state = dir.path.join("state");
    let inner = format!(
        "mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/journal && \
         touch /run/systemd/journal/socket && \
         mount --bind {sock} /run/systemd/journal/socket && \
         export JOURNAL_STREAM=$(stat -L -c '%d:%i' /proc/self/fd/2) && \
         exec {bin} -f {conf} --state-dir {state} --no-xdp -x",
        sock = sock_path.display(),
        bin = bin.display(),
        conf = conf.display(),
        state = state.display(),
    );
    let mut p = h.spawn(
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &inner,
        ],
        &dir.path.join("haxdp.log"),
    );
    assert!(
        wait_vip(h, true, Duration::from_secs(5)),
        "{}",
        p.log_text()
    );
    let entry = |jd: &mut FakeSystemd, what: &str| {
        jd.wait(Duration::from_secs(3), |m| m.contains(what))
            .map(|i| journal_fields(&jd.raw[i]))
            .unwrap_or_else(|| panic!("no journal entry with {what:?}: {:?}", jd.got))
    };
    let running = entry(&mut jd, "haxdp running 1 instance(s)");
    assert_eq!(running["PRIORITY"], "6", "{running:?}");
    assert_eq!(running["SYSLOG_IDENTIFIER"], "haxdp", "{running:?}");
    assert!(
        running["MESSAGE"].starts_with("haxdp running"),
        "own timestamp or prefix in the journal message: {running:?}"
    );
    let note = entry(&mut jd, "info: scripts run as root");
    assert_eq!(
        note["PRIORITY"], "6",
        "an informational note logged at another priority: {note:?}"
    );
    let named = entry(&mut jd, "accepted, nothing to do");
    assert!(named["MESSAGE"].contains("-x"), "{named:?}");
    // Nothing went to stderr as text lines.
    assert!(!p.log_text().contains("haxdp running"), "{}", p.log_text());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
}

/// The fields of one journal native-protocol datagram (`KEY=value\n`, or `KEY\n`, a
/// 64-bit little-endian length, the value and `\n`).
fn journal_fields(mut b: &[u8]) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    while !b.is_empty() {
        let Some(nl) = b.iter().position(|&c| c == b'\n') else {
            break;
        };
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            b = &b[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            if rest.len() < 8 {
                break;
            }
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let val = &rest[8..8 + len.min(rest.len() - 8)];
            out.insert(key, String::from_utf8_lossy(val).into_owned());
            b = rest.get(8 + len + 1..).unwrap_or(&[]);
        }
    }
    out
}

/// `GET /metrics` from inside `ns` (bash's /dev/tcp: no HTTP client needed).
fn scrape(ns: &Netns, port: u16) -> String {
    let out = ns.try_exec(&[
        "timeout",
        "3",
        "bash",
        "-c",
        &format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        ),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the first sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `/metrics` during a failover (lb1 stops with TERM, lb2 on the XDP path takes over):
/// keepalived-exporter's series with its labels, values following the failover.
#[test]
fn metrics_follow_a_failover_under_keepalived_exporter_names() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let d1 = TempDir::new("ops-m1");
    let d2 = TempDir::new("ops-m2");
    let c1 = d1.file("keepalived.conf", &haxdp_config("lb1", 100, 3, "0.1", ""));
    let c2 = d2.file("keepalived.conf", &haxdp_config("lb2", 90, 3, "0.1", ""));
    let listen = ["--metrics-listen", "127.0.0.1:9650"];
    let mut p1 = start(h1, &d1, &c1, &[], &listen);
    let mut p2 = start(h2, &d2, &c2, &[], &listen);
    assert!(
        wait_vip(h1, true, Duration::from_secs(5)),
        "{}",
        p1.log_text()
    );
    let labels = "{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"";
    let state = format!("keepalived_vrrp_state{labels},ip_address=\"{VIP}/24\"}}");
    let backup = wait_for(Duration::from_secs(3), || {
        let m = scrape(h2, 9650);
        (sample(&m, &state) == Some(1.0)
            && sample(
                &m,
                &format!("keepalived_advertisements_received_total{labels}}}"),
            )
            .is_some_and(|v| v > 0.0))
        .then_some(m)
    });
    let backup = backup.unwrap_or_else(|| {
        panic!(
            "lb2 /metrics as backup: {}\n{}",
            scrape(h2, 9650),
            p2.log_text()
        )
    });
    assert_eq!(sample(&backup, "keepalived_up"), Some(1.0), "{backup}");
    assert!(backup.contains("haxdp_receive_path{"), "{backup}");
    // A transition is published at once; allow the scrape to race it by a little.
    let master = wait_for(Duration::from_millis(500), || {
        let m = scrape(h1, 9650);
        (sample(&m, &state) == Some(2.0)).then_some(m)
    })
    .unwrap_or_else(|| panic!("lb1 /metrics as master: {}", scrape(h1, 9650)));
    assert!(
        sample(
            &master,
            &format!("keepalived_advertisements_sent_total{labels}}}")
        )
        .is_some_and(|v| v > 0.0),
        "{master}"
    );
    assert_eq!(
        sample(
            &master,
            &format!("keepalived_become_master_total{labels}}}")
        ),
        Some(1.0),
        "{master}"
    );

    p1.signal(libc::SIGTERM);
    assert_eq!(p1.wait_exit(Duration::from_secs(10)), Some(0));
    let after = wait_for(Duration::from_secs(3), || {
        let m = scrape(h2, 9650);
        (sample(&m, &state) == Some(2.0)).then_some(m)
    });
    let after = after.unwrap_or_else(|| {
        panic!(
            "lb2 /metrics after takeover: {}\n{}",
            scrape(h2, 9650),
            p2.log_text()
        )
    });
    // lb2 may have been master for a moment at start, before lb1 preempted it: count
    // from the backup's scrape.
    let became = |m: &str| sample(m, &format!("keepalived_become_master_total{labels}}}"));
    let pri0 = |m: &str| {
        sample(
            m,
            &format!("keepalived_priority_zero_received_total{labels}}}"),
        )
    };
    assert_eq!(
        became(&after),
        became(&backup).map(|v| v + 1.0),
        "{backup}\n{after}"
    );
    assert_eq!(pri0(&after), pri0(&backup).map(|v| v + 1.0), "{after}");
    // The endpoint answers only /metrics.
    assert!(!scrape_path(h2, 9650, "/").contains("keepalived_up"));
    p2.signal(libc::SIGTERM);
    assert_eq!(p2.wait_exit(Duration::from_secs(10)), Some(0));
}

fn scrape_path(ns: &Netns, port: u16, path: &str) -> String {
    let out = ns.try_exec(&[
        "timeout",
        "3",
        "bash",
        "-c",
        &format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"
        ),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A notify_stop that hangs does not hold the stop: the daemon exits after
/// `--stop-timeout`, with the VIP released and the state file saying STOP.
#[test]
fn stop_is_bounded_by_the_stop_timeout() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = TempDir::new("ops-stopto");
    let hang = dir.file("hang.sh", "#!/bin/sh\nsleep 30\n");
    std::process::Command::new("chmod")
        .args(["755", hang.to_str().unwrap()])
        .status()
        .unwrap();
    let conf = dir.file(
        "keepalived.conf",
        &haxdp_config(
            "lb1",
            100,
            3,
            "0.1",
            &format!("  notify_stop \"{}\"", hang.display()),
        ),
    );
    let mut p = start(h, &dir, &conf, &[], &["--no-xdp", "--stop-timeout", "1"]);
    assert!(
        wait_vip(h, true, Duration::from_secs(5)),
        "{}",
        p.log_text()
    );
    let t0 = Instant::now();
    p.signal(libc::SIGTERM);
    assert_eq!(
        p.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        p.log_text()
    );
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "stop took {took:?} with a 1 s stop timeout"
    );
    assert!(!has_vip(h), "VIP left on the interface");
    let st = std::fs::read_to_string(dir.path.join("state").join("VI_1.state")).unwrap();
    assert_eq!(st, "STATE=STOP\n");
}

/// keepalived's `-s NAME`: started in the root namespace, the daemon runs in
/// `/run/netns/NAME` and holds the VIP there.
#[test]
fn namespace_flag_runs_in_the_named_namespace() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = TempDir::new("ops-ns");
    let conf = dir.file("keepalived.conf", &haxdp_config("lb1", 100, 3, "0.1", ""));
    let log = std::fs::File::create(dir.path.join("haxdp.log")).unwrap();
    let mut child = std::process::Command::new(workspace_bin("haxdp"))
        .args(["-s", &h.name, "-f", conf.to_str().unwrap(), "--no-xdp"])
        .arg("--state-dir")
        .arg(dir.path.join("state"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn haxdp -s");
    let up = wait_vip(h, true, Duration::from_secs(5));
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    assert!(
        up,
        "haxdp -s {} did not take the VIP in that namespace:\n{}",
        h.name,
        std::fs::read_to_string(dir.path.join("haxdp.log")).unwrap_or_default()
    );
}
