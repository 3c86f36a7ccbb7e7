//! Runs `xtask/src/bench.rs` until `cargo xtask bench` is wired in main.rs:
//! `cargo run --release -p xtask --example bench -- [--quick] [--runs N] [--rows 1,3] [--out FILE]`
//! (root; build haxdp first: `cargo build --release -p haxdp`).

#[path = "../src/bench.rs"]
mod bench;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = bench::BenchOpts {
        rows: Vec::new(),
        runs: 20,
        quick: false,
        out: root.join("BENCHMARKS.md"),
        haxdp: root.join("target/release/haxdp"),
        command: format!(
            "cargo run --release -p xtask --example bench -- {}",
            args.join(" ")
        )
        .trim_end()
        .to_string(),
    };
    let mut runs_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--runs" => {
                opts.runs = value()?.parse()?;
                runs_given = true;
            }
            "--rows" => {
                opts.rows = value()?
                    .split(',')
                    .map(|r| r.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--out" => opts.out = value()?.into(),
            "--haxdp" => opts.haxdp = value()?.into(),
            other => anyhow::bail!("unknown argument {other}: use --quick, --runs N, --rows 1,3, --out FILE, --haxdp BIN"),
        }
    }
    if opts.quick && !runs_given {
        opts.runs = 3;
    }
    bench::run(opts)
}
