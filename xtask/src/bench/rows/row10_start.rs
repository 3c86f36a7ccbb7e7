use std::time::Duration;

use anyhow::{bail, Result};
use haxdp_tests::{wait_for, Lan};

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::stats::*;
use crate::bench::{Ctx, Kind, Per};

/// What the daemon logs once, when the first advert reaches its election.
const HEARD: &str = "first VRRP advert heard ";

/// Row 10: a backup's daemon started while its master runs (10 ms adverts, so the wait
/// for the master's next advert is at most 10 ms of it): how long from the process's
/// start until the first advert reaches the election, as the daemon logs it. Every start,
/// restart and re-attach is deaf that long. keepalived logs no received advert, so its
/// column is empty.
pub(crate) fn row10_start(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let runs = ctx.opts.runs.clamp(1, 10);
    let mut heard: Per<Vec<f64>> = Per::default();
    let lan = Lan::new(2);
    let mk = |prio| one_vip_v3(prio, "0.01");
    let mut pair = Pair::start(ctx, &lan, Kind::Haxdp, "r10", &mk(100), &mk(90))?;
    wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(15))?;
    for run in 0..runs {
        if run > 0 {
            pair.lb2.stop();
            pair.lb2.start();
        }
        let Some(ms) = wait_for(Duration::from_secs(10), || heard_ms(&pair.lb2.log())) else {
            bail!("row 10: the restarted backup logged no advert heard within 10 s");
        };
        heard.hx.push(ms / 1e3);
    }
    note_rx(report, 10, &pair);
    pair.stop();
    let (med, max) = median_max(&heard.hx).unwrap_or((f64::NAN, f64::NAN));
    let scen = "backup's daemon started beside a running master, v3 10 ms adverts";
    report.push(
        10,
        scen,
        "start to first advert heard, median",
        Unit::Ms,
        &Per {
            ka: None,
            hx: Some(med),
        },
        format!(
            "{runs} starts; from the process's first instruction of main, as the daemon logs it; keepalived logs no received advert"
        ),
    );
    report.push(
        10,
        scen,
        "start to first advert heard, max",
        Unit::Ms,
        &Per {
            ka: None,
            hx: Some(max),
        },
        String::new(),
    );
    Ok(())
}

/// The milliseconds the daemon's "first VRRP advert heard N ms after ..." line says.
fn heard_ms(log: &str) -> Option<f64> {
    let line = log.lines().rev().find(|l| l.contains(HEARD))?;
    let rest = &line[line.find(HEARD)? + HEARD.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn heard_ms_reads_the_daemons_line() {
        let log = "x\n2026 INFO haxdp: first VRRP advert heard 84.2 ms after the process started (eth0 vrid 51 from 192.0.2.1)\n";
        assert_eq!(super::heard_ms(log), Some(84.2));
        assert_eq!(super::heard_ms("nothing"), None);
    }
}
