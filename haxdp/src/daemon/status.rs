//! What the engine shows: the `status` snapshot, keepalived's dumps, the metrics
//! snapshot and keepalived's log lines.

use haxdp_vrrp::{DiscardReason, Family, State, Version};
use tracing::{error, info};

use crate::clock;
use crate::control::{self, InstanceStatus, Status, TransitionStatus};
use crate::track::{CheckState, TrackKey};

use super::{Engine, Inst, RxPath};

impl Engine {
    /// USR1: write every instance's state to `<state_dir>/haxdp.data` (haxdp's status
    /// text) and keepalived's `keepalived.data` to the dump directory.
    pub(super) fn dump_state(&self) {
        let path = self.opts.state_dir.join("haxdp.data");
        let st = self.snapshot();
        let body = control::render(&st);
        if let Err(e) = std::fs::create_dir_all(&self.opts.state_dir)
            .and_then(|_| crate::ops::write_file_nofollow(&path, body.as_bytes()))
        {
            error!("cannot write {}: {e}", path.display());
        } else {
            info!("state written to {}", path.display());
        }
        self.dump_keepalived_file(crate::ops::Dump::Data, &body);
    }

    pub(super) fn snapshot(&self) -> Status {
        let now = clock::monotonic_ns();
        Status {
            pid: std::process::id(),
            version: crate::handover::version().to_string(),
            config_file: self.opts.config.display().to_string(),
            started_unix_ms: self.started_unix_ms,
            socket_drops: self.socket_drops.values().sum(),
            event_queue: self.tx.status(),
            notify_fifo_dropped: self.notifier.fifo_dropped(),
            last_reload: self.last_reload.clone(),
            start_mode: self.start_mode.clone(),
            waiting_for_interface: self
                .pending
                .iter()
                .map(|p| format!("{} ({})", p.core.name, p.ifname))
                .collect(),
            drops: control::DropCounts::new(
                &self
                    .fast
                    .as_ref()
                    .and_then(|f| f.drop_counters().ok())
                    .unwrap_or_default(),
                &self.socket_drops,
            ),
            instances: self
                .insts
                .iter()
                .map(|i| {
                    let c = i.core.config();
                    let transitions = i
                        .core
                        .transitions()
                        .iter()
                        .map(|t| TransitionStatus {
                            at_unix_ms: i
                                .transitions_wall
                                .iter()
                                .find(|w| w.0 == t.at_ns)
                                .map(|w| w.1)
                                .unwrap_or(0),
                            from: t.old.to_string(),
                            to: t.new.to_string(),
                            reason: t.event.to_string(),
                        })
                        .collect();
                    InstanceStatus {
                        name: c.name.clone(),
                        interface: i.spec.ifname.clone(),
                        vrid: c.vrid,
                        version: match c.version {
                            Version::V2 => 2,
                            Version::V3 => 3,
                        },
                        family: match c.family {
                            Family::V4 => "ipv4".into(),
                            Family::V6 => "ipv6".into(),
                        },
                        state: i.core.state().to_string(),
                        base_priority: c.priority,
                        effective_priority: i.core.effective_priority(),
                        priority_reasons: i.priority_reasons.clone(),
                        fault_reasons: i.fault_reasons.iter().map(ToString::to_string).collect(),
                        master_addr: i.core.master_addr().map(|a| a.to_string()),
                        // The master's last advert, as a backup sees it; a
                        // master sends its own, so it has none to show.
                        last_advert_age_ms: (i.core.state() == State::Backup)
                            .then(|| {
                                self.kernel_last_advert_any(i)
                                    .or_else(|| i.core.peer_rx_ns(i.core.master_addr()?))
                            })
                            .flatten()
                            .map(|t| now.saturating_sub(t) / 1_000_000),
                        receive_path: i.rx.name().into(),
                        advert_interval_ms: u64::from(i.core.master_adver_int_cs()) * 10,
                        master_down_interval_ms: i.core.master_down_interval_ns() / 1_000_000,
                        vips: i
                            .vips
                            .iter()
                            .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                            .collect(),
                        transitions,
                        discarded: i.discards.clone(),
                        refused_peers: self.refused_peers(i),
                        notify_queue: self
                            .notifier
                            .queue_stats(&c.name)
                            .map(|q| control::NotifyQueueStatus {
                                depth: q.depth,
                                max_depth: q.max_depth,
                                dropped: q.dropped,
                            })
                            .unwrap_or_default(),
                        vips_missing: i.upkeep.missing_status(),
                        lower_prio_adverts: i.upkeep.lower_prio_adverts,
                        lower_prio_garp_bursts: i
                            .upkeep
                            .lower_prio_bursts
                            .load(std::sync::atomic::Ordering::Relaxed),
                    }
                })
                .collect(),
        }
    }

