//! `cargo xtask bench`: haxdp against keepalived 2.2.7, same lab, same run.
//!
//! Every row builds its own namespace LAN (the `haxdp-tests` harness: a
//! bridge namespace, two load balancers and, where needed, a client), runs
//! the scenario once with keepalived on both load balancers and once with
//! haxdp, from the same keepalived.conf text, and prints keepalived's figure
//! (the baseline), haxdp's and the ratio. The table is also written as
//! markdown (`BENCHMARKS.md`) with the date, the kernel, the receive path the
//! haxdp daemons used and the exact command.
//!
//! Timings on a shared machine are noisy: the bench reports medians and
//! maxima and never asserts a timing. Everything is bounded: each flood by a
//! packet count and a duration, each CPU hog by `timeout(1)` as well as by
//! a kill, each wait by a deadline. Processes are ended by pid, namespaces
//! are removed on drop.
//!
//! Wiring (xtask's `main.rs`): build `haxdp` in release mode, then
//! `bench::run(BenchOpts { rows, runs, quick, out, haxdp, command })`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use haxdp_tests::flood::{cpu_seconds, flood, FloodKind, FloodSpec};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{wait_for, Lan, Netns, Proc, TempDir};

/// What `cargo xtask bench` runs.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Rows of the issue's list to run (1-7); empty runs all of them.
    pub rows: Vec<u8>,
    /// Repetitions of the repeated rows (1 and 3; row 2 runs at most 10).
    pub runs: u32,
    /// Shorter durations (15 s instead of 60 s, 5 s floods, 10 s scale).
    pub quick: bool,
    /// Where the markdown table goes (BENCHMARKS.md at the workspace root).
    pub out: PathBuf,
    /// The haxdp binary to measure (a release build).
    pub haxdp: PathBuf,
    /// The command line, recorded in the markdown so a reader can rerun it.
    pub command: String,
}

/// Which daemon a lab node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keepalived,
    Haxdp,
}

impl Kind {
    const BOTH: [Kind; 2] = [Kind::Keepalived, Kind::Haxdp];

    fn name(self) -> &'static str {
        match self {
            Kind::Keepalived => "keepalived",
            Kind::Haxdp => "haxdp",
        }
    }
}

const LB1: &str = "192.0.2.10";
const LB2: &str = "192.0.2.11";
const VIP: &str = "192.0.2.100";
/// `Lan` gives host i the MAC 02:00:00:00:01:(10+i).
const LB2_MAC: &str = "02:00:00:00:01:0b";

/// One VRRP instance of a generated keepalived.conf.
#[derive(Debug, Clone)]
struct InstanceConf {
    vrid: u8,
    priority: u8,
    master: bool,
    version: u8,
    /// keepalived's advert_int text: "1", "0.05".
    advert: String,
    vip: String,
    /// VRRPv2 PASS authentication, as in the seeds.
    auth: bool,
    track_script: Option<String>,
}

impl InstanceConf {
    fn new(vrid: u8, priority: u8, version: u8, advert: &str, vip: &str) -> Self {
        Self {
            vrid,
            priority,
            master: priority >= 100,
            version,
            advert: advert.to_string(),
            vip: vip.to_string(),
            auth: false,
            track_script: None,
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "vrrp_instance VI_{} {{", self.vrid);
        let _ = writeln!(
            out,
            "    state {}",
            if self.master { "MASTER" } else { "BACKUP" }
        );
        let _ = writeln!(out, "    interface eth0");
        let _ = writeln!(out, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(out, "    priority {}", self.priority);
        let _ = writeln!(out, "    advert_int {}", self.advert);
        let _ = writeln!(out, "    version {}", self.version);
        if self.auth {
            out.push_str(
                "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n",
            );
        }
        if let Some(t) = &self.track_script {
            let _ = writeln!(out, "    track_script {{\n        {t}\n    }}");
        }
        let _ = writeln!(
            out,
            "    virtual_ipaddress {{\n        {}\n    }}",
            self.vip
        );
        out.push_str("}\n");
    }
}

/// A whole keepalived.conf: global_defs, `preamble` (checks), the instances.
fn config(router_id: &str, preamble: &str, instances: &[InstanceConf]) -> String {
    let mut s = format!("global_defs {{\n    router_id {router_id}\n}}\n{preamble}");
    for i in instances {
        i.render(&mut s);
    }
    s
}

/// Master_Down_Interval, RFC 9568 6.1 (VRRPv3) and RFC 3768 6.1 (VRRPv2,
/// whose Skew_Time does not scale with the interval).
fn master_down_interval(version: u8, prio: u8, advert_s: f64) -> f64 {
    let skew = if version == 3 {
        (256.0 - f64::from(prio)) * advert_s / 256.0
    } else {
        (256.0 - f64::from(prio)) / 256.0
    };
    3.0 * advert_s + skew
}

/// A number in [0, 1) from the clock's nanoseconds: enough to spread the
/// phase of a crash, no randomness crate needed.
fn jitter() -> f64 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Knuth's multiplicative hash spreads the low bits.
    f64::from(n.wrapping_mul(2_654_435_761) % 1_000_000) / 1e6
}

/// Seconds since the epoch: the clock of tcpdump's `-tt` and ping's `-D`.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ns_name(ns: &Netns) -> &str {
    &ns.name
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

fn kill_pid(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) on a pid of a process this bench started (a daemon
        // or keepalived's VRRP child, whose pid keepalived wrote for us).
        unsafe { libc::kill(pid, sig) };
    }
}

