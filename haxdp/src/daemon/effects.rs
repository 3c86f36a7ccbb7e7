//! Effects of the election: `apply` (its actions), VIPs and their retries, gratuitous
//! ARP / NA, adverts, notify scripts, sync groups, and tracking and priorities.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use haxdp_vrrp::node as election;
use haxdp_vrrp::{Action, DiscardReason, FaultCause, Input, State};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::clock;
use crate::control;
use crate::garp::GarpSender;
use crate::netlink::{Netlink, Vip};
use crate::spec::{self, GarpTiming};
use crate::track::{self, CheckState, ItemKind, TrackEvent, TrackKey, Tracker};

use super::{Batched, Engine, Ev, RxPath};

impl Engine {
    pub(super) async fn restart_tracker(&mut self) {
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

    pub(super) async fn on_track_interface(&mut self, ifname: String, up: bool) {
        let key = TrackKey::Interface(ifname.clone());
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
        let now = clock::monotonic_ns();
        for i in touched {
            self.recompute_priority(i, now).await;
        }
    }

    pub(super) async fn on_track(&mut self, ev: TrackEvent) {
        let now = clock::monotonic_ns();
        let mut touched = Vec::new();
        for (i, inst) in self.insts.iter_mut().enumerate() {
            if inst
                .spec
                .tracks
                .iter()
                .any(|t| t.name == ev.check && t.kind == ev.kind)
            {
                inst.tracked
                    .insert(TrackKey::Check(ev.check.clone()), ev.state);
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
    pub(super) async fn recompute_priority(&mut self, i: usize, now: u64) {
        let inst = &mut self.insts[i];
        let keys: Vec<TrackKey> = inst.spec.tracks.iter().map(track_key).collect();
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
        let faults: Vec<FaultCause> = outcome
            .contributions
            .iter()
            .filter(|c| c.fault)
            .map(|c| FaultCause::Check(c.name.clone()))
            .collect();
        inst.priority_reasons = reasons.clone();
        let mut acts = Vec::new();
        let old_faults: Vec<FaultCause> = std::mem::take(&mut inst.fault_reasons);
        // Faults that came on, then faults that cleared.
        for (on, set, other) in [(true, &faults, &old_faults), (false, &old_faults, &faults)] {
            for f in set.iter().filter(|f| !other.contains(f)) {
                acts.extend(inst.core.handle(
                    now,
                    Input::Fault {
                        on,
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
        self.apply(i, acts).await;
    }

    /// Performs a state machine's actions, in order.
    pub(super) async fn apply(&mut self, i: usize, acts: Vec<Action>) {
        let mut changed = None;
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
                        .entry(reason.name().to_string())
                        .or_insert(0) += 1;
                    if reason == DiscardReason::NotBetterThanUs
                        && self.insts[i].core.state() == State::Master
                    {
                        self.lower_prio_advert(i);
                    }
                }
                // Recorded once the actions are done; the last change of the list counts.
                Action::Transition { from, to, why } => changed = Some((from, to, why)),
            }
        }
        let mut took_over = false;
        let mut transitioned = false;
        let inst = &mut self.insts[i];
        // The change is stamped with the wall clock under its CLOCK_MONOTONIC time in the
        // transition log, once per time (`status` pairs the two by it).
        let at_ns = inst.core.transitions().last().map(|t| t.at_ns);
        if let (Some((from, to, why)), Some(at_ns)) = (changed, at_ns) {
            if inst.transitions_wall.last().map(|w| w.0) != Some(at_ns) {
                took_over = to == State::Master;
                transitioned = true;
                info!("{}: {from:?} -> {to:?} ({why})", inst.core.config().name);
                inst.transitions_wall.push((at_ns, control::unix_ms()));
                if inst.transitions_wall.len() > 64 {
                    inst.transitions_wall.remove(0);
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
}

/// `repeat` announcements of every VIP, `gap` apart.
pub(super) async fn garp_burst(
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

pub(super) fn notify_state(s: State) -> crate::notify::NotifyState {
    use crate::notify::NotifyState;
    match s {
        State::Master => NotifyState::Master,
        State::Backup => NotifyState::Backup,
        State::Fault => NotifyState::Fault,
        State::Initialize => NotifyState::Stop,
    }
}

/// Key of a tracked item's state (see [`TrackKey`]).
pub(super) fn track_key(t: &spec::TrackSpec) -> TrackKey {
    match t.kind {
        ItemKind::Interface => TrackKey::Interface(t.name.clone()),
        _ => TrackKey::Check(t.name.clone()),
    }
}

/// First wait before adding a VIP again that the kernel refused; doubled each attempt.
pub(super) const VIP_RETRY_FIRST: Duration = Duration::from_millis(250);

/// Longest wait between attempts: a VIP that cannot be added is tried every 10 s for
/// as long as this node is master.
pub(super) const VIP_RETRY_MAX: Duration = Duration::from_secs(10);

/// A task that is aborted when its handle is dropped, so that it cannot outlive the
/// instance (or the mastership) it works for.
pub(super) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A VIP this master could not add.
#[derive(Debug, Clone)]
pub(super) struct MissingVip {
    vip: Vip,
    error: String,
    attempts: u32,
    since_unix_ms: u64,
}

/// Per-instance work that lives only while the instance is master.
#[derive(Default)]
pub(super) struct Upkeep {
    /// VIPs not added yet; shared with the retry task, which removes the ones it adds.
    missing: Arc<std::sync::Mutex<Vec<MissingVip>>>,
    retry: Option<AbortOnDrop>,
    /// The GARP sequence of garp_lower_prio_repeat / garp_lower_prio_delay.
    lower_prio_garp: Option<AbortOnDrop>,
    pub(super) lower_prio_adverts: u64,
    pub(super) lower_prio_bursts: Arc<std::sync::atomic::AtomicU64>,
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

    pub(super) fn missing_status(&self) -> Vec<control::VipMissingStatus> {
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
pub(super) async fn retry_vips(
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
