//! The per-instance VRRP state machine (RFC 9568 section 6, with keepalived's behaviour
//! where the RFC leaves room, and RFC 3768 rules for VRRPv2).
//!
//! Sans-IO: time is the caller's `now` (nanoseconds of CLOCK_MONOTONIC, the clock of
//! `bpf_ktime_get_ns()`), inputs are events, outputs are [`Action`]s. The caller arms one
//! timer at [`Instance::next_deadline`] and feeds [`Input::Timer`] when it passes.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::fault::FaultCause;
use crate::packet::{Advert, Family, Version, V2_MAX_INTERVAL_CS, V3_MAX_INTERVAL_CS};

/// Nanoseconds per centisecond.
pub const NS_PER_CS: u64 = 10_000_000;
/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
/// Priority of the address owner (RFC 9568 5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority a stopping master advertises (RFC 9568 5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// How many transitions [`Instance::transitions`] keeps.
pub const TRANSITION_LOG_LEN: usize = 64;
/// How many peers' last adverts are remembered to resolve [`Input::AdvertRefresh`].
pub const MAX_REMEMBERED_PEERS: usize = 32;

/// Configuration of one virtual router instance, as the daemon derives it from
/// keepalived.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    pub family: Family,
    /// Configured base priority (1..=254, or 255 with `address_owner`).
    pub priority: u8,
    /// Our Advertisement_Interval in centiseconds (VRRPv2: a multiple of 100).
    pub advert_int_cs: u16,
    /// Preempt_Mode (RFC 9568 6.1); keepalived's `nopreempt` clears it.
    pub preempt: bool,
    /// keepalived `preempt_delay`: after startup (or leaving Fault), do not preempt a
    /// lower-priority master for this long; its adverts are accepted as if preempt were off.
    pub preempt_delay_cs: u32,
    /// Accept_Mode (RFC 9568 6.1). Only the caller acts on it (whether a master answers
    /// packets to the VIPs it does not own); the state machine just carries it.
    pub accept: bool,
    /// The virtual addresses we advertise and own as master.
    pub vips: Vec<IpAddr>,
    /// Our primary address: the advert source, and the tie-breaker (RFC 9568 6.4.3).
    pub primary_addr: IpAddr,
    /// VRRPv2 PASS authentication data (see [`crate::packet::pass_auth`]); `None` for none.
    pub auth_pass: Option<[u8; 8]>,
    /// keepalived's `state MASTER`. keepalived 2.2.7 still starts such an instance in
    /// BACKUP and waits a full Master_Down_Interval unless it owns the addresses (seen in
    /// the captures of `tests/fixtures/capture.sh`), which is also RFC 9568 6.4.1, so this
    /// hint does not change the election; it is kept so the caller can report it.
    pub start_as_master: bool,
    /// keepalived `vrrp_higher_prio_send_advert`-like: a master that hears a lower-priority
    /// advert answers at once with its own, so a split brain heals in one round trip.
    pub higher_prio_send_advert: bool,
    /// We own the virtual addresses: priority 255, straight to Master (RFC 9568 6.4.1).
    pub address_owner: bool,
}

/// Why an [`InstanceConfig`] was refused by [`Instance::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("instance {name}: virtual_router_id 0 is invalid; use 1..=255 (RFC 9568 5.2.3)")]
    ZeroVrid { name: String },
    #[error("instance {name}: priority 0 is reserved for a stopping master; use 1..=254")]
    ZeroPriority { name: String },
    #[error(
        "instance {name}: priority 255 is only for the address owner; set address_owner or \
         use 1..=254"
    )]
    OwnerPriority { name: String },
    #[error(
        "instance {name}: advert interval {cs} cs is not sendable: VRRPv3 takes 1..=4095 cs, \
         VRRPv2 whole seconds 1..=255"
    )]
    BadInterval { name: String, cs: u16 },
    #[error("instance {name}: VRRPv2 is IPv4 only (RFC 3768); use version 3 for IPv6")]
    V2OverIpv6 { name: String },
    #[error("instance {name}: address {addr} is not of the instance's address family")]
    WrongFamily { name: String, addr: IpAddr },
    #[error("instance {name}: {count} virtual addresses do not fit one advert; use at most 255")]
    TooManyVips { name: String, count: usize },
    #[error("instance {name}: authentication is VRRPv2 only (RFC 9568 9); remove auth_pass")]
    AuthOnV3 { name: String },
}

/// Protocol state (RFC 9568 6.4), plus keepalived's Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Not started, or shut down (keepalived's STOP).
    Initialize,
    Backup,
    Master,
    /// keepalived FAULT: interface down or a tracked check without weight failed. No
    /// adverts are sent, VIPs are released, received adverts are ignored.
    Fault,
}

/// keepalived's names (`MASTER`, `BACKUP`, `FAULT`; `INITIALIZE` for not started):
/// what `haxdp status` and the dumps print, fixed here rather than derived from `Debug`.
impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Initialize => "INITIALIZE",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// An event for [`Instance::handle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Startup,
    /// Start again as the Master this instance was when its daemon died, without the
    /// election's wait (the caller has checked that no other router advertised since):
    /// the peer, still counting its Master_Down_Timer from the old process's last advert,
    /// hears us before it fires.
    Resume,
    /// A decoded advert for this VRID, with its kernel receive timestamp.
    Advert {
        src: IpAddr,
        advert: Advert,
        rx_ns: u64,
    },
    /// The same advert as the last one from `src` arrived again at `rx_ns`: the fast path
    /// reports unchanged adverts only as a timestamp.
    AdvertRefresh {
        src: IpAddr,
        rx_ns: u64,
    },
    /// The deadline from [`Instance::next_deadline`] has passed.
    Timer,
    /// The effective priority after tracking weights; clamped to 1..=254 (255 only for the
    /// address owner).
    PriorityChanged {
        effective: u8,
    },
    InterfaceUp,
    InterfaceDown,
    /// A fault condition (tracked script without weight, track_file ...) set or cleared;
    /// the instance is in Fault while any reason is on or the interface is down.
    Fault {
        on: bool,
        reason: FaultCause,
    },
    /// Admin stop (RFC 9568 6.4.2 / 6.4.3 Shutdown event).
    Shutdown,
}

