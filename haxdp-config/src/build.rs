//! From the statement tree to the typed model, with keepalived's defaults and the semantic
//! checks. Every problem becomes a diagnostic; the caller refuses the config if any is an
//! error.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::diag::{Diags, Location};
use crate::model::*;
use crate::syntax::Node;

/// Top-level keepalived keywords haxdp recognises but does not implement (IPVS, static
/// routes, other trackers). They are skipped with one warning per block.
const TOP_UNSUPPORTED: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "vrrp_track_process",
    "vrrp_track_bfd",
    "bfd_instance",
    "garp_group",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "instance",
    "use_pid_dir",
    "child_wait_time",
    "vrrp_notify_fifo_script",
];

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

/// Mail settings: accepted, with a note that haxdp sends no mail.
const MAIL_KEYWORDS: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "email_faults",
];

struct B<'a> {
    d: &'a mut Diags,
    /// Script paths already reported missing: one warning per path, not per use.
    missing_reported: HashSet<String>,
}

fn parse_int(s: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let v: i64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if v < lo || v > hi {
        return Err(format!("{v} is out of range: must be {lo} to {hi}"));
    }
    Ok(v)
}

/// Seconds written as a decimal (`1`, `0.2`, `40.95`) to microseconds, without going through
/// floating point so that `0.01` is exactly one centisecond.
fn parse_seconds_us(s: &str) -> Result<u64, String> {
    let bad = || format!("'{s}' is not a number of seconds (like 1, 0.5 or 0.01)");
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(format!("'{s}' has more than 6 decimals"));
    }
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut micros: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        micros += u64::from(b - b'0') * 10u64.pow(5 - u32::try_from(i).unwrap_or(5));
    }
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(micros))
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn fmt_secs_us(us: u64) -> String {
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else {
        let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

fn parse_weight(args: &[String], lo: i64, hi: i64) -> Result<Weight, String> {
    let Some(v) = args.first() else {
        return Err("'weight' needs a value".into());
    };
    let value = parse_int(v, lo, hi)?;
    let reverse = match args.get(1).map(String::as_str) {
        None => false,
        Some("reverse") => true,
        Some(other) => return Err(format!("unexpected '{other}' after weight {v}")),
    };
    if args.len() > 2 {
        return Err(format!("unexpected '{}' after weight", args[2]));
    }
    Ok(Weight {
        value: i32::try_from(value).unwrap_or(0),
        reverse,
    })
}

impl B<'_> {
    fn err(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.error_at(&n.loc, &n.kw, msg);
    }
    fn warn(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.warn_at(&n.loc, &n.kw, msg);
    }
    fn info(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.info_at(&n.loc, &n.kw, msg);
    }

    fn no_block(&mut self, n: &Node) {
        if n.block.is_some() {
            self.err(n, format!("'{}' does not take a {{ }} block", n.kw));
        }
    }

    /// The single value of `keyword VALUE`.
    fn value<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        self.no_block(n);
        let Some(v) = n.args.first() else {
            self.err(n, format!("'{}' needs a value", n.kw));
            return None;
        };
        if n.args.len() > 1 {
            self.warn(
                n,
                format!(
                    "extra values after '{} {}' ignored: {}",
                    n.kw,
                    v,
                    n.args[1..].join(" ")
                ),
            );
        }
        Some(v)
    }

    fn int(&mut self, n: &Node, lo: i64, hi: i64) -> Option<i64> {
        let v = self.value(n)?;
        match parse_int(v, lo, hi) {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(n, format!("{}: {e}", n.kw));
                None
            }
        }
    }

    fn u32_in(&mut self, n: &Node, lo: u32, hi: u32) -> Option<u32> {
        self.int(n, i64::from(lo), i64::from(hi))
            .and_then(|v| u32::try_from(v).ok())
    }

    fn seconds_us(&mut self, n: &Node, lo_us: u64, hi_us: u64) -> Option<u64> {
        let v = self.value(n)?;
        match parse_seconds_us(v) {
            Ok(us) if us >= lo_us && us <= hi_us => Some(us),
            Ok(_) => {
                self.err(
                    n,
                    format!(
                        "{}: {v} is out of range: must be {} to {}",
                        n.kw,
                        fmt_secs_us(lo_us),
                        fmt_secs_us(hi_us)
                    ),
                );
                None
            }
            Err(e) => {
                self.err(n, format!("{}: {e}", n.kw));
                None
            }
        }
    }

    fn flag(&mut self, n: &Node) -> bool {
        self.no_block(n);
        if !n.args.is_empty() {
            self.warn(
                n,
                format!("'{}' takes no value; '{}' ignored", n.kw, n.args.join(" ")),
            );
        }
        true
    }

    fn addr(&mut self, n: &Node, s: &str) -> Option<IpAddr> {
        match s.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(n, format!("'{s}' is not an IPv4 or IPv6 address"));
                None
            }
        }
    }

    fn children<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        match &n.block {
            Some(c) => c,
            None => {
                self.err(n, format!("'{}' needs a {{ }} block", n.kw));
                &[]
            }
        }
    }

    /// The NAME of `keyword NAME { ... }`.
    fn block_name(&mut self, n: &Node) -> Option<String> {
        match n.args.first() {
            Some(name) => {
                if n.args.len() > 1 {
                    self.warn(n, format!("extra words after '{} {name}' ignored", n.kw));
                }
                Some(name.clone())
            }
            None => {
                self.err(n, format!("'{}' needs a name", n.kw));
                None
            }
        }
    }

    fn weight(&mut self, n: &Node, args: &[String], lo: i64, hi: i64) -> Option<Weight> {
        match parse_weight(args, lo, hi) {
            Ok(w) => Some(w),
            Err(e) => {
                self.err(n, format!("weight: {e}"));
                None
            }
        }
    }

    fn run_as(&mut self, n: &Node) -> Option<RunAs> {
        self.no_block(n);
        match n.args.as_slice() {
            [u] => Some(RunAs {
                user: u.clone(),
                group: None,
            }),
            [u, g] => Some(RunAs {
                user: u.clone(),
                group: Some(g.clone()),
            }),
            _ => {
                self.err(n, format!("'{}' takes a user and an optional group", n.kw));
                None
            }
        }
    }

    /// A `vrrp_script` command: haxdp runs every word of the line.
    fn command(&mut self, n: &Node) -> Option<String> {
        self.no_block(n);
        if n.args.is_empty() {
            self.err(n, format!("'{}' needs a command", n.kw));
            return None;
        }
        let line = n.args.join(" ");
        if n.args.len() > 1 {
            // keepalived 2.x (vrrp_vscript_script_handler) keeps only the first word, so an
            // unquoted `script killall -0 nginx` runs a bare `killall`, which always fails.
            self.warn(
                n,
                format!(
                    "keepalived runs only '{}' from this unquoted line (it drops the words after the first); haxdp runs all of it: quote it so that both run the same: {} \"{line}\"",
                    n.args[0], n.kw
                ),
            );
        }
        Some(line)
    }
}

