//! The engine's side of a planned restart: the running daemon driving a hand-over to its
//! successor, and the successor taking over. The protocol and its reasons are in
//! `crate::handover`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::{Engine, Ev, EvTx, KernelRx, RxPath};
use crate::clock;
use crate::control;
use crate::handover::{self as proto, Channel, InstanceState, Msg, Snapshot};

/// A step of a hand-over this daemon drives, sent to the engine by the task that talks
/// to the successor.
#[derive(Debug)]
pub(super) enum Step {
    /// Pin the XDP links; answer with the receive path of each pinned interface.
    PinLinks(oneshot::Sender<Result<BTreeMap<String, String>, String>>),
    /// Stop the timers, the event ring and the control socket; the snapshot follows
    /// once every event read from the ring before has been handled.
    Freeze(oneshot::Sender<Snapshot>),
    Snapshot(oneshot::Sender<Snapshot>),
    /// The successor confirmed (`ok`), or failed: roll back.
    Finish {
        ok: bool,
        why: String,
    },
}

/// The successor's first exchange: `Hello`, then the predecessor's `Go` with its pinned
/// links.
pub(super) async fn hello(ch: &mut Channel) -> Result<BTreeMap<String, String>, String> {
    ch.send(&Msg::Hello {
        pid: std::process::id(),
        version: proto::version().to_string(),
    })
    .await
    .map_err(|e| format!("cannot write to the running daemon: {e}"))?;
    match ch.recv(Duration::from_secs(10)).await? {
        Msg::Go { links } => Ok(links),
        Msg::Refuse { why } => Err(format!("the running daemon refused: {why}")),
        other => Err(format!(
            "unexpected message from the running daemon: {other:?}"
        )),
    }
}

