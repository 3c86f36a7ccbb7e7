//! `cargo xtask soak [--minutes N]`: weeks of a bad day compressed into minutes, to see
//! that nothing in the daemon grows without bound (issue 17).
//!
//! Two haxdp nodes and a flooder on one LAN, in namespaces: VRRPv3 instances with 10 ms
//! adverts (the lab's floor: RFC 9568 5.2.7 counts in centiseconds), lb1 flapping every
//! few seconds (the seeds' down file, weight -20 against lb2's 90), a notify script
//! slower than the flaps, a HUP that scales both nodes between 8 and 4 instances, and
//! now and then a bounded flood of spoofed adverts from thousands of sources. Every few
//! seconds each daemon's RSS, open descriptors, BPF PEERS fill (`haxdp maps --json`) and
//! queue depths (`haxdp status --json`) are sampled; the first and last figures are
//! printed. With `--check` (what `cargo xtask test` runs, 2 minutes) it fails when the
//! last part of the run uses more than the first part did.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use haxdp_tests::flood::{flood, FloodKind, FloodSpec};
use haxdp_tests::{Lan, Netns, Proc, TempDir};

pub struct SoakOpts {
    pub bin: PathBuf,
    pub minutes: u64,
    /// Seconds between HUPs (60 in the long soak, 15 in the CI check).
    pub hup_secs: u64,
    /// Fail on growth.
    pub check: bool,
}

/// Instances before and after each scale-down (the HUPs alternate).
const MANY: usize = 8;
const FEW: usize = 4;
/// lb1's down file toggles this often.
const FLAP: Duration = Duration::from_secs(3);
/// A flood of spoofed adverts this often, bounded in packets and time.
const FLOOD_EVERY: Duration = Duration::from_secs(45);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

fn config(name: &str, prio: u8, n: usize, down: &Path, notify: &Path) -> String {
    let mut c = format!(
        "global_defs {{\n  router_id {name}\n}}\n\
         vrrp_script chkfile {{\n  script \"[[ -f {} ]] && exit 1 || exit 0\"\n  interval 0.5\n  weight -20\n}}\n",
        down.display()
    );
    for k in 0..n {
        c.push_str(&format!(
            "vrrp_instance VI_{k} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  \
             priority {prio}\n  advert_int 0.01\n  version 3\n  track_script {{\n    chkfile\n  }}\n  \
             notify {notify}\n  virtual_ipaddress {{\n    192.0.2.{vip}/24\n  }}\n}}\n",
            vrid = 50 + k,
            notify = notify.display(),
            vip = 100 + k,
        ));
    }
    c
}

/// One node's figures at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    t: f64,
    rss_kib: u64,
    fds: u64,
    /// PEERS entries the daemon's pinned map holds.
    peers: u64,
    instances: u64,
    event_depth_max: u64,
    notify_depth: u64,
    notify_depth_max: u64,
    notify_dropped: u64,
    event_dropped: u64,
}

