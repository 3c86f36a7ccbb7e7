//! Helpers of the chaos suite (`tests/tests/chaos.rs`): knobs from the
//! environment, faults injected with nftables on the lab's bridge, a real
//! nginx to kill, the daemons' transition lines, and the summary table.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::node::Rx;
use crate::prober::{self, ProbeError};
use crate::{wait_for, Netns, Proc, TempDir};

/// `HAXDP_CHAOS_RX=socket|xdp` (default `xdp`, the daemon's default receive
/// path).
pub fn rx_from_env() -> Rx {
    match std::env::var("HAXDP_CHAOS_RX").as_deref() {
        Ok("xdp") | Err(_) => Rx::Xdp,
        Ok("socket") => Rx::Socket,
        Ok(other) => panic!("HAXDP_CHAOS_RX={other}: expected `socket` or `xdp`"),
    }
}

/// `HAXDP_CHAOS_RUNS` (default 2): repetitions of every scenario.
pub fn runs_from_env() -> usize {
    match std::env::var("HAXDP_CHAOS_RUNS") {
        Err(_) => 2,
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("HAXDP_CHAOS_RUNS={v}: expected a positive number"),
        },
    }
}

/// How long the loss scenario drops adverts: `HAXDP_CHAOS_LOSS_SECS`, else
/// 60 s in soak mode (20 runs or more) and 10 s otherwise.
pub fn loss_duration(runs: usize) -> Duration {
    if let Ok(v) = std::env::var("HAXDP_CHAOS_LOSS_SECS") {
        let s: u64 = v
            .parse()
            .unwrap_or_else(|_| panic!("HAXDP_CHAOS_LOSS_SECS={v}: expected whole seconds"));
        return Duration::from_secs(s);
    }
    Duration::from_secs(if runs >= 20 { 60 } else { 10 })
}

/// `HAXDP_CHAOS_ONLY=kill9,partition`: run only the named scenarios.
pub fn selected(name: &str) -> bool {
    match std::env::var("HAXDP_CHAOS_ONLY") {
        Err(_) => true,
        Ok(list) => list.split(',').any(|s| s.trim() == name),
    }
}

/// The daemon's state-change log lines (`VI_1: Backup -> Master (...)`).
pub fn transition_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("-> Master") || l.contains("-> Backup") || l.contains("-> Fault"))
        .collect()
}

/// A table of nftables rules in the bridge namespace, deleted on drop.
///
/// The kernel here has no netem and no tc actions
/// (CONFIG_NET_SCH_NETEM is off), so faults are bridge-family nftables
/// rules on the forward hook: they see every frame the bridge forwards,
/// once per egress port for flooded multicast (so a 10% loss rule drops
/// each receiver's copy of an advert independently).
pub struct Nft<'a> {
    ns: &'a Netns,
    table: String,
    live: bool,
}

impl<'a> Nft<'a> {
    fn table(ns: &'a Netns, name: &str, rules: &[Vec<String>]) -> Self {
        ns.exec(&["nft", "add", "table", "bridge", name]);
        let t = Self {
            ns,
            table: name.into(),
            live: true,
        };
        ns.exec(&[
            "nft",
            "add",
            "chain",
            "bridge",
            name,
            "filt",
            "{ type filter hook forward priority 0 ; }",
        ]);
        for r in rules {
            let mut args = vec!["nft", "add", "rule", "bridge", name, "filt"];
            args.extend(r.iter().map(String::as_str));
            ns.exec(&args);
        }
        t
    }

    /// Drops `percent`% of VRRP packets (IP protocol 112), at random.
    pub fn loss(ns: &'a Netns, percent: u8) -> Self {
        let rule = format!("ip protocol 112 numgen random mod 100 < {percent} drop");
        Self::table(
            ns,
            "chaosloss",
            &[rule.split(' ').map(String::from).collect()],
        )
    }

