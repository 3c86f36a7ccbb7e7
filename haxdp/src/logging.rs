//! Where the daemon's log goes.
//!
//! Under systemd with stderr connected to the journal (`JOURNAL_STREAM` names stderr's
//! device and inode, systemd.exec(5)), events go to journald natively through
//! `tracing-journald`: one entry per event with its priority (error 3, warning 4, info 6,
//! debug and trace 7, keepalived's LOG_INFO for its transition lines), its fields as
//! journal fields, `SYSLOG_IDENTIFIER=haxdp`, and no timestamp of our own (journald keeps
//! one). `journalctl -u haxdp -p err` then finds the errors. Anywhere else: one line per
//! event on stderr, with a timestamp.

use std::os::fd::AsRawFd;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Whether stderr is the journal stream systemd set up for us.
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat on fd 2 into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(std::io::stderr().as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    st.st_dev == dev && st.st_ino == ino
}

/// journald priorities for tracing's levels: info is keepalived's LOG_INFO (6).
pub fn priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
    }
}

/// Installs the subscriber; `level` is `--log-level` (an EnvFilter directive).
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(j) => {
                let j = j
                    .with_syslog_identifier("haxdp".into())
                    .with_priority_mappings(priorities());
                tracing_subscriber::registry().with(filter).with(j).init();
                return;
            }
            Err(e) => eprintln!("haxdp: journald socket unavailable ({e}); logging to stderr"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// Logs a configuration diagnostic at its own severity: an error as an error, a warning
/// as a warning, an informational note as info (not as a warning: `journalctl -p warning`
/// then shows what needs attention).
pub fn diagnostic(d: &haxdp_config::Diagnostic) {
    match d.severity {
        haxdp_config::Severity::Error => tracing::error!("{d}"),
        haxdp_config::Severity::Warning => tracing::warn!("{d}"),
        haxdp_config::Severity::Info => tracing::info!("{d}"),
    }
}