fn proc_rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn proc_fds(pid: i32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn json(ns: &Netns, bin: &Path, what: &str) -> Option<serde_json::Value> {
    let out = ns.try_exec(&[bin.to_str()?, what, "--json"]);
    serde_json::from_slice(&out.stdout).ok()
}

fn sample(ns: &Netns, bin: &Path, pid: i32, t: f64) -> Result<Sample> {
    let rss_kib = proc_rss_kib(pid).context("the daemon is gone")?;
    let fds = proc_fds(pid).context("the daemon is gone")?;
    let st = json(ns, bin, "status").context("no status answer")?;
    let maps = json(ns, bin, "maps").unwrap_or_default();
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let insts = st["instances"].as_array().cloned().unwrap_or_default();
    let eq = &st["event_queue"];
    Ok(Sample {
        t,
        rss_kib,
        fds,
        peers: maps["peers"].as_array().map_or(0, |a| a.len() as u64),
        instances: insts.len() as u64,
        event_depth_max: u(&eq["max_depth"]),
        event_dropped: u(&eq["dropped_kernel"])
            + u(&eq["dropped_housekeeping"])
            + u(&eq["dropped_status"]),
        notify_depth: insts.iter().map(|i| u(&i["notify_queue"]["depth"])).sum(),
        notify_depth_max: insts
            .iter()
            .map(|i| u(&i["notify_queue"]["max_depth"]))
            .max()
            .unwrap_or(0),
        notify_dropped: insts.iter().map(|i| u(&i["notify_queue"]["dropped"])).sum(),
    })
}

fn start(ns: &Netns, bin: &Path, dir: &TempDir, name: &str, conf: &Path) -> Proc {
    let state = dir.path.join(format!("state-{name}"));
    ns.spawn(
        &[
            bin.to_str().unwrap_or("haxdp"),
            "run",
            "-f",
            conf.to_str().unwrap_or(""),
            "--state-dir",
            state.to_str().unwrap_or(""),
            "--log-level",
            "info",
        ],
        &dir.path.join(format!("{name}.log")),
    )
}

fn row(who: &str, s: &Sample) -> String {
    format!(
        "  {who:<10} t={:>6.0}s rss {:>6} KiB  fds {:>3}  peers {:>5}  instances {}  event queue max {:>4} (dropped {})  notify waiting {:>2} (max {}, dropped {})",
        s.t,
        s.rss_kib,
        s.fds,
        s.peers,
        s.instances,
        s.event_depth_max,
        s.event_dropped,
        s.notify_depth,
        s.notify_depth_max,
        s.notify_dropped
    )
}

pub fn run(o: SoakOpts) -> Result<()> {
    haxdp_tests::require_root();
    let total = Duration::from_secs(o.minutes.max(1) * 60);
    let hup = Duration::from_secs(o.hup_secs.max(5));
    let lan = Lan::new(3);
    let (h1, h2, h3) = (&lan.hosts[0], &lan.hosts[1], &lan.hosts[2]);
    let dir = TempDir::new("soak");
    let down = dir.path.join("down");
    let notify = dir.file("notify.sh", "#!/bin/sh\nsleep 4\n");
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&notify)
        .status()?;
    let write = |n: usize| -> Result<(PathBuf, PathBuf)> {
        Ok((
            dir.file("lb1.conf", &config("lb1", 100, n, &down, &notify)),
            dir.file(
                "lb2.conf",
                &config("lb2", 90, n, &dir.path.join("never"), &notify),
            ),
        ))
    };
    let (c1, c2) = write(MANY)?;
    let p1 = start(h1, &o.bin, &dir, "lb1", &c1);
    let p2 = start(h2, &o.bin, &dir, "lb2", &c2);
    println!(
        "soak: {} min, 10 ms adverts, {MANY}<->{FEW} instances per HUP every {} s, lb1 flaps every {} s, a flood every {} s; logs in {}",
        o.minutes,
        hup.as_secs(),
        FLAP.as_secs(),
        FLOOD_EVERY.as_secs(),
        dir.path.display()
    );
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    let (mut next_flap, mut next_hup, mut next_flood, mut next_sample) =
        (FLAP, hup, Duration::from_secs(10), Duration::ZERO);
    let mut many = true;
    let mut flaps = 0u64;
    let mut hups = 0u64;
    let mut floods = 0u64;
    let mut flooding: Option<std::thread::JoinHandle<haxdp_tests::flood::FloodReport>> = None;
    let mut samples: Vec<(Sample, Sample)> = Vec::new();
    while t0.elapsed() < total {
        let now = t0.elapsed();
        if now >= next_sample {
            let t = now.as_secs_f64();
            let a = sample(h1, &o.bin, p1.pid(), t)
                .with_context(|| format!("lb1 at {t:.0} s; log {}", p1.log.display()))?;
            let b = sample(h2, &o.bin, p2.pid(), t)
                .with_context(|| format!("lb2 at {t:.0} s; log {}", p2.log.display()))?;
            samples.push((a, b));
            next_sample += SAMPLE_EVERY;
        }
        if now >= next_flap {
            if down.exists() {
                std::fs::remove_file(&down)?;
            } else {
                std::fs::write(&down, "")?;
            }
            flaps += 1;
            next_flap += FLAP;
        }
        if now >= next_hup {
            many = !many;
            write(if many { MANY } else { FEW })?;
            p1.signal(libc::SIGHUP);
            p2.signal(libc::SIGHUP);
            hups += 1;
            next_hup += hup;
        }
        if now >= next_flood {
            if let Some(f) = flooding.take() {
                let _ = f.join();
            }
            // 2 s at 20k/s from 5000 spoofed sources: the PEERS rooms fill, and the
            // housekeeping prunes them again (silent for more than 60 s).
            flooding = Some(flood(
                &h3.name,
                "eth0",
                FloodSpec {
                    kind: FloodKind::ManySources { sources: 5000 },
                    vrid: 50,
                    version: haxdp_vrrp::Version::V3,
                    advert_int_cs: 1,
                    vips: vec!["192.0.2.100".parse()?],
                    auth: None,
                    rate: 20_000,
                    max_packets: 40_000,
                    max_duration: Duration::from_secs(2),
                },
            ));
            floods += 1;
            next_flood += FLOOD_EVERY;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(f) = flooding.take() {
        let _ = f.join();
    }
    let secs = t0.elapsed().as_secs_f64();
    let last = samples.last().copied().context("no samples")?;
    let first = samples.first().copied().context("no samples")?;
    println!(
        "soak: {secs:.0} s, {flaps} flaps, {hups} HUPs, {floods} floods; first and last samples:"
    );
    for (who, f, l) in [("lb1", first.0, last.0), ("lb2", first.1, last.1)] {
        println!("{}", row(&format!("{who} start"), &f));
        println!("{}", row(&format!("{who} end"), &l));
    }
    let largest_event = samples
        .iter()
        .map(|(a, b)| a.event_depth_max.max(b.event_depth_max))
        .max()
        .unwrap_or(0);
    let largest_notify = samples
        .iter()
        .map(|(a, b)| a.notify_depth_max.max(b.notify_depth_max))
        .max()
        .unwrap_or(0);
    println!(
        "soak: largest event queue depth {largest_event} of 4096, largest notify queue depth {largest_notify}"
    );
    if !o.check {
        return Ok(());
    }
    // Growth: the most the last third of the run used against the most the first third
    // used (each third sees both instance counts, flaps and a flood's aftermath).
    let n = samples.len();
    if n < 6 {
        bail!("soak: only {n} samples, too short to judge growth");
    }
    let head = &samples[1..n / 3 + 1];
    let tail = &samples[n - n / 3..];
    let mut failures = Vec::new();
    for (who, pick) in [
        (
            "lb1",
            (|p: &(Sample, Sample)| p.0) as fn(&(Sample, Sample)) -> Sample,
        ),
        ("lb2", |p: &(Sample, Sample)| p.1),
    ] {
        let max = |s: &[(Sample, Sample)], f: fn(&Sample) -> u64| {
            s.iter().map(|p| f(&pick(p))).max().unwrap_or(0)
        };
        let (r0, r1) = (max(head, |s| s.rss_kib), max(tail, |s| s.rss_kib));
        if r1 > r0 + (r0 / 10).max(2048) {
            failures.push(format!("{who}: RSS grew from {r0} KiB to {r1} KiB"));
        }
        let (f0, f1) = (max(head, |s| s.fds), max(tail, |s| s.fds));
        if f1 > f0 + 2 {
            failures.push(format!("{who}: open descriptors grew from {f0} to {f1}"));
        }
        // PEERS holds what the last flood left until the housekeeping prunes it, so the
        // fill depends on when the samples fall; growth is more than a quarter.
        let (m0, m1) = (max(head, |s| s.peers), max(tail, |s| s.peers));
        if m1 > m0 + m0 / 4 + 2 {
            failures.push(format!("{who}: PEERS fill grew from {m0} to {m1}"));
        }
        let (n0, n1) = (
            max(head, |s| s.notify_depth_max),
            max(tail, |s| s.notify_depth_max),
        );
        if n0.max(n1) > 4 {
            failures.push(format!(
                "{who}: a notify queue held {} transitions",
                n0.max(n1)
            ));
        }
    }
    if !failures.is_empty() {
        bail!("soak: growth: {}", failures.join("; "));
    }
    println!("soak: no growth");
    Ok(())
}
