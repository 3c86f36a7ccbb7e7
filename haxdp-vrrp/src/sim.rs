//! Deterministic simulator: N routers' [`Instance`]s on a virtual clock over one simulated
//! LAN with loss, delay, partitions, crashes, faults and priority changes.
//!
//! Adverts go through the real codec ([`encode`] at the sender, [`decode`] at each
//! receiver: the acceptance rule the XDP program is tested equal to), and by default each
//! receiver gets them as the daemon does, through a model of the kernel's delivery
//! ([`Delivery::Kernel`], the contract in [`crate::node`]): the kernel table records every
//! advert's timestamp, and only a new, changed, resumed or requested advert reaches the
//! core. Timers and the takeover re-check run through the same [`crate::node`] functions
//! the daemon calls. [`Delivery::Full`] feeds every advert instead, the idealised world the
//! kernel's delivery must not differ from.
//!
//! [`run_scenario`] plays a seeded random [`Scenario`] and checks the election invariants
//! after every step; a failure carries the seed so it can be replayed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::fsm::{Action, ConfigError, Input, Instance, InstanceConfig, State, NS_PER_CS};
use crate::node::{self, KernelView, Member};
use crate::packet::{decode, encode, pass_auth, Advert, Family, Version};

/// How adverts reach a simulated router's core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Every advert is fed as [`Input::Advert`].
    Full,
    /// As the XDP program delivers them (see [`crate::node`]): new, changed, resumed after
    /// 3 silent intervals, or the first after [`Action::ReportPeers`]; otherwise only the
    /// kernel table's timestamp moves.
    Kernel,
}

/// VRRP multicast group for IPv4 (RFC 9568 5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP multicast group for IPv6 (RFC 9568 5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// xorshift64*: tiny, seedable, and the same on every platform, so a seed replays exactly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is xorshift's fixed point; spread the seed with splitmix64's constant.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u32) -> bool {
        self.next_u64() % 1000 < u64::from(permille)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = (self.next_u64() % items.len() as u64) as usize;
        items.get(i)
    }
}

/// Link conditions of the simulated LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// Per-packet, per-receiver loss probability in 1/1000.
    pub loss_permille: u32,
    pub delay_min_ns: u64,
    pub delay_max_ns: u64,
}

/// A state change seen in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTransition {
    pub at_ns: u64,
    pub router: usize,
    /// The router's instance (VRID) that changed.
    pub member: usize,
    pub old: State,
    pub new: State,
}

/// A receiver's kernel: its PEERS records and the report epoch of its instance, updated
/// by the XDP program's own [`haxdp_common::track_advert`]. Like the pinned BPF maps, it
/// survives a restart of the router's daemon.
#[derive(Debug, Default)]
struct KernelTable {
    peers: HashMap<IpAddr, haxdp_common::PeerState>,
    epoch: u32,
    /// The instance's room (`haxdp_common::PEERS_UNKNOWN_PER_INSTANCE` unknown sources; a
    /// protected one takes none): a full room admits a newcomer only in place of a lower-
    /// priority unknown record, as the XDP program does.
    unknown: Vec<IpAddr>,
    protected: Option<IpAddr>,
}