    /// Drops VRRP to and from one bridge port: that host and the rest no
    /// longer hear each other's adverts; everything else still flows.
    pub fn partition(ns: &'a Netns, port: &str) -> Self {
        let rules: Vec<Vec<String>> = ["iifname", "oifname"]
            .iter()
            .map(|dir| {
                ["meta", dir, port, "ip", "protocol", "112", "drop"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .collect();
        Self::table(ns, "chaospart", &rules)
    }

    /// Drops every VRRP packet the bridge would forward (the jitter relay
    /// forwards them instead).
    pub fn drop_vrrp(ns: &'a Netns) -> Self {
        Self::table(
            ns,
            "chaosjit",
            &[["ip", "protocol", "112", "drop"]
                .iter()
                .map(|s| s.to_string())
                .collect()],
        )
    }

    /// Deletes the rules now.
    pub fn remove(mut self) {
        self.ns
            .exec(&["nft", "delete", "table", "bridge", &self.table]);
        self.live = false;
    }
}

impl Drop for Nft<'_> {
    fn drop(&mut self) {
        if self.live {
            let _ = self
                .ns
                .try_exec(&["nft", "delete", "table", "bridge", &self.table]);
        }
    }
}

/// Advert jitter without netem: a relay in the bridge namespace reads each
/// VRRP frame a host sends into its bridge port (AF_PACKET on the port sees
/// it before the bridge does) and sends it out of every other port after a
/// random delay in `[0, max_delay]`, while [`Nft::drop_vrrp`] stops the
/// bridge's own copy. Frames leave in arrival order (a frame is never
/// released before the one ahead of it), so a receiver sees gaps between
/// adverts of up to `Advertisement_Interval + max_delay` and as small as 0,
/// but no reordering.
pub struct Jitter {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<JitterStats>>,
}

/// What the relay did.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitterStats {
    /// VRRP frames relayed (each counted once, whatever the number of ports).
    pub relayed: u64,
    /// The longest delay a frame actually got, seconds.
    pub max_delay: f64,
}

impl Jitter {
    /// Starts relaying between `ports` (bridge port names in `bridge`).
    pub fn start(
        bridge: &Netns,
        ports: &[String],
        max_delay: Duration,
    ) -> Result<Self, ProbeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<(), ProbeError>>();
        let ns = bridge.name.clone();
        let ports = ports.to_vec();
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("jitter".into())
            .spawn(move || {
                let socks = prober::enter_netns(&ns).and_then(|()| {
                    ports
                        .iter()
                        .map(|p| {
                            let idx = prober::if_index(&ns, p)?;
                            // ETH_P_ALL: frames a port receives go to the
                            // bridge's rx_handler, which consumes them before
                            // protocol-specific packet sockets; only ptype_all
                            // taps see them first.
                            prober::packet_socket(prober::ETH_P_ALL, idx, p)
                        })
                        .collect::<Result<Vec<OwnedFd>, ProbeError>>()
                });
                match socks {
                    Ok(socks) => {
                        let _ = tx.send(Ok(()));
                        relay(&socks, max_delay, &stop2)
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        JitterStats::default()
                    }
                }
            })
            .map_err(|source| ProbeError::Spawn {
                what: "jitter relay",
                source,
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop,
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => Err(ProbeError::Panicked),
        }
    }

