//! The chaos suite: failures injected into a two-node haxdp lab (lb1
//! priority 100, lb2 priority 90, VRRPv3 at 0.1 s adverts) while a client
//! asks "who has the VIP?" every millisecond and records who answered
//! (`haxdp_tests::prober`). Root only; every scenario builds its own
//! namespaces and removes them.
//!
//! ```text
//! cargo build -p haxdp && cargo test -p haxdp-tests --test chaos -- --test-threads=1
//! ```
//!
//! Knobs (environment):
//! - `HAXDP_CHAOS_RUNS=20`: soak mode. Every scenario runs 20 times (CI
//!   runs 2), and the 10% advert loss and the jitter last 60 s per run
//!   instead of 10 s (`HAXDP_CHAOS_LOSS_SECS` overrides). Takes about an hour.
//! - `HAXDP_CHAOS_RX=socket|xdp`: the daemons' receive path (default `xdp`,
//!   and the suite checks the daemons logged `receive path xdp-...`;
//!   `socket` runs them with `--no-xdp`).
//! - `HAXDP_CHAOS_ONLY=kill9,partition`: a subset of the scenarios.
//!
//! Invariants (RFC 9568 timers: Master_Down_Interval of lb2 = 364.8 ms,
//! Skew_Time = 64.8 ms):
//! - crash-like failures (kill -9, link down, nginx killed): zero-owner gap
//!   <= Master_Down_Interval + 20 ms;
//! - graceful stop (TERM, restart): zero-owner gap <= Skew_Time + 20 ms;
//! - after a partition heals (and whenever both nodes are alive and hear each
//!   other): two owners answering for at most Advertisement_Interval +
//!   Skew_Time;
//! - where nothing failed (advert loss, jitter, daemon stall, reload): no state change
//!   in either daemon's log and no change of the MAC answering for the VIP.
//!
//! This kernel has no netem (CONFIG_NET_SCH_NETEM is off) and nftables can
//! drop but not delay, so loss is an nftables `numgen` rule on the bridge and
//! jitter is a user-space relay on the bridge ports
//! (`haxdp_tests::chaos::Jitter`) that holds each advert for a random time.
//!
//! One test runs the scenarios one after another and prints the table at the
//! end (also written to `target/<profile>/chaos/summary.md`); the logs of a
//! run that broke an invariant are kept in `target/<profile>/chaos/`.

use std::net::Ipv4Addr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use haxdp_tests::chaos::{
    loss_duration, out_dir, runs_from_env, rx_from_env, say, selected, transition_lines, Jitter,
    Nft, Nginx, Row, RunResult, TABLE_HEAD, TRACK_NGINX,
};
use haxdp_tests::node::{has_vip, haxdp_config, mac_of, mdi_v3, skew_v3, wait_vip, Node, Rx};
use haxdp_tests::prober::{wall_now, Analysis, Mac, Probe, ProbeConfig, Prober};
use haxdp_tests::{require_root, wait_for, Lan};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const LB1_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PRIO1: u8 = 100;
const PRIO2: u8 = 90;
/// Advertisement_Interval, centiseconds (advert_int 0.1).
const ADVERT_CS: u32 = 10;
const ADVERT: f64 = 0.1;
/// Allowance for scheduling on a shared 2-core machine, per the issue.
const TOL: f64 = 0.020;
/// A MAC that has not answered for this long has stopped answering. The
/// prober asks every 1 ms, but a loaded 2-core machine delays single ARP
/// replies by several ms now and then; 20 ms keeps such a delay from
/// counting as the owner leaving and coming back. Gaps are measured on the
/// raw replies and do not depend on this.
const MERGE: f64 = 0.020;
const NGINX_PORT: u16 = 8080;
const NGINX_INTERVAL: f64 = 0.1;
const NGINX_FALL: u32 = 2;
/// Largest extra delay of an advert in the jitter scenario.
const JITTER: Duration = Duration::from_millis(80);

fn mdi() -> f64 {
    mdi_v3(PRIO2, ADVERT_CS)
}

fn skew() -> f64 {
    skew_v3(PRIO2, ADVERT_CS)
}

