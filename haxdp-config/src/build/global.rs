//! `global_defs`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::value::parse_seconds_us;
use super::{Builder, MAIL_KEYWORDS};
use crate::diag::Location;
use crate::model::*;
use crate::syntax::Node;

#[derive(Default)]
pub(super) struct GlobalRaw {
    pub(super) g: GlobalDefs,
    pub(super) version_loc: Option<Location>,
    pub(super) strict_loc: Option<Location>,
}

impl Builder<'_> {
    pub(super) fn global_defs(&mut self, n: &Node, out: &mut GlobalRaw) {
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
}
