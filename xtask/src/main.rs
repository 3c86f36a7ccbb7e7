//! `cargo xtask`: the one place that builds the XDP object, installs the toolchain
//! and test packages, runs the tests, the fuzz targets and the XDP benchmark.

mod bench;
mod lab;
mod soak;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use haxdp_tests::frames;

/// Debian packages of the eBPF toolchain (see ../shared/TOOLCHAIN.md).
const TOOLCHAIN_APT: &[&str] = &[
    "rustc-web",
    "rust-web-src",
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
];
/// Debian packages the tests drive: the interop peer, the protected service, tools.
const TEST_APT: &[&str] = &[
    "keepalived",
    "nginx-light",
    "tcpdump",
    "iputils-ping",
    "iproute2",
    // Partitions and advert loss in the namespace tests (the kernel has no netem).
    "nftables",
    "arping",
    // Detaching the XDP program by hand in the receive-path drill.
    "bpftool",
];
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library/core";
const BPF_TARGET: &str = "bpfel-unknown-none";
/// Flags of the eBPF build.
/// - BTF in the object: aya relocates against it, BTF maps need it.
/// - BPF v3 (kernel 5.1+): 32-bit jumps and ALU, fewer instructions.
/// - Misaligned loads: packet headers sit at 2-byte offsets (14-byte Ethernet
///   header); without this LLVM splits every 32-bit packet load into four byte
///   loads. The verifier accepts misaligned packet and map access on hosts with
///   efficient unaligned access (x86_64, arm64), the hosts this daemon targets.
const EBPF_RUSTFLAGS: &[&str] = &[
    "-Cdebuginfo=2",
    "-Clink-arg=--btf",
    "-Ctarget-cpu=v3",
    "-Ctarget-feature=+allows-misaligned-mem-access",
];

