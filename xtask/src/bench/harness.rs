//! The lab: addresses, daemons started and stopped on the lab's nodes, the
//! faults (a blackholed port, CPU hogs) and what is sampled from /proc and the logs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
pub(crate) use haxdp_tests::node::{has_vip, kill_pid, pid_alive, Kind, Node, VIP};
use haxdp_tests::{wait_for, Lan, Netns};

use super::report::Report;
use super::Ctx;

pub(crate) const LB1: &str = "192.0.2.10";
pub(crate) const LB2: &str = "192.0.2.11";
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

/// The transitions a node logged, over all its starts.
pub(crate) fn transitions(node: &Node) -> Transitions {
    count_transitions(node.kind, &node.logs())
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
        let dir = |lb: &str| format!("{tag}-{}-{lb}", kind.name());
        let lb1 = Node::new(kind, &lan.hosts[0], &dir("lb1"), conf1, &ctx.opts.haxdp);
        let lb2 = Node::new(kind, &lan.hosts[1], &dir("lb2"), conf2, &ctx.opts.haxdp);
        Ok(Pair { lan, lb1, lb2 })
    }

    pub(crate) fn transitions(&self) -> (Transitions, Transitions) {
        (transitions(&self.lb1), transitions(&self.lb2))
    }

    pub(crate) fn rx_path(&self) -> Option<String> {
        if self.lb1.kind != Kind::Haxdp {
            return None;
        }
        receive_path(&self.lb2.logs()).or_else(|| receive_path(&self.lb1.logs()))
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