impl KernelTable {
    /// Records an advert that passed the acceptance rule, as the XDP program does.
    fn record(&mut self, src: IpAddr, advert: &Advert, now: u64) -> Recorded {
        // Any hash of the address list does: the program only compares it.
        let mut addr_hash: u64 = 0xcbf2_9ce4_8422_2325;
        for a in &advert.addrs {
            let octets = match a {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            for b in octets {
                addr_hash = (addr_hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let obs = haxdp_common::Observed {
            now_ns: now,
            addr_hash,
            priority: advert.priority,
            version: match advert.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
            interval_cs: advert.max_adver_int_cs,
            naddrs: advert.addrs.len() as u8,
        };
        if !self.peers.contains_key(&src) && self.protected != Some(src) {
            let room = haxdp_common::PEERS_UNKNOWN_PER_INSTANCE as usize;
            if self.unknown.len() >= room {
                let lowest = self
                    .unknown
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, a)| self.peers.get(*a).map_or(0, |p| p.priority))
                    .map(|(k, a)| (k, *a, self.peers.get(a).map_or(0, |p| p.priority)));
                match lowest {
                    Some((k, victim, prio)) if advert.priority > prio && advert.priority != 0 => {
                        self.peers.remove(&victim);
                        self.unknown.remove(k);
                    }
                    // Refused: dropped as peers_full, not recorded.
                    _ => return Recorded::Refused,
                }
            }
            self.unknown.push(src);
        }
        let st = self
            .peers
            .entry(src)
            .or_insert_with(|| haxdp_common::fresh_peer(0));
        let prev = (st.count > 0).then_some(st.last_ns);
        let change = haxdp_common::track_advert(st, &obs, self.epoch);
        if change != 0 {
            Recorded::Reported(prev)
        } else {
            Recorded::Quiet
        }
    }
}

/// What the kernel did with an advert.
enum Recorded {
    /// The instance's room was full: dropped (`peers_full`).
    Refused,
    /// Only the source's timestamp moved.
    Quiet,
    /// Pushed to user space, with the source's previous advert time (`None`: new).
    Reported(Option<u64>),
}

impl KernelTable {
    /// `KernelRx::protect_peer` for the master the core follows (the one before gives its
    /// protection back and counts against the room again).
    fn protect(&mut self, want: Option<IpAddr>) {
        if want == self.protected {
            return;
        }
        if let Some(old) = self.protected.take() {
            if self.peers.contains_key(&old) && !self.unknown.contains(&old) {
                self.unknown.push(old);
            }
        }
        if let Some(m) = want {
            self.unknown.retain(|a| *a != m);
        }
        self.protected = want;
    }
}

impl KernelView for KernelTable {
    fn last_advert_ns(&mut self, _member: usize, src: IpAddr) -> Option<u64> {
        self.peers
            .get(&src)
            .filter(|p| p.count > 0)
            .map(|p| p.last_ns)
    }
}

/// One instance of a simulated router; the members of a router with several form one
/// `vrrp_sync_group`.
#[derive(Debug)]
struct SimMember {
    cfg: InstanceConfig,
    inst: Instance,
    held: bool,
    sync: Option<String>,
    holds_vips: bool,
}

impl Member for SimMember {
    fn core(&self) -> &Instance {
        &self.inst
    }
    fn core_mut(&mut self) -> &mut Instance {
        &mut self.inst
    }
    fn sync_group(&self) -> Option<&str> {
        self.sync.as_deref()
    }
    fn held(&self) -> bool {
        self.held
    }
    fn set_held(&mut self, held: bool) {
        self.held = held;
    }
}

/// A router's kernel: one table per member instance (per VRID).
#[derive(Debug, Default)]
struct Kernels(Vec<KernelTable>);

impl KernelView for Kernels {
    fn last_advert_ns(&mut self, member: usize, src: IpAddr) -> Option<u64> {
        self.0.get_mut(member)?.last_advert_ns(0, src)
    }
}

#[derive(Debug)]
struct Router {
    ms: Vec<SimMember>,
    up: bool,
    group: u32,
    kernel: Kernels,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Packet {
    at: u64,
    seq: u64,
    to: usize,
    src: IpAddr,
    bytes: Vec<u8>,
}

/// The simulated LAN and its routers.
#[derive(Debug)]
pub struct Sim {
    now: u64,
    seq: u64,
    routers: Vec<Router>,
    queue: BinaryHeap<Reverse<Packet>>,
    net: Net,
    rng: Rng,
    delivery: Delivery,
    /// Until when a forged advert may hold a non-preempting backup back.
    forged_hold_until: u64,
    transitions: Vec<SimTransition>,
    /// Human-readable trace, kept for failure reports.
    trace: Vec<String>,
    errors: Vec<String>,
}

impl Sim {
    /// Builds the routers (all down and in Initialize); call [`Sim::start`] for each.
    pub fn new(cfgs: Vec<InstanceConfig>, net: Net, seed: u64) -> Result<Sim, ConfigError> {
        Sim::with_delivery(
            cfgs.into_iter().map(|c| vec![c]).collect(),
            net,
            seed,
            Delivery::Kernel,
        )
    }

    /// Routers with one instance per VRID each (`cfgs[router][member]`; with several, the
    /// members of a router form a sync group), delivering adverts as `delivery` says.
    pub fn with_delivery(
        cfgs: Vec<Vec<InstanceConfig>>,
        net: Net,
        seed: u64,
        delivery: Delivery,
    ) -> Result<Sim, ConfigError> {
        let routers = cfgs
            .into_iter()
            .map(|members| {
                let sync = (members.len() > 1).then(|| "SG".to_string());
                let n = members.len();
                Ok(Router {
                    ms: members
                        .into_iter()
                        .map(|cfg| {
                            Ok(SimMember {
                                inst: Instance::new(cfg.clone())?,
                                cfg,
                                held: false,
                                sync: sync.clone(),
                                holds_vips: false,
                            })
                        })
                        .collect::<Result<Vec<_>, ConfigError>>()?,
                    up: false,
                    group: 0,
                    kernel: Kernels((0..n).map(|_| KernelTable::default()).collect()),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Sim {
            now: 0,
            seq: 0,
            routers,
            queue: BinaryHeap::new(),
            net,
            rng: Rng::new(seed ^ 0x5eed),
            delivery,
            forged_hold_until: 0,
            transitions: Vec::new(),
            trace: Vec::new(),
            errors: Vec::new(),
        })
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn len(&self) -> usize {
        self.routers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    pub fn net(&self) -> Net {
        self.net
    }

    /// Instances (VRIDs) per router.
    pub fn members(&self) -> usize {
        self.routers.first().map_or(0, |r| r.ms.len())
    }

    /// Router `i`'s first instance.
    pub fn instance(&self, i: usize) -> &Instance {
        &self.routers[i].ms[0].inst
    }

    /// Router `i`'s instance `m`.
    pub fn member(&self, i: usize, m: usize) -> &Instance {
        &self.routers[i].ms[m].inst
    }

    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.routers[i].up
    }

    pub fn group(&self, i: usize) -> u32 {
        self.routers[i].group
    }

    /// Whether router `i` currently has the VIPs of its first instance configured.
    pub fn holds_vips(&self, i: usize) -> bool {
        self.routers[i].ms[0].holds_vips
    }

    /// Whether router `i` currently has the VIPs of its instance `m` configured.
    pub fn member_holds_vips(&self, i: usize, m: usize) -> bool {
        self.routers[i].ms[m].holds_vips
    }

    pub fn transitions(&self) -> &[SimTransition] {
        &self.transitions
    }

    /// Problems the simulator itself saw (an advert that failed to encode or decode).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The last lines of the trace, for a failure report.
    pub fn trace_tail(&self, n: usize) -> String {
        let start = self.trace.len().saturating_sub(n);
        self.trace[start..].join("\n")
    }

    /// Feeds `input` to every instance of router `i`.
    fn feed_all(&mut self, i: usize, input: Input) {
        let desc = format!("{input:?}");
        self.node_step(i, desc, |r, now, out| {
            for m in 0..r.ms.len() {
                let acts = r.ms[m].inst.handle(now, input.clone());
                out.push((m, acts));
            }
        });
    }

    /// Runs one node-level step on router `i` (as the daemon's engine does on an event),
    /// records state changes, propagates sync-group faults as the daemon does, and
    /// performs the actions.
    fn node_step(
        &mut self,
        i: usize,
        desc: String,
        step: impl FnOnce(&mut Router, u64, &mut node::Out),
    ) {
        if !self.routers[i].up {
            return;
        }
        let now = self.now;
        let old: Vec<State> = self.routers[i].ms.iter().map(|m| m.inst.state()).collect();
        let own_before: Vec<bool> = self.routers[i].ms.iter().map(node::own_fault).collect();
        let mut out = node::Out::new();
        step(&mut self.routers[i], now, &mut out);
        // keepalived's sync group: a member's own fault faults the others, its end
        // releases them (the daemon's flush_sync runs the same node functions).
        let r = &mut self.routers[i];
        for (m, before) in own_before.into_iter().enumerate() {
            let is = node::own_fault(&r.ms[m]);
            if is != before {
                node::propagate_fault(&mut r.ms, m, is, now, &mut out);
            }
        }
        for (m, was) in old.into_iter().enumerate() {
            let new = self.routers[i].ms[m].inst.state();
            if was != new {
                self.transitions.push(SimTransition {
                    at_ns: now,
                    router: i,
                    member: m,
                    old: was,
                    new,
                });
                self.trace
                    .push(format!("{now:>14} r{i}.{m} {was:?} -> {new:?} on {desc}"));
            }
        }
        for (m, acts) in out {
            for a in acts {
                self.apply(i, m, a);
            }
        }
        let r = &mut self.routers[i];
        for m in 0..r.ms.len() {
            r.kernel.0[m].protect(node::protected_master(&r.ms[m]));
        }
    }

    fn apply(&mut self, i: usize, m: usize, action: Action) {
        match action {
            Action::SendAdvert { priority } => self.send(i, m, priority),
            Action::AddVips => self.routers[i].ms[m].holds_vips = true,
            Action::RemoveVips => self.routers[i].ms[m].holds_vips = false,
            Action::ReportPeers => self.routers[i].kernel.0[m].epoch += 1,
            // `node_step` records each member's state change over the whole step itself.
            Action::SendGratuitous
            | Action::Notify { .. }
            | Action::Discarded { .. }
            | Action::Transition { .. } => {}
        }
    }

    fn send(&mut self, from: usize, m: usize, priority: u8) {
        let r = &self.routers[from].ms[m];
        let src = r.cfg.primary_addr;
        let dst = match r.cfg.family {
            Family::V4 => IpAddr::V4(MCAST_V4),
            Family::V6 => IpAddr::V6(MCAST_V6),
        };
        let bytes = match encode(&r.inst.advert(priority), src, dst) {
            Ok(b) => b,
            Err(e) => {
                self.errors
                    .push(format!("r{from}.{m} could not encode its advert: {e}"));
                return;
            }
        };
        let group = self.routers[from].group;
        self.trace.push(format!(
            "{:>14} r{from}.{m} sends prio {priority}",
            self.now
        ));
        self.broadcast(Some(from), group, src, bytes);
    }

    fn packet_rng(&self, src: IpAddr, to: usize, bytes: &[u8]) -> Rng {
        let mut h = self.rng.0 ^ self.now.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let octets = match src {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        // The VRID byte tells two members' adverts from one source apart.
        let vrid = bytes.get(1).copied().unwrap_or(0);
        for b in octets
            .into_iter()
            .chain((to as u64).to_le_bytes())
            .chain([vrid])
        {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng::new(h)
    }

    /// Puts `bytes` from `src` on the wire of partition `group`, to every router there but
    /// `from`.
    fn broadcast(&mut self, from: Option<usize>, group: u32, src: IpAddr, bytes: Vec<u8>) {
        for to in 0..self.routers.len() {
            if Some(to) == from || self.routers[to].group != group {
                continue;
            }
            // Loss and delay are drawn per packet from (seed, time, source, VRID,
            // receiver), not from one stream, so two runs of a scenario that send the same
            // adverts see the same network whatever else they did (see `Delivery`).
            let mut rng = self.packet_rng(src, to, &bytes);
            if rng.chance(self.net.loss_permille) {
                continue;
            }
            let delay = rng.range(self.net.delay_min_ns, self.net.delay_max_ns);
            self.seq += 1;
            self.queue.push(Reverse(Packet {
                at: self.now + delay,
                seq: self.seq,
                to,
                src,
                bytes: bytes.clone(),
            }));
        }
    }

    fn deliver(&mut self, p: Packet) {
        if !self.routers[p.to].up {
            return;
        }
        let src = p.src;
        let dst = match src {
            IpAddr::V4(_) => IpAddr::V4(MCAST_V4),
            IpAddr::V6(_) => IpAddr::V6(MCAST_V6),
        };
        let advert: Advert = match decode(&p.bytes, src, dst) {
            Ok(a) => a,
            Err(e) => {
                self.errors
                    .push(format!("r{} could not decode {src}'s advert: {e}", p.to));
                return;
            }
        };
        // The XDP program accepts only the VRIDs it watches (RFC 9568 7.1).
        let Some(m) = self.routers[p.to]
            .ms
            .iter()
            .position(|m| m.cfg.vrid == advert.vrid)
        else {
            return;
        };
        let now = self.now;
        let reported = self.routers[p.to].kernel.0[m].record(src, &advert, now);
        // Full delivery feeds every advert the kernel accepted, the kernel's only those
        // it reports.
        let prev = match (self.delivery, reported) {
            (_, Recorded::Refused) | (Delivery::Kernel, Recorded::Quiet) => return,
            (Delivery::Kernel, Recorded::Reported(prev)) => prev,
            (Delivery::Full, _) => None,
        };
        let desc = format!(
            "advert from {src} vrid {} prio {}",
            advert.vrid, advert.priority
        );
        self.node_step(p.to, desc, |r, now, out| {
            node::advert(
                &mut r.ms,
                m,
                now,
                src,
                advert,
                now,
                prev,
                &mut r.kernel,
                out,
            );
        });
    }

    /// A wake-up of router `i` for its deadline, as the daemon's engine runs it.
    fn wake(&mut self, i: usize) {
        self.node_step(i, "timer".into(), |r, now, out| {
            node::on_deadlines(&mut r.ms, now, &mut r.kernel, out);
        });
    }

    /// A host that is not one of the routers sends one advert for the routers' first VRID
    /// from `src` (spoofed, misconfigured or stray), to partition 0.
    pub fn forge(&mut self, src: IpAddr, priority: u8, interval_cs: u16) {
        // A forged advert holds a non-preempting backup for its Master_Down_Interval
        // (3 intervals + skew < 4 intervals), plus delivery slack.
        let hold = self.now + 4 * u64::from(interval_cs.max(100)) * NS_PER_CS + 10 * NS_PER_CS;
        self.forged_hold_until = self.forged_hold_until.max(hold);
        let Some(r) = self.routers.first().map(|r| &r.ms[0]) else {
            return;
        };
        let mut advert = r.inst.advert(priority);
        // VRRPv2 counts whole seconds (RFC 3768 5.3.7) and receivers drop other intervals.
        if r.cfg.version == Version::V3 {
            advert.max_adver_int_cs = interval_cs;
        }
        let dst = match r.cfg.family {
            Family::V4 => IpAddr::V4(MCAST_V4),
            Family::V6 => IpAddr::V6(MCAST_V6),
        };
        match encode(&advert, src, dst) {
            Ok(bytes) => {
                self.trace.push(format!(
                    "{:>14} forged advert from {src} prio {priority} int {interval_cs} cs",
                    self.now
                ));
                self.broadcast(None, 0, src, bytes);
            }
            Err(e) => self.errors.push(format!("forged advert: {e}")),
        }
    }

    /// Powers router `i` on and feeds Startup.
    pub fn start(&mut self, i: usize) {
        self.routers[i].up = true;
        self.trace.push(format!("{:>14} r{i} start", self.now));
        self.feed_all(i, Input::Startup);
    }

    /// Router `i` dies silently: no priority-0 advert, state lost, VIPs gone with it.
    pub fn crash(&mut self, i: usize) {
        self.trace.push(format!("{:>14} r{i} crash", self.now));
        let now = self.now;
        let r = &mut self.routers[i];
        for (m, member) in r.ms.iter_mut().enumerate() {
            if r.up && member.inst.state() != State::Initialize {
                self.transitions.push(SimTransition {
                    at_ns: now,
                    router: i,
                    member: m,
                    old: member.inst.state(),
                    new: State::Initialize,
                });
            }
            member.holds_vips = false;
        }
        r.up = false;
    }

    /// Admin stop (sends priority 0 when Master), then down.
    pub fn shutdown(&mut self, i: usize) {
        self.trace.push(format!("{:>14} r{i} shutdown", self.now));
        self.feed_all(i, Input::Shutdown);
        self.routers[i].up = false;
    }

    /// Brings a down router back with fresh instances (state is not persisted; the kernel
    /// tables are, as the daemon's pinned BPF maps and checkpoint are).
    pub fn restart(&mut self, i: usize) {
        for m in 0..self.routers[i].ms.len() {
            let member = &mut self.routers[i].ms[m];
            match Instance::new(member.cfg.clone()) {
                Ok(inst) => {
                    member.inst = inst;
                    member.held = false;
                }
                Err(e) => {
                    self.errors
                        .push(format!("r{i}.{m} config became invalid: {e}"));
                    return;
                }
            }
        }
        self.start(i);
    }

    pub fn set_net(&mut self, net: Net) {
        self.trace.push(format!("{:>14} net {net:?}", self.now));
        self.net = net;
    }

    /// Puts router `i` in partition `groups[i]`; only routers of one group hear each other.
    pub fn set_groups(&mut self, groups: &[u32]) {
        self.trace
            .push(format!("{:>14} groups {groups:?}", self.now));
        for (r, g) in self.routers.iter_mut().zip(groups) {
            r.group = *g;
        }
    }

    /// The effective priority of every instance of router `i`.
    pub fn set_priority(&mut self, i: usize, effective: u8) {
        self.trace
            .push(format!("{:>14} r{i} priority {effective}", self.now));
        self.node_step(i, format!("priority {effective}"), |r, now, out| {
            for m in 0..r.ms.len() {
                node::priority_changed(&mut r.ms, m, now, effective, &mut r.kernel, out);
            }
        });
    }

    /// Router `i`'s interface goes down or comes back (keepalived's FAULT on the link).
    pub fn set_link(&mut self, i: usize, up: bool) {
        self.trace.push(format!("{:>14} r{i} link {up}", self.now));
        let input = if up {
            Input::InterfaceUp
        } else {
            Input::InterfaceDown
        };
        self.feed_all(i, input);
    }

    /// A tracked check of router `i`'s first instance fails or recovers (with a sync
    /// group, the other members follow).
    pub fn set_fault(&mut self, i: usize, on: bool) {
        self.trace.push(format!("{:>14} r{i} fault {on}", self.now));
        self.node_step(i, format!("fault {on}"), |r, now, out| {
            let acts = r.ms[0].inst.handle(
                now,
                Input::Fault {
                    on,
                    reason: "sim".into(),
                },
            );
            out.push((0, acts));
        });
    }

    fn next_timer(&self) -> Option<(u64, usize)> {
        self.routers
            .iter()
            .enumerate()
            .filter(|(_, r)| r.up)
            .filter_map(|(i, r)| node::next_deadline(&r.ms, self.now).map(|d| (d, i)))
            .min()
    }

    /// Processes the next packet delivery or timer at or before `until`. Returns false
    /// (with the clock moved to `until`) when there is none.
    pub fn step(&mut self, until: u64) -> bool {
        let pkt_at = self.queue.peek().map(|Reverse(p)| p.at);
        let timer = self.next_timer();
        let next = match (pkt_at, timer) {
            (None, None) => None,
            (Some(p), None) => Some((p, None)),
            (None, Some((t, i))) => Some((t, Some(i))),
            // Deliveries before timers at the same instant: an advert that arrives exactly
            // at the deadline still counts (the kernel timestamp is the truth).
            (Some(p), Some((t, i))) => Some(if p <= t { (p, None) } else { (t, Some(i)) }),
        };
        match next {
            Some((at, who)) if at <= until => {
                self.now = self.now.max(at);
                match who {
                    None => {
                        if let Some(Reverse(p)) = self.queue.pop() {
                            self.deliver(p);
                        }
                    }
                    Some(i) => self.wake(i),
                }
                true
            }
            _ => {
                self.now = self.now.max(until);
                false
            }
        }
    }
}

/// One change in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Crash(usize),
    /// Crash whichever router is master at that time (the first one, if several).
    CrashMaster,
    Shutdown(usize),
    Restart(usize),
    Partition(Vec<u32>),
    Loss(u32),
    Priority(usize, u8),
    Fault(usize, bool),
    /// The router's link goes down (`false`) or comes back.
    Link(usize, bool),
    /// A host that is no router sends one advert from `192.0.2.<host>` (or the IPv6
    /// equivalent) with the current master's priority minus `below` (0 when that is not
    /// positive, or when there is no master) and Max Adver Int `interval_cs`.
    Forge {
        host: u8,
        below: u8,
        interval_cs: u16,
    },
    /// `count` spoofed sources each send one advert with a priority below every router's,
    /// enough to fill every receiver's unknown room.
    SpoofFlood {
        count: u8,
    },
    /// Everything healthy again: restart down routers, clear faults, heal, no loss.
    HealAll,
}

/// A seeded random scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    /// Each router's first instance; with `members` > 1 every router runs that many,
    /// the others derived by `member_config`, in one sync group.
    pub configs: Vec<InstanceConfig>,
    pub members: usize,
    pub net: Net,
    /// Start times of the routers.
    pub starts: Vec<u64>,
    /// Changes, sorted by time.
    pub changes: Vec<(u64, Change)>,
    /// When the run ends (after the final [`Change::HealAll`] has settled).
    pub end_ns: u64,
}

fn addr(family: Family, host: u8) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host))),
    }
}

impl Scenario {
    /// A random scenario from `seed`.
    pub fn random(seed: u64) -> Scenario {
        let mut rng = Rng::new(seed);
        // A quarter of the scenarios run two instances per router in a sync group (drawn
        // apart, so the rest of each scenario is what it was with one).
        let members = if Rng::new(seed ^ 0x005c_9a11).chance(250) {
            2
        } else {
            1
        };
        let n = rng.range(2, 5) as usize;
        let version = if rng.chance(400) {
            Version::V2
        } else {
            Version::V3
        };
        let family = match version {
            Version::V2 => Family::V4,
            Version::V3 if rng.chance(300) => Family::V6,
            Version::V3 => Family::V4,
        };
        // VRRPv2 peers must agree on the interval (RFC 3768 7.1); VRRPv3 ones may differ.
        let common_cs = match version {
            Version::V2 => *rng.pick(&[100u16, 200]).unwrap_or(&100),
            Version::V3 => *rng.pick(&[10u16, 20, 50, 100]).unwrap_or(&100),
        };
        let mixed_intervals = version == Version::V3 && rng.chance(300);
        let tie_pool = [100u8, 100, 150, 200];
        let owner = if rng.chance(100) {
            Some(rng.range(0, n as u64 - 1) as usize)
        } else {
            None
        };
        let vips = vec![addr(family, 100), addr(family, 101)];
        let configs: Vec<InstanceConfig> = (0..n)
            .map(|i| {
                let advert_int_cs = if mixed_intervals {
                    *rng.pick(&[10u16, 20, 50, 100]).unwrap_or(&100)
                } else {
                    common_cs
                };
                let priority = if owner == Some(i) {
                    255
                } else if rng.chance(300) {
                    *rng.pick(&tie_pool).unwrap_or(&100)
                } else {
                    rng.range(1, 254) as u8
                };
                let preempt_delay_cs = if rng.chance(200) {
                    rng.range(1, 3 * u64::from(advert_int_cs)) as u32
                } else {
                    0
                };
                InstanceConfig {
                    name: format!("r{i}"),
                    vrid: 42,
                    version,
                    family,
                    priority,
                    advert_int_cs,
                    preempt: !rng.chance(200),
                    preempt_delay_cs,
                    accept: false,
                    vips: vips.clone(),
                    primary_addr: addr(family, 1 + i as u8),
                    auth_pass: (version == Version::V2).then(|| pass_auth(b"hxsim")),
                    start_as_master: rng.chance(500),
                    higher_prio_send_advert: rng.chance(500),
                    address_owner: owner == Some(i),
                }
            })
            .collect();
        let max_int_ns = configs
            .iter()
            .map(|c| u64::from(c.advert_int_cs))
            .max()
            .unwrap_or(100)
            * NS_PER_CS;
        let delay_min_ns = rng.range(10_000, 500_000);
        let delay_max_ns = delay_min_ns + rng.range(0, 2_000_000);
        let net = Net {
            loss_permille: 0,
            delay_min_ns,
            delay_max_ns,
        };
        let starts = (0..n).map(|_| rng.range(0, max_int_ns)).collect();

        let mut t = 0;
        let mut changes = Vec::new();
        let mut up = vec![true; n];
        let mut faulted = vec![false; n];
        for _ in 0..rng.range(2, 8) {
            t += rng.range(max_int_ns, 12 * max_int_ns);
            let i = rng.range(0, n as u64 - 1) as usize;
            let change = match rng.range(0, 12) {
                8 => Change::CrashMaster,
                0 if up[i] => {
                    up[i] = false;
                    Change::Crash(i)
                }
                1 if up[i] => {
                    up[i] = false;
                    Change::Shutdown(i)
                }
                0 | 1 => {
                    up[i] = true;
                    faulted[i] = false;
                    Change::Restart(i)
                }
                2 => Change::Partition((0..n).map(|_| rng.range(0, 1) as u32).collect()),
                3 => Change::Partition(vec![0; n]),
                4 => Change::Loss(rng.range(0, 400) as u32),
                5 if owner != Some(i) => Change::Priority(i, rng.range(1, 254) as u8),
                5 => Change::Loss(0),
                // A link flap shorter than 3 adverts (or a longer outage), then recovery.
                9 if up[i] && !faulted[i] => {
                    let back =
                        t + rng.range(1, 3 * u64::from(configs[i].advert_int_cs)) * NS_PER_CS;
                    changes.push((t, Change::Link(i, false)));
                    t = back;
                    Change::Link(i, true)
                }
                12 => Change::SpoofFlood {
                    count: rng.range(9, 24) as u8,
                },
                10 | 11 => Change::Forge {
                    host: rng.range(200, 250) as u8,
                    below: *rng.pick(&[1u8, 5, 50, 255]).unwrap_or(&1),
                    interval_cs: *rng.pick(&[1u16, 2, 10, 100]).unwrap_or(&1),
                },
                _ => {
                    faulted[i] = !faulted[i];
                    Change::Fault(i, faulted[i])
                }
            };
            changes.push((t, change));
        }
        t += rng.range(max_int_ns, 12 * max_int_ns);
        changes.push((t, Change::HealAll));
        let settle = settle_ns(&configs, &net);
        Scenario {
            seed,
            configs,
            members,
            net,
            starts,
            changes,
            end_ns: t + settle + 4 * max_int_ns,
        }
    }
}

fn max_int_ns(configs: &[InstanceConfig]) -> u64 {
    configs
        .iter()
        .map(|c| u64::from(c.advert_int_cs))
        .max()
        .unwrap_or(0)
        * NS_PER_CS
}

/// Time after a change by which a loss-free LAN must have exactly one master per
/// partition: the longest preempt_delay, then the wait for a last accepted advert (one
/// interval), then the slowest Master_Down_Interval (3 intervals + skew < 4 intervals;
/// VRRPv2's skew is under one second and its interval at least one), then the old master
/// hearing the new one, with a few delivery delays of slack.
pub fn settle_ns(configs: &[InstanceConfig], net: &Net) -> u64 {
    let max_delay = configs
        .iter()
        .map(|c| u64::from(c.preempt_delay_cs))
        .max()
        .unwrap_or(0);
    max_delay * NS_PER_CS + 5 * max_int_ns(configs) + 4 * net.delay_max_ns + 1_000_000
}

/// An invariant that did not hold.
#[derive(Debug, Clone)]
pub struct Violation {
    pub seed: u64,
    pub at_ns: u64,
    pub what: String,
    pub trace: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} at {} ns: {}\nreplay with HAXDP_SIM_SEED={}\nlast events:\n{}",
            self.seed, self.at_ns, self.what, self.seed, self.trace
        )
    }
}

