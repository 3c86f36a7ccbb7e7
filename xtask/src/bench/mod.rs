//! `cargo xtask bench`: haxdp against keepalived 2.2.7, same lab, same run.
//!
//! Every row builds its own namespace LAN (the `haxdp-tests` harness: a
//! bridge namespace, two load balancers and, where needed, a client), runs
//! the scenario once with keepalived on both load balancers and once with
//! haxdp, from the same keepalived.conf text, and prints keepalived's figure
//! (the baseline), haxdp's and the ratio. The table is also written as
//! markdown (`BENCHMARKS.md`) with the date, the kernel, the receive path the
//! haxdp daemons used and the exact command.
//!
//! Timings on a shared machine are noisy: the bench reports medians and
//! maxima and never asserts a timing. Everything is bounded: each flood by a
//! packet count and a duration, each CPU hog by `timeout(1)` as well as by
//! a kill, each wait by a deadline. Processes are ended by pid, namespaces
//! are removed on drop.
//!
//! Wiring (xtask's `main.rs`): build `haxdp` in release mode, then
//! `bench::run(BenchOpts { rows, runs, quick, out, haxdp, command })`.

mod config;
mod harness;
mod report;
mod rows;
mod stats;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use haxdp_tests::TempDir;

use harness::Kind;

use report::{markdown, source_state, Report};
use rows::*;

/// What `cargo xtask bench` runs.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Rows of the list to run (1-10); empty runs all of them.
    pub rows: Vec<u8>,
    /// Repetitions of the repeated rows (1 and 3; row 2 runs at most 10).
    pub runs: u32,
    /// Shorter durations (15 s instead of 60 s, 5 s floods, 10 s scale).
    pub quick: bool,
    /// Where the markdown table goes (BENCHMARKS.md at the workspace root).
    pub out: PathBuf,
    /// The haxdp binary to measure (a release build).
    pub haxdp: PathBuf,
    /// The command line, recorded in the markdown so a reader can rerun it.
    pub command: String,
}

/// A value per daemon.
#[derive(Debug, Clone, Default)]
struct Per<T> {
    ka: T,
    hx: T,
}

impl<T> Per<T> {
    fn get_mut(&mut self, k: Kind) -> &mut T {
        match k {
            Kind::Keepalived => &mut self.ka,
            Kind::Haxdp => &mut self.hx,
        }
    }
}

fn per_map<T, U>(p: &Per<T>, f: impl Fn(&T) -> U) -> Per<U> {
    Per {
        ka: f(&p.ka),
        hx: f(&p.hx),
    }
}

/// Everything a row needs.
struct Ctx<'a> {
    opts: &'a BenchOpts,
    tmp: &'a TempDir,
}

impl Ctx<'_> {
    fn secs(&self, full: u64, quick: u64) -> Duration {
        Duration::from_secs(if self.opts.quick { quick } else { full })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path.join(name)
    }
}

/// Runs the benchmark rows and writes the markdown table.
pub fn run(opts: BenchOpts) -> Result<()> {
    haxdp_tests::require_root();
    for tool in [
        "keepalived",
        "nginx",
        "tcpdump",
        "ping",
        "nft",
        "curl",
        "timeout",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            bail!("{tool} is missing: run `cargo xtask setup` (keepalived, nginx-light, tcpdump, iputils-ping, nftables, curl)");
        }
    }
    if !opts.haxdp.is_file() {
        bail!(
            "{} is missing: build it first (`cargo build --release -p haxdp`)",
            opts.haxdp.display()
        );
    }
    let rows: Vec<u8> = if opts.rows.is_empty() {
        (1..=10).collect()
    } else {
        opts.rows.clone()
    };
    let tmp = TempDir::new("bench");
    // A private copy: a rebuild of target/release/haxdp during the run
    // (row 1 restarts daemons) must not change what is measured.
    let pinned = tmp.path.join("haxdp");
    std::fs::copy(&opts.haxdp, &pinned)
        .with_context(|| format!("copying {} to {}", opts.haxdp.display(), pinned.display()))?;
    let built = std::fs::metadata(&opts.haxdp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    // What the copied binary was built from, as far as the tree can tell
    // now; later commits by others do not change what is measured.
    let source = source_state();
    let run_opts = BenchOpts {
        haxdp: pinned,
        ..opts.clone()
    };
    let ctx = Ctx {
        opts: &run_opts,
        tmp: &tmp,
    };
    let mut report = Report::default();
    let started = Instant::now();
    for row in rows {
        let t = Instant::now();
        println!("bench: row {row} ...");
        // A row that fails (a daemon that would not converge, a missing
        // tool) is reported and the others still run.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match row {
            1 => row1_crash(&ctx, &mut report),
            2 => row2_nginx(&ctx, &mut report),
            3 => row3_stall(&ctx, &mut report),
            4 => row4_starvation(&ctx, &mut report),
            5 => row5_steady_cpu(&ctx, &mut report),
            6 => row6_floods(&ctx, &mut report),
            7 => row7_scale(&ctx, &mut report),
            8 => row8_restart(&ctx, &mut report),
            9 => row9_vrids_10ms(&ctx, &mut report),
            10 => row10_start(&ctx, &mut report),
            n => Err(anyhow::anyhow!("there is no row {n}: rows are 1 to 10")),
        }));
        let err = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(p) => Some(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        };
        if let Some(e) = err {
            eprintln!("bench: row {row} failed: {e}");
            report.failures.push((row, e));
        }
        println!("bench: row {row} took {:.0} s", t.elapsed().as_secs_f64());
    }
    let table = report.table();
    println!("\n{table}");
    let md = markdown(&opts, &report, started.elapsed(), built, &source)?;
    std::fs::write(&opts.out, md).with_context(|| format!("writing {}", opts.out.display()))?;
    println!("bench: wrote {}", opts.out.display());
    if !report.failures.is_empty() {
        bail!(
            "{} row(s) failed: {}",
            report.failures.len(),
            report
                .failures
                .iter()
                .map(|(r, _)| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
