//! `haxdp run`: the daemon's engine.
//!
//! One task owns every instance's sans-IO state machine and is the only
//! writer of VIPs, adverts and notifications. Everything else (the XDP ring
//! buffer, the socket receive path, the netlink monitor, the tracker,
//! signals) sends it events over one channel, so the order in which an
//! instance sees inputs is the order they happened.

mod deadlines;
mod events;
/// The engine's side of a planned restart (`crate::handover` is the protocol).
mod handover;
/// The resume checkpoint: a restart after a crash takes the mastership back.
mod resume;
mod status;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use haxdp_vrrp::node::{self as election, Member};
use haxdp_vrrp::{Action, Family, Input, Instance, InstanceConfig, State};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::control::{self, Status};
use crate::garp::GarpSender;
use crate::kernel_rx::{self as fastpath, KernelRx as Fastpath};
use crate::netio::{self, AdvertSocket};
use crate::notify::Notifier;
use crate::spec::{self, DaemonSpec, GarpTiming, InstanceSpec};
use crate::track::{self, CheckState, ItemKind, TrackEvent, Tracker};
use crate::vip::{NetEvent, Netlink, Vip};

use deadlines::PeersView;
use events::{ev_channel, EvTx};
use resume::{RESUME_EVERY, RESUME_FILE};

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
        rx: netio::Received,
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
    tracked: HashMap<String, CheckState>,
    priority_reasons: Vec<String>,
    fault_reasons: Vec<String>,
    transitions_wall: Vec<(u64, u64)>,
    /// Faulty of its own making as of the last `apply`, to see sync-group changes.
    in_fault: bool,
    /// A sync-group member whose Master_Down_Timer expired but which waits for
    /// the other members to want Master too (see `haxdp_vrrp::node::expire`).
    held: bool,
    /// Adverts the state machine ignored, by reason.
    discards: std::collections::BTreeMap<String, u64>,
    /// The master this backup follows, protected in PEERS so that spoofed sources can
    /// never take its room (`KernelRx::protect_peer`).
    protected: Option<IpAddr>,
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
    fast: Option<Fastpath>,
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
    let mut netev = crate::vip::monitor()?;
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
        (ReceiveChoice::Auto, None) => match Fastpath::load() {
            Ok(f) => Some(f),
            Err(e) => {
                warn!("XDP fast path unavailable, receiving adverts on raw sockets: {e}");
                None
            }
        },
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
                    eng.on_deadlines(netio::monotonic_ns()).await;
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
    /// A fresh start (or one after a crash): the checkpointed peers, the ring, the
    /// control socket, every instance.
    async fn start_fresh(
        &mut self,
        listener: Option<tokio::net::UnixListener>,
    ) -> anyhow::Result<()> {
        if let Some(f) = self.fast.as_mut() {
            // The routers the previous daemon protected get their room in PEERS back before
            // any advert is tracked: spoofed sources cannot take it while we start.
            let path = self.opts.state_dir.join(PEERS_CHECKPOINT);
            match f.restore_checkpoint(&path) {
                Ok(0) => {}
                Ok(n) => info!("{n} known VRRP router(s) carried over from the previous daemon"),
                Err(e) => warn!("cannot read {}: {e}", path.display()),
            }
        }
        self.spawn_ring()?;
        if let Some(l) = listener {
            self.spawn_control(l);
        }
        self.start_all().await
    }

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
            let now = netio::monotonic_ns();
            let mut out = election::Out::new();
            election::propagate_fault(&mut self.insts, i, faulted, now, &mut out);
            self.apply_out(now, out).await;
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

    async fn start_all(&mut self) -> anyhow::Result<()> {
        let specs = self.spec.instances.clone();
        for s in specs {
            if self.waits_for_interface(&s).await {
                continue;
            }
            let inst = self.build_instance(s).await?;
            self.insts.push(inst);
        }
        self.restart_tracker().await;
        let now = netio::monotonic_ns();
        let resume = self.resume_candidates(now);
        // The resumed instances advertise themselves from here on.
        if let Some(b) = self.bridge.take() {
            b.stop();
        }
        for i in 0..self.insts.len() {
            if resume.contains(&i) {
                self.resume_instance(i, now).await;
            } else {
                self.start_instance(i, now).await;
            }
        }
        Ok(())
    }

    /// Resolves an instance's interface, addresses and sockets, and tells the
    /// XDP program to watch its VRID.
    async fn build_instance(&mut self, spec: InstanceSpec) -> anyhow::Result<Inst> {
        let link = self
            .nl
            .link_by_name(&spec.ifname)
            .await
            .map_err(|e| anyhow::anyhow!("{}: vrid {}: {e}", spec.core.name, spec.core.vrid))?;
        let v6 = spec.core.family == Family::V6;
        let vip_addrs: Vec<IpAddr> = spec.vips.iter().map(|v| v.addr).collect();
        let src = match spec.src_addr {
            Some(a) => a,
            None => self
                .nl
                .primary_address(link.ifindex, &link.name, v6, &vip_addrs)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: {} vrid {}: the interface has no {} address to send adverts from; \
                         add one or set unicast_src_ip / mcast_src_ip",
                        spec.core.name,
                        spec.ifname,
                        spec.core.vrid,
                        if v6 { "IPv6 link-local" } else { "IPv4" }
                    )
                })?,
        };
        let vips = self.resolve_vips(&spec, link.ifindex).await?;
        let rx = self.receive_path(&link.name);
        let sock = self.socket(
            &link.name,
            link.ifindex,
            src,
            spec.mcast_group,
            rx == RxPath::Socket,
        )?;
        let dsts = if spec.unicast_peers.is_empty() {
            vec![spec.mcast_group]
        } else {
            spec.unicast_peers.clone()
        };
        if let Some(f) = self.fast.as_mut() {
            if rx != RxPath::Socket {
                // Configured unicast peers always have room in PEERS; with
                // check_unicast_src or haxdp_allowed_peers nobody else may speak.
                f.watch_instance(
                    link.ifindex,
                    &spec.core,
                    spec.auth_type(),
                    &spec.unicast_peers,
                    spec.allowed_sources.as_deref(),
                )?;
            }
        }
        let mut cfg: InstanceConfig = spec.core.clone();
        cfg.primary_addr = src;
        let core = Instance::new(cfg)?;
        Ok(Inst {
            core,
            ifindex: link.ifindex,
            mac: link.mac.unwrap_or([0; 6]),
            link_up: link.up,
            vips,
            sock,
            dsts,
            rx,
            garp: None,
            tracked: HashMap::new(),
            priority_reasons: Vec::new(),
            fault_reasons: Vec::new(),
            transitions_wall: Vec::new(),
            in_fault: false,
            held: false,
            discards: Default::default(),
            protected: None,
            refused_logged: 0,
            upkeep: Upkeep::default(),
            lines_seen: (0, 0),
            prechecked_for: None,
            spec,
        })
    }

    /// XDP on the interface if possible (attached once per interface).
    fn receive_path(&mut self, ifname: &str) -> RxPath {
        if let Some(p) = self.attached.get(ifname) {
            return *p;
        }
        // A successor: the predecessor's link, our program on it (`handover`).
        let adopt = self.adopt_links.remove(ifname);
        let adopted = match (self.fast.as_mut(), adopt.as_deref()) {
            (Some(f), Some(path)) => match f.adopt_link(ifname) {
                Ok(()) if path == "xdp-skb" => Some(RxPath::XdpSkb),
                Ok(()) => Some(RxPath::XdpNative),
                Err(e) => {
                    warn!("{ifname}: {e}; attaching afresh");
                    None
                }
            },
            _ => None,
        };
        let p = match self.fast.as_mut() {
            None => RxPath::Socket,
            Some(_) if adopted.is_some() => adopted.unwrap_or(RxPath::XdpNative),
            Some(f) => {
                match f.attach(ifname) {
                    Ok(fastpath::XdpAttachMode::Native) => RxPath::XdpNative,
                    Ok(fastpath::XdpAttachMode::Skb) => RxPath::XdpSkb,
                    Err(e) => {
                        warn!("{ifname}: XDP cannot be attached, receiving adverts on a raw socket: {e}");
                        RxPath::Socket
                    }
                }
            }
        };
        info!("{ifname}: receive path {}", p.name());
        self.attached.insert(ifname.to_string(), p);
        p
    }

    /// One advert socket per (interface, source address), shared by instances.
    fn socket(
        &mut self,
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        group: IpAddr,
        receive: bool,
    ) -> anyhow::Result<Arc<AdvertSocket>> {
        if let Some(s) = self.sockets.get(&(ifindex, src)) {
            return Ok(s.clone());
        }
        let s = Arc::new(AdvertSocket::open(ifname, ifindex, src, group, receive)?);
        if receive {
            let tx = self.tx.clone();
            let rs = s.clone();
            let name = ifname.to_string();
            let task = tokio::spawn(async move {
                loop {
                    match rs.recv().await {
                        Ok(rx) => {
                            if tx.send(Ev::Socket { ifindex, rx }).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            warn!("{name}: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
            self.socket_tasks.insert((ifindex, src), task);
        }
        self.sockets.insert((ifindex, src), s.clone());
        Ok(s)
    }

    async fn restart_tracker(&mut self) {
        if let Some(t) = self.tracker.take() {
            t.shutdown().await;
        }
        let (ttx, mut trx) = mpsc::channel(256);
        let mut t = Tracker::new(ttx);
        let checks = &self.spec.checks;
        for s in &checks.scripts {
            if let Err(e) = t.add_script(s.clone()) {
                error!("vrrp_script {}: {e}", s.name);
            }
        }
        for f in &checks.files {
            if let Err(e) = t.add_file(f.clone()) {
                error!("track_file {}: {e}", f.name);
            }
        }
        for n in &checks.nginx {
            if let Err(e) = t.add_nginx(n.clone()) {
                error!("vrrp_nginx_check {}: {e}", n.name);
            }
        }
        self.tracker = Some(t);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = trx.recv().await {
                if tx.send(Ev::Track(ev)).await.is_err() {
                    break;
                }
            }
        });
    }

    async fn start_instance(&mut self, i: usize, now: u64) {
        // A crash may have left our VIPs behind: remove them before the
        // election, so that two nodes never hold them (RFC 9568 6.4.1 starts
        // in Backup unless we own the addresses).
        let acts = self.insts[i].core.handle(now, Input::Startup);
        self.apply(i, now, acts).await;
        if !self.insts[i].link_up && !self.insts[i].spec.dont_track_primary {
            let acts = self.insts[i].core.handle(now, Input::InterfaceDown);
            self.apply(i, now, acts).await;
        }
        self.recompute_priority(i, now).await;
    }

    fn find(&self, ifindex: u32, family: Family, vrid: u8) -> Option<usize> {
        self.insts.iter().position(|i| {
            i.ifindex == ifindex && i.core.config().family == family && i.core.config().vrid == vrid
        })
    }

    async fn on_kernel_advert(&mut self, ev: haxdp_common::AdvertEvent) {
        let Some(k) = self.fast.as_ref().map(|f| f.to_advert(&ev)) else {
            return;
        };
        let Some(i) = self.find(k.ifindex, k.family, k.advert.vrid) else {
            return;
        };
        let now = netio::monotonic_ns();
        self.feed_advert(i, now, k.src, k.advert, k.rx_ns, k.prev_rx_ns)
            .await;
    }

    async fn on_socket_advert(&mut self, ifindex: u32, rx: netio::Received) {
        // The XDP program's acceptance rule, in its order (RFC 9568 7.1: TTL / hop
        // limit 255, the packet, its checksum, a VRID configured here, its version,
        // authentication and who may speak), counted under the same names.
        let family = Family::of(&rx.src);
        let insts = &self.insts;
        let found = std::cell::Cell::new(None);
        let verdict = haxdp_vrrp::packet::accept::accept_advert(
            &rx.payload,
            rx.src,
            rx.dst,
            rx.ttl,
            |vrid| {
                let i = insts.iter().position(|i| {
                    i.ifindex == ifindex
                        && i.core.config().family == family
                        && i.core.config().vrid == vrid
                })?;
                found.set(Some(i));
                let inst = &insts[i];
                Some(haxdp_vrrp::packet::accept::Watched {
                    version: inst.core.config().version,
                    auth: inst.core.config().auth_pass,
                    allowed_sources: inst.spec.allowed_sources.as_deref(),
                })
            },
        );
        let advert = match verdict {
            Ok(a) => a,
            Err(reason) => {
                debug!(
                    "ifindex {ifindex}: advert from {} dropped: {}",
                    rx.src,
                    reason.name()
                );
                *self.socket_drops.entry(reason).or_insert(0) += 1;
                return;
            }
        };
        let Some(i) = found.get() else {
            return;
        };
        self.feed_advert(i, rx.rx_ns, rx.src, advert, rx.rx_ns, None)
            .await;
    }

    async fn feed_advert(
        &mut self,
        i: usize,
        now: u64,
        src: IpAddr,
        advert: haxdp_vrrp::Advert,
        rx_ns: u64,
        prev_rx_ns: Option<u64>,
    ) {
        let mut out = election::Out::new();
        {
            let mut view = PeersView::new(self.fast.as_ref(), &self.insts);
            election::advert(
                &mut self.insts,
                i,
                now,
                src,
                advert,
                rx_ns,
                prev_rx_ns,
                &mut view,
                &mut out,
            );
        }
        self.apply_out(now, out).await;
    }

    async fn on_net(&mut self, ev: NetEvent) {
        let now = netio::monotonic_ns();
        match ev {
            NetEvent::Link(l) => {
                if self.pending.iter().any(|p| p.ifname == l.name) {
                    self.start_pending().await;
                }
                // Interfaces by name, as keepalived: an instance whose interface was
                // deleted and created again (a new ifindex) adopts the new one.
                for i in 0..self.insts.len() {
                    if self.insts[i].spec.ifname == l.name && self.insts[i].ifindex != l.ifindex {
                        self.readopt(i, &l).await;
                    }
                }
                if self
                    .attached
                    .get(&l.name)
                    .is_some_and(|p| *p != RxPath::Socket)
                    && self.insts.iter().any(|i| i.ifindex == l.ifindex)
                    && l.xdp_prog_id != self.fast.as_ref().and_then(|f| f.program_id())
                {
                    self.check_receive_path(&l.name).await;
                }
                for i in 0..self.insts.len() {
                    if self.insts[i].ifindex != l.ifindex || self.insts[i].link_up == l.up {
                        continue;
                    }
                    self.insts[i].link_up = l.up;
                    if let Some(mac) = l.mac {
                        self.insts[i].mac = mac;
                    }
                    let name = &self.insts[i].spec.ifname;
                    info!("{name}: link {}", if l.up { "up" } else { "down" });
                    if self.insts[i].spec.dont_track_primary {
                        continue;
                    }
                    let input = if l.up {
                        Input::InterfaceUp
                    } else {
                        Input::InterfaceDown
                    };
                    let acts = self.insts[i].core.handle(now, input);
                    self.apply(i, now, acts).await;
                }
                // track_interface items follow the link too.
                self.on_track_interface(l.name.clone(), l.up).await;
            }
            NetEvent::LinkGone { ifindex } => {
                if let Some(name) = self
                    .insts
                    .iter()
                    .find(|i| i.ifindex == ifindex)
                    .map(|i| i.spec.ifname.clone())
                {
                    info!("{name}: interface deleted; its instances are in FAULT until it is back");
                    if let Some(f) = self.fast.as_mut() {
                        f.forget_attachment(&name);
                    }
                    self.attached.remove(&name);
                }
                for i in 0..self.insts.len() {
                    if self.insts[i].ifindex == ifindex && self.insts[i].link_up {
                        self.insts[i].link_up = false;
                        let acts = self.insts[i].core.handle(now, Input::InterfaceDown);
                        self.apply(i, now, acts).await;
                    }
                }
            }
            NetEvent::AddressRemoved { ifindex, addr } => {
                self.source_address_removed(ifindex, addr, now).await;
                // Someone deleted one of our VIPs while we are master: put it
                // back (keepalived does the same).
                for i in 0..self.insts.len() {
                    if self.insts[i].core.state() != State::Master {
                        continue;
                    }
                    let gone: Vec<Vip> = self.insts[i]
                        .vips
                        .iter()
                        .filter(|v| v.ifindex == ifindex && v.addr == addr)
                        .cloned()
                        .collect();
                    for v in gone {
                        warn!(
                            "{}: VIP {v} was removed while master; restoring it",
                            self.insts[i].spec.core.name
                        );
                        if let Err(e) = self.nl.add_vip(&v).await {
                            error!("{}: {e}", self.insts[i].spec.core.name);
                        }
                    }
                }
            }
            NetEvent::AddressAdded { ifindex, .. } => {
                self.start_pending().await;
                self.source_address_back(ifindex, now).await;
                // An interface created again may get its address after its link came
                // up: adopt it now if `readopt` had to wait for one.
                for i in 0..self.insts.len() {
                    if self.insts[i].ifindex == ifindex || self.insts[i].link_up {
                        continue;
                    }
                    let name = self.insts[i].spec.ifname.clone();
                    if let Ok(l) = self.nl.link_by_name(&name).await {
                        if l.ifindex == ifindex {
                            self.readopt(i, &l).await;
                            if self.insts[i].ifindex == ifindex && l.up {
                                self.insts[i].link_up = true;
                                if !self.insts[i].spec.dont_track_primary {
                                    let acts = self.insts[i].core.handle(now, Input::InterfaceUp);
                                    self.apply(i, now, acts).await;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    async fn on_track_interface(&mut self, ifname: String, up: bool) {
        let key = interface_key(&ifname);
        let mut touched = Vec::new();
        for (i, inst) in self.insts.iter_mut().enumerate() {
            if inst
                .spec
                .tracks
                .iter()
                .any(|t| t.kind == ItemKind::Interface && t.name == ifname)
            {
                let st = if up { CheckState::Up } else { CheckState::Down };
                if inst.tracked.insert(key.clone(), st) != Some(st) {
                    touched.push(i);
                }
            }
        }
        let now = netio::monotonic_ns();
        for i in touched {
            self.recompute_priority(i, now).await;
        }
    }

    async fn on_track(&mut self, ev: TrackEvent) {
        let now = netio::monotonic_ns();
        let mut touched = Vec::new();
        for (i, inst) in self.insts.iter_mut().enumerate() {
            if inst
                .spec
                .tracks
                .iter()
                .any(|t| t.name == ev.check && t.kind == ev.kind)
            {
                inst.tracked.insert(ev.check.clone(), ev.state);
                touched.push(i);
            }
        }
        if !touched.is_empty() {
            info!("check {} is {:?}: {}", ev.check, ev.state, ev.detail);
        }
        for i in touched {
            self.recompute_priority(i, now).await;
        }
    }

    /// Effective priority and fault from the tracked items (keepalived's
    /// weights, clamped to 1..254; an owner keeps 255).
    async fn recompute_priority(&mut self, i: usize, now: u64) {
        let inst = &mut self.insts[i];
        let keys: Vec<String> = inst.spec.tracks.iter().map(track_key).collect();
        let items: Vec<track::TrackedItem<'_>> = inst
            .spec
            .tracks
            .iter()
            .zip(&keys)
            .map(|(t, key)| track::TrackedItem {
                name: &t.name,
                kind: t.kind,
                weight: t.weight,
                reverse: t.reverse,
                state: inst
                    .tracked
                    .get(key)
                    .copied()
                    .unwrap_or_else(|| spec::initial_state(t)),
            })
            .collect();
        let outcome = track::effective_priority(inst.spec.core.priority, &items);
        let reasons: Vec<String> = outcome
            .contributions
            .iter()
            .filter(|c| c.delta != 0)
            .map(|c| format!("{} {:+}", c.name, c.delta))
            .collect();
        let faults: Vec<String> = outcome
            .contributions
            .iter()
            .filter(|c| c.fault)
            .map(|c| format!("{} failed", c.name))
            .collect();
        inst.priority_reasons = reasons.clone();
        let mut acts = Vec::new();
        let old_faults: Vec<String> = std::mem::take(&mut inst.fault_reasons);
        for f in &faults {
            if !old_faults.contains(f) {
                acts.extend(inst.core.handle(
                    now,
                    Input::Fault {
                        on: true,
                        reason: f.clone(),
                    },
                ));
            }
        }
        for f in &old_faults {
            if !faults.contains(f) {
                acts.extend(inst.core.handle(
                    now,
                    Input::Fault {
                        on: false,
                        reason: f.clone(),
                    },
                ));
            }
        }
        inst.fault_reasons = faults;
        if outcome.priority != inst.core.effective_priority() {
            info!(
                "{}: effective priority {} -> {} ({})",
                inst.spec.core.name,
                inst.core.effective_priority(),
                outcome.priority,
                reasons.join(", ")
            );
            acts.extend(inst.core.handle(
                now,
                Input::PriorityChanged {
                    effective: outcome.priority,
                },
            ));
        }
        self.apply(i, now, acts).await;
    }

    /// Performs a state machine's actions, in order.
    async fn apply(&mut self, i: usize, _now: u64, acts: Vec<Action>) {
        let before = self.insts[i].core.transitions().len();
        let was_fault = self.insts[i].in_fault;
        // A list with the VIPs in it is a takeover: its advert goes first, at once.
        let periodic = acts.len() == 1;
        for a in acts {
            match a {
                Action::SendAdvert { priority } => self.send_advert(i, priority, periodic),
                Action::AddVips => self.add_vips(i).await,
                Action::RemoveVips => {
                    // No retry or lower-priority GARP may outlive mastership.
                    self.insts[i].upkeep.release();
                    if let Some(g) = self.insts[i].garp.take() {
                        g.abort();
                    }
                    for v in self.insts[i].vips.clone() {
                        if let Err(e) = self.nl.remove_vip(&v).await {
                            error!(
                                "{} vrid {}: {e}",
                                self.insts[i].spec.ifname, self.insts[i].spec.core.vrid
                            );
                        }
                    }
                }
                Action::SendGratuitous => self.start_garp(i),
                Action::Notify { state } => {
                    let inst = &self.insts[i];
                    self.notifier.transition(
                        &inst.spec.core.name,
                        &inst.spec.notify,
                        notify_state(state),
                        inst.core.effective_priority(),
                    );
                    self.notify_group(i);
                }
                Action::ReportPeers => {
                    let inst = &self.insts[i];
                    if inst.rx != RxPath::Socket {
                        if let Some(f) = self.fast.as_mut() {
                            if let Err(e) = f.request_reports(inst.ifindex, inst.core.config()) {
                                warn!(
                                    "{} vrid {}: cannot ask the XDP program to report the VRID's peers: {e}",
                                    inst.spec.ifname, inst.spec.core.vrid
                                );
                            }
                        }
                    }
                }
                Action::Discarded { reason } => {
                    // Counted, not logged: a flood of bad adverts must not
                    // turn into a flood of log lines.
                    *self.insts[i]
                        .discards
                        .entry(format!("{reason:?}"))
                        .or_insert(0) += 1;
                    if reason == haxdp_vrrp::fsm::DiscardReason::NotBetterThanUs
                        && self.insts[i].core.state() == State::Master
                    {
                        self.lower_prio_advert(i);
                    }
                }
            }
        }
        let mut took_over = false;
        let mut transitioned = false;
        let inst = &mut self.insts[i];
        let log = inst.core.transitions();
        if log.len() != before
            || log.last().map(|t| t.at_ns) != inst.transitions_wall.last().map(|w| w.0)
        {
            if let Some(t) = log.last() {
                if inst.transitions_wall.last().map(|w| w.0) != Some(t.at_ns) {
                    took_over = t.new == State::Master;
                    transitioned = true;
                    info!("{}: {:?} -> {:?} ({:?})", t.instance, t.old, t.new, t.event);
                    inst.transitions_wall.push((t.at_ns, control::unix_ms()));
                    if inst.transitions_wall.len() > 64 {
                        inst.transitions_wall.remove(0);
                    }
                }
            }
        }
        if transitioned {
            self.write_resume();
        }
        if took_over && self.insts[i].rx != RxPath::Socket {
            self.log_refused_peers(i, true);
        }
        self.protect_followed_master(i);
        // Only faults of the member's own making propagate to its sync group, and
        // their end releases the group (see `haxdp_vrrp::node::own_fault`).
        let is_fault = election::own_fault(&self.insts[i]);
        self.insts[i].in_fault = is_fault;
        if is_fault != was_fault && self.insts[i].spec.sync_group.is_some() {
            self.sync_queue.push((i, is_fault));
        }
    }

    /// Logs once per growth that the XDP program refused new sources for instance `i`
    /// because its PEERS room is full; `took_over`: it just became Master without
    /// seeing every source.
    fn log_refused_peers(&mut self, i: usize, took_over: bool) {
        let refused = self.refused_peers(&self.insts[i]);
        let inst = &mut self.insts[i];
        if refused == 0 || (!took_over && refused <= inst.refused_logged) {
            return;
        }
        inst.refused_logged = refused;
        warn!(
            "{} vrid {}: {refused} new advert source(s) refused since start, the instance's PEERS room is full{};              look for spoofed VRRP sources with `haxdp maps`, restrict them with check_unicast_src or haxdp_allowed_peers",
            inst.spec.ifname,
            inst.spec.core.vrid,
            if took_over {
                "; it became MASTER without seeing every source"
            } else {
                ""
            }
        );
    }

    /// The master a backup follows keeps its room in the XDP program's PEERS map
    /// whatever spoofed sources fill the rest; the one it followed before gives it
    /// back (configured unicast peers stay protected).
    fn protect_followed_master(&mut self, i: usize) {
        let inst = &self.insts[i];
        let want = election::protected_master(inst);
        if want == inst.protected || inst.rx == RxPath::Socket {
            return;
        }
        let Some(f) = self.fast.as_mut() else {
            return;
        };
        let cfg = inst.core.config();
        if let Some(old) = inst.protected {
            if !inst.spec.unicast_peers.contains(&old) {
                if let Err(e) = f.unprotect_peer(inst.ifindex, cfg, old) {
                    debug!(
                        "{} vrid {}: unprotect {old}: {e}",
                        inst.spec.ifname, cfg.vrid
                    );
                }
            }
        }
        if let Some(m) = want {
            if let Err(e) = f.protect_peer(inst.ifindex, cfg, m) {
                warn!(
                    "{} vrid {}: cannot reserve PEERS room for master {m}: {e}",
                    inst.spec.ifname, cfg.vrid
                );
            }
        }
        self.insts[i].protected = want;
    }

    /// The link monitor's events can be lost (a netlink socket overrun, ENOBUFS, drops
    /// multicast messages without telling which): every housekeeping round reads the
    /// state of each instance's interface from the kernel and handles it as an event, so
    /// a missed down, up, deletion or re-creation is acted on within one round.
    async fn reconcile_links(&mut self) {
        let mut names: Vec<String> = self.insts.iter().map(|i| i.spec.ifname.clone()).collect();
        names.sort();
        names.dedup();
        for name in names {
            match self.nl.link_by_name(&name).await {
                Ok(l) => self.on_net(NetEvent::Link(l)).await,
                Err(crate::vip::VipError::NoSuchInterface(_)) => {
                    let gone: Vec<u32> = self
                        .insts
                        .iter()
                        .filter(|i| i.spec.ifname == name && i.link_up)
                        .map(|i| i.ifindex)
                        .collect();
                    for ifindex in gone {
                        self.on_net(NetEvent::LinkGone { ifindex }).await;
                    }
                }
                Err(e) => debug!("{name}: {e}"),
            }
        }
    }

    /// The address an instance sends its adverts from was removed from its interface.
    /// keepalived (keepalived_netlink.c, RTM_DELADDR) takes such an instance down unless
    /// the address came from the configuration (`unicast_src_ip` / `mcast_src_ip`), and
    /// brings it back when the interface has an address again: so does haxdp, with a
    /// FAULT whose reason names the address.
    async fn source_address_removed(&mut self, ifindex: u32, addr: IpAddr, now: u64) {
        for i in 0..self.insts.len() {
            let inst = &self.insts[i];
            if inst.ifindex != ifindex
                || inst.spec.src_addr.is_some()
                || inst.core.config().primary_addr != addr
            {
                continue;
            }
            warn!(
                "{} vrid {}: the advert source address {addr} was removed from {}; FAULT until the interface has an address again",
                inst.spec.ifname, inst.spec.core.vrid, inst.spec.ifname
            );
            let acts = self.insts[i].core.handle(
                now,
                Input::Fault {
                    on: true,
                    reason: source_fault(addr),
                },
            );
            self.apply(i, now, acts).await;
        }
    }

    /// An address was added to interface `ifindex`: instances faulted for their source
    /// address take the interface's primary address again (a new one is a new identity:
    /// a fresh state machine and advert socket) and leave that fault.
    async fn source_address_back(&mut self, ifindex: u32, now: u64) {
        for i in 0..self.insts.len() {
            let inst = &self.insts[i];
            if inst.ifindex != ifindex {
                continue;
            }
            let old = inst.core.config().primary_addr;
            let reason = source_fault(old);
            if !inst.core.fault_reasons().any(|r| r == reason) {
                continue;
            }
            let v6 = inst.spec.core.family == Family::V6;
            let vip_addrs: Vec<IpAddr> = inst.spec.vips.iter().map(|v| v.addr).collect();
            let name = inst.spec.ifname.clone();
            let Ok(Some(src)) = self
                .nl
                .primary_address(ifindex, &name, v6, &vip_addrs)
                .await
            else {
                continue;
            };
            if src != old {
                let group = self.insts[i].spec.mcast_group;
                let receive = self.insts[i].rx == RxPath::Socket;
                match self.socket(&name, ifindex, src, group, receive) {
                    Ok(sock) => self.insts[i].sock = sock,
                    Err(e) => {
                        error!("{name} vrid {}: {e}", self.insts[i].spec.core.vrid);
                        continue;
                    }
                }
                let mut cfg = self.insts[i].spec.core.clone();
                cfg.primary_addr = src;
                match Instance::new(cfg) {
                    Ok(core) => self.insts[i].core = core,
                    Err(e) => {
                        error!("{name}: {e}");
                        continue;
                    }
                }
                info!(
                    "{name} vrid {}: adverts now from {src}",
                    self.insts[i].spec.core.vrid
                );
                // The fresh machine learns its link and tracked faults again.
                self.insts[i].fault_reasons.clear();
                self.start_instance(i, now).await;
            } else {
                let acts = self.insts[i]
                    .core
                    .handle(now, Input::Fault { on: false, reason });
                self.apply(i, now, acts).await;
            }
        }
    }

    /// keepalived's `dynamic_interfaces`: an instance whose interface does not exist yet
    /// waits for it (in `pending`, shown in `status`) instead of refusing the start. True
    /// if `s` was put there.
    async fn waits_for_interface(&mut self, s: &InstanceSpec) -> bool {
        if !self.spec.dynamic_interfaces {
            return false;
        }
        if !matches!(
            self.nl.link_by_name(&s.ifname).await,
            Err(crate::vip::VipError::NoSuchInterface(_))
        ) {
            return false;
        }
        warn!(
            "{}: interface {} does not exist yet; the instance waits for it (dynamic_interfaces)",
            s.core.name, s.ifname
        );
        self.pending.push(s.clone());
        true
    }

    /// Starts the waiting instances whose interface now exists and has an address.
    async fn start_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let now = netio::monotonic_ns();
        for s in std::mem::take(&mut self.pending) {
            if self.nl.link_by_name(&s.ifname).await.is_err() {
                self.pending.push(s);
                continue;
            }
            let name = s.core.name.clone();
            match self.build_instance(s.clone()).await {
                Ok(inst) => {
                    info!(
                        "{name}: interface {} appeared; starting the instance",
                        inst.spec.ifname
                    );
                    self.insts.push(inst);
                    let i = self.insts.len() - 1;
                    self.start_instance(i, now).await;
                }
                Err(e) => {
                    // No address yet: the next link or address event tries again.
                    debug!("{name}: not yet: {e}");
                    self.pending.push(s);
                }
            }
        }
    }

    /// Whether the receive path of `ifname` is live: for XDP, the interface still runs
    /// this daemon's program. If not (detached by hand, `ip link set dev X xdp off`,
    /// the interface replaced), it is attached again, or the instances fall back to a
    /// raw socket; either way their peers are reported again. False if it was not live.
    async fn check_receive_path(&mut self, ifname: &str) -> bool {
        let Some(ours) = self.fast.as_ref().and_then(|f| f.program_id()) else {
            return true;
        };
        let link = match self.nl.link_by_name(ifname).await {
            Ok(l) => l,
            // Gone: the instances are in Fault; the link monitor re-adopts it.
            Err(_) => return true,
        };
        if link.xdp_prog_id == Some(ours) {
            return true;
        }
        warn!(
            "{ifname}: the XDP program is no longer attached (found {}); attaching it again",
            link.xdp_prog_id
                .map_or_else(|| "none".to_string(), |id| format!("program id {id}"))
        );
        if let Some(f) = self.fast.as_mut() {
            f.forget_attachment(ifname);
        }
        self.attached.remove(ifname);
        let path = self.receive_path(ifname);
        for i in 0..self.insts.len() {
            if self.insts[i].spec.ifname != ifname {
                continue;
            }
            if path == RxPath::Socket {
                self.switch_to_socket(i);
            } else {
                self.insts[i].rx = path;
                let inst = &self.insts[i];
                if let Some(f) = self.fast.as_mut() {
                    if let Err(e) = f.request_reports(inst.ifindex, inst.core.config()) {
                        warn!("{ifname} vrid {}: {e}", inst.spec.core.vrid);
                    }
                }
            }
        }
        false
    }

    /// Instance `i` receives on a raw socket from now on (the XDP program cannot be
    /// attached to its interface any more).
    fn switch_to_socket(&mut self, i: usize) {
        let inst = &self.insts[i];
        let (ifname, ifindex, src, group) = (
            inst.spec.ifname.clone(),
            inst.ifindex,
            inst.sock.source(),
            inst.spec.mcast_group,
        );
        // The cached socket was opened for sending only.
        self.sockets.remove(&(ifindex, src));
        match self.socket(&ifname, ifindex, src, group, true) {
            Ok(sock) => {
                warn!(
                    "{ifname} vrid {}: receiving adverts on a raw socket",
                    self.insts[i].spec.core.vrid
                );
                self.insts[i].sock = sock;
                self.insts[i].rx = RxPath::Socket;
            }
            Err(e) => error!(
                "{ifname} vrid {}: no receive path left ({e}); the instance cannot hear its peers",
                self.insts[i].spec.core.vrid
            ),
        }
    }

    /// The interface of instance `i` was created again under its name (new ifindex):
    /// adopt it as keepalived does: attach the XDP program (or a socket), read its
    /// addresses, open the advert socket, move the VIPs, then follow its link state.
    async fn readopt(&mut self, i: usize, l: &crate::vip::LinkInfo) {
        let name = l.name.clone();
        let old = self.insts[i].ifindex;
        info!(
            "{name}: interface created again (ifindex {old} -> {}); adopting it",
            l.ifindex
        );
        let v6 = self.insts[i].spec.core.family == Family::V6;
        let vip_addrs: Vec<IpAddr> = self.insts[i].spec.vips.iter().map(|v| v.addr).collect();
        let src = match self.insts[i].spec.src_addr {
            Some(a) => Some(a),
            None => self
                .nl
                .primary_address(l.ifindex, &name, v6, &vip_addrs)
                .await
                .ok()
                .flatten(),
        };
        let Some(src) = src else {
            // No address yet (`ip link add` comes before `ip addr add`): the next link
            // or address event tries again.
            debug!("{name}: no address yet to send adverts from; waiting");
            return;
        };
        if let Some(f) = self.fast.as_mut() {
            f.forget_attachment(&name);
            let _ = f.unwatch(old, self.insts[i].core.config());
        }
        self.attached.remove(&name);
        let rx = self.receive_path(&name);
        let group = self.insts[i].spec.mcast_group;
        let sock = match self.socket(&name, l.ifindex, src, group, rx == RxPath::Socket) {
            Ok(s) => s,
            Err(e) => {
                error!("{name} vrid {}: {e}", self.insts[i].spec.core.vrid);
                return;
            }
        };
        let inst = &mut self.insts[i];
        inst.ifindex = l.ifindex;
        inst.rx = rx;
        inst.sock = sock;
        if let Some(mac) = l.mac {
            inst.mac = mac;
        }
        for v in inst.vips.iter_mut().filter(|v| v.ifname == name) {
            v.ifindex = l.ifindex;
        }
        inst.link_up = false;
        if src != inst.core.config().primary_addr {
            // A new source address is a new identity on the wire: a fresh state machine
            // (the instance is in Fault, there is no state to keep).
            let mut cfg = inst.spec.core.clone();
            cfg.primary_addr = src;
            match Instance::new(cfg) {
                Ok(core) => inst.core = core,
                Err(e) => {
                    error!("{name}: {e}");
                    return;
                }
            }
            let now = netio::monotonic_ns();
            let acts = self.insts[i].core.handle(now, Input::InterfaceDown);
            self.apply(i, now, acts).await;
            let acts = self.insts[i].core.handle(now, Input::Startup);
            self.apply(i, now, acts).await;
        }
        watch_in_kernel(self.fast.as_mut(), &self.insts[i]);
        // The caller's link handling (by the new ifindex) now brings it out of Fault.
    }

    /// After member `i` changed state: the state of its sync group, notified when it
    /// differs from the last one. keepalived's group is in FAULT while any member is,
    /// MASTER once a member is master (the others follow), BACKUP when all are backups;
    /// STOP is for instances only (keepalived.conf(5), vrrp_sync_group notify).
    fn notify_group(&mut self, i: usize) {
        use crate::notify::NotifyState;
        let Some(group) = self.insts[i].spec.sync_group.clone() else {
            return;
        };
        let states: Vec<State> = self
            .insts
            .iter()
            .filter(|m| m.spec.sync_group.as_deref() == Some(group.as_str()))
            .map(|m| m.core.state())
            .collect();
        let now = if states.contains(&State::Fault) {
            NotifyState::Fault
        } else if states.contains(&State::Master) {
            NotifyState::Master
        } else if states.iter().all(|s| *s == State::Backup) {
            NotifyState::Backup
        } else {
            return;
        };
        if self.group_states.get(&group) == Some(&now) {
            return;
        }
        self.group_states.insert(group.clone(), now);
        info!("sync group {group}: now {}", now.as_str());
        if let Some(g) = self.spec.sync_groups.iter().find(|g| g.name == group) {
            self.notifier.group_transition(&group, &g.notify, now);
        }
    }

    /// `periodic`: an Adver_Timer advert, which may wait for the end of this wake-up's
    /// deadline pass (`flush_batch`); a takeover's or a priority change's goes at once.
    fn send_advert(&mut self, i: usize, priority: u8, periodic: bool) {
        let inst = &self.insts[i];
        let advert = inst.core.advert(priority);
        for dst in &inst.dsts {
            match haxdp_vrrp::encode(&advert, inst.sock.source(), *dst) {
                Ok(bytes) if periodic && self.batch.is_some() => {
                    let sock = inst.sock.clone();
                    if let Some(b) = self.batch.as_mut() {
                        b.push(Batched(sock, (bytes, *dst), i));
                    }
                }
                Ok(bytes) => {
                    if let Err(e) = inst.sock.send(&bytes, *dst) {
                        warn!("{} vrid {}: {e}", inst.spec.ifname, inst.spec.core.vrid);
                    }
                }
                Err(e) => error!(
                    "{} vrid {}: cannot encode advert: {e}",
                    inst.spec.ifname, inst.spec.core.vrid
                ),
            }
        }
    }

    /// Gratuitous ARP / NA with keepalived's timing: `garp_master_repeat`
    /// announcements `garp_interval` apart at once, the same again after
    /// `garp_master_delay`, then `garp_master_refresh_repeat` every
    /// `garp_master_refresh` if set.
    fn start_garp(&mut self, i: usize) {
        if let Some(g) = self.insts[i].garp.take() {
            g.abort();
        }
        let inst = &self.insts[i];
        let sender = self.garp.clone();
        let mac = inst.mac;
        let vips: Vec<(u32, IpAddr)> = inst.vips.iter().map(|v| (v.ifindex, v.addr)).collect();
        let t: GarpTiming = inst.spec.garp.clone();
        let name = inst.spec.core.name.clone();
        self.insts[i].garp = Some(tokio::spawn(async move {
            garp_burst(&sender, mac, &vips, &name, t.repeat, t.interval).await;
            if !t.delay.is_zero() {
                tokio::time::sleep(t.delay).await;
                garp_burst(&sender, mac, &vips, &name, t.repeat, t.interval).await;
            }
            if let Some(refresh) = t.refresh {
                loop {
                    tokio::time::sleep(refresh).await;
                    garp_burst(&sender, mac, &vips, &name, t.refresh_repeat, t.interval).await;
                }
            }
        }));
    }

    async fn shutdown_all(&mut self) {
        // A clean stop is not a crash: the next start is elected afresh (keepalived's
        // meaning of stop: priority 0, release), and the ticks stop writing it.
        self.stopping = true;
        let _ = std::fs::remove_file(self.opts.state_dir.join(RESUME_FILE));
        if let Some(f) = self.fast.as_ref() {
            let path = self.opts.state_dir.join(PEERS_CHECKPOINT);
            if let Err(e) = f.save_checkpoint(&path) {
                warn!("cannot write {}: {e}", path.display());
            }
        }
        let now = netio::monotonic_ns();
        for i in 0..self.insts.len() {
            self.shutdown_instance(i, now).await;
        }
        if let Some(t) = self.tracker.take() {
            t.shutdown().await;
        }
        self.log_keepalived_lines();
        // notify_stop / STOP for every instance, bounded; state files say STOP.
        self.finish_stop_notifications().await;
    }

    /// RFC 9568 6.4.3 Shutdown: a master sends a priority-0 advert and
    /// releases its addresses, so a backup takes over after Skew_Time.
    async fn shutdown_instance(&mut self, i: usize, now: u64) {
        let mut acts = self.insts[i].core.handle(now, Input::Shutdown);
        if crate::ops::options().dont_release_vrrp {
            // keepalived's -V/--dont-release-vrrp: the addresses stay on the interface.
            acts.retain(|a| !matches!(a, Action::RemoveVips));
        }
        self.apply(i, now, acts).await;
        if let Some(g) = self.insts[i].garp.take() {
            g.abort();
        }
        let inst = &self.insts[i];
        if let Some(f) = self.fast.as_mut() {
            if inst.rx != RxPath::Socket {
                let _ = f.unwatch(inst.ifindex, &inst.spec.core);
            }
        }
    }

    /// HUP: the file is read and checked off the engine thread (adverts keep their
    /// rhythm while a large configuration parses); [`Engine::finish_reload`] then
    /// reconciles the running instances with it.
    async fn reload(&mut self) {
        let path = self.opts.config.clone();
        let tx = self.tx.clone();
        info!("reloading {}", path.display());
        tokio::spawn(async move {
            let parsed = tokio::task::spawn_blocking(move || spec::load(&path))
                .await
                .map_err(|e| format!("the configuration reader failed: {e}"))
                .and_then(|r| r.map_err(|e| e.render()));
            let _ = tx.send(Ev::Reloaded(Box::new(parsed))).await;
        });
    }

    /// Reload as a reconciliation, per `vrrp_instance` matched by name as keepalived
    /// does: unchanged, untouched; settings changed (priority, preempt, timers, tracking,
    /// notify, VIPs, peers), applied to the running state machine, which keeps its state
    /// and history; identity changed (interface, VRID, family, version, source address,
    /// multicast group, address ownership), replaced, the old one sending priority 0
    /// first; removed, stopped; added, started. Everything new is built before anything
    /// changes: if one part cannot be built, nothing changes and the refusal is logged
    /// and shown in `status`.
    async fn finish_reload(
        &mut self,
        parsed: Result<(DaemonSpec, Vec<haxdp_config::Diagnostic>), String>,
    ) {
        let (spec, diags) = match parsed {
            Ok(v) => v,
            Err(e) => {
                self.refuse_reload(e);
                return;
            }
        };
        for d in diags {
            warn!("{d}");
        }
        let now = netio::monotonic_ns();
        // 1. Plan and build, changing nothing that runs.
        let mut soft: Vec<(usize, InstanceSpec, Vec<Vip>)> = Vec::new();
        let mut replaced: Vec<(usize, InstanceSpec)> = Vec::new();
        let mut added: Vec<InstanceSpec> = Vec::new();
        for s in &spec.instances {
            match self
                .insts
                .iter()
                .position(|i| i.spec.core.name == s.core.name)
            {
                Some(i) if self.insts[i].spec == *s => {}
                Some(i) if same_identity(&self.insts[i].spec, s) => {
                    let mut cfg = s.core.clone();
                    cfg.primary_addr = self.insts[i].core.config().primary_addr;
                    if let Err(e) = Instance::new(cfg) {
                        self.refuse_reload(e.to_string());
                        return;
                    }
                    match self.resolve_vips(s, self.insts[i].ifindex).await {
                        Ok(v) => soft.push((i, s.clone(), v)),
                        Err(e) => {
                            self.refuse_reload(format!("{}: {e}", s.core.name));
                            return;
                        }
                    }
                }
                Some(i) => replaced.push((i, s.clone())),
                None => added.push(s.clone()),
            }
        }
        let removed: Vec<usize> = (0..self.insts.len())
            .filter(|i| {
                !spec
                    .instances
                    .iter()
                    .any(|s| s.core.name == self.insts[*i].spec.core.name)
            })
            .collect();
        let mut built: Vec<(Option<usize>, Inst)> = Vec::new();
        let waiting_before = std::mem::take(&mut self.pending);
        let dynamic = self.spec.dynamic_interfaces;
        self.spec.dynamic_interfaces = spec.dynamic_interfaces;
        for (old, s) in replaced
            .iter()
            .map(|(i, s)| (Some(*i), s))
            .chain(added.iter().map(|s| (None, s)))
        {
            if self.waits_for_interface(s).await {
                continue;
            }
            match self.build_instance(s.clone()).await {
                Ok(inst) => built.push((old, inst)),
                Err(e) => {
                    for (_, b) in &built {
                        self.forget_built(b);
                    }
                    self.pending = waiting_before;
                    self.spec.dynamic_interfaces = dynamic;
                    self.refuse_reload(format!("{}: cannot be started: {e}", s.core.name));
                    return;
                }
            }
        }
        // 2. Apply: stop what goes (priority 0 first), change what stays, start what comes.
        let checks_changed = spec.checks != self.spec.checks;
        let goes: Vec<usize> = removed
            .iter()
            .copied()
            .chain(replaced.iter().map(|(i, _)| *i))
            .collect();
        for &i in &goes {
            info!(
                "{}: {}; stopping it",
                self.insts[i].spec.core.name,
                if removed.contains(&i) {
                    "removed from the configuration"
                } else {
                    "interface, VRID, family or version changed"
                }
            );
            self.shutdown_instance(i, now).await;
        }
        self.spec = spec;
        let in_place = soft.len();
        for (i, s, vips) in soft {
            self.reconfigure_instance(i, now, s, vips).await;
        }
        let mut keep: Vec<Inst> = Vec::new();
        for (i, inst) in std::mem::take(&mut self.insts).into_iter().enumerate() {
            if !goes.contains(&i) {
                keep.push(inst);
            }
        }
        self.insts = keep;
        let first_new = self.insts.len();
        for (_, inst) in built {
            // A replaced instance's stop took its (interface, VRID, family) out of the
            // XDP program's INSTANCES when only the version changed: watch it again.
            watch_in_kernel(self.fast.as_mut(), &inst);
            self.insts.push(inst);
        }
        if checks_changed {
            self.restart_tracker().await;
        }
        for i in first_new..self.insts.len() {
            self.start_instance(i, now).await;
        }
        for i in 0..first_new {
            self.recompute_priority(i, now).await;
        }
        let msg = format!(
            "configuration reloaded: {} instance(s), {} changed in place, {} replaced, {} added, {} removed",
            self.insts.len(),
            in_place,
            replaced.len(),
            added.len(),
            removed.len()
        );
        info!("{msg}");
        self.last_reload = Some(control::ReloadStatus {
            at_unix_ms: control::unix_ms(),
            accepted: true,
            message: msg,
        });
    }

    fn refuse_reload(&mut self, why: String) {
        error!("reload refused, keeping the running configuration: {why}");
        self.last_reload = Some(control::ReloadStatus {
            at_unix_ms: control::unix_ms(),
            accepted: false,
            message: why,
        });
    }

    /// Undoes what `build_instance` told the kernel for an instance a refused reload
    /// will not start (its sockets close with it).
    fn forget_built(&mut self, inst: &Inst) {
        if inst.rx == RxPath::Socket
            || self.insts.iter().any(|i| {
                i.ifindex == inst.ifindex
                    && i.core.config().vrid == inst.core.config().vrid
                    && i.core.config().family == inst.core.config().family
            })
        {
            return;
        }
        if let Some(f) = self.fast.as_mut() {
            let _ = f.unwatch(inst.ifindex, inst.core.config());
        }
    }

    /// The VIPs of `s` as they will be configured (interface of each `dev` resolved).
    async fn resolve_vips(&self, s: &InstanceSpec, ifindex: u32) -> anyhow::Result<Vec<Vip>> {
        let mut vips = Vec::new();
        for v in &s.vips {
            let (ifindex, ifname) = match &v.dev {
                Some(d) if d != &s.ifname => {
                    let l = self.nl.link_by_name(d).await?;
                    (l.ifindex, l.name)
                }
                _ => (ifindex, s.ifname.clone()),
            };
            vips.push(Vip {
                addr: v.addr,
                prefix_len: v.prefix_len,
                ifindex,
                ifname,
                label: v.label.clone(),
                scope: v.scope,
                broadcast: v.broadcast,
                nodad: v.nodad,
            });
        }
        Ok(vips)
    }

    /// Applies a reload's new settings to running instance `i` in place.
    async fn reconfigure_instance(&mut self, i: usize, now: u64, s: InstanceSpec, vips: Vec<Vip>) {
        let mut cfg = s.core.clone();
        cfg.primary_addr = self.insts[i].core.config().primary_addr;
        let acts = match self.insts[i].core.reconfigure(now, cfg) {
            Ok(a) => a,
            Err(e) => {
                // Validated while planning; kept running as it was.
                error!("{}: {e}", s.core.name);
                return;
            }
        };
        let master = self.insts[i].core.state() == State::Master;
        let old_vips = std::mem::replace(&mut self.insts[i].vips, vips);
        let gone: Vec<Vip> = old_vips
            .iter()
            .filter(|v| !self.insts[i].vips.contains(v))
            .cloned()
            .collect();
        let new: Vec<Vip> = self.insts[i]
            .vips
            .iter()
            .filter(|v| !old_vips.contains(v))
            .cloned()
            .collect();
        self.insts[i].dsts = if s.unicast_peers.is_empty() {
            vec![s.mcast_group]
        } else {
            s.unicast_peers.clone()
        };
        info!(
            "{}: configuration changed; applied in place ({} VIP(s) added, {} removed)",
            s.core.name,
            new.len(),
            gone.len()
        );
        self.insts[i].spec = s;
        watch_in_kernel(self.fast.as_mut(), &self.insts[i]);
        if master {
            for v in &gone {
                if let Err(e) = self.nl.remove_vip(v).await {
                    error!("{}: {e}", self.insts[i].spec.core.name);
                }
            }
            for v in &new {
                if let Err(e) = self.nl.add_vip(v).await {
                    error!("{}: {e}", self.insts[i].spec.core.name);
                }
            }
            if !new.is_empty() {
                // RFC 9568 6.4.2: announce the addresses now owned.
                let inst = &self.insts[i];
                let sender = self.garp.clone();
                let mac = inst.mac;
                let list: Vec<(u32, IpAddr)> = new.iter().map(|v| (v.ifindex, v.addr)).collect();
                let t = inst.spec.garp.clone();
                let name = inst.spec.core.name.clone();
                tokio::spawn(async move {
                    garp_burst(&sender, mac, &list, &name, t.repeat, t.interval).await;
                });
            }
        }
        self.apply(i, now, acts).await;
    }

    /// The end of the stop sequence: the STOP notifications that `shutdown_instance`
    /// queued (notify_stop, then the generic notify with STOP) run to completion, all
    /// instances together bounded by the stop timeout; then every state file says STOP,
    /// also for an instance whose scripts were still running at the timeout.
    async fn finish_stop_notifications(&mut self) {
        let timeout = crate::ops::options().stop_timeout;
        if tokio::time::timeout(timeout, self.notifier.drain())
            .await
            .is_err()
        {
            warn!(
                "stop: notify scripts still running after {} ms; not waiting for them",
                timeout.as_millis()
            );
        }
        for i in &self.insts {
            if let Err(e) = crate::notify::write_state_file(
                &self.opts.state_dir,
                &i.spec.core.name,
                crate::notify::NotifyState::Stop,
            ) {
                error!("{}: cannot write its state file: {e}", i.spec.core.name);
            }
        }
    }

    /// systemd: READY=1 again once a reload begun by HUP has an outcome, with STATUS
    /// saying whether the new file was taken or refused.
    fn sd_reload_outcome(&self) {
        crate::sd::reload_outcome(self.reload_outcome_now(), self.insts.len());
    }

    fn reload_outcome_now(&self) -> Option<crate::sd::Outcome> {
        self.last_reload
            .as_ref()
            .map(|r| (r.at_unix_ms, r.accepted, r.message.clone()))
    }
}

/// `repeat` announcements of every VIP, `gap` apart.
async fn garp_burst(
    sender: &GarpSender,
    mac: [u8; 6],
    vips: &[(u32, IpAddr)],
    name: &str,
    repeat: u32,
    gap: Duration,
) {
    for n in 0..repeat {
        for (ifindex, addr) in vips {
            if let Err(e) = sender.announce(*ifindex, mac, *addr) {
                warn!("{name}: {e}");
            }
        }
        if n + 1 < repeat {
            tokio::time::sleep(gap).await;
        }
    }
}

fn notify_state(s: State) -> crate::notify::NotifyState {
    use crate::notify::NotifyState;
    match s {
        State::Master => NotifyState::Master,
        State::Backup => NotifyState::Backup,
        State::Fault => NotifyState::Fault,
        State::Initialize => NotifyState::Stop,
    }
}

/// Tells the XDP program (again) what instance `inst` accepts: its versions and
/// authentication, its configured unicast peers protected, its source allowlist (a
/// socket-path instance has nothing to tell).
fn watch_in_kernel(fast: Option<&mut Fastpath>, inst: &Inst) {
    let (Some(f), false) = (fast, inst.rx == RxPath::Socket) else {
        return;
    };
    if let Err(e) = f.watch_instance(
        inst.ifindex,
        inst.core.config(),
        inst.spec.auth_type(),
        &inst.spec.unicast_peers,
        inst.spec.allowed_sources.as_deref(),
    ) {
        warn!("{} vrid {}: {e}", inst.spec.ifname, inst.spec.core.vrid);
    }
}

/// The fault reason of an instance whose advert source address was removed.
fn source_fault(addr: IpAddr) -> String {
    format!("source address {addr} removed")
}

/// Whether a reload may apply `new` to the instance running `old` in place: the same
/// interface, VRID, family, version, advert source, multicast group and ownership.
fn same_identity(old: &InstanceSpec, new: &InstanceSpec) -> bool {
    old.ifname == new.ifname
        && old.core.vrid == new.core.vrid
        && old.core.family == new.core.family
        && old.core.version == new.core.version
        && old.core.address_owner == new.core.address_owner
        && old.src_addr == new.src_addr
        && old.mcast_group == new.mcast_group
}

/// Key of a tracked item's state: interfaces and checks live in one map and
/// may share a name.
fn track_key(t: &spec::TrackSpec) -> String {
    match t.kind {
        ItemKind::Interface => interface_key(&t.name),
        _ => t.name.clone(),
    }
}

fn interface_key(ifname: &str) -> String {
    format!("interface:{ifname}")
}

/// First wait before adding a VIP again that the kernel refused; doubled each attempt.
const VIP_RETRY_FIRST: Duration = Duration::from_millis(250);

/// Longest wait between attempts: a VIP that cannot be added is tried every 10 s for
/// as long as this node is master.
const VIP_RETRY_MAX: Duration = Duration::from_secs(10);

/// A task that is aborted when its handle is dropped, so that it cannot outlive the
/// instance (or the mastership) it works for.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A VIP this master could not add.
#[derive(Debug, Clone)]
struct MissingVip {
    vip: Vip,
    error: String,
    attempts: u32,
    since_unix_ms: u64,
}

/// Per-instance work that lives only while the instance is master.
#[derive(Default)]
struct Upkeep {
    /// VIPs not added yet; shared with the retry task, which removes the ones it adds.
    missing: Arc<std::sync::Mutex<Vec<MissingVip>>>,
    retry: Option<AbortOnDrop>,
    /// The GARP sequence of garp_lower_prio_repeat / garp_lower_prio_delay.
    lower_prio_garp: Option<AbortOnDrop>,
    lower_prio_adverts: u64,
    lower_prio_bursts: Arc<std::sync::atomic::AtomicU64>,
}

impl Upkeep {
    /// Leaving master (RemoveVips): stop retrying and announcing.
    fn release(&mut self) {
        self.retry = None;
        self.lower_prio_garp = None;
        if let Ok(mut m) = self.missing.lock() {
            m.clear();
        }
    }

    fn missing_status(&self) -> Vec<control::VipMissingStatus> {
        self.missing
            .lock()
            .map(|m| {
                m.iter()
                    .map(|m| control::VipMissingStatus {
                        vip: format!("{}/{}", m.vip.addr, m.vip.prefix_len),
                        error: m.error.clone(),
                        attempts: m.attempts,
                        since_unix_ms: m.since_unix_ms,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Engine {
    /// Action::AddVips. A VIP the kernel refuses does not change the election, as in
    /// keepalived 2.2.7: netlink_iplist logs the netlink error, leaves the address
    /// marked not set and the instance stays MASTER (it tries again only at its next
    /// transition to master). Faulting instead would take every other VIP of the
    /// instance off a node that holds them, for a failure the peer usually shares (a
    /// duplicate address, a missing interface, a full address table). haxdp stays MASTER
    /// too, but does not leave it there: the VIP is retried with backoff
    /// (VIP_RETRY_FIRST doubling to VIP_RETRY_MAX) while this node is master, announced
    /// with gratuitous ARP / NA once added, and shown in `haxdp status` until then.
    async fn add_vips(&mut self, i: usize) {
        let mut failed = Vec::new();
        for v in self.insts[i].vips.clone() {
            if let Err(e) = self.nl.add_vip(&v).await {
                error!(
                    "{} vrid {}: {e}; staying MASTER without it and retrying",
                    self.insts[i].spec.ifname, self.insts[i].spec.core.vrid
                );
                failed.push(MissingVip {
                    vip: v,
                    error: e.to_string(),
                    attempts: 1,
                    since_unix_ms: control::unix_ms(),
                });
            }
        }
        let inst = &mut self.insts[i];
        if let Ok(mut m) = inst.upkeep.missing.lock() {
            *m = failed;
            if m.is_empty() {
                inst.upkeep.retry = None;
                return;
            }
        }
        let missing = inst.upkeep.missing.clone();
        let nl = self.nl.clone();
        let garp = self.garp.clone();
        let mac = inst.mac;
        let name = inst.spec.core.name.clone();
        let t = inst.spec.garp.clone();
        inst.upkeep.retry = Some(AbortOnDrop(tokio::spawn(retry_vips(
            nl, garp, mac, missing, name, t,
        ))));
    }

    /// A master heard a lower-priority advert (Action::Discarded NotBetterThanUs): a
    /// router that should be backup acts as master, e.g. after a brief partition, and the
    /// LAN's ARP caches may point at it. keepalived 2.2.7 (vrrp_state_master_rx) sends
    /// garp_lower_prio_repeat gratuitous ARPs at once and again garp_lower_prio_delay
    /// later, for this instance and each other member of its sync group that is master
    /// (vrrp_send_link_update sends nothing without the VIPs). keepalived starts a sequence
    /// per such advert; here one sequence per instance runs at a time, and adverts during
    /// it are counted, so that a stream of them cannot multiply the bursts.
    fn lower_prio_advert(&mut self, i: usize) {
        let inst = &mut self.insts[i];
        inst.upkeep.lower_prio_adverts += 1;
        let n = inst.upkeep.lower_prio_adverts;
        if n % 100 == 1 {
            info!(
                "{}: lower-priority advert heard while master ({n} so far){}",
                inst.spec.core.name,
                if inst.spec.garp.lower_prio_repeat > 0 {
                    ", refreshing ARP caches"
                } else {
                    ""
                }
            );
        }
        let mut members = vec![i];
        if let Some(g) = inst.spec.sync_group.clone() {
            members.extend((0..self.insts.len()).filter(|&j| {
                j != i
                    && self.insts[j].spec.sync_group.as_deref() == Some(g.as_str())
                    && self.insts[j].core.state() == State::Master
            }));
        }
        for j in members {
            self.start_lower_prio_garp(j);
        }
    }

    fn start_lower_prio_garp(&mut self, i: usize) {
        let inst = &mut self.insts[i];
        let t = inst.spec.garp.clone();
        if t.lower_prio_repeat == 0 {
            return;
        }
        if inst
            .upkeep
            .lower_prio_garp
            .as_ref()
            .is_some_and(|h| !h.0.is_finished())
        {
            return;
        }
        let sender = self.garp.clone();
        let mac = inst.mac;
        let vips: Vec<(u32, IpAddr)> = inst.vips.iter().map(|v| (v.ifindex, v.addr)).collect();
        let name = inst.spec.core.name.clone();
        let bursts = inst.upkeep.lower_prio_bursts.clone();
        inst.upkeep.lower_prio_garp = Some(AbortOnDrop(tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            garp_burst(&sender, mac, &vips, &name, t.lower_prio_repeat, t.interval).await;
            bursts.fetch_add(1, Relaxed);
            if !t.lower_prio_delay.is_zero() {
                tokio::time::sleep(t.lower_prio_delay).await;
                garp_burst(&sender, mac, &vips, &name, t.lower_prio_repeat, t.interval).await;
                bursts.fetch_add(1, Relaxed);
            }
        })));
    }
}

/// Adds the VIPs in `missing` again, backing off, until none is left; each one added is
/// announced as on becoming master (garp_master_repeat, garp_interval apart).
async fn retry_vips(
    nl: Netlink,
    garp: Arc<GarpSender>,
    mac: [u8; 6],
    missing: Arc<std::sync::Mutex<Vec<MissingVip>>>,
    name: String,
    t: GarpTiming,
) {
    let mut wait = VIP_RETRY_FIRST;
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(VIP_RETRY_MAX);
        let todo: Vec<Vip> = match missing.lock() {
            Ok(m) => m.iter().map(|m| m.vip.clone()).collect(),
            Err(_) => return,
        };
        if todo.is_empty() {
            return;
        }
        for v in todo {
            let res = nl.add_vip(&v).await;
            let added = {
                let Ok(mut m) = missing.lock() else { return };
                let Some(pos) = m.iter().position(|m| m.vip == v) else {
                    continue;
                };
                match res {
                    Ok(()) => {
                        let gone = m.remove(pos);
                        info!(
                            "{name}: VIP {v} added after {} attempt(s)",
                            gone.attempts + 1
                        );
                        true
                    }
                    Err(e) => {
                        let entry = &mut m[pos];
                        entry.attempts += 1;
                        let e = e.to_string();
                        // Logged when the error changes and at attempts 2, 4, 8, ...
                        if e != entry.error || entry.attempts.is_power_of_two() {
                            warn!(
                                "{name}: VIP {v} still not added ({} attempts): {e}",
                                entry.attempts
                            );
                        }
                        entry.error = e;
                        false
                    }
                }
            };
            if added {
                let at = [(v.ifindex, v.addr)];
                garp_burst(&garp, mac, &at, &name, t.repeat, t.interval).await;
            }
        }
    }
}
