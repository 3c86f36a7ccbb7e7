//! `haxdp run`: the daemon's engine.
//!
//! One task owns every instance's sans-IO state machine and is the only
//! writer of VIPs, adverts and notifications. Everything else (the XDP ring
//! buffer, the socket receive path, the netlink monitor, the tracker,
//! signals) sends it events over one channel, so the order in which an
//! instance sees inputs is the order they happened.

mod deadlines;
mod effects;
mod events;
/// The engine's side of a planned restart (`crate::handover` is the protocol).
mod handover;
mod instances;
mod receive;
/// The resume checkpoint: a restart after a crash takes the mastership back.
mod resume;
mod status;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use haxdp_vrrp::node::{self as election, Member};
use haxdp_vrrp::{FaultCause, Instance};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::advert_socket::{self, AdvertSocket};
use crate::clock;
use crate::control::{self, Status};
use crate::garp::GarpSender;
use crate::netlink::{NetEvent, Netlink, Vip};
use crate::notify::Notifier;
use crate::spec::{self, DaemonSpec, InstanceSpec};
use crate::track::{CheckState, TrackEvent, TrackKey, Tracker};
use crate::xdp::rx::KernelRx;

use effects::Upkeep;
use events::{ev_channel, EvTx};
use resume::RESUME_EVERY;

/// In the state dir: the protected PEERS records a stopping daemon leaves its successor.
const PEERS_CHECKPOINT: &str = "peers.checkpoint";

/// How the daemon receives adverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveChoice {
    /// XDP native, else XDP skb, else the raw socket.
    Auto,
    /// The raw socket only (no XDP), e.g. where another program owns the XDP hook.
    Socket,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub receive: ReceiveChoice,
    /// Started by a running daemon's `haxdp upgrade`: its end of the hand-over socket
    /// (`crate::handover`).
    pub handover_fd: Option<i32>,
}

#[derive(Debug)]
enum Ev {
    /// A changed advert reported by the XDP program.
    Kernel(Box<haxdp_common::AdvertEvent>),
    /// An advert from the socket receive path.
    Socket {
        ifindex: u32,
        rx: advert_socket::Received,
    },
    Net(NetEvent),
    Track(TrackEvent),
    Signal(Sig),
    /// Periodic upkeep: prune silent peers from the XDP program's PEERS map.
    Housekeeping,
    /// `haxdp status`: the engine answers with a snapshot.
    Status(tokio::sync::oneshot::Sender<Status>),
    /// Time to rewrite the resume checkpoint (`RESUME_FILE`).
    Checkpoint,
    /// A reload's configuration, read and checked off the engine thread.
    Reloaded(Box<Result<(DaemonSpec, Vec<haxdp_config::Diagnostic>), String>>),
    /// `haxdp upgrade`: hand over to a successor process; the answer for the operator.
    Upgrade(tokio::sync::oneshot::Sender<(bool, String)>),
    /// A step of a hand-over this daemon drives (`handover::Step`).
    Handover(handover::Step),
    /// The XDP program a fresh start loads in the background (`Engine::on_xdp_loaded`).
    XdpLoaded(XdpLoad),
}

/// The outcome of loading the XDP program off the engine thread.
struct XdpLoad(Box<Result<KernelRx, crate::xdp::rx::XdpLoaderError>>);

impl std::fmt::Debug for XdpLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Ok(_) => f.write_str("XdpLoad(loaded)"),
            Err(e) => write!(f, "XdpLoad({e})"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Sig {
    Term,
    Hup,
    Usr1,
    /// keepalived's STATS (SIGUSR2): `keepalived.stats`.
    Usr2,
    /// keepalived's STATS_CLEAR (SIGRTMAX-1): `keepalived.stats`, then counters cleared.
    StatsClear,
    /// keepalived's JSON (SIGRTMIN+2): `keepalived.json`.
    Json,
}

/// An advert waiting for the end of a deadline pass: the socket, the message (or
/// messages) and where to, the instance it is for.
struct Batched<T = Frame>(Arc<AdvertSocket>, T, usize);

/// An encoded advert and its destination.
type Frame = (Vec<u8>, IpAddr);

/// Where an instance's adverts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RxPath {
    XdpNative,
    XdpSkb,
    Socket,
}

