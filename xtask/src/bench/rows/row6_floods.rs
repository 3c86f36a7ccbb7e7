use std::time::Duration;

use anyhow::{bail, Context, Result};
use haxdp_tests::flood::{cpu_seconds, flood, FloodKind, FloodSpec};
use haxdp_tests::Lan;

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::{per_map, Ctx, Kind, Per};

/// One flood against one pair.
#[derive(Debug, Clone, Copy)]
struct FloodResult {
    transitions: f64,
    master_cpu: f64,
    backup_cpu: f64,
    /// Packets per second the flooder reached.
    rate: f64,
}

pub(crate) fn row6_floods(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let secs = ctx.secs(10, 5);
    let kinds = [
        ("bad checksums", FloodKind::BadChecksum),
        ("spoofed priority-1 master", FloodKind::SpoofedLowPriority),
        (
            "50000 spoofed sources",
            FloodKind::ManySources { sources: 50_000 },
        ),
    ];
    // (false transitions, master CPU, backup CPU, packets/s sent) per flood.
    let mut res: Vec<Per<Option<FloodResult>>> = vec![Per::default(); kinds.len()];
    for kind in Kind::BOTH {
        let lan = Lan::new(3);
        let attacker = &lan.hosts[2];
        let mk = |prio| {
            let mut i = InstanceConf::new(51, prio, 2, "1", &format!("{VIP}/24"));
            i.auth = true;
            config("lb", "", &[i])
        };
        let mut pair = Pair::start(ctx, &lan, kind, "r6", &mk(100), &mk(90))?;
        wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_secs(2));
        let (p1, p2) = (pair.lb1.vrrp_pid()?, pair.lb2.vrrp_pid()?);
        for (i, (_, fk)) in kinds.iter().enumerate() {
            let (b1, b2) = pair.transitions();
            let (c01, c02) = (cpu_seconds(p1), cpu_seconds(p2));
            // The highest rate one sender thread reaches: the pacing never
            // sleeps at this target; the packet count and duration bound it.
            let rate = 10_000_000u64;
            let spec = FloodSpec {
                kind: *fk,
                vrid: 51,
                version: haxdp_vrrp::Version::V2,
                advert_int_cs: 100,
                vips: vec![VIP.parse().context("VIP")?],
                auth: Some(haxdp_vrrp::pass_auth(b"1111")),
                rate,
                max_packets: rate * secs.as_secs(),
                max_duration: secs,
            };
            let sent = flood(ns_name(attacker), "eth0", spec).join().map_err(|_| {
                anyhow::anyhow!(
                    "the flooder thread panicked (AF_PACKET socket in {}?)",
                    attacker.name
                )
            })?;
            let (c11, c12) = (cpu_seconds(p1), cpu_seconds(p2));
            // Let a takeover the flood provoked show up in the logs.
            std::thread::sleep(Duration::from_secs(2));
            let (a1, a2) = pair.transitions();
            let (d1, d2) = (a1.since(b1), a2.since(b2));
            let n = (d1.to_master + d1.to_backup + d2.to_master + d2.to_backup) as f64;
            *res[i].get_mut(kind) = Some(FloodResult {
                transitions: n,
                master_cpu: c11 - c01,
                backup_cpu: c12 - c02,
                rate: sent.rate(),
            });
            if !pid_alive(p1) || !pid_alive(p2) {
                bail!(
                    "{} died under the {:?} flood:\n{}\n{}",
                    kind.name(),
                    fk,
                    pair.lb1.log_tail(10),
                    pair.lb2.log_tail(10)
                );
            }
            // Back to one master before the next flood.
            wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(10))?;
        }
        note_rx(report, 6, &pair);
        pair.stop();
    }
    for (i, (name, _)) in kinds.iter().enumerate() {
        let scen = format!("flood: {name}, {} s, v2 PASS 1 s adverts", secs.as_secs());
        let r = &res[i];
        let rates = format!(
            "sent {:.0} kpps (ka run) / {:.0} kpps (haxdp run)",
            r.ka.map(|x| x.rate).unwrap_or(0.0) / 1e3,
            r.hx.map(|x| x.rate).unwrap_or(0.0) / 1e3
        );
        report.push(
            6,
            &scen,
            "false transitions",
            Unit::Count,
            &per_map(r, |x| x.map(|x| x.transitions)),
            rates,
        );
        report.push(
            6,
            &scen,
            "master CPU",
            Unit::CpuS,
            &per_map(r, |x| x.map(|x| x.master_cpu)),
            String::new(),
        );
        report.push(
            6,
            &scen,
            "backup CPU",
            Unit::CpuS,
            &per_map(r, |x| x.map(|x| x.backup_cpu)),
            String::new(),
        );
    }
    Ok(())
}
