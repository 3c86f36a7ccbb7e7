use std::time::Duration;

use anyhow::Result;
use haxdp_tests::flood::cpu_seconds;
use haxdp_tests::Lan;

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::{per_map, Ctx, Kind, Per};

pub(crate) fn row3_stall(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let advert_s = 0.1;
    let mdi = master_down_interval(3, 90, advert_s);
    let mut false_to: Per<u32> = Per::default();
    let mut runs_with: Per<u32> = Per::default();
    // The master's CPU over the stall windows (SIGSTOP to 1 s after SIGCONT).
    let mut master: Per<Option<f64>> = Per::default();
    let stall_window = 3.0 * mdi + 1.0;
    for kind in Kind::BOTH {
        let lan = Lan::new(2);
        let mk = |prio| one_vip_v3(prio, "0.1");
        let mut pair = Pair::start(ctx, &lan, kind, "r3", &mk(100), &mk(90))?;
        for _ in 0..ctx.opts.runs {
            wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
            std::thread::sleep(Duration::from_millis(500));
            let (b1, b2) = pair.transitions();
            let pid = pair.lb2.vrrp_pid()?;
            let p1 = pair.lb1.vrrp_pid()?;
            let c0 = cpu_seconds(p1);
            kill_pid(pid, libc::SIGSTOP);
            std::thread::sleep(Duration::from_secs_f64(3.0 * mdi));
            kill_pid(pid, libc::SIGCONT);
            std::thread::sleep(Duration::from_secs(1));
            let m = master.get_mut(kind);
            *m = Some(m.unwrap_or(0.0) + cpu_seconds(p1) - c0);
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
    report.push_cpu(
        3,
        &scen,
        "master CPU over the stall windows (utime+stime)",
        &master,
        f64::from(ctx.opts.runs) * stall_window,
    );
    Ok(())
}
