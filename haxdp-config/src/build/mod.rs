//! From the statement tree to the typed model, with keepalived's defaults and the semantic
//! checks. Every problem becomes a diagnostic; the caller refuses the config if any is an
//! error.
//!
//! This module holds the walk over the top-level blocks (`build`); each block's reader is
//! in its own file: `global` (`global_defs`), `instance` (`vrrp_instance`), `sync_group`
//! (`vrrp_sync_group`), `script` (`vrrp_script` and the `notify*` commands), `track`
//! (`vrrp_nginx_check`, `vrrp_track_file` and the `track_*` lists), and `value` (the
//! readers of one keyword's value that all of them use).

mod global;
mod instance;
mod script;
mod sync_group;
mod track;
mod value;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::diag::{Diags, Location};
use crate::model::*;
use crate::syntax::Node;
use global::GlobalRaw;
use sync_group::warn_ignored_sync_weights;

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

/// The config builder: turns the statement tree into the model, block by block. Each
/// block's reader is a method on it (in this module's files), and every problem it finds
/// becomes a diagnostic in `d`, at the line of the statement concerned.
struct Builder<'a> {
    /// Where every error, warning and note goes.
    d: &'a mut Diags,
    /// Script paths already reported missing: one warning per path, not per use.
    missing_reported: HashSet<String>,
}
/// What the instance builder needs to know about the rest of the file.
struct Known<'a> {
    global: &'a GlobalRaw,
    checks: HashSet<String>,
    track_files: HashSet<String>,
}
pub(crate) fn build(nodes: &[Node], root: &Path, d: &mut Diags) -> Config {
    let mut b = Builder {
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
    let dup = |b: &mut Builder<'_>, names: &mut HashMap<String, Location>, n: &Node| -> bool {
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