/// Something the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send an advert now with this priority; [`Instance::advert`] builds it.
    SendAdvert { priority: u8 },
    /// Add the VIPs to the interface.
    AddVips,
    /// Remove the VIPs (idempotent: also emitted when none may be present, as keepalived
    /// does at startup).
    RemoveVips,
    /// Gratuitous ARP (IPv4) or unsolicited Neighbor Advertisement (IPv6) for each VIP
    /// (RFC 9568 6.4.1 / 6.4.2).
    SendGratuitous,
    /// Run notify scripts / write the state file for the new state.
    Notify { state: State },
    /// A received advert was ignored; nothing to do but count or log it.
    Discarded { reason: DiscardReason },
    /// Ask the receive path to deliver the next advert of every live peer of this VRID
    /// once, changed or not (the delivery contract, see [`crate::node`]). Emitted on
    /// entering Backup or Master: the core then learns every router that is advertising
    /// within one of its intervals, even one whose adverts never change.
    ReportPeers,
    /// The state changed from `from` to `to` because of `why`: the entry
    /// [`Instance::transitions`] just logged, as an output. It comes last among the
    /// actions of the change, after the exit actions of `from` and the entry actions of
    /// `to`; there is nothing to perform, only to record or report.
    Transition { from: State, to: State, why: Event },
}

/// Why an advert was ignored (RFC 9568 7.1 instance checks and 6.4 rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscardReason {
    /// Version differs from the instance's.
    VersionMismatch,
    /// VRID differs from the instance's (the caller should have demultiplexed).
    VridMismatch,
    /// Address family differs from the instance's.
    FamilyMismatch,
    /// VRRPv2 authentication type or password differs (RFC 3768 7.1).
    AuthMismatch,
    /// VRRPv2 interval differs from ours (RFC 3768 7.1).
    IntervalMismatch,
    /// Virtual address list differs and the sender is not the owner (RFC 9568 7.1).
    AddressMismatch,
    /// Our own advert came back.
    OwnAdvert,
    /// Lower priority than ours while preempting, so it does not reset our timer (6.4.2).
    LowerPriority,
    /// A master ignoring a lower-priority advert (6.4.3).
    NotBetterThanUs,
    /// In Initialize or Fault, adverts are not processed.
    NotListening,
    /// A refresh for a source we hold no advert from.
    UnknownPeer,
    /// A backup heard a router that is worse than the master it follows, while that master
    /// is still advertising: a transient second master about to step down.
    WorseThanMaster,
}

impl DiscardReason {
    /// The name `haxdp status` and the dumps count it under (`VersionMismatch`, ...):
    /// written out so that the counters do not follow a `Debug` format.
    pub fn name(self) -> &'static str {
        match self {
            DiscardReason::VersionMismatch => "VersionMismatch",
            DiscardReason::VridMismatch => "VridMismatch",
            DiscardReason::FamilyMismatch => "FamilyMismatch",
            DiscardReason::AuthMismatch => "AuthMismatch",
            DiscardReason::IntervalMismatch => "IntervalMismatch",
            DiscardReason::AddressMismatch => "AddressMismatch",
            DiscardReason::OwnAdvert => "OwnAdvert",
            DiscardReason::LowerPriority => "LowerPriority",
            DiscardReason::NotBetterThanUs => "NotBetterThanUs",
            DiscardReason::NotListening => "NotListening",
            DiscardReason::UnknownPeer => "UnknownPeer",
            DiscardReason::WorseThanMaster => "WorseThanMaster",
        }
    }
}

/// What caused a state change, for the transition log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Startup,
    /// Resumed as Master after a crash of the daemon ([`Input::Resume`]).
    Resumed,
    Shutdown,
    /// Master_Down_Timer fired (RFC 9568 6.4.2).
    MasterDown,
    /// A better master was heard (RFC 9568 6.4.3).
    BetterAdvert {
        src: IpAddr,
        priority: u8,
    },
    InterfaceDown,
    InterfaceUp,
    FaultOn {
        reason: FaultCause,
    },
    FaultCleared,
}

/// The transition reason as `haxdp status` prints it (`MasterDown`, `BetterAdvert { src:
/// 192.0.2.10, priority: 100 }`, `FaultOn { reason: "chk failed" }`): written out here so
/// that the status JSON does not change with a `Debug` format.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Startup => f.write_str("Startup"),
            Event::Resumed => f.write_str("Resumed"),
            Event::Shutdown => f.write_str("Shutdown"),
            Event::MasterDown => f.write_str("MasterDown"),
            Event::BetterAdvert { src, priority } => {
                write!(f, "BetterAdvert {{ src: {src}, priority: {priority} }}")
            }
            Event::InterfaceDown => f.write_str("InterfaceDown"),
            Event::InterfaceUp => f.write_str("InterfaceUp"),
            Event::FaultOn { reason } => {
                write!(f, "FaultOn {{ reason: {:?} }}", reason.to_string())
            }
            Event::FaultCleared => f.write_str("FaultCleared"),
        }
    }
}

/// One entry of the transition log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub instance: String,
    pub at_ns: u64,
    pub event: Event,
    pub old: State,
    pub new: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    MasterDown,
    Adver,
}

/// Which timer a [`Handover`] carries, with its CLOCK_MONOTONIC deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoverTimer {
    MasterDown(u64),
    Adver(u64),
}