#[derive(Parser)]
#[command(name = "xtask", about = "haxdp build, set-up and benchmark tasks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the XDP object into target/bpfel-unknown-none/release/haxdp.
    BuildEbpf {
        /// Accepted for habit: the object is always built with the release
        /// profile, since the verifier rejects unoptimised Rust eBPF code.
        #[arg(long)]
        release: bool,
    },
    /// Install everything the build and the tests need (Debian 12, root).
    Setup,
    /// Build the Debian package (cargo-deb): target/debian/haxdp_*.deb.
    Deb,
    /// Set up, build the XDP object, run the test suite (what CI runs).
    Test,
    /// Build everything and run the two-load-balancer lab with its failover drill.
    Lab {
        /// Leave the lab up afterwards and print how to enter it.
        #[arg(long)]
        keep: bool,
    },
    /// The lab compressed for a soak (10 ms adverts, flaps, HUPs, floods): samples RSS,
    /// descriptors, BPF map fill and queue depths; prints the first and last figures.
    Soak {
        /// Length of the run.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Seconds between HUPs (each scales the instances down or back up).
        #[arg(long, default_value_t = 60)]
        hup_secs: u64,
        /// Fail when the end of the run uses more than its beginning (CI).
        #[arg(long)]
        check: bool,
    },
    /// BPF_PROG_TEST_RUN benchmark of the XDP program against a bare XDP_PASS.
    BenchXdp {
        /// Runs per measurement; the kernel reports the mean per run.
        #[arg(long, default_value_t = 2_000_000)]
        repeat: u32,
        /// Measurements per frame; the smallest mean is reported.
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Another build's XDP object (e.g. the previous release's) to measure in
        /// the same run, frame by frame in alternation, as a second baseline.
        #[arg(long)]
        against: Option<PathBuf>,
    },
    /// Failover, flood and scale benchmark of haxdp against keepalived in
    /// namespace labs; writes the markdown table to BENCHMARKS.md.
    Bench {
        /// Rows to run, e.g. `--rows 1,3` (1-10); all when omitted.
        #[arg(long, value_delimiter = ',')]
        rows: Vec<u8>,
        /// Repetitions of the repeated rows (default 20, or 3 with --quick).
        #[arg(long)]
        runs: Option<u32>,
        /// Shorter durations (15 s instead of 60 s, 5 s floods, 10 s scale).
        #[arg(long)]
        quick: bool,
        /// Where the markdown table goes.
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
    /// Run a cargo-fuzz target (`decode`: the VRRP decoder, fuzz/; `parse`: the
    /// configuration parser, haxdp-config/fuzz/) with libFuzzer for a while.
    Fuzz {
        /// The fuzz target, a file name of fuzz_targets/ without `.rs`.
        target: String,
        /// How long libFuzzer runs (`-max_total_time`).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::BuildEbpf { release: _ } => build_ebpf(true).map(|p| {
            println!("xtask: XDP object at {}", p.display());
        }),
        Cmd::Setup => setup(),
        Cmd::Deb => deb().map(|p| println!("xtask: package at {}", p.display())),
        Cmd::Test => test(),
        Cmd::Fuzz { target, seconds } => fuzz(&target, seconds),
        Cmd::BenchXdp {
            repeat,
            rounds,
            against,
        } => bench_xdp(repeat, rounds, against),
        Cmd::Soak {
            minutes,
            hup_secs,
            check,
        } => {
            setup()?;
            let bin = build_daemon()?;
            soak::run(soak::SoakOpts {
                bin,
                minutes,
                hup_secs,
                check,
            })
        }
        Cmd::Bench {
            rows,
            runs,
            quick,
            out,
        } => {
            setup()?;
            let haxdp = build_daemon()?;
            let mut command = String::from("cargo xtask bench");
            if !rows.is_empty() {
                let list: Vec<String> = rows.iter().map(u8::to_string).collect();
                command.push_str(&format!(" --rows {}", list.join(",")));
            }
            if let Some(n) = runs {
                command.push_str(&format!(" --runs {n}"));
            }
            if quick {
                command.push_str(" --quick");
            }
            bench::run(bench::BenchOpts {
                rows,
                runs: runs.unwrap_or(if quick { 3 } else { 20 }),
                quick,
                out,
                haxdp,
                command,
            })
        }
        Cmd::Lab { keep } => {
            setup()?;
            let bin = build_daemon()?;
            lab::run(&bin, keep)
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the object lands; `haxdp/build.rs` checks this same path.
fn object_path() -> PathBuf {
    workspace_root()
        .join("target")
        .join(BPF_TARGET)
        .join("release")
        .join("haxdp")
}

fn run(cmd: &mut Command) -> Result<()> {
    println!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn is_debian_12() -> bool {
    std::fs::read_to_string("/etc/debian_version")
        .map(|v| v.trim_start().starts_with("12"))
        .unwrap_or(false)
}

fn can_install() -> bool {
    is_root() && is_debian_12()
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// The toolchain that can build `core` for bpfel-unknown-none.
enum Toolchain {
    /// rustup's nightly with the rust-src component (a developer workstation).
    RustupNightly,
    /// Debian's rustc-web + rust-web-src, unlocked with RUSTC_BOOTSTRAP=1.
    Debian,
}

fn find_toolchain() -> Option<Toolchain> {
    let nightly_src = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .join("lib/rustlib/src/rust/library/core")
        });
    if nightly_src.is_some_and(|p| p.is_dir()) {
        return Some(Toolchain::RustupNightly);
    }
    if Path::new(DEBIAN_RUSTC).is_file() && Path::new(DEBIAN_RUST_SRC).is_dir() {
        return Some(Toolchain::Debian);
    }
    None
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

/// PATH with cargo's bin directory, where `cargo install` puts bpf-linker.
fn path_with_cargo_bin() -> OsString {
    let bin = cargo_bin_dir();
    let mut dirs = vec![bin.clone()];
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p).filter(|d| *d != bin));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn have_bpf_linker() -> bool {
    succeeds(
        Command::new("bpf-linker")
            .arg("--version")
            .env("PATH", path_with_cargo_bin()),
    )
}

const MANUAL_STEPS: &str = "\
  apt-get update
  apt-get install -y rustc-web rust-web-src llvm-22-dev libpolly-22-dev zlib1g-dev libzstd-dev
  PATH=/usr/lib/llvm-22/bin:$PATH LLVM_PREFIX=/usr/lib/llvm-22 \\
    cargo install bpf-linker --no-default-features --features llvm-22
(or, with rustup: rustup toolchain install nightly --component rust-src; cargo install bpf-linker)";

/// Finds the toolchain and bpf-linker, installing them on Debian 12 as root.
fn ensure_toolchain() -> Result<Toolchain> {
    let mut toolchain = find_toolchain();
    if toolchain.is_none() {
        if !can_install() {
            bail!(
                "no toolchain can build core for {BPF_TARGET} (neither rustup nightly with \
                 rust-src nor Debian's rustc-web with rust-web-src); run:\n{MANUAL_STEPS}"
            );
        }
        apt_install(TOOLCHAIN_APT)?;
        toolchain = find_toolchain();
    }
    let Some(toolchain) = toolchain else {
        bail!("rustc-web/rust-web-src are installed but {DEBIAN_RUSTC} or {DEBIAN_RUST_SRC} is missing");
    };
    if !have_bpf_linker() {
        if !can_install() {
            bail!("bpf-linker is not installed; run:\n{MANUAL_STEPS}");
        }
        apt_install(TOOLCHAIN_APT)?;
        println!("xtask: installing bpf-linker 0.13 against Debian's LLVM 22 (about a minute)");
        let mut path = vec![PathBuf::from(LLVM_PREFIX).join("bin")];
        path.extend(std::env::split_paths(&path_with_cargo_bin()));
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("PATH", std::env::join_paths(path)?)
            .env("LLVM_PREFIX", LLVM_PREFIX))?;
    }
    Ok(toolchain)
}

