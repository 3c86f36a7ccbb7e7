//! systemd's service notification protocol (sd_notify(3)), through the `sd-notify` crate:
//! `READY=1` once every instance runs, `RELOADING=1` with `MONOTONIC_USEC` then `READY=1`
//! around a reload (`Type=notify-reload` needs both), `STOPPING=1`, and `WATCHDOG=1` from
//! the engine loop itself, so that a hung engine (not just a live process) misses its
//! pings and systemd restarts it. Outside systemd (no `NOTIFY_SOCKET`) every call is a
//! no-op.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Start-up finished: every instance runs.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The wall time (unix ms) a reload began at, while it has no outcome; 0 otherwise.
static RELOAD_PENDING_SINCE: AtomicU64 = AtomicU64::new(0);

/// A reload begins at `now_unix_ms` (systemd >= 253 requires MONOTONIC_USEC with it).
pub fn reloading(now_unix_ms: u64) {
    RELOAD_PENDING_SINCE.store(now_unix_ms.max(1), Ordering::Relaxed);
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading"),
        ]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
    }
}

/// Called from the engine loop with the last reload's outcome: once the reload begun by
/// [`reloading`] has one, READY=1 with a STATUS saying whether the new file was taken.
pub fn reload_outcome(at_unix_ms: u64, accepted: bool, message: &str, instances: usize) {
    let since = RELOAD_PENDING_SINCE.load(Ordering::Relaxed);
    if since == 0 || at_unix_ms < since {
        return;
    }
    RELOAD_PENDING_SINCE.store(0, Ordering::Relaxed);
    let status = if accepted {
        format!("running {instances} instance(s); reloaded")
    } else {
        let why = message.lines().next().unwrap_or("invalid");
        format!(
            "running {instances} instance(s) of the previous configuration; reload refused: {why}"
        )
    };
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// The stop sequence begins.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog as systemd set it for this process (`WATCHDOG_USEC`, `WATCHDOG_PID`):
/// pinged at half the interval (sd_watchdog_enabled(3) recommends it).
#[derive(Debug)]
pub struct Watchdog {
    every: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    pub fn from_env() -> Self {
        Watchdog {
            every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last: Instant::now(),
        }
    }

    /// Pings if half the interval has passed since the last ping.
    pub fn tick(&mut self) {
        let Some(every) = self.every else { return };
        if self.last.elapsed() >= every {
            send(&[NotifyState::Watchdog]);
            self.last = Instant::now();
        }
    }

    /// Sleeps until the next ping is due; forever without a watchdog.
    pub async fn due(&self) {
        match self.every {
            Some(every) => tokio::time::sleep(every.saturating_sub(self.last.elapsed())).await,
            None => std::future::pending().await,
        }
    }
}