/// A word after an unquoted notify command that reads like an argument to it (a state
/// name, a path, an option, an address or a number) rather than a user name.
fn looks_like_argument(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    matches!(w.as_str(), "master" | "backup" | "fault" | "stop")
        || word.starts_with(['/', '-', '$', '"', '\''])
        || word.parse::<std::net::IpAddr>().is_ok()
        || word.bytes().all(|b| b.is_ascii_digit())
}

fn vip_scope_ok(s: &str) -> bool {
    matches!(s, "global" | "host" | "link" | "site" | "nowhere") || s.parse::<u8>().is_ok()
}

/// A VIP line before its device is resolved.
struct RawVip {
    vip: VirtualIp,
    dev_given: bool,
}

impl B<'_> {
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

    fn track_refs(&mut self, n: &Node) -> Vec<TrackRef> {
        let mut out = Vec::new();
        for c in self.children(n) {
            if c.block.is_some() {
                self.err(c, format!("'{}' inside {} cannot have a block", c.kw, n.kw));
                continue;
            }
            let weight = match c.args.first().map(String::as_str) {
                None => None,
                Some("weight") => match self.weight(c, &c.args[1..], -253, 253) {
                    Some(w) => Some(w),
                    None => continue,
                },
                Some(other) => {
                    self.err(
                        c,
                        format!(
                            "unexpected '{other}' after '{}': expected 'weight N [reverse]'",
                            c.kw
                        ),
                    );
                    continue;
                }
            };
            out.push(TrackRef {
                name: c.kw.clone(),
                weight,
                location: c.loc.clone(),
            });
        }
        out
    }

    /// The references of a `track_script` / `track_file` block, appended to `out`, each
    /// checked against the names `known` defines. Returns false (after an error at the
    /// reference's line) when one names nothing, as `keepalived -t` reports it.
    fn resolved_refs(
        &mut self,
        n: &Node,
        known: &HashSet<String>,
        defined_by: &str,
        out: &mut Vec<TrackRef>,
    ) -> bool {
        let mut ok = true;
        for r in self.track_refs(n) {
            if !known.contains(&r.name) {
                self.d.error_at(
                    &r.location,
                    &n.kw,
                    format!("{} '{}' names no {defined_by}", n.kw, r.name),
                );
                ok = false;
            }
            out.push(r);
        }
        ok
    }

    fn track_interfaces(&mut self, n: &Node) -> Vec<TrackInterface> {
        let mut out = Vec::new();
        for c in self.children(n) {
            if c.block.is_some() {
                self.err(c, format!("'{}' inside {} cannot have a block", c.kw, n.kw));
                continue;
            }
            let weight = match c.args.first().map(String::as_str) {
                None => Weight {
                    value: 0,
                    reverse: false,
                },
                Some("weight") => match self.weight(c, &c.args[1..], -254, 254) {
                    Some(w) => w,
                    None => continue,
                },
                Some(other) => {
                    self.err(
                        c,
                        format!(
                            "unexpected '{other}' after '{}': expected 'weight N [reverse]'",
                            c.kw
                        ),
                    );
                    continue;
                }
            };
            if c.kw.len() > 15 {
                self.err(
                    c,
                    format!("interface name '{}' is longer than 15 characters", c.kw),
                );
                continue;
            }
            out.push(TrackInterface {
                name: c.kw.clone(),
                weight,
                location: c.loc.clone(),
            });
        }
        out
    }

    /// `notify*` keywords shared by instances and sync groups; `true` if `c` was one.
    fn notify(&mut self, c: &Node, notify: &mut NotifyScripts) -> bool {
        let slot = match c.kw.as_str() {
            "notify" => &mut notify.notify,
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            "notify_stop" => &mut notify.stop,
            _ => return false,
        };
        self.no_block(c);
        // keepalived 2.2.7 (notify_script_init): the first word is the command, the next
        // two are the user and group it runs as; anything after them is ignored.
        match c.args.as_slice() {
            [] => self.err(c, format!("'{}' needs a command", c.kw)),
            [command, rest @ ..] if rest.len() <= 2 => {
                if let Some(user) = rest.first() {
                    if !command.contains(char::is_whitespace) && looks_like_argument(user) {
                        self.warn(
                            c,
                            format!(
                                "keepalived reads '{user}' as the user to run '{command}' as, not as its argument, and haxdp does the same; to pass arguments, quote the command: {} \"{}\"",
                                c.kw,
                                c.args.join(" ")
                            ),
                        );
                    }
                }
                *slot = Some(NotifyScript {
                    command: command.clone(),
                    run_as: rest.first().map(|u| RunAs {
                        user: u.clone(),
                        group: rest.get(1).cloned(),
                    }),
                    location: c.loc.clone(),
                });
            }
            _ => self.err(
                c,
                format!(
                    "'{}' takes a command (in double quotes when it has arguments), then optionally the user and group to run it as: {} \"{}\"",
                    c.kw,
                    c.kw,
                    c.args.join(" ")
                ),
            ),
        }
        true
    }
}

