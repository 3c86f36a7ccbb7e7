use std::time::{Duration, Instant};

use anyhow::Result;
use haxdp_tests::flood::cpu_seconds;
use haxdp_tests::Lan;

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::{Ctx, Kind, Per};

pub(crate) fn row7_scale(ctx: &Ctx, report: &mut Report) -> Result<()> {
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
