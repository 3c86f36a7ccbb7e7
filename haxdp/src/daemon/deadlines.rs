//! The deadline pass: due timers (`on_deadlines`), the kernel's PEERS view the election
//! reads there (`PeersView`), and the adverts of one pass sent together (`flush_batch`).

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use haxdp_vrrp::node::{self as election, Expiry, KernelView};
use haxdp_vrrp::State;
use tracing::{debug, info, warn};

use crate::clock;
use crate::xdp::rx::KernelRx;

use super::{Batched, Engine, Frame, Inst, RxPath};

/// How many backups one wake-up re-checks before reading PEERS in one batch pays
/// (see `Engine::on_deadlines`).
pub(super) const PREFETCH_FROM: usize = 256;

/// The election's view of the XDP program's PEERS map (the delivery contract of
/// `haxdp_vrrp::node`): one lookup per question. Socket-path instances have no kernel
/// records; every advert reaches their core.
pub(super) struct PeersView<'a> {
    pub(super) fast: Option<&'a KernelRx>,
    /// Per member: (ifindex, vrid) when it receives through XDP.
    keys: Vec<Option<(u32, u8)>>,
    /// Per member: its followed master's SEEN entry (`Inst::seen`).
    seen: Vec<Option<(IpAddr, u16)>>,
    /// Every source's last advert, read at once (`prefetch`) for a wake-up that
    /// re-checks many backups: sorted by key bytes, shared by the passes of one
    /// wake-up without a copy, searched without hashing.
    pub(super) snapshot: Option<Rc<Vec<(haxdp_common::PeerKey, u64)>>>,
}

impl<'a> PeersView<'a> {
    pub(super) fn new(fast: Option<&'a KernelRx>, insts: &[Inst]) -> Self {
        let keys = insts
            .iter()
            .map(|i| (i.rx != RxPath::Socket).then(|| (i.ifindex, i.core.config().vrid)))
            .collect();
        let seen = insts.iter().map(|i| i.seen).collect();
        PeersView {
            fast,
            keys,
            seen,
            snapshot: None,
        }
    }

    /// Reads every PEERS record with one batched call (`KernelRx::peers_batch`); the
    /// lookups of this wake-up then cost no syscall. On error the view looks up one by
    /// one, as without it.
    fn prefetch(&mut self) {
        let Some(f) = self.fast else { return };
        match f.peers_batch() {
            Ok(recs) => {
                let mut v: Vec<(haxdp_common::PeerKey, u64)> = recs
                    .into_iter()
                    .filter(|(_, st)| st.count > 0)
                    .map(|(k, st)| (k, st.last_ns))
                    .collect();
                v.sort_unstable_by(|a, b| bytemuck::bytes_of(&a.0).cmp(bytemuck::bytes_of(&b.0)));
                self.snapshot = Some(Rc::new(v));
            }
            Err(e) => debug!("PEERS batch read failed, reading one by one: {e}"),
        }
    }
}

impl KernelView for PeersView<'_> {
    fn last_advert_ns(&mut self, member: usize, src: IpAddr) -> Option<u64> {
        let (ifindex, vrid) = self.keys.get(member).copied().flatten()?;
        if let Some(snap) = &self.snapshot {
            let want = haxdp_common::PeerKey::new(ifindex, vrid, src);
            let want = bytemuck::bytes_of(&want);
            return snap
                .binary_search_by(|(k, _)| bytemuck::bytes_of(k).cmp(want))
                .ok()
                .map(|at| snap[at].1);
        }
        match self.fast?.peer_last_ns(ifindex, vrid, src) {
            Ok(v) => v,
            Err(e) => {
                warn!("ifindex {ifindex} vrid {vrid}: cannot read PEERS: {e}");
                None
            }
        }
    }

    /// The followed master's time from SEEN, a memory read, where the record has an
    /// entry the XDP program has written; otherwise the PEERS lookup.
    fn last_advert_hint_ns(&mut self, member: usize, src: IpAddr) -> Option<u64> {
        if let (Some(f), Some(Some((m, entry)))) = (self.fast, self.seen.get(member)) {
            if *m == src {
                if let Some(t) = f.seen_ns(*entry).filter(|t| *t > 0) {
                    return Some(t);
                }
            }
        }
        self.last_advert_ns(member, src)
    }
}

impl Engine {
    pub(super) fn next_deadline(&self) -> Option<u64> {
        let now = clock::monotonic_ns();
        // An XDP backup also wakes the engine `precheck_lead_ns` before its deadline,
        // once per deadline, for the receive-path check of `on_deadlines`.
        let pre = self
            .insts
            .iter()
            .filter(|i| i.rx != RxPath::Socket && i.core.state() == State::Backup)
            .filter_map(|i| {
                let at = i.core.next_deadline()?;
                (i.prechecked_for != Some(at))
                    .then(|| at.saturating_sub(election::precheck_lead_ns(&i.core)))
            });
        election::next_deadline(&self.insts, now)
            .into_iter()
            .chain(pre)
            .min()
    }

    /// Performs the actions the node-level election produced, member by member, in order.
    pub(super) async fn apply_out(&mut self, out: election::Out) {
        for (i, acts) in out {
            self.apply(i, acts).await;
        }
    }

