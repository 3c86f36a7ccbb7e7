//! Issue 17, "Nothing unbounded, nothing failing silently", end to end: a notify
//! script slower than its instance flaps, a notify user whose lookup takes seconds, a
//! master hearing a lower-priority advert (garp_lower_prio_repeat / _delay), and a VIP
//! the kernel refuses at first. Each runs in namespaces it creates, on 192.0.2.0/24 and
//! 2001:db8::/32, for a bounded number of packets and seconds; everything it creates goes
//! with the namespaces (Drop) when a check fails.

use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use haxdp_tests::forge::{Forged, Injector};
use haxdp_tests::node::{haxdp_config, mac_of, wait_vip, Node, Rx, VIP};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{require_root, wait_for, workspace_bin, Lan, Netns, TempDir};

fn status(ns: &Netns) -> serde_json::Value {
    let out = ns.try_exec(&[
        workspace_bin("haxdp").to_str().expect("utf-8"),
        "status",
        "--json",
    ]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn instance<'v>(st: &'v serde_json::Value, name: &str) -> &'v serde_json::Value {
    st["instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no instance {name} in {st}"))
}

fn executable(tmp: &TempDir, name: &str, body: &str) -> String {
    let p = tmp.file(name, body);
    std::process::Command::new("chmod")
        .args(["755", p.to_str().expect("utf-8")])
        .status()
        .expect("chmod");
    p.display().to_string()
}

/// The seeds' down-file check: while `down` exists the node's priority is 20 lower.
fn down_check(down: &std::path::Path) -> String {
    format!(
        "vrrp_script chkfile {{\n  script \"[[ -f {} ]] && exit 1 || exit 0\"\n  interval 0.2\n  weight -20\n}}\n",
        down.display()
    )
}

