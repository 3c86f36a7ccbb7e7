//! `vrrp_script`: run a script every `interval`, never two runs at once, with a timeout and
//! keepalived's rise/fall counting.

use std::time::Duration;

use super::command::{ScriptCommand, ScriptUser};
use super::{CheckState, Publisher, TrackError};

/// A `vrrp_script` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    pub name: String,
    /// The `script` string exactly as written (see [`ScriptCommand`] for how it runs).
    pub command: String,
    pub interval: Duration,
    /// Zero means "same as interval", keepalived's default.
    pub timeout: Duration,
    /// Default weight; instances may override it in `track_script`.
    pub weight: i32,
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    /// `user USER [GROUP]`; `None` runs as the daemon's user.
    pub user: Option<String>,
    /// `init_fail`: start in the failed state instead of unknown.
    pub init_fail: bool,
}

impl ScriptSpec {
    /// A spec with keepalived's defaults: interval 1 s, timeout = interval, weight 0,
    /// rise 1, fall 1.
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            command: command.into(),
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        }
    }
}

/// keepalived's rise/fall counter (`vscript->result` in vrrp_scheduler.c).
///
/// `result` runs from 0 to `rise + fall - 1`; the check is up when `result >= rise`. A
/// success below `rise - 1` counts up, otherwise jumps to the top; a failure above `rise`
/// counts down, otherwise drops to 0. So an up check needs `fall` failures in a row to go
/// down and a down check `rise` successes in a row to come up. A fresh check starts at
/// `rise - 1` in the unknown state, so its first result decides either way; with
/// `init_fail` it starts down at 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    result: u32,
    unknown: bool,
}

impl RiseFall {
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        let rise = rise.max(1);
        let fall = fall.max(1);
        Self {
            rise,
            fall,
            result: if init_fail { 0 } else { rise - 1 },
            unknown: !init_fail,
        }
    }

    pub fn state(&self) -> CheckState {
        if self.unknown {
            CheckState::Unknown
        } else if self.result >= self.rise {
            CheckState::Up
        } else {
            CheckState::Down
        }
    }

    /// Record one result; returns the new state.
    pub fn record(&mut self, ok: bool) -> CheckState {
        if ok {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else {
                self.result = self.rise + self.fall - 1;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            self.result = 0;
        }
        self.unknown = false;
        self.state()
    }
}

/// A spec checked and ready to run.
pub(crate) struct Prepared {
    command: ScriptCommand,
    user: Option<ScriptUser>,
    interval: Duration,
    timeout: Duration,
    rise: u32,
    fall: u32,
    init_fail: bool,
}

impl Prepared {
    pub(crate) fn new(spec: &ScriptSpec) -> Result<Self, TrackError> {
        let command =
            ScriptCommand::parse(&spec.command).map_err(|source| TrackError::Command {
                name: spec.name.clone(),
                source,
            })?;
        if spec.interval.is_zero() {
            return Err(TrackError::ZeroInterval(spec.name.clone()));
        }
        if let Some(note) = command.keepalived_divergence() {
            tracing::warn!(script = %spec.name, "{note}");
        }
        let user = spec
            .user
            .as_deref()
            .map(ScriptUser::lookup)
            .transpose()
            .map_err(|source| TrackError::Command {
                name: spec.name.clone(),
                source,
            })?;
        // SAFETY: geteuid has no preconditions.
        if user.is_some() && unsafe { libc::geteuid() } != 0 {
            tracing::warn!(
                script = %spec.name,
                "`user` ignored: haxdp is not running as root, the script runs as haxdp's user"
            );
        }
        Ok(Self {
            command,
            user,
            interval: spec.interval,
            timeout: if spec.timeout.is_zero() {
                spec.interval
            } else {
                spec.timeout
            },
            rise: spec.rise,
            fall: spec.fall,
            init_fail: spec.init_fail,
        })
    }
}

pub(crate) async fn run_loop(p: Prepared, publisher: Publisher) {
    let mut rf = RiseFall::new(p.rise, p.fall, p.init_fail);
    if p.init_fail {
        publisher
            .publish(rf.state(), "init_fail: failed until it succeeds".to_owned())
            .await;
    }
    let mut ticker = tokio::time::interval(p.interval);
    // A run that overruns the interval delays the next one instead of queueing a burst:
    // runs are strictly sequential (one script, one process group at a time).
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let outcome = p.command.run(&[], p.user, p.timeout).await;
        let state = rf.record(outcome.status.success());
        publisher
            .publish(
                state,
                format!("{} after {:?}", outcome.status, outcome.elapsed),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::*;

    fn run(rf: &mut RiseFall, seq: &str) -> Vec<CheckState> {
        seq.chars().map(|c| rf.record(c == '1')).collect()
    }

    #[test]
    fn first_result_decides() {
        let mut rf = RiseFall::new(3, 3, false);
        assert_eq!(rf.state(), Unknown);
        assert_eq!(run(&mut rf, "1"), [Up]);
        let mut rf = RiseFall::new(3, 3, false);
        assert_eq!(run(&mut rf, "0"), [Down]);
    }

    #[test]
    fn fall_and_rise_need_consecutive_results() {
        // Seed 000's chkngx: fall 3, rise 3.
        let mut rf = RiseFall::new(3, 3, false);
        assert_eq!(
            run(&mut rf, "1001000111011"),
            [Up, Up, Up, Up, Up, Up, Down, Down, Down, Up, Up, Up, Up]
        );
        // A success while down resets nothing upward unless `rise` in a row.
        let mut rf = RiseFall::new(2, 2, false);
        assert_eq!(
            run(&mut rf, "0101011"),
            [Down, Down, Down, Down, Down, Down, Up]
        );
    }

    #[test]
    fn init_fail_starts_down() {
        let mut rf = RiseFall::new(2, 1, true);
        assert_eq!(rf.state(), Down);
        assert_eq!(run(&mut rf, "110"), [Down, Up, Down]);
    }

    #[test]
    fn defaults_flip_on_every_result() {
        let mut rf = RiseFall::new(1, 1, false);
        assert_eq!(run(&mut rf, "10110"), [Up, Down, Up, Up, Down]);
        // rise/fall 0 are treated as 1 rather than underflowing.
        let mut rf = RiseFall::new(0, 0, false);
        assert_eq!(run(&mut rf, "01"), [Down, Up]);
    }
}
