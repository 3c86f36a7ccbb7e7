//! The table and the markdown file (BENCHMARKS.md) with the row descriptions.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{BenchOpts, Per};

/// How a figure is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Ms,
    Count,
    CpuS,
    MiB,
}

pub(crate) fn fmt_value(v: Option<f64>, unit: Unit) -> String {
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
pub(crate) fn fmt_ratio(ka: Option<f64>, hx: Option<f64>, unit: Unit) -> String {
    match (ka, hx) {
        (Some(k), Some(h)) if unit == Unit::Count && k == 0.0 && h == 0.0 => "equal".into(),
        (Some(k), Some(h)) if k.abs() > 1e-9 => format!("{:.2}x", h / k),
        (Some(_), Some(_)) => "-".into(),
        _ => "n/a".into(),
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) row: u8,
    pub(crate) scenario: String,
    pub(crate) metric: String,
    pub(crate) unit: Unit,
    pub(crate) ka: Option<f64>,
    pub(crate) hx: Option<f64>,
    pub(crate) note: String,
}

/// What each row measured.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) lines: Vec<Line>,
    /// Rows that failed, with why.
    pub(crate) failures: Vec<(u8, String)>,
    /// Receive paths haxdp logged, per row.
    pub(crate) rx_paths: Vec<(u8, String)>,
}

impl Report {
    pub(crate) fn push(
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

    /// A CPU line (utime + stime, seconds) whose note gives each daemon's share of
    /// one core over `window_s` seconds.
    pub(crate) fn push_cpu(
        &mut self,
        row: u8,
        scenario: &str,
        metric: &str,
        cpu: &Per<Option<f64>>,
        window_s: f64,
    ) {
        let pct = |v: Option<f64>| {
            v.map(|c| format!("{:.1}%", c / window_s * 100.0))
                .unwrap_or_default()
        };
        let note = format!(
            "of one core: keepalived {}, haxdp {}",
            pct(cpu.ka),
            pct(cpu.hx)
        );
        self.push(row, scenario, metric, Unit::CpuS, cpu, note);
    }

    pub(crate) fn table(&self) -> String {
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

pub(crate) fn cmd_out(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The commit the measured haxdp was built from, and whether the daemon's
/// sources had uncommitted changes then.
pub(crate) fn source_state() -> String {
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

pub(crate) fn markdown(
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

pub(crate) const METHOD: &str = "
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
   takeover is a transition to MASTER in the backup's log. Master CPU: utime + stime of the
   master's VRRP process over those windows, summed over the runs.
4. **Starvation.** VRRPv3 at 10 ms adverts; two busy loops (one per core, bounded by
   `timeout`) run for the whole window. False transitions: any MASTER or BACKUP transition
   logged by either daemon during the window; CPU (utime + stime) of the master's and the
   backup's VRRP process over the window.
5. **Steady-state CPU.** 100 instances (VRIDs 1-100) at 10 ms adverts; utime + stime from
   /proc/PID/stat of the backup's and the master's VRRP process over the window, and the
   transitions either daemon logged in it.
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
9. **255 VRIDs at 10 ms adverts.** Row 5 at the most VRIDs one interface carries: 255
   VRRPv3 instances (VRIDs 1-255) at 10 ms adverts on one interface, lb1 master of all
   (25,500 adverts/s); utime + stime of the master's and the backup's VRRP process over the
   window (also as a share of one core), and the transitions either daemon logged in it.
10. **Start to first advert heard.** haxdp only: lb1 (priority 100) runs, VRRPv3 at 10 ms
   adverts; lb2's daemon is started (and stopped and started again, once per run) and logs
   once how long after its process started the first advert reached its election (the
   configuration, netlink and the raw sockets, then at most one 10 ms interval; the XDP
   program loads meanwhile and the daemon moves to it after). keepalived logs no received
   advert, so its column is empty.
";