/// lb1 flaps ten times while its notify script takes 2 s: at most NOTIFY_QUEUE_LEN (4)
/// transitions wait, the older ones are dropped and counted in `status --json`, the
/// state file shows the newest state at once, and the last script run is for the
/// newest state, soon after the flapping stops. Unbounded (the old queue), the eleven
/// transitions' scripts run one after another for 22 s and nothing is dropped.
#[test]
fn notify_queue_bounded_newest_state_delivered() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let tmp = TempDir::new("flapnotify");
    let ran = tmp.path.join("ran");
    let script = executable(
        &tmp,
        "slow.sh",
        &format!("#!/bin/sh\nsleep 2\necho \"$3\" >> {}\n", ran.display()),
    );
    let down = tmp.path.join("down");
    let track = format!("  track_script {{\n    chkfile\n  }}\n  notify {script}");
    let lb1 = Node::haxdp(
        h1,
        "lb1",
        &(down_check(&down) + &haxdp_config("lb1", 100, 3, "0.1", &track)),
        Rx::Xdp,
    );
    let lb2 = Node::haxdp(h2, "lb2", &haxdp_config("lb2", 90, 3, "0.1", ""), Rx::Xdp);
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    // Ten toggles of the down file, each long enough for the takeover it causes.
    for k in 0..10 {
        if k % 2 == 0 {
            std::fs::write(&down, "").expect("down");
        } else {
            std::fs::remove_file(&down).expect("undown");
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(wait_vip(h1, true, Duration::from_secs(3)), "{}", lb1.log());
    // The state file does not wait behind the scripts still running.
    let state_file = lb1.dir.path.join("state").join("VI_1.state");
    let st = wait_for(Duration::from_secs(1), || {
        (std::fs::read_to_string(&state_file).ok()? == "STATE=MASTER\n").then_some(())
    });
    assert!(
        st.is_some(),
        "state file {:?} while scripts run\n{}",
        std::fs::read_to_string(&state_file),
        lb1.log()
    );
    let s = status(h1);
    let q = &instance(&s, "VI_1")["notify_queue"];
    let transitions = instance(&s, "VI_1")["transitions"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(transitions >= 8, "lb1 did not flap: {s}");
    assert!(q["max_depth"].as_u64().is_some_and(|d| d <= 4), "{s}");
    assert!(q["dropped"].as_u64().is_some_and(|d| d >= 1), "{s}");
    // What waits is at most four 2 s scripts behind the running one.
    let settled = wait_for(Duration::from_secs(12), || {
        let lines = std::fs::read_to_string(&ran).ok()?;
        let s = status(h1);
        let q = &instance(&s, "VI_1")["notify_queue"];
        (q["depth"] == 0 && lines.lines().last() == Some("MASTER")).then_some(lines)
    });
    let lines = settled.unwrap_or_else(|| {
        panic!(
            "the newest state's script did not run in time: ran {:?}, status {}\n{}",
            std::fs::read_to_string(&ran),
            status(h1),
            lb1.log()
        )
    });
    let s = status(h1);
    let dropped = instance(&s, "VI_1")["notify_queue"]["dropped"]
        .as_u64()
        .unwrap_or(0);
    // No script ran for a transition that did not happen, none ran twice.
    let n = lines.lines().count() as u64;
    assert!(
        n + dropped <= transitions as u64,
        "ran {n} + dropped {dropped} vs {transitions} transitions: {lines:?} {s}"
    );
    assert!(lb1.log().contains("notify queue full"), "{}", lb1.log());
    let _ = lb2;
}

/// Makes `getpwnam_r` in the daemon's mount namespace wait: its /etc/passwd becomes a
/// FIFO, and open(2) of a FIFO for reading blocks until a writer opens it (fifo(7)). A
/// thread here opens it for writing, without blocking, only every `period`: each lookup
/// waits for that, up to `period`, and lookups in a row wait a whole `period` each. (glibc
/// then finds no regular file and the next NSS module answers; what matters is the wait.)
/// `ip netns exec` gave the daemon its own mount namespace: nothing outside it changes.
struct SlowPasswd {
    stop: Arc<AtomicBool>,
    /// Release lookups at once from now on (the slow part of the test is over).
    fast: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl SlowPasswd {
    fn install(pid: i32, tmp: &TempDir, period: Duration) -> Self {
        let fifo = tmp.path.join("passwd.fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
        // SAFETY: c is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
        let stop = Arc::new(AtomicBool::new(false));
        let fast = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, fast, fifo) = (stop.clone(), fast.clone(), fifo.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if fast.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    } else {
                        std::thread::sleep(period);
                    }
                    // ENXIO when no lookup waits (fifo(7)); else it is released now.
                    if let Ok(f) = std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(&fifo)
                    {
                        drop(f);
                    }
                }
            })
        };
        let out = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "mount", "--bind"])
            .arg(&fifo)
            .arg("/etc/passwd")
            .output()
            .expect("nsenter");
        assert!(
            out.status.success(),
            "bind-mounting a FIFO on the daemon's /etc/passwd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            stop,
            fast,
            writer: Some(writer),
        }
    }

    /// Ends the slow part: lookups are released at once from now on.
    fn end(&self) {
        self.fast.store(true, Ordering::Relaxed);
    }
}