/// The successor's XDP program, on the maps the running daemon pinned for this network
/// namespace; a fresh load where it had none (it ran without XDP).
pub(super) fn load_fast(links: &BTreeMap<String, String>) -> Result<Option<KernelRx>, String> {
    let netns = haxdp_common::current_netns_inode().map_err(|e| e.to_string())?;
    let dir = haxdp_common::pin_dir(netns);
    if !dir.join(haxdp_common::MAP_PEERS).exists() {
        if !links.is_empty() {
            return Err(format!("{} has no pinned maps", dir.display()));
        }
        return Ok(KernelRx::load()
            .map_err(|e| warn!("XDP fast path unavailable, receiving adverts on raw sockets: {e}"))
            .ok());
    }
    KernelRx::load_handover(dir)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn same(st: &InstanceState, i: &super::Inst) -> bool {
    st.name == i.spec.core.name && st.vrid == i.spec.core.vrid && st.ifname == i.spec.ifname
}

impl Engine {
    /// The successor's side, after `hello`: builds every instance (its sockets, the XDP
    /// program onto the pinned links), says `Ready`, takes the predecessor's state, binds
    /// the control socket, says `Done` and waits for the predecessor to go, then adopts
    /// every instance without a transition. An error leaves everything to the
    /// predecessor (nothing has advertised or changed an address yet).
    pub(super) async fn take_over(&mut self, ch: &mut Channel) -> Result<(), String> {
        let specs = self.spec.instances.clone();
        for s in specs {
            if self.waits_for_interface(&s).await {
                continue;
            }
            let inst = self.build_instance(s).await.map_err(|e| format!("{e:#}"))?;
            self.insts.push(inst);
        }
        self.restart_tracker().await;
        ch.send(&Msg::Ready)
            .await
            .map_err(|e| format!("cannot write to the running daemon: {e}"))?;
        let snap = match ch.recv(proto::READY_WITHIN).await? {
            Msg::State(s) => *s,
            Msg::Refuse { why } => return Err(format!("the running daemon refused: {why}")),
            other => return Err(format!("unexpected message: {other:?}")),
        };
        if let Some(st) = snap
            .instances
            .iter()
            .find(|st| !self.insts.iter().any(|i| same(st, i)))
        {
            return Err(format!(
                "the configuration on disk has no instance {} (vrid {} on {}), which the running \
                 daemon runs: reload it (systemctl reload haxdp) before upgrading, so that its \
                 VIPs are released by the election",
                st.name, st.vrid, st.ifname
            ));
        }
        let listener = control::bind().map_err(|e| e.to_string())?;
        ch.send(&Msg::Done)
            .await
            .map_err(|e| format!("cannot write to the running daemon: {e}"))?;
        // The predecessor closes its end when it exits; a refusal means it rolled back
        // (it gave up waiting) and still runs everything.
        match ch.recv(Duration::from_secs(5)).await {
            Err(e) if e.contains("closed") => {}
            Ok(Msg::Refuse { why }) => {
                return Err(format!("the running daemon rolled back: {why}"))
            }
            Ok(other) => return Err(format!("unexpected message: {other:?}")),
            Err(e) => return Err(format!("the running daemon did not go: {e}")),
        }
        self.spawn_control(listener);
        self.spawn_ring().map_err(|e| format!("{e:#}"))?;
        let now = clock::monotonic_ns();
        let mut notes = Vec::new();
        for i in 0..self.insts.len() {
            let Some(st) = snap.instances.iter().find(|st| same(st, &self.insts[i])) else {
                notes.push(format!(
                    "{} started fresh (new)",
                    self.insts[i].spec.core.name
                ));
                self.start_instance(i, now).await;
                continue;
            };
            let inst = &mut self.insts[i];
            inst.tracked = st.tracked.iter().cloned().collect();
            inst.held = st.held;
            inst.protected = st.protected;
            // The predecessor's record of the master keeps its SEEN entry; one from
            // a build without SEEN gets one now.
            inst.seen = match (st.protected, self.fast.as_mut()) {
                (Some(m), Some(f)) if inst.rx != RxPath::Socket => f
                    .seen_entry(inst.ifindex, inst.core.config(), m)
                    .ok()
                    .flatten()
                    .map(|e| (m, e)),
                _ => None,
            };
            inst.discards = st.discards.clone();
            inst.in_fault = st.in_fault;
            inst.transitions_wall = st.transitions_wall.clone();
            match inst.core.adopt(now, st.core.clone()) {
                Some(acts) => {
                    // Nothing new to log: the predecessor logged these transitions.
                    let name = inst.spec.core.name.clone();
                    let at = inst.core.transitions().last().map_or(0, |t| t.at_ns);
                    crate::ops::keepalived_lines_seen(&name, at, inst.core.stats().pri_zero_sent);
                    // `start_mode` in the status: the state by its fixed name (State's
                    // Display, `MASTER`), not an upper-cased Debug format.
                    notes.push(format!("{} {}", name.to_uppercase(), inst.core.state()));
                    self.apply(i, acts).await;
                }
                None => self.start_instance(i, now).await,
            }
            // The configuration on disk may weigh the checks differently.
            self.recompute_priority(i, now).await;
        }
        if let Some(f) = self.fast.as_mut() {
            f.release_link_pins();
        }
        self.start_mode = format!(
            "handed over from pid {} (version {}): {}",
            snap.pid,
            snap.version,
            notes.join(", ")
        );
        info!("started {}", self.start_mode);
        self.write_resume();
        crate::sd::main_pid();
        if let Some(addr) = crate::ops::options().metrics_listen {
            // The predecessor's listener goes with it, a moment after it closed the socket.
            let mut tries = 0;
            while let Err(e) = crate::metrics::start(addr) {
                tries += 1;
                if tries == 50 {
                    error!("cannot serve metrics on {addr}: {e}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// `haxdp upgrade` on the running daemon: starts the successor and the task that
    /// drives the hand-over.
    pub(super) fn start_upgrade(&mut self, reply: oneshot::Sender<(bool, String)>) {
        if self.upgrading || self.stopping {
            let _ = reply.send((false, "a hand-over or a stop is already under way".into()));
            return;
        }
        if let Some(since) = self.xdp_loading {
            let ms = clock::monotonic_ns().saturating_sub(since) / 1_000_000;
            let _ = reply.send((
                false,
                format!("the XDP program is still loading (for {ms} ms); try again in a second"),
            ));
            return;
        }
        let (child, ch) = match proto::spawn_successor() {
            Ok(x) => x,
            Err(e) => {
                let _ = reply.send((false, format!("cannot start the new daemon: {e}")));
                return;
            }
        };
        self.upgrading = true;
        info!(
            "upgrade: started the new daemon (pid {}); handing over",
            child.id().unwrap_or(0)
        );
        tokio::spawn(drive(self.tx.clone(), child, ch, reply));
    }

    /// One step of the hand-over this daemon drives; `Some(0)` when it is done and this
    /// process exits.
    pub(super) async fn on_step(&mut self, step: Step) -> Option<i32> {
        match step {
            Step::PinLinks(reply) => {
                let res = match self.fast.as_mut() {
                    None => Ok(BTreeMap::new()),
                    Some(f) => f.pin_links().map_err(|e| e.to_string()).map(|names| {
                        names
                            .into_iter()
                            .map(|n| {
                                let path =
                                    self.attached.get(&n).copied().unwrap_or(RxPath::XdpNative);
                                (n, path.name().to_string())
                            })
                            .collect()
                    }),
                };
                let _ = reply.send(res);
            }
            Step::Freeze(reply) => {
                // Timers stop now; events already read from the ring are in the queue
                // ahead of the snapshot request, which is queued behind them.
                self.frozen = true;
                if let Some(t) = self.ring_task.take() {
                    t.abort();
                }
                if let Some(t) = self.control_task.take() {
                    t.abort();
                }
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Ev::Handover(Step::Snapshot(reply))).await;
                });
            }
            Step::Snapshot(reply) => {
                self.handed = true;
                let _ = reply.send(self.handover_snapshot());
            }
            Step::Finish { ok: true, .. } => {
                info!("handed over to the new daemon; exiting without releasing anything");
                if let Some(f) = self.fast.as_mut() {
                    f.keep_pins();
                }
                proto::HANDED_OVER.store(true, std::sync::atomic::Ordering::SeqCst);
                if let Some(t) = self.tracker.take() {
                    t.shutdown().await;
                }
                return Some(0);
            }
            Step::Finish { ok: false, why } => {
                warn!("upgrade failed: {why}; this daemon goes on");
                self.roll_back().await;
                if std::mem::take(&mut self.term_pending) {
                    // The TERM that came while frozen: stop now, as it asked.
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(Ev::Signal(super::Sig::Term)).await;
                    });
                }
            }
        }
        None
    }

    /// Back to running after a failed hand-over: the links, the ring and the control
    /// socket are ours again, the timers run (a Master's overdue advert goes at once).
    async fn roll_back(&mut self) {
        if let Some(f) = self.fast.as_mut() {
            for (ifname, e) in f.take_back_links() {
                error!("{ifname}: cannot take the XDP link back: {e}; the next housekeeping re-attaches");
            }
        }
        if self.ring_task.is_none() {
            if let Err(e) = self.spawn_ring() {
                error!("cannot read the XDP event ring again: {e:#}");
            }
        }
        if self.control_task.is_none() {
            match control::bind() {
                Ok(l) => self.spawn_control(l),
                Err(e) => error!("{e}"),
            }
        }
        self.frozen = false;
        self.handed = false;
        self.upgrading = false;
    }

    fn handover_snapshot(&self) -> Snapshot {
        Snapshot {
            pid: std::process::id(),
            version: proto::version().to_string(),
            started_unix_ms: self.started_unix_ms,
            attached: self
                .attached
                .iter()
                .map(|(k, v)| (k.clone(), v.name().to_string()))
                .collect(),
            instances: self
                .insts
                .iter()
                .map(|i| InstanceState {
                    name: i.spec.core.name.clone(),
                    vrid: i.spec.core.vrid,
                    ifname: i.spec.ifname.clone(),
                    core: i.core.handover(),
                    tracked: i.tracked.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    held: i.held,
                    protected: i.protected,
                    discards: i.discards.clone(),
                    link_up: i.link_up,
                    in_fault: i.in_fault,
                    transitions_wall: i.transitions_wall.clone(),
                })
                .collect(),
        }
    }
}

/// Talks to the successor for the running daemon; every failure ends in a rollback.
async fn drive(
    tx: EvTx,
    mut child: tokio::process::Child,
    mut ch: Channel,
    reply: oneshot::Sender<(bool, String)>,
) {
    let pid = child.id().unwrap_or(0);
    let outcome = converse(&tx, &mut ch).await;
    match outcome {
        Ok(version) => {
            // The successor waits for this end to close: it is the sign we are gone.
            let _ = reply.send((
                true,
                format!("handed over to pid {pid} (version {version}); the VIPs did not move"),
            ));
            drop(ch);
            // Let the control connection write the answer before this process exits.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx
                .send(Ev::Handover(Step::Finish {
                    ok: true,
                    why: String::new(),
                }))
                .await;
        }
        Err(why) => {
            let _ = ch.send(&Msg::Refuse { why: why.clone() }).await;
            drop(ch);
            // A successor that has not adopted anything is stopped without its stop
            // sequence (TERM would send priority 0 for instances it does not run).
            let _ = child.start_kill();
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            let _ = reply.send((
                false,
                format!("the new daemon (pid {pid}) did not take over: {why}; the running daemon goes on ({status:?})"),
            ));
            let _ = tx.send(Ev::Handover(Step::Finish { ok: false, why })).await;
        }
    }
}

async fn converse(tx: &EvTx, ch: &mut Channel) -> Result<String, String> {
    let version = match ch.recv(proto::READY_WITHIN).await? {
        Msg::Hello { version, .. } => version,
        Msg::Refuse { why } => return Err(why),
        other => return Err(format!("unexpected message: {other:?}")),
    };
    let (r, a) = oneshot::channel();
    tx.send(Ev::Handover(Step::PinLinks(r)))
        .await
        .map_err(|_| "the engine stopped".to_string())?;
    let links = a.await.map_err(|_| "the engine stopped".to_string())??;
    ch.send(&Msg::Go { links })
        .await
        .map_err(|e| format!("cannot write to the new daemon: {e}"))?;
    match ch.recv(proto::READY_WITHIN).await? {
        Msg::Ready => {}
        Msg::Refuse { why } => return Err(why),
        other => return Err(format!("unexpected message: {other:?}")),
    }
    let (r, a) = oneshot::channel();
    tx.send(Ev::Handover(Step::Freeze(r)))
        .await
        .map_err(|_| "the engine stopped".to_string())?;
    let snap = a.await.map_err(|_| "the engine stopped".to_string())?;
    ch.send(&Msg::State(Box::new(snap)))
        .await
        .map_err(|e| format!("cannot write to the new daemon: {e}"))?;
    match ch.recv(proto::DONE_WITHIN).await? {
        Msg::Done => Ok(version),
        Msg::Refuse { why } => Err(why),
        other => Err(format!("unexpected message: {other:?}")),
    }
}