#[derive(Default)]
struct GlobalRaw {
    g: GlobalDefs,
    version_loc: Option<Location>,
    strict_loc: Option<Location>,
}

impl B<'_> {
    fn global_defs(&mut self, n: &Node, out: &mut GlobalRaw) {
        if out.g.location.is_none() {
            out.g.location = Some(n.loc.clone());
        }
        let mut vrrp_fifo = None;
        let mut fifo = None;
        for c in self.children(n) {
            let kw = c.kw.as_str();
            match kw {
                "router_id" => out.g.router_id = self.value(c).map(str::to_string),
                "vrrp_version" => {
                    if let Some(v) = self.int(c, 2, 3) {
                        out.g.vrrp_version = u8::try_from(v).ok();
                        out.version_loc = Some(c.loc.clone());
                    }
                }
                "vrrp_garp_master_delay" => {
                    if let Some(v) = self.u32_in(c, 0, 3600) {
                        out.g.garp.master_delay_s = v;
                    }
                }
                "vrrp_garp_master_repeat" => {
                    if let Some(v) = self.u32_in(c, 1, 10_000) {
                        out.g.garp.master_repeat = v;
                    }
                }
                "vrrp_garp_master_refresh" => {
                    if let Some(v) = self.u32_in(c, 0, 86_400) {
                        out.g.garp.master_refresh_s = v;
                    }
                }
                "vrrp_garp_master_refresh_repeat" => {
                    if let Some(v) = self.u32_in(c, 1, 10_000) {
                        out.g.garp.master_refresh_repeat = v;
                    }
                }
                "vrrp_garp_lower_prio_delay" => {
                    out.g.garp.lower_prio_delay_s = self.u32_in(c, 0, 3600);
                }
                "vrrp_garp_lower_prio_repeat" => {
                    out.g.garp.lower_prio_repeat = self.u32_in(c, 1, 10_000);
                }
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    let v = self.value(c).map(parse_seconds_us);
                    let slot = if kw == "vrrp_garp_interval" {
                        &mut out.g.garp.interval_us
                    } else {
                        &mut out.g.garp.na_interval_us
                    };
                    match v {
                        Some(Ok(0)) => self.warn(
                            c,
                            format!(
                                "{kw} 0: keepalived 2.2 rejects 0 (it wants 0.000001 to 4294.967295 s) and keeps its default, no spacing; haxdp does the same, remove the line"
                            ),
                        ),
                        Some(Ok(us)) if us <= 4_294_967_295 => *slot = us,
                        Some(Ok(_)) => self.err(c, format!("{kw}: must be at most 4294.967295 s")),
                        Some(Err(e)) => self.err(c, format!("{kw}: {e}")),
                        None => {}
                    }
                }
                "vrrp_mcast_group4" => {
                    if let Some(v) = self.value(c) {
                        match v.parse::<Ipv4Addr>() {
                            Ok(a) if a.is_multicast() => out.g.mcast_group4 = a,
                            _ => self.err(c, format!("'{v}' is not an IPv4 multicast address")),
                        }
                    }
                }
                "vrrp_mcast_group6" => {
                    if let Some(v) = self.value(c) {
                        match v.parse::<std::net::Ipv6Addr>() {
                            Ok(a) if a.is_multicast() => out.g.mcast_group6 = a,
                            _ => self.err(c, format!("'{v}' is not an IPv6 multicast address")),
                        }
                    }
                }
                "enable_script_security" => out.g.enable_script_security = self.flag(c),
                "script_user" => out.g.script_user = self.run_as(c),
                "vrrp_strict" => {
                    out.g.vrrp_strict = self.flag(c);
                    out.strict_loc = Some(c.loc.clone());
                }
                "vrrp_skip_check_adv_addr" => out.g.vrrp_skip_check_adv_addr = self.flag(c),
                "vrrp_check_unicast_src" => out.g.vrrp_check_unicast_src = self.flag(c),
                "dynamic_interfaces" => out.g.dynamic_interfaces = self.flag(c),
                "vrrp_higher_prio_send_advert" => {
                    out.g.vrrp_higher_prio_send_advert = self.flag(c)
                }
                "notify_fifo" => fifo = self.value(c).map(PathBuf::from),
                "vrrp_notify_fifo" => vrrp_fifo = self.value(c).map(PathBuf::from),
                "vrrp_iptables" | "vrrp_ipsets" | "nftables" | "nftables_priority"
                | "nftables_ifindex" | "nftables_counters" => self.info(
                    c,
                    format!("'{kw}': haxdp does not manage firewall rules; ignored"),
                ),
                k if MAIL_KEYWORDS.contains(&k) => self.info(
                    c,
                    format!("'{k}' accepted, but haxdp does not send mail; use notify scripts or notify_fifo"),
                ),
                k => self.warn(
                    c,
                    format!("unknown or unsupported global_defs keyword '{k}'; ignored"),
                ),
            }
        }
        if let Some(f) = vrrp_fifo.or(fifo) {
            out.g.notify_fifo = Some(f);
        }
    }

    fn vrrp_script(&mut self, n: &Node, security: bool) -> Option<VrrpScript> {
        let name = self.block_name(n)?;
        let mut script = None;
        let mut interval_us = None;
        let mut timeout_us = None;
        let mut weight = Weight {
            value: 0,
            reverse: false,
        };
        let mut rise = 1;
        let mut fall = 1;
        let mut user = None;
        let mut init_fail = false;
        for c in self.children(n) {
            match c.kw.as_str() {
                "script" => {
                    script = self.command(c);
                    if let Some(cmd) = &script {
                        check_script_path(self, cmd, &c.loc, "script", security);
                    }
                }
                "interval" => interval_us = self.seconds_us(c, 1_000, 86_400_000_000),
                "timeout" => timeout_us = self.seconds_us(c, 1_000, 86_400_000_000),
                "weight" => {
                    self.no_block(c);
                    if let Some(w) = self.weight(c, &c.args, -253, 253) {
                        weight = w;
                    }
                }
                "rise" => rise = self.u32_in(c, 1, 1_000_000).unwrap_or(rise),
                "fall" => fall = self.u32_in(c, 1, 1_000_000).unwrap_or(fall),
                "user" => user = self.run_as(c),
                "init_fail" => init_fail = self.flag(c),
                k => self.err(
                    c,
                    format!(
                        "unknown vrrp_script keyword '{k}' (expected script, interval, timeout, weight, rise, fall, user, init_fail)"
                    ),
                ),
            }
        }
        let Some(script) = script else {
            self.err(n, format!("vrrp_script {name} has no 'script' line"));
            return None;
        };
        // keepalived: interval defaults to 1 s, timeout to the interval.
        let interval_us = interval_us.unwrap_or(1_000_000);
        let timeout_us = timeout_us.unwrap_or(interval_us);
        Some(VrrpScript {
            name,
            script,
            interval_ms: interval_us / 1000,
            timeout_ms: timeout_us / 1000,
            weight,
            rise,
            fall,
            user,
            init_fail,
            location: n.loc.clone(),
        })
    }

    /// `vrrp_nginx_check NAME { url U expect N interval S timeout S rise N fall N
    /// weight N [reverse] pidfile P }`: pairs, on one line or many.
    fn nginx_check(&mut self, n: &Node) -> Option<NginxCheck> {
        let name = self.block_name(n)?;
        let mut url = None;
        let mut expect = 200u16;
        let mut interval_us = 1_000_000u64;
        let mut timeout_us = None;
        let mut rise = 1u32;
        let mut fall = 1u32;
        let mut weight = Weight {
            value: 0,
            reverse: false,
        };
        let mut pidfile = None;
        let mut ok = true;
        for c in self.children(n) {
            if c.block.is_some() {
                self.err(
                    c,
                    format!("'{}' inside vrrp_nginx_check cannot have a block", c.kw),
                );
                ok = false;
                continue;
            }
            let words: Vec<&str> = std::iter::once(c.kw.as_str())
                .chain(c.args.iter().map(String::as_str))
                .collect();
            let mut i = 0;
            while i < words.len() {
                let key = words[i];
                let Some(&val) = words.get(i + 1) else {
                    self.err(c, format!("vrrp_nginx_check: '{key}' needs a value"));
                    ok = false;
                    break;
                };
                i += 2;
                let res: Result<(), String> = match key {
                    "url" => match val.strip_prefix("http://") {
                        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
                            url = Some(val.to_string());
                            Ok(())
                        }
                        _ => Err(format!(
                            "url '{val}' must be http://HOST[:PORT]/PATH (plain HTTP to the local nginx)"
                        )),
                    },
                    "expect" => parse_int(val, 100, 599).map(|v| {
                        expect = u16::try_from(v).unwrap_or(200);
                    }),
                    "interval" => parse_seconds_us(val).and_then(|us| {
                        if (10_000..=3_600_000_000).contains(&us) {
                            interval_us = us;
                            Ok(())
                        } else {
                            Err(format!("interval {val} must be 0.01 to 3600 s"))
                        }
                    }),
                    "timeout" => parse_seconds_us(val).and_then(|us| {
                        if (1_000..=3_600_000_000).contains(&us) {
                            timeout_us = Some(us);
                            Ok(())
                        } else {
                            Err(format!("timeout {val} must be 0.001 to 3600 s"))
                        }
                    }),
                    "rise" => parse_int(val, 1, 1_000_000).map(|v| {
                        rise = u32::try_from(v).unwrap_or(1);
                    }),
                    "fall" => parse_int(val, 1, 1_000_000).map(|v| {
                        fall = u32::try_from(v).unwrap_or(1);
                    }),
                    "weight" => {
                        let mut wargs = vec![val.to_string()];
                        if words.get(i) == Some(&"reverse") {
                            wargs.push("reverse".into());
                            i += 1;
                        }
                        parse_weight(&wargs, -253, 253).map(|w| weight = w)
                    }
                    "pidfile" => {
                        pidfile = Some(PathBuf::from(val));
                        Ok(())
                    }
                    other => Err(format!(
                        "unknown vrrp_nginx_check keyword '{other}' (expected url, expect, interval, timeout, rise, fall, weight, pidfile)"
                    )),
                };
                if let Err(e) = res {
                    self.err(c, format!("vrrp_nginx_check {name}: {e}"));
                    ok = false;
                }
            }
        }
        let Some(url) = url else {
            self.err(n, format!("vrrp_nginx_check {name} has no 'url'"));
            return None;
        };
        let timeout_us = timeout_us.unwrap_or(interval_us);
        if timeout_us > interval_us {
            self.err(
                n,
                format!(
                    "vrrp_nginx_check {name}: timeout {} is longer than interval {}; checks would overlap",
                    fmt_secs_us(timeout_us),
                    fmt_secs_us(interval_us)
                ),
            );
            ok = false;
        }
        ok.then(|| NginxCheck {
            name,
            url,
            expect,
            interval_ms: interval_us / 1000,
            timeout_ms: timeout_us / 1000,
            rise,
            fall,
            weight,
            pidfile,
            location: n.loc.clone(),
        })
    }

    fn track_file_block(&mut self, n: &Node) -> Option<TrackFile> {
        let name = self.block_name(n)?;
        let mut file = None;
        let mut weight = Weight {
            value: 1,
            reverse: false,
        };
        let mut init_value = None;
        let mut init_overwrite = false;
        for c in self.children(n) {
            match c.kw.as_str() {
                "file" => file = self.value(c).map(PathBuf::from),
                "weight" => {
                    self.no_block(c);
                    if let Some(w) = self.weight(c, &c.args, -254, 254) {
                        weight = w;
                    }
                }
                "init_file" => {
                    self.no_block(c);
                    let mut v = 0i64;
                    for a in &c.args {
                        if a == "overwrite" {
                            init_overwrite = true;
                        } else {
                            match parse_int(a, i64::from(i32::MIN), i64::from(i32::MAX)) {
                                Ok(x) => v = x,
                                Err(e) => self.err(c, format!("init_file: {e}")),
                            }
                        }
                    }
                    init_value = Some(v);
                }
                k => self.err(
                    c,
                    format!(
                        "unknown vrrp_track_file keyword '{k}' (expected file, weight, init_file)"
                    ),
                ),
            }
        }
        let Some(file) = file else {
            self.err(n, format!("vrrp_track_file {name} has no 'file' line"));
            return None;
        };
        Some(TrackFile {
            name,
            file,
            weight,
            init_value,
            init_overwrite,
            location: n.loc.clone(),
        })
    }
}

