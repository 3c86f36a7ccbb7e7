use std::time::Duration;

use anyhow::{bail, Result};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{wait_for, Lan};

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::stats::*;
use crate::bench::{per_map, Ctx, Kind, Per};

/// Row 8: the master's daemon restarted. keepalived: stop and start, what `systemctl
/// restart keepalived` does (priority 0, the backup takes over, the restarted master
/// preempts it back). haxdp: `haxdp upgrade` (the successor adopts the state; nothing
/// moves). Per restart: the client's longest ping gap, the transitions of both nodes, the
/// restarted master's longest advert gap on the wire.
pub(crate) fn row8_restart(ctx: &Ctx, report: &mut Report) -> Result<()> {
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
        let mk = |prio| one_vip_v3(prio, advert);
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
                    pair.lb1.start();
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