fn build_ebpf(verbose: bool) -> Result<PathBuf> {
    let toolchain = ensure_toolchain()?;
    let root = workspace_root();
    let mut cmd = Command::new("cargo");
    match toolchain {
        Toolchain::RustupNightly => {
            cmd.arg("+nightly");
        }
        Toolchain::Debian => {
            cmd.env("RUSTC", DEBIAN_RUSTC).env("RUSTC_BOOTSTRAP", "1");
        }
    }
    cmd.args([
        "build",
        "--release",
        "-p",
        "haxdp-ebpf",
        "--target",
        BPF_TARGET,
    ])
    .args(["-Z", "build-std=core"])
    .arg("--target-dir")
    .arg(root.join("target"))
    .current_dir(&root)
    .env("PATH", path_with_cargo_bin())
    .env("CARGO_ENCODED_RUSTFLAGS", EBPF_RUSTFLAGS.join("\x1f"))
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("RUSTFLAGS")
    .env_remove("RUSTC_WRAPPER")
    .env_remove("RUSTC_WORKSPACE_WRAPPER");
    if !verbose {
        cmd.arg("--quiet");
    }
    run(&mut cmd)?;
    let obj = object_path();
    if !obj.is_file() {
        bail!("the build finished but {} is missing", obj.display());
    }
    Ok(obj)
}

fn setup() -> Result<()> {
    if !can_install() {
        let missing: Vec<&str> = TEST_APT
            .iter()
            .copied()
            .filter(|p| !dpkg_installed(p))
            .collect();
        if !missing.is_empty() {
            bail!(
                "the tests need these packages, and xtask installs only on Debian 12 as root: \
                 apt-get install -y {}",
                missing.join(" ")
            );
        }
    } else {
        apt_install(TEST_APT)?;
    }
    ensure_toolchain()?;
    println!("xtask: set-up complete");
    Ok(())
}

