//! Helpers shared by the integration tests.
#![expect(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use haxdp_config::{load_with, parse_bytes, Diagnostic, LoadError, Loaded, ReadOptions, Severity};

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn load_fixture(rel: &str) -> Loaded {
    let p = fixture(rel);
    match load_with(&p, &ReadOptions::default()) {
        Ok(l) => l,
        Err(LoadError::Invalid { diagnostics, .. }) => {
            let text: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
            panic!("{} refused:\n{}", p.display(), text.join("\n"))
        }
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

/// Parses `text` as a config named `test.conf`; every include is resolved from `dir`.
pub fn parse(text: &str) -> Result<Loaded, LoadError> {
    parse_bytes(
        Path::new("test.conf"),
        text.as_bytes(),
        &ReadOptions::default(),
    )
}

pub fn ok(text: &str) -> Loaded {
    match parse(text) {
        Ok(l) => l,
        Err(LoadError::Invalid { diagnostics, .. }) => {
            let t: Vec<String> = diagnostics.iter().map(|d| d.to_string()).collect();
            panic!("refused:\n{}\n---\n{text}", t.join("\n"))
        }
        Err(e) => panic!("{e}"),
    }
}

/// The diagnostics of a config that must be refused.
pub fn refused(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Ok(l) => panic!(
            "accepted but should be refused:\n{text}\nconfig: {:?}",
            l.config.instances
        ),
        Err(LoadError::Invalid { diagnostics, .. }) => diagnostics,
        Err(e) => panic!("unexpected {e}"),
    }
}

/// Asserts an error at `line` whose message contains `needle`.
pub fn has_error(diags: &[Diagnostic], line: u32, needle: &str) {
    assert!(
        diags
            .iter()
            .any(|d| d.severity == Severity::Error && d.line == line && d.message.contains(needle)),
        "no error at line {line} containing {needle:?}; got:\n{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

pub fn has_diag(diags: &[Diagnostic], sev: Severity, line: u32, needle: &str) {
    assert!(
        diags
            .iter()
            .any(|d| d.severity == sev && d.line == line && d.message.contains(needle)),
        "no {sev} at line {line} containing {needle:?}; got:\n{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "haxdp-config-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn write(&self, name: &str, text: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal valid instance body, for tests that vary one thing.
pub fn instance(extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority 100\n{extra}    virtual_ipaddress {{\n        192.0.2.10/24\n    }}\n}}\n"
    )
}
