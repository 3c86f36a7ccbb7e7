use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use haxdp_tests::flood::cpu_seconds;
use haxdp_tests::Lan;

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::{per_map, Ctx, Kind, Per};

pub(crate) fn row5_steady_cpu(ctx: &Ctx, report: &mut Report) -> Result<()> {
    steady_cpu(ctx, report, 5, 100, "100 instances")
}

/// `instances` VRRPv3 instances (VRIDs 1..=instances) at 10 ms adverts on one
/// interface, lb1 master of all: utime + stime of both VRRP processes over the
/// window, and the transitions in it. Rows 5 and 9.
pub(super) fn steady_cpu(
    ctx: &Ctx,
    report: &mut Report,
    row: u8,
    instances: u16,
    what: &str,
) -> Result<()> {
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
        let c1 = config("lb1", "", &many_instances(instances, 100, "0.01", vip));
        let c2 = config("lb2", "", &many_instances(instances, 90, "0.01", vip));
        let mut pair = Pair::start(ctx, &lan, kind, &format!("r{row}"), &c1, &c2)?;
        // A pair that cannot hold this many instances at 10 ms keeps flapping
        // and never converges: the window is measured anyway (the
        // configured backup's CPU), and the row says so.
        if let Err(e) = wait_converged(&pair.lb1, &pair.lb2, instances.into(), converge) {
            eprintln!(
                "bench: row {row}: {}",
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
        note_rx(report, row, &pair);
        pair.stop();
    }
    let w = window.as_secs_f64();
    let scen = format!("{what}, v3 10 ms adverts, {} s", window.as_secs());
    report.push_cpu(row, &scen, "backup CPU (utime+stime)", &backup, w);
    report.push_cpu(row, &scen, "master CPU (utime+stime)", &master, w);
    report.push(
        row,
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
