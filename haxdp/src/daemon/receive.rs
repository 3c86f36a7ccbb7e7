//! Receiving: kernel and socket adverts, link and address events, the receive-path
//! checks (XDP still attached, fallback to the socket) and re-adoption of a re-created
//! interface.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use haxdp_vrrp::node as election;
use haxdp_vrrp::{Family, FaultCause, Input, Instance, State};
use tracing::{debug, error, info, warn};

use crate::advert_socket::{self, AdvertSocket};
use crate::clock;
use crate::netlink::{NetEvent, Vip};
use crate::xdp::rx::{KernelRx, XdpAttachMode};

use super::deadlines::PeersView;
use super::{Engine, Ev, Inst, RxPath};

impl Engine {
    /// XDP on the interface if possible (attached once per interface).
    pub(super) fn receive_path(&mut self, ifname: &str) -> RxPath {
        if let Some(p) = self.attached.get(ifname) {
            return *p;
        }
        if self.xdp_loading.is_some() {
            // Until the program is loaded (`on_xdp_loaded` moves the interface to it).
            if !self.insts.iter().any(|i| i.spec.ifname == ifname) {
                info!(
                    "{ifname}: receiving adverts on a raw socket until the XDP program is loaded"
                );
            }
            return RxPath::Socket;
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
                    Ok(XdpAttachMode::Native) => RxPath::XdpNative,
                    Ok(XdpAttachMode::Skb) => RxPath::XdpSkb,
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
    pub(super) fn socket(
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

    pub(super) fn find(&self, ifindex: u32, family: Family, vrid: u8) -> Option<usize> {
        self.insts.iter().position(|i| {
            i.ifindex == ifindex && i.core.config().family == family && i.core.config().vrid == vrid
        })
    }

    pub(super) async fn on_kernel_advert(&mut self, ev: haxdp_common::AdvertEvent) {
        let Some(k) = self.fast.as_ref().map(|f| f.to_advert(&ev)) else {
            return;
        };
        let Some(i) = self.find(k.ifindex, k.family, k.advert.vrid) else {
            return;
        };
        let now = clock::monotonic_ns();
        self.feed_advert(i, now, k.src, k.advert, k.rx_ns, k.prev_rx_ns)
            .await;
    }

    pub(super) async fn on_socket_advert(&mut self, ifindex: u32, rx: advert_socket::Received) {
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
        if !self.first_heard {
            // How long a start (a restart, a hand-over) leaves the node deaf: the
            // configuration, netlink and the sockets (a fresh start does not wait for the
            // XDP program: `on_xdp_loaded`), then at most one of the peer's intervals.
            self.first_heard = true;
            if let Some(ns) = clock::since_process_start_ns() {
                info!(
                    "first VRRP advert heard {:.1} ms after the process started ({} vrid {} from {src})",
                    ns as f64 / 1e6,
                    self.insts[i].spec.ifname,
                    self.insts[i].spec.core.vrid
                );
            }
        }
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
        self.apply_out(out).await;
    }

    pub(super) async fn on_net(&mut self, ev: NetEvent) {
        let now = clock::monotonic_ns();
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
                    self.apply(i, acts).await;
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
                        self.apply(i, acts).await;
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
                                    self.apply(i, acts).await;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Logs once per growth that the XDP program refused new sources for instance `i`
    /// because its PEERS room is full; `took_over`: it just became Master without
    /// seeing every source.
    pub(super) fn log_refused_peers(&mut self, i: usize, took_over: bool) {
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
    pub(super) fn protect_followed_master(&mut self, i: usize) {
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
        let mut seen = None;
        if let Some(m) = want {
            match f.protect_peer(inst.ifindex, cfg, m) {
                Ok(entry) => seen = entry.map(|e| (m, e)),
                Err(e) => warn!(
                    "{} vrid {}: cannot reserve PEERS room for master {m}: {e}",
                    inst.spec.ifname, cfg.vrid
                ),
            }
        }
        self.insts[i].protected = want;
        self.insts[i].seen = seen;
    }

    /// The interfaces the instances run on, each once.
    fn instance_ifnames(&self) -> Vec<String> {
        let mut names: Vec<String> = self.insts.iter().map(|i| i.spec.ifname.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The link monitor's events can be lost (a netlink socket overrun, ENOBUFS, drops
    /// multicast messages without telling which): every housekeeping round reads the
    /// state of each instance's interface from the kernel and handles it as an event, so
    /// a missed down, up, deletion or re-creation is acted on within one round.
    pub(super) async fn reconcile_links(&mut self) {
        for name in self.instance_ifnames() {
            match self.nl.link_by_name(&name).await {
                Ok(l) => self.on_net(NetEvent::Link(l)).await,
                Err(crate::netlink::VipError::NoSuchInterface(_)) => {
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
                    reason: FaultCause::SourceAddressRemoved(addr),
                },
            );
            self.apply(i, acts).await;
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
            let reason = FaultCause::SourceAddressRemoved(old);
            if !inst.core.fault_reasons().any(|r| *r == reason) {
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
                self.apply(i, acts).await;
            }
        }
    }

    /// Whether the receive path of `ifname` is live: for XDP, the interface still runs
    /// this daemon's program. If not (detached by hand, `ip link set dev X xdp off`,
    /// the interface replaced), it is attached again, or the instances fall back to a
    /// raw socket; either way their peers are reported again. False if it was not live.
    pub(super) async fn check_receive_path(&mut self, ifname: &str) -> bool {
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

    /// The XDP program a fresh start loaded in the background: its PEERS gets the
    /// checkpointed routers, its ring is read, and every interface the instances run on
    /// moves from its raw socket to it (`move_to_xdp`). If it failed, they stay on the
    /// sockets, as a start without XDP.
    pub(super) async fn on_xdp_loaded(
        &mut self,
        loaded: Result<KernelRx, crate::xdp::rx::XdpLoaderError>,
    ) {
        let since = self.xdp_loading.take().unwrap_or(0);
        let ms = clock::monotonic_ns().saturating_sub(since) as f64 / 1e6;
        let names = self.instance_ifnames();
        match loaded {
            Ok(f) => {
                info!("XDP program loaded and verified in {ms:.1} ms");
                self.fast = Some(f);
                self.restore_peers_checkpoint();
                if let Err(e) = self.spawn_ring() {
                    // No reports would reach the election: stay on the sockets.
                    error!("cannot read the XDP program's event ring ({e:#}); receiving adverts on raw sockets");
                    self.fast = None;
                }
            }
            Err(e) => warn!("XDP fast path unavailable, receiving adverts on raw sockets: {e}"),
        }
        for ifname in names {
            self.move_to_xdp(&ifname).await;
        }
    }

    /// Moves the instances on `ifname` from the raw socket they started on to the XDP
    /// program, losing no advert: the program watches their VRIDs before it is attached
    /// (a VRID it does not watch it drops), the sockets stop queueing only once it is
    /// attached, and what they queued until then is read. The program reports each live
    /// source's next advert as new (the delivery contract), and the followed master is
    /// protected in PEERS. An interface the program cannot be attached to stays on its
    /// sockets (`receive_path` says so).
    async fn move_to_xdp(&mut self, ifname: &str) {
        let on_if: Vec<usize> = (0..self.insts.len())
            .filter(|&i| self.insts[i].spec.ifname == ifname && self.insts[i].rx == RxPath::Socket)
            .collect();
        if self.fast.is_none() || on_if.is_empty() {
            // No program (or none needed): the receive path is the socket, logged once.
            if !self.attached.contains_key(ifname) {
                info!("{ifname}: receive path {}", RxPath::Socket.name());
                self.attached.insert(ifname.to_string(), RxPath::Socket);
            }
            return;
        }
        if let Some(f) = self.fast.as_mut() {
            for &i in &on_if {
                watch(f, &self.insts[i]);
            }
        }
        let path = self.receive_path(ifname);
        if path == RxPath::Socket {
            for &i in &on_if {
                if let Some(f) = self.fast.as_mut() {
                    let _ = f.unwatch(self.insts[i].ifindex, self.insts[i].core.config());
                }
                self.insts[i].rx = RxPath::Socket;
            }
            return;
        }
        let mut socks: Vec<(u32, Arc<AdvertSocket>)> = Vec::new();
        for &i in &on_if {
            self.insts[i].rx = path;
            let (ifindex, sock) = (self.insts[i].ifindex, self.insts[i].sock.clone());
            if !socks.iter().any(|(_, s)| Arc::ptr_eq(s, &sock)) {
                socks.push((ifindex, sock));
            }
        }
        for (ifindex, sock) in socks {
            if let Err(e) = sock.stop_receiving() {
                // Still receiving: the same adverts also come through the socket,
                // which the election takes as repeats.
                warn!("{e}");
            }
            if let Some(t) = self.socket_tasks.remove(&(ifindex, sock.source())) {
                t.abort();
            }
            for rx in sock.drain() {
                self.on_socket_advert(ifindex, rx).await;
            }
        }
        for &i in &on_if {
            self.protect_followed_master(i);
        }
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
    async fn readopt(&mut self, i: usize, l: &crate::netlink::LinkInfo) {
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
        // The old interface's PEERS records went with `unwatch`: the master is
        // protected again, with a new SEEN entry, once the instance follows one.
        inst.protected = None;
        inst.seen = None;
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
            let now = clock::monotonic_ns();
            let acts = self.insts[i].core.handle(now, Input::InterfaceDown);
            self.apply(i, acts).await;
            let acts = self.insts[i].core.handle(now, Input::Startup);
            self.apply(i, acts).await;
        }
        watch_in_kernel(self.fast.as_mut(), &self.insts[i]);
        // The caller's link handling (by the new ifindex) now brings it out of Fault.
    }
}

/// Tells the XDP program (again) what instance `inst` accepts: its versions and
/// authentication, its configured unicast peers protected, its source allowlist (a
/// socket-path instance has nothing to tell).
pub(super) fn watch_in_kernel(fast: Option<&mut KernelRx>, inst: &Inst) {
    if let (Some(f), false) = (fast, inst.rx == RxPath::Socket) {
        watch(f, inst);
    }
}

/// Tells the XDP program what instance `inst` accepts, whatever its receive path now
/// (`move_to_xdp` watches before the attach).
fn watch(f: &mut KernelRx, inst: &Inst) {
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
