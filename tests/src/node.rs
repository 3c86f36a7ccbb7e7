//! A daemon (`haxdp run`, or keepalived for the bench's baseline) inside a lab
//! namespace, the keepalived.conf the e2e tests give it, and the questions they
//! ask about the VIP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::{wait_for, workspace_bin, Lan, Netns, Proc, TempDir};

/// The IPv4 VIP of the tests' `VI_1`.
pub const VIP: &str = "192.0.2.100";

/// keepalived's VRRPv2 simple password block, as the seeds write it.
pub const PASS_AUTH: &str = "  authentication {\n    auth_type PASS\n    auth_pass 1111\n  }";

/// How a node receives adverts in a test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rx {
    /// `--no-xdp`: raw sockets only.
    Socket,
    /// The XDP program (the daemon falls back to sockets if it cannot attach;
    /// tests that pick this path check the log for `receive path xdp`).
    Xdp,
}

/// Which daemon a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keepalived,
    Haxdp,
}

impl Kind {
    pub const BOTH: [Kind; 2] = [Kind::Keepalived, Kind::Haxdp];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Keepalived => "keepalived",
            Kind::Haxdp => "haxdp",
        }
    }
}

/// One `VI_1` instance on `eth0`, VRID 51, VIP 192.0.2.100/24; `extra` goes
/// inside the instance block (track_script, notify, authentication).
pub fn haxdp_config(name: &str, prio: u8, version: u8, advert_int: &str, extra: &str) -> String {
    format!(
        "global_defs {{\n  router_id {name}\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {prio}\n  advert_int {advert_int}\n  version {version}\n{extra}\n  \
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    )
}

/// `haxdp run` (or keepalived) in a namespace, with its config and state in a
/// scratch directory.
pub struct Node<'a> {
    pub kind: Kind,
    pub ns: &'a Netns,
    pub dir: TempDir,
    pub proc: Option<Proc>,
    pub conf: PathBuf,
    pub rx: Rx,
    /// The binary `start` runs (the build's `haxdp` unless a test installs another).
    pub bin: PathBuf,
    /// Start in the namespace's network only, in the host's mount namespace (BPF pins
    /// outlive the process, as under systemd); `ip netns exec` otherwise.
    pub net_only: bool,
    /// haxdp's `--log-level`; `None` runs the daemon's default (what the bench measures).
    pub log_level: Option<&'static str>,
    /// Logs of earlier starts, so that `logs` covers restarts.
    old_logs: String,
}

impl<'a> Node<'a> {
    /// Writes `config` and starts the daemon.
    pub fn haxdp(ns: &'a Netns, name: &str, config: &str, rx: Rx) -> Self {
        let mut n = Self::unstarted(Kind::Haxdp, ns, name, config, workspace_bin("haxdp"));
        n.rx = rx;
        n.log_level = Some("debug");
        n.start();
        n
    }

    /// Writes `config` and starts `kind`: haxdp from `bin` with its default log
    /// level and receive path, or keepalived (VRRP only, `-P`). The bench's nodes.
    pub fn new(kind: Kind, ns: &'a Netns, name: &str, config: &str, bin: &Path) -> Self {
        let mut n = Self::unstarted(kind, ns, name, config, bin.to_path_buf());
        n.start();
        n
    }