fn dual_limit() -> f64 {
    ADVERT + skew()
}

fn mac(i: usize) -> Mac {
    Mac::parse(&mac_of(i)).expect("lab MACs parse")
}

/// The lab of one run: lb1 and lb2 running haxdp, host 2 is the client.
struct Lab<'a> {
    lan: &'a Lan,
    lb1: Node<'a>,
    lb2: Node<'a>,
    /// Transition lines in each log when the probe started.
    base: [usize; 2],
}

impl<'a> Lab<'a> {
    /// Starts both daemons and waits until lb1 is the only owner.
    fn start(lan: &'a Lan, rx: Rx, pre: &str, track: &str) -> Self {
        let c1 = format!("{pre}{}", haxdp_config("lb1", PRIO1, 3, "0.1", track));
        let c2 = format!("{pre}{}", haxdp_config("lb2", PRIO2, 3, "0.1", track));
        let lb1 = Node::haxdp(&lan.hosts[0], "lb1", &c1, rx);
        let lb2 = Node::haxdp(&lan.hosts[1], "lb2", &c2, rx);
        assert!(
            wait_vip(&lan.hosts[0], true, Duration::from_secs(5)),
            "lb1 (priority 100) never took the VIP:\n{}",
            lb1.log()
        );
        assert!(
            wait_vip(&lan.hosts[1], false, Duration::from_secs(2)),
            "lb2 kept the VIP next to a healthy lb1:\n{}",
            lb2.log()
        );
        if rx == Rx::Xdp {
            for n in [&lb1, &lb2] {
                let path = wait_for(Duration::from_secs(2), || {
                    let log = n.log();
                    log.lines()
                        .find(|l| l.contains("receive path"))
                        .map(str::to_string)
                });
                assert!(
                    path.as_deref()
                        .is_some_and(|l| l.contains("receive path xdp")),
                    "HAXDP_CHAOS_RX=xdp but the daemon is not on the XDP path ({path:?}):\n{}",
                    n.log()
                );
            }
        }
        // Let lb1's first adverts and GARPs settle before measuring.
        std::thread::sleep(Duration::from_millis(300));
        Self {
            lan,
            lb1,
            lb2,
            base: [0, 0],
        }
    }

    /// Starts the client's prober and notes where the logs stand.
    fn probe(&mut self, max: Duration) -> Prober {
        self.base = [
            transition_lines(&self.lb1.log()).len(),
            transition_lines(&self.lb2.log()).len(),
        ];
        let p = Prober::start(ProbeConfig::arp(&self.lan.hosts[2].name, "eth0", VIP, max))
            .unwrap_or_else(|e| panic!("prober: {e}"));
        // A baseline of lb1 answering before the fault.
        std::thread::sleep(Duration::from_millis(300));
        p
    }

    /// State changes in both logs since `probe` (a restarted node's new
    /// log counts from its start).
    fn transitions(&self) -> usize {
        let now = [
            transition_lines(&self.lb1.log()).len(),
            transition_lines(&self.lb2.log()).len(),
        ];
        now.iter()
            .zip(self.base)
            .map(|(n, b)| n.saturating_sub(b))
            .sum()
    }

