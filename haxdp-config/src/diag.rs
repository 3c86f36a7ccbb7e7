//! Diagnostics: every message carries the file, the line and the keyword it is about, the
//! way `keepalived -t` reports `(file: Line N) message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a diagnostic is. Any `Error` refuses the whole configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration cannot be run; nothing is applied.
    Error,
    /// Accepted, but something is ignored or behaves differently than the user may expect.
    Warning,
    /// Accepted; a note about what haxdp does with a keyword (e.g. mail settings).
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One message about one line of one configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file the line is in (an included file when the keyword came from an `include`).
    #[serde(serialize_with = "crate::model::ser_path")]
    pub file: PathBuf,
    /// 1-based line number; 0 when the message is about the file as a whole.
    pub line: u32,
    /// The keyword the message is about (`vrrp_instance`, `priority`, ...); empty when the
    /// message is about the text itself (an unterminated quote, binary data).
    pub keyword: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.severity,
            self.message
        )
    }
}

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    #[serde(serialize_with = "crate::model::ser_path")]
    pub file: PathBuf,
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Collects diagnostics while reading and checking.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub(crate) list: Vec<Diagnostic>,
}

impl Diags {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        file: &Path,
        line: u32,
        keyword: &str,
        message: impl Into<String>,
    ) {
        self.list.push(Diagnostic {
            severity,
            file: file.to_path_buf(),
            line,
            keyword: keyword.to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn error_at(&mut self, loc: &Location, keyword: &str, message: impl Into<String>) {
        self.push(Severity::Error, &loc.file, loc.line, keyword, message);
    }

    pub(crate) fn warn_at(&mut self, loc: &Location, keyword: &str, message: impl Into<String>) {
        self.push(Severity::Warning, &loc.file, loc.line, keyword, message);
    }

    pub(crate) fn info_at(&mut self, loc: &Location, keyword: &str, message: impl Into<String>) {
        self.push(Severity::Info, &loc.file, loc.line, keyword, message);
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }
}