/// Everything an instance's state machine holds besides its configuration: what a daemon
/// hands to its successor process in a planned restart (`haxdp upgrade`), which goes on
/// from it with [`Instance::adopt`]. Deadlines and receive times are CLOCK_MONOTONIC,
/// which both processes share on one boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub state: State,
    pub effective_priority: u8,
    pub master_adver_int_cs: u16,
    pub timer: Option<HandoverTimer>,
    pub master_addr: Option<IpAddr>,
    pub preempt_after_ns: u64,
    pub interface_up: bool,
    pub faults: Vec<FaultCause>,
    /// Every remembered router: address, its last advert, when it was received.
    pub peers: Vec<(IpAddr, Advert, u64)>,
    pub transitions: Vec<Transition>,
    pub stats: Stats,
}

/// A router an instance has heard, as [`Instance::known_peers`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPeer {
    pub addr: IpAddr,
    pub rx_ns: u64,
    pub priority: u8,
    pub interval_cs: u16,
}

#[derive(Debug, Clone)]
struct Peer {
    advert: Advert,
    rx_ns: u64,
}

/// One virtual router instance.
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    effective_priority: u8,
    /// Master_Adver_Interval (RFC 9568 6.1), centiseconds.
    master_adver_int_cs: u16,
    timer: Option<(TimerKind, u64)>,
    master_addr: Option<IpAddr>,
    /// keepalived preempt_delay: no preemption before this time.
    preempt_after_ns: u64,
    interface_up: bool,
    faults: BTreeSet<FaultCause>,
    peers: PeerTable,
    transitions: Vec<Transition>,
    stats: Stats,
}

/// keepalived's per-instance counters (`vrrp_stats`, written on SIGUSR2), as far as the
/// state machine sees them: with the XDP receive path an unchanged advert never reaches
/// the core, so `advert_rcvd` counts the adverts the core was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub advert_rcvd: u64,
    pub advert_sent: u64,
    pub become_master: u64,
    pub release_master: u64,
    pub pri_zero_rcvd: u64,
    pub pri_zero_sent: u64,
}

fn validate(cfg: &InstanceConfig) -> Result<(), ConfigError> {
    let name = || cfg.name.clone();
    if cfg.vrid == 0 {
        return Err(ConfigError::ZeroVrid { name: name() });
    }
    if cfg.priority == 0 {
        return Err(ConfigError::ZeroPriority { name: name() });
    }
    if cfg.priority == PRIORITY_OWNER && !cfg.address_owner {
        return Err(ConfigError::OwnerPriority { name: name() });
    }
    let cs = cfg.advert_int_cs;
    let interval_ok = match cfg.version {
        Version::V2 => cs != 0 && cs.is_multiple_of(100) && cs <= V2_MAX_INTERVAL_CS,
        Version::V3 => cs != 0 && cs <= V3_MAX_INTERVAL_CS,
    };
    if !interval_ok {
        return Err(ConfigError::BadInterval { name: name(), cs });
    }
    if cfg.version == Version::V2 && cfg.family == Family::V6 {
        return Err(ConfigError::V2OverIpv6 { name: name() });
    }
    if cfg.version == Version::V3 && cfg.auth_pass.is_some() {
        return Err(ConfigError::AuthOnV3 { name: name() });
    }
    if let Some(addr) = std::iter::once(&cfg.primary_addr)
        .chain(&cfg.vips)
        .find(|a| Family::of(a) != cfg.family)
    {
        return Err(ConfigError::WrongFamily {
            name: name(),
            addr: *addr,
        });
    }
    if cfg.vips.len() > 255 {
        return Err(ConfigError::TooManyVips {
            name: name(),
            count: cfg.vips.len(),
        });
    }
    Ok(())
}

/// Skew_Time in nanoseconds.
///
/// VRRPv3 (RFC 9568 6.1): `((256 - Priority) * Master_Adver_Interval) / 256`. Evaluated in
/// nanoseconds rather than truncated to whole centiseconds (keepalived evaluates it in
/// microseconds): at small intervals the truncated form is 0 for every priority, and
/// backups of different priority would all fire together.
///
/// VRRPv2 (RFC 3768 6.1, and keepalived): `(256 - Priority) / 256` seconds, independent of
/// the interval.
pub fn skew_ns(version: Version, priority: u8, master_adver_int_cs: u16) -> u64 {
    let weight = 256 - u64::from(priority);
    match version {
        Version::V3 => weight * u64::from(master_adver_int_cs) * NS_PER_CS / 256,
        Version::V2 => weight * NS_PER_SEC / 256,
    }
}

/// Master_Down_Interval in nanoseconds: `3 * Master_Adver_Interval + Skew_Time`
/// (RFC 9568 6.1, RFC 3768 6.1).
pub fn master_down_interval_ns(version: Version, priority: u8, master_adver_int_cs: u16) -> u64 {
    3 * u64::from(master_adver_int_cs) * NS_PER_CS + skew_ns(version, priority, master_adver_int_cs)
}