/// What the instance builder needs to know about the rest of the file.
struct Known<'a> {
    global: &'a GlobalRaw,
    checks: HashSet<String>,
    track_files: HashSet<String>,
}

impl B<'_> {
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

    fn instance(&mut self, n: &Node, k: &Known<'_>) -> Option<VrrpInstance> {
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

impl B<'_> {
    fn sync_group(&mut self, n: &Node, k: &Known<'_>) -> Option<SyncGroup> {
        let name = self.block_name(n)?;
        let mut members = Vec::new();
        let mut notify = NotifyScripts::default();
        let mut track_scripts = Vec::new();
        let mut track_interfaces = Vec::new();
        let mut track_files = Vec::new();
        let mut global_tracking = false;
        let mut ok = true;
        for c in self.children(n) {
            if self.notify(c, &mut notify) {
                continue;
            }
            match c.kw.as_str() {
                "group" => {
                    for m in self.children(c) {
                        self.no_block(m);
                        members.push((m.kw.clone(), m.loc.clone()));
                        for extra in &m.args {
                            members.push((extra.clone(), m.loc.clone()));
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
                // keepalived sets one flag for both (global_tracking is its deprecated name).
                "global_tracking" | "sync_group_tracking_weight" => global_tracking = self.flag(c),
                "smtp_alert" => self.info(c, "haxdp does not send mail; smtp_alert ignored"),
                "notify_priority_changes" => self.warn(
                    c,
                    format!(
                        "vrrp_sync_group keyword '{}' is not supported by haxdp; ignored",
                        c.kw
                    ),
                ),
                k => {
                    self.err(
                        c,
                        format!("unknown vrrp_sync_group keyword '{k}' (expected group, notify*, track_script, track_interface, track_file, sync_group_tracking_weight, global_tracking)"),
                    );
                    ok = false;
                }
            }
        }
        if members.is_empty() {
            self.err(
                n,
                format!("vrrp_sync_group {name} has no 'group {{ ... }}' of instances"),
            );
            return None;
        }
        if members.len() == 1 {
            self.warn(
                n,
                format!("vrrp_sync_group {name} has only one member; a sync group needs two to mean anything (keepalived ignores it too)"),
            );
        }
        ok.then(|| SyncGroup {
            name,
            members: members.into_iter().map(|(m, _)| m).collect(),
            notify,
            track_scripts,
            track_interfaces,
            track_files,
            global_tracking,
            location: n.loc.clone(),
        })
    }
}

/// Shell syntax that keepalived 2.x, which execs scripts without a shell, cannot run.
fn needs_shell(cmd: &str) -> bool {
    let first = cmd.split_whitespace().next().unwrap_or("");
    let runs_shell = matches!(
        first.rsplit('/').next().unwrap_or(first),
        "sh" | "bash" | "dash" | "zsh" | "ksh"
    );
    if runs_shell {
        return false;
    }
    first == "[["
        || first == "["
        || ["&&", "||", ";", "|", ">", "<", "$(", "`"]
            .iter()
            .any(|m| cmd.contains(m))
}

fn check_script_path(b: &mut B<'_>, cmd: &str, at: &Location, kw: &str, security: bool) {
    let Some(first) = cmd.split_whitespace().next() else {
        return;
    };
    if needs_shell(cmd) {
        b.d.warn_at(
            at,
            kw,
            format!("'{cmd}' is shell syntax: haxdp runs it with a shell (bash for [[ ]]), but keepalived 2.x runs scripts without one and silently disables this check; write it as /bin/sh -c '...' if the file must also work under keepalived"),
        );
        return;
    }
    if !first.starts_with('/') {
        return;
    }
    let path = Path::new(first);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            if b.missing_reported.insert(first.to_string()) {
                b.d.warn_at(
                    at,
                    kw,
                    format!("script {first} cannot be read on this machine ({e}); it cannot run until it exists (reported once per path)"),
                );
            }
            return;
        }
    };
    let d = &mut *b.d;
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if meta.is_dir() || mode & 0o111 == 0 {
        let msg = format!("script {first} is not an executable file; chmod +x it");
        if security {
            d.error_at(at, kw, msg);
        } else {
            d.warn_at(at, kw, msg);
        }
        return;
    }
    if !security {
        return;
    }
    // keepalived 2.2.7's script security (lib/notify.c check_security), for the path as
    // written and, when it is a symlink, for what it points to: every component, seen
    // without following symlinks, must be owned by root, and neither a file nor a
    // directory without the sticky bit may be writable by others or by a group other than
    // root's; otherwise a non-root user could swap the script root runs.
    let mut paths = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path) {
        if real != path {
            paths.push(real);
        }
    }
    for full in &paths {
        if let Some(why) = insecure_component(full) {
            d.error_at(
                at,
                kw,
                format!(
                    "{why}, and enable_script_security is on: a non-root user could replace {first} (keepalived disables such a script)"
                ),
            );
            return;
        }
    }
}

