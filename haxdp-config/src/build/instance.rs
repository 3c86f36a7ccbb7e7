//! `vrrp_instance`: its keywords, virtual addresses and authentication, and the checks
//! against the rest of the file.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::script::check_script_path;
use super::track::Tracking;
use super::value::{fmt_secs_us, parse_int, parse_seconds_us};
use super::{Builder, Known};
use crate::model::*;
use crate::syntax::Node;

/// keepalived `vrrp_instance` keywords that haxdp does not implement. They are ignored
/// with a warning; any other unknown keyword inside `vrrp_instance` is an error, because a
/// misspelt `priorty` or `nopreemt` would otherwise change the election silently.
const INSTANCE_UNSUPPORTED: &[&str] = &[
    "use_vmac",
    "vmac_xmit_base",
    "use_ipvlan",
    "unicast_fault_no_peer",
    "native_ipv6",
    "track_process",
    "track_bfd",
    "track_src_ip",
    "unicast_ttl",
    "old_unicast_checksum",
    "promote_secondaries",
    "linkbeat_use_polling",
    "virtual_routes",
    "virtual_rules",
    "debug",
    "notify_deleted",
    "notify_master_rx_lower_pri",
    "notify_priority_changes",
    "lvs_sync_daemon_interface",
    "down_timer_adverts",
    "lower_prio_no_advert",
    "kernel_rx_buf_size",
];
fn vip_scope_ok(s: &str) -> bool {
    matches!(s, "global" | "host" | "link" | "site" | "nowhere") || s.parse::<u8>().is_ok()
}

/// A VIP line before its device is resolved.
struct RawVip {
    vip: VirtualIp,
    dev_given: bool,
}

