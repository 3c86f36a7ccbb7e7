//! The node-level election: what one router does with its instances beyond a single
//! instance's RFC 9568 state machine, shared by the daemon and the simulator.
//!
//! # The delivery contract between the kernel and the core
//!
//! The XDP program checks every advert (one acceptance rule, see `haxdp-common`) and keeps,
//! per (interface, VRID, family, source), the kernel receive time of the newest accepted
//! advert. It pushes an advert to user space, where it becomes [`Input::Advert`], only when
//!
//! 1. its source is new for the VRID;
//! 2. anything the election reads changed: priority, interval, addresses, version;
//! 3. the source was silent for more than 3 of its own intervals (it "resumed");
//! 4. it is the source's first advert after the core asked with [`Action::ReportPeers`],
//!    which the core does on entering Backup and Master.
//!
//! Every other advert only moves the kernel timestamp. So, in every state, a live router
//! reaches the core within one of its advert intervals of the core's last state change,
//! and after that whenever it changes; in between the core reads the kernel's timestamps
//! through [`KernelView`] at the two points where they decide something:
//!
//! - before a Backup's Master_Down_Timer is allowed to fire ([`expire`]): first the master
//!   it follows, then every other router it knows, so a live router that should hold it back
//!   does, whatever state the core was in when that router's adverts stopped changing;
//! - before a Backup judges an advert from a router it does not follow ([`advert`]): the
//!   followed master's freshness is its kernel timestamp, not the last time it changed.
//!
//! A flood of unchanged or invalid adverts therefore never wakes user space, and the cost of
//! the contract is one report per live peer per state change, plus one map lookup per known
//! peer at a takeover decision.
//!
//! Over the raw-socket receive path every advert is delivered ([`KernelView`] then has no
//! records), which satisfies the same contract trivially.

use std::net::IpAddr;

use crate::fault::FaultCause;
use crate::fsm::{Action, Input, Instance, State};
use crate::packet::Advert;

/// The kernel's record of advert sources, per member instance of a node.
pub trait KernelView {
    /// Kernel receive time (CLOCK_MONOTONIC ns) of the newest accepted advert from `src`
    /// for member `member`'s instance; `None` when the kernel keeps no record.
    fn last_advert_ns(&mut self, member: usize, src: IpAddr) -> Option<u64>;

    /// As [`KernelView::last_advert_ns`], where a cheaper read may lag it (be older, or
    /// `None`) but never be newer than the kernel's receive time of `src`'s newest
    /// advert. Read only to move a Backup's Master_Down_Timer forward ([`on_deadlines`],
    /// and first at an expiry), never to let it fire: a lag costs an exact read, not a
    /// wrong decision.
    fn last_advert_hint_ns(&mut self, member: usize, src: IpAddr) -> Option<u64> {
        self.last_advert_ns(member, src)
    }
}

/// A [`KernelView`] that answers with the cheaper [`KernelView::last_advert_hint_ns`].
struct Hints<'a, K: KernelView + ?Sized>(&'a mut K);

impl<K: KernelView + ?Sized> KernelView for Hints<'_, K> {
    fn last_advert_ns(&mut self, member: usize, src: IpAddr) -> Option<u64> {
        self.0.last_advert_hint_ns(member, src)
    }
}

/// A kernel that keeps no records (the raw-socket path delivers every advert).
pub struct NoKernel;

impl KernelView for NoKernel {
    fn last_advert_ns(&mut self, _member: usize, _src: IpAddr) -> Option<u64> {
        None
    }
}

/// One instance of a node as the node-level logic needs it.
pub trait Member {
    fn core(&self) -> &Instance;
    fn core_mut(&mut self) -> &mut Instance;
    /// The `vrrp_sync_group` the instance belongs to.
    fn sync_group(&self) -> Option<&str>;
    /// A sync-group member whose Master_Down_Timer expired but which waits for the rest of
    /// its group (see [`expire`]).
    fn held(&self) -> bool;
    fn set_held(&mut self, held: bool);
}

/// Actions produced for member `.0`, in the order the caller must perform them.
pub type Out = Vec<(usize, Vec<Action>)>;

