//! `vrrp_instance`: its keywords, virtual addresses and authentication, and the checks
//! against the rest of the file.

use std::net::{IpAddr, Ipv4Addr};

use super::script::check_script_path;
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
        let g = &k.global.g;
        let mut ok = true;
        let mut state = None;
        let mut state_node = None;
        let mut interface = None;
        let mut vrid = None;
        let mut priority = 100u8;
        let mut advert: Option<(u64, &Node)> = None;
        let mut version = None;
        let mut nopreempt = None;
        let mut preempt_delay_ms = 0;
        let mut auth = None;
        let mut auth_node = None;
        let mut unicast_src_ip = None;
        let mut unicast_peers = Vec::new();
        let mut unicast_node = None;
        let mut check_unicast_src = g.vrrp_check_unicast_src;
        let mut check_node: Option<&Node> = None;
        let mut allowed_peers: Option<Vec<IpAddr>> = None;
        let mut mcast_src_ip = None;
        let mut vips = Vec::new();
        let mut vip_node = None;
        let mut excluded = Vec::new();
        let mut track_scripts = Vec::new();
        let mut track_interfaces = Vec::new();
        let mut track_files = Vec::new();
        let mut notify = NotifyScripts::default();
        let mut accept = None;
        let mut garp = g.garp;
        let mut dont_track_primary = false;
        let mut strict = g.vrrp_strict;
        let mut skip_check_adv_addr = g.vrrp_skip_check_adv_addr;
        let mut higher_prio_send_advert = g.vrrp_higher_prio_send_advert;
        for c in self.children(n) {
            let kw = c.kw.as_str();
            if self.notify(c, &mut notify) {
                if !c.args.is_empty() {
                    let cmd = c.args.join(" ");
                    check_script_path(self, &cmd, &c.loc, kw, g.enable_script_security);
                }
                continue;
            }
            match kw {
                "state" => {
                    state_node = Some(c);
                    match self.value(c) {
                        Some("MASTER") => state = Some(StateHint::Master),
                        Some("BACKUP") => state = Some(StateHint::Backup),
                        Some(v) => {
                            self.err(c, format!("state '{v}' must be MASTER or BACKUP"));
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                "interface" => {
                    if let Some(v) = self.value(c) {
                        if v.len() > 15 || v.is_empty() || v.contains('/') {
                            self.err(c, format!("'{v}' is not a valid interface name (at most 15 characters, no '/')"));
                            ok = false;
                        } else {
                            interface = Some(v.to_string());
                        }
                    }
                }
                "virtual_router_id" => match self.int(c, 1, 255) {
                    // RFC 9568 5.2.3: VRID is 1-255.
                    Some(v) => vrid = u8::try_from(v).ok(),
                    None => ok = false,
                },
                "priority" => match self.int(c, 1, 255) {
                    // RFC 9568 5.2.4: 0 is reserved for "stopping", 255 for the owner.
                    Some(v) => {
                        priority = u8::try_from(v).unwrap_or(100);
                    }
                    None => ok = false,
                },
                "advert_int" => match self.value(c).map(parse_seconds_us) {
                    Some(Ok(us)) => advert = Some((us, c)),
                    Some(Err(e)) => {
                        self.err(c, format!("advert_int: {e}"));
                        ok = false;
                    }
                    None => ok = false,
                },
                "version" => match self.int(c, 2, 3) {
                    Some(v) => version = Some((u8::try_from(v).unwrap_or(2), c)),
                    None => ok = false,
                },
                "nopreempt" => nopreempt = Some(self.flag(c)),
                "preempt" => {
                    self.flag(c);
                    nopreempt = Some(false);
                }
                "preempt_delay" => match self.seconds_us(c, 0, 1_000_000_000) {
                    Some(us) => preempt_delay_ms = u32::try_from(us / 1000).unwrap_or(u32::MAX),
                    None => ok = false,
                },
                "authentication" => {
                    auth_node = Some(c);
                    match self.auth(c) {
                        Some(a) => auth = Some(a),
                        None => ok = false,
                    }
                }
                "unicast_src_ip" => match self.value(c).and_then(|v| self.addr(c, v)) {
                    Some(a) => unicast_src_ip = Some(a),
                    None => ok = false,
                },
                "unicast_peer" => {
                    unicast_node = Some(c);
                    for p in self.children(c) {
                        self.no_block(p);
                        if p.args.iter().any(|a| a == "min_ttl" || a == "max_ttl") {
                            // keepalived.conf(5): "Specifying min_ttl or max_ttl turns on
                            // check_unicast_src".
                            check_unicast_src = true;
                            check_node.get_or_insert(p);
                            self.warn(
                                p,
                                format!(
                                    "unicast_peer options '{}': haxdp requires TTL 255 (RFC 9568 7.1), so the range is not applied; as in keepalived they turn on check_unicast_src",
                                    p.args.join(" ")
                                ),
                            );
                        } else if !p.args.is_empty() {
                            self.warn(
                                p,
                                format!(
                                    "unicast_peer options '{}' are not supported by haxdp; ignored",
                                    p.args.join(" ")
                                ),
                            );
                        }
                        match self.addr(p, &p.kw) {
                            Some(a) => unicast_peers.push(a),
                            None => ok = false,
                        }
                    }
                }
                "check_unicast_src" => {
                    check_unicast_src = self.flag(c);
                    check_node = Some(c);
                }
                "haxdp_allowed_peers" => {
                    let mut list = allowed_peers.take().unwrap_or_default();
                    // One address per line, or several on a line: `{ 192.0.2.1 192.0.2.2 }`.
                    for p in self.children(c) {
                        self.no_block(p);
                        for w in std::iter::once(&p.kw).chain(p.args.iter()) {
                            match self.addr(p, w) {
                                Some(a) if !list.contains(&a) => list.push(a),
                                Some(_) => {}
                                None => ok = false,
                            }
                        }
                    }
                    if list.is_empty() {
                        self.warn(c, "haxdp_allowed_peers is empty: no advert will be accepted, every node will become master".to_string());
                    }
                    allowed_peers = Some(list);
                }
                "mcast_src_ip" => match self.value(c).and_then(|v| self.addr(c, v)) {
                    Some(a) => mcast_src_ip = Some(a),
                    None => ok = false,
                },
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    if kw == "virtual_ipaddress" {
                        vip_node = Some(c);
                    }
                    for line in self.children(c) {
                        match self.vip(line) {
                            Some(v) if kw == "virtual_ipaddress" => vips.push(v),
                            Some(v) => excluded.push(v),
                            None => ok = false,
                        }
                    }
                }
                "track_script" => {
                    ok &= self.resolved_refs(
                        c,
                        &k.checks,
                        "vrrp_script or vrrp_nginx_check",
                        &mut track_scripts,
                    );
                }
                "track_file" => {
                    ok &=
                        self.resolved_refs(c, &k.track_files, "vrrp_track_file", &mut track_files);
                }
                "track_interface" => track_interfaces.extend(self.track_interfaces(c)),
                "accept" => accept = Some(self.flag(c)),
                "no_accept" => {
                    self.flag(c);
                    accept = Some(false);
                }
                "garp_master_delay" => {
                    garp.master_delay_s = self.u32_in(c, 0, 3600).unwrap_or(garp.master_delay_s)
                }
                "garp_master_repeat" => {
                    garp.master_repeat = self.u32_in(c, 1, 10_000).unwrap_or(garp.master_repeat)
                }
                "garp_master_refresh" => {
                    garp.master_refresh_s =
                        self.u32_in(c, 0, 86_400).unwrap_or(garp.master_refresh_s)
                }
                "garp_master_refresh_repeat" => {
                    garp.master_refresh_repeat = self
                        .u32_in(c, 1, 10_000)
                        .unwrap_or(garp.master_refresh_repeat)
                }
                "garp_lower_prio_delay" => garp.lower_prio_delay_s = self.u32_in(c, 0, 3600),
                "garp_lower_prio_repeat" => garp.lower_prio_repeat = self.u32_in(c, 1, 10_000),
                "dont_track_primary" => dont_track_primary = self.flag(c),
                "strict_mode" => {
                    strict = match c.args.first().map(String::as_str) {
                        None | Some("on" | "true" | "yes") => true,
                        Some("off" | "false" | "no") => false,
                        Some(v) => {
                            self.err(c, format!("strict_mode '{v}' must be on or off"));
                            ok = false;
                            strict
                        }
                    }
                }
                "skip_check_adv_addr" => skip_check_adv_addr = self.flag(c),
                "higher_prio_send_advert" => higher_prio_send_advert = self.flag(c),
                "smtp_alert" => self.info(c, "haxdp does not send mail; smtp_alert ignored"),
                k if INSTANCE_UNSUPPORTED.contains(&k) => self.warn(
                    c,
                    format!("vrrp_instance keyword '{k}' is not supported by haxdp; ignored"),
                ),
                k => {
                    self.err(
                        c,
                        format!(
                            "unknown vrrp_instance keyword '{k}': inside vrrp_instance a misspelt keyword would change the election silently, so haxdp refuses it"
                        ),
                    );
                    ok = false;
                }
            }
        }

        let Some(interface) = interface else {
            self.err(n, format!("vrrp_instance {name} has no 'interface'"));
            return None;
        };
        let Some(vrid) = vrid else {
            if ok {
                self.err(
                    n,
                    format!("vrrp_instance {name} has no 'virtual_router_id'"),
                );
            }
            return None;
        };

        // Address family: RFC 9568 7.1 ("IPvX addresses ... of the same address family").
        let family_v6 = vips.first().map(|v| v.vip.address.is_ipv6());
        if let Some(v6) = family_v6 {
            let mixed: Vec<&RawVip> = vips
                .iter()
                .filter(|v| v.vip.address.is_ipv6() != v6)
                .collect();
            if let Some(first_bad) = mixed.first() {
                self.d.error_at(
                    &first_bad.vip.location,
                    "virtual_ipaddress",
                    format!(
                        "{} mixes IPv4 and IPv6 in one virtual_ipaddress (a VRRP advert carries one family, RFC 9568 5.2.9): move {} to virtual_ipaddress_excluded or to a second vrrp_instance",
                        name, first_bad.vip.address
                    ),
                );
                ok = false;
            }
        } else if let Some(vn) = vip_node {
            self.warn(
                vn,
                format!("{name}: empty virtual_ipaddress; the instance will own no address"),
            );
        } else {
            self.warn(
                n,
                format!("{name}: no virtual_ipaddress; the instance will own no address"),
            );
        }
        let is_v6 = family_v6.unwrap_or(false);

        // Version: instance > global_defs > keepalived's default, 2.
        let version = match (version, g.vrrp_version) {
            (Some((v, c)), _) => {
                if v == 2 && is_v6 {
                    self.err(
                        c,
                        "VRRPv2 is IPv4 only (RFC 3768); IPv6 VIPs need version 3",
                    );
                    ok = false;
                }
                v
            }
            (None, Some(v)) => {
                if v == 2 && is_v6 {
                    if let Some(loc) = &k.global.version_loc {
                        self.d.error_at(
                            loc,
                            "vrrp_version",
                            format!("vrrp_version 2 applies to {name}, whose VIPs are IPv6; VRRPv2 is IPv4 only: set 'version 3' in the instance"),
                        );
                    }
                    ok = false;
                }
                v
            }
            (None, None) if is_v6 => {
                self.info(
                    n,
                    format!("{name}: IPv6 VIPs, so VRRP version 3 (VRRPv2 is IPv4 only), as keepalived does"),
                );
                3
            }
            (None, None) => 2,
        };

        let advert_int_cs = match advert {
            None => 100,
            Some((us, c)) => {
                let val = fmt_secs_us(us);
                if version == 2 {
                    // RFC 3768 5.3.7: Adver Int is 8 bits of whole seconds.
                    if !us.is_multiple_of(1_000_000) {
                        self.err(
                            c,
                            format!("advert_int {val}: VRRPv2 advertises whole seconds (RFC 3768 5.3.7); use 'version 3' for sub-second adverts"),
                        );
                        ok = false;
                        100
                    } else if !(1_000_000..=255_000_000).contains(&us) {
                        self.err(
                            c,
                            format!("advert_int {val}: VRRPv2 allows 1 to 255 seconds"),
                        );
                        ok = false;
                        100
                    } else {
                        u16::try_from(us / 10_000).unwrap_or(100)
                    }
                } else if !us.is_multiple_of(10_000) {
                    // RFC 9568 5.2.7: Max Adver Int is 12 bits of centiseconds.
                    self.err(
                        c,
                        format!("advert_int {val}: VRRPv3 counts centiseconds (RFC 9568 5.2.7); use at most 2 decimals"),
                    );
                    ok = false;
                    100
                } else if !(10_000..=40_950_000).contains(&us) {
                    self.err(
                        c,
                        format!("advert_int {val}: VRRPv3 allows 0.01 to 40.95 seconds (RFC 9568 5.2.7)"),
                    );
                    ok = false;
                    100
                } else {
                    u16::try_from(us / 10_000).unwrap_or(100)
                }
            }
        };

        let family_ok = |a: &IpAddr| a.is_ipv6() == is_v6;
        for (what, a) in unicast_src_ip
            .iter()
            .map(|a| ("unicast_src_ip", a))
            .chain(mcast_src_ip.iter().map(|a| ("mcast_src_ip", a)))
            .chain(unicast_peers.iter().map(|a| ("unicast_peer", a)))
            .chain(
                allowed_peers
                    .iter()
                    .flatten()
                    .map(|a| ("haxdp_allowed_peers", a)),
            )
        {
            if family_v6.is_some() && !family_ok(a) {
                self.err(
                    n,
                    format!("{name}: {what} {a} is not the same address family as the VIPs"),
                );
                ok = false;
            }
        }

        if check_unicast_src && unicast_peers.is_empty() {
            if let Some(c) = check_node {
                self.warn(
                    c,
                    format!("{name}: check_unicast_src has no effect without unicast_peer (as in keepalived); use haxdp_allowed_peers to restrict a multicast instance"),
                );
            }
        }

        let mut nopreempt = nopreempt.unwrap_or(false);
        if state == Some(StateHint::Master) && nopreempt {
            let at = state_node.map_or(&n.loc, |s| &s.loc);
            self.d.warn_at(
                at,
                "nopreempt",
                format!("{name}: nopreempt does not work with 'state MASTER' (keepalived clears it too); nopreempt ignored: use 'state BACKUP' on every node for nopreempt"),
            );
            nopreempt = false;
        }

        if strict {
            if let Some(u) = unicast_node {
                self.err(
                    u,
                    format!("{name}: vrrp_strict forbids unicast_peer (RFC 9568 sends adverts to the multicast group); remove vrrp_strict or unicast_peer"),
                );
                ok = false;
            }
            if auth.is_some() {
                let at = auth_node.map_or(&n.loc, |a| &a.loc);
                self.d.warn_at(
                    at,
                    "authentication",
                    format!("{name}: strict mode does not support authentication (removed in RFC 3768 5.3.6); ignored, as keepalived does"),
                );
                auth = None;
            }
            if state == Some(StateHint::Master) && priority != 255 {
                let at = state_node.map_or(&n.loc, |s| &s.loc);
                self.d.warn_at(
                    at,
                    "state",
                    format!("{name}: strict mode: state MASTER requires priority 255 (the address owner, RFC 9568 6.1); starting as BACKUP, as keepalived does"),
                );
                state = Some(StateHint::Backup);
            }
            if accept.is_none() {
                let at = k.global.strict_loc.as_ref().unwrap_or(&n.loc);
                self.d.warn_at(
                    at,
                    "vrrp_strict",
                    format!("{name}: with vrrp_strict and no 'accept', Accept_Mode is off (RFC 9568 6.1): this router does not accept traffic to the VIPs unless it owns them (priority 255), so nginx listening on them is unreachable; add 'accept' to the instance"),
                );
            }
        }
        if version == 3 && auth.is_some() {
            let at = auth_node.map_or(&n.loc, |a| &a.loc);
            self.d.warn_at(
                at,
                "authentication",
                format!(
                    "{name}: VRRPv3 has no authentication (RFC 9568 removed it); auth_pass ignored"
                ),
            );
            auth = None;
        }
        let accept = accept.unwrap_or(!strict);

        // keepalived drops a track_interface naming the instance's own interface: that
        // interface going down already faults the instance (unless dont_track_primary).
        if !dont_track_primary {
            let mut kept = Vec::with_capacity(track_interfaces.len());
            for t in track_interfaces {
                if t.name == interface {
                    self.d.warn_at(
                        &t.location,
                        "track_interface",
                        format!("{name}: track_interface {} is the instance's own interface, whose failure already puts the instance in FAULT; ignored, as keepalived does (add dont_track_primary to use a weight instead)", t.name),
                    );
                } else {
                    kept.push(t);
                }
            }
            track_interfaces = kept;
        }
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
        let vips = resolve(vips);
        let excluded_vips = resolve(excluded);
        if !ok {
            return None;
        }
        Some(VrrpInstance {
            name,
            state,
            interface: interface.clone(),
            vrid,
            priority,
            advert_int_cs,
            version,
            nopreempt,
            preempt_delay_ms,
            auth,
            unicast_src_ip,
            unicast_peers,
            check_unicast_src,
            allowed_peers,
            mcast_src_ip,
            vips,
            excluded_vips,
            track_scripts,
            track_interfaces,
            track_files,
            notify,
            notify_fifo: g.notify_fifo.clone(),
            accept,
            garp,
            dont_track_primary,
            strict,
            skip_check_adv_addr,
            higher_prio_send_advert,
            location: n.loc.clone(),
        })
    }
}
