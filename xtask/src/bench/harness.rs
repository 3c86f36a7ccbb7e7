//! The lab: addresses, daemons started and stopped on the lab's nodes, the
//! faults (a blackholed port, CPU hogs) and what is sampled from /proc and the logs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use haxdp_tests::{wait_for, Lan, Netns, Proc};

use super::report::Report;
use super::{Ctx, Kind};

pub(crate) const LB1: &str = "192.0.2.10";
pub(crate) const LB2: &str = "192.0.2.11";
pub(crate) const VIP: &str = "192.0.2.100";
/// `Lan` gives host i the MAC 02:00:00:00:01:(10+i).
pub(crate) const LB2_MAC: &str = "02:00:00:00:01:0b";

/// A number in [0, 1) from the clock's nanoseconds: enough to spread the
/// phase of a crash, no randomness crate needed.
pub(crate) fn jitter() -> f64 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Knuth's multiplicative hash spreads the low bits.
    f64::from(n.wrapping_mul(2_654_435_761) % 1_000_000) / 1e6
}

/// Seconds since the epoch: the clock of tcpdump's `-tt` and ping's `-D`.
pub(crate) fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn ns_name(ns: &Netns) -> &str {
    &ns.name
}

pub(crate) fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

pub(crate) fn kill_pid(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) on a pid of a process this bench started (a daemon
        // or keepalived's VRRP child, whose pid keepalived wrote for us).
        unsafe { libc::kill(pid, sig) };
    }
}

pub(crate) fn pid_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// A memory figure of a process in KiB from /proc/PID/status (proc(5)): `VmRSS` (all
/// resident pages, the shared binary and libraries included) or `RssAnon` (resident
/// anonymous memory: heap, stacks, what the process itself allocated).
pub(crate) fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `field` summed over a daemon's processes (`pids` deduplicated: haxdp is one process,
/// keepalived a parent and its VRRP child).
pub(crate) fn daemon_kib(pids: &[i32], field: &str) -> u64 {
    let mut seen = Vec::new();
    pids.iter()
        .filter(|p| {
            let new = !seen.contains(*p);
            seen.push(**p);
            new
        })
        .filter_map(|p| status_kib(*p, field))
        .sum()
}

/// Transitions a daemon logged, from its log text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Transitions {
    pub(crate) to_master: usize,
    pub(crate) to_backup: usize,
}

impl Transitions {
    pub(crate) fn since(self, before: Transitions) -> Transitions {
        Transitions {
            to_master: self.to_master.saturating_sub(before.to_master),
            to_backup: self.to_backup.saturating_sub(before.to_backup),
        }
    }
}

/// Counts transitions in a log: keepalived writes `(VI_1) Entering MASTER
/// STATE`, haxdp `VI_1: Backup -> Master (MasterDown)`.
pub(crate) fn count_transitions(kind: Kind, log: &str) -> Transitions {
    match kind {
        Kind::Keepalived => Transitions {
            to_master: log.matches("Entering MASTER STATE").count(),
            to_backup: log.matches("Entering BACKUP STATE").count(),
        },
        Kind::Haxdp => Transitions {
            to_master: log.matches("-> Master").count(),
            to_backup: log.matches("-> Backup").count(),
        },
    }
}

/// The receive path a haxdp log names (`eth0: receive path socket`).
pub(crate) fn receive_path(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        l.split("receive path ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })
}

/// A daemon on one lab node; restarted in place for repeated runs.
pub(crate) struct Node<'a> {
    pub(crate) kind: Kind,
    pub(crate) ns: &'a Netns,
    pub(crate) dir: PathBuf,
    pub(crate) conf: PathBuf,
    pub(crate) bin: PathBuf,
    pub(crate) proc: Option<Proc>,
    /// Logs of earlier starts, so counts survive a restart.
    pub(crate) old_logs: String,
    pub(crate) starts: u32,
}