impl Instance {
    /// Validates `cfg` and builds an instance in Initialize; feed [`Input::Startup`] next.
    pub fn new(cfg: InstanceConfig) -> Result<Instance, ConfigError> {
        validate(&cfg)?;
        let effective_priority = if cfg.address_owner {
            PRIORITY_OWNER
        } else {
            cfg.priority
        };
        Ok(Instance {
            state: State::Initialize,
            effective_priority,
            master_adver_int_cs: cfg.advert_int_cs,
            timer: None,
            master_addr: None,
            preempt_after_ns: 0,
            interface_up: true,
            faults: BTreeSet::new(),
            peers: PeerTable::default(),
            transitions: Vec::new(),
            stats: Stats::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// The caller's receive path was not live (the XDP program had been detached, or
    /// the interface replaced): what this Backup did not hear proves nothing, so its
    /// Master_Down_Timer starts again from `now` instead of firing (RFC 9568 6.4.2 only
    /// declares a master down from adverts that could have been received).
    pub fn restart_master_down_timer(&mut self, now: u64) {
        if self.state == State::Backup {
            self.timer = Some((TimerKind::MasterDown, now + self.master_down_interval_ns()));
        }
    }

    /// A reload changed this instance's settings but not its identity (VRID, version,
    /// family, primary address, address ownership): they apply to the running state
    /// machine, which keeps its state, history and counters. The caller then feeds the
    /// new effective priority ([`Input::PriorityChanged`]) and adds or removes the VIPs
    /// that changed. A Master sends an advert at once, so the backups learn a new
    /// interval or address list without waiting (RFC 9568 6.4.2 adopts the interval of
    /// every advert); a Backup that follows no master starts from the new interval.
    pub fn reconfigure(
        &mut self,
        now: u64,
        mut cfg: InstanceConfig,
    ) -> Result<Vec<Action>, ConfigError> {
        cfg.primary_addr = self.cfg.primary_addr;
        validate(&cfg)?;
        let mut out = Vec::new();
        let interval_changed = cfg.advert_int_cs != self.cfg.advert_int_cs;
        let vips_changed = !same_addresses(&cfg.vips, &self.cfg.vips);
        let delay_changed = cfg.preempt_delay_cs != self.cfg.preempt_delay_cs;
        self.cfg = cfg;
        if delay_changed {
            // keepalived counts preempt_delay from the start of the election; keep
            // that start, with the new length.
            let started = self.transitions.last().map_or(now, |t| t.at_ns);
            self.preempt_after_ns = started + u64::from(self.cfg.preempt_delay_cs) * NS_PER_CS;
        }
        match self.state {
            State::Master => {
                self.master_adver_int_cs = self.cfg.advert_int_cs;
                if interval_changed || vips_changed {
                    out.push(Action::SendAdvert {
                        priority: self.effective_priority,
                    });
                    self.timer = Some((TimerKind::Adver, now + self.adver_step()));
                }
            }
            State::Backup if self.master_addr.is_none() => {
                self.master_adver_int_cs = self.cfg.advert_int_cs;
            }
            _ => {}
        }
        Ok(out)
    }

    /// This instance's state for a successor process ([`Instance::adopt`]).
    pub fn handover(&self) -> Handover {
        Handover {
            state: self.state,
            effective_priority: self.effective_priority,
            master_adver_int_cs: self.master_adver_int_cs,
            timer: self.timer.map(|(kind, at)| match kind {
                TimerKind::MasterDown => HandoverTimer::MasterDown(at),
                TimerKind::Adver => HandoverTimer::Adver(at),
            }),
            master_addr: self.master_addr,
            preempt_after_ns: self.preempt_after_ns,
            interface_up: self.interface_up,
            faults: self.faults.iter().cloned().collect(),
            peers: self
                .peers
                .iter()
                .map(|(a, p)| (*a, p.advert.clone(), p.rx_ns))
                .collect(),
            transitions: self.transitions.clone(),
            stats: self.stats,
        }
    }

    /// Goes on from a predecessor's [`Instance::handover`], in Initialize only (a fresh
    /// instance), without a transition: no notify, no VIP change, no election. A Master
    /// advertises at once (the predecessor stopped advertising when it handed over, so
    /// the gap the backups see is the hand-over's, not an interval more) and keeps its
    /// Adver_Timer from there; a Backup keeps its Master_Down_Timer, which the caller's
    /// takeover re-check guards as any other (RFC 9568 6.4.2). Returns `None` when this
    /// instance is not fresh or the handed state is not one to go on from.
    pub fn adopt(&mut self, now: u64, h: Handover) -> Option<Vec<Action>> {
        if self.state != State::Initialize || h.state == State::Initialize {
            return None;
        }
        self.state = h.state;
        self.effective_priority = h.effective_priority;
        self.master_adver_int_cs = h.master_adver_int_cs;
        self.master_addr = h.master_addr;
        self.preempt_after_ns = h.preempt_after_ns;
        self.interface_up = h.interface_up;
        self.faults = h.faults.into_iter().collect();
        self.peers = h
            .peers
            .into_iter()
            .take(MAX_REMEMBERED_PEERS)
            .map(|(a, advert, rx_ns)| (a, Peer { advert, rx_ns }))
            .collect();
        self.transitions = h.transitions;
        self.stats = h.stats;
        let mut out = Vec::new();
        self.timer = match (h.state, h.timer) {
            (State::Master, _) => {
                self.master_adver_int_cs = self.cfg.advert_int_cs;
                out.push(Action::SendAdvert {
                    priority: self.effective_priority,
                });
                self.stats.advert_sent += 1;
                Some((TimerKind::Adver, now + self.adver_step()))
            }
            (State::Backup, Some(HandoverTimer::MasterDown(at))) => {
                Some((TimerKind::MasterDown, at))
            }
            (State::Backup, _) => {
                Some((TimerKind::MasterDown, now + self.master_down_interval_ns()))
            }
            _ => None,
        };
        Some(out)
    }

    /// The counters since start or the last [`Instance::clear_stats`].
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// keepalived's STATS_CLEAR signal.
    pub fn clear_stats(&mut self) {
        self.stats = Stats::default();
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the caller must feed [`Input::Timer`]: the Master_Down_Timer in Backup, the
    /// Adver_Timer in Master, nothing otherwise.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timer.map(|(_, at)| at)
    }

    /// Priority used in adverts and elections now.
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Master_Adver_Interval in centiseconds: ours, or in VRRPv3 the one learned from the
    /// current master (RFC 9568 6.4.2).
    pub fn master_adver_int_cs(&self) -> u16 {
        self.master_adver_int_cs
    }

    /// Master_Down_Interval for our current priority and Master_Adver_Interval.
    pub fn master_down_interval_ns(&self) -> u64 {
        master_down_interval_ns(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_int_cs,
        )
    }

    /// Skew_Time for our current priority and Master_Adver_Interval.
    pub fn skew_ns(&self) -> u64 {
        skew_ns(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_int_cs,
        )
    }

    /// The router we currently accept as master (ourselves when Master).
    pub fn master_addr(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.cfg.primary_addr),
            State::Backup => self.master_addr,
            State::Initialize | State::Fault => None,
        }
    }

    /// Every router this instance remembers an advert from, with the receive time of the
    /// newest one it was fed and its advertised priority and interval. The master it
    /// follows is first.
    pub fn known_peers(&self) -> Vec<KnownPeer> {
        let mut out: Vec<KnownPeer> = self
            .peers
            .iter()
            .map(|(addr, p)| KnownPeer {
                addr: *addr,
                rx_ns: p.rx_ns,
                priority: p.advert.priority,
                interval_cs: p.advert.max_adver_int_cs,
            })
            .collect();
        let master = self.master_addr;
        out.sort_by_key(|p| {
            (
                Some(p.addr) != master,
                std::cmp::Reverse(p.priority),
                p.addr,
            )
        });
        out
    }

    /// keepalived `preempt_delay`: adverts received before this time are followed even
    /// from a lower-priority master.
    pub fn preempt_after_ns(&self) -> u64 {
        self.preempt_after_ns
    }

    /// Receive time of the newest advert from `src` this instance was fed.
    pub fn peer_rx_ns(&self, src: IpAddr) -> Option<u64> {
        self.peers.get(&src).map(|p| p.rx_ns)
    }

    /// Accept_Mode (RFC 9568 6.1), for the caller's packet filter.
    pub fn accept_mode(&self) -> bool {
        self.cfg.accept
    }

    /// The most recent transitions, oldest first (at most [`TRANSITION_LOG_LEN`]).
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// The advert to send for [`Action::SendAdvert`]: our VIPs, our configured
    /// Advertisement_Interval (a master always sends its own, RFC 9568 6.4.3), and for
    /// VRRPv2 the PASS data.
    pub fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            max_adver_int_cs: self.cfg.advert_int_cs,
            addrs: self.cfg.vips.clone(),
            auth: match self.cfg.version {
                Version::V2 => self.cfg.auth_pass,
                Version::V3 => None,
            },
        }
    }

    /// Feeds one event at time `now`; returns what to do, in order.
    pub fn handle(&mut self, now: u64, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if let Input::Advert { advert, .. } = &input {
            self.stats.advert_rcvd += 1;
            self.stats.pri_zero_rcvd += u64::from(advert.priority == 0);
        }
        self.handle_input(now, input, &mut out);
        for a in &out {
            if let Action::SendAdvert { priority } = a {
                self.stats.advert_sent += 1;
                self.stats.pri_zero_sent += u64::from(*priority == 0);
            }
        }
        out
    }

    fn handle_input(&mut self, now: u64, input: Input, out: &mut Vec<Action>) {
        match input {
            Input::Startup => self.on_startup(now, out),
            Input::Resume => self.on_resume(now, out),
            Input::Shutdown => self.on_shutdown(now, out),
            Input::Timer => self.on_timer(now, out),
            Input::Advert { src, advert, rx_ns } => {
                self.on_advert(now, src, advert, rx_ns, out);
            }
            Input::AdvertRefresh { src, rx_ns } => match self.peers.get(&src) {
                Some(peer) => {
                    let advert = peer.advert.clone();
                    self.on_advert(now, src, advert, rx_ns, out);
                }
                None => out.push(Action::Discarded {
                    reason: DiscardReason::UnknownPeer,
                }),
            },
            Input::PriorityChanged { effective } => self.on_priority(now, effective, out),
            Input::InterfaceDown => {
                self.interface_up = false;
                self.enter_fault_if_needed(now, Event::InterfaceDown, out);
            }
            Input::InterfaceUp => {
                self.interface_up = true;
                self.leave_fault_if_clear(now, Event::InterfaceUp, out);
            }
            Input::Fault { on: true, reason } => {
                self.faults.insert(reason.clone());
                self.enter_fault_if_needed(now, Event::FaultOn { reason }, out);
            }
            Input::Fault { on: false, reason } => {
                self.faults.remove(&reason);
                self.leave_fault_if_clear(now, Event::FaultCleared, out);
            }
        }
    }

    fn faulty(&self) -> bool {
        !self.interface_up || !self.faults.is_empty()
    }

    /// The fault conditions that are on (see [`Input::Fault`]).
    pub fn fault_reasons(&self) -> impl Iterator<Item = &FaultCause> {
        self.faults.iter()
    }

    /// Whether the instance's interface is up (as last told).
    pub fn interface_up(&self) -> bool {
        self.interface_up
    }

    /// RFC 9568 6.4.1: the owner goes straight to Master; everyone else to Backup with
    /// Master_Down_Timer = Master_Down_Interval. keepalived also holds preemption off for
    /// `preempt_delay` from here.
    fn on_startup(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if self.faulty() {
            let ev = if self.interface_up {
                Event::FaultOn {
                    reason: self.faults.iter().next().cloned().unwrap_or_default(),
                }
            } else {
                Event::InterfaceDown
            };
            self.change_state(now, ev, State::Fault, out);
            return;
        }
        self.start_election(now, Event::Startup, out);
    }

    fn on_resume(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if self.faulty() {
            self.on_startup(now, out);
            return;
        }
        self.preempt_after_ns = now;
        self.change_state(now, Event::Resumed, State::Master, out);
    }

    fn start_election(&mut self, now: u64, event: Event, out: &mut Vec<Action>) {
        self.preempt_after_ns = now + u64::from(self.cfg.preempt_delay_cs) * NS_PER_CS;
        let target = if self.effective_priority == PRIORITY_OWNER {
            State::Master
        } else {
            State::Backup
        };
        self.change_state(now, event, target, out);
    }

    /// RFC 9568 6.4.2 / 6.4.3 Shutdown: a master sends priority 0 so a backup takes over
    /// after Skew_Time; every state goes to Initialize.
    fn on_shutdown(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        self.change_state(now, Event::Shutdown, State::Initialize, out);
    }

    fn on_timer(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some((kind, at)) = self.timer else { return };
        // A timer fed early (spurious wakeup, or a deadline that moved since the caller
        // armed it) is ignored; the caller re-arms from next_deadline().
        if now < at {
            return;
        }
        match (self.state, kind) {
            // RFC 9568 6.4.2: Master_Down_Timer fires.
            (State::Backup, TimerKind::MasterDown) => {
                self.change_state(now, Event::MasterDown, State::Master, out);
            }
            // RFC 9568 6.4.3: Adver_Timer fires. Keep the cadence of the previous deadline
            // so a late wakeup does not drift the schedule, unless we are a whole interval
            // behind.
            (State::Master, TimerKind::Adver) => {
                out.push(Action::SendAdvert {
                    priority: self.effective_priority,
                });
                let step = self.adver_step();
                let next = at + step;
                let next = if next <= now { now + step } else { next };
                self.timer = Some((TimerKind::Adver, next));
            }
            _ => self.timer = None,
        }
    }

    fn on_priority(&mut self, now: u64, requested: u8, out: &mut Vec<Action>) {
        let max = if self.cfg.address_owner {
            PRIORITY_OWNER
        } else {
            PRIORITY_OWNER - 1
        };
        let effective = requested.clamp(1, max);
        if effective == self.effective_priority {
            return;
        }
        self.effective_priority = effective;
        if self.state == State::Master {
            // Tell peers at once instead of at the next Adver_Timer, so a preempting backup
            // starts its Master_Down_Timer from the new priority one interval sooner.
            out.push(Action::SendAdvert {
                priority: effective,
            });
            self.timer = Some((TimerKind::Adver, now + self.adver_step()));
        }
    }

    fn enter_fault_if_needed(&mut self, now: u64, event: Event, out: &mut Vec<Action>) {
        if self.faulty() && matches!(self.state, State::Backup | State::Master) {
            self.change_state(now, event, State::Fault, out);
        }
    }

    fn leave_fault_if_clear(&mut self, now: u64, event: Event, out: &mut Vec<Action>) {
        if self.state == State::Fault && !self.faulty() {
            // keepalived leaves FAULT for BACKUP and runs the election from scratch.
            self.start_election(now, event, out);
        }
    }

    fn remember(&mut self, src: IpAddr, advert: &Advert, rx_ns: u64) {
        if !self.peers.contains_key(&src) && self.peers.len() >= MAX_REMEMBERED_PEERS {
            // Evict the peer heard from least recently; a LAN segment has few routers per
            // VRID, so this only bounds memory against spoofed sources. Never the master
            // we follow: with the XDP path its entry is refreshed only when the takeover
            // re-check runs, so it looks oldest, and losing it would turn the next
            // AdvertRefresh into UnknownPeer and a false takeover under a spoofing flood.
            let master = self.master_addr;
            if let Some(oldest) = self
                .peers
                .iter()
                .filter(|(a, _)| Some(**a) != master)
                .min_by_key(|(_, p)| p.rx_ns)
                .map(|(a, _)| *a)
            {
                self.peers.remove(&oldest);
            }
        }
        // A refresh (the same advert again) updates the record in place: no copy of the
        // address list.
        if let Some(p) = self.peers.get_mut(&src) {
            if p.advert != *advert {
                p.advert = advert.clone();
            }
            p.rx_ns = rx_ns;
            return;
        }
        self.peers.insert(
            src,
            Peer {
                advert: advert.clone(),
                rx_ns,
            },
        );
    }

    /// RFC 9568 7.1 checks that need the instance, then 6.4.2 / 6.4.3.
    fn on_advert(
        &mut self,
        now: u64,
        src: IpAddr,
        advert: Advert,
        rx_ns: u64,
        out: &mut Vec<Action>,
    ) {
        if let Some(reason) = self.check_advert(src, &advert) {
            // Remember what the router now sends even though it is discarded: an
            // [`Input::AdvertRefresh`] replays the remembered advert for each unchanged
            // one after it, and must replay this one (discarded again, as full delivery
            // would), not an older one that passed.
            if matches!(
                reason,
                DiscardReason::AddressMismatch
                    | DiscardReason::IntervalMismatch
                    | DiscardReason::AuthMismatch
                    | DiscardReason::VersionMismatch
            ) && self.peers.contains_key(&src)
            {
                self.remember(src, &advert, rx_ns);
            }
            out.push(Action::Discarded { reason });
            return;
        }
        self.remember(src, &advert, rx_ns);
        match self.state {
            State::Initialize | State::Fault => {
                out.push(Action::Discarded {
                    reason: DiscardReason::NotListening,
                });
            }
            State::Backup => self.backup_rx(src, &advert, rx_ns, out),
            State::Master => self.master_rx(now, src, &advert, rx_ns, out),
        }
    }

    fn check_advert(&self, src: IpAddr, advert: &Advert) -> Option<DiscardReason> {
        if src == self.cfg.primary_addr {
            return Some(DiscardReason::OwnAdvert);
        }
        if advert.version != self.cfg.version {
            return Some(DiscardReason::VersionMismatch);
        }
        if advert.vrid != self.cfg.vrid {
            return Some(DiscardReason::VridMismatch);
        }
        if Family::of(&src) != self.cfg.family {
            return Some(DiscardReason::FamilyMismatch);
        }
        if self.cfg.version == Version::V2 {
            // RFC 3768 7.1: auth type and data must match the configuration.
            if advert.auth != self.cfg.auth_pass {
                return Some(DiscardReason::AuthMismatch);
            }
            // RFC 3768 7.1: the Adver Interval must equal ours, else discard.
            if advert.max_adver_int_cs != self.cfg.advert_int_cs {
                return Some(DiscardReason::IntervalMismatch);
            }
        }
        // RFC 9568 7.1: a differing address list is dropped unless it comes from the owner.
        if advert.priority != PRIORITY_OWNER && !same_addresses(&advert.addrs, &self.cfg.vips) {
            return Some(DiscardReason::AddressMismatch);
        }
        None
    }

    /// RFC 9568 6.4.2, receiving an advert in Backup.
    fn backup_rx(&mut self, src: IpAddr, advert: &Advert, rx_ns: u64, out: &mut Vec<Action>) {
        // RFC 9568 6.4.2 read together with the election of 6.4.3: when two masters overlap
        // (a takeover race, a healed partition), the worse one steps down once it hears the
        // better one, so a backup keeps following the better one. Taken literally, 6.4.2
        // would adopt the transient master's interval; if that is shorter, the backup's
        // Master_Down_Timer then runs out between the real master's adverts and it flaps
        // (found by the simulator). keepalived 2.2.7 follows the literal rule.
        if self.superseded(src, advert, rx_ns) {
            out.push(Action::Discarded {
                reason: DiscardReason::WorseThanMaster,
            });
            return;
        }
        if advert.priority == PRIORITY_STOP {
            // The master is stopping: take over after Skew_Time, not Master_Down_Interval.
            self.timer = Some((TimerKind::MasterDown, rx_ns + self.skew_ns()));
            return;
        }
        // keepalived preempt_delay: until it has passed, behave as if preempt were off.
        let preempting = self.cfg.preempt && rx_ns >= self.preempt_after_ns;
        if !preempting || advert.priority >= self.effective_priority {
            let followed = self.master_addr == Some(src);
            let before = self.master_adver_int_cs;
            if self.cfg.version == Version::V3 {
                // RFC 9568 6.4.2: adopt the master's advertised interval. From a router we
                // did not follow until now, one advert never shortens the interval: a
                // forged or stray advert with Max Adver Int 1 cs would otherwise fire the
                // Master_Down_Timer between two adverts of the live master. Its next
                // advert, from the router then followed, sets the interval it carries.
                self.master_adver_int_cs = if followed {
                    advert.max_adver_int_cs
                } else {
                    advert.max_adver_int_cs.max(before)
                };
                if self.master_adver_int_cs != advert.max_adver_int_cs {
                    // Have the kernel report that next advert even if unchanged.
                    out.push(Action::ReportPeers);
                }
            }
            // Handing over from a master that is still alive by its own timing: that master
            // steps down for this router (RFC 9568 6.4.3) and, should this one fall silent,
            // takes the VIPs back after its own Master_Down_Interval from this advert. Ours is
            // longer only by the skew difference (a few ms between close priorities), so
            // wait one interval more than the RFC's timer and let it, not us, win that race.
            let from_live_master = !followed
                && self
                    .master_addr
                    .and_then(|m| self.peers.get(&m))
                    .is_some_and(|p| {
                        p.advert.priority != PRIORITY_STOP
                            && rx_ns
                                < p.rx_ns + 3 * u64::from(p.advert.max_adver_int_cs) * NS_PER_CS
                    });
            self.master_addr = Some(src);
            let mut at = rx_ns + self.master_down_interval_ns();
            if !followed {
                // Nor does it bring the running Master_Down_Timer forward.
                if let Some((TimerKind::MasterDown, cur)) = self.timer {
                    at = at.max(cur);
                }
            }
            if from_live_master {
                at += u64::from(self.master_adver_int_cs) * NS_PER_CS;
            }
            self.timer = Some((TimerKind::MasterDown, at));
        } else {
            out.push(Action::Discarded {
                reason: DiscardReason::LowerPriority,
            });
        }
    }

    /// Whether `advert` from `src` comes from a router worse than the master we follow,
    /// while that master is alive by its own timing: its last advert (the caller refreshes
    /// it from the kernel first, see [`crate::node::advert`]) is younger than three of its
    /// own intervals, the point at which RFC 9568 6.4.2 would declare it down.
    fn superseded(&self, src: IpAddr, advert: &Advert, rx_ns: u64) -> bool {
        let Some(m) = self.master_addr.filter(|m| *m != src) else {
            return false;
        };
        let Some(cur) = self.peers.get(&m) else {
            return false;
        };
        let cur_prio = cur.advert.priority;
        let fresh = rx_ns < cur.rx_ns + 3 * u64::from(cur.advert.max_adver_int_cs) * NS_PER_CS;
        let better = cur_prio > advert.priority || (cur_prio == advert.priority && m > src);
        cur_prio != PRIORITY_STOP && fresh && better
    }

    /// RFC 9568 6.4.3, receiving an advert in Master.
    fn master_rx(
        &mut self,
        now: u64,
        src: IpAddr,
        advert: &Advert,
        rx_ns: u64,
        out: &mut Vec<Action>,
    ) {
        if advert.priority == PRIORITY_STOP {
            // Another master is stopping: send an advert and reset the Adver_Timer.
            out.push(Action::SendAdvert {
                priority: self.effective_priority,
            });
            self.timer = Some((TimerKind::Adver, now + self.adver_step()));
            return;
        }
        let better = advert.priority > self.effective_priority
            || (advert.priority == self.effective_priority && src > self.cfg.primary_addr);
        if better {
            if self.cfg.version == Version::V3 {
                self.master_adver_int_cs = advert.max_adver_int_cs;
            }
            self.master_addr = Some(src);
            let event = Event::BetterAdvert {
                src,
                priority: advert.priority,
            };
            self.change_state(now, event, State::Backup, out);
            // The kernel timestamp, not our wakeup time, starts the Master_Down_Timer.
            self.timer = Some((
                TimerKind::MasterDown,
                rx_ns + self.master_down_interval_ns(),
            ));
        } else {
            out.push(Action::Discarded {
                reason: DiscardReason::NotBetterThanUs,
            });
            if self.cfg.higher_prio_send_advert {
                out.push(Action::SendAdvert {
                    priority: self.effective_priority,
                });
            }
        }
    }

    fn adver_step(&self) -> u64 {
        u64::from(self.cfg.advert_int_cs) * NS_PER_CS
    }

    /// The single place a state changes: logs (instance, event, old, new), reports it as
    /// [`Action::Transition`] and performs the exit actions of the old state and the entry
    /// actions of the new one.
    fn change_state(&mut self, now: u64, event: Event, new: State, out: &mut Vec<Action>) {
        let old = self.state;
        if old == new {
            return;
        }
        if self.transitions.len() >= TRANSITION_LOG_LEN {
            self.transitions.remove(0);
        }
        self.stats.become_master += u64::from(new == State::Master);
        self.stats.release_master += u64::from(old == State::Master);
        self.transitions.push(Transition {
            instance: self.cfg.name.clone(),
            at_ns: now,
            event: event.clone(),
            old,
            new,
        });
        // Leaving Master for Initialize (Shutdown, RFC 9568 6.4.3) or for Fault while the
        // link still works (keepalived does the same on a failed check): priority 0 lets a
        // backup take over after Skew_Time instead of Master_Down_Interval.
        if old == State::Master
            && matches!(new, State::Initialize | State::Fault)
            && self.interface_up
        {
            out.push(Action::SendAdvert {
                priority: PRIORITY_STOP,
            });
        }
        self.state = new;
        match new {
            State::Master => {
                // RFC 9568 6.4.1 / 6.4.2: send an advert, announce the addresses, arm the
                // Adver_Timer.
                self.master_adver_int_cs = self.cfg.advert_int_cs;
                out.push(Action::SendAdvert {
                    priority: self.effective_priority,
                });
                out.push(Action::AddVips);
                out.push(Action::SendGratuitous);
                out.push(Action::Notify {
                    state: State::Master,
                });
                out.push(Action::ReportPeers);
                self.timer = Some((TimerKind::Adver, now + self.adver_step()));
            }
            State::Backup => {
                out.push(Action::RemoveVips);
                out.push(Action::Notify {
                    state: State::Backup,
                });
                if old != State::Master {
                    // RFC 9568 6.4.1: Master_Adver_Interval starts as ours.
                    self.master_adver_int_cs = self.cfg.advert_int_cs;
                    self.master_addr = None;
                }
                self.timer = Some((TimerKind::MasterDown, now + self.master_down_interval_ns()));
                out.push(Action::ReportPeers);
            }
            State::Fault | State::Initialize => {
                out.push(Action::RemoveVips);
                out.push(Action::Notify { state: new });
                self.timer = None;
                self.master_addr = None;
            }
        }
        out.push(Action::Transition {
            from: old,
            to: new,
            why: event,
        });
    }
}

