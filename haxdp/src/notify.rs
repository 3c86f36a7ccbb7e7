//! keepalived-style notifications for VRRP state changes.
//!
//! - `notify_master` / `notify_backup` / `notify_fault` / `notify_stop` run as written;
//!   then the generic `notify` runs with `INSTANCE <name> <STATE> <priority>` appended
//!   (keepalived 2.2.7 order of arguments; checked against the Debian package, which ran
//!   `notify "/n.sh x"` as `/n.sh x INSTANCE VI_1 MASTER 100`). Strings run through the
//!   same shell-or-exec rule as `vrrp_script` ([`crate::track::command`]).
//! - Scripts of one instance run one after another in transition order: a queue per
//!   instance; the next script starts when the previous one exited or was killed at its
//!   timeout. Different instances do not wait for each other.
//! - The queue is bounded: at most [`NOTIFY_QUEUE_LEN`] transitions wait behind the
//!   running one. When a flapping instance fills it, the oldest waiting transition is
//!   dropped (counted, logged once per 100, shown in `haxdp status`): keepalived forks a
//!   script per transition, so its scripts never run late; here they run in order, and
//!   what matters most to a notify script is the newest state, which is never dropped.
//! - Users are resolved when the configuration is loaded ([`NotifyCommand::run_as`]),
//!   never at a transition: `getpwnam_r` can block for seconds (NSS on LDAP), and the
//!   thread that queues notifications is the one that sends adverts.
//! - `notify_fifo`: one line per transition, `INSTANCE "VI_1" MASTER 100\n` (keepalived's
//!   format), written without blocking; with no reader or a full pipe the line is dropped
//!   and counted.
//! - A state file per instance, `<state_dir>/<instance>.state` containing
//!   `STATE=MASTER\n` (the nginx-ha convention), replaced atomically with rename(2). It
//!   does not wait behind scripts: a writer per instance writes the newest state (the
//!   states in between are coalesced) on tokio's blocking pool, off the engine thread.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::track::command::{CommandError, ScriptCommand, ScriptUser};

/// Default directory for state files.
pub const DEFAULT_STATE_DIR: &str = "/run/haxdp";

/// Timeout for a notify script when the spec gives none. keepalived has no timeout for
/// notify scripts; one is needed here because scripts of an instance run in sequence and a
/// hung script would hold back every later notification.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Transitions of one instance that may wait behind its running notify script; one more
/// drops the oldest waiting one. Four: a flap (MASTER, BACKUP) and the one after it, so the
/// scripts end on the newest state at most four script runs late.
pub const NOTIFY_QUEUE_LEN: usize = 4;

/// The state an instance entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyState {
    /// The word keepalived passes to scripts and writes to the FIFO.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Master => "MASTER",
            NotifyState::Backup => "BACKUP",
            NotifyState::Fault => "FAULT",
            NotifyState::Stop => "STOP",
        }
    }
}

/// Who a notification is about: keepalived's first word of the generic script's
/// arguments and of a FIFO line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Instance,
    Group,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::Instance => "INSTANCE",
            Subject::Group => "GROUP",
        }
    }
}

/// One notify script and the user it runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyCommand {
    /// The command as written (keepalived's quoting rules; shell syntax runs under sh).
    pub command: String,
    /// `USER [GROUP]` to run as when the daemon is root: the notify line's own user, else
    /// `global_defs script_user`.
    pub user: Option<String>,
    /// `user` resolved when the configuration was loaded ([`NotifyCommand::resolve`]); a
    /// transition never looks a user up. `None` with a `user`: not resolved, the script is
    /// skipped (as keepalived skips a script whose user does not resolve).
    pub run_as: Option<ScriptUser>,
}

impl NotifyCommand {
    /// Look `user` up now (at load, on the thread that reads the configuration).
    pub fn resolve(&mut self) -> Result<(), CommandError> {
        self.run_as = self.user.as_deref().map(ScriptUser::lookup).transpose()?;
        Ok(())
    }
}

impl From<&str> for NotifyCommand {
    fn from(command: &str) -> Self {
        command.to_owned().into()
    }
}

impl From<String> for NotifyCommand {
    fn from(command: String) -> Self {
        Self {
            command,
            user: None,
            run_as: None,
        }
    }
}

