use std::time::Duration;

use anyhow::Result;
use haxdp_tests::flood::cpu_seconds;
use haxdp_tests::Lan;

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::{Ctx, Kind, Per};

pub(crate) fn row4_starvation(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let window = ctx.secs(60, 15);
    let mut false_tr: Per<Option<f64>> = Per::default();
    let mut master: Per<Option<f64>> = Per::default();
    let mut backup: Per<Option<f64>> = Per::default();
    for kind in Kind::BOTH {
        let lan = Lan::new(2);
        let mk = |prio| one_vip_v3(prio, "0.01");
        let mut pair = Pair::start(ctx, &lan, kind, "r4", &mk(100), &mk(90))?;
        wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_secs(1));
        let (b1, b2) = pair.transitions();
        let (p1, p2) = (pair.lb1.vrrp_pid()?, pair.lb2.vrrp_pid()?);
        let (c01, c02) = (cpu_seconds(p1), cpu_seconds(p2));
        {
            let _hog = CpuHog::start(2, window)?;
            std::thread::sleep(window);
        }
        *master.get_mut(kind) = Some(cpu_seconds(p1) - c01);
        *backup.get_mut(kind) = Some(cpu_seconds(p2) - c02);
        std::thread::sleep(Duration::from_millis(500));
        let (a1, a2) = pair.transitions();
        let (d1, d2) = (a1.since(b1), a2.since(b2));
        *false_tr.get_mut(kind) =
            Some((d1.to_master + d1.to_backup + d2.to_master + d2.to_backup) as f64);
        note_rx(report, 4, &pair);
        pair.stop();
    }
    let scen = format!(
        "2 busy loops on 2 cores for {} s, v3 10 ms adverts",
        window.as_secs()
    );
    report.push(
        4,
        &scen,
        "false transitions (both daemons)",
        Unit::Count,
        &false_tr,
        String::new(),
    );
    let w = window.as_secs_f64();
    report.push_cpu(4, &scen, "master CPU (utime+stime)", &master, w);
    report.push_cpu(4, &scen, "backup CPU (utime+stime)", &backup, w);
    Ok(())
}
