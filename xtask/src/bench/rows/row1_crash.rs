use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{wait_for, Lan};

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::stats::*;
use crate::bench::{per_map, Ctx, Kind, Per};

pub(crate) fn row1_crash(ctx: &Ctx, report: &mut Report) -> Result<()> {
    for (advert, advert_s) in [("0.05", 0.05), ("1", 1.0)] {
        let mut outage: Per<Vec<f64>> = Per::default();
        let mut over: Per<Vec<f64>> = Per::default();
        let mut failed: Per<u32> = Per::default();
        for kind in Kind::BOTH {
            let lan = Lan::new(3);
            let client = &lan.hosts[2];
            let cap_log = ctx.dir(&format!("r1-{advert}-{}-tcpdump.txt", kind.name()));
            let cap = Capture::start(client, "eth0", &cap_log);
            let mk = |prio| one_vip_v3(prio, advert);
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
                    has_vip(pair.lb2.ns).then_some(())
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
                pair.lb1.start();
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