impl<'a> Node<'a> {
    pub(crate) fn new(
        kind: Kind,
        ns: &'a Netns,
        dir: &Path,
        name: &str,
        conf: &str,
        bin: &Path,
    ) -> Result<Self> {
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("state"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let conf_path = dir.join("keepalived.conf");
        std::fs::write(&conf_path, conf)
            .with_context(|| format!("writing {}", conf_path.display()))?;
        let mut n = Node {
            kind,
            ns,
            dir,
            conf: conf_path,
            bin: bin.to_path_buf(),
            proc: None,
            old_logs: String::new(),
            starts: 0,
        };
        n.start()?;
        Ok(n)
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("keepalived.pid")
    }

    pub(crate) fn vrrp_pid_file(&self) -> PathBuf {
        self.dir.join("keepalived.vrrp.pid")
    }

    pub(crate) fn start(&mut self) -> Result<()> {
        if let Some(p) = &self.proc {
            self.old_logs.push_str(&p.log_text());
        }
        self.proc = None;
        self.starts += 1;
        let log = self
            .dir
            .join(format!("{}-{}.log", self.kind.name(), self.starts));
        let conf = path_str(&self.conf)?.to_string();
        let proc = match self.kind {
            Kind::Haxdp => {
                let state = self.dir.join("state");
                self.ns.spawn(
                    &[
                        path_str(&self.bin)?,
                        "run",
                        "-f",
                        &conf,
                        "--state-dir",
                        path_str(&state)?,
                    ],
                    &log,
                )
            }
            Kind::Keepalived => {
                // Stale pid files from a killed run would make keepalived
                // think it is already running.
                let _ = std::fs::remove_file(self.pid_file());
                let _ = std::fs::remove_file(self.vrrp_pid_file());
                let (pid, vpid) = (self.pid_file(), self.vrrp_pid_file());
                self.ns.spawn(
                    &[
                        "keepalived",
                        "-f",
                        &conf,
                        "-p",
                        path_str(&pid)?,
                        "-r",
                        path_str(&vpid)?,
                        "-n",
                        "-l",
                        "-D",
                        "-P",
                    ],
                    &log,
                )
            }
        };
        self.proc = Some(proc);
        Ok(())
    }

    pub(crate) fn main_pid(&self) -> i32 {
        self.proc.as_ref().map(Proc::pid).unwrap_or(-1)
    }

    /// The process that runs VRRP: haxdp itself, or keepalived's VRRP child
    /// (the pid it writes to its -r file).
    pub(crate) fn vrrp_pid(&self) -> Result<i32> {
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
                        self.log()
                    )
                })
            }
        }
    }

    pub(crate) fn log(&self) -> String {
        let cur = self.proc.as_ref().map(Proc::log_text).unwrap_or_default();
        format!("{}{cur}", self.old_logs)
    }

    pub(crate) fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub(crate) fn transitions(&self) -> Transitions {
        count_transitions(self.kind, &self.log())
    }

    /// A crash: nothing is sent on the way out. keepalived's parent is
    /// stopped first so that it cannot respawn the VRRP child it is about to
    /// lose, then both are killed.
    pub(crate) fn crash(&mut self) -> Result<()> {
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
    pub(crate) fn stop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.signal(libc::SIGTERM);
            p.wait_exit(Duration::from_secs(5));
        }
    }
}

pub(crate) fn vips_on(ns: &Netns) -> Vec<String> {
    let out = ns.try_exec(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(" inet ")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .map(str::to_string)
        })
        // The hosts' own addresses (Lan gives host i 192.0.2.(10+i)).
        .filter(|a| ![LB1, LB2, "192.0.2.12"].contains(&a.as_str()))
        .collect()
}

pub(crate) fn has_vip(ns: &Netns, vip: &str) -> bool {
    vips_on(ns).iter().any(|a| a == vip)
}

/// Waits until lb1 holds `count` VIPs (or `vip`) and lb2 none.
pub(crate) fn wait_converged(
    lb1: &Node,
    lb2: &Node,
    count: usize,
    timeout: Duration,
) -> Result<()> {
    let ok = wait_for(timeout, || {
        (vips_on(lb1.ns).len() == count && vips_on(lb2.ns).is_empty()).then_some(())
    });
    if ok.is_none() {
        bail!(
            "{}: the pair did not converge within {:?} (lb1 holds {} VIPs of {count}, lb2 {}):\n--- lb1:\n{}\n--- lb2:\n{}",
            lb1.kind.name(),
            timeout,
            vips_on(lb1.ns).len(),
            vips_on(lb2.ns).len(),
            lb1.log_tail(20),
            lb2.log_tail(20)
        );
    }
    Ok(())
}