/// What a passing run saw, so callers can assert the scenarios exercised something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub transitions: usize,
    pub takeovers_checked: usize,
    pub heals_checked: usize,
    pub settled_checks: usize,
    /// Forged adverts that hit a settled LAN and were checked to change nothing.
    pub forgeries_checked: usize,
    /// Settled checks that a sync group's members were master on one router.
    pub sync_checks: usize,
}

/// Tracks the invariants of one instance (VRID) over a run.
struct Checker {
    /// Which of each router's instances this checker watches.
    m: usize,
    phase_start: u64,
    settle: u64,
    /// Per partition group: when it started having more than one master.
    multi_since: HashMap<u32, u64>,
    /// A crashed sole master's group must get a new master by this time.
    takeover: Option<(u32, u64)>,
    /// The loss-free phase began with a heal; overlaps existing then get this bound.
    heal_bound: Option<u64>,
    max_int: u64,
    max_skew: u64,
    summary: Summary,
    /// Index into the sim's transitions where this phase began.
    phase_transition_idx: usize,
    /// A forged advert hit a settled LAN with this sole master: nothing may change.
    forged_over: Option<usize>,
    /// When the last state change happened.
    last_transition_ns: u64,
}

fn eligible(sim: &Sim, i: usize, m: usize) -> bool {
    sim.is_up(i) && matches!(sim.member(i, m).state(), State::Backup | State::Master)
}