impl RxPath {
    fn name(self) -> &'static str {
        match self {
            RxPath::XdpNative => "xdp-native",
            RxPath::XdpSkb => "xdp-skb",
            RxPath::Socket => "socket",
        }
    }
}

/// One running instance: the state machine and everything it acts on.
struct Inst {
    spec: InstanceSpec,
    core: Instance,
    ifindex: u32,
    mac: [u8; 6],
    link_up: bool,
    vips: Vec<Vip>,
    sock: Arc<AdvertSocket>,
    dsts: Vec<IpAddr>,
    rx: RxPath,
    garp: Option<JoinHandle<()>>,
    /// Changes of tracked items, by name: up/down and value (track_file).
    tracked: HashMap<TrackKey, CheckState>,
    priority_reasons: Vec<String>,
    fault_reasons: Vec<FaultCause>,
    transitions_wall: Vec<(u64, u64)>,
    /// Faulty of its own making as of the last `apply`, to see sync-group changes.
    in_fault: bool,
    /// A sync-group member whose Master_Down_Timer expired but which waits for
    /// the other members to want Master too (see `haxdp_vrrp::node::expire`).
    held: bool,
    /// Adverts the state machine ignored, by reason: keyed by `DiscardReason::name`, the
    /// names status and the hand-over snapshot count them under.
    discards: std::collections::BTreeMap<String, u64>,
    /// The master this backup follows, protected in PEERS so that spoofed sources can
    /// never take its room (`KernelRx::protect_peer`).
    protected: Option<IpAddr>,
    /// The SEEN entry of `protected`'s record, in which the XDP program keeps the
    /// master's newest advert time for the backup's refresh (`KernelRx::seen_ns`).
    seen: Option<(IpAddr, u16)>,
    /// Refused PEERS sources already logged.
    refused_logged: u64,
    /// VIP retries and lower-priority GARPs (issue 17).
    upkeep: Upkeep,
    /// (last transition, priority-0 adverts sent) as `log_keepalived_lines` last saw.
    lines_seen: (u64, u64),
    /// The Master_Down_Timer deadline whose receive-path pre-check has run
    /// (`Engine::on_deadlines`), so that it wakes the engine once.
    prechecked_for: Option<u64>,
}

impl Member for Inst {
    fn core(&self) -> &Instance {
        &self.core
    }
    fn core_mut(&mut self) -> &mut Instance {
        &mut self.core
    }
    fn sync_group(&self) -> Option<&str> {
        self.spec.sync_group.as_deref()
    }
    fn held(&self) -> bool {
        self.held
    }
    fn set_held(&mut self, held: bool) {
        self.held = held;
    }
}