    pub(super) async fn on_deadlines(&mut self, now: u64) {
        // Socket path: adverts may sit in the socket queue because this daemon did
        // not run (SIGSTOP, starvation); read them first, with their kernel arrival
        // times, before the election decides to take over.
        for i in 0..self.insts.len() {
            let inst = &self.insts[i];
            if inst.rx == RxPath::Socket
                && inst.core.state() == State::Backup
                && inst.core.next_deadline().is_some_and(|at| at <= now)
            {
                let sock = inst.sock.clone();
                let ifindex = inst.ifindex;
                for rx in sock.drain() {
                    self.on_socket_advert(ifindex, rx).await;
                }
            }
        }
        // Backups this pass re-checks in the kernel (all of them when one is due, else
        // those within half a Master_Down_Interval: `election::on_deadlines`). A batched
        // read of PEERS visits every bucket of the preallocated hash (PEERS_MAX_ENTRIES,
        // about 120 us here) where one lookup costs about 0.5 us: it pays only from
        // `PREFETCH_FROM` re-checks on.
        let all = election::backup_due(&self.insts, now);
        let rechecks = self
            .insts
            .iter()
            .filter(|i| {
                i.rx != RxPath::Socket
                    && i.core.state() == State::Backup
                    && i.core
                        .next_deadline()
                        .is_some_and(|at| all || at <= now + i.core.master_down_interval_ns() / 2)
            })
            .count();
        // No master-down decision from a receive path that is not live: before an XDP
        // backup's timer may fire, check that the program is still attached. Only where
        // a backup's master looks silent in the kernel too (a backup whose master the
        // kernel heard within its Master_Down_Interval is refreshed, not fired), and
        // once per interface: with 100 VRIDs on one link, every wake-up asked netlink.
        // The check runs `precheck_lead_ns` ahead of the deadline (`next_deadline` wakes
        // the engine then), so that at the deadline the first advert is not behind a
        // netlink round trip; an interface checked within two leads is not asked again.
        // One view for the snapshot and the silence test; the election's pass below
        // builds its own, since a check may move an instance to the socket path.
        let mut view = PeersView::new(self.fast.as_ref(), &self.insts);
        if rechecks >= PREFETCH_FROM {
            view.prefetch();
        }
        let snapshot = view.snapshot.clone();
        let mut suspect: Vec<String> = {
            let mut v = Vec::new();
            for (i, inst) in self.insts.iter_mut().enumerate() {
                let lead = election::precheck_lead_ns(&inst.core);
                let Some(at) = inst.core.next_deadline() else {
                    continue;
                };
                if inst.rx == RxPath::Socket
                    || inst.core.state() != State::Backup
                    || at > now + lead
                {
                    continue;
                }
                inst.prechecked_for = Some(at);
                if self
                    .rx_checked
                    .get(&inst.spec.ifname)
                    .is_some_and(|t| now < t + 2 * lead)
                {
                    continue;
                }
                let heard = inst
                    .core
                    .master_addr()
                    .and_then(|m| view.last_advert_ns(i, m))
                    .is_some_and(|t| t + inst.core.master_down_interval_ns() > now + lead);
                if !heard {
                    v.push(inst.spec.ifname.clone());
                }
            }
            v
        };
        suspect.sort_unstable();
        suspect.dedup();
        for ifname in suspect {
            if self.check_receive_path(&ifname).await {
                self.rx_checked.insert(ifname, clock::monotonic_ns());
            } else {
                self.rx_checked.remove(&ifname);
                for inst in self.insts.iter_mut().filter(|i| i.spec.ifname == ifname) {
                    inst.core.restart_master_down_timer(now);
                }
            }
        }
        let mut out = election::Out::new();
        let done = {
            let mut view = PeersView::new(self.fast.as_ref(), &self.insts);
            view.snapshot = snapshot;
            election::on_deadlines(&mut self.insts, now, &mut view, &mut out)
        };
        for (i, e) in done {
            if e == (Expiry::Held { newly: true }) {
                info!(
                    "{}: master down, but waiting for the other members of sync group {} to see their masters down too",
                    self.insts[i].spec.core.name,
                    self.insts[i].spec.sync_group.as_deref().unwrap_or("")
                );
            }
        }
        self.batch = Some(Vec::new());
        self.apply_out(out).await;
        self.flush_batch();
    }

    /// Sends the adverts `send_advert` collected in this wake-up, one sendmmsg(2) per
    /// socket.
    fn flush_batch(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        let mut by_sock: Vec<Batched<Vec<Frame>>> = Vec::new();
        for Batched(sock, (bytes, dst), i) in batch {
            match by_sock.iter_mut().find(|b| Arc::ptr_eq(&b.0, &sock)) {
                Some(b) => b.1.push((bytes, dst)),
                None => by_sock.push(Batched(sock, vec![(bytes, dst)], i)),
            }
        }
        for Batched(sock, msgs, i) in by_sock {
            if let Err(e) = sock.send_many(&msgs) {
                warn!(
                    "{} vrid {}: {e}",
                    self.insts[i].spec.ifname, self.insts[i].spec.core.vrid
                );
            }
        }
    }
}
