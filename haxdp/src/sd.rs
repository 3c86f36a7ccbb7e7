//! systemd's service notification protocol (sd_notify(3)), through the `sd-notify` crate:
//! `READY=1` once every instance runs, `RELOADING=1` with `MONOTONIC_USEC` then `READY=1`
//! around a reload (`Type=notify-reload` needs both), `STOPPING=1`, and `WATCHDOG=1` from
//! the engine loop itself, so that a hung engine (not just a live process) misses its
//! pings and systemd restarts it. Outside systemd (no `NOTIFY_SOCKET`) every call is a
//! no-op.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// A successor after a hand-over (`crate::handover`): this process is the service's main
/// process now (the unit's `NotifyAccess=all` lets systemd take it from a child).
pub fn main_pid() {
    send(&[NotifyState::MainPid(std::process::id())]);
}

/// Start-up finished: every instance runs.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload's outcome as the engine records it: (time, accepted, message).
pub type Outcome = (u64, bool, String);

struct Reloads {
    /// HUPs whose outcome has not been seen yet.
    pending: u32,
    /// The outcome last seen; a new one differs from it.
    seen: Option<Outcome>,
    since: Option<Instant>,
}

static RELOADS: Mutex<Reloads> = Mutex::new(Reloads {
    pending: 0,
    seen: None,
    since: None,
});

/// After this long without a new outcome, a pending reload is taken as finished (two
/// reloads with identical outcomes in the same millisecond cannot be told apart).
const RELOAD_GIVE_UP: Duration = Duration::from_secs(5);

/// A reload begins (systemd >= 253 requires MONOTONIC_USEC with it); `current` is the
/// engine's last recorded outcome, so that the next one is recognised.
pub fn reloading(current: Option<Outcome>) {
    if let Ok(mut r) = RELOADS.lock() {
        if r.pending == 0 {
            r.seen = current;
        }
        r.pending += 1;
        r.since = Some(Instant::now());
    }
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading"),
        ]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status("reloading")]),
    }
}

/// Called from the engine loop with the last reload's outcome: once every reload begun by
/// [`reloading`] has one, READY=1 with a STATUS saying whether the new file was taken.
pub fn reload_outcome(current: Option<Outcome>, instances: usize) {
    let Ok(mut r) = RELOADS.lock() else { return };
    if r.pending == 0 {
        return;
    }
    if current != r.seen {
        r.seen = current.clone();
        r.pending -= 1;
    } else if r.since.is_some_and(|t| t.elapsed() > RELOAD_GIVE_UP) {
        r.pending = 0;
    }
    if r.pending > 0 {
        return;
    }
    drop(r);
    let status = match &current {
        Some((_, false, message)) => {
            let why = message.lines().next().unwrap_or("invalid");
            format!(
                "running {instances} instance(s) of the previous configuration; reload refused: {why}"
            )
        }
        _ => format!("running {instances} instance(s); reloaded"),
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