/// Notification settings of one `vrrp_instance`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySpec {
    pub notify_master: Option<NotifyCommand>,
    pub notify_backup: Option<NotifyCommand>,
    pub notify_fault: Option<NotifyCommand>,
    pub notify_stop: Option<NotifyCommand>,
    /// Generic script: gets `INSTANCE name STATE priority` appended.
    pub notify: Option<NotifyCommand>,
    /// Per-script timeout; zero means [`DEFAULT_NOTIFY_TIMEOUT`].
    pub timeout: Duration,
}

impl NotifySpec {
    fn commands(&self) -> impl Iterator<Item = &NotifyCommand> {
        [
            &self.notify_master,
            &self.notify_backup,
            &self.notify_fault,
            &self.notify_stop,
            &self.notify,
        ]
        .into_iter()
        .flatten()
    }

    /// For each script string that keepalived 2.2.7 would run differently (it never uses a
    /// shell), a sentence saying how, for a warning at config load.
    pub fn keepalived_divergences(&self) -> Vec<String> {
        self.commands()
            .filter_map(|c| {
                ScriptCommand::parse(&c.command)
                    .ok()?
                    .keepalived_divergence()
            })
            .collect()
    }

    /// Check every script string and user, for refusing a bad config at load time.
    pub fn validate(&self) -> Result<(), CommandError> {
        for c in self.commands() {
            ScriptCommand::parse(&c.command)?;
            if let Some(u) = &c.user {
                ScriptUser::lookup(u)?;
            }
        }
        Ok(())
    }
}

/// Errors setting up notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot create state directory {path}: {source}; create it or choose another with the state-dir setting")]
    StateDir {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "notify_fifo {path} exists but is not a FIFO: remove it or point notify_fifo elsewhere"
    )]
    NotAFifo { path: String },
    #[error("cannot create notify_fifo {path}: {source}; check that its directory exists and is writable")]
    MkFifo {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("notifications need a tokio runtime: create the Notifier inside the daemon's runtime")]
    NoRuntime,
}

enum Job {
    Transition {
        state: NotifyState,
        priority: u8,
        /// Each script with its arguments and the user it runs as.
        scripts: Vec<(ScriptCommand, Vec<String>, Option<ScriptUser>)>,
        timeout: Duration,
        /// Instances keep a state file; groups do not.
        state_file: bool,
    },
    Barrier(oneshot::Sender<()>),
}

/// How one instance's notifications are keeping up, for `haxdp status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Transitions waiting behind the running script now.
    pub depth: usize,
    /// The most that ever waited (at most [`NOTIFY_QUEUE_LEN`]).
    pub max_depth: usize,
    /// Waiting transitions dropped because a newer one needed the room.
    pub dropped: u64,
    /// A script of this instance is running now.
    pub running: bool,
}

/// The jobs of one queue, shared by the engine (push) and the worker (pop).
struct Jobs {
    queue: Mutex<VecDeque<Job>>,
    wake: tokio::sync::Notify,
    closed: AtomicBool,
    running: AtomicBool,
    max_depth: AtomicUsize,
    dropped: AtomicU64,
}

impl Jobs {
    fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
            running: AtomicBool::new(false),
            max_depth: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn transitions(q: &VecDeque<Job>) -> usize {
        q.iter()
            .filter(|j| matches!(j, Job::Transition { .. }))
            .count()
    }