fn feed<M: Member>(ms: &mut [M], i: usize, now: u64, input: Input, out: &mut Out) {
    let acts = ms[i].core_mut().handle(now, input);
    if !acts.is_empty() {
        out.push((i, acts));
    }
}

/// Feeds the kernel's newer timestamp of `src` to member `i` as [`Input::AdvertRefresh`];
/// true if there was one.
fn refresh_peer<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    src: IpAddr,
    kernel: &mut K,
    out: &mut Out,
) -> bool {
    let Some(ns) = kernel.last_advert_ns(i, src) else {
        return false;
    };
    let Some(fed) = ms[i].core().peer_rx_ns(src) else {
        // Not remembered: the core has nothing to refresh (it was told of every change,
        // so this is a router it evicted or never accepted).
        return false;
    };
    // An advert received before the instance entered its current state was judged (or
    // ignored, in Fault) then; with every advert delivered it would not be seen again.
    let since = ms[i].core().transitions().last().map_or(0, |t| t.at_ns);
    if ns <= fed || ns < since {
        return false;
    }
    // keepalived's preempt_delay follows a lower-priority master until it has passed. The
    // unchanged adverts between `fed` and `ns` came at most 3 intervals apart (a longer
    // silence is reported as resumed), so the last one before the end of the delay is
    // represented by a refresh just before it, as full delivery would have fed it.
    let pa = ms[i].core().preempt_after_ns();
    if fed < pa && pa <= ns {
        feed(ms, i, now, Input::AdvertRefresh { src, rx_ns: pa - 1 }, out);
    }
    feed(ms, i, now, Input::AdvertRefresh { src, rx_ns: ns }, out);
    true
}

/// A Backup's view of its followed master, brought up to the kernel's timestamp; true if
/// anything was fed.
pub fn refresh_master<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    kernel: &mut K,
    out: &mut Out,
) -> bool {
    if ms[i].core().state() != State::Backup {
        return false;
    }
    let Some(m) = ms[i].core().master_addr() else {
        return false;
    };
    refresh_peer(ms, i, now, m, kernel, out)
}

/// Every router member `i` knows, brought up to the kernel's timestamps (the followed
/// master first), stopping as soon as its Master_Down_Timer lies in the future again.
/// True if that is the case: a live router holds the instance back.
fn recheck_all<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    kernel: &mut K,
    out: &mut Out,
) -> bool {
    let alive = |ms: &[M]| ms[i].core().next_deadline().is_some_and(|d| d > now);
    // The followed master's cheaper time first: a live master shows in it (it never
    // runs ahead of the kernel's receive time), so only a silent one costs the exact
    // reads below, which alone can let the timer fire.
    refresh_master(ms, i, now, &mut Hints(&mut *kernel), out);
    if alive(ms) {
        return true;
    }
    for peer in ms[i].core().known_peers() {
        if ms[i].core().state() != State::Backup {
            break;
        }
        refresh_peer(ms, i, now, peer.addr, kernel, out);
        if alive(ms) {
            return true;
        }
    }
    alive(ms)
}

/// An advert delivered for member `i` (reported by the kernel, or read from a socket).
///
/// `prev_rx_ns` is the kernel's receive time of the source's advert before this one
/// (`AdvertEvent::prev_ns`): when the kernel reports a change, the adverts in between were
/// unchanged and only moved its timestamp, so the core is first brought up to the last of
/// them, exactly as if it had been fed each one. A Backup hearing a router it does not
/// follow then refreshes the followed master from the kernel, so that "is my master still
/// alive" is judged by its newest advert.
#[allow(clippy::too_many_arguments)]
pub fn advert<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    src: IpAddr,
    advert: Advert,
    rx_ns: u64,
    prev_rx_ns: Option<u64>,
    kernel: &mut K,
    out: &mut Out,
) {
    // As in `refresh_peer`: nothing from before the instance entered its current state.
    let since = ms[i].core().transitions().last().map_or(0, |t| t.at_ns);
    if let Some(prev) = prev_rx_ns.filter(|p| *p < rx_ns && *p >= since) {
        if ms[i].core().peer_rx_ns(src).is_some_and(|fed| fed < prev) {
            feed(ms, i, now, Input::AdvertRefresh { src, rx_ns: prev }, out);
        }
    }
    if ms[i].core().state() == State::Backup && ms[i].core().master_addr() != Some(src) {
        refresh_master(ms, i, now, kernel, out);
    }
    feed(
        ms,
        i,
        now.max(rx_ns),
        Input::Advert { src, advert, rx_ns },
        out,
    );
}

