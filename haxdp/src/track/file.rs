//! `track_file`: a file holding an integer, polled; the value times the weight is added
//! to the priority (see [`super::priority`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CheckState, Publisher, TrackError};

/// `init_file [VALUE] [overwrite]` (keepalived writes `VALUE\n` at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInit {
    pub value: i64,
    /// Write even when the file already exists.
    pub overwrite: bool,
}

/// A `track_file` (keepalived: `vrrp_track_file`) block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub path: PathBuf,
    /// Default weight (keepalived's default is 1); instances may override it.
    pub weight: i32,
    pub init_file: Option<FileInit>,
    /// How often the file is read. Polling a small file is cheaper to get right than
    /// inotify across the rename/replace patterns editors and scripts use.
    pub poll_interval: Duration,
}

impl FileSpec {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            weight: 1,
            init_file: None,
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// keepalived clamps a file's value to -254..=254 (`process_track_file`).
const VALUE_LIMIT: i64 = 254;

/// Parse a file's content like keepalived: `strtol(buf, NULL, 0)` on the first 127 bytes,
/// so leading whitespace, a sign, `0x` hex and leading-`0` octal are accepted, parsing
/// stops at the first other character, and anything unparsable is 0.
pub fn parse_value(content: &[u8]) -> i64 {
    let s = &content[..content.len().min(127)];
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let (radix, start) = if s.len() > i + 1 && s[i] == b'0' && (s[i + 1] | 0x20) == b'x' {
        // "0x" with no hex digit after it parses as 0 in strtol; same here.
        (16, i + 2)
    } else if i < s.len() && s[i] == b'0' {
        (8, i)
    } else {
        (10, i)
    };
    let mut v: i64 = 0;
    for &b in &s[start.min(s.len())..] {
        let Some(d) = (b as char).to_digit(radix) else {
            break;
        };
        v = v
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
    }
    let v = if neg { -v } else { v };
    v.clamp(-VALUE_LIMIT, VALUE_LIMIT)
}

/// Read the tracked value: a missing or unreadable file counts as 0, as in keepalived.
pub fn read_value(path: &Path) -> (i64, String) {
    let mut buf = [0u8; 128];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut buf)) {
        Ok(n) => {
            let v = parse_value(&buf[..n]);
            (v, format!("{} holds {v}", path.display()))
        }
        Err(e) => (
            0,
            format!("{} unreadable ({e}), counted as 0", path.display()),
        ),
    }
}

/// Apply `init_file` before the first read.
pub(crate) fn prepare(spec: &FileSpec) -> Result<(), TrackError> {
    if spec.poll_interval.is_zero() {
        return Err(TrackError::ZeroInterval(spec.name.clone()));
    }
    if let Some(init) = spec.init_file {
        if init.overwrite || !spec.path.exists() {
            std::fs::write(&spec.path, format!("{}\n", init.value)).map_err(|source| {
                TrackError::InitFile {
                    name: spec.name.clone(),
                    path: spec.path.display().to_string(),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

pub(crate) async fn run_loop(spec: FileSpec, publisher: Publisher) {
    let mut ticker = tokio::time::interval(spec.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let path = spec.path.clone();
        // A file on a hung network mount must not stall a runtime worker.
        let (value, detail) = match tokio::task::spawn_blocking(move || read_value(&path)).await {
            Ok(r) => r,
            Err(e) => (0, format!("reading {} failed: {e}", spec.path.display())),
        };
        publisher.publish(CheckState::Value(value), detail).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_strtol() {
        for (text, v) in [
            ("0", 0),
            ("1\n", 1),
            ("  -20\n", -20),
            ("+7", 7),
            ("0x10", 16),
            ("010", 8),
            ("12abc", 12),
            ("abc", 0),
            ("", 0),
            ("999", 254),
            ("-999", -254),
            ("99999999999999999999999", 254),
        ] {
            assert_eq!(parse_value(text.as_bytes()), v, "{text:?}");
        }
    }
}