    fn unstarted(kind: Kind, ns: &'a Netns, name: &str, config: &str, bin: PathBuf) -> Self {
        let dir = TempDir::new(name);
        let conf = dir.file("keepalived.conf", config);
        Node {
            kind,
            ns,
            dir,
            proc: None,
            conf,
            rx: Rx::Xdp,
            bin,
            net_only: false,
            log_level: None,
            old_logs: String::new(),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path.join("keepalived.pid")
    }

    fn vrrp_pid_file(&self) -> PathBuf {
        self.dir.path.join("keepalived.vrrp.pid")
    }

    /// Starts (or restarts) the daemon; each start logs to a new file.
    pub fn start(&mut self) {
        if let Some(p) = &self.proc {
            self.old_logs.push_str(&p.log_text());
        }
        self.proc = None;
        let args = match self.kind {
            Kind::Haxdp => {
                let state = self.dir.path.join("state");
                let mut args = vec![
                    utf8(&self.bin).to_string(),
                    "run".into(),
                    "-f".into(),
                    utf8(&self.conf).into(),
                    "--state-dir".into(),
                    utf8(&state).into(),
                ];
                if let Some(level) = self.log_level {
                    args.extend(["--log-level".into(), level.into()]);
                }
                if matches!(self.rx, Rx::Socket) {
                    args.push("--no-xdp".into());
                }
                args
            }
            Kind::Keepalived => {
                // Stale pid files from a killed run would make keepalived
                // think it is already running.
                let _ = std::fs::remove_file(self.pid_file());
                let _ = std::fs::remove_file(self.vrrp_pid_file());
                keepalived_args(&self.conf, &self.pid_file(), &self.vrrp_pid_file())
            }
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let n = self.dir.path.read_dir().map(|d| d.count()).unwrap_or(0);
        let log = self.dir.path.join(format!("{}-{n}.log", self.kind.name()));
        self.proc = Some(if self.net_only {
            self.ns.spawn_net_only(&argv, &log)
        } else {
            self.ns.spawn(&argv, &log)
        });
    }

    pub fn proc(&self) -> &Proc {
        self.proc.as_ref().expect("node is running")
    }

    /// The log of the current (or last) start.
    pub fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }

    /// The logs of every start, oldest first.
    pub fn logs(&self) -> String {
        format!("{}{}", self.old_logs, self.log())
    }

    /// The last `n` lines of `logs`.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.logs();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The pid of the process started (keepalived's parent), -1 when none runs.
    pub fn main_pid(&self) -> i32 {
        self.proc.as_ref().map(Proc::pid).unwrap_or(-1)
    }

    /// The process that runs VRRP: haxdp itself, or keepalived's VRRP child
    /// (the pid it writes to its -r file).
    pub fn vrrp_pid(&self) -> Result<i32> {
        match self.kind {
            Kind::Haxdp => Ok(self.main_pid()),
            Kind::Keepalived => {
                let f = self.vrrp_pid_file();
                wait_for(Duration::from_secs(5), || {
                    std::fs::read_to_string(&f)
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok())
                        .filter(|p| pid_alive(*p))
                })
                .with_context(|| {
                    format!(
                        "keepalived wrote no live VRRP pid to {} within 5 s; its log:\n{}",
                        f.display(),
                        self.logs()
                    )
                })
            }
        }
    }

    /// A crash: nothing is sent on the way out. keepalived's parent is
    /// stopped first so that it cannot respawn the VRRP child it is about to
    /// lose, then both are killed.
    pub fn crash(&mut self) -> Result<()> {
        let main = self.main_pid();
        if self.kind == Kind::Keepalived {
            let child = self.vrrp_pid()?;
            kill_pid(main, libc::SIGSTOP);
            kill_pid(child, libc::SIGKILL);
        }
        kill_pid(main, libc::SIGKILL);
        if let Some(p) = self.proc.as_mut() {
            p.wait_exit(Duration::from_secs(5));
        }
        Ok(())
    }

    /// SIGTERM and wait: keepalived and haxdp both send priority 0 and
    /// remove their VIPs.
    pub fn stop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.signal(libc::SIGTERM);
            p.wait_exit(Duration::from_secs(5));
        }
    }
}

fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Sends `sig` to `pid` (nothing for a pid <= 0).
pub fn kill_pid(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) on a pid of a process the caller started (a daemon
        // or keepalived's VRRP child, whose pid keepalived wrote for us).
        unsafe { libc::kill(pid, sig) };
    }
}