struct Engine {
    opts: RunOptions,
    spec: DaemonSpec,
    insts: Vec<Inst>,
    fast: Option<KernelRx>,
    /// A fresh start loads the XDP program on a blocking thread while its instances
    /// already run on raw sockets: since when (CLOCK_MONOTONIC ns), until `Ev::XdpLoaded`.
    xdp_loading: Option<u64>,
    /// What a crashed predecessor's XDP program saw until it died (its pinned PEERS,
    /// read before the fresh load removes the pins), for the resume decision.
    crashed_peers: Vec<(haxdp_common::PeerKey, haxdp_common::PeerState)>,
    attached: HashMap<String, RxPath>,
    sockets: HashMap<(u32, IpAddr), Arc<AdvertSocket>>,
    socket_tasks: HashMap<(u32, IpAddr), JoinHandle<()>>,
    nl: Netlink,
    garp: Arc<GarpSender>,
    notifier: Notifier,
    tracker: Option<Tracker>,
    tx: EvTx,
    started_unix_ms: u64,
    /// Sync-group members whose Fault state changed, to propagate.
    sync_queue: Vec<(usize, bool)>,
    /// The state each `vrrp_sync_group` last notified, so its scripts run once per
    /// group transition rather than once per member.
    group_states: std::collections::HashMap<String, crate::notify::NotifyState>,
    /// Adverts the socket receive path dropped, by the XDP program's reasons.
    socket_drops: std::collections::BTreeMap<haxdp_common::DropReason, u64>,
    /// The outcome of the last reload, for `status`.
    last_reload: Option<control::ReloadStatus>,
    /// Instances waiting for their interface to appear (`dynamic_interfaces`).
    pending: Vec<InstanceSpec>,
    /// Kernel reports the event queue dropped, as of the last re-request.
    reports_dropped_seen: u64,
    /// How this daemon started (fresh, resumed after a crash), for `status` and the log.
    start_mode: String,
    resume_write_failed: bool,
    /// The resume checkpoint on disk names no master: rewriting it says nothing new.
    resume_idle: bool,
    /// An advert has reached the election since the process started (logged once).
    first_heard: bool,
    stopping: bool,
    /// Handing over: timers stop until the successor confirms or fails.
    frozen: bool,
    /// Handing over, the state sent: events are ignored too.
    handed: bool,
    /// A TERM that arrived while frozen, acted on if the hand-over rolls back.
    term_pending: bool,
    /// A hand-over is under way (one at a time).
    upgrading: bool,
    /// The task reading the XDP event ring, stopped at a hand-over.
    ring_task: Option<JoinHandle<()>>,
    /// The control socket's accept loop, closed at a hand-over.
    control_task: Option<JoinHandle<()>>,
    /// A successor: the predecessor's pinned XDP links, by interface, with its receive
    /// path there.
    adopt_links: std::collections::BTreeMap<String, String>,
    /// After a crash: the masters' adverts, sent while this process starts.
    bridge: Option<resume::Bridge>,
    /// Adverts collected during a deadline pass, sent together (`flush_batch`).
    batch: Option<Vec<Batched>>,
    /// When each interface's receive path was last found live (`check_receive_path`).
    rx_checked: HashMap<String, u64>,
}