    /// Queue `job`; a transition beyond [`NOTIFY_QUEUE_LEN`] waiting pushes out the
    /// oldest waiting transition, which is returned (barriers are never dropped).
    fn push(&self, job: Job) -> Option<NotifyState> {
        let mut dropped = None;
        {
            let Ok(mut q) = self.queue.lock() else {
                return None;
            };
            if matches!(job, Job::Transition { .. }) && Self::transitions(&q) >= NOTIFY_QUEUE_LEN {
                if let Some(pos) = q.iter().position(|j| matches!(j, Job::Transition { .. })) {
                    if let Some(Job::Transition { state, .. }) = q.remove(pos) {
                        dropped = Some(state);
                    }
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(job);
            self.max_depth
                .fetch_max(Self::transitions(&q), Ordering::Relaxed);
        }
        self.wake.notify_one();
        dropped
    }

    /// The next job, or `None` once the queue is closed and empty.
    async fn pop(&self) -> Option<Job> {
        loop {
            if let Some(j) = self.queue.lock().ok().and_then(|mut q| q.pop_front()) {
                return Some(j);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            // notify_one stores a permit when nobody waits, so a push between the check
            // above and this await is not lost.
            self.wake.notified().await;
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            depth: self
                .queue
                .lock()
                .map(|q| Self::transitions(&q))
                .unwrap_or(0),
            max_depth: self.max_depth.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }
}

/// The newest state of an instance for its state-file writer, with a sequence number so
/// that `drain` can wait for a given write.
type StateSlot = (u64, Option<NotifyState>);

struct Queue {
    jobs: Arc<Jobs>,
    worker: JoinHandle<()>,
    /// Instances only: the state-file writer's input and its progress.
    state: Option<(
        watch::Sender<StateSlot>,
        watch::Receiver<u64>,
        JoinHandle<()>,
    )>,
}

struct Fifo {
    path: PathBuf,
    file: Option<File>,
}

impl Fifo {
    fn open(&mut self) -> io::Result<()> {
        // O_NONBLOCK: open(2) of a FIFO for writing fails with ENXIO when nobody has it open
        // for reading, instead of blocking the daemon (fifo(7)).
        let f = std::fs::OpenOptions::new()
            .write(true)
            // O_NOFOLLOW: never through a symlink planted at the FIFO's path.
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&self.path)?;
        self.file = Some(f);
        Ok(())
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        for attempt in 0..2 {
            if self.file.is_none() {
                self.open()?;
            }
            let Some(f) = self.file.as_mut() else {
                return Err(io::Error::other("fifo not open"));
            };
            // Lines are far below PIPE_BUF, so a write is all-or-nothing (pipe(7)); a full
            // pipe gives EAGAIN rather than a partial line.
            match f.write(line.as_bytes()) {
                Ok(n) if n == line.len() => return Ok(()),
                Ok(n) => return Err(io::Error::other(format!("short write {n}/{}", line.len()))),
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) && attempt == 0 => {
                    // The reader went away; a new one may be there now.
                    self.file = None;
                }
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        self.file = None;
                    }
                    return Err(e);
                }
            }
        }
        Err(io::Error::other("reader closed the fifo"))
    }
}

struct Inner {
    state_dir: PathBuf,
    fifo: Mutex<Option<Fifo>>,
    fifo_dropped: AtomicU64,
    /// Transitions dropped from full notify queues, all queues.
    dropped: AtomicU64,
    queues: Mutex<HashMap<String, Queue>>,
    handle: tokio::runtime::Handle,
}

/// Runs notifications; cheap to call from the VRRP event loop.
pub struct Notifier {
    inner: Arc<Inner>,
}

/// `<dir>/<instance>.state`, with `/` in the name replaced so it cannot leave `dir`.
pub fn state_file_path(dir: &Path, instance: &str) -> PathBuf {
    let mut safe: String = instance
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if safe.starts_with('.') {
        safe.replace_range(0..1, "_");
    }
    dir.join(format!("{safe}.state"))
}

/// Write `STATE=<STATE>\n` atomically: a reader sees the old or the new file, never a
/// partial one (rename(2) within one directory).
pub fn write_state_file(dir: &Path, instance: &str, state: NotifyState) -> io::Result<()> {
    // Never through a symlink, neither at the file nor at its temporary name
    // (keepalived's CVE-2018-19044 class): see `crate::ops::write_file_nofollow`.
    crate::ops::write_file_nofollow(
        &state_file_path(dir, instance),
        format!("STATE={}\n", state.as_str()).as_bytes(),
    )
}

