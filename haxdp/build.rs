//! Checks the XDP object `cargo xtask build-ebpf` builds and tells the compiler
//! where it is. The build itself lives in xtask alone; this script only refuses
//! to embed an object that is missing or older than its sources.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let object = root.join("target/bpfel-unknown-none/release/haxdp");
    // The eBPF crate, the shared types and their manifests. Not Cargo.lock or the
    // workspace manifest: they change with every user-space dependency.
    let inputs = [
        root.join("haxdp-ebpf/src"),
        root.join("haxdp-ebpf/Cargo.toml"),
        root.join("haxdp-common/src"),
        root.join("haxdp-common/Cargo.toml"),
    ];
    println!("cargo:rerun-if-changed={}", object.display());
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    let built = match std::fs::metadata(&object).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => fail(&format!(
            "the XDP object {} is missing: run `cargo xtask build-ebpf` first",
            object.display()
        )),
    };
    let newest = inputs.iter().filter_map(|p| newest_mtime(p)).max();
    if let Some((when, path)) = newest {
        if when > built {
            fail(&format!(
                "the XDP object is older than {}: run `cargo xtask build-ebpf` first",
                path.display()
            ));
        }
    }
    println!("cargo:rustc-env=HAXDP_EBPF_OBJECT={}", object.display());
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// The newest modification time under `path` (a file or a directory tree).
fn newest_mtime(path: &Path) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok().map(|t| (t, path.to_path_buf()));
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}