    pub(super) fn refused_peers(&self, inst: &Inst) -> u64 {
        if inst.rx == RxPath::Socket {
            return 0;
        }
        self.fast
            .as_ref()
            .and_then(|f| f.refused_peers(inst.ifindex, inst.core.config()).ok())
            .unwrap_or(0)
    }

    fn kernel_last_advert_any(&self, inst: &Inst) -> Option<u64> {
        if inst.rx == RxPath::Socket || inst.core.state() == State::Master {
            return None;
        }
        let master = inst.core.master_addr()?;
        let c = inst.core.config();
        self.fast
            .as_ref()?
            .peer_last_ns(inst.ifindex, c.vrid, master)
            .ok()
            .flatten()
    }

    /// Every instance as keepalived's dump files show it.
    fn instance_dumps(&self) -> Vec<crate::ops::InstanceDump> {
        self.insts
            .iter()
            .map(|i| {
                let c = i.core.config();
                let mut stats = i.core.stats();
                // On the XDP path an unchanged advert never reaches the core: the kernel
                // counts every accepted advert per source (PEERS).
                if i.rx != RxPath::Socket {
                    if let Some(f) = self.fast.as_ref() {
                        if let Ok(peers) = f.peers_of(i.ifindex, c) {
                            let total: u64 = peers
                                .iter()
                                .filter(|(a, _)| *a != c.primary_addr)
                                .map(|(_, st)| st.count)
                                .sum();
                            stats.advert_rcvd = crate::ops::kernel_received(&c.name, total);
                        }
                    }
                }
                let discarded = |r: DiscardReason| i.discards.get(r.name()).copied().unwrap_or(0);
                let master_priority = match i.core.state() {
                    State::Master => i.core.effective_priority(),
                    _ => i
                        .core
                        .master_addr()
                        .and_then(|m| {
                            i.core
                                .known_peers()
                                .into_iter()
                                .find(|p| p.addr == m)
                                .map(|p| p.priority)
                        })
                        .unwrap_or(0),
                };
                crate::ops::InstanceDump {
                    name: c.name.clone(),
                    ifname: i.spec.ifname.clone(),
                    vrid: c.vrid,
                    version: match c.version {
                        Version::V2 => 2,
                        Version::V3 => 3,
                    },
                    state: match i.core.state() {
                        State::Initialize => "INIT".into(),
                        s => s.to_string(),
                    },
                    base_priority: c.priority,
                    effective_priority: i.core.effective_priority(),
                    master_priority,
                    advert_int_cs: c.advert_int_cs,
                    master_adver_int_cs: i.core.master_adver_int_cs(),
                    accept: c.accept,
                    nopreempt: !c.preempt,
                    preempt_delay_s: c.preempt_delay_cs / 100,
                    last_transition_unix_s: i
                        .transitions_wall
                        .last()
                        .map(|w| w.1 as f64 / 1000.0)
                        .unwrap_or(0.0),
                    master_addr: i.core.master_addr().map(|a| a.to_string()),
                    vips: i
                        .vips
                        .iter()
                        .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                        .collect(),
                    stats,
                    auth_failure: discarded(DiscardReason::AuthMismatch),
                    advert_interval_err: discarded(DiscardReason::IntervalMismatch),
                    addr_list_err: discarded(DiscardReason::AddressMismatch),
                }
            })
            .collect()
    }