/// The routers an instance remembers, at most [`MAX_REMEMBERED_PEERS`] (`remember`
/// evicts): a LAN has one or two per VRID, and every refresh of a backup looks its master
/// up here, so a short vector searched in order costs one cache line where a hash map
/// hashed the address and probed its control bytes and buckets (about a tenth of a backup's
/// CPU at 255 VRIDs in perf). Entries stay in the order they were first remembered.
#[derive(Debug, Clone, Default)]
struct PeerTable(Vec<(IpAddr, Peer)>);

impl PeerTable {
    fn get(&self, src: &IpAddr) -> Option<&Peer> {
        self.0.iter().find(|(a, _)| a == src).map(|(_, p)| p)
    }
    fn get_mut(&mut self, src: &IpAddr) -> Option<&mut Peer> {
        self.0.iter_mut().find(|(a, _)| a == src).map(|(_, p)| p)
    }
    fn contains_key(&self, src: &IpAddr) -> bool {
        self.get(src).is_some()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    /// Adds `src` (the caller has checked it is not there).
    fn insert(&mut self, src: IpAddr, peer: Peer) {
        self.0.push((src, peer));
    }
    fn remove(&mut self, src: &IpAddr) {
        self.0.retain(|(a, _)| a != src);
    }
    fn iter(&self) -> impl Iterator<Item = (&IpAddr, &Peer)> {
        self.0.iter().map(|(a, p)| (a, p))
    }
}

impl FromIterator<(IpAddr, Peer)> for PeerTable {
    fn from_iter<I: IntoIterator<Item = (IpAddr, Peer)>>(it: I) -> Self {
        let mut t = PeerTable::default();
        for (a, p) in it {
            match t.get_mut(&a) {
                Some(old) => *old = p,
                None => t.insert(a, p),
            }
        }
        t
    }
}

fn same_addresses(a: &[IpAddr], b: &[IpAddr]) -> bool {
    // The common case, a peer listing the VIPs in the configured order, costs no set.
    if a == b {
        return true;
    }
    let a: BTreeSet<&IpAddr> = a.iter().collect();
    let b: BTreeSet<&IpAddr> = b.iter().collect();
    a == b
}