/// Whether a process `pid` exists.
pub fn pid_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// keepalived 2.2.7 in the foreground, VRRP only, logging to stderr.
fn keepalived_args(conf: &Path, pid: &Path, vrrp_pid: &Path) -> Vec<String> {
    let mut args = vec!["keepalived".to_string()];
    for (flag, path) in [("-f", conf), ("-p", pid), ("-r", vrrp_pid)] {
        args.extend([flag.to_string(), utf8(path).to_string()]);
    }
    args.extend(["-n", "-l", "-D", "-P"].map(String::from));
    args
}

/// A real keepalived (VRRP half only, `-P`) in `ns`, in the foreground, running
/// `config` written as `{name}.conf` in `dir`, logging to `{name}.log`.
pub fn keepalived(ns: &Netns, dir: &TempDir, name: &str, config: &str) -> Proc {
    crate::require_program("keepalived", "keepalived");
    let conf = dir.file(&format!("{name}.conf"), config);
    let pid = dir.path.join(format!("{name}.pid"));
    let vpid = dir.path.join(format!("{name}.vrrp.pid"));
    let args = keepalived_args(&conf, &pid, &vpid);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.spawn(&argv, &dir.path.join(format!("{name}.log")))
}

/// Two haxdp nodes on the XDP path, VRRPv3 adverts every `advert_int` seconds: lb1
/// (priority 100) on `lan.hosts[0]` master, then lb2 (90) on `lan.hosts[1]` backup,
/// returned once lb2 has stayed off the VIP for `settle`. lb1 starts first: started
/// together, the two Master_Down_Intervals (at 1 s adverts 3.609 and 3.648 s) differ by
/// less than two daemons' start-up on two cores, and lb2 could win the first election
/// and be preempted.
pub fn pair<'a>(lan: &'a Lan, advert_int: &str, settle: Duration) -> (Node<'a>, Node<'a>) {
    let (h1, h2) = (&lan.hosts[0], &lan.hosts[1]);
    let lb1 = Node::haxdp(
        h1,
        "lb1",
        &haxdp_config("lb1", 100, 3, advert_int, ""),
        Rx::Xdp,
    );
    assert!(wait_vip(h1, true, Duration::from_secs(8)), "{}", lb1.log());
    let lb2 = Node::haxdp(
        h2,
        "lb2",
        &haxdp_config("lb2", 90, 3, advert_int, ""),
        Rx::Xdp,
    );
    let up = wait_for(Duration::from_secs(8), || {
        lb2.log().contains("Entering BACKUP STATE").then_some(())
    });
    assert!(up.is_some(), "lb2 never became backup:\n{}", lb2.log());
    std::thread::sleep(settle);
    assert!(!has_vip(h2), "{}", lb2.log());
    (lb1, lb2)
}

/// Whether `ns` has the VIP configured on `eth0`.
pub fn has_vip(ns: &Netns) -> bool {
    let out = ns.try_exec(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
}

/// Waits until the VIP is (or is not) on `ns`; false on timeout.
pub fn wait_vip(ns: &Netns, present: bool, timeout: Duration) -> bool {
    wait_for(timeout, || (has_vip(ns) == present).then_some(())).is_some()
}

/// The MAC `Lan` gives host i.
pub fn mac_of(i: usize) -> String {
    format!("02:00:00:00:01:{:02x}", 10 + i)
}

/// Master_Down_Interval for VRRPv3 (RFC 9568 6.1), seconds:
/// 3 * Advertisement_Interval + Skew_Time.
pub fn mdi_v3(prio: u8, advert_cs: u32) -> f64 {
    3.0 * f64::from(advert_cs) / 100.0 + skew_v3(prio, advert_cs)
}

/// Skew_Time for VRRPv3 (RFC 9568 6.1), seconds:
/// ((256 - priority) * Master_Adver_Interval) / 256.
pub fn skew_v3(prio: u8, advert_cs: u32) -> f64 {
    (256.0 - f64::from(prio)) * f64::from(advert_cs) / 100.0 / 256.0
}