impl Drop for SlowPasswd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Two instances on lb1: VI_1 stays master and must keep its 100 ms rhythm; VI_2 flaps,
/// and its notify scripts run as `nobody` while every passwd lookup in lb1 waits up to 2 s.
/// Users are resolved at load, so no transition waits for NSS; looked up at each
/// transition (the old code), VI_1's adverts stop for 2 s and lb2 takes VI_1 over.
#[test]
fn slow_user_lookup_does_not_stop_adverts() {
    require_root();
    haxdp_tests::require_program("nsenter", "util-linux");
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let tmp = TempDir::new("slowpw");
    let script = executable(&tmp, "n.sh", "#!/bin/sh\nexit 0\n");
    let down = tmp.path.join("down");
    let conf = |name: &str, prio: u8, extra: &str| {
        format!(
            "global_defs {{\n  router_id {name}\n}}\n{check}\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
             priority {prio}\n  advert_int 0.1\n  version 3\n  \
             virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
             vrrp_instance VI_2 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  \
             priority {prio}\n  advert_int 0.1\n  version 3\n{extra}\n  \
             virtual_ipaddress {{\n    192.0.2.101/24\n  }}\n}}\n",
            check = if extra.is_empty() {
                String::new()
            } else {
                down_check(&down)
            }
        )
    };
    let extra = format!(
        "  track_script {{\n    chkfile\n  }}\n  notify_master {script} nobody\n  notify_backup {script} nobody\n  notify {script} nobody"
    );
    let lb1 = Node::haxdp(h1, "lb1", &conf("lb1", 100, &extra), Rx::Xdp);
    let _lb2 = Node::haxdp(h2, "lb2", &conf("lb2", 90, ""), Rx::Xdp);
    let both = wait_for(Duration::from_secs(6), || {
        let a = h1.exec(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        let a = String::from_utf8_lossy(&a.stdout).to_string();
        (a.contains(VIP) && a.contains("192.0.2.101")).then_some(())
    });
    assert!(both.is_some(), "{}", lb1.log());
    let cap = Capture::start(h2, "eth0", &tmp.path.join("cap.log"));
    let slow = SlowPasswd::install(lb1.proc().pid(), &tmp, Duration::from_secs(2));
    let t0 = now_epoch();
    // Four VI_2 transitions on lb1, each with three notify scripts to queue.
    for k in 0..4 {
        if k % 2 == 0 {
            std::fs::write(&down, "").expect("down");
        } else {
            std::fs::remove_file(&down).expect("undown");
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    std::thread::sleep(Duration::from_millis(500));
    let t1 = now_epoch();
    slow.end();
    let ev = cap.events();
    let adverts: Vec<f64> = ev
        .iter()
        .filter_map(|e| match e {
            Seen::Advert {
                t, src, vrid: 51, ..
            } if src == "192.0.2.10" => Some(*t),
            _ => None,
        })
        .filter(|t| *t >= t0 && *t <= t1)
        .collect();
    let gap = adverts
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0f64, f64::max);
    assert!(
        adverts.len() as f64 >= (t1 - t0) / 0.1 * 0.8,
        "lb1 sent {} VI_1 adverts in {:.1} s\n{}",
        adverts.len(),
        t1 - t0,
        lb1.log()
    );
    assert!(
        gap < 0.25,
        "lb1's VI_1 adverts paused {gap:.3} s while VI_2 notified\n{}",
        lb1.log()
    );
    let s1 = status(h1);
    let vi2 = instance(&s1, "VI_2")["transitions"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(vi2 >= 4, "VI_2 did not flap: {s1}");
    let s2 = status(h2);
    assert_eq!(instance(&s2, "VI_1")["state"], "BACKUP", "{s2}");
    // lb2 may have been master for a moment at its start, before lb1's first advert.
    let took_over = instance(&s2, "VI_1")["transitions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["to"] == "MASTER" && t["at_unix_ms"].as_f64().unwrap_or(0.0) >= t0 * 1000.0);
    assert!(!took_over, "lb2 took VI_1 over: {s2}");
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// keepalived's garp_lower_prio_repeat / garp_lower_prio_delay (vrrp_state_master_rx):
/// one forged lower-priority advert at a master makes it send 3 gratuitous ARPs at
/// once and 3 more 1 s later. Without them (the old daemon) the master sends none.
#[test]
fn lower_priority_advert_triggers_garp_repeats() {
    require_root();
    let lan = Lan::new(2);
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let tmp = TempDir::new("lowprio");
    let extra = "  garp_master_delay 0\n  garp_master_repeat 1\n  garp_lower_prio_repeat 3\n  garp_lower_prio_delay 1";
    let lb1 = Node::haxdp(
        h1,
        "lb1",
        &haxdp_config("lb1", 100, 3, "0.1", extra),
        Rx::Xdp,
    );
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    let cap = Capture::start(h2, "eth0", &tmp.path.join("cap.log"));
    std::thread::sleep(Duration::from_millis(500));
    let t0 = now_epoch();
    let inj = Injector::open(&h2.name, "eth0", [0x02, 0, 0, 0, 0x01, 0x0b]);
    inj.send_v3(&Forged {
        vrid: 51,
        priority: 50,
        max_adver_int_cs: 10,
        src: "192.0.2.11".parse().expect("addr"),
        vips: vec![VIP.parse().expect("vip")],
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    let garps = loop {
        let g: Vec<f64> = cap
            .events()
            .iter()
            .filter_map(|e| match e {
                Seen::Garp { t, addr, mac } if addr == VIP && *mac == mac_of(0) && *t >= t0 => {
                    Some(*t)
                }
                _ => None,
            })
            .collect();
        if g.len() >= 6 || Instant::now() > deadline {
            break g;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        garps.len(),
        6,
        "gratuitous ARPs after the lower-priority advert: {garps:?}\n{}",
        lb1.log()
    );
    let second = garps[3] - garps[2];
    assert!(
        (0.9..1.5).contains(&second),
        "garp_lower_prio_delay 1: the second burst came {second:.3} s after the first"
    );
    let s = status(h1);
    let i = instance(&s, "VI_1");
    assert_eq!(i["state"], "MASTER", "{s}");
    assert_eq!(i["lower_prio_adverts"], 1, "{s}");
    assert_eq!(i["lower_prio_garp_bursts"], 2, "{s}");
}

/// A VIP the kernel refuses (IPv6 disabled on its interface: EACCES) leaves the node
/// MASTER, as keepalived does, is shown in `status`, retried with backoff and added once
/// the interface takes IPv6 again. The old daemon logged once and never tried again.
#[test]
fn refused_vip_is_retried_until_added() {
    require_root();
    let lan = Lan::new(1);
    let h1 = &lan.hosts[0];
    // A veth pair inside h1 (the lab kernel may have no dummy driver).
    h1.exec(&[
        "ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1",
    ]);
    h1.exec(&["sysctl", "-qw", "net.ipv6.conf.dum0.disable_ipv6=1"]);
    h1.exec(&["ip", "link", "set", "dum0", "up"]);
    h1.exec(&["ip", "link", "set", "dum1", "up"]);
    let extra = "  virtual_ipaddress_excluded {\n    2001:db8:1::100/64 dev dum0\n  }";
    let lb1 = Node::haxdp(
        h1,
        "lb1",
        &haxdp_config("lb1", 100, 3, "0.1", extra),
        Rx::Xdp,
    );
    assert!(wait_vip(h1, true, Duration::from_secs(5)), "{}", lb1.log());
    let missing = wait_for(Duration::from_secs(2), || {
        let s = status(h1);
        let i = instance(&s, "VI_1");
        (i["state"] == "MASTER" && i["vips_missing"].to_string().contains("2001:db8:1::100"))
            .then_some(())
    });
    assert!(missing.is_some(), "{}\n{}", status(h1), lb1.log());
    std::thread::sleep(Duration::from_secs(1));
    h1.exec(&["sysctl", "-qw", "net.ipv6.conf.dum0.disable_ipv6=0"]);
    let added = wait_for(Duration::from_secs(15), || {
        let a = h1.exec(&["ip", "-6", "-o", "addr", "show", "dev", "dum0"]);
        String::from_utf8_lossy(&a.stdout)
            .contains("2001:db8:1::100")
            .then_some(())
    });
    assert!(
        added.is_some(),
        "the refused VIP was never added: {}\n{}",
        status(h1),
        lb1.log()
    );
    let s = status(h1);
    let i = instance(&s, "VI_1");
    assert_eq!(i["vips_missing"], serde_json::json!([]), "{s}");
    assert_eq!(i["state"], "MASTER", "{s}");
    assert!(lb1.log().contains("added after"), "{}", lb1.log());
}