/// A change of member `i`'s effective priority (tracking weights). A Backup first catches
/// up with its followed master's kernel timestamp: the adverts it accepted under the old
/// priority move its Master_Down_Timer, those after the change may not (RFC 9568 6.4.2
/// with preemption), exactly as if each had been delivered.
pub fn priority_changed<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    effective: u8,
    kernel: &mut K,
    out: &mut Out,
) {
    refresh_master(ms, i, now, kernel, out);
    feed(ms, i, now, Input::PriorityChanged { effective }, out);
}

/// The router whose kernel record member `m`'s receive path must protect (keep room for
/// whatever spoofed sources fill the rest, `KernelRx::protect_peer`): the master a Backup
/// follows.
pub fn protected_master<M: Member>(m: &M) -> Option<IpAddr> {
    match m.core().state() {
        State::Backup => m.core().master_addr(),
        _ => None,
    }
}

/// Whether member `m` is faulty of its own making (its interface, its checks), not only
/// because another member of its sync group is: only that propagates, and when it ends,
/// the group's fault on the others ends too. Judging by state changes instead would let two
/// members that fault together (one link under both) hold each other in Fault for ever.
pub fn own_fault<M: Member>(m: &M) -> bool {
    let core = m.core();
    if !core.interface_up() {
        return true;
    }
    match m.sync_group() {
        Some(group) => core
            .fault_reasons()
            .any(|r| !matches!(r, FaultCause::SyncGroup { group: g, .. } if g == group)),
        None => core.fault_reasons().next().is_some(),
    }
}

/// keepalived's `vrrp_sync_group`: when member `i` becomes faulty of its own making
/// ([`own_fault`]), every other member of its group enters Fault too (the peer then takes
/// every member's VIPs); when that ends, they are released.
pub fn propagate_fault<M: Member>(ms: &mut [M], i: usize, faulted: bool, now: u64, out: &mut Out) {
    let Some(group) = ms[i].sync_group().map(str::to_owned) else {
        return;
    };
    let reason = FaultCause::SyncGroup {
        group: group.clone(),
        member: ms[i].core().config().name.clone(),
    };
    for j in 0..ms.len() {
        if j == i || ms[j].sync_group() != Some(group.as_str()) {
            continue;
        }
        feed(
            ms,
            j,
            now,
            Input::Fault {
                on: faulted,
                reason: reason.clone(),
            },
            out,
        );
    }
}

/// What [`expire`] did with a member whose deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A router it knows is alive after all: the deadline moved.
    Alive,
    /// Its sync group holds it back; `newly` the first time since it last was not held.
    Held { newly: bool },
    /// [`Input::Timer`] was fed (a Backup takes over, a Master sends its advert).
    Fired,
}

/// Member `i`'s deadline has passed. A Backup first re-reads every router it knows from the
/// kernel; a sync-group member then waits for its group (keepalived's
/// vrrp_sync_can_goto_master); otherwise [`Input::Timer`] is fed.
pub fn expire<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    kernel: &mut K,
    out: &mut Out,
) -> Expiry {
    if ms[i].core().state() == State::Backup {
        if recheck_all(ms, i, now, kernel, out) {
            ms[i].set_held(false);
            return Expiry::Alive;
        }
        if group_holds(ms, i, now, kernel, out) {
            let newly = !ms[i].held();
            ms[i].set_held(true);
            return Expiry::Held { newly };
        }
    }
    ms[i].set_held(false);
    feed(ms, i, now, Input::Timer, out);
    Expiry::Fired
}