/// The first component of `path` that keepalived's check_security refuses, and why.
fn insecure_component(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut components: Vec<&Path> = path.ancestors().collect();
    components.reverse();
    for p in components {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let mode = m.mode();
        let sticky_dir = m.is_dir() && mode & 0o1000 != 0;
        let checked = m.is_file() || (m.is_dir() && !sticky_dir);
        // keepalived runs as root and asks for root; a reader run as another user (tests,
        // check-config by hand) also accepts its own files.
        // SAFETY: geteuid cannot fail.
        if m.uid() != 0 && m.uid() != unsafe { libc::geteuid() } {
            return Some(format!(
                "{} is owned by uid {}, not root; chown root {}",
                p.display(),
                m.uid(),
                p.display()
            ));
        }
        if checked && m.gid() != 0 && mode & 0o020 != 0 {
            return Some(format!(
                "{} is writable by group {}; chmod g-w {}",
                p.display(),
                m.gid(),
                p.display()
            ));
        }
        if checked && mode & 0o002 != 0 {
            return Some(format!(
                "{} is writable by other users; chmod o-w {}",
                p.display(),
                p.display()
            ));
        }
    }
    None
}

pub(crate) fn build(nodes: &[Node], root: &Path, d: &mut Diags) -> Config {
    let mut b = B {
        d,
        missing_reported: HashSet::new(),
    };
    let mut global = GlobalRaw::default();
    for n in nodes.iter().filter(|n| n.kw == "global_defs") {
        b.global_defs(n, &mut global);
    }
    let security = global.g.enable_script_security;
    let mut scripts: Vec<VrrpScript> = Vec::new();
    let mut nginx_checks: Vec<NginxCheck> = Vec::new();
    let mut track_files: Vec<TrackFile> = Vec::new();
    let mut check_names: HashMap<String, Location> = HashMap::new();
    let mut tf_names: HashMap<String, Location> = HashMap::new();
    let dup = |b: &mut B<'_>, names: &mut HashMap<String, Location>, n: &Node| -> bool {
        let Some(name) = n.args.first() else {
            return false;
        };
        if let Some(prev) = names.get(name) {
            b.err(n, format!("'{name}' is already defined at {prev}"));
            return true;
        }
        names.insert(name.clone(), n.loc.clone());
        false
    };
    for n in nodes {
        match n.kw.as_str() {
            "vrrp_script" => {
                if !dup(&mut b, &mut check_names, n) {
                    scripts.extend(b.vrrp_script(n, security));
                } else {
                    b.vrrp_script(n, security);
                }
            }
            "vrrp_nginx_check" => {
                if !dup(&mut b, &mut check_names, n) {
                    nginx_checks.extend(b.nginx_check(n));
                } else {
                    b.nginx_check(n);
                }
            }
            "vrrp_track_file" => {
                if !dup(&mut b, &mut tf_names, n) {
                    track_files.extend(b.track_file_block(n));
                } else {
                    b.track_file_block(n);
                }
            }
            _ => {}
        }
    }
    let known = Known {
        global: &global,
        checks: check_names.keys().cloned().collect(),
        track_files: tf_names.keys().cloned().collect(),
    };
    let mut instances: Vec<VrrpInstance> = Vec::new();
    let mut inst_names: HashMap<String, Location> = HashMap::new();
    let mut sync_groups = Vec::new();
    let mut sync_nodes = Vec::new();
    let mut instance_seen = false;
    for n in nodes {
        let kw = n.kw.as_str();
        match kw {
            "global_defs" | "vrrp_script" | "vrrp_nginx_check" | "vrrp_track_file" => {}
            "vrrp_instance" => {
                instance_seen = true;
                let is_dup = dup(&mut b, &mut inst_names, n);
                if let Some(i) = b.instance(n, &known) {
                    if !is_dup {
                        instances.push(i);
                    }
                }
            }
            "vrrp_sync_group" => sync_nodes.push(n),
            "virtual_server" | "virtual_server_group" | "real_server" => {
                let lines = if n.end_line > n.loc.line {
                    format!("lines {}-{}", n.loc.line, n.end_line)
                } else {
                    format!("line {}", n.loc.line)
                };
                b.warn(
                    n,
                    format!("{kw} {} ({lines}) is IPVS load balancing, which haxdp does not do; skipped", n.args.join(" ")),
                );
            }
            k if MAIL_KEYWORDS.contains(&k) => {
                b.info(n, format!("'{k}' accepted, but haxdp does not send mail"))
            }
            k if k.starts_with('$') => b.err(
                n,
                format!("'{k}' names no parameter defined before this line: define it first with {k}=VALUE (keepalived's parameter substitution)"),
            ),
            k if TOP_UNSUPPORTED.contains(&k) => b.warn(
                n,
                format!("'{k}' is a keepalived feature haxdp does not implement; skipped"),
            ),
            k => b.warn(
                n,
                format!("unknown keyword '{k}'; ignored (keepalived ignores it too)"),
            ),
        }
    }
    for n in sync_nodes {
        sync_groups.extend(b.sync_group(n, &known));
    }
    let d = b.d;

    // Membership: each member exists and belongs to one group.
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for sg in &sync_groups {
        for m in &sg.members {
            if !inst_names.contains_key(m) {
                d.error_at(
                    &sg.location,
                    "vrrp_sync_group",
                    format!(
                        "vrrp_sync_group {} names '{m}', which is no vrrp_instance",
                        sg.name
                    ),
                );
            } else if let Some(prev) = member_of.insert(m, &sg.name) {
                d.error_at(
                    &sg.location,
                    "vrrp_sync_group",
                    format!(
                        "vrrp_instance {m} is in both vrrp_sync_group {prev} and {}",
                        sg.name
                    ),
                );
            }
        }
    }

    // RFC 9568 6.1: a VRID names one virtual router per LAN and family; two instances on
    // the same interface with the same VRID and family would answer each other's adverts.
    let mut seen: HashMap<(String, bool, u8), &VrrpInstance> = HashMap::new();
    for i in &instances {
        let key = (i.interface.clone(), i.is_ipv6(), i.vrid);
        if let Some(prev) = seen.get(&key) {
            d.error_at(
                &i.location,
                "virtual_router_id",
                format!(
                    "{} and {} (at {}) both use VRID {} for {} on {}: give one of them another virtual_router_id",
                    i.name,
                    prev.name,
                    prev.location,
                    i.vrid,
                    if i.is_ipv6() { "IPv6" } else { "IPv4" },
                    i.interface
                ),
            );
        } else {
            seen.insert(key, i);
        }
    }

    let any_script = !scripts.is_empty()
        || instances.iter().any(|i| {
            let n = &i.notify;
            n.notify.is_some()
                || n.master.is_some()
                || n.backup.is_some()
                || n.fault.is_some()
                || n.stop.is_some()
        });
    if any_script && !security {
        let at = scripts
            .first()
            .map(|s| s.location.clone())
            .or_else(|| instances.first().map(|i| i.location.clone()));
        if let Some(at) = at {
            d.info_at(
                &at,
                "enable_script_security",
                "scripts run as root unless script_user or a per-script user is set, and enable_script_security is off (keepalived reports this as a SECURITY VIOLATION); consider enable_script_security and script_user",
            );
        }
    }

    if !instance_seen {
        d.push(
            crate::diag::Severity::Error,
            root,
            0,
            "vrrp_instance",
            "no vrrp_instance in this configuration: nothing for haxdp to run",
        );
    }

    let cfg = Config {
        global: global.g,
        scripts,
        nginx_checks,
        track_files,
        instances,
        sync_groups,
    };
    warn_ignored_sync_weights(&cfg, d);
    cfg
}

