//! Tracking: `vrrp_script`, `track_file` and the native nginx check, run as tokio tasks
//! that report state changes over a channel, plus the pure priority arithmetic (which also
//! covers `track_interface`, whose link events the daemon gets from netlink).
//!
//! The specs here are plain structs; the daemon maps the parsed keepalived.conf onto them.

pub mod command;
pub mod file;
pub mod nginx;
pub mod priority;
pub mod script;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use command::{CommandError, CommandKind, RunOutcome, RunStatus, ScriptCommand, ScriptUser};
pub use file::{FileInit, FileSpec};
pub use nginx::{HttpTarget, NginxCheckSpec};
pub use priority::{
    effective_priority, CheckState, Contribution, EffectivePriority, ItemKind, TrackedItem,
};
pub use script::{RiseFall, ScriptSpec};

/// A check changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEvent {
    /// The check's name (`vrrp_script NAME`, `track_file NAME`, nginx check name).
    pub check: String,
    pub kind: ItemKind,
    pub state: CheckState,
    /// Human-readable reason: the last run's result, the file's value, the HTTP status.
    pub detail: String,
}

/// Key of a tracked item's state in an instance's table: interfaces and checks live in
/// one table and may share a name. Its text, `interface:NAME` for an interface and the
/// name for a check, is what serde writes and reads (the hand-over snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", from = "String")]
pub enum TrackKey {
    /// `track_interface NAME`, whose link events come from netlink.
    Interface(String),
    /// A `vrrp_script`, `track_file` or nginx check, by name.
    Check(String),
}

impl std::fmt::Display for TrackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackKey::Interface(name) => write!(f, "interface:{name}"),
            TrackKey::Check(name) => f.write_str(name),
        }
    }
}

impl From<String> for TrackKey {
    fn from(s: String) -> Self {
        match s.strip_prefix("interface:") {
            Some(name) => TrackKey::Interface(name.to_owned()),
            None => TrackKey::Check(s),
        }
    }
}

impl From<TrackKey> for String {
    fn from(k: TrackKey) -> String {
        k.to_string()
    }
}

/// Errors adding a check.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("a check named `{0}` is already tracked: give each vrrp_script/track_file/nginx check a distinct name")]
    DuplicateName(String),
    #[error("check `{0}` has a zero interval: set `interval` to at least 1 (seconds)")]
    ZeroInterval(String),
    #[error("script `{name}`: {source}")]
    Command {
        name: String,
        #[source]
        source: CommandError,
    },
    #[error("nginx check `{name}`: url `{url}` is not usable: {reason} (expected http://host:port/path; TLS is not supported)")]
    BadUrl {
        name: String,
        url: String,
        reason: String,
    },
    #[error("track_file `{name}`: cannot initialise {path}: {source}; fix the directory or drop `init_file`")]
    InitFile {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("checks need a tokio runtime: create the Tracker from inside the daemon's runtime")]
    NoRuntime,
}

/// Shared last-known states, read by `haxdp status` and the priority computation.
type States = Arc<Mutex<HashMap<String, CheckState>>>;

/// Publishes a check's state: updates the shared map and sends an event when it changed.
#[derive(Clone)]
pub(crate) struct Publisher {
    name: String,
    kind: ItemKind,
    states: States,
    events: mpsc::Sender<TrackEvent>,
}

impl Publisher {
    /// Record `state`; send an event if it differs from the last one. A closed receiver
    /// (daemon shutting down) is not an error for the check.
    pub(crate) async fn publish(&self, state: CheckState, detail: String) {
        let changed = {
            let mut map = match self.states.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.insert(self.name.clone(), state) != Some(state)
        };
        if changed {
            tracing::info!(check = %self.name, ?state, %detail, "tracked check changed state");
            let _ = self
                .events
                .send(TrackEvent {
                    check: self.name.clone(),
                    kind: self.kind,
                    state,
                    detail,
                })
                .await;
        }
    }
}

/// Owns every running check. Dropping it (or [`Tracker::shutdown`]) stops them; a script
/// that is running at that moment has its process group killed.
pub struct Tracker {
    events: mpsc::Sender<TrackEvent>,
    states: States,
    names: HashSet<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Tracker {
    /// A tracker sending [`TrackEvent`]s to `events`.
    pub fn new(events: mpsc::Sender<TrackEvent>) -> Self {
        Self {
            events,
            states: Arc::new(Mutex::new(HashMap::new())),
            names: HashSet::new(),
            tasks: Vec::new(),
        }
    }

    fn register(&mut self, name: &str, kind: ItemKind) -> Result<Publisher, TrackError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TrackError::NoRuntime);
        }
        if !self.names.insert(name.to_owned()) {
            return Err(TrackError::DuplicateName(name.to_owned()));
        }
        if let Ok(mut m) = self.states.lock() {
            m.insert(name.to_owned(), CheckState::Unknown);
        }
        Ok(Publisher {
            name: name.to_owned(),
            kind,
            states: Arc::clone(&self.states),
            events: self.events.clone(),
        })
    }

    /// Start a `vrrp_script`.
    pub fn add_script(&mut self, spec: ScriptSpec) -> Result<(), TrackError> {
        let prepared = script::Prepared::new(&spec)?;
        let publisher = self.register(&spec.name, ItemKind::Script)?;
        self.tasks
            .push(tokio::spawn(script::run_loop(prepared, publisher)));
        Ok(())
    }

    /// Start polling a `track_file`.
    pub fn add_file(&mut self, spec: FileSpec) -> Result<(), TrackError> {
        file::prepare(&spec)?;
        let publisher = self.register(&spec.name, ItemKind::File)?;
        self.tasks
            .push(tokio::spawn(file::run_loop(spec, publisher)));
        Ok(())
    }

    /// Start a native nginx check.
    pub fn add_nginx(&mut self, spec: NginxCheckSpec) -> Result<(), TrackError> {
        let prepared = nginx::Prepared::new(&spec)?;
        let publisher = self.register(&spec.name, ItemKind::Nginx)?;
        self.tasks
            .push(tokio::spawn(nginx::run_loop(prepared, publisher)));
        Ok(())
    }

    /// Last known state of one check.
    pub fn state(&self, name: &str) -> Option<CheckState> {
        self.states.lock().ok().and_then(|m| m.get(name).copied())
    }

    /// Last known state of every check.
    pub fn states(&self) -> HashMap<String, CheckState> {
        self.states.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Stop every check and wait until they are gone (running scripts killed).
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
