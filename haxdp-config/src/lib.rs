//! keepalived.conf reader: the configuration users already have, as a typed and validated
//! model with `file:line` diagnostics.
//!
//! ```no_run
//! let loaded = haxdp_config::load(std::path::Path::new("/etc/keepalived/keepalived.conf"))?;
//! for d in &loaded.diagnostics {
//!     eprintln!("{d}");
//! }
//! println!("{} instances", loaded.config.instances.len());
//! # Ok::<(), haxdp_config::LoadError>(())
//! ```
//!
//! See `README.md` for the accepted syntax, the native `vrrp_nginx_check` and the policy on
//! unknown keywords.

mod build;
mod diag;
mod model;
mod params;
mod report;
mod syntax;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Location, Severity};
pub use model::*;
pub use report::check_config_report;
pub use syntax::ReadOptions;

/// A configuration that can be run, and the warnings and notes about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Warnings and info notes only (errors make [`LoadError::Invalid`]).
    pub diagnostics: Vec<Diagnostic>,
}

/// Why a configuration was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The top file itself could not be read (exit code 2).
    #[error("cannot read {}: {source}; check the path and its permissions", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration has errors and is refused as a whole (exit code 1). `diagnostics`
    /// holds every diagnostic, warnings included, in file order.
    #[error("{} is invalid: {} error(s); nothing applied", path.display(), count_errors(diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

fn count_errors(d: &[Diagnostic]) -> usize {
    d.iter().filter(|d| d.severity == Severity::Error).count()
}

impl LoadError {
    /// The exit code of `haxdp check-config` for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Unreadable { .. } => 2,
            LoadError::Invalid { .. } => 1,
        }
    }
}

/// keepalived's `-i/--config-id`, when the command line gave one: it replaces the host
/// name for every load of the process (start, reload, check).
static CONFIG_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the process's config_id (keepalived's `-i ID`); the first call wins.
pub fn set_config_id(id: &str) {
    let _ = CONFIG_ID.set(id.to_owned());
}

/// keepalived's default config_id: `-i` if given, else the host name up to the first dot.
fn default_config_id() -> Option<String> {
    if let Some(id) = CONFIG_ID.get() {
        return Some(id.clone());
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname NUL-terminates within
    // it when it succeeds (truncation is reported as an error on Linux).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&buf[..end]).ok()?;
    let short = name.split('.').next().unwrap_or(name);
    (!short.is_empty()).then(|| short.to_string())
}

/// Reads and checks `path` (and its includes). `@ID` lines match the short host name, as
/// keepalived's default config_id does.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with(
        path,
        &ReadOptions {
            config_id: default_config_id(),
        },
    )
}

/// [`load`] with explicit reading options.
pub fn load_with(path: &Path, opts: &ReadOptions) -> Result<Loaded, LoadError> {
    let mut diags = diag::Diags::default();
    let tree =
        syntax::read_tree(path, opts, &mut diags).map_err(|source| LoadError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    finish(path, &tree, diags)
}

/// Checks configuration text that is not in a file (tests, fuzzing, a config received over
/// the control socket). `name` is used in diagnostics and to resolve relative includes.
pub fn parse_bytes(name: &Path, bytes: &[u8], opts: &ReadOptions) -> Result<Loaded, LoadError> {
    let mut diags = diag::Diags::default();
    let tree = syntax::read_tree_from_bytes(name, bytes, opts, &mut diags);
    finish(name, &tree, diags)
}

fn finish(path: &Path, tree: &[syntax::Node], mut diags: diag::Diags) -> Result<Loaded, LoadError> {
    let config = build::build(tree, path, &mut diags);
    // Stable order for users and tests: by file (in reading order), then line.
    let mut order: Vec<PathBuf> = Vec::new();
    for d in &diags.list {
        if !order.contains(&d.file) {
            order.push(d.file.clone());
        }
    }
    diags.list.sort_by_key(|d| {
        (
            order
                .iter()
                .position(|f| *f == d.file)
                .unwrap_or(usize::MAX),
            d.line,
        )
    });
    if diags.has_errors() {
        return Err(LoadError::Invalid {
            path: path.to_path_buf(),
            diagnostics: diags.list,
        });
    }
    Ok(Loaded {
        config,
        diagnostics: diags.list,
    })
}