fn pid_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// A memory figure of a process in KiB from /proc/PID/status (proc(5)): `VmRSS` (all
/// resident pages, the shared binary and libraries included) or `RssAnon` (resident
/// anonymous memory: heap, stacks, what the process itself allocated).
fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `field` summed over a daemon's processes (`pids` deduplicated: haxdp is one process,
/// keepalived a parent and its VRRP child).
fn daemon_kib(pids: &[i32], field: &str) -> u64 {
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
struct Transitions {
    to_master: usize,
    to_backup: usize,
}

impl Transitions {
    fn since(self, before: Transitions) -> Transitions {
        Transitions {
            to_master: self.to_master.saturating_sub(before.to_master),
            to_backup: self.to_backup.saturating_sub(before.to_backup),
        }
    }
}

/// Counts transitions in a log: keepalived writes `(VI_1) Entering MASTER
/// STATE`, haxdp `VI_1: Backup -> Master (MasterDown)`.
fn count_transitions(kind: Kind, log: &str) -> Transitions {
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
fn receive_path(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        l.split("receive path ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })
}

/// A daemon on one lab node; restarted in place for repeated runs.
struct Node<'a> {
    kind: Kind,
    ns: &'a Netns,
    dir: PathBuf,
    conf: PathBuf,
    bin: PathBuf,
    proc: Option<Proc>,
    /// Logs of earlier starts, so counts survive a restart.
    old_logs: String,
    starts: u32,
}

impl<'a> Node<'a> {
    fn new(
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

    fn pid_file(&self) -> PathBuf {
        self.dir.join("keepalived.pid")
    }

    fn vrrp_pid_file(&self) -> PathBuf {
        self.dir.join("keepalived.vrrp.pid")
    }

    fn start(&mut self) -> Result<()> {
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

    fn main_pid(&self) -> i32 {
        self.proc.as_ref().map(Proc::pid).unwrap_or(-1)
    }

    /// The process that runs VRRP: haxdp itself, or keepalived's VRRP child
    /// (the pid it writes to its -r file).
    fn vrrp_pid(&self) -> Result<i32> {
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

    fn log(&self) -> String {
        let cur = self.proc.as_ref().map(Proc::log_text).unwrap_or_default();
        format!("{}{cur}", self.old_logs)
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn transitions(&self) -> Transitions {
        count_transitions(self.kind, &self.log())
    }

    /// A crash: nothing is sent on the way out. keepalived's parent is
    /// stopped first so that it cannot respawn the VRRP child it is about to
    /// lose, then both are killed.
    fn crash(&mut self) -> Result<()> {
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
    fn stop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.signal(libc::SIGTERM);
            p.wait_exit(Duration::from_secs(5));
        }
    }
}

fn vips_on(ns: &Netns) -> Vec<String> {
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

fn has_vip(ns: &Netns, vip: &str) -> bool {
    vips_on(ns).iter().any(|a| a == vip)
}

/// Waits until lb1 holds `count` VIPs (or `vip`) and lb2 none.
fn wait_converged(lb1: &Node, lb2: &Node, count: usize, timeout: Duration) -> Result<()> {
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
struct Blackhole<'a> {
    bridge: &'a Netns,
    table: String,
}

impl<'a> Blackhole<'a> {
    fn new(lan: &'a Lan, host: usize) -> Self {
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
struct CpuHog {
    children: Vec<Child>,
}

impl CpuHog {
    fn start(threads: usize, bound: Duration) -> Result<Self> {
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

/// Median and maximum; None when empty.
fn median_max(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some((med, s[n - 1]))
}

/// ping -D lines: `[1795000000.123456] 64 bytes from 192.0.2.100: icmp_seq=5 ...`.
fn ping_replies(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| {
            l.strip_prefix('[')
                .and_then(|r| r.split(']').next())
                .and_then(|t| t.parse().ok())
        })
        .collect()
}

/// The longest gap between consecutive replies at or after `from`,
/// counting from the last reply before `from`: the client's outage.
fn longest_reply_gap(replies: &[f64], from: f64) -> Option<f64> {
    let before = replies
        .iter()
        .copied()
        .filter(|t| *t < from)
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))))?;
    let mut after: Vec<f64> = replies.iter().copied().filter(|t| *t >= from).collect();
    after.sort_by(f64::total_cmp);
    if after.is_empty() {
        return None;
    }
    let mut prev = before;
    let mut worst = 0.0f64;
    for t in after {
        worst = worst.max(t - prev);
        prev = t;
    }
    Some(worst)
}

/// How a figure is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ms,
    Count,
    CpuS,
    MiB,
}

fn fmt_value(v: Option<f64>, unit: Unit) -> String {
    match v {
        None => "n/a".into(),
        Some(v) => match unit {
            Unit::Ms => format!("{:.1} ms", v * 1e3),
            Unit::Count => format!("{v:.0}"),
            Unit::CpuS => format!("{v:.2} s"),
            Unit::MiB => format!("{:.1} MiB", v / 1024.0),
        },
    }
}

/// haxdp / keepalived; lower is better on every row.
fn fmt_ratio(ka: Option<f64>, hx: Option<f64>, unit: Unit) -> String {
    match (ka, hx) {
        (Some(k), Some(h)) if unit == Unit::Count && k == 0.0 && h == 0.0 => "equal".into(),
        (Some(k), Some(h)) if k.abs() > 1e-9 => format!("{:.2}x", h / k),
        (Some(_), Some(_)) => "-".into(),
        _ => "n/a".into(),
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
struct Line {
    row: u8,
    scenario: String,
    metric: String,
    unit: Unit,
    ka: Option<f64>,
    hx: Option<f64>,
    note: String,
}

/// What each row measured.
#[derive(Default)]
struct Report {
    lines: Vec<Line>,
    /// Rows that failed, with why.
    failures: Vec<(u8, String)>,
    /// Receive paths haxdp logged, per row.
    rx_paths: Vec<(u8, String)>,
}

impl Report {
    fn push(
        &mut self,
        row: u8,
        scenario: &str,
        metric: &str,
        unit: Unit,
        per: &Per<Option<f64>>,
        note: String,
    ) {
        self.lines.push(Line {
            row,
            scenario: scenario.into(),
            metric: metric.into(),
            unit,
            ka: per.ka,
            hx: per.hx,
            note,
        });
    }

    fn table(&self) -> String {
        let mut s = String::from(
            "| # | scenario | metric | keepalived 2.2.7 | haxdp | haxdp / keepalived | notes |\n\
             | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for l in &self.lines {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                l.row,
                l.scenario,
                l.metric,
                fmt_value(l.ka, l.unit),
                fmt_value(l.hx, l.unit),
                fmt_ratio(l.ka, l.hx, l.unit),
                l.note
            );
        }
        s
    }
}

/// A value per daemon.
#[derive(Debug, Clone, Default)]
struct Per<T> {
    ka: T,
    hx: T,
}

impl<T> Per<T> {
    fn get_mut(&mut self, k: Kind) -> &mut T {
        match k {
            Kind::Keepalived => &mut self.ka,
            Kind::Haxdp => &mut self.hx,
        }
    }
}

fn per_map<T, U>(p: &Per<T>, f: impl Fn(&T) -> U) -> Per<U> {
    Per {
        ka: f(&p.ka),
        hx: f(&p.hx),
    }
}

/// Everything a row needs.
struct Ctx<'a> {
    opts: &'a BenchOpts,
    tmp: &'a TempDir,
}

impl Ctx<'_> {
    fn secs(&self, full: u64, quick: u64) -> Duration {
        Duration::from_secs(if self.opts.quick { quick } else { full })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path.join(name)
    }
}

/// Runs the benchmark rows and writes the markdown table.
pub fn run(opts: BenchOpts) -> Result<()> {
    haxdp_tests::require_root();
    for tool in [
        "keepalived",
        "nginx",
        "tcpdump",
        "ping",
        "nft",
        "curl",
        "timeout",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            bail!("{tool} is missing: run `cargo xtask setup` (keepalived, nginx-light, tcpdump, iputils-ping, nftables, curl)");
        }
    }
    if !opts.haxdp.is_file() {
        bail!(
            "{} is missing: build it first (`cargo build --release -p haxdp`)",
            opts.haxdp.display()
        );
    }
    let rows: Vec<u8> = if opts.rows.is_empty() {
        (1..=8).collect()
    } else {
        opts.rows.clone()
    };
    let tmp = TempDir::new("bench");
    // A private copy: a rebuild of target/release/haxdp during the run
    // (row 1 restarts daemons) must not change what is measured.
    let pinned = tmp.path.join("haxdp");
    std::fs::copy(&opts.haxdp, &pinned)
        .with_context(|| format!("copying {} to {}", opts.haxdp.display(), pinned.display()))?;
    let built = std::fs::metadata(&opts.haxdp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    // What the copied binary was built from, as far as the tree can tell
    // now; later commits by others do not change what is measured.
    let source = source_state();
    let run_opts = BenchOpts {
        haxdp: pinned,
        ..opts.clone()
    };
    let ctx = Ctx {
        opts: &run_opts,
        tmp: &tmp,
    };
    let mut report = Report::default();
    let started = Instant::now();
    for row in rows {
        let t = Instant::now();
        println!("bench: row {row} ...");
        // A row that fails (a daemon that would not converge, a missing
        // tool) is reported and the others still run.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match row {
            1 => row1_crash(&ctx, &mut report),
            2 => row2_nginx(&ctx, &mut report),
            3 => row3_stall(&ctx, &mut report),
            4 => row4_starvation(&ctx, &mut report),
            5 => row5_steady_cpu(&ctx, &mut report),
            6 => row6_floods(&ctx, &mut report),
            7 => row7_scale(&ctx, &mut report),
            8 => row8_restart(&ctx, &mut report),
            n => Err(anyhow::anyhow!("there is no row {n}: rows are 1 to 8")),
        }));
        let err = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        };
        if let Some(e) = err {
            eprintln!("bench: row {row} failed: {e}");
            report.failures.push((row, e));
        }
        println!("bench: row {row} took {:.0} s", t.elapsed().as_secs_f64());
    }
    let table = report.table();
    println!("\n{table}");
    let md = markdown(&opts, &report, started.elapsed(), built, &source)?;
    std::fs::write(&opts.out, md).with_context(|| format!("writing {}", opts.out.display()))?;
    println!("bench: wrote {}", opts.out.display());
    if !report.failures.is_empty() {
        bail!(
            "{} row(s) failed: {}",
            report.failures.len(),
            report
                .failures
                .iter()
                .map(|(r, _)| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn cmd_out(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The commit the measured haxdp was built from, and whether the daemon's
/// sources had uncommitted changes then.
fn source_state() -> String {
    let head = cmd_out(&["git", "rev-parse", "--short", "HEAD"]);
    let dirty = cmd_out(&[
        "git",
        "status",
        "--porcelain",
        "--",
        "haxdp",
        "haxdp-common",
        "haxdp-ebpf",
        "haxdp-vrrp",
        "haxdp-config",
    ]);
    if head.is_empty() {
        "built from a tree without git".into()
    } else if dirty.is_empty() {
        format!("built from commit {head}")
    } else {
        format!("built from commit {head} plus uncommitted changes to the daemon's sources")
    }
}

fn markdown(
    opts: &BenchOpts,
    report: &Report,
    took: Duration,
    built: Option<u64>,
    source: &str,
) -> Result<String> {
    let mut s = String::from("# Benchmarks: haxdp against keepalived\n\n");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let ka_version = Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| {
            let t = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            t.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default();
    let mut paths: Vec<String> = report
        .rx_paths
        .iter()
        .map(|(r, p)| format!("row {r}: {p}"))
        .collect();
    paths.dedup();
    let _ = writeln!(
        s,
        "- date: {}",
        cmd_out(&["date", "-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(s, "- kernel: {}", cmd_out(&["uname", "-sr"]));
    let _ = writeln!(s, "- machine: {} x {cpu}", cmd_out(&["nproc"]));
    let _ = writeln!(s, "- baseline: {ka_version} (Debian package)");
    let _ = writeln!(
        s,
        "- haxdp receive path (from the daemons' logs): {}",
        if paths.is_empty() {
            "not logged".into()
        } else {
            paths.join("; ")
        }
    );
    let _ = writeln!(s, "- command: `{}`", opts.command);
    let _ = writeln!(
        s,
        "- haxdp: {source} (the tree when the run started); binary {} built {}",
        opts.haxdp.display(),
        built
            .map(|b| cmd_out(&[
                "date",
                "-u",
                "-d",
                &format!("@{b}"),
                "+%Y-%m-%d %H:%M:%S UTC"
            ]))
            .unwrap_or_else(|| "at an unknown time".into())
    );
    let _ = writeln!(
        s,
        "- runs: {} per repeated row{}; whole bench took {:.0} s\n",
        opts.runs,
        if opts.quick {
            ", --quick durations"
        } else {
            ""
        },
        took.as_secs_f64()
    );
    s.push_str(
        "Same run, same namespace lab (a bridge namespace, two load balancers on veth pairs, \
         a client), the same keepalived.conf for both daemons unless the row says otherwise. \
         Lower is better on every line; the ratio is haxdp divided by keepalived. Timings come \
         from a shared 2-core machine: medians and maxima are reported, nothing is asserted.\n\n",
    );
    s.push_str(&report.table());
    if !report.failures.is_empty() {
        s.push_str("\n## Rows that failed in this run\n\n");
        for (r, e) in &report.failures {
            let first = e.lines().next().unwrap_or("");
            let _ = writeln!(s, "- row {r}: {first}");
        }
    }
    s.push_str(METHOD);
    Ok(s)
}

const METHOD: &str = "
## How each row is measured

1. **Crash failover.** lb1 (priority 100) and lb2 (priority 90), VRRPv3, one VIP. The crash:
   nftables in the bridge namespace drops every frame to and from lb1's port, and lb1's daemon
   is killed with SIGKILL (keepalived: parent stopped, VRRP child and parent killed). The
   client pings the VIP every 1 ms (`ping -D -i 0.001`); the outage is the longest gap between
   two replies around the crash. The overshoot is read from a tcpdump in the client's
   namespace: lb2's first advert minus lb1's last advert, minus the Master_Down_Interval of
   RFC 9568 6.1. lb1 is restarted (VIP removed, link restored) between runs.
2. **nginx failure to VIP moved.** Real nginx (Debian's nginx-light) on both load balancers,
   VRRPv2 with PASS authentication and 1 s adverts as in the seeds. keepalived runs the seeds'
   check (`chkngx.sh`: nginx alive and `curl` answers 200; alive is tested with `kill -0` on the
   pid file instead of `pkill -0 nginx`, which would see the other namespace's nginx) with
   interval 1, fall 3, weight -20. haxdp runs its native `vrrp_nginx_check` with interval
   0.2, fall 2, weight -20. nginx on lb1 is stopped (SIGTERM); the figure is the stop to lb2's
   first gratuitous ARP for the VIP on the wire.
3. **Stall.** VRRPv3 at 100 ms adverts; the backup daemon (keepalived's VRRP child) gets
   SIGSTOP for three Master_Down_Intervals, then SIGCONT, and is watched for 1 s. A false
   takeover is a transition to MASTER in the backup's log.
4. **Starvation.** VRRPv3 at 10 ms adverts; two busy loops (one per core, bounded by
   `timeout`) run for the whole window. False transitions: any MASTER or BACKUP transition
   logged by either daemon during the window.
5. **Steady-state CPU of a backup.** 100 instances (VRIDs 1-100) at 10 ms adverts; utime +
   stime from /proc/PID/stat of the backup's VRRP process over the window.
6. **Advert floods.** VRRPv2 with PASS authentication, 1 s adverts; an attacker host sends
   adverts on an AF_PACKET socket as fast as one thread can for the window (bad checksums;
   valid priority-1 adverts from one spoofed source; the same from 50000 sources). False
   takeovers: transitions logged by either daemon; CPU of each daemon over the flood.
7. **Scale.** 255 instances (VRIDs 1-255) at 1 s adverts on one interface; peak VmRSS and
   RssAnon (resident anonymous memory: what the daemon allocated, without the shared
   binary and libraries) from /proc/PID/status, summed over the daemon's processes
   (keepalived's parent and its VRRP child; haxdp's one process), and CPU seconds of the
   VRRP process over the window.
8. **Restart of the master's daemon.** lb1 (100) master, lb2 (90), VRRPv3 1 s adverts; a
   client pings the VIP every millisecond. keepalived: SIGTERM and start again, what
   `systemctl restart keepalived` does; haxdp: `haxdp upgrade`. Per restart: the client's
   longest ping gap, the transitions both daemons logged, and the restarted master's
   longest gap between adverts (priority > 0) on the wire.
";

/// One two-node (or three with a client) lab running one daemon kind.
struct Pair<'a> {
    lan: &'a Lan,
    lb1: Node<'a>,
    lb2: Node<'a>,
}

impl<'a> Pair<'a> {
    fn start(
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

    fn transitions(&self) -> (Transitions, Transitions) {
        (self.lb1.transitions(), self.lb2.transitions())
    }

    fn rx_path(&self) -> Option<String> {
        if self.lb1.kind != Kind::Haxdp {
            return None;
        }
        receive_path(&self.lb2.log()).or_else(|| receive_path(&self.lb1.log()))
    }

    /// The backup first, so that the master's priority-0 advert does not
    /// hand the VIP over on the way out.
    fn stop(&mut self) {
        self.lb2.stop();
        self.lb1.stop();
    }
}

fn note_rx(report: &mut Report, row: u8, pair: &Pair) {
    if let Some(p) = pair.rx_path() {
        if !report.rx_paths.iter().any(|(r, q)| *r == row && *q == p) {
            report.rx_paths.push((row, p));
        }
    }
}

fn row1_crash(ctx: &Ctx, report: &mut Report) -> Result<()> {
    for (advert, advert_s) in [("0.05", 0.05), ("1", 1.0)] {
        let mut outage: Per<Vec<f64>> = Per::default();
        let mut over: Per<Vec<f64>> = Per::default();
        let mut failed: Per<u32> = Per::default();
        for kind in Kind::BOTH {
            let lan = Lan::new(3);
            let client = &lan.hosts[2];
            let cap_log = ctx.dir(&format!("r1-{advert}-{}-tcpdump.txt", kind.name()));
            let cap = Capture::start(client, "eth0", &cap_log);
            let mk = |prio| {
                config(
                    "lb",
                    "",
                    &[InstanceConf::new(51, prio, 3, advert, &format!("{VIP}/24"))],
                )
            };
            let mut pair =
                Pair::start(ctx, &lan, kind, &format!("r1-{advert}"), &mk(100), &mk(90))?;
            let mdi = master_down_interval(3, 90, advert_s);
            for run in 0..ctx.opts.runs {
                // lb1 has just been (re)started: every advert from it after
                // this instant comes from the life this run ends.
                let run_start = epoch_now();
                wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
                // The backup has heard a few adverts from the (re)started master.
                // A crash lands anywhere between two adverts: a random
                // phase, else every run would measure the same slice of
                // the Master_Down_Interval.
                std::thread::sleep(Duration::from_secs_f64(
                    2.0 * advert_s + 0.2 + advert_s * jitter(),
                ));
                let ping_log = ctx.dir(&format!("r1-{advert}-{}-ping{run}.txt", kind.name()));
                let deadline = format!("{}", (mdi + 6.0).ceil());
                let mut ping = client.spawn(
                    &[
                        "ping", "-D", "-n", "-i", "0.001", "-W", "1", "-w", &deadline, VIP,
                    ],
                    &ping_log,
                );
                std::thread::sleep(Duration::from_millis(300));
                let crash_at = epoch_now();
                let hole = Blackhole::new(pair.lan, 0);
                pair.lb1.crash()?;
                let took = wait_for(Duration::from_secs_f64(mdi + 5.0), || {
                    has_vip(pair.lb2.ns, VIP).then_some(())
                });
                // Replies resume once the client has the new owner's MAC.
                std::thread::sleep(Duration::from_millis(300));
                ping.signal(libc::SIGINT);
                ping.wait_exit(Duration::from_secs(2));
                let replies = ping_replies(&ping.log_text());
                let ev = cap.events();
                let last1 = ev
                    .iter()
                    .filter_map(|e| match e {
                        Seen::Advert { t, src, .. }
                            if src == LB1 && *t >= run_start && *t <= crash_at + 0.1 =>
                        {
                            Some(*t)
                        }
                        _ => None,
                    })
                    .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))));
                let first2 = last1.and_then(|l| {
                    ev.iter().find_map(|e| match e {
                        Seen::Advert { t, src, .. } if src == LB2 && *t > l => Some(*t),
                        _ => None,
                    })
                });
                match (took, longest_reply_gap(&replies, crash_at), last1, first2) {
                    (Some(()), Some(gap), Some(l), Some(f)) => {
                        outage.get_mut(kind).push(gap);
                        over.get_mut(kind).push(f - l - mdi);
                    }
                    other => {
                        *failed.get_mut(kind) += 1;
                        eprintln!(
                            "bench: row 1 {} {advert}s run {run}: no measurement (takeover {:?}, outage {:?}, lb1 last advert {:?}, lb2 first advert {:?})",
                            kind.name(), other.0.is_some(), other.1, other.2, other.3
                        );
                    }
                }
                // Bring lb1 back: link restored, the VIP its crash left
                // behind removed, daemon restarted; it preempts.
                drop(hole);
                let _ = pair.lb1.ns.try_exec(&[
                    "ip",
                    "addr",
                    "del",
                    &format!("{VIP}/24"),
                    "dev",
                    "eth0",
                ]);
                pair.lb1.start()?;
            }
            note_rx(report, 1, &pair);
            pair.stop();
        }
        let scen = format!("crash failover, v3 {advert} s adverts, prio 90 backup");
        let n = ctx.opts.runs;
        let note = |f: &Per<u32>| {
            let mut s = format!("{n} runs");
            if f.ka + f.hx > 0 {
                let _ = write!(s, "; unmeasured runs: keepalived {}, haxdp {}", f.ka, f.hx);
            }
            s
        };
        let mo = per_map(&outage, |v| median_max(v));
        let mv = per_map(&over, |v| median_max(v));
        report.push(
            1,
            &scen,
            "client outage, median",
            Unit::Ms,
            &per_map(&mo, |m| m.map(|x| x.0)),
            note(&failed),
        );
        report.push(
            1,
            &scen,
            "client outage, max",
            Unit::Ms,
            &per_map(&mo, |m| m.map(|x| x.1)),
            String::new(),
        );
        report.push(
            1,
            &scen,
            "wire overshoot past MDI, median",
            Unit::Ms,
            &per_map(&mv, |m| m.map(|x| x.0)),
            format!("MDI {:.1} ms", master_down_interval(3, 90, advert_s) * 1e3),
        );
        report.push(
            1,
            &scen,
            "wire overshoot past MDI, max",
            Unit::Ms,
            &per_map(&mv, |m| m.map(|x| x.1)),
            String::new(),
        );
    }
    Ok(())
}

/// nginx in a load balancer's namespace, its files in `dir`.
struct Nginx<'a> {
    ns: &'a Netns,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl<'a> Nginx<'a> {
    fn new(ns: &'a Netns, dir: PathBuf, name: &str) -> Result<Self> {
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        std::fs::write(dir.join("nginx.conf"), crate::lab::nginx_config(name, &dir))
            .context("writing nginx.conf")?;
        let mut n = Nginx {
            ns,
            dir,
            proc: None,
        };
        n.start()?;
        Ok(n)
    }

    fn start(&mut self) -> Result<()> {
        let conf = self.dir.join("nginx.conf");
        let err = self.dir.join("nginx-early-error.log");
        self.proc = Some(self.ns.spawn(
            &[
                "nginx",
                "-e",
                path_str(&err)?,
                "-c",
                path_str(&conf)?,
                "-p",
                path_str(&self.dir)?,
            ],
            &self.dir.join("nginx.out"),
        ));
        let ns = self.ns;
        let up = wait_for(Duration::from_secs(5), || {
            ns.try_exec(&[
                "curl",
                "-sf",
                "-m",
                "1",
                "-o",
                "/dev/null",
                "http://127.0.0.1/",
            ])
            .status
            .success()
            .then_some(())
        });
        if up.is_none() {
            bail!(
                "nginx did not answer on 127.0.0.1:80 in {}: {}",
                self.ns.name,
                self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
            );
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGTERM);
            p.wait_exit(Duration::from_secs(5));
        }
    }
}

fn row2_nginx(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let runs = ctx.opts.runs.min(10);
    let mut moved: Per<Vec<f64>> = Per::default();
    let mut failed: Per<u32> = Per::default();
    for kind in Kind::BOTH {
        let lan = Lan::new(3);
        let client = &lan.hosts[2];
        let base = ctx.dir(&format!("r2-{}", kind.name()));
        let cap = Capture::start(client, "eth0", &base.with_extension("tcpdump.txt"));
        let mut nginx1 = Nginx::new(&lan.hosts[0], base.join("nginx1"), "lb1")?;
        let _nginx2 = Nginx::new(&lan.hosts[1], base.join("nginx2"), "lb2")?;
        let mk = |prio: u8, ndir: &Path| -> Result<String> {
            let pidfile = ndir.join("nginx.pid");
            let preamble = match kind {
                Kind::Haxdp => format!(
                    "vrrp_nginx_check chk_nginx {{\n    url http://127.0.0.1/\n    expect 200\n    interval 0.2\n    timeout 0.1\n    rise 2\n    fall 2\n    weight -20\n    pidfile {}\n}}\n",
                    pidfile.display()
                ),
                Kind::Keepalived => {
                    // The seeds' chkngx.sh, with kill -0 on this nginx's pid
                    // file: pkill would also see the other namespace's nginx.
                    let script = ndir.join("chkngx.sh");
                    std::fs::write(
                        &script,
                        format!(
                            "#!/bin/sh\nkill -0 \"$(cat {})\" 2>/dev/null || exit 1\n[ \"$(curl -sL -m 1 -w '%{{http_code}}' http://127.0.0.1/ -o /dev/null)\" = 200 ]\n",
                            pidfile.display()
                        ),
                    )?;
                    Command::new("chmod").args(["755", path_str(&script)?]).status()?;
                    format!(
                        "vrrp_script chk_nginx {{\n    script \"{}\"\n    interval 1\n    weight -20\n    fall 3\n    rise 2\n}}\n",
                        script.display()
                    )
                }
            };
            let mut i = InstanceConf::new(51, prio, 2, "1", &format!("{VIP}/24"));
            i.auth = true;
            i.track_script = Some("chk_nginx".into());
            Ok(config("lb", &preamble, &[i]))
        };
        let (c1, c2) = (
            mk(100, &base.join("nginx1"))?,
            mk(90, &base.join("nginx2"))?,
        );
        let mut pair = Pair::start(ctx, &lan, kind, "r2", &c1, &c2)?;
        for run in 0..runs {
            wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(15))?;
            std::thread::sleep(Duration::from_millis(1500));
            let stop_at = epoch_now();
            nginx1.stop();
            let took = wait_for(Duration::from_secs(15), || {
                has_vip(pair.lb2.ns, VIP).then_some(())
            });
            std::thread::sleep(Duration::from_millis(300));
            let garp = cap.events().iter().find_map(|e| match e {
                Seen::Garp { t, addr, mac } if addr == VIP && mac == LB2_MAC && *t > stop_at => {
                    Some(*t)
                }
                _ => None,
            });
            match (took, garp) {
                (Some(()), Some(g)) => moved.get_mut(kind).push(g - stop_at),
                _ => {
                    *failed.get_mut(kind) += 1;
                    eprintln!(
                        "bench: row 2 {} run {run}: VIP did not move (takeover {}, GARP {garp:?})",
                        kind.name(),
                        took.is_some()
                    );
                }
            }
            nginx1.start()?;
        }
        note_rx(report, 2, &pair);
        pair.stop();
        let _ = &pair.lan;
    }
    let m = per_map(&moved, |v| median_max(v));
    let scen = "nginx stopped to VIP moved (ka: script i1 f3; haxdp: native i0.2 f2)";
    let mut note = format!("{runs} runs, v2 1 s adverts");
    if failed.ka + failed.hx > 0 {
        let _ = write!(
            note,
            "; VIP did not move: keepalived {}, haxdp {}",
            failed.ka, failed.hx
        );
    }
    report.push(
        2,
        scen,
        "stop to first GARP, median",
        Unit::Ms,
        &per_map(&m, |m| m.map(|x| x.0)),
        note,
    );
    report.push(
        2,
        scen,
        "stop to first GARP, max",
        Unit::Ms,
        &per_map(&m, |m| m.map(|x| x.1)),
        String::new(),
    );
    Ok(())
}

fn row3_stall(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let advert_s = 0.1;
    let mdi = master_down_interval(3, 90, advert_s);
    let mut false_to: Per<u32> = Per::default();
    let mut runs_with: Per<u32> = Per::default();
    for kind in Kind::BOTH {
        let lan = Lan::new(2);
        let mk = |prio| {
            config(
                "lb",
                "",
                &[InstanceConf::new(51, prio, 3, "0.1", &format!("{VIP}/24"))],
            )
        };
        let mut pair = Pair::start(ctx, &lan, kind, "r3", &mk(100), &mk(90))?;
        for _ in 0..ctx.opts.runs {
            wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
            std::thread::sleep(Duration::from_millis(500));
            let (b1, b2) = pair.transitions();
            let pid = pair.lb2.vrrp_pid()?;
            kill_pid(pid, libc::SIGSTOP);
            std::thread::sleep(Duration::from_secs_f64(3.0 * mdi));
            kill_pid(pid, libc::SIGCONT);
            std::thread::sleep(Duration::from_secs(1));
            let (a1, a2) = pair.transitions();
            let n = a2.since(b2).to_master + a1.since(b1).to_backup;
            *false_to.get_mut(kind) += a2.since(b2).to_master as u32;
            if n > 0 {
                *runs_with.get_mut(kind) += 1;
            }
        }
        note_rx(report, 3, &pair);
        pair.stop();
    }
    let scen = format!(
        "backup SIGSTOPped for 3 x MDI ({:.0} ms), v3 0.1 s",
        3.0 * mdi * 1e3
    );
    let f = |p: &Per<u32>| per_map(p, |v| Some(f64::from(*v)));
    report.push(
        3,
        &scen,
        "false takeovers (backup -> MASTER)",
        Unit::Count,
        &f(&false_to),
        format!("{} runs", ctx.opts.runs),
    );
    report.push(
        3,
        &scen,
        "runs with any transition",
        Unit::Count,
        &f(&runs_with),
        String::new(),
    );
    Ok(())
}

fn row4_starvation(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let window = ctx.secs(60, 15);
    let mut false_tr: Per<Option<f64>> = Per::default();
    for kind in Kind::BOTH {
        let lan = Lan::new(2);
        let mk = |prio| {
            config(
                "lb",
                "",
                &[InstanceConf::new(51, prio, 3, "0.01", &format!("{VIP}/24"))],
            )
        };
        let mut pair = Pair::start(ctx, &lan, kind, "r4", &mk(100), &mk(90))?;
        wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_secs(1));
        let (b1, b2) = pair.transitions();
        {
            let _hog = CpuHog::start(2, window)?;
            std::thread::sleep(window);
        }
        std::thread::sleep(Duration::from_millis(500));
        let (a1, a2) = pair.transitions();
        let (d1, d2) = (a1.since(b1), a2.since(b2));
        *false_tr.get_mut(kind) =
            Some((d1.to_master + d1.to_backup + d2.to_master + d2.to_backup) as f64);
        note_rx(report, 4, &pair);
        pair.stop();
    }
    report.push(
        4,
        &format!(
            "2 busy loops on 2 cores for {} s, v3 10 ms adverts",
            window.as_secs()
        ),
        "false transitions (both daemons)",
        Unit::Count,
        &false_tr,
        String::new(),
    );
    Ok(())
}

fn many_instances(n: u16, prio: u8, advert: &str, vip: impl Fn(u8) -> String) -> Vec<InstanceConf> {
    (1..=n)
        .filter_map(|v| u8::try_from(v).ok())
        .map(|v| InstanceConf::new(v, prio, 3, advert, &vip(v)))
        .collect()
}

fn row5_steady_cpu(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let window = ctx.secs(60, 15);
    let mut backup: Per<Option<f64>> = Per::default();
    let mut master: Per<Option<f64>> = Per::default();
    let mut tr: Per<usize> = Per::default();
    let mut unconverged: Per<bool> = Per::default();
    // haxdp converges in about a second; the wait only bounds a pair that
    // flaps, so --quick keeps it short.
    let converge = ctx.secs(20, 10);
    for kind in Kind::BOTH {
        let lan = Lan::new(2);
        let vip = |v: u8| format!("198.51.100.{v}/32");
        let c1 = config("lb1", "", &many_instances(100, 100, "0.01", vip));
        let c2 = config("lb2", "", &many_instances(100, 90, "0.01", vip));
        let mut pair = Pair::start(ctx, &lan, kind, "r5", &c1, &c2)?;
        // A pair that cannot hold 100 instances at 10 ms keeps flapping
        // and never converges: the window is measured anyway (the
        // configured backup's CPU), and the row says so.
        if let Err(e) = wait_converged(&pair.lb1, &pair.lb2, 100, converge) {
            eprintln!(
                "bench: row 5: {}",
                e.to_string().lines().next().unwrap_or("")
            );
            *unconverged.get_mut(kind) = true;
        }
        std::thread::sleep(Duration::from_secs(2));
        let (p1, p2) = (pair.lb1.vrrp_pid()?, pair.lb2.vrrp_pid()?);
        let (b1, b2) = pair.transitions();
        let (c01, c02) = (cpu_seconds(p1), cpu_seconds(p2));
        std::thread::sleep(window);
        let (c11, c12) = (cpu_seconds(p1), cpu_seconds(p2));
        let (a1, a2) = pair.transitions();
        *backup.get_mut(kind) = Some(c12 - c02);
        *master.get_mut(kind) = Some(c11 - c01);
        let (d1, d2) = (a1.since(b1), a2.since(b2));
        *tr.get_mut(kind) = d1.to_master + d1.to_backup + d2.to_master + d2.to_backup;
        note_rx(report, 5, &pair);
        pair.stop();
    }
    let w = window.as_secs_f64();
    let pct = |v: Option<f64>| {
        v.map(|c| format!("{:.1}%", c / w * 100.0))
            .unwrap_or_default()
    };
    let scen = format!("100 instances, v3 10 ms adverts, {} s", window.as_secs());
    report.push(
        5,
        &scen,
        "backup CPU (utime+stime)",
        Unit::CpuS,
        &backup,
        format!(
            "of one core: keepalived {}, haxdp {}",
            pct(backup.ka),
            pct(backup.hx)
        ),
    );
    report.push(
        5,
        &scen,
        "master CPU (utime+stime)",
        Unit::CpuS,
        &master,
        String::new(),
    );
    report.push(
        5,
        &scen,
        "transitions in the window (both daemons)",
        Unit::Count,
        &per_map(&tr, |n| Some(*n as f64)),
        {
            let mut n = String::from("a pair that flaps is not in a steady state");
            for k in Kind::BOTH {
                if *unconverged.get_mut(k) {
                    let _ = write!(
                        n,
                        "; {} never converged within {} s",
                        k.name(),
                        converge.as_secs()
                    );
                }
            }
            n
        },
    );
    Ok(())
}

/// One flood against one pair.
#[derive(Debug, Clone, Copy)]
struct FloodResult {
    transitions: f64,
    master_cpu: f64,
    backup_cpu: f64,
    /// Packets per second the flooder reached.
    rate: f64,
}

fn row6_floods(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let secs = ctx.secs(10, 5);
    let kinds = [
        ("bad checksums", FloodKind::BadChecksum),
        ("spoofed priority-1 master", FloodKind::SpoofedLowPriority),
        (
            "50000 spoofed sources",
            FloodKind::ManySources { sources: 50_000 },
        ),
    ];
    // (false transitions, master CPU, backup CPU, packets/s sent) per flood.
    let mut res: Vec<Per<Option<FloodResult>>> = vec![Per::default(); kinds.len()];
    for kind in Kind::BOTH {
        let lan = Lan::new(3);
        let attacker = &lan.hosts[2];
        let mk = |prio| {
            let mut i = InstanceConf::new(51, prio, 2, "1", &format!("{VIP}/24"));
            i.auth = true;
            config("lb", "", &[i])
        };
        let mut pair = Pair::start(ctx, &lan, kind, "r6", &mk(100), &mk(90))?;
        wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_secs(2));
        let (p1, p2) = (pair.lb1.vrrp_pid()?, pair.lb2.vrrp_pid()?);
        for (i, (_, fk)) in kinds.iter().enumerate() {
            let (b1, b2) = pair.transitions();
            let (c01, c02) = (cpu_seconds(p1), cpu_seconds(p2));
            // The highest rate one sender thread reaches: the pacing never
            // sleeps at this target; the packet count and duration bound it.
            let rate = 10_000_000u64;
            let spec = FloodSpec {
                kind: *fk,
                vrid: 51,
                version: haxdp_vrrp::Version::V2,
                advert_int_cs: 100,
                vips: vec![VIP.parse().context("VIP")?],
                auth: Some(haxdp_vrrp::pass_auth(b"1111")),
                rate,
                max_packets: rate * secs.as_secs(),
                max_duration: secs,
            };
            let sent = flood(ns_name(attacker), "eth0", spec).join().map_err(|_| {
                anyhow::anyhow!(
                    "the flooder thread panicked (AF_PACKET socket in {}?)",
                    attacker.name
                )
            })?;
            let (c11, c12) = (cpu_seconds(p1), cpu_seconds(p2));
            // Let a takeover the flood provoked show up in the logs.
            std::thread::sleep(Duration::from_secs(2));
            let (a1, a2) = pair.transitions();
            let (d1, d2) = (a1.since(b1), a2.since(b2));
            let n = (d1.to_master + d1.to_backup + d2.to_master + d2.to_backup) as f64;
            *res[i].get_mut(kind) = Some(FloodResult {
                transitions: n,
                master_cpu: c11 - c01,
                backup_cpu: c12 - c02,
                rate: sent.rate(),
            });
            if !pid_alive(p1) || !pid_alive(p2) {
                bail!(
                    "{} died under the {:?} flood:\n{}\n{}",
                    kind.name(),
                    fk,
                    pair.lb1.log_tail(10),
                    pair.lb2.log_tail(10)
                );
            }
            // Back to one master before the next flood.
            wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
        }
        note_rx(report, 6, &pair);
        pair.stop();
    }
    for (i, (name, _)) in kinds.iter().enumerate() {
        let scen = format!("flood: {name}, {} s, v2 PASS 1 s adverts", secs.as_secs());
        let r = &res[i];
        let rates = format!(
            "sent {:.0} kpps (ka run) / {:.0} kpps (haxdp run)",
            r.ka.map(|x| x.rate).unwrap_or(0.0) / 1e3,
            r.hx.map(|x| x.rate).unwrap_or(0.0) / 1e3
        );
        report.push(
            6,
            &scen,
            "false transitions",
            Unit::Count,
            &per_map(r, |x| x.map(|x| x.transitions)),
            rates,
        );
        report.push(
            6,
            &scen,
            "master CPU",
            Unit::CpuS,
            &per_map(r, |x| x.map(|x| x.master_cpu)),
            String::new(),
        );
        report.push(
            6,
            &scen,
            "backup CPU",
            Unit::CpuS,
            &per_map(r, |x| x.map(|x| x.backup_cpu)),
            String::new(),
        );
    }
    Ok(())
}

fn row7_scale(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let window = ctx.secs(30, 10);
    // Peak over the window, per daemon: [master VmRSS, backup VmRSS, master RssAnon,
    // backup RssAnon], each summed over the daemon's processes.
    let mut mem: [Per<Option<f64>>; 4] = Default::default();
    let mut cpu_m: Per<Option<f64>> = Per::default();
    let mut cpu_b: Per<Option<f64>> = Per::default();
    for kind in Kind::BOTH {
        let lan = Lan::new(2);
        let vip = |v: u8| format!("203.0.113.{v}/32");
        let c1 = config("lb1", "", &many_instances(255, 100, "1", vip));
        let c2 = config("lb2", "", &many_instances(255, 90, "1", vip));
        let mut pair = Pair::start(ctx, &lan, kind, "r7", &c1, &c2)?;
        wait_converged(&pair.lb1, &pair.lb2, 255, Duration::from_secs(30))?;
        std::thread::sleep(Duration::from_secs(2));
        let (p1, p2) = (pair.lb1.vrrp_pid()?, pair.lb2.vrrp_pid()?);
        let all1 = [pair.lb1.main_pid(), p1];
        let all2 = [pair.lb2.main_pid(), p2];
        let (c01, c02) = (cpu_seconds(p1), cpu_seconds(p2));
        let mut peak = [0u64; 4];
        let until = Instant::now() + window;
        while Instant::now() < until {
            let now = [
                daemon_kib(&all1, "VmRSS"),
                daemon_kib(&all2, "VmRSS"),
                daemon_kib(&all1, "RssAnon"),
                daemon_kib(&all2, "RssAnon"),
            ];
            for (p, n) in peak.iter_mut().zip(now) {
                *p = (*p).max(n);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        *cpu_m.get_mut(kind) = Some(cpu_seconds(p1) - c01);
        *cpu_b.get_mut(kind) = Some(cpu_seconds(p2) - c02);
        for (m, p) in mem.iter_mut().zip(peak) {
            *m.get_mut(kind) = Some(p as f64);
        }
        note_rx(report, 7, &pair);
        pair.stop();
    }
    let scen = format!(
        "255 VRIDs on one interface, v3 1 s adverts, {} s",
        window.as_secs()
    );
    for (m, what) in mem.iter().zip([
        "master peak VmRSS, all processes",
        "backup peak VmRSS, all processes",
        "master peak RssAnon, all processes",
        "backup peak RssAnon, all processes",
    ]) {
        report.push(7, &scen, what, Unit::MiB, m, String::new());
    }
    report.push(7, &scen, "master CPU", Unit::CpuS, &cpu_m, String::new());
    report.push(7, &scen, "backup CPU", Unit::CpuS, &cpu_b, String::new());
    Ok(())
}

/// Row 8: the master's daemon restarted. keepalived: stop and start, what `systemctl
/// restart keepalived` does (priority 0, the backup takes over, the restarted master
/// preempts it back). haxdp: `haxdp upgrade` (the successor adopts the state; nothing
/// moves). Per restart: the client's longest ping gap, the transitions of both nodes, the
/// restarted master's longest advert gap on the wire.
fn row8_restart(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let (advert, advert_s) = ("1", 1.0);
    let runs = ctx.opts.runs.clamp(1, 10);
    let mut outage: Per<Vec<f64>> = Per::default();
    let mut moves: Per<Vec<f64>> = Per::default();
    let mut gaps: Per<Vec<f64>> = Per::default();
    let mdi = master_down_interval(3, 90, advert_s);
    for kind in Kind::BOTH {
        let lan = Lan::new(3);
        let client = &lan.hosts[2];
        let cap = Capture::start(
            client,
            "eth0",
            &ctx.dir(&format!("r8-{}-tcpdump.txt", kind.name())),
        );
        let mk = |prio| {
            config(
                "lb",
                "",
                &[InstanceConf::new(51, prio, 3, advert, &format!("{VIP}/24"))],
            )
        };
        let mut pair = Pair::start(ctx, &lan, kind, "r8", &mk(100), &mk(90))?;
        wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(15))?;
        std::thread::sleep(Duration::from_secs_f64(2.0 * advert_s));
        for run in 0..runs {
            let before = pair.transitions();
            let ping_log = ctx.dir(&format!("r8-{}-ping{run}.txt", kind.name()));
            let deadline = format!("{}", (2.0 * mdi + 10.0).ceil());
            let mut ping = client.spawn(
                &[
                    "ping", "-D", "-n", "-i", "0.001", "-W", "1", "-w", &deadline, VIP,
                ],
                &ping_log,
            );
            std::thread::sleep(Duration::from_millis(300));
            let t0 = epoch_now();
            match kind {
                Kind::Keepalived => {
                    pair.lb1.stop();
                    pair.lb1.start()?;
                    // The restarted master waits a Master_Down_Interval, then preempts.
                    std::thread::sleep(Duration::from_secs_f64(mdi));
                    wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(15))?;
                }
                Kind::Haxdp => {
                    let out = pair
                        .lb1
                        .ns
                        .try_exec(&[path_str(&ctx.opts.haxdp)?, "upgrade"]);
                    if !out.status.success() {
                        bail!(
                            "haxdp upgrade failed: {}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
            }
            std::thread::sleep(Duration::from_secs_f64(2.0 * advert_s));
            let t1 = epoch_now();
            ping.signal(libc::SIGINT);
            ping.wait_exit(Duration::from_secs(2));
            let replies = ping_replies(&ping.log_text());
            if let Some(g) = longest_reply_gap(&replies, t0) {
                outage.get_mut(kind).push(g);
            }
            let after = pair.transitions();
            let n = (after.0.to_master + after.0.to_backup + after.1.to_master + after.1.to_backup)
                .saturating_sub(
                    before.0.to_master
                        + before.0.to_backup
                        + before.1.to_master
                        + before.1.to_backup,
                );
            moves.get_mut(kind).push(n as f64);
            let ts: Vec<f64> = cap
                .events()
                .iter()
                .filter_map(|e| match e {
                    Seen::Advert { t, src, prio, .. }
                        if src == LB1 && *prio > 0 && *t >= t0 - advert_s && *t <= t1 =>
                    {
                        Some(*t)
                    }
                    _ => None,
                })
                .collect();
            let gap = ts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            gaps.get_mut(kind).push(gap);
        }
        note_rx(report, 8, &pair);
        if kind == Kind::Haxdp {
            // The daemon answering now is the last successor, not the process `pair`
            // started: end it by the pid it reports.
            let out = pair
                .lb1
                .ns
                .try_exec(&[path_str(&ctx.opts.haxdp)?, "status", "--json"]);
            let pid = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["pid"].as_i64());
            pair.lb2.stop();
            if let Some(pid) = pid {
                kill_pid(pid as i32, libc::SIGTERM);
                let _ = wait_for(Duration::from_secs(5), || {
                    (!pid_alive(pid as i32)).then_some(())
                });
            }
        } else {
            pair.stop();
        }
    }
    let scen = format!("master's daemon restarted, v3 {advert} s adverts");
    let note = format!(
        "{runs} restarts; keepalived: stop + start (systemctl restart); haxdp: haxdp upgrade"
    );
    let mo = per_map(&outage, |v| median_max(v));
    report.push(
        8,
        &scen,
        "client outage (1 ms pings), max",
        Unit::Ms,
        &per_map(&mo, |m| m.map(|x| x.1)),
        note,
    );
    let mm = per_map(&moves, |v| median_max(v));
    report.push(
        8,
        &scen,
        "transitions per restart, both nodes, max",
        Unit::Count,
        &per_map(&mm, |m| m.map(|x| x.1)),
        String::new(),
    );
    let mg = per_map(&gaps, |v| median_max(v));
    report.push(
        8,
        &scen,
        "restarted master's longest advert gap, max",
        Unit::Ms,
        &per_map(&mg, |m| m.map(|x| x.1)),
        format!("advert interval {:.0} ms", advert_s * 1e3),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_gap_counts_from_the_last_reply_before_the_crash() {
        let text = "PING 192.0.2.100 (192.0.2.100) 56(84) bytes of data.\n\
[100.000] 64 bytes from 192.0.2.100: icmp_seq=1 ttl=64 time=0.1 ms\n\
[100.001] 64 bytes from 192.0.2.100: icmp_seq=2 ttl=64 time=0.1 ms\n\
[100.400] 64 bytes from 192.0.2.100: icmp_seq=300 ttl=64 time=0.1 ms\n\
[100.401] 64 bytes from 192.0.2.100: icmp_seq=301 ttl=64 time=0.1 ms\n";
        let r = ping_replies(text);
        assert_eq!(r.len(), 4);
        let gap = longest_reply_gap(&r, 100.0005).expect("a gap");
        assert!((gap - 0.399).abs() < 1e-6, "{gap}");
        assert_eq!(
            longest_reply_gap(&r, 200.0),
            None,
            "no reply after: no figure"
        );
    }

    #[test]
    fn transitions_are_counted_per_daemon() {
        let ka = "Sun Nov 22 (VI_51) Entering BACKUP STATE (init)\n(VI_51) Entering MASTER STATE\n";
        assert_eq!(
            count_transitions(Kind::Keepalived, ka),
            Transitions {
                to_master: 1,
                to_backup: 1
            }
        );
        let hx = "INFO VI_51: Initialize -> Backup (Startup)\nINFO VI_51: Backup -> Master (MasterDown)\n";
        assert_eq!(
            count_transitions(Kind::Haxdp, hx),
            Transitions {
                to_master: 1,
                to_backup: 1
            }
        );
        assert_eq!(
            receive_path("x INFO eth0: receive path socket\n").as_deref(),
            Some("socket")
        );
    }

    #[test]
    fn master_down_interval_follows_rfc_9568() {
        // 3 * 50 ms + (256 - 90) * 50 ms / 256
        assert!((master_down_interval(3, 90, 0.05) - 0.182_421_875).abs() < 1e-9);
        // VRRPv2 skew is (256 - prio) / 256 seconds whatever the interval.
        assert!((master_down_interval(2, 90, 1.0) - 3.648_437_5).abs() < 1e-9);
    }

    #[test]
    fn config_renders_the_seeds_syntax() {
        let mut i = InstanceConf::new(51, 100, 2, "1", "192.0.2.100/24");
        i.auth = true;
        i.track_script = Some("chk_nginx".into());
        let c = config("lb1", "", &[i]);
        assert!(c.contains("state MASTER"), "{c}");
        assert!(c.contains("auth_pass 1111"), "{c}");
        assert!(
            c.contains("track_script {\n        chk_nginx\n    }"),
            "{c}"
        );
        assert!(c.contains("virtual_router_id 51"), "{c}");
    }

    #[test]
    fn ratio_and_medians() {
        assert_eq!(median_max(&[3.0, 1.0, 2.0]), Some((2.0, 3.0)));
        assert_eq!(median_max(&[1.0, 2.0, 3.0, 4.0]), Some((2.5, 4.0)));
        assert_eq!(median_max(&[]), None);
        assert_eq!(fmt_ratio(Some(2.0), Some(1.0), Unit::Ms), "0.50x");
        assert_eq!(fmt_ratio(Some(0.0), Some(0.0), Unit::Count), "equal");
        assert_eq!(fmt_ratio(Some(0.0), Some(3.0), Unit::Count), "-");
    }
}
