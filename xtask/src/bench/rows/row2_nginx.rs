use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use haxdp_tests::observe::{Capture, Seen};
use haxdp_tests::{wait_for, Lan, Netns, Proc};

use crate::bench::config::*;
use crate::bench::harness::*;
use crate::bench::report::*;
use crate::bench::stats::*;
use crate::bench::{per_map, Ctx, Kind, Per};

/// nginx in a load balancer's namespace, its files in `dir`.
struct Nginx<'a> {
    ns: &'a Netns,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl<'a> Nginx<'a> {
    fn new(ns: &'a Netns, dir: PathBuf, name: &str) -> Result<Self> {
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        std::fs::write(dir.join("nginx.conf"), crate::lab::nginx_config(name, &dir))
            .context("writing nginx.conf")?;
        let mut n = Nginx {
            ns,
            dir,
            proc: None,
        };
        n.start()?;
        Ok(n)
    }

    fn start(&mut self) -> Result<()> {
        let conf = self.dir.join("nginx.conf");
        let err = self.dir.join("nginx-early-error.log");
        self.proc = Some(self.ns.spawn(
            &[
                "nginx",
                "-e",
                path_str(&err)?,
                "-c",
                path_str(&conf)?,
                "-p",
                path_str(&self.dir)?,
            ],
            &self.dir.join("nginx.out"),
        ));
        let ns = self.ns;
        let up = wait_for(Duration::from_secs(5), || {
            ns.try_exec(&[
                "curl",
                "-sf",
                "-m",
                "1",
                "-o",
                "/dev/null",
                "http://127.0.0.1/",
            ])
            .status
            .success()
            .then_some(())
        });
        if up.is_none() {
            bail!(
                "nginx did not answer on 127.0.0.1:80 in {}: {}",
                self.ns.name,
                self.proc.as_ref().map(Proc::log_text).unwrap_or_default()
            );
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGTERM);
            p.wait_exit(Duration::from_secs(5));
        }
    }
}

pub(crate) fn row2_nginx(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let runs = ctx.opts.runs.min(10);
    let mut moved: Per<Vec<f64>> = Per::default();
    let mut failed: Per<u32> = Per::default();
    for kind in Kind::BOTH {
        let lan = Lan::new(3);
        let client = &lan.hosts[2];
        let base = ctx.dir(&format!("r2-{}", kind.name()));
        let cap = Capture::start(client, "eth0", &base.with_extension("tcpdump.txt"));
        let mut nginx1 = Nginx::new(&lan.hosts[0], base.join("nginx1"), "lb1")?;
        let _nginx2 = Nginx::new(&lan.hosts[1], base.join("nginx2"), "lb2")?;
        let mk = |prio: u8, ndir: &Path| -> Result<String> {
            let pidfile = ndir.join("nginx.pid");
            let preamble = match kind {
                Kind::Haxdp => format!(
                    "vrrp_nginx_check chk_nginx {{\n    url http://127.0.0.1/\n    expect 200\n    interval 0.2\n    timeout 0.1\n    rise 2\n    fall 2\n    weight -20\n    pidfile {}\n}}\n",
                    pidfile.display()
                ),
                Kind::Keepalived => {
                    // The seeds' chkngx.sh, with kill -0 on this nginx's pid
                    // file: pkill would also see the other namespace's nginx.
                    let script = ndir.join("chkngx.sh");
                    std::fs::write(
                        &script,
                        format!(
                            "#!/bin/sh\nkill -0 \"$(cat {})\" 2>/dev/null || exit 1\n[ \"$(curl -sL -m 1 -w '%{{http_code}}' http://127.0.0.1/ -o /dev/null)\" = 200 ]\n",
                            pidfile.display()
                        ),
                    )?;
                    Command::new("chmod").args(["755", path_str(&script)?]).status()?;
                    format!(
                        "vrrp_script chk_nginx {{\n    script \"{}\"\n    interval 1\n    weight -20\n    fall 3\n    rise 2\n}}\n",
                        script.display()
                    )
                }
            };
            let mut i = InstanceConf::new(51, prio, 2, "1", &format!("{VIP}/24"));
            i.auth = true;
            i.track_script = Some("chk_nginx".into());
            Ok(config("lb", &preamble, &[i]))
        };
        let (c1, c2) = (
            mk(100, &base.join("nginx1"))?,
            mk(90, &base.join("nginx2"))?,
        );
        let mut pair = Pair::start(ctx, &lan, kind, "r2", &c1, &c2)?;
        for run in 0..runs {
            wait_converged(&pair.lb1, &pair.lb2, 1, Duration::from_secs(15))?;
            std::thread::sleep(Duration::from_millis(1500));
            let stop_at = epoch_now();
            nginx1.stop();
            let took = wait_for(Duration::from_secs(15), || {
                has_vip(pair.lb2.ns).then_some(())
            });
            std::thread::sleep(Duration::from_millis(300));
            let garp = cap.events().iter().find_map(|e| match e {
                Seen::Garp { t, addr, mac } if addr == VIP && mac == LB2_MAC && *t > stop_at => {
                    Some(*t)
                }
                _ => None,
            });
            match (took, garp) {
                (Some(()), Some(g)) => moved.get_mut(kind).push(g - stop_at),
                _ => {
                    *failed.get_mut(kind) += 1;
                    eprintln!(
                        "bench: row 2 {} run {run}: VIP did not move (takeover {}, GARP {garp:?})",
                        kind.name(),
                        took.is_some()
                    );
                }
            }
            nginx1.start()?;
        }
        note_rx(report, 2, &pair);
        pair.stop();
        let _ = &pair.lan;
    }
    let m = per_map(&moved, |v| median_max(v));
    let scen = "nginx stopped to VIP moved (ka: script i1 f3; haxdp: native i0.2 f2)";
    let mut note = format!("{runs} runs, v2 1 s adverts");
    if failed.ka + failed.hx > 0 {
        let _ = write!(
            note,
            "; VIP did not move: keepalived {}, haxdp {}",
            failed.ka, failed.hx
        );
    }
    report.push(
        2,
        scen,
        "stop to first GARP, median",
        Unit::Ms,
        &per_map(&m, |m| m.map(|x| x.0)),
        note,
    );
    report.push(
        2,
        scen,
        "stop to first GARP, max",
        Unit::Ms,
        &per_map(&m, |m| m.map(|x| x.1)),
        String::new(),
    );
    Ok(())
}