/// nftables in the bridge namespace dropping every frame to and from one
/// port: the host is gone as far as the LAN can tell. The kernel here has no
/// netem and no tc actions; nftables' bridge family works.
pub(crate) struct Blackhole<'a> {
    pub(crate) bridge: &'a Netns,
    pub(crate) table: String,
}

impl<'a> Blackhole<'a> {
    pub(crate) fn new(lan: &'a Lan, host: usize) -> Self {
        let port = lan.port_of(host);
        let table = format!("bh{host}");
        let b = &lan.bridge;
        b.exec(&["nft", "add", "table", "bridge", &table]);
        b.exec(&[
            "nft",
            "add",
            "chain",
            "bridge",
            &table,
            "f",
            "{ type filter hook forward priority 0 ; }",
        ]);
        for dir in ["iifname", "oifname"] {
            b.exec(&[
                "nft", "add", "rule", "bridge", &table, "f", dir, &port, "drop",
            ]);
        }
        Blackhole { bridge: b, table }
    }
}

impl Drop for Blackhole<'_> {
    fn drop(&mut self) {
        let _ = self
            .bridge
            .try_exec(&["nft", "delete", "table", "bridge", &self.table]);
    }
}

/// Busy loops on every core, each bounded by timeout(1) should the bench
/// die before it kills them.
pub(crate) struct CpuHog {
    pub(crate) children: Vec<Child>,
}

impl CpuHog {
    pub(crate) fn start(threads: usize, bound: Duration) -> Result<Self> {
        let mut children = Vec::new();
        for _ in 0..threads {
            children.push(
                Command::new("timeout")
                    .args([
                        &format!("{}", bound.as_secs() + 1),
                        "sh",
                        "-c",
                        "while :; do :; done",
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting a CPU hog (timeout sh -c 'while :; do :; done')")?,
            );
        }
        Ok(CpuHog { children })
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for c in &mut self.children {
            // timeout(1) forwards TERM to the loop it runs.
            kill_pid(c.id() as i32, libc::SIGTERM);
            let _ = c.wait();
        }
    }
}

/// One two-node (or three with a client) lab running one daemon kind.
pub(crate) struct Pair<'a> {
    pub(crate) lan: &'a Lan,
    pub(crate) lb1: Node<'a>,
    pub(crate) lb2: Node<'a>,
}

impl<'a> Pair<'a> {
    pub(crate) fn start(
        ctx: &Ctx,
        lan: &'a Lan,
        kind: Kind,
        tag: &str,
        conf1: &str,
        conf2: &str,
    ) -> Result<Self> {
        let dir = ctx.dir(&format!("{tag}-{}", kind.name()));
        let lb1 = Node::new(kind, &lan.hosts[0], &dir, "lb1", conf1, &ctx.opts.haxdp)?;
        let lb2 = Node::new(kind, &lan.hosts[1], &dir, "lb2", conf2, &ctx.opts.haxdp)?;
        Ok(Pair { lan, lb1, lb2 })
    }

    pub(crate) fn transitions(&self) -> (Transitions, Transitions) {
        (self.lb1.transitions(), self.lb2.transitions())
    }

    pub(crate) fn rx_path(&self) -> Option<String> {
        if self.lb1.kind != Kind::Haxdp {
            return None;
        }
        receive_path(&self.lb2.log()).or_else(|| receive_path(&self.lb1.log()))
    }

    /// The backup first, so that the master's priority-0 advert does not
    /// hand the VIP over on the way out.
    pub(crate) fn stop(&mut self) {
        self.lb2.stop();
        self.lb1.stop();
    }
}

pub(crate) fn note_rx(report: &mut Report, row: u8, pair: &Pair) {
    if let Some(p) = pair.rx_path() {
        if !report.rx_paths.iter().any(|(r, q)| *r == row && *q == p) {
            report.rx_paths.push((row, p));
        }
    }
}