/// Runs the daemon until TERM/INT; returns the exit code.
pub async fn run(opts: RunOptions) -> anyhow::Result<i32> {
    // A successor says hello once it has read its configuration, and is told to go on
    // (the predecessor pinned its links) or refused.
    let mut channel = match opts.handover_fd {
        Some(fd) => Some(crate::handover::Channel::from_fd(fd)?),
        None => None,
    };
    // After a crash, first of all: keep advertising the masters (`resume`).
    let bridge = match channel {
        None => resume::Bridge::start(&opts.state_dir),
        Some(_) => None,
    };
    let spec = match spec::load(&opts.config) {
        Ok((spec, diags)) => {
            for d in &diags {
                crate::logging::diagnostic(d);
            }
            spec
        }
        Err(e) => {
            error!("{}", e.render());
            if let Some(ch) = channel.as_mut() {
                let why = format!("the new daemon refuses the configuration: {}", e.render());
                let _ = ch.send(&crate::handover::Msg::Refuse { why }).await;
            }
            return Ok(e.exit_code());
        }
    };
    let mut adopt_links = std::collections::BTreeMap::new();
    if let Some(ch) = channel.as_mut() {
        match handover::hello(ch).await {
            Ok(links) => adopt_links = links,
            Err(why) => {
                error!("hand-over: {why}; exiting, the running daemon goes on");
                return Ok(1);
            }
        }
    }
    let (tx, mut rx) = ev_channel();
    spawn_signals(tx.clone())?;
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RESUME_EVERY);
            loop {
                every.tick().await;
                if tx.offer(Ev::Checkpoint).is_err() {
                    break;
                }
            }
        });
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                // Periodic: a tick the full queue has no room for is dropped (counted).
                if tx.offer(Ev::Housekeeping).is_err() {
                    break;
                }
            }
        });
    }

    // A successor binds the control socket when its predecessor has let it go.
    let listener = match channel {
        None => Some(control::bind()?),
        Some(_) => None,
    };
    let nl = Netlink::open()?;
    let mut netev = crate::netlink::monitor()?;
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = netev.recv().await {
                if tx.send(Ev::Net(ev)).await.is_err() {
                    break;
                }
            }
        });
    }
    let mut xdp_loading = None;
    let mut crashed_peers = Vec::new();
    let fast = match (opts.receive, channel.as_mut()) {
        (ReceiveChoice::Socket, _) => None,
        (ReceiveChoice::Auto, Some(ch)) => match handover::load_fast(&adopt_links) {
            Ok(f) => f,
            Err(why) => {
                error!("hand-over refused: {why}");
                let _ = ch.send(&crate::handover::Msg::Refuse { why }).await;
                return Ok(1);
            }
        },
        (ReceiveChoice::Auto, None) => {
            // The verifier takes most of a start (about 0.1 s for our program): the
            // instances start on raw sockets at once and move to XDP when it is loaded,
            // so that a start is deaf only until its sockets are open. The crashed
            // predecessor's records are read first: the load removes its pins.
            crashed_peers = crate::xdp::loader::crashed_peers();
            xdp_loading = Some(clock::monotonic_ns());
            let tx = tx.clone();
            let previous = crashed_peers.clone();
            tokio::task::spawn_blocking(move || {
                let loaded = KernelRx::load_after_crash(&previous);
                let loaded = Ev::XdpLoaded(XdpLoad(Box::new(loaded)));
                // The engine has stopped: the program and its pins go with `loaded`.
                let _ = tx.tx.blocking_send(loaded);
            });
            None
        }
    };
    let mut notifier = Notifier::new(opts.state_dir.clone())?;
    if let Some(fifo) = &spec.notify_fifo {
        notifier = notifier.with_fifo(fifo)?;
    }
    let mut eng = Engine {
        opts: opts.clone(),
        spec,
        insts: Vec::new(),
        fast,
        xdp_loading,
        crashed_peers,
        attached: HashMap::new(),
        sockets: HashMap::new(),
        socket_tasks: HashMap::new(),
        nl,
        garp: Arc::new(GarpSender::open()?),
        notifier,
        tracker: None,
        tx: tx.clone(),
        started_unix_ms: control::unix_ms(),
        sync_queue: Vec::new(),
        group_states: std::collections::HashMap::new(),
        socket_drops: Default::default(),
        last_reload: None,
        pending: Vec::new(),
        reports_dropped_seen: 0,
        start_mode: String::new(),
        resume_write_failed: false,
        resume_idle: false,
        first_heard: false,
        stopping: false,
        frozen: false,
        handed: false,
        term_pending: false,
        upgrading: false,
        ring_task: None,
        control_task: None,
        adopt_links,
        bridge,
        batch: None,
        rx_checked: HashMap::new(),
    };
    if let Some(mut ch) = channel {
        // The predecessor's maps are ours already (the same PEERS, the same ring): no
        // checkpoint to restore; the ring is read once the predecessor stopped reading.
        if let Err(why) = eng.take_over(&mut ch).await {
            error!("hand-over failed: {why}; exiting, the running daemon goes on");
            let _ = ch.send(&crate::handover::Msg::Refuse { why }).await;
            return Ok(1);
        }
    } else {
        eng.start_fresh(listener).await?;
    }
    // Loading and verifying the XDP object and reading the configuration
    // leave megabytes of freed heap behind; give them back to the kernel.
    // SAFETY: malloc_trim only releases free memory of glibc's allocator.
    unsafe { libc::malloc_trim(0) };
    info!(
        "haxdp running {} instance(s) from {}",
        eng.insts.len(),
        eng.opts.config.display()
    );
    crate::sd::ready(&format!("running {} instance(s)", eng.insts.len()));
    let mut watchdog = crate::sd::Watchdog::from_env();
    let mut metrics = crate::metrics::Publisher::new();
    let mut timer = crate::deadline::DeadlineTimer::new()?;
    loop {
        // systemd's watchdog is fed from this loop, so a hung engine misses it.
        watchdog.tick();
        eng.sd_reload_outcome();
        // A transition is published at once; everything else at the snapshot cadence.
        let changed = eng.log_keepalived_lines();
        if metrics.due_now() || (changed && crate::metrics::enabled()) {
            eng.publish_metrics();
        }
        // Handing over: the timers wait for the outcome.
        let deadline = if eng.frozen {
            None
        } else {
            eng.next_deadline()
        };
        // An absolute CLOCK_MONOTONIC deadline on a timerfd: no millisecond rounding
        // (`crate::deadline`).
        if let Err(e) = timer.set(deadline) {
            error!("cannot arm the engine's timer: {e}");
        }
        tokio::select! {
            _ = watchdog.due() => {}
            _ = metrics.due() => {}
            r = timer.fired() => {
                if let Err(e) = r {
                    error!("the engine's timer failed: {e}");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // Events already queued happened before this deadline was
                // acted on: handle them first (bounded, so that a flood
                // cannot starve a master's advert timer).
                for _ in 0..1024 {
                    let Ok(ev) = rx.try_recv() else { break };
                    if let Some(code) = eng.handle_event(ev).await {
                        return Ok(code);
                    }
                }
                if !eng.frozen {
                    eng.on_deadlines(clock::monotonic_ns()).await;
                    eng.flush_sync().await;
                }
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                if let Some(code) = eng.handle_event(ev).await {
                    return Ok(code);
                }
            }
        }
    }
    Ok(0)
}