/// keepalived's sync-group election (vrrp_sync_can_goto_master): a member only becomes
/// Master when every other member is Master already or has its own Master_Down_Timer
/// expired, by the kernel's timestamps. Otherwise one LAN losing adverts would split the
/// group across two nodes. True while member `i` must wait.
pub fn group_holds<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    i: usize,
    now: u64,
    kernel: &mut K,
    out: &mut Out,
) -> bool {
    let Some(group) = ms[i].sync_group().map(str::to_owned) else {
        return false;
    };
    for j in 0..ms.len() {
        if j == i || ms[j].sync_group() != Some(group.as_str()) {
            continue;
        }
        match ms[j].core().state() {
            State::Master | State::Initialize => {}
            State::Fault => return true,
            State::Backup => {
                if recheck_all(ms, j, now, kernel, out)
                    || ms[j].core().next_deadline().is_none_or(|d| d > now)
                {
                    return true;
                }
            }
        }
    }
    false
}

/// Held members whose group is now ready take over; one member's takeover can release the
/// others, so this repeats until nothing changes.
pub fn release_held<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    now: u64,
    kernel: &mut K,
    out: &mut Out,
) {
    for _ in 0..=ms.len() {
        let mut changed = false;
        for i in 0..ms.len() {
            let m = &ms[i];
            if m.held()
                && m.core().state() == State::Backup
                && m.core().next_deadline().is_some_and(|d| d <= now)
            {
                changed |= expire(ms, i, now, kernel, out) == Expiry::Fired;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The earliest deadline of any member; a held member waits for its group, not for its
/// expired timer.
pub fn next_deadline<M: Member>(ms: &[M], now: u64) -> Option<u64> {
    ms.iter()
        .filter_map(|m| {
            m.core()
                .next_deadline()
                .filter(|at| !(m.held() && *at <= now))
        })
        .min()
}

/// How early a Master's Adver_Timer may be served in a wake-up for another deadline: an
/// eighth of its interval, at most 2 ms. RFC 9568 6.4.3 sends an advert every
/// Advertisement_Interval; one that goes out this little early keeps every backup's
/// Master_Down_Timer (three intervals and the skew) far from expiring, and masters whose
/// deadlines fall within the window cost one wake-up (and one sendmmsg) instead of one
/// each.
pub fn advert_slack_ns(core: &Instance) -> u64 {
    (u64::from(core.config().advert_int_cs) * crate::fsm::NS_PER_CS / 8).min(2_000_000)
}

/// How long before a Backup's Master_Down_Timer the daemon wakes to check what a
/// takeover would rest on (that its receive path is live), so that the check is not
/// between the deadline and the first advert: a sixteenth of the Master_Down_Interval,
/// at most 1 ms.
pub fn precheck_lead_ns(core: &Instance) -> u64 {
    (core.master_down_interval_ns() / 16).min(1_000_000)
}

/// True if some Backup's Master_Down_Timer has passed at `now`, or will within its
/// [`precheck_lead_ns`]: this wake-up re-checks the kernel anyway, so every Backup is
/// refreshed with it (see [`on_deadlines`]).
pub fn backup_due<M: Member>(ms: &[M], now: u64) -> bool {
    ms.iter().any(|m| {
        m.core().state() == State::Backup
            && m.core()
                .next_deadline()
                .is_some_and(|at| at <= now + precheck_lead_ns(m.core()))
    })
}

/// One wake-up at `now`: every member whose deadline has passed is expired, a Master
/// whose Adver_Timer is due within [`advert_slack_ns`] advertises, and a Backup is
/// refreshed from the kernel early (only a refresh, never a takeover, happens early):
/// every Backup when one of them is (nearly) due ([`backup_due`]), otherwise those whose deadline
/// is within half a Master_Down_Interval. A node of backups behind healthy masters so
/// wakes once per (Master_Down_Interval - Advertisement_Interval) for all of them,
/// instead of once per half interval. The early refresh reads the kernel's cheaper
/// [`KernelView::last_advert_hint_ns`]; an expiry re-reads it exactly. Returns each
/// member's [`Expiry`].
pub fn on_deadlines<M: Member, K: KernelView + ?Sized>(
    ms: &mut [M],
    now: u64,
    kernel: &mut K,
    out: &mut Out,
) -> Vec<(usize, Expiry)> {
    let mut done = Vec::new();
    let all = backup_due(ms, now);
    for i in 0..ms.len() {
        let Some(at) = ms[i].core().next_deadline() else {
            continue;
        };
        if at > now {
            ms[i].set_held(false);
            if ms[i].core().state() == State::Master && at <= now + advert_slack_ns(ms[i].core()) {
                // Served now, at its own deadline: the cadence stays its own.
                feed(ms, i, at, Input::Timer, out);
                continue;
            }
            let near = now + ms[i].core().master_down_interval_ns() / 2;
            if all || at <= near {
                refresh_master(ms, i, now, &mut Hints(&mut *kernel), out);
            }
            continue;
        }
        done.push((i, expire(ms, i, now, kernel, out)));
    }
    if done.iter().any(|(_, e)| *e == Expiry::Fired) {
        release_held(ms, now, kernel, out);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::InstanceConfig;
    use crate::packet::{Family, Version};
    use std::collections::HashMap;

    /// An instance that belongs to no sync group.
    #[derive(Debug, Clone)]
    struct Standalone {
        inst: Instance,
        held: bool,
    }

    impl Member for Standalone {
        fn core(&self) -> &Instance {
            &self.inst
        }
        fn core_mut(&mut self) -> &mut Instance {
            &mut self.inst
        }
        fn sync_group(&self) -> Option<&str> {
            None
        }
        fn held(&self) -> bool {
            self.held
        }
        fn set_held(&mut self, held: bool) {
            self.held = held;
        }
    }

    struct K(HashMap<IpAddr, u64>);
    impl KernelView for K {
        fn last_advert_ns(&mut self, _: usize, src: IpAddr) -> Option<u64> {
            self.0.get(&src).copied()
        }
    }

    /// Exact times, and cheaper hints that lag them (`None`: no hint).
    struct Lagging {
        exact: HashMap<IpAddr, u64>,
        hint: HashMap<IpAddr, u64>,
        exact_reads: usize,
    }
    impl KernelView for Lagging {
        fn last_advert_ns(&mut self, _: usize, src: IpAddr) -> Option<u64> {
            self.exact_reads += 1;
            self.exact.get(&src).copied()
        }
        fn last_advert_hint_ns(&mut self, _: usize, src: IpAddr) -> Option<u64> {
            self.hint.get(&src).copied()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn member(prio: u8) -> Standalone {
        let core = Instance::new(InstanceConfig {
            name: "VI_1".into(),
            vrid: 51,
            version: Version::V3,
            family: Family::V4,
            priority: prio,
            advert_int_cs: 10,
            preempt: true,
            preempt_delay_cs: 0,
            accept: false,
            vips: vec![ip("192.0.2.100")],
            primary_addr: ip("192.0.2.2"),
            auth_pass: None,
            start_as_master: false,
            higher_prio_send_advert: false,
            address_owner: false,
        })
        .unwrap();
        Standalone {
            inst: core,
            held: false,
        }
    }
    fn adv(prio: u8, int_cs: u16) -> Advert {
        Advert {
            version: Version::V3,
            vrid: 51,
            priority: prio,
            max_adver_int_cs: int_cs,
            addrs: vec![ip("192.0.2.100")],
            auth: None,
        }
    }
    const MS: u64 = 1_000_000;

    /// A Backup that knows a router it does not follow (here: it follows nobody, as after
    /// leaving Fault) re-reads it from the kernel before taking over.
    #[test]
    fn expiry_rereads_every_known_router() {
        let mut ms = [member(90)];
        let mut k = K(HashMap::new());
        let mut out = Out::new();
        ms[0].inst.handle(0, Input::Startup);
        advert(
            &mut ms,
            0,
            MS,
            ip("192.0.2.1"),
            adv(100, 10),
            MS,
            None,
            &mut k,
            &mut out,
        );
        // Fault and recovery: the core forgets which master it followed.
        ms[0].inst.handle(2 * MS, Input::InterfaceDown);
        ms[0].inst.handle(3 * MS, Input::InterfaceUp);
        assert_eq!(ms[0].inst.master_addr(), None);
        let at = ms[0].inst.next_deadline().unwrap();
        // The master kept advertising, unchanged: only the kernel timestamp moved.
        k.0.insert(ip("192.0.2.1"), at - MS);
        let e = on_deadlines(&mut ms, at, &mut k, &mut out);
        assert_eq!(e, vec![(0, Expiry::Alive)]);
        assert_eq!(ms[0].inst.state(), State::Backup);
        assert_eq!(ms[0].inst.master_addr(), Some(ip("192.0.2.1")));
        // Once it really falls silent, the backup takes over.
        let at = ms[0].inst.next_deadline().unwrap();
        let e = on_deadlines(&mut ms, at, &mut k, &mut out);
        assert_eq!(e, vec![(0, Expiry::Fired)]);
        assert_eq!(ms[0].inst.state(), State::Master);
    }

    /// A hint moves the timer forward without an exact read; a hint that lags (here:
    /// the master's advert before last) never lets it fire while the exact time says the
    /// master is alive, and once both are silent the backup takes over.
    #[test]
    fn a_lagging_hint_never_lets_the_master_down_timer_fire() {
        let mut ms = [member(90)];
        let m = ip("192.0.2.1");
        let mut k = Lagging {
            exact: HashMap::new(),
            hint: HashMap::new(),
            exact_reads: 0,
        };
        let mut out = Out::new();
        ms[0].inst.handle(0, Input::Startup);
        advert(&mut ms, 0, MS, m, adv(100, 10), MS, None, &mut k, &mut out);
        let at = ms[0].inst.next_deadline().unwrap();
        // Early refresh from the hint alone.
        k.hint.insert(m, 101 * MS);
        k.exact.insert(m, 101 * MS);
        let reads = k.exact_reads;
        on_deadlines(&mut ms, at - MS, &mut k, &mut out);
        assert_eq!(k.exact_reads, reads, "the hint needed no exact read");
        assert_eq!(ms[0].inst.peer_rx_ns(m), Some(101 * MS));
        // The hint lags by one advert past the deadline: the exact read holds it back.
        let at = ms[0].inst.next_deadline().unwrap();
        k.exact.insert(m, at - MS);
        let e = on_deadlines(&mut ms, at, &mut k, &mut out);
        assert_eq!(e, vec![(0, Expiry::Alive)]);
        assert_eq!(ms[0].inst.state(), State::Backup);
        // No hint at all: the same.
        k.hint.clear();
        let at = ms[0].inst.next_deadline().unwrap();
        k.exact.insert(m, at - MS);
        assert_eq!(
            on_deadlines(&mut ms, at, &mut k, &mut out),
            vec![(0, Expiry::Alive)]
        );
        let at = ms[0].inst.next_deadline().unwrap();
        assert_eq!(
            on_deadlines(&mut ms, at, &mut k, &mut out),
            vec![(0, Expiry::Fired)]
        );
        assert_eq!(ms[0].inst.state(), State::Master);
    }

    /// One forged advert from a router between the backup's and the master's priority, with
    /// a 1 cs interval, neither moves the Master_Down_Timer forward nor wins.
    #[test]
    fn a_worse_router_is_judged_against_the_masters_kernel_timestamp() {
        let mut ms = [member(90)];
        let mut k = K(HashMap::new());
        let mut out = Out::new();
        ms[0].inst.handle(0, Input::Startup);
        let m = ip("192.0.2.1");
        advert(&mut ms, 0, MS, m, adv(100, 10), MS, None, &mut k, &mut out);
        let before = ms[0].inst.next_deadline().unwrap();
        // The master keeps sending unchanged adverts (kernel only) for 200 ms.
        k.0.insert(m, 201 * MS);
        advert(
            &mut ms,
            0,
            205 * MS,
            ip("192.0.2.9"),
            adv(95, 1),
            205 * MS,
            None,
            &mut k,
            &mut out,
        );
        assert_eq!(ms[0].inst.master_addr(), Some(m));
        assert!(ms[0].inst.next_deadline().unwrap() > before);
        assert_eq!(ms[0].inst.master_adver_int_cs(), 10);
    }
}