    /// keepalived's USR2 / STATS_CLEAR / JSON dumps, in the dump directory.
    pub(super) fn dump_keepalived(&mut self, kind: crate::ops::Dump) {
        self.dump_keepalived_file(kind, "");
        if kind == crate::ops::Dump::StatsClear {
            let dumps = self.instance_dumps();
            for (i, d) in self.insts.iter_mut().zip(dumps) {
                i.core.clear_stats();
                crate::ops::clear_kernel_received(&d.name);
            }
        }
    }

    fn dump_keepalived_file(&self, kind: crate::ops::Dump, haxdp_status: &str) {
        match crate::ops::write_dump(kind, &self.instance_dumps(), haxdp_status) {
            Ok(path) => info!("{:?} dump written to {}", kind, path.display()),
            Err(e) => error!(
                "cannot write {}: {e}",
                crate::ops::options()
                    .dump_dir
                    .join(kind.file_name())
                    .display()
            ),
        }
    }

    /// keepalived 2.2.7's own log lines for what just happened, beside haxdp's (which name
    /// the cause): `(VI_1) Entering MASTER STATE`, `(VI_1) Entering BACKUP STATE`,
    /// `(VI_1) Entering BACKUP STATE (init)`, `(VI_1) Entering FAULT STATE`,
    /// `(VI_1) sent 0 priority`, so that log alerts written for keepalived still match.
    /// Returns whether anything changed since the last call.
    pub(super) fn log_keepalived_lines(&mut self) -> bool {
        let mut changed = false;
        for i in &mut self.insts {
            let name = &i.spec.core.name;
            let last = i.core.transitions().last();
            let at = last.map(|t| t.at_ns).unwrap_or(0);
            let pri0 = i.core.stats().pri_zero_sent;
            // Nothing new since this loop last looked: no lock, no map (this runs at
            // every turn of the engine's loop).
            if i.lines_seen == (at, pri0) {
                continue;
            }
            i.lines_seen = (at, pri0);
            let (seen_at, seen_pri0) = crate::ops::keepalived_lines_seen(name, at, pri0);
            if pri0 > seen_pri0 {
                info!("({name}) sent 0 priority");
            }
            let Some(t) = last.filter(|_| at != seen_at) else {
                continue;
            };
            changed = true;
            let init = matches!(t.event, haxdp_vrrp::Event::Startup);
            match t.new {
                State::Master => info!("({name}) Entering MASTER STATE"),
                State::Backup if init => info!("({name}) Entering BACKUP STATE (init)"),
                State::Backup => info!("({name}) Entering BACKUP STATE"),
                State::Fault if init => info!("({name}) Entering FAULT STATE (init)"),
                State::Fault => info!("({name}) Entering FAULT STATE"),
                State::Initialize => {}
            }
        }
        changed
    }

    /// `--metrics-listen`: hand the metrics thread a snapshot (the engine never waits for
    /// a scrape).
    pub(super) fn publish_metrics(&self) {
        let mut scripts: Vec<(String, Option<bool>)> = Vec::new();
        for i in &self.insts {
            for (key, st) in &i.tracked {
                let TrackKey::Check(name) = key else {
                    continue;
                };
                if scripts.iter().any(|(n, _)| n == name) {
                    continue;
                }
                let good = match st {
                    CheckState::Up => Some(true),
                    CheckState::Down => Some(false),
                    CheckState::Value(_) | CheckState::Unknown => None,
                };
                scripts.push((name.clone(), good));
            }
        }
        let peers = self
            .insts
            .iter()
            .filter(|i| i.rx != RxPath::Socket)
            .filter_map(|i| {
                let n = self
                    .fast
                    .as_ref()?
                    .peers_of(i.ifindex, i.core.config())
                    .ok()?;
                Some((i.spec.core.name.clone(), n.len() as u64))
            })
            .collect();
        crate::metrics::publish(crate::metrics::Snapshot {
            instances: self.instance_dumps(),
            status: self.snapshot(),
            scripts,
            peers,
        });
    }
}