/// keepalived (vrrp_complete_instance): members of a sync group without
/// sync_group_tracking_weight track with weight 0, so that a failure faults the whole group
/// instead of lowering one member's priority and splitting the group across nodes. Each
/// weighted item that this silences gets a warning at its line.
fn warn_ignored_sync_weights(cfg: &Config, d: &mut Diags) {
    let weighted = |w: Option<Weight>| w.is_some_and(|w| w.value != 0);
    for sg in cfg.sync_groups.iter().filter(|g| !g.global_tracking) {
        for i in cfg
            .instances
            .iter()
            .filter(|i| sg.members.contains(&i.name))
        {
            let items = i
                .track_scripts
                .iter()
                .filter(|t| weighted(cfg.track_script_weight(t)))
                .chain(
                    i.track_files
                        .iter()
                        .filter(|t| weighted(cfg.track_file_weight(t))),
                )
                .map(|t| (t.name.as_str(), &t.location))
                .chain(
                    i.track_interfaces
                        .iter()
                        .filter(|t| t.weight.value != 0)
                        .map(|t| (t.name.as_str(), &t.location)),
                );
            for (name, at) in items {
                d.warn_at(
                    at,
                    "vrrp_sync_group",
                    format!(
                        "{} is in vrrp_sync_group {}: the weight of '{name}' is ignored and its failure puts the whole group in FAULT, as keepalived does; add sync_group_tracking_weight to {} to keep weights",
                        i.name, sg.name, sg.name
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(parse_seconds_us("1"), Ok(1_000_000));
        assert_eq!(parse_seconds_us("0.01"), Ok(10_000));
        assert_eq!(parse_seconds_us("40.95"), Ok(40_950_000));
        assert_eq!(parse_seconds_us(".5"), Ok(500_000));
        assert!(parse_seconds_us("1.0000001").is_err());
        assert!(parse_seconds_us("-1").is_err());
        assert!(parse_seconds_us("1e3").is_err());
        assert!(parse_seconds_us(".").is_err());
        assert!(parse_seconds_us("99999999999999999999").is_err());
    }

    #[test]
    fn weights() {
        let w = parse_weight(&["-20".into(), "reverse".into()], -253, 253);
        assert_eq!(
            w,
            Ok(Weight {
                value: -20,
                reverse: true
            })
        );
        assert!(parse_weight(&["300".into()], -253, 253).is_err());
        assert!(parse_weight(&["2".into(), "sideways".into()], -253, 253).is_err());
    }

    #[test]
    fn shell_detection() {
        assert!(needs_shell(
            "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0"
        ));
        assert!(!needs_shell("killall -0 nginx"));
        assert!(!needs_shell("/etc/keepalived/chkngx.sh"));
        assert!(!needs_shell("/bin/sh -c 'a && b'"));
    }
}