    /// The daemons' state-change and warning lines, for a failure message.
    fn context(&self) -> String {
        let mut s = String::new();
        for (name, n) in [("lb1", &self.lb1), ("lb2", &self.lb2)] {
            let log = n.log();
            s.push_str(&format!("--- {name} ({})\n", n.dir.path.display()));
            for l in log
                .lines()
                .filter(|l| l.contains(" -> ") || l.contains("WARN") || l.contains("ERROR"))
            {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Copies both daemons' logs to `target/<profile>/chaos/` for a report.
    fn keep_logs(&self, scenario: &str, run: usize) -> String {
        let dir = out_dir();
        let mut kept = Vec::new();
        for (name, n) in [("lb1", &self.lb1), ("lb2", &self.lb2)] {
            let Ok(rd) = n.dir.path.read_dir() else {
                continue;
            };
            for e in rd.flatten() {
                let f = e.file_name();
                let f = f.to_string_lossy();
                if f.ends_with(".log") {
                    let to = dir.join(format!("{scenario}-run{run}-{name}-{f}"));
                    if std::fs::copy(e.path(), &to).is_ok() {
                        kept.push(to.display().to_string());
                    }
                }
            }
        }
        kept.join(", ")
    }
}

fn finish(p: Prober) -> Probe {
    p.finish().unwrap_or_else(|e| panic!("prober: {e}"))
}

/// Notes how far the measurement itself can be trusted.
fn note_prober(r: &mut RunResult, probe: &Probe) {
    if probe.max_send_gap > 0.005 || !probe.realtime {
        r.notes.push(format!(
            "prober starved up to {:.1} ms{}",
            probe.max_send_gap * 1e3,
            if probe.realtime {
                ""
            } else {
                " (no SCHED_FIFO)"
            }
        ));
    }
}

/// The MAC that answered last.
fn last_owner(probe: &Probe) -> Option<Mac> {
    probe.replies.last().map(|r| r.mac)
}

/// Whether `who` answered at or after `since`.
fn answered_since(probe: &Probe, who: Mac, since: f64) -> bool {
    probe.replies.iter().any(|r| r.mac == who && r.t >= since)
}

/// Checks shared by the scenarios, appended to `r.violations`.
fn check_gap(r: &mut RunResult, what: &str, gap: f64, limit: f64, a: &Analysis) {
    r.gap = Some(gap);
    if gap > limit {
        r.violations.push(format!(
            "{what}: {:.1} ms > limit {:.1} ms (longest silence {:.3}..{:.3})",
            gap * 1e3,
            limit * 1e3,
            a.longest_gap.start,
            a.longest_gap.end
        ));
    }
}

fn check_dual(r: &mut RunResult, what: &str, dual: f64) {
    r.dual = Some(dual);
    if dual > dual_limit() {
        r.violations.push(format!(
            "{what}: two owners answered for {:.1} ms > Advertisement_Interval + Skew_Time {:.1} ms",
            dual * 1e3,
            dual_limit() * 1e3
        ));
    }
}

fn check_final_owner(r: &mut RunResult, probe: &Probe, want: usize, other: usize) {
    let tail = probe.ended - 0.2;
    if last_owner(probe) != Some(mac(want)) || answered_since(probe, mac(other), tail) {
        r.violations.push(format!(
            "the VIP should end on lb{} only: last reply from {:?}, lb{} answered in the last 200 ms: {}",
            want + 1,
            last_owner(probe),
            other + 1,
            answered_since(probe, mac(other), tail)
        ));
    }
}

fn check_quiet(r: &mut RunResult, a: &Analysis) {
    if r.transitions > 0 {
        r.violations.push(format!(
            "{} state change(s) although nothing failed",
            r.transitions
        ));
    }
    if a.owner_changes > 0 {
        r.violations.push(format!(
            "{} owner change(s) seen by the client although nothing failed (owners {:?}, dual {:?})",
            a.owner_changes, a.owners, a.dual
        ));
    }
}

/// Master `kill -9`. The dead master's VIP stays configured (nobody is left
/// to remove it) and its kernel keeps answering ARP, as with keepalived; so
/// the gap is taken from the new owner's side: the dead master's last advert
/// on the wire to lb2's first ARP answer. That is the outage of a client
/// whose ARP cache follows lb2's gratuitous ARP, and it is the number the
/// RFC bounds. Dual ownership is not meaningful here (the corpse answers).
fn kill9(lab: &mut Lab) -> RunResult {
    let p = lab.probe(Duration::from_secs(20));
    lab.lb1.proc().signal(libc::SIGKILL);
    let moved = wait_vip(&lab.lan.hosts[1], true, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    r.notes
        .push("flaps count the killed master's kernel, which keeps answering".into());
    if !moved {
        r.violations
            .push("lb2 did not take the VIP within 3 s".into());
        return r;
    }
    let Some(last) = probe.last_advert_from(LB1_IP, f64::MAX) else {
        r.violations
            .push("the client saw no advert from lb1".into());
        return r;
    };
    match probe.first_reply_from(mac(1), last) {
        None => r
            .violations
            .push("lb2 never answered ARP for the VIP".into()),
        Some(first) => check_gap(
            &mut r,
            "lb1's last advert to lb2's first ARP answer",
            first - last,
            mdi() + TOL,
            &a,
        ),
    }
    r
}

/// Master's link down (`ip link set eth0 down` in lb1's namespace): lb1
/// can no longer answer, so the client's longest silence is the outage.
fn link_down(lab: &mut Lab) -> RunResult {
    let p = lab.probe(Duration::from_secs(20));
    lab.lan.hosts[0].exec(&["ip", "link", "set", "eth0", "down"]);
    let moved = wait_vip(&lab.lan.hosts[1], true, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    if !moved {
        r.violations
            .push("lb2 did not take the VIP within 3 s".into());
    }
    check_gap(
        &mut r,
        "client-side outage",
        a.longest_gap.len(),
        mdi() + TOL,
        &a,
    );
    check_dual(&mut r, "dual owners", a.dual_total());
    check_final_owner(&mut r, &probe, 1, 0);
    r
}

/// Master stops (TERM): priority-0 advert, lb2 takes over after Skew_Time
/// (RFC 9568 6.4.2).
fn term(lab: &mut Lab) -> RunResult {
    let p = lab.probe(Duration::from_secs(20));
    lab.lb1.proc().signal(libc::SIGTERM);
    let code = lab
        .lb1
        .proc
        .as_mut()
        .expect("running")
        .wait_exit(Duration::from_secs(5));
    let moved = wait_vip(&lab.lan.hosts[1], true, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    if code != Some(0) {
        r.violations
            .push(format!("haxdp exited with {code:?} on TERM, not 0"));
    }
    if !moved {
        r.violations
            .push("lb2 did not take the VIP within 3 s".into());
    }
    if !probe
        .adverts
        .iter()
        .any(|ad| ad.src == LB1_IP && ad.prio == 0)
    {
        r.violations
            .push("the client saw no priority-0 advert from lb1".into());
    }
    check_gap(
        &mut r,
        "client-side outage",
        a.longest_gap.len(),
        skew() + TOL,
        &a,
    );
    check_dual(&mut r, "dual owners", a.dual_total());
    check_final_owner(&mut r, &probe, 1, 0);
    r
}

/// nginx on lb1 is killed; the native `vrrp_nginx_check` (interval 0.1,
/// fall 2, weight -20) lowers lb1 to 80 and lb2 (90, preempt) takes over
/// once Master_Down_Interval passes without an advert of priority >= 90
/// (RFC 9568 6.4.2: lower-priority adverts are discarded by a preempting
/// backup). lb1 keeps answering until it sees lb2's advert, so there should
/// be no silence at all; the bound is the crash one.
fn nginx_killed(lab: &mut Lab, nginx1: &Nginx) -> RunResult {
    let p = lab.probe(Duration::from_secs(20));
    let killed = wall_now();
    nginx1.proc.signal(libc::SIGKILL);
    let moved = wait_for(Duration::from_secs(3), || {
        (has_vip(&lab.lan.hosts[1]) && !has_vip(&lab.lan.hosts[0])).then_some(())
    })
    .is_some();
    std::thread::sleep(Duration::from_millis(300));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    if !moved {
        r.violations.push(format!(
            "the VIP did not move to lb2 within 3 s of nginx's death (lb1 {}, lb2 {})",
            has_vip(&lab.lan.hosts[0]),
            has_vip(&lab.lan.hosts[1])
        ));
    }
    check_gap(
        &mut r,
        "client-side outage",
        a.longest_gap.len(),
        mdi() + TOL,
        &a,
    );
    // Detection (fall checks, one per interval) plus the backup's
    // Master_Down_Interval from lb1's last priority-100 advert.
    let bound = f64::from(NGINX_FALL) * NGINX_INTERVAL + mdi() + TOL;
    match probe.first_reply_from(mac(1), killed) {
        None => r
            .violations
            .push("lb2 never answered ARP for the VIP".into()),
        Some(t) => {
            r.notes.push(format!(
                "nginx death to lb2 answering: {:.0} ms (bound {:.0})",
                (t - killed) * 1e3,
                bound * 1e3
            ));
            if t - killed > bound {
                r.violations.push(format!(
                    "nginx death to lb2 answering took {:.1} ms > fall x interval + Master_Down_Interval + 20 ms = {:.1} ms",
                    (t - killed) * 1e3,
                    bound * 1e3
                ));
            }
        }
    }
    check_dual(&mut r, "dual owners at the handover", a.dual_total());
    check_final_owner(&mut r, &probe, 1, 0);
    r
}

/// 10% of adverts dropped at random on the bridge for `dur`. A backup that
/// misses adverts for longer than Master_Down_Interval must take over (RFC
/// 9568 6.4.2), and 10% independent loss does that now and then (three
/// adverts lost in a row, about once per 1000 adverts). So the suite records
/// what lb2 actually received (a recorder on lb2's bridge port sees the
/// frames the bridge sends it, after the drop rule) and asserts "no
/// transition" only for runs in which lb2 never went Master_Down_Interval
/// without an advert; other runs are noted as RFC-mandated takeovers.
fn loss(lab: &mut Lab, dur: Duration) -> RunResult {
    let port = lab.lan.port_of(1);
    let rec = Prober::start(ProbeConfig::adverts(
        &lab.lan.bridge.name,
        &port,
        dur + Duration::from_secs(20),
    ))
    .unwrap_or_else(|e| panic!("advert recorder: {e}"));
    let p = lab.probe(dur + Duration::from_secs(20));
    let from = wall_now();
    let rules = Nft::loss(&lab.lan.bridge, 10);
    std::thread::sleep(dur);
    rules.remove();
    let to = wall_now();
    std::thread::sleep(Duration::from_millis(500));
    let probe = finish(p);
    let seen = finish(rec);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        gap: Some(a.longest_gap.len()),
        dual: Some(a.dual_total()),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    let sent = seen
        .adverts
        .iter()
        .filter(|ad| ad.src == LB1_IP && ad.outgoing && ad.t >= from && ad.t <= to)
        .count();
    let burst = seen.longest_advert_gap(LB1_IP, true, from, to);
    r.notes.push(format!(
        "lb2's longest advert gap {:.0} ms ({sent} adverts reached it)",
        burst * 1e3
    ));
    if sent == 0 {
        r.violations
            .push("the recorder on lb2's port saw no advert from lb1".into());
        return r;
    }
    if burst > mdi() {
        r.notes.push(format!(
            "lb2 went {:.0} ms without an advert (> Master_Down_Interval): takeover RFC-mandated",
            burst * 1e3
        ));
        return r;
    }
    check_quiet(&mut r, &a);
    r
}

/// Every advert delayed by a random 0..80 ms (the [`Jitter`] relay) for
/// `dur`: lb2 then sees gaps of up to 100 + 80 ms between adverts, well
/// inside its Master_Down_Interval, so nothing may change. As with loss, what
/// lb2 actually received is recorded on its bridge port, and a run in which
/// the relay itself stalled past Master_Down_Interval is noted, not failed.
fn jitter(lab: &mut Lab, dur: Duration) -> RunResult {
    let ports = [lab.lan.port_of(0), lab.lan.port_of(1), lab.lan.port_of(2)];
    let rec = Prober::start(ProbeConfig::adverts(
        &lab.lan.bridge.name,
        &ports[1],
        dur + Duration::from_secs(20),
    ))
    .unwrap_or_else(|e| panic!("advert recorder: {e}"));
    let p = lab.probe(dur + Duration::from_secs(20));
    let relay = Jitter::start(&lab.lan.bridge, &ports, JITTER)
        .unwrap_or_else(|e| panic!("jitter relay: {e}"));
    let rules = Nft::drop_vrrp(&lab.lan.bridge);
    let from = wall_now();
    std::thread::sleep(dur);
    let to = wall_now();
    rules.remove();
    let stats = relay.finish();
    std::thread::sleep(Duration::from_millis(500));
    let probe = finish(p);
    let seen = finish(rec);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        gap: Some(a.longest_gap.len()),
        dual: Some(a.dual_total()),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    let burst = seen.longest_advert_gap(LB1_IP, true, from, to);
    r.notes.push(format!(
        "lb2's longest advert gap {:.0} ms, relay max delay {:.0} ms",
        burst * 1e3,
        stats.max_delay * 1e3
    ));
    if stats.relayed == 0 {
        r.violations
            .push("the jitter relay forwarded no advert".into());
        return r;
    }
    if burst > mdi() {
        r.notes.push(format!(
            "lb2 went {:.0} ms without an advert (> Master_Down_Interval): takeover RFC-mandated",
            burst * 1e3
        ));
        return r;
    }
    check_quiet(&mut r, &a);
    r
}

/// lb2's VRRP is cut off (nftables drops protocol 112 to and from its
/// port): both become master. After the heal lb1's next advert (at most one
/// Advertisement_Interval later) sends lb2 back to backup.
fn partition(lab: &mut Lab) -> RunResult {
    let port = lab.lan.port_of(1);
    let p = lab.probe(Duration::from_secs(20));
    let rules = Nft::partition(&lab.lan.bridge, &port);
    let split = wait_vip(&lab.lan.hosts[1], true, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    // Taken before nft runs: the measured dual time includes nft's own run time.
    let healed = wall_now();
    rules.remove();
    let joined = wait_vip(&lab.lan.hosts[1], false, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(300));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        gap: Some(a.longest_gap.len()),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    if !split {
        r.violations
            .push("lb2 did not become master while partitioned".into());
    }
    if !joined {
        r.violations
            .push("lb2 kept the VIP 3 s after the heal".into());
    }
    check_dual(&mut r, "after the heal", a.dual_after(healed));
    check_final_owner(&mut r, &probe, 0, 1);
    r
}

/// lb2's daemon is stopped (SIGSTOP) for three Master_Down_Intervals while
/// lb1 keeps advertising; when it resumes, the adverts it slept through say
/// lb1 is alive: no takeover.
fn stall(lab: &mut Lab) -> RunResult {
    let p = lab.probe(Duration::from_secs(20));
    lab.lb2.proc().signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs_f64(3.0 * mdi()));
    lab.lb2.proc().signal(libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(800));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        gap: Some(a.longest_gap.len()),
        dual: Some(a.dual_total()),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    check_quiet(&mut r, &a);
    r
}

/// SIGHUP with an unchanged file, three times to the master and twice to
/// the backup, 200 ms apart, while the client probes.
fn hup(lab: &mut Lab) -> RunResult {
    let reloads = |n: &Node| n.log().matches("configuration reloaded").count();
    let before = [reloads(&lab.lb1), reloads(&lab.lb2)];
    let p = lab.probe(Duration::from_secs(20));
    for i in 0..5 {
        let n = if i % 2 == 0 { &lab.lb1 } else { &lab.lb2 };
        n.proc().signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(200));
    }
    let done = wait_for(Duration::from_secs(3), || {
        (reloads(&lab.lb1) >= before[0] + 3 && reloads(&lab.lb2) >= before[1] + 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions(),
        gap: Some(a.longest_gap.len()),
        dual: Some(a.dual_total()),
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    if done.is_none() {
        r.violations.push(format!(
            "not every HUP was logged as `configuration reloaded` (lb1 {} of 3, lb2 {} of 2)",
            reloads(&lab.lb1) - before[0],
            reloads(&lab.lb2) - before[1]
        ));
    }
    check_quiet(&mut r, &a);
    r
}

/// The master's daemon is restarted (TERM, then started again): lb2 takes
/// over after Skew_Time, then lb1 (priority 100, preempt) takes the VIP back
/// once its Master_Down_Interval passes; at neither handover may the client
/// be left without an owner for longer than the graceful bound.
fn restart(lab: &mut Lab) -> RunResult {
    let p = lab.probe(Duration::from_secs(20));
    lab.lb1.proc().signal(libc::SIGTERM);
    let code = lab
        .lb1
        .proc
        .as_mut()
        .expect("running")
        .wait_exit(Duration::from_secs(5));
    let moved = wait_vip(&lab.lan.hosts[1], true, Duration::from_secs(3));
    let before_restart = transition_lines(&lab.lb1.log()).len() - lab.base[0];
    lab.lb1.start();
    // The new log counts from zero.
    lab.base[0] = 0;
    let back = wait_for(Duration::from_secs(5), || {
        (has_vip(&lab.lan.hosts[0]) && !has_vip(&lab.lan.hosts[1])).then_some(())
    })
    .is_some();
    std::thread::sleep(Duration::from_millis(500));
    let probe = finish(p);
    let a = probe.analysis(MERGE);
    let mut r = RunResult {
        owner_changes: a.owner_changes,
        transitions: lab.transitions() + before_restart,
        ..RunResult::default()
    };
    note_prober(&mut r, &probe);
    if code != Some(0) {
        r.violations
            .push(format!("haxdp exited with {code:?} on TERM, not 0"));
    }
    if !moved {
        r.violations
            .push("lb2 did not take the VIP within 3 s of lb1's TERM".into());
    }
    if !back {
        r.violations
            .push("the restarted lb1 did not take the VIP back within 5 s".into());
    }
    check_gap(
        &mut r,
        "client-side outage",
        a.longest_gap.len(),
        skew() + TOL,
        &a,
    );
    check_dual(&mut r, "dual owners", a.dual_total());
    check_final_owner(&mut r, &probe, 0, 1);
    r
}

/// What a scenario gets besides its lab.
struct Extras<'a> {
    /// How long advert loss and jitter last.
    fault_for: Duration,
    /// lb1's nginx, for scenarios that start one on each node.
    nginx1: Option<&'a Nginx>,
}

type Scenario = fn(&mut Lab, &Extras) -> RunResult;

struct Spec {
    name: &'static str,
    gap_limit: Option<f64>,
    dual_limit: Option<f64>,
    /// Start nginx on both nodes and track it with the native check.
    nginx: bool,
    run: Scenario,
}

#[test]
fn chaos_suite() {
    require_root();
    let rx = rx_from_env();
    let runs = runs_from_env();
    let loss_dur = loss_duration(runs);
    let specs: Vec<Spec> = vec![
        Spec {
            name: "kill9",
            gap_limit: Some(mdi() + TOL),
            dual_limit: None,
            nginx: false,
            run: |l, _| kill9(l),
        },
        Spec {
            name: "link-down",
            gap_limit: Some(mdi() + TOL),
            dual_limit: Some(dual_limit()),
            nginx: false,
            run: |l, _| link_down(l),
        },
        Spec {
            name: "term",
            gap_limit: Some(skew() + TOL),
            dual_limit: Some(dual_limit()),
            nginx: false,
            run: |l, _| term(l),
        },
        Spec {
            name: "nginx-killed",
            gap_limit: Some(mdi() + TOL),
            dual_limit: Some(dual_limit()),
            nginx: true,
            run: |l, x| nginx_killed(l, x.nginx1.expect("started with nginx")),
        },
        Spec {
            name: "loss-10pct",
            gap_limit: None,
            dual_limit: None,
            nginx: false,
            run: |l, x| loss(l, x.fault_for),
        },
        Spec {
            name: "jitter-80ms",
            gap_limit: None,
            dual_limit: None,
            nginx: false,
            run: |l, x| jitter(l, x.fault_for),
        },
        Spec {
            name: "partition-heal",
            gap_limit: None,
            dual_limit: Some(dual_limit()),
            nginx: false,
            run: |l, _| partition(l),
        },
        Spec {
            name: "sigstop-backup",
            gap_limit: None,
            dual_limit: None,
            nginx: false,
            run: |l, _| stall(l),
        },
        Spec {
            name: "hup-under-load",
            gap_limit: None,
            dual_limit: None,
            nginx: false,
            run: |l, _| hup(l),
        },
        Spec {
            name: "restart-master",
            gap_limit: Some(skew() + TOL),
            dual_limit: Some(dual_limit()),
            nginx: false,
            run: |l, _| restart(l),
        },
    ];
    say(&format!(
        "chaos: {runs} run(s) per scenario, receive path {rx:?}, loss and jitter for {} s; \
         Master_Down_Interval {:.1} ms, Skew_Time {:.1} ms",
        loss_dur.as_secs(),
        mdi() * 1e3,
        skew() * 1e3
    ));
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for spec in specs.iter().filter(|s| selected(s.name)) {
        let mut row = Row {
            name: spec.name,
            gap_limit: spec.gap_limit,
            dual_limit: spec.dual_limit,
            runs: Vec::new(),
            aborted: Vec::new(),
        };
        for run in 0..runs {
            let out = catch_unwind(AssertUnwindSafe(|| {
                let lan = Lan::new(3);
                let nginx = spec.nginx.then(|| {
                    (
                        Nginx::start(&lan.hosts[0], NGINX_PORT),
                        Nginx::start(&lan.hosts[1], NGINX_PORT),
                    )
                });
                let (pre, track) = if spec.nginx {
                    (
                        Nginx::check_block(NGINX_PORT, &NGINX_INTERVAL.to_string(), NGINX_FALL),
                        TRACK_NGINX,
                    )
                } else {
                    (String::new(), "")
                };
                let mut lab = Lab::start(&lan, rx, &pre, track);
                let extras = Extras {
                    fault_for: loss_dur,
                    nginx1: nginx.as_ref().map(|(n1, _)| n1),
                };
                let r = (spec.run)(&mut lab, &extras);
                with_logs(r, &lab, spec.name, run)
            }));
            match out {
                Ok(r) => {
                    say(&format!(
                        "chaos {} run {}: gap {} ms, dual {} ms, owner changes {}, transitions {}{}{}",
                        spec.name,
                        run + 1,
                        r.gap.map_or("-".into(), |g| format!("{:.1}", g * 1e3)),
                        r.dual.map_or("-".into(), |g| format!("{:.1}", g * 1e3)),
                        r.owner_changes,
                        r.transitions,
                        if r.notes.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.notes.join("; "))
                        },
                        if r.violations.is_empty() {
                            String::new()
                        } else {
                            format!("\n  FAILED: {}", r.violations.join("\n  "))
                        }
                    ));
                    for v in &r.violations {
                        failures.push(format!("{} run {}: {v}", spec.name, run + 1));
                    }
                    row.runs.push(r);
                }
                Err(e) => {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    say(&format!(
                        "chaos {} run {}: ABORTED: {msg}",
                        spec.name,
                        run + 1
                    ));
                    failures.push(format!("{} run {}: aborted: {msg}", spec.name, run + 1));
                    row.aborted.push(msg);
                }
            }
        }
        say(&format!("{TABLE_HEAD}\n{}", row.markdown()));
        rows.push(row);
    }
    let table = format!(
        "{TABLE_HEAD}\n{}\n",
        rows.iter()
            .map(Row::markdown)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let summary = out_dir().join("summary.md");
    let _ = std::fs::write(&summary, &table);
    say(&format!(
        "\nchaos summary ({}):\n{table}",
        summary.display()
    ));
    assert!(
        !rows.is_empty(),
        "HAXDP_CHAOS_ONLY selected no scenario (names: {})",
        specs.iter().map(|s| s.name).collect::<Vec<_>>().join(",")
    );
    assert!(
        failures.is_empty(),
        "{} invariant(s) broken:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Adds the daemons' state changes to a failed run and keeps their logs.
fn with_logs(mut r: RunResult, lab: &Lab, scenario: &str, run: usize) -> RunResult {
    if !r.violations.is_empty() {
        let kept = lab.keep_logs(scenario, run + 1);
        let ctx = lab.context();
        if let Some(last) = r.violations.last_mut() {
            last.push_str(&format!("\n  logs kept: {kept}\n{ctx}"));
        }
    }
    r
}