impl Engine {
    /// Reads the XDP event ring into the engine's queue. The ring's callback cannot wait:
    /// with the queue full the event is dropped and counted, and the engine then asks the
    /// program to report every live peer again (`rerequest_lost_reports`).
    fn spawn_ring(&mut self) -> anyhow::Result<()> {
        if let Some(f) = self.fast.as_mut() {
            let tx = self.tx.clone();
            self.ring_task =
                Some(f.spawn_events(move |ev| tx.offer(Ev::Kernel(Box::new(ev))).is_ok())?);
        }
        Ok(())
    }

    /// Serves `haxdp status` and `haxdp upgrade` on the control socket.
    fn spawn_control(&mut self, listener: tokio::net::UnixListener) {
        let tx = self.tx.clone();
        let utx = self.tx.clone();
        self.control_task = Some(tokio::spawn(control::serve(
            listener,
            move || {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let sent = matches!(tx.offer(Ev::Status(reply)), Ok(true));
                async move {
                    if sent {
                        answer.await.ok()
                    } else {
                        None
                    }
                }
            },
            move || {
                let (reply, answer) = tokio::sync::oneshot::channel();
                let sent = matches!(utx.offer(Ev::Upgrade(reply)), Ok(true));
                async move {
                    if sent {
                        answer.await.ok()
                    } else {
                        None
                    }
                }
            },
        )));
    }
}