fn groups_of(sim: &Sim, m: usize) -> Vec<u32> {
    let mut g: Vec<u32> = (0..sim.len())
        .filter(|&i| eligible(sim, i, m))
        .map(|i| sim.group(i))
        .collect();
    g.sort_unstable();
    g.dedup();
    g
}

fn masters_in(sim: &Sim, group: u32, m: usize) -> Vec<usize> {
    (0..sim.len())
        .filter(|&i| {
            sim.is_up(i) && sim.group(i) == group && sim.member(i, m).state() == State::Master
        })
        .collect()
}

impl Checker {
    fn check(&mut self, sim: &Sim) -> Result<(), String> {
        let now = sim.now();
        if let Some(e) = sim.errors().first() {
            return Err(e.clone());
        }
        // Whoever is Master holds the VIPs, and nobody else does.
        let m = self.m;
        for i in 0..sim.len() {
            let master = sim.is_up(i) && sim.member(i, m).state() == State::Master;
            if sim.member_holds_vips(i, m) != master {
                return Err(format!(
                    "r{i}.{m} holds VIPs = {} but master = {master}",
                    sim.member_holds_vips(i, m)
                ));
            }
        }
        let loss_free = sim.net().loss_permille == 0;
        let delay = sim.net().delay_max_ns;
        for g in groups_of(sim, self.m) {
            let masters = masters_in(sim, g, self.m);
            // After the network has been healthy long enough: exactly one master.
            if loss_free && now >= self.phase_start + self.settle {
                if masters.len() != 1 {
                    return Err(format!(
                        "group {g}: {} masters {masters:?} {} ns after the last change",
                        masters.len(),
                        now - self.phase_start
                    ));
                }
                self.summary.settled_checks += 1;
            }
            // Two masters on a loss-free LAN must resolve: within one advert interval
            // plus skew of a heal, or within one interval of a new master appearing.
            if masters.len() > 1 {
                let since = *self.multi_since.entry(g).or_insert(now);
                let bound = match self.heal_bound {
                    Some(b) if since <= self.phase_start => b,
                    _ => since + self.max_int + 2 * delay + 1_000,
                };
                if loss_free && now > bound {
                    return Err(format!(
                        "group {g}: masters {masters:?} since {since}, past the bound {bound}"
                    ));
                }
            } else {
                if self.multi_since.remove(&g).is_some() && self.heal_bound.is_some() {
                    self.summary.heals_checked += 1;
                }
            }
        }
        if let Some((g, bound)) = self.takeover {
            if !masters_in(sim, g, self.m).is_empty() {
                self.takeover = None;
                self.summary.takeovers_checked += 1;
            } else if now > bound {
                return Err(format!(
                    "group {g}: no new master by {bound} after the master crashed"
                ));
            }
        }
        if let Some(m) = self.forged_over {
            let masters = masters_in(sim, sim.group(m), self.m);
            if masters != [m] {
                return Err(format!(
                    "a forged advert moved the master: r{m} was the settled master, now {masters:?}"
                ));
            }
            self.summary.forgeries_checked += 1;
        }
        // No flaps (Master -> other -> Master) within a loss-free phase.
        if loss_free {
            let mut left_master: HashMap<usize, u64> = HashMap::new();
            for t in sim.transitions()[self.phase_transition_idx..]
                .iter()
                .filter(|t| t.member == self.m)
            {
                if t.old == State::Master {
                    left_master.insert(t.router, t.at_ns);
                } else if t.new == State::Master {
                    if let Some(at) = left_master.get(&t.router) {
                        return Err(format!(
                            "r{} flapped: left Master at {at}, back at {} with nothing changed",
                            t.router, t.at_ns
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A scenario change starts a new phase; `before` is the state just before it.
    fn new_phase(&mut self, sim: &Sim, change: &Change, crashed_sole_master: Option<u32>) {
        if let Some(t) = sim.transitions().last() {
            self.last_transition_ns = t.at_ns;
        }
        let settled_before = sim.now() >= self.phase_start + self.settle
            && sim.now() >= self.last_transition_ns + self.settle;
        self.forged_over = None;
        let below = match change {
            Change::Forge { below, .. } => Some(*below),
            Change::SpoofFlood { .. } => Some(1),
            _ => None,
        };
        if let (Some(below), true, 0) = (below, settled_before, self.m) {
            let all_in_zero = (0..sim.len()).all(|i| !sim.is_up(i) || sim.group(i) == 0);
            let masters = masters_in(sim, 0, self.m);
            // Only a forged advert worse than the master (priority 0 included) must change
            // nothing; an equal or better one is a legitimate election (RFC 9568 6.4.3).
            if below > 0 && all_in_zero && masters.len() == 1 && sim.net().loss_permille == 0 {
                self.forged_over = Some(masters[0]);
            }
        }
        self.phase_start = sim.now();
        self.phase_transition_idx = sim.transitions().len();
        self.takeover = None;
        self.heal_bound = None;
        self.multi_since.clear();
        let loss_free = sim.net().loss_permille == 0;
        // A forged advert, however low its priority, is a live master to a non-preempting
        // backup until three of its intervals have passed (RFC 9568 6.4.2: without
        // preemption any advert resets the timer): no takeover bound while one may hold.
        let forged_recently = sim.now() < sim.forged_hold_until;
        if let (Some(g), true, false) = (crashed_sole_master, loss_free, forged_recently) {
            // The best backup's Master_Down_Timer runs from the master's last advert, which
            // was sent at the latest now and can arrive one delivery delay later.
            let best = (0..sim.len())
                .filter(|&i| eligible(sim, i, self.m) && sim.group(i) == g)
                .map(|i| rfc_master_down_ns(sim.member(i, self.m)))
                .min();
            if let Some(mdi) = best {
                self.takeover = Some((g, sim.now() + mdi + sim.net().delay_max_ns + 1_000));
            }
        }
        let healed = matches!(change, Change::Partition(p) if p.iter().all(|&g| g == 0))
            || matches!(change, Change::HealAll);
        if healed && loss_free {
            self.heal_bound =
                Some(sim.now() + self.max_int + self.max_skew + 2 * sim.net().delay_max_ns + 1_000);
        }
    }
}

/// Master_Down_Interval written out again from RFC 9568 6.1 / RFC 3768 6.1, independently
/// of `fsm`, so the takeover bound does not trust the code under test.
fn rfc_master_down_ns(inst: &Instance) -> u64 {
    let cfg = inst.config();
    let int_cs = match cfg.version {
        Version::V2 => u64::from(cfg.advert_int_cs),
        Version::V3 => u64::from(inst.master_adver_int_cs()),
    };
    let p = u64::from(inst.effective_priority());
    let skew_ns = match cfg.version {
        Version::V2 => (256 - p) * 1_000_000_000 / 256,
        Version::V3 => (256 - p) * int_cs * 10_000_000 / 256,
    };
    3 * int_cs * 10_000_000 + skew_ns
}

/// Plays `sc`, checking the invariants after every step.
pub fn run_scenario(sc: &Scenario) -> Result<Summary, Violation> {
    run_scenario_with(sc, Delivery::Kernel).map(|(summary, _)| summary)
}

/// Plays `sc` with the given [`Delivery`]; returns what passed and every state change.
pub fn run_scenario_with(
    sc: &Scenario,
    delivery: Delivery,
) -> Result<(Summary, Vec<SimTransition>), Violation> {
    let fail = |sim: &Sim, what: String| Violation {
        seed: sc.seed,
        at_ns: sim.now(),
        what,
        trace: sim.trace_tail(40),
    };
    let members: Vec<Vec<InstanceConfig>> = sc
        .configs
        .iter()
        .map(|c| {
            (0..sc.members.max(1))
                .map(|m| member_config(c, m))
                .collect()
        })
        .collect();
    let mut sim =
        Sim::with_delivery(members, sc.net, sc.seed, delivery).map_err(|e| Violation {
            seed: sc.seed,
            at_ns: 0,
            what: format!("scenario config invalid: {e}"),
            trace: String::new(),
        })?;
    let max_int = max_int_ns(&sc.configs);
    let mut checkers: Vec<Checker> = (0..sim.members())
        .map(|m| Checker {
            m,
            phase_start: 0,
            settle: settle_ns(&sc.configs, &sc.net) + max_int,
            multi_since: HashMap::new(),
            takeover: None,
            heal_bound: None,
            max_int,
            max_skew: max_int,
            summary: Summary::default(),
            phase_transition_idx: 0,
            forged_over: None,
            last_transition_ns: 0,
        })
        .collect();
    let mut starts: Vec<(u64, usize)> = sc.starts.iter().copied().zip(0..).collect();
    starts.sort_unstable();
    for (at, i) in starts {
        run_until(&mut sim, at, &mut checkers).map_err(|w| fail(&sim, w))?;
        sim.start(i);
    }
    // The start phase counts from the last start, plus the staggering.
    for c in &mut checkers {
        c.phase_start = sim.now();
    }
    for (at, change) in &sc.changes {
        run_until(&mut sim, *at, &mut checkers).map_err(|w| fail(&sim, w))?;
        let resolved;
        let change = match change {
            Change::CrashMaster => {
                let m = (0..sim.len())
                    .find(|&i| sim.is_up(i) && sim.instance(i).state() == State::Master);
                resolved = m.map_or(Change::Loss(sim.net().loss_permille), Change::Crash);
                &resolved
            }
            other => other,
        };
        if let Change::Crash(i) = change {
            // Crash a master right after it has sent an advert: the backups' timers then
            // run a full Master_Down_Interval, so the takeover bound below is tight.
            if sim.is_up(*i) && sim.instance(*i).state() == State::Master {
                if let Some(d) = sim.instance(*i).next_deadline() {
                    run_until(&mut sim, d, &mut checkers).map_err(|w| fail(&sim, w))?;
                }
            }
        }
        let crashed: Vec<Option<u32>> = (0..sim.members())
            .map(|m| match change {
                Change::Crash(i) if sim.is_up(*i) && sim.member(*i, m).state() == State::Master => {
                    let g = sim.group(*i);
                    (masters_in(&sim, g, m).len() == 1).then_some(g)
                }
                _ => None,
            })
            .collect();
        apply_change(&mut sim, change);
        for (c, crashed) in checkers.iter_mut().zip(crashed) {
            c.settle = settle_ns(&sc.configs, &sim.net());
            c.new_phase(&sim, change, crashed);
            c.check(&sim).map_err(|w| fail(&sim, w))?;
        }
    }
    run_until(&mut sim, sc.end_ns, &mut checkers).map_err(|w| fail(&sim, w))?;
    let mut summary = Summary::default();
    for c in &checkers {
        if c.summary.settled_checks == 0 {
            return Err(fail(
                &sim,
                format!(
                    "instance {}: the final healthy phase was never checked",
                    c.m
                ),
            ));
        }
        summary.takeovers_checked += c.summary.takeovers_checked;
        summary.heals_checked += c.summary.heals_checked;
        summary.settled_checks += c.summary.settled_checks;
        summary.forgeries_checked += c.summary.forgeries_checked;
        summary.sync_checks += c.summary.sync_checks;
    }
    summary.transitions = sim.transitions().len();
    if std::env::var_os("HAXDP_SIM_TRACE").is_some() {
        eprintln!(
            "=== seed {} {delivery:?}\n{}",
            sc.seed,
            sim.trace_tail(usize::MAX)
        );
    }
    Ok((summary, sim.transitions().to_vec()))
}

/// Instance `m` of a router whose first instance is `c`: the next VRID, other VIPs, the
/// same timers and priority (a `vrrp_sync_group` of the instances of one LAN pair).
fn member_config(c: &InstanceConfig, m: usize) -> InstanceConfig {
    let mut c = c.clone();
    if m > 0 {
        c.name = format!("{}.{m}", c.name);
        c.vrid = c.vrid.wrapping_add(m as u8);
        c.vips = vec![
            addr(c.family, 102 + 2 * m as u8),
            addr(c.family, 103 + 2 * m as u8),
        ];
    }
    c
}

fn run_until(sim: &mut Sim, until: u64, checkers: &mut [Checker]) -> Result<(), String> {
    while sim.step(until) {
        for c in checkers.iter_mut() {
            c.check(sim)?;
        }
        check_sync(sim, checkers)?;
    }
    Ok(())
}

/// A sync group's members are master on the same router once the LAN has settled
/// (keepalived's sync group: they move together).
fn check_sync(sim: &Sim, checkers: &mut [Checker]) -> Result<(), String> {
    if sim.members() < 2 || sim.net().loss_permille != 0 {
        return Ok(());
    }
    let now = sim.now();
    if checkers
        .iter()
        .any(|c| now < c.phase_start + c.settle + c.max_int)
    {
        return Ok(());
    }
    for g in groups_of(sim, 0) {
        let first = masters_in(sim, g, 0);
        for m in 1..sim.members() {
            let other = masters_in(sim, g, m);
            if other != first {
                return Err(format!(
                    "group {g}: sync group split: instance 0 master on {first:?}, instance {m} on {other:?}"
                ));
            }
        }
        checkers[0].summary.sync_checks += 1;
    }
    Ok(())
}

fn apply_change(sim: &mut Sim, change: &Change) {
    match change {
        // Resolved to Crash(i) by run_scenario.
        Change::CrashMaster => {}
        Change::Crash(i) => {
            if sim.is_up(*i) {
                sim.crash(*i);
            }
        }
        Change::Shutdown(i) => {
            if sim.is_up(*i) {
                sim.shutdown(*i);
            }
        }
        Change::Restart(i) => {
            if !sim.is_up(*i) {
                sim.restart(*i);
            }
        }
        Change::Partition(groups) => sim.set_groups(groups),
        Change::Loss(permille) => {
            let net = Net {
                loss_permille: *permille,
                ..sim.net()
            };
            sim.set_net(net);
        }
        Change::Priority(i, p) => sim.set_priority(*i, *p),
        Change::Fault(i, on) => sim.set_fault(*i, *on),
        Change::Link(i, up) => sim.set_link(*i, *up),
        Change::Forge {
            host,
            below,
            interval_cs,
        } => {
            let family = sim
                .routers
                .first()
                .map(|r| r.ms[0].cfg.family)
                .unwrap_or(Family::V4);
            // The forger sits in partition 0; its priority is relative to the master there.
            let master = masters_in(sim, 0, 0)
                .into_iter()
                .map(|i| sim.instance(i).effective_priority())
                .min();
            let priority = master.map_or(0, |p| p.saturating_sub(*below));
            sim.forge(addr(family, *host), priority, *interval_cs);
        }
        Change::SpoofFlood { count } => {
            let family = sim
                .routers
                .first()
                .map(|r| r.ms[0].cfg.family)
                .unwrap_or(Family::V4);
            // Below every router: spoofers that claim more than a router would be
            // followed by it, as by any VRRP router; against those, check_unicast_src
            // and haxdp_allowed_peers. Below all of them, the room must never keep a
            // router out (priority-aware admission).
            let lowest = (0..sim.len())
                .map(|i| sim.instance(i).effective_priority())
                .min()
                .unwrap_or(2);
            // (A router at priority 1 leaves no room below it: no flood then.)
            let priority = lowest.saturating_sub(1);
            for k in 0..if priority == 0 { 0 } else { *count } {
                sim.forge(addr(family, 150u8.wrapping_add(k)), priority, 100);
            }
        }
        Change::HealAll => {
            let net = Net {
                loss_permille: 0,
                ..sim.net()
            };
            sim.set_net(net);
            sim.set_groups(&vec![0; sim.len()]);
            for i in 0..sim.len() {
                if sim.is_up(i) {
                    sim.set_fault(i, false);
                    sim.set_link(i, true);
                } else {
                    sim.restart(i);
                }
            }
        }
    }
}