    /// Stops the relay (frames still held are dropped) and says what it did.
    pub fn finish(mut self) -> JitterStats {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Jitter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn relay(socks: &[OwnedFd], max_delay: Duration, stop: &AtomicBool) -> JitterStats {
    let mut stats = JitterStats::default();
    // xorshift64*, seeded from the clock: the delays need to be spread, not secret.
    let mut seed = (prober::wall_now().to_bits() | 1) ^ 0x9e37_79b9_7f4a_7c15;
    let mut rand01 = move || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut queue: VecDeque<(Instant, Instant, usize, Vec<u8>)> = VecDeque::new();
    let mut last_release = Instant::now();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while queue.front().is_some_and(|(at, ..)| *at <= now) {
            let Some((_, got, from, frame)) = queue.pop_front() else {
                break;
            };
            for (i, s) in socks.iter().enumerate() {
                if i != from {
                    // SAFETY: a valid fd and a buffer of the given length.
                    unsafe { libc::send(s.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
                }
            }
            stats.relayed += 1;
            stats.max_delay = stats.max_delay.max(now.duration_since(got).as_secs_f64());
        }
        let wait = queue
            .front()
            .map_or(Duration::from_millis(1), |(at, ..)| {
                at.saturating_duration_since(now)
            })
            .min(Duration::from_millis(1));
        let mut fds: Vec<libc::pollfd> = socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: fds is a valid array of its length; a null sigmask.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        for (i, s) in socks.iter().enumerate() {
            while let Some((len, _, pkttype)) = prober::recv(s, &mut buf) {
                // Only what the host sent into the bridge, and only VRRP.
                if pkttype == prober::PACKET_OUTGOING || prober::parse_advert(&buf[..len]).is_none()
                {
                    continue;
                }
                let got = Instant::now();
                let at = (got + max_delay.mul_f64(rand01())).max(last_release);
                last_release = at;
                queue.push_back((at, got, i, buf[..len].to_vec()));
            }
        }
    }
    stats
}

/// Debian's nginx-light serving `200 ok` on 127.0.0.1:`port` inside a
/// namespace, as one process (`master_process off`), so that a SIGKILL
/// closes its socket at once; with a master and workers, killing the
/// master would leave the workers serving.
pub struct Nginx {
    pub proc: Proc,
    _dir: TempDir,
}

impl Nginx {
    pub fn start(ns: &Netns, port: u16) -> Self {
        crate::require_program("nginx", "nginx-light");
        let dir = TempDir::new("nginx");
        let d = dir.path.display();
        let conf = dir.file(
            "nginx.conf",
            &format!(
                "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
                 proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
                 server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
            ),
        );
        let err = dir.path.join("error.log");
        let proc = ns.spawn(
            &[
                "nginx",
                "-p",
                dir.path.to_str().expect("utf-8"),
                "-c",
                conf.to_str().expect("utf-8"),
                "-e",
                err.to_str().expect("utf-8"),
            ],
            &dir.path.join("nginx.out"),
        );
        // nginx writes its pid file after it has bound its listening sockets.
        let pid = dir.path.join("nginx.pid");
        let up = wait_for(Duration::from_secs(5), || pid.exists().then_some(()));
        assert!(
            up.is_some(),
            "nginx did not start: {}{}",
            proc.log_text(),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        Self { proc, _dir: dir }
    }

    /// `vrrp_nginx_check` + instance `track_script` for this nginx: the
    /// native check, every `interval` s, `fall` failures, weight -20.
    pub fn check_block(port: u16, interval: &str, fall: u32) -> String {
        format!(
            "vrrp_nginx_check chk_nginx {{\n  url http://127.0.0.1:{port}/\n  expect 200\n  \
             interval {interval}\n  timeout {interval}\n  rise 1\n  fall {fall}\n  weight -20\n}}\n"
        )
    }
}

/// The `track_script` lines for the instance block.
pub const TRACK_NGINX: &str = "  track_script {\n    chk_nginx\n  }";

/// One run of one scenario.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    /// The gap the scenario bounds, seconds.
    pub gap: Option<f64>,
    /// The dual-owner time the scenario bounds, seconds (`None`: not
    /// meaningful in this scenario).
    pub dual: Option<f64>,
    /// Changes of the set of MACs answering for the VIP.
    pub owner_changes: usize,
    /// State-change lines in both daemons' logs during the run.
    pub transitions: usize,
    /// Broken invariants, each with its numbers.
    pub violations: Vec<String>,
    /// Things a reader of the table should know (e.g. an RFC-mandated takeover).
    pub notes: Vec<String>,
}

/// A scenario's line in the summary.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: &'static str,
    pub gap_limit: Option<f64>,
    pub dual_limit: Option<f64>,
    pub runs: Vec<RunResult>,
    /// Runs that could not be carried out (setup failed, a panic), with why.
    pub aborted: Vec<String>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{:.1}", s * 1e3))
}

impl Row {
    pub fn failed(&self) -> usize {
        self.aborted.len()
            + self
                .runs
                .iter()
                .filter(|r| !r.violations.is_empty())
                .count()
    }

    pub fn worst_gap(&self) -> Option<f64> {
        self.runs.iter().filter_map(|r| r.gap).reduce(f64::max)
    }

    pub fn worst_dual(&self) -> Option<f64> {
        self.runs.iter().filter_map(|r| r.dual).reduce(f64::max)
    }

    pub fn markdown(&self) -> String {
        let flaps = self.runs.iter().map(|r| r.owner_changes).max();
        let trans = self.runs.iter().map(|r| r.transitions).max();
        // Per-run details are in the run lines; the table keeps two.
        let mut notes: Vec<String> = Vec::new();
        for n in self.runs.iter().flat_map(|r| r.notes.iter()) {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
        if notes.len() > 2 {
            let more = notes.len() - 2;
            notes.truncate(2);
            notes.push(format!("{more} more in the run lines"));
        }
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.name,
            self.runs.len() + self.aborted.len(),
            self.failed(),
            ms(self.worst_gap()),
            ms(self.gap_limit),
            ms(self.worst_dual()),
            ms(self.dual_limit),
            flaps.map_or("-".into(), |v| v.to_string()),
            trans.map_or("-".into(), |v| v.to_string()),
            notes.join("; ")
        )
    }
}

pub const TABLE_HEAD: &str = "| scenario | runs | failed | worst gap ms | gap limit ms | worst dual ms | dual limit ms | flaps (max owner changes/run) | transitions (max/run) | notes |\n|---|---|---|---|---|---|---|---|---|---|";

/// Writes to the test's stderr past libtest's output capture, so rows and
/// the table show in a passing run too.
pub fn say(text: &str) {
    let mut e = std::io::stderr();
    let _ = writeln!(e, "{text}");
    let _ = e.flush();
}

/// Where the suite leaves its summary and the logs of failed runs:
/// `target/<profile>/chaos/`.
pub fn out_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join("chaos");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_lines_are_state_changes_only() {
        let log = "2026-01-01T00:00:00Z  INFO VI_1: Initialize -> Backup (Startup)\n\
                   2026-01-01T00:00:01Z  INFO VI_1: effective priority 100 -> 80 (chk_nginx down)\n\
                   2026-01-01T00:00:02Z  INFO VI_1: Backup -> Master (MasterDown)\n\
                   2026-01-01T00:00:03Z  INFO VI_1: Master -> Fault (link down)\n";
        let t = transition_lines(log);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t[1].contains("Backup -> Master"));
    }

    #[test]
    fn row_counts_failures_and_worst_values() {
        let ok = RunResult {
            gap: Some(0.3),
            dual: Some(0.0),
            ..RunResult::default()
        };
        let bad = RunResult {
            gap: Some(0.5),
            dual: None,
            owner_changes: 3,
            violations: vec!["gap".into()],
            ..RunResult::default()
        };
        let row = Row {
            name: "x",
            gap_limit: Some(0.385),
            dual_limit: None,
            runs: vec![ok, bad],
            aborted: vec!["setup".into()],
        };
        assert_eq!(row.failed(), 2);
        assert_eq!(row.worst_gap(), Some(0.5));
        assert_eq!(row.worst_dual(), Some(0.0));
        let md = row.markdown();
        assert!(
            md.starts_with("| x | 3 | 2 | 500.0 | 385.0 | 0.0 | - | 3 |"),
            "{md}"
        );
    }
}