fn spawn_signals(tx: EvTx) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // keepalived 2.2.7's signals (`--signum`); every other signal whose default would end
    // the process does nothing (see `ops::neutral_signals`), so only the stop sequence
    // ends the daemon. QUIT stops like TERM rather than dumping core.
    crate::ops::neutralize_signals()?;
    for (kind, sig) in [
        (SignalKind::terminate(), Sig::Term),
        (SignalKind::interrupt(), Sig::Term),
        (SignalKind::quit(), Sig::Term),
        (SignalKind::hangup(), Sig::Hup),
        (SignalKind::user_defined1(), Sig::Usr1),
        (SignalKind::user_defined2(), Sig::Usr2),
        (
            SignalKind::from_raw(crate::ops::sig_stats_clear()),
            Sig::StatsClear,
        ),
        (SignalKind::from_raw(crate::ops::sig_json()), Sig::Json),
    ] {
        let mut s = signal(kind)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(Ev::Signal(sig)).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

impl Engine {
    /// Handles one event; `Some(code)` when the daemon must exit.
    async fn handle_event(&mut self, ev: Ev) -> Option<i32> {
        if self.handed {
            // The successor has this daemon's state: nothing may change it now. A TERM
            // is kept for a rollback; on success the successor runs on.
            match ev {
                Ev::Handover(step) => return self.on_step(step).await,
                Ev::Status(reply) => {
                    let _ = reply.send(self.snapshot());
                }
                Ev::Signal(Sig::Term) => self.term_pending = true,
                _ => {}
            }
            return None;
        }
        match ev {
            Ev::Handover(step) => return self.on_step(step).await,
            Ev::XdpLoaded(XdpLoad(r)) => self.on_xdp_loaded(*r).await,
            Ev::Upgrade(reply) => self.start_upgrade(reply),
            Ev::Signal(Sig::Term) => {
                info!("haxdp stopping");
                crate::sd::stopping();
                self.shutdown_all().await;
                info!("haxdp stopped");
                return Some(0);
            }
            Ev::Signal(Sig::Hup) => {
                // READY=1 follows when the reload has an outcome (`sd_reload_outcome`).
                crate::sd::reloading(self.reload_outcome_now());
                self.reload().await
            }
            Ev::Reloaded(parsed) => self.finish_reload(*parsed).await,
            Ev::Signal(Sig::Usr1) => self.dump_state(),
            Ev::Signal(Sig::Usr2) => self.dump_keepalived(crate::ops::Dump::Stats),
            Ev::Signal(Sig::StatsClear) => self.dump_keepalived(crate::ops::Dump::StatsClear),
            Ev::Signal(Sig::Json) => self.dump_keepalived(crate::ops::Dump::Json),
            Ev::Kernel(k) => self.on_kernel_advert(*k).await,
            Ev::Socket { ifindex, rx } => self.on_socket_advert(ifindex, rx).await,
            Ev::Net(n) => self.on_net(n).await,
            Ev::Track(t) => self.on_track(t).await,
            Ev::Housekeeping => self.housekeeping().await,
            Ev::Checkpoint => self.write_resume(),
            Ev::Status(reply) => {
                let _ = reply.send(self.snapshot());
            }
        }
        self.flush_sync().await;
        self.rerequest_lost_reports();
        None
    }

    /// A kernel report dropped because the event queue was full is a change the core did
    /// not hear (the delivery contract reports each change once): ask the XDP program to
    /// report every live peer of every instance again.
    fn rerequest_lost_reports(&mut self) {
        let dropped = self
            .tx
            .stats
            .dropped_kernel
            .load(std::sync::atomic::Ordering::Relaxed);
        if dropped == self.reports_dropped_seen {
            return;
        }
        self.reports_dropped_seen = dropped;
        let Some(f) = self.fast.as_mut() else {
            return;
        };
        for inst in self.insts.iter().filter(|i| i.rx != RxPath::Socket) {
            if let Err(e) = f.request_reports(inst.ifindex, inst.core.config()) {
                warn!("{} vrid {}: {e}", inst.spec.ifname, inst.spec.core.vrid);
            }
        }
    }

    /// `vrrp_sync_group`: members move together. When one member enters
    /// Fault (a tracked check or its interface failed), keepalived puts the
    /// whole group in Fault so that the peer takes every member's VIPs;
    /// when it leaves Fault, the others are released too.
    async fn flush_sync(&mut self) {
        let mut rounds = 0;
        while let Some((i, faulted)) = self.sync_queue.pop() {
            rounds += 1;
            if rounds > 4 * self.insts.len() + 4 {
                break;
            }
            let now = clock::monotonic_ns();
            let mut out = election::Out::new();
            election::propagate_fault(&mut self.insts, i, faulted, now, &mut out);
            self.apply_out(out).await;
        }
    }

    /// PEERS is a bounded map that never evicts (so a flood of spoofed
    /// sources cannot push the master out); silent peers are removed here
    /// instead, long after any master-down interval has passed.
    async fn housekeeping(&mut self) {
        self.reconcile_links().await;
        let xdp: Vec<String> = self
            .attached
            .iter()
            .filter(|(_, p)| **p != RxPath::Socket)
            .map(|(n, _)| n.clone())
            .collect();
        for ifname in xdp {
            self.check_receive_path(&ifname).await;
        }
        let longest = self
            .insts
            .iter()
            .map(|i| i.core.master_down_interval_ns())
            .max()
            .unwrap_or(0);
        let keep_ns = (10 * longest).max(60_000_000_000);
        for i in 0..self.insts.len() {
            self.log_refused_peers(i, false);
        }
        if let Some(f) = self.fast.as_mut() {
            match f.prune(keep_ns) {
                Ok(0) => {}
                Ok(n) => info!("forgot {n} silent VRRP peer(s) from the XDP PEERS map"),
                Err(e) => warn!("cannot prune the XDP PEERS map: {e}"),
            }
        }
    }
}