/// Builds the XDP object and the daemon (release); returns the daemon's path.
fn build_daemon() -> Result<PathBuf> {
    build_ebpf(false)?;
    let root = workspace_root();
    run(Command::new("cargo")
        .args(["build", "--release", "-p", "haxdp"])
        .current_dir(&root))?;
    Ok(root.join("target/release/haxdp"))
}

fn test() -> Result<()> {
    setup()?;
    build_ebpf(false)?;
    let root = workspace_root();
    // The house rules, checked first: formatting and clippy with warnings denied.
    run(Command::new("cargo")
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(&root))?;
    run(Command::new("cargo")
        .args([
            "clippy",
            "--workspace",
            "--exclude",
            "haxdp-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(&root))?;
    // The end-to-end tests start the daemon binary itself.
    run(Command::new("cargo")
        .args(["build", "-p", "haxdp"])
        .current_dir(&root))?;
    // Unit and crate tests in parallel; the root tests (namespaces, XDP
    // attach, keepalived) one at a time, as they share the host's bpffs and
    // create interfaces.
    run(Command::new("cargo")
        .args([
            "test",
            "--workspace",
            "--exclude",
            "haxdp-ebpf",
            "--exclude",
            "haxdp-tests",
        ])
        .current_dir(&root))?;
    // keepalived -t against our reader on the seeds: root and keepalived,
    // both of which this run has, so the ignored comparison runs here.
    run(Command::new("cargo")
        .args([
            "test",
            "-p",
            "haxdp-config",
            "--test",
            "keepalived_compare",
            "--",
            "--ignored",
            "--test-threads=1",
        ])
        .current_dir(&root))?;
    // The package test (tests/tests/package.rs) checks and installs this .deb.
    deb()?;
    run(Command::new("cargo")
        .args(["test", "-p", "haxdp-tests", "--", "--test-threads=1"])
        .current_dir(&root))?;
    // Two minutes of the soak (HUP every 15 s), failing on growth: about 2.2 min of CI.
    soak::run(soak::SoakOpts {
        bin: root.join("target/release/haxdp"),
        minutes: 2,
        hup_secs: 15,
        check: true,
    })
}

/// `cargo xtask deb`: the release daemon, its man page and completions (generated from
/// its clap definitions by `haxdp generate-assets`), packaged by cargo-deb with the unit
/// and /etc/default/haxdp (haxdp/Cargo.toml `[package.metadata.deb]`). Installs cargo-deb
/// with `cargo install` when it is missing.
/// The cargo-fuzz projects: each directory's parent is where `cargo fuzz` runs.
const FUZZ_DIRS: &[&str] = &["fuzz", "haxdp-config/fuzz"];

fn fuzz(target: &str, seconds: u64) -> Result<()> {
    let root = workspace_root();
    let mut known = Vec::new();
    let mut found = None;
    for dir in FUZZ_DIRS {
        let targets = root.join(dir).join("fuzz_targets");
        let entries = std::fs::read_dir(&targets)
            .with_context(|| format!("could not read {}", targets.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    if stem == target {
                        found = Some(root.join(dir));
                    }
                    known.push(format!("{stem} ({dir})"));
                }
            }
        }
    }
    let Some(dir) = found else {
        known.sort();
        bail!(
            "no fuzz target {target:?}; the targets are: {}",
            known.join(", ")
        );
    };
    if !succeeds(Command::new("cargo").args(["fuzz", "--version"])) {
        bail!("cargo-fuzz is not installed: cargo install cargo-fuzz");
    }
    let project = dir.parent().unwrap_or(&root);
    // cargo-fuzz passes -Z flags (sanitizer, coverage); RUSTC_BOOTSTRAP lets the
    // stable toolchain take them.
    run(Command::new("cargo")
        .args(["fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .current_dir(project)
        .env("RUSTC_BOOTSTRAP", "1"))
}

fn deb() -> Result<PathBuf> {
    let root = workspace_root();
    if !succeeds(Command::new("cargo").args(["deb", "--version"])) {
        println!("xtask: installing cargo-deb (cargo install cargo-deb --locked)");
        run(Command::new("cargo").args(["install", "cargo-deb", "--locked"]))?;
    }
    let bin = build_daemon()?;
    let assets = root.join("target/release/assets");
    run(Command::new(&bin).arg("generate-assets").arg(&assets))?;
    run(Command::new("gzip")
        .args(["-9nf"])
        .arg(assets.join("haxdp.8")))?;
    let out = root.join("target/debian");
    let _ = std::fs::remove_dir_all(&out);
    run(Command::new("cargo")
        .args(["deb", "-p", "haxdp", "--no-build"])
        .current_dir(&root))?;
    std::fs::read_dir(&out)
        .with_context(|| format!("cargo deb wrote no {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("no .deb in {}", out.display()))
}

fn bench_xdp(repeat: u32, rounds: u32, against: Option<PathBuf>) -> Result<()> {
    use aya::programs::Xdp;

    if repeat < 1_000_000 {
        println!("xtask: note: fewer than 1000000 repeats make the kernel's mean noisy");
    }
    let obj = build_ebpf(false)?;
    let mut ebpf = aya::Ebpf::load_file(&obj)
        .with_context(|| format!("loading {} (needs root)", obj.display()))?;
    watch_bench_instances(&mut ebpf)?;
    // Load time: the BPF_PROG_LOAD syscall, nearly all of it the verifier walking the
    // program (kernel/bpf/verifier.c do_check), which a daemon start, restart and
    // hand-over wait for. Best of LOADS loads (unload in between); the last one stays.
    const LOADS: u32 = 3;
    let mut loads = Vec::new();
    for name in [haxdp_common::PROG_BARE_PASS, haxdp_common::PROG_XDP] {
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the object"))?
            .try_into()?;
        let mut best = std::time::Duration::MAX;
        for n in 0..LOADS {
            if n > 0 {
                prog.unload()
                    .with_context(|| format!("unloading program {name}"))?;
            }
            let t = std::time::Instant::now();
            prog.load()
                .with_context(|| format!("loading program {name}"))?;
            best = best.min(t.elapsed());
        }
        let info = prog.info()?;
        loads.push((
            name,
            best,
            info.size_translated().unwrap_or(0) / 8,
            info.verified_instruction_count().unwrap_or(0),
        ));
    }

    let src = "192.0.2.1".parse()?;
    let valid = frames::Advert::v3(51, 100, src, vec!["192.0.2.100".parse()?]);
    let valid_frame = valid.frame();
    let mut bad = valid.vrrp();
    bad[2] ^= 0x01; // priority changed after the checksum was computed
    let invalid_frame = valid.frame_around(&bad);
    let v2_frame =
        frames::Advert::v2_pass(52, 100, src, vec!["192.0.2.101".parse()?], b"secret").frame();
    let tcp = frames::tcp_frame();

    let mut measure = |prog: &str, frame: &[u8], want: u32| -> Result<f64> {
        let mut best = f64::MAX;
        for _ in 0..rounds.max(1) {
            best = best.min(test_run_ns(&mut ebpf, prog, frame, want, repeat)?);
        }
        Ok(best)
    };
    const XDP_DROP: u32 = 1;
    const XDP_PASS: u32 = 2;
    let measured = (|| -> Result<_> {
        let bare = measure(haxdp_common::PROG_BARE_PASS, &tcp, XDP_PASS)?;
        Ok([
            ("bare XDP_PASS, TCP frame", bare),
            (
                "haxdp, TCP frame",
                measure(haxdp_common::PROG_XDP, &tcp, XDP_PASS)?,
            ),
            (
                "haxdp, valid VRRPv3 advert",
                measure(haxdp_common::PROG_XDP, &valid_frame, XDP_PASS)?,
            ),
            (
                "haxdp, valid VRRPv2 PASS advert",
                measure(haxdp_common::PROG_XDP, &v2_frame, XDP_PASS)?,
            ),
            (
                "haxdp, advert with bad checksum",
                measure(haxdp_common::PROG_XDP, &invalid_frame, XDP_DROP)?,
            ),
        ])
    })();
    let rows = match measured {
        Ok(rows) => rows,
        Err(e) => bail!("{e:#}; drop counters: {:?}", drop_counts(&ebpf)?),
    };
    let bare = rows[0].1;
    println!("BPF_PROG_TEST_RUN, {repeat} runs x {rounds} rounds, best mean per packet:");
    for (name, ns) in rows {
        println!(
            "  {name:<34} {ns:>7.1} ns/packet  {:>5.2}x bare",
            ns / bare.max(0.1)
        );
    }
    println!("program load (BPF_PROG_LOAD, best of {LOADS}):");
    let bare_load = loads[0].1.as_secs_f64();
    for (name, t, insns, verified) in loads {
        println!(
            "  {name:<16} {:>9.2} ms  {:>7.1}x bare  {insns:>5} insns, {verified:>7} verified insns",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / bare_load.max(1e-9)
        );
    }
    let Some(path) = against else {
        return Ok(());
    };
    let mut other = aya::Ebpf::load_file(&path)
        .with_context(|| format!("loading {} (needs root)", path.display()))?;
    watch_bench_instances(&mut other)?;
    let p: &mut Xdp = other
        .program_mut(haxdp_common::PROG_XDP)
        .with_context(|| {
            format!(
                "{} has no program {}",
                path.display(),
                haxdp_common::PROG_XDP
            )
        })?
        .try_into()?;
    p.load().context("loading the other build's program")?;
    println!(
        "against {} (frame by frame in alternation, best of {rounds} each):",
        path.display()
    );
    for (name, frame, want) in [
        ("TCP frame", &tcp, XDP_PASS),
        ("valid VRRPv3 advert", &valid_frame, XDP_PASS),
        ("valid VRRPv2 PASS advert", &v2_frame, XDP_PASS),
        ("advert with bad checksum", &invalid_frame, XDP_DROP),
    ] {
        let (mut ours, mut theirs) = (f64::MAX, f64::MAX);
        for _ in 0..rounds.max(1) {
            let prog = haxdp_common::PROG_XDP;
            ours = ours.min(test_run_ns(&mut ebpf, prog, frame, want, repeat)?);
            theirs = theirs.min(test_run_ns(&mut other, prog, frame, want, repeat)?);
        }
        println!(
            "  {name:<28} this build {ours:>6.1} ns, other {theirs:>6.1} ns, {:>5.2}x",
            ours / theirs.max(0.1)
        );
    }
    Ok(())
}

/// One BPF_PROG_TEST_RUN of `repeat` runs: the kernel's mean per run, in ns.
fn test_run_ns(
    ebpf: &mut aya::Ebpf,
    prog: &str,
    frame: &[u8],
    want: u32,
    repeat: u32,
) -> Result<f64> {
    use aya::programs::{TestRun, TestRunOptions, Xdp};
    let p: &mut Xdp = ebpf
        .program_mut(prog)
        .with_context(|| format!("program {prog} missing"))?
        .try_into()?;
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(frame);
    opts.repeat = repeat;
    let r = p.test_run(opts).context("BPF_PROG_TEST_RUN")?;
    if r.return_value != want {
        bail!(
            "{prog} returned {} on a frame expecting {want}; see the drop counters",
            r.return_value
        );
    }
    Ok(r.duration.as_nanos() as f64)
}

/// The instances the bench's frames belong to, written as `XdpLoader::watch` writes
/// them (BY_VRID only where the object has it: an older build's has not).
fn watch_bench_instances(ebpf: &mut aya::Ebpf) -> Result<()> {
    use haxdp_common::{
        InstanceConf, InstanceKey, AUTH_PASS, FAMILY_V4, MAP_INSTANCES, VERSION_MASK_V2,
        VERSION_MASK_V3,
    };

    let map = ebpf
        .map_mut(MAP_INSTANCES)
        .context("INSTANCES map missing from the object")?;
    let mut instances: aya::maps::HashMap<_, InstanceKey, InstanceConf> =
        aya::maps::HashMap::try_from(map)?;
    // BPF_PROG_TEST_RUN without a context runs the program as if the frame
    // came in on the loopback device of the caller's netns: ifindex 1.
    let key = InstanceKey {
        ifindex: 1,
        vrid: 51,
        family: FAMILY_V4,
        _pad: [0; 2],
    };
    instances.insert(key, InstanceConf::new(VERSION_MASK_V3, 0, b""), 0)?;
    let key_v2 = InstanceKey { vrid: 52, ..key };
    let conf_v2 = InstanceConf::new(VERSION_MASK_V2, AUTH_PASS, b"secret");
    instances.insert(key_v2, conf_v2, 0)?;
    // The program finds them through BY_VRID (as XdpLoader::watch writes it).
    if let Some(map) = ebpf.map_mut(haxdp_common::MAP_BY_VRID) {
        let mut by_vrid: aya::maps::Array<_, haxdp_common::VridInstances> =
            aya::maps::Array::try_from(map)?;
        for (k, conf) in [
            (key, InstanceConf::new(VERSION_MASK_V3, 0, b"")),
            (key_v2, conf_v2),
        ] {
            let mut set = haxdp_common::VridInstances::default();
            set.ways[0] = haxdp_common::VridWay {
                ifindex: k.ifindex,
                _pad: 0,
                conf,
            };
            by_vrid.set(haxdp_common::by_vrid_index(k.vrid, k.family), set, 0)?;
        }
    }
    // The VRRPv3 source is the master a backup follows: protected, with a SEEN entry
    // where the build has SEEN (XdpLoader::protect_peer), as in a daemon.
    let mut master = haxdp_common::fresh_peer(haxdp_common::PEER_F_PROTECTED);
    if ebpf.map(haxdp_common::MAP_SEEN).is_some() {
        master.seen = 1;
    }
    let map = ebpf
        .map_mut(haxdp_common::MAP_PEERS)
        .context("PEERS map missing from the object")?;
    let mut peers: aya::maps::HashMap<_, haxdp_common::PeerKey, haxdp_common::PeerState> =
        aya::maps::HashMap::try_from(map)?;
    peers.insert(
        haxdp_common::PeerKey::new(1, 51, "192.0.2.1".parse()?),
        master,
        0,
    )?;
    // Each watched instance needs its room in PEERS (as XdpLoader::watch makes it).
    let map = ebpf
        .map_mut(haxdp_common::MAP_ROOM)
        .context("ROOM map missing from the object")?;
    let mut room: aya::maps::HashMap<_, InstanceKey, haxdp_common::InstanceRoom> =
        aya::maps::HashMap::try_from(map)?;
    for k in [key, key_v2] {
        room.insert(k, haxdp_common::InstanceRoom::default(), 0)?;
    }
    Ok(())
}

fn drop_counts(ebpf: &aya::Ebpf) -> Result<Vec<(&'static str, u64)>> {
    let map = ebpf
        .map(haxdp_common::MAP_DROPS)
        .context("DROPS map missing from the object")?;
    let drops: aya::maps::PerCpuArray<_, u64> = aya::maps::PerCpuArray::try_from(map)?;
    let mut out = Vec::new();
    for reason in 0..haxdp_common::DROP_REASON_COUNT {
        let n: u64 = drops.get(&reason, 0)?.iter().sum();
        if n > 0 {
            out.push((haxdp_common::drop_reason_name(reason), n));
        }
    }
    Ok(out)
}