impl Notifier {
    /// A notifier writing state files to `state_dir` (created if missing).
    pub fn new(state_dir: impl Into<PathBuf>) -> Result<Self, NotifyError> {
        let state_dir = state_dir.into();
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        std::fs::create_dir_all(&state_dir).map_err(|source| NotifyError::StateDir {
            path: state_dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                state_dir,
                fifo: Mutex::new(None),
                fifo_dropped: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                queues: Mutex::new(HashMap::new()),
                handle,
            }),
        })
    }

    /// Also write transitions to the FIFO at `path`, creating it (mode 0600) if missing.
    pub fn with_fifo(self, path: impl Into<PathBuf>) -> Result<Self, NotifyError> {
        let path = path.into();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_fifo() => {}
            Ok(_) => {
                return Err(NotifyError::NotAFifo {
                    path: path.display().to_string(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let c =
                    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                        NotifyError::MkFifo {
                            path: path.display().to_string(),
                            source: io::Error::from(io::ErrorKind::InvalidInput),
                        }
                    })?;
                // SAFETY: c is a valid NUL-terminated path for the duration of the call.
                if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                    return Err(NotifyError::MkFifo {
                        path: path.display().to_string(),
                        source: io::Error::last_os_error(),
                    });
                }
            }
            Err(source) => {
                return Err(NotifyError::MkFifo {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
        if let Ok(mut f) = self.inner.fifo.lock() {
            *f = Some(Fifo { path, file: None });
        }
        Ok(self)
    }

    /// FIFO lines dropped so far (no reader, or the reader is not keeping up).
    pub fn fifo_dropped(&self) -> u64 {
        self.inner.fifo_dropped.load(Ordering::Relaxed)
    }

    /// Path of an instance's state file.
    pub fn state_file(&self, instance: &str) -> PathBuf {
        state_file_path(&self.inner.state_dir, instance)
    }

    /// Record a transition: the FIFO line is written now (non-blocking); the state file
    /// and the scripts are queued behind this instance's earlier notifications.
    pub fn transition(&self, instance: &str, spec: &NotifySpec, state: NotifyState, priority: u8) {
        self.notify(Subject::Instance, instance, spec, state, priority);
    }

    /// Record a `vrrp_sync_group` transition: keepalived runs the group's scripts with
    /// `GROUP name STATE 0` (notify_group_exec) and writes the same words to the FIFO. No
    /// state file: those are per instance.
    pub fn group_transition(&self, group: &str, spec: &NotifySpec, state: NotifyState) {
        self.notify(Subject::Group, group, spec, state, 0);
    }

    fn notify(
        &self,
        subject: Subject,
        instance: &str,
        spec: &NotifySpec,
        state: NotifyState,
        priority: u8,
    ) {
        self.write_fifo(subject, instance, state, priority);

        let specific = match state {
            NotifyState::Master => &spec.notify_master,
            NotifyState::Backup => &spec.notify_backup,
            NotifyState::Fault => &spec.notify_fault,
            NotifyState::Stop => &spec.notify_stop,
        };
        let generic_args = vec![
            subject.as_str().to_owned(),
            instance.to_owned(),
            state.as_str().to_owned(),
            priority.to_string(),
        ];
        let mut scripts = Vec::new();
        for (source, args) in [(specific, Vec::new()), (&spec.notify, generic_args)] {
            let Some(source) = source else { continue };
            let cmd = match ScriptCommand::parse(&source.command) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(%instance, script = %source.command, "notify script skipped: {e}");
                    continue;
                }
            };
            // The user was resolved at load (NotifyCommand::resolve): no NSS lookup here, on
            // the thread that sends adverts. keepalived skips a notify script whose user does
            // not resolve (notify_script_init); so does this.
            let user = match (&source.user, source.run_as) {
                (_, Some(u)) => Some(u),
                (None, None) => None,
                (Some(u), None) => {
                    tracing::error!(%instance, script = %source.command, "notify script skipped: user '{u}' was not resolved when the configuration was loaded");
                    continue;
                }
            };
            scripts.push((cmd, args, user));
        }
        let timeout = if spec.timeout.is_zero() {
            DEFAULT_NOTIFY_TIMEOUT
        } else {
            spec.timeout
        };
        // Groups queue apart from instances (a group may share an instance's name).
        let queue = match subject {
            Subject::Instance => instance.to_owned(),
            Subject::Group => format!("GROUP {instance}"),
        };
        self.enqueue(
            &queue,
            Job::Transition {
                state,
                priority,
                scripts,
                timeout,
                state_file: subject == Subject::Instance,
            },
        );
    }

    fn write_fifo(&self, subject: Subject, instance: &str, state: NotifyState, priority: u8) {
        let Ok(mut guard) = self.inner.fifo.lock() else {
            return;
        };
        let Some(fifo) = guard.as_mut() else {
            return;
        };
        let line = format!(
            "{} \"{instance}\" {} {priority}\n",
            subject.as_str(),
            state.as_str()
        );
        if let Err(e) = fifo.write_line(&line) {
            let n = self.inner.fifo_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning per 100 drops: a stalled reader must not turn into a log flood.
            if n % 100 != 1 {
                return;
            }
            tracing::warn!(
                fifo = %fifo.path.display(),
                dropped_total = n,
                "notify_fifo line dropped ({e}); is the reader running?"
            );
        }
    }

    fn enqueue(&self, instance: &str, job: Job) {
        let Ok(mut queues) = self.inner.queues.lock() else {
            return;
        };
        let queue = queues.entry(instance.to_owned()).or_insert_with(|| {
            let jobs = Arc::new(Jobs::new());
            let worker = self
                .inner
                .handle
                .spawn(worker(instance.to_owned(), jobs.clone()));
            // Group queues ("GROUP name") keep no state file.
            let state = (!instance.starts_with("GROUP ")).then(|| {
                let (want_tx, want_rx) = watch::channel((0, None));
                let (done_tx, done_rx) = watch::channel(0);
                let task = self.inner.handle.spawn(state_writer(
                    instance.to_owned(),
                    self.inner.state_dir.clone(),
                    want_rx,
                    done_tx,
                ));
                (want_tx, done_rx, task)
            });
            Queue {
                jobs,
                worker,
                state,
            }
        });
        // The state file goes to the writer at once: it shows the newest state even while
        // a script of an older transition runs.
        let mut job = job;
        if let Job::Transition {
            state, state_file, ..
        } = &mut job
        {
            if let (true, Some((want, _, _))) = (*state_file, &queue.state) {
                let st = *state;
                want.send_modify(|(seq, s)| {
                    *seq += 1;
                    *s = Some(st);
                });
            }
            *state_file = false;
        }
        if let Some(old) = queue.jobs.push(job) {
            let n = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning per 100 drops: a flapping instance must not flood the log.
            if n % 100 == 1 {
                tracing::warn!(
                    %instance,
                    dropped_total = n,
                    "notify queue full ({NOTIFY_QUEUE_LEN} transitions wait behind a running script): the {} notification was dropped, newer ones are kept",
                    old.as_str()
                );
            }
        }
    }

    /// How the notifications of `instance` keep up (`None`: it never notified).
    pub fn queue_stats(&self, instance: &str) -> Option<QueueStats> {
        let queues = self.inner.queues.lock().ok()?;
        queues.get(instance).map(|q| q.jobs.stats())
    }

    /// Notifications dropped so far, every queue together.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Wait until every notification queued so far has been carried out.
    pub async fn drain(&self) {
        let waits: Vec<oneshot::Receiver<()>> = {
            let Ok(queues) = self.inner.queues.lock() else {
                return;
            };
            queues
                .values()
                .map(|q| {
                    let (tx, rx) = oneshot::channel();
                    q.jobs.push(Job::Barrier(tx));
                    rx
                })
                .collect()
        };
        let states: Vec<(u64, watch::Receiver<u64>)> = match self.inner.queues.lock() {
            Ok(queues) => queues
                .values()
                .filter_map(|q| q.state.as_ref())
                .map(|(want, done, _)| (want.borrow().0, done.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        for w in waits {
            let _ = w.await;
        }
        for (seq, mut done) in states {
            let _ = done.wait_for(|d| *d >= seq).await;
        }
    }

    /// Finish every queued notification (e.g. the STOP ones at exit), then stop.
    pub async fn shutdown(self) {
        let queues: Vec<Queue> = match self.inner.queues.lock() {
            Ok(mut q) => q.drain().map(|(_, v)| v).collect(),
            Err(_) => Vec::new(),
        };
        for q in queues {
            q.jobs.close();
            let _ = q.worker.await;
            if let Some((want, _, task)) = q.state {
                drop(want);
                let _ = task.await;
            }
        }
    }
}

/// Writes the newest state of `instance` each time it changes; states that came and
/// went while a write was running are coalesced. The write runs on tokio's blocking pool:
/// the state directory may be slow, the engine thread must not wait for it.
async fn state_writer(
    instance: String,
    state_dir: PathBuf,
    mut want: watch::Receiver<StateSlot>,
    done: watch::Sender<u64>,
) {
    loop {
        let (seq, state) = *want.borrow_and_update();
        if let Some(state) = state {
            let (dir, name) = (state_dir.clone(), instance.clone());
            let written =
                tokio::task::spawn_blocking(move || write_state_file(&dir, &name, state)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(
                    %instance,
                    path = %state_file_path(&state_dir, &instance).display(),
                    "cannot write state file: {e}"
                ),
                Err(e) => tracing::error!(%instance, "state file writer failed: {e}"),
            }
        }
        done.send_replace(seq);
        if want.changed().await.is_err() {
            // The sender is gone; a value it sent just before is still unseen (tokio's
            // watch reports a change before the close), so nothing is lost here.
            break;
        }
    }
}

/// Runs the scripts of one queue, one job after another.
async fn worker(instance: String, jobs: Arc<Jobs>) {
    while let Some(job) = jobs.pop().await {
        jobs.running.store(true, Ordering::Relaxed);
        match job {
            Job::Barrier(done) => {
                let _ = done.send(());
            }
            // The state file went to the state writer when the job was queued.
            Job::Transition {
                state,
                priority,
                scripts,
                timeout,
                state_file: _,
            } => {
                for (cmd, args, user) in scripts {
                    let out = cmd.run(&args, user, timeout).await;
                    if out.status.success() {
                        tracing::debug!(%instance, state = state.as_str(), priority, script = cmd.source(), "notify script done");
                    } else {
                        tracing::warn!(%instance, state = state.as_str(), script = cmd.source(), "notify script {}", out.status);
                    }
                }
            }
        }
        jobs.running.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_names_stay_in_dir() {
        let d = Path::new("/run/haxdp");
        assert_eq!(
            state_file_path(d, "VI_1"),
            PathBuf::from("/run/haxdp/VI_1.state")
        );
        assert_eq!(
            state_file_path(d, "../x"),
            PathBuf::from("/run/haxdp/_._x.state")
        );
        assert_eq!(
            state_file_path(d, "a/b"),
            PathBuf::from("/run/haxdp/a_b.state")
        );
    }

    #[test]
    fn state_words() {
        assert_eq!(
            [
                NotifyState::Master,
                NotifyState::Backup,
                NotifyState::Fault,
                NotifyState::Stop
            ]
            .map(NotifyState::as_str),
            ["MASTER", "BACKUP", "FAULT", "STOP"]
        );
    }

    #[test]
    fn validate_catches_bad_strings() {
        let mut s = NotifySpec {
            notify: Some("/etc/keepalived/notify.sh".into()),
            notify_master: Some("/etc/keepalived/notify.sh master".into()),
            ..NotifySpec::default()
        };
        assert!(s.validate().is_ok());
        assert!(s.keepalived_divergences().is_empty());
        s.notify_backup = Some("/etc/keepalived/notify.sh backup > /dev/null".into());
        assert_eq!(s.keepalived_divergences().len(), 1);
        s.notify_fault = Some("/x 'unterminated".into());
        assert!(s.validate().is_err());
    }

    /// A notify script slower than the instance flaps: the queue stays bounded, drops are
    /// counted, the newest state runs last and the state file shows it at once.
    #[test]
    fn flapping_instance_queue_bounded_newest_kept() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("haxdp-notify-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("dir");
            let log = dir.join("log");
            let script = dir.join("n.sh");
            std::fs::write(
                &script,
                format!("#!/bin/sh\nsleep 0.2\necho \"$3\" >> {}\n", log.display()),
            )
            .expect("script");
            std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
            let n = Notifier::new(dir.join("state")).expect("notifier");
            let spec = NotifySpec {
                notify: Some(script.display().to_string().into()),
                ..NotifySpec::default()
            };
            let flaps = 20;
            for k in 0..flaps {
                let st = if k % 2 == 0 {
                    NotifyState::Backup
                } else {
                    NotifyState::Master
                };
                n.transition("VI_1", &spec, st, 100);
            }
            let stats = n.queue_stats("VI_1").expect("queue");
            assert!(stats.depth <= NOTIFY_QUEUE_LEN, "{stats:?}");
            // The state file does not wait behind the scripts (20 x 0.2 s).
            let sf = n.state_file("VI_1");
            let mut shown = String::new();
            for _ in 0..100 {
                shown = std::fs::read_to_string(&sf).unwrap_or_default();
                if shown == "STATE=MASTER\n" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(shown, "STATE=MASTER\n");
            n.drain().await;
            let ran: Vec<String> = std::fs::read_to_string(&log)
                .expect("log")
                .lines()
                .map(str::to_owned)
                .collect();
            let stats = n.queue_stats("VI_1").expect("queue");
            assert_eq!(stats.max_depth, NOTIFY_QUEUE_LEN, "{stats:?}");
            assert_eq!(ran.len() as u64 + stats.dropped, flaps, "{ran:?} {stats:?}");
            assert!(ran.len() <= 1 + NOTIFY_QUEUE_LEN, "{ran:?}");
            assert_eq!(ran.last().map(String::as_str), Some("MASTER"), "{ran:?}");
            assert_eq!(n.dropped(), stats.dropped);
            n.shutdown().await;
            let _ = std::fs::remove_dir_all(&dir);
        });
    }

    /// A user that was not resolved at load is never looked up at a transition.
    #[test]
    fn unresolved_user_is_skipped_not_looked_up() {
        let mut c = NotifyCommand {
            command: "/bin/true".into(),
            user: Some("root".into()),
            run_as: None,
        };
        c.resolve().expect("root resolves");
        assert_eq!(c.run_as.map(|u| u.uid), Some(0));
    }
}