impl Builder<'_> {
    /// One line of `virtual_ipaddress`: `ADDR[/LEN] [dev IF] [label L] [scope S] [brd B]
    /// [no_track] [-nodad]`, the `ip addr add` syntax keepalived borrows.
    fn vip(&mut self, n: &Node) -> Option<RawVip> {
        self.no_block(n);
        let (addr_s, len_s) = match n.kw.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (n.kw.as_str(), None),
        };
        let address = self.addr(n, addr_s)?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len_s {
            None => max,
            Some(l) => match parse_int(l, 0, i64::from(max)) {
                Ok(v) => u8::try_from(v).unwrap_or(max),
                Err(e) => {
                    self.err(n, format!("prefix length of {}: {e}", n.kw));
                    return None;
                }
            },
        };
        let mut vip = VirtualIp {
            address,
            prefix_len,
            dev: String::new(),
            label: None,
            scope: None,
            brd: None,
            no_track: false,
            nodad: false,
            location: n.loc.clone(),
        };
        let mut dev_given = false;
        let mut ok = true;
        let mut it = n.args.iter();
        while let Some(opt) = it.next() {
            let needs_value = matches!(
                opt.as_str(),
                "dev"
                    | "label"
                    | "scope"
                    | "brd"
                    | "broadcast"
                    | "preferred_lft"
                    | "track_group"
                    | "peer"
            );
            let value = if needs_value {
                match it.next() {
                    Some(v) => v.as_str(),
                    None => {
                        self.err(n, format!("'{opt}' needs a value in virtual_ipaddress"));
                        ok = false;
                        break;
                    }
                }
            } else {
                ""
            };
            match opt.as_str() {
                "dev" => {
                    vip.dev = value.to_string();
                    dev_given = true;
                }
                "label" => {
                    // IFNAMSIZ - 1: the kernel's IFA_LABEL limit.
                    if value.len() > 15 {
                        self.err(
                            n,
                            format!(
                                "label '{value}' is longer than 15 characters (the kernel's limit)"
                            ),
                        );
                        ok = false;
                    }
                    vip.label = Some(value.to_string());
                }
                "scope" => {
                    if !vip_scope_ok(value) {
                        self.err(
                            n,
                            format!("scope '{value}' is not one of global, host, link, site, nowhere or 0-255"),
                        );
                        ok = false;
                    }
                    vip.scope = Some(value.to_string());
                }
                "brd" | "broadcast" => {
                    let IpAddr::V4(a4) = address else {
                        self.err(n, "brd applies only to IPv4 addresses");
                        ok = false;
                        continue;
                    };
                    if value == "+" {
                        let mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
                        vip.brd = Some(Ipv4Addr::from(u32::from(a4) | mask));
                    } else if value == "-" {
                        vip.brd = None;
                    } else {
                        match value.parse::<Ipv4Addr>() {
                            Ok(b) => vip.brd = Some(b),
                            Err(_) => {
                                self.err(n, format!("brd '{value}' is not an IPv4 address"));
                                ok = false;
                            }
                        }
                    }
                }
                "no_track" => vip.no_track = true,
                "-nodad" | "nodad" => {
                    if address.is_ipv4() {
                        self.warn(n, "-nodad only applies to IPv6 addresses; ignored");
                    }
                    vip.nodad = true;
                }
                "home" | "noprefixroute" | "autojoin" | "preferred_lft" | "track_group"
                | "peer" => {
                    self.warn(
                        n,
                        format!(
                            "virtual_ipaddress option '{opt}' is not supported by haxdp; ignored"
                        ),
                    );
                }
                other => {
                    self.err(
                        n,
                        format!(
                            "unknown virtual_ipaddress option '{other}' (one address per line: ADDR[/LEN] [dev IF] [label L] [scope S] [brd B] [no_track] [-nodad])"
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(RawVip { vip, dev_given })
    }
}

impl Builder<'_> {
    fn auth(&mut self, n: &Node) -> Option<AuthPass> {
        let mut kind: Option<&str> = None;
        let mut pass: Option<&str> = None;
        let mut pass_node = None;
        for c in self.children(n) {
            match c.kw.as_str() {
                "auth_type" => kind = self.value(c),
                "auth_pass" => {
                    pass = self.value(c);
                    pass_node = Some(c);
                }
                k => self.err(
                    c,
                    format!("unknown authentication keyword '{k}' (expected auth_type, auth_pass)"),
                ),
            }
        }
        match kind {
            Some("PASS") => {}
            Some("AH") => {
                self.err(
                    n,
                    "auth_type AH is not supported: IPsec AH authentication (RFC 2338 5.3.6.3) was removed from VRRP (RFC 3768 5.3.6) and only keepalived speaks its variant; use auth_type PASS or remove the authentication block",
                );
                return None;
            }
            Some(other) => {
                self.err(n, format!("auth_type '{other}' is not PASS or AH"));
                return None;
            }
            None => {
                self.err(n, "authentication block without 'auth_type PASS'");
                return None;
            }
        }
        let Some(pass) = pass else {
            self.err(n, "auth_type PASS without 'auth_pass'");
            return None;
        };
        let raw = pass.as_bytes();
        if raw.len() > 8 {
            if let Some(c) = pass_node {
                // RFC 2338 5.3.10: the authentication data field is 8 octets; keepalived
                // sends the first 8 bytes, so peers still match after truncation.
                self.warn(
                    c,
                    format!(
                        "auth_pass is {} bytes long; only the first 8 are sent (as keepalived does)",
                        raw.len()
                    ),
                );
            }
        }
        let mut bytes = [0u8; 8];
        for (dst, src) in bytes.iter_mut().zip(raw) {
            *dst = *src;
        }
        Some(AuthPass { bytes })
    }

    pub(super) fn instance(&mut self, n: &Node, k: &Known<'_>) -> Option<VrrpInstance> {
        let name = self.block_name(n)?;
        let mut draft = InstanceDraft::new(name, n, &k.global.g);
        for c in self.children(n) {
            draft.read(self, c, k);
        }
        draft.finish(self, k)
    }
}

/// A `vrrp_instance` while its keywords are read: each field starts at keepalived's
/// default or the `global_defs` value, `read` fills it one keyword at a time, and `finish`
/// makes the checks that need the whole block and builds the `VrrpInstance`. The `*_node`
/// fields keep the line a later diagnostic is about.
struct InstanceDraft<'n> {
    name: String,
    node: &'n Node,
    /// False once an error is reported: the instance is then refused.
    ok: bool,
    state: Option<StateHint>,
    state_node: Option<&'n Node>,
    interface: Option<String>,
    vrid: Option<u8>,
    priority: u8,
    advert: Option<(u64, &'n Node)>,
    version: Option<(u8, &'n Node)>,
    nopreempt: Option<bool>,
    preempt_delay_ms: u32,
    auth: Option<AuthPass>,
    auth_node: Option<&'n Node>,
    unicast_src_ip: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
    unicast_node: Option<&'n Node>,
    check_unicast_src: bool,
    check_node: Option<&'n Node>,
    allowed_peers: Option<Vec<IpAddr>>,
    mcast_src_ip: Option<IpAddr>,
    vips: Vec<RawVip>,
    vip_node: Option<&'n Node>,
    excluded: Vec<RawVip>,
    tracking: Tracking,
    notify: NotifyScripts,
    notify_fifo: Option<PathBuf>,
    accept: Option<bool>,
    garp: GarpSettings,
    dont_track_primary: bool,
    strict: bool,
    skip_check_adv_addr: bool,
    higher_prio_send_advert: bool,
}

impl<'n> InstanceDraft<'n> {
    fn new(name: String, node: &'n Node, g: &GlobalDefs) -> Self {
        InstanceDraft {
            name,
            node,
            ok: true,
            state: None,
            state_node: None,
            interface: None,
            vrid: None,
            priority: 100,
            advert: None,
            version: None,
            nopreempt: None,
            preempt_delay_ms: 0,
            auth: None,
            auth_node: None,
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            unicast_node: None,
            check_unicast_src: g.vrrp_check_unicast_src,
            check_node: None,
            allowed_peers: None,
            mcast_src_ip: None,
            vips: Vec::new(),
            vip_node: None,
            excluded: Vec::new(),
            tracking: Tracking::default(),
            notify: NotifyScripts::default(),
            notify_fifo: g.notify_fifo.clone(),
            accept: None,
            garp: g.garp,
            dont_track_primary: false,
            strict: g.vrrp_strict,
            skip_check_adv_addr: g.vrrp_skip_check_adv_addr,
            higher_prio_send_advert: g.vrrp_higher_prio_send_advert,
        }
    }

    /// `v`, noting that the instance is refused when it is `None` (the reader that
    /// returned it has reported why).
    fn need<T>(&mut self, v: Option<T>) -> Option<T> {
        self.ok &= v.is_some();
        v
    }

    /// One statement of the block.
    fn read(&mut self, b: &mut Builder<'_>, c: &'n Node, k: &Known<'_>) {
        let kw = c.kw.as_str();
        if b.notify(c, &mut self.notify) {
            if !c.args.is_empty() {
                let cmd = c.args.join(" ");
                let security = k.global.g.enable_script_security;
                check_script_path(b, &cmd, &c.loc, kw, security);
            }
            return;
        }
        if let Some(refs_ok) = b.tracking(c, k, &mut self.tracking) {
            self.ok &= refs_ok;
            return;
        }
        match kw {
            // The election.
            "state" => self.state(b, c),
            "interface" => self.interface(b, c),
            // RFC 9568 5.2.3: VRID is 1-255.
            "virtual_router_id" => {
                if let Some(v) = self.need(b.int(c, 1, 255)) {
                    self.vrid = u8::try_from(v).ok();
                }
            }
            // RFC 9568 5.2.4: 0 is reserved for "stopping", 255 for the owner.
            "priority" => {
                if let Some(v) = self.need(b.int(c, 1, 255)) {
                    self.priority = u8::try_from(v).unwrap_or(100);
                }
            }
            "advert_int" => match self.need(b.value(c)).map(parse_seconds_us) {
                Some(Ok(us)) => self.advert = Some((us, c)),
                Some(Err(e)) => {
                    b.err(c, format!("advert_int: {e}"));
                    self.ok = false;
                }
                None => {}
            },
            "version" => {
                if let Some(v) = self.need(b.int(c, 2, 3)) {
                    self.version = Some((u8::try_from(v).unwrap_or(2), c));
                }
            }
            "nopreempt" => self.nopreempt = Some(b.flag(c)),
            "preempt" => {
                b.flag(c);
                self.nopreempt = Some(false);
            }
            "preempt_delay" => {
                if let Some(us) = self.need(b.seconds_us(c, 0, 1_000_000_000)) {
                    self.preempt_delay_ms = u32::try_from(us / 1000).unwrap_or(u32::MAX);
                }
            }
            "authentication" => {
                self.auth_node = Some(c);
                if let Some(a) = self.need(b.auth(c)) {
                    self.auth = Some(a);
                }
            }
            // Who speaks and who is heard.
            "unicast_src_ip" => {
                if let Some(a) = self.need(b.value(c).and_then(|v| b.addr(c, v))) {
                    self.unicast_src_ip = Some(a);
                }
            }
            "unicast_peer" => self.unicast_peer(b, c),
            "check_unicast_src" => {
                self.check_unicast_src = b.flag(c);
                self.check_node = Some(c);
            }
            "haxdp_allowed_peers" => self.allowed_peers(b, c),
            "mcast_src_ip" => {
                if let Some(a) = self.need(b.value(c).and_then(|v| b.addr(c, v))) {
                    self.mcast_src_ip = Some(a);
                }
            }
            // The addresses.
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => self.addresses(b, c),
            "accept" => self.accept = Some(b.flag(c)),
            "no_accept" => {
                b.flag(c);
                self.accept = Some(false);
            }
            // Gratuitous ARP / unsolicited NA.
            "garp_master_delay" => {
                let garp = &mut self.garp;
                garp.master_delay_s = b.u32_in(c, 0, 3600).unwrap_or(garp.master_delay_s);
            }
            "garp_master_repeat" => {
                let garp = &mut self.garp;
                garp.master_repeat = b.u32_in(c, 1, 10_000).unwrap_or(garp.master_repeat);
            }
            "garp_master_refresh" => {
                let garp = &mut self.garp;
                garp.master_refresh_s = b.u32_in(c, 0, 86_400).unwrap_or(garp.master_refresh_s);
            }
            "garp_master_refresh_repeat" => {
                let garp = &mut self.garp;
                garp.master_refresh_repeat =
                    b.u32_in(c, 1, 10_000).unwrap_or(garp.master_refresh_repeat);
            }
            "garp_lower_prio_delay" => self.garp.lower_prio_delay_s = b.u32_in(c, 0, 3600),
            "garp_lower_prio_repeat" => self.garp.lower_prio_repeat = b.u32_in(c, 1, 10_000),
            // Flags.
            "dont_track_primary" => self.dont_track_primary = b.flag(c),
            "strict_mode" => match c.args.first().map(String::as_str) {
                None | Some("on" | "true" | "yes") => self.strict = true,
                Some("off" | "false" | "no") => self.strict = false,
                Some(v) => {
                    b.err(c, format!("strict_mode '{v}' must be on or off"));
                    self.ok = false;
                }
            },
            "skip_check_adv_addr" => self.skip_check_adv_addr = b.flag(c),
            "higher_prio_send_advert" => self.higher_prio_send_advert = b.flag(c),
            "smtp_alert" => b.info(c, "haxdp does not send mail; smtp_alert ignored"),
            k if INSTANCE_UNSUPPORTED.contains(&k) => b.warn(
                c,
                format!("vrrp_instance keyword '{k}' is not supported by haxdp; ignored"),
            ),
            k => {
                b.err(
                    c,
                    format!(
                        "unknown vrrp_instance keyword '{k}': inside vrrp_instance a misspelt keyword would change the election silently, so haxdp refuses it"
                    ),
                );
                self.ok = false;
            }
        }
    }

    fn state(&mut self, b: &mut Builder<'_>, c: &'n Node) {
        self.state_node = Some(c);
        match self.need(b.value(c)) {
            Some("MASTER") => self.state = Some(StateHint::Master),
            Some("BACKUP") => self.state = Some(StateHint::Backup),
            Some(v) => {
                b.err(c, format!("state '{v}' must be MASTER or BACKUP"));
                self.ok = false;
            }
            None => {}
        }
    }

    fn interface(&mut self, b: &mut Builder<'_>, c: &Node) {
        // A missing value is reported here and again by `finish` (no 'interface').
        let Some(v) = b.value(c) else {
            return;
        };
        if v.len() > 15 || v.is_empty() || v.contains('/') {
            b.err(
                c,
                format!("'{v}' is not a valid interface name (at most 15 characters, no '/')"),
            );
            self.ok = false;
        } else {
            self.interface = Some(v.to_string());
        }
    }

    fn unicast_peer(&mut self, b: &mut Builder<'_>, c: &'n Node) {
        self.unicast_node = Some(c);
        for p in b.children(c) {
            b.no_block(p);
            if p.args.iter().any(|a| a == "min_ttl" || a == "max_ttl") {
                // keepalived.conf(5): "Specifying min_ttl or max_ttl turns on
                // check_unicast_src".
                self.check_unicast_src = true;
                self.check_node.get_or_insert(p);
                b.warn(
                    p,
                    format!(
                        "unicast_peer options '{}': haxdp requires TTL 255 (RFC 9568 7.1), so the range is not applied; as in keepalived they turn on check_unicast_src",
                        p.args.join(" ")
                    ),
                );
            } else if !p.args.is_empty() {
                b.warn(
                    p,
                    format!(
                        "unicast_peer options '{}' are not supported by haxdp; ignored",
                        p.args.join(" ")
                    ),
                );
            }
            if let Some(a) = self.need(b.addr(p, &p.kw)) {
                self.unicast_peers.push(a);
            }
        }
    }

    fn allowed_peers(&mut self, b: &mut Builder<'_>, c: &Node) {
        let mut list = self.allowed_peers.take().unwrap_or_default();
        // One address per line, or several on a line: `{ 192.0.2.1 192.0.2.2 }`.
        for p in b.children(c) {
            b.no_block(p);
            for w in std::iter::once(&p.kw).chain(p.args.iter()) {
                match self.need(b.addr(p, w)) {
                    Some(a) if !list.contains(&a) => list.push(a),
                    _ => {}
                }
            }
        }
        if list.is_empty() {
            b.warn(c, "haxdp_allowed_peers is empty: no advert will be accepted, every node will become master".to_string());
        }
        self.allowed_peers = Some(list);
    }

    fn addresses(&mut self, b: &mut Builder<'_>, c: &'n Node) {
        let owned = c.kw == "virtual_ipaddress";
        if owned {
            self.vip_node = Some(c);
        }
        for line in b.children(c) {
            if let Some(v) = self.need(b.vip(line)) {
                if owned {
                    self.vips.push(v);
                } else {
                    self.excluded.push(v);
                }
            }
        }
    }

    /// The checks that need the whole block, keepalived's resolution of what conflicts,
    /// and the instance; `None` when any error was reported.
    fn finish(mut self, b: &mut Builder<'_>, k: &Known<'_>) -> Option<VrrpInstance> {
        let n = self.node;
        let Some(interface) = self.interface.take() else {
            b.err(n, format!("vrrp_instance {} has no 'interface'", self.name));
            return None;
        };
        let Some(vrid) = self.vrid else {
            if self.ok {
                b.err(
                    n,
                    format!("vrrp_instance {} has no 'virtual_router_id'", self.name),
                );
            }
            return None;
        };
        let family_v6 = self.vip_family(b);
        let version = self.resolve_version(b, k, family_v6.unwrap_or(false));
        let advert_int_cs = self.advert_int_cs(b, version);
        if let Some(v6) = family_v6 {
            self.check_peer_families(b, v6);
        }
        if self.check_unicast_src && self.unicast_peers.is_empty() {
            if let Some(c) = self.check_node {
                b.warn(
                    c,
                    format!("{}: check_unicast_src has no effect without unicast_peer (as in keepalived); use haxdp_allowed_peers to restrict a multicast instance", self.name),
                );
            }
        }
        let nopreempt = self.resolve_nopreempt(b);
        if self.strict {
            self.apply_strict(b, k);
        }
        if version == 3 && self.auth.is_some() {
            let at = self.auth_node.map_or(&n.loc, |a| &a.loc);
            b.d.warn_at(
                at,
                "authentication",
                format!(
                    "{}: VRRPv3 has no authentication (RFC 9568 removed it); auth_pass ignored",
                    self.name
                ),
            );
            self.auth = None;
        }
        let accept = self.accept.unwrap_or(!self.strict);
        let track_interfaces = self.own_interface_untracked(b, &interface);
        let resolve = |raw: Vec<RawVip>| -> Vec<VirtualIp> {
            raw.into_iter()
                .map(|mut r| {
                    if !r.dev_given {
                        r.vip.dev = interface.clone();
                    }
                    r.vip
                })
                .collect()
        };
        let vips = resolve(self.vips);
        let excluded_vips = resolve(self.excluded);
        if !self.ok {
            return None;
        }
        Some(VrrpInstance {
            name: self.name,
            state: self.state,
            interface: interface.clone(),
            vrid,
            priority: self.priority,
            advert_int_cs,
            version,
            nopreempt,
            preempt_delay_ms: self.preempt_delay_ms,
            auth: self.auth,
            unicast_src_ip: self.unicast_src_ip,
            unicast_peers: self.unicast_peers,
            check_unicast_src: self.check_unicast_src,
            allowed_peers: self.allowed_peers,
            mcast_src_ip: self.mcast_src_ip,
            vips,
            excluded_vips,
            track_scripts: self.tracking.scripts,
            track_interfaces,
            track_files: self.tracking.files,
            notify: self.notify,
            notify_fifo: self.notify_fifo,
            accept,
            garp: self.garp,
            dont_track_primary: self.dont_track_primary,
            strict: self.strict,
            skip_check_adv_addr: self.skip_check_adv_addr,
            higher_prio_send_advert: self.higher_prio_send_advert,
            location: n.loc.clone(),
        })
    }

    /// The VIPs' address family (`Some(true)` for IPv6; `None` without VIPs). RFC 9568
    /// 7.1: "IPvX addresses ... of the same address family".
    fn vip_family(&mut self, b: &mut Builder<'_>) -> Option<bool> {
        let name = &self.name;
        let Some(v6) = self.vips.first().map(|v| v.vip.address.is_ipv6()) else {
            match self.vip_node {
                Some(vn) => b.warn(
                    vn,
                    format!("{name}: empty virtual_ipaddress; the instance will own no address"),
                ),
                None => b.warn(
                    self.node,
                    format!("{name}: no virtual_ipaddress; the instance will own no address"),
                ),
            }
            return None;
        };
        if let Some(first_bad) = self.vips.iter().find(|v| v.vip.address.is_ipv6() != v6) {
            b.d.error_at(
                &first_bad.vip.location,
                "virtual_ipaddress",
                format!(
                    "{} mixes IPv4 and IPv6 in one virtual_ipaddress (a VRRP advert carries one family, RFC 9568 5.2.9): move {} to virtual_ipaddress_excluded or to a second vrrp_instance",
                    name, first_bad.vip.address
                ),
            );
            self.ok = false;
        }
        Some(v6)
    }

    /// Version: instance > global_defs > keepalived's default, 2 (3 for IPv6 VIPs).
    fn resolve_version(&mut self, b: &mut Builder<'_>, k: &Known<'_>, is_v6: bool) -> u8 {
        let name = &self.name;
        match (self.version, k.global.g.vrrp_version) {
            (Some((v, c)), _) => {
                if v == 2 && is_v6 {
                    b.err(
                        c,
                        "VRRPv2 is IPv4 only (RFC 3768); IPv6 VIPs need version 3",
                    );
                    self.ok = false;
                }
                v
            }
            (None, Some(v)) => {
                if v == 2 && is_v6 {
                    if let Some(loc) = &k.global.version_loc {
                        b.d.error_at(
                            loc,
                            "vrrp_version",
                            format!("vrrp_version 2 applies to {name}, whose VIPs are IPv6; VRRPv2 is IPv4 only: set 'version 3' in the instance"),
                        );
                    }
                    self.ok = false;
                }
                v
            }
            (None, None) if is_v6 => {
                b.info(
                    self.node,
                    format!("{name}: IPv6 VIPs, so VRRP version 3 (VRRPv2 is IPv4 only), as keepalived does"),
                );
                3
            }
            (None, None) => 2,
        }
    }

    /// `advert_int` in centiseconds, checked against what `version`'s advert can carry.
    fn advert_int_cs(&mut self, b: &mut Builder<'_>, version: u8) -> u16 {
        let Some((us, c)) = self.advert else {
            return 100;
        };
        let val = fmt_secs_us(us);
        let problem = if version == 2 {
            // RFC 3768 5.3.7: Adver Int is 8 bits of whole seconds.
            if !us.is_multiple_of(1_000_000) {
                Some(format!("advert_int {val}: VRRPv2 advertises whole seconds (RFC 3768 5.3.7); use 'version 3' for sub-second adverts"))
            } else if !(1_000_000..=255_000_000).contains(&us) {
                Some(format!("advert_int {val}: VRRPv2 allows 1 to 255 seconds"))
            } else {
                None
            }
        } else if !us.is_multiple_of(10_000) {
            // RFC 9568 5.2.7: Max Adver Int is 12 bits of centiseconds.
            Some(format!("advert_int {val}: VRRPv3 counts centiseconds (RFC 9568 5.2.7); use at most 2 decimals"))
        } else if !(10_000..=40_950_000).contains(&us) {
            Some(format!(
                "advert_int {val}: VRRPv3 allows 0.01 to 40.95 seconds (RFC 9568 5.2.7)"
            ))
        } else {
            None
        };
        match problem {
            None => u16::try_from(us / 10_000).unwrap_or(100),
            Some(msg) => {
                b.err(c, msg);
                self.ok = false;
                100
            }
        }
    }

    /// Every source and peer address in the VIPs' family (`v6`).
    fn check_peer_families(&mut self, b: &mut Builder<'_>, v6: bool) {
        let addrs = self
            .unicast_src_ip
            .iter()
            .map(|a| ("unicast_src_ip", a))
            .chain(self.mcast_src_ip.iter().map(|a| ("mcast_src_ip", a)))
            .chain(self.unicast_peers.iter().map(|a| ("unicast_peer", a)))
            .chain(
                self.allowed_peers
                    .iter()
                    .flatten()
                    .map(|a| ("haxdp_allowed_peers", a)),
            );
        for (what, a) in addrs.filter(|(_, a)| a.is_ipv6() != v6) {
            b.err(
                self.node,
                format!(
                    "{}: {what} {a} is not the same address family as the VIPs",
                    self.name
                ),
            );
            self.ok = false;
        }
    }

    /// keepalived clears nopreempt under `state MASTER`.
    fn resolve_nopreempt(&self, b: &mut Builder<'_>) -> bool {
        let nopreempt = self.nopreempt.unwrap_or(false);
        if self.state == Some(StateHint::Master) && nopreempt {
            let at = self.state_node.map_or(&self.node.loc, |s| &s.loc);
            b.d.warn_at(
                at,
                "nopreempt",
                format!("{}: nopreempt does not work with 'state MASTER' (keepalived clears it too); nopreempt ignored: use 'state BACKUP' on every node for nopreempt", self.name),
            );
            return false;
        }
        nopreempt
    }

    /// What vrrp_strict (or strict_mode) refuses, drops or changes, as keepalived does.
    fn apply_strict(&mut self, b: &mut Builder<'_>, k: &Known<'_>) {
        let (name, n) = (&self.name, self.node);
        if let Some(u) = self.unicast_node {
            b.err(
                u,
                format!("{name}: vrrp_strict forbids unicast_peer (RFC 9568 sends adverts to the multicast group); remove vrrp_strict or unicast_peer"),
            );
            self.ok = false;
        }
        if self.auth.is_some() {
            let at = self.auth_node.map_or(&n.loc, |a| &a.loc);
            b.d.warn_at(
                at,
                "authentication",
                format!("{name}: strict mode does not support authentication (removed in RFC 3768 5.3.6); ignored, as keepalived does"),
            );
            self.auth = None;
        }
        if self.state == Some(StateHint::Master) && self.priority != 255 {
            let at = self.state_node.map_or(&n.loc, |s| &s.loc);
            b.d.warn_at(
                at,
                "state",
                format!("{name}: strict mode: state MASTER requires priority 255 (the address owner, RFC 9568 6.1); starting as BACKUP, as keepalived does"),
            );
            self.state = Some(StateHint::Backup);
        }
        if self.accept.is_none() {
            let at = k.global.strict_loc.as_ref().unwrap_or(&n.loc);
            b.d.warn_at(
                at,
                "vrrp_strict",
                format!("{name}: with vrrp_strict and no 'accept', Accept_Mode is off (RFC 9568 6.1): this router does not accept traffic to the VIPs unless it owns them (priority 255), so nginx listening on them is unreachable; add 'accept' to the instance"),
            );
        }
    }

    /// The tracked interfaces; keepalived drops a track_interface naming the instance's
    /// own interface: that interface going down already faults the instance (unless
    /// dont_track_primary).
    fn own_interface_untracked(
        &mut self,
        b: &mut Builder<'_>,
        interface: &str,
    ) -> Vec<TrackInterface> {
        let mut tracked = std::mem::take(&mut self.tracking.interfaces);
        if !self.dont_track_primary {
            tracked.retain(|t| {
                if t.name != interface {
                    return true;
                }
                b.d.warn_at(
                    &t.location,
                    "track_interface",
                    format!("{}: track_interface {} is the instance's own interface, whose failure already puts the instance in FAULT; ignored, as keepalived does (add dont_track_primary to use a weight instead)", self.name, t.name),
                );
                false
            });
        }
        tracked
    }
}
