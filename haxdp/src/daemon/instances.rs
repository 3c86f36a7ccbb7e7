//! Instances: building and starting them, reload and reconfiguration in place, shutdown.

use std::collections::HashMap;
use std::net::IpAddr;

use haxdp_vrrp::{Action, Family, Input, Instance, InstanceConfig, State};
use tracing::{debug, error, info, warn};

use crate::clock;
use crate::control;
use crate::netlink::Vip;
use crate::spec::{self, DaemonSpec, InstanceSpec};

use super::effects::{garp_burst, Upkeep};
use super::receive::watch_in_kernel;
use super::resume::RESUME_FILE;
use super::{Engine, Ev, Inst, RxPath, PEERS_CHECKPOINT};

impl Engine {
    /// A fresh start (or one after a crash): the checkpointed peers, the ring, the
    /// control socket, every instance.
    pub(super) async fn start_fresh(
        &mut self,
        listener: Option<tokio::net::UnixListener>,
    ) -> anyhow::Result<()> {
        self.restore_peers_checkpoint();
        self.spawn_ring()?;
        if let Some(l) = listener {
            self.spawn_control(l);
        }
        self.start_all().await
    }

    /// The routers the previous daemon protected get their room in PEERS back before any
    /// advert is tracked: spoofed sources cannot take it while we start.
    pub(super) fn restore_peers_checkpoint(&mut self) {
        let Some(f) = self.fast.as_mut() else {
            return;
        };
        let path = self.opts.state_dir.join(PEERS_CHECKPOINT);
        match f.restore_checkpoint(&path) {
            Ok(0) => {}
            Ok(n) => info!("{n} known VRRP router(s) carried over from the previous daemon"),
            Err(e) => warn!("cannot read {}: {e}", path.display()),
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
        let now = clock::monotonic_ns();
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
    pub(super) async fn build_instance(&mut self, spec: InstanceSpec) -> anyhow::Result<Inst> {
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
            seen: None,
            refused_logged: 0,
            upkeep: Upkeep::default(),
            lines_seen: (0, 0),
            prechecked_for: None,
            spec,
        })
    }

    pub(super) async fn start_instance(&mut self, i: usize, now: u64) {
        // A crash may have left our VIPs behind: remove them before the
        // election, so that two nodes never hold them (RFC 9568 6.4.1 starts
        // in Backup unless we own the addresses).
        let acts = self.insts[i].core.handle(now, Input::Startup);
        self.apply(i, acts).await;
        if !self.insts[i].link_up && !self.insts[i].spec.dont_track_primary {
            let acts = self.insts[i].core.handle(now, Input::InterfaceDown);
            self.apply(i, acts).await;
        }
        self.recompute_priority(i, now).await;
    }

    /// keepalived's `dynamic_interfaces`: an instance whose interface does not exist yet
    /// waits for it (in `pending`, shown in `status`) instead of refusing the start. True
    /// if `s` was put there.
    pub(super) async fn waits_for_interface(&mut self, s: &InstanceSpec) -> bool {
        if !self.spec.dynamic_interfaces {
            return false;
        }
        if !matches!(
            self.nl.link_by_name(&s.ifname).await,
            Err(crate::netlink::VipError::NoSuchInterface(_))
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
    pub(super) async fn start_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let now = clock::monotonic_ns();
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

    pub(super) async fn shutdown_all(&mut self) {
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
        let now = clock::monotonic_ns();
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
        self.apply(i, acts).await;
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
    pub(super) async fn reload(&mut self) {
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
    pub(super) async fn finish_reload(
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
        let now = clock::monotonic_ns();
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
        self.apply(i, acts).await;
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
    pub(super) fn sd_reload_outcome(&self) {
        crate::sd::reload_outcome(self.reload_outcome_now(), self.insts.len());
    }

    pub(super) fn reload_outcome_now(&self) -> Option<crate::sd::Outcome> {
        self.last_reload
            .as_ref()
            .map(|r| (r.at_unix_ms, r.accepted, r.message.clone()))
    }
}

/// Whether a reload may apply `new` to the instance running `old` in place: the same
/// interface, VRID, family, version, advert source, multicast group and ownership.
pub(super) fn same_identity(old: &InstanceSpec, new: &InstanceSpec) -> bool {
    old.ifname == new.ifname
        && old.core.vrid == new.core.vrid
        && old.core.family == new.core.family
        && old.core.version == new.core.version
        && old.core.address_owner == new.core.address_owner
        && old.src_addr == new.src_addr
        && old.mcast_group == new.mcast_group
}
