//! From the validated keepalived.conf model to what the daemon runs: one
//! [`InstanceSpec`] per `vrrp_instance` (state machine settings, VIPs,
//! tracking, notify) and the set of checks to run.
//!
//! Specs compare with `==`: on HUP an instance whose spec is unchanged keeps
//! its running state machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use haxdp_config::{
    Config, Diagnostic, LoadError, NotifyScript, NotifyScripts, RunAs, SyncGroup, TrackInterface,
    TrackRef, VrrpInstance, Weight,
};
use haxdp_vrrp::{Family, InstanceConfig, Version};

use crate::notify::{NotifyCommand, NotifySpec};
use crate::track::command::{ScriptCommand, ScriptUser};
use crate::track::{CheckState, FileInit, FileSpec, ItemKind, NginxCheckSpec, ScriptSpec};

/// Everything the daemon runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSpec {
    pub instances: Vec<InstanceSpec>,
    pub checks: Checks,
    pub notify_fifo: Option<std::path::PathBuf>,
    pub sync_groups: Vec<GroupSpec>,
    /// keepalived's `dynamic_interfaces`: instances wait for a missing interface.
    pub dynamic_interfaces: bool,
}

/// A `vrrp_sync_group`: its members' tracking is in their [`InstanceSpec`]s; what is left
/// is the group's own notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub members: Vec<String>,
    /// Run with `GROUP name STATE 0` appended to the generic script, as keepalived does.
    pub notify: NotifySpec,
}

/// The checks, each run once however many instances track it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    pub scripts: Vec<ScriptSpec>,
    pub files: Vec<FileSpec>,
    pub nginx: Vec<NginxCheckSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VipSpec {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub dev: Option<String>,
    pub label: Option<String>,
    pub scope: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub nodad: bool,
}

/// keepalived's gratuitous ARP timing for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpTiming {
    pub repeat: u32,
    pub interval: Duration,
    pub delay: Duration,
    pub refresh: Option<Duration>,
    pub refresh_repeat: u32,
    /// `garp_lower_prio_repeat`: announcements a master sends when it hears a
    /// lower-priority advert (a second master that should step down); 0 = none.
    /// keepalived 2.2.7 (vrrp_state_master_rx) defaults it to `vrrp_garp_master_repeat`
    /// of global_defs, and to 0 under strict mode (vrrp.c, vrrp_complete_instance).
    pub lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: the same announcements again this long after; zero =
    /// no second burst. Defaults to global_defs' `vrrp_garp_master_delay`, 0 when strict.
    pub lower_prio_delay: Duration,
}

/// One tracked item of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    pub name: String,
    pub kind: ItemKind,
    pub weight: i32,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// State machine settings; `primary_addr` is filled in when the interface
    /// is resolved at start.
    pub core: InstanceConfig,
    pub ifname: String,
    /// Addresses owned as master: the advertised VIPs, then the excluded ones.
    pub vips: Vec<VipSpec>,
    pub unicast_peers: Vec<IpAddr>,
    /// Sources adverts are accepted from, `None` for anyone: the unicast peers under
    /// keepalived's `check_unicast_src`, plus `haxdp_allowed_peers`. The XDP program
    /// drops any other source as `source_not_allowed`
    /// (`KernelRx::set_allowed_sources`), and so does the socket path.
    pub allowed_sources: Option<Vec<IpAddr>>,
    /// Where multicast adverts go: `vrrp_mcast_group4/6`, by default
    /// 224.0.0.18 / ff02::12 (RFC 9568 5.1.1.2, 5.1.2.2).
    pub mcast_group: IpAddr,
    /// `unicast_src_ip` / `mcast_src_ip`; else the interface's primary address.
    pub src_addr: Option<IpAddr>,
    pub garp: GarpTiming,
    pub tracks: Vec<TrackSpec>,
    pub notify: NotifySpec,
    pub sync_group: Option<String>,
    /// keepalived `dont_track_primary`: the instance's own interface going
    /// down does not put it in Fault.
    pub dont_track_primary: bool,
}

impl InstanceSpec {
    /// VRRPv2 auth type for the XDP program: 1 = PASS, 0 = none.
    pub fn auth_type(&self) -> u8 {
        u8::from(self.core.auth_pass.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Invalid(String),
}

impl SpecError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SpecError::Load(e) => e.exit_code(),
            SpecError::Invalid(_) => 1,
        }
    }

    /// Every diagnostic, one per line, for the log.
    pub fn render(&self) -> String {
        match self {
            SpecError::Load(LoadError::Invalid { path, diagnostics }) => {
                let mut s = format!("{} is invalid; nothing applied:", path.display());
                for d in diagnostics {
                    s.push_str(&format!("\n  {d}"));
                }
                s
            }
            other => other.to_string(),
        }
    }
}

/// Loads and maps a keepalived.conf. Warnings come back with the spec.
pub fn load(path: &Path) -> Result<(DaemonSpec, Vec<Diagnostic>), SpecError> {
    let loaded = haxdp_config::load(path)?;
    let spec = from_config(&loaded.config)?;
    Ok((spec, loaded.diagnostics))
}

fn scope_value(s: Option<&str>) -> u8 {
    // rtnetlink scope numbers (rtnetlink(7)); the config crate validated the name.
    match s {
        None | Some("global") | Some("universe") => 0,
        Some("site") => 200,
        Some("link") => 253,
        Some("host") => 254,
        Some("nowhere") => 255,
        Some(n) => n.parse().unwrap_or(0),
    }
}

/// `USER [GROUP]`, as [`ScriptUser::lookup`] reads it.
fn run_as_string(u: &RunAs) -> String {
    match &u.group {
        Some(g) => format!("{} {g}", u.user),
        None => u.user.clone(),
    }
}

/// A notify line with its user resolved now, so that a config naming a user this machine
/// does not have is refused at load (and on reload) with the line, instead of the script
/// being skipped at the first transition as keepalived does.
fn notify_command(
    cfg: &Config,
    line: &Option<NotifyScript>,
) -> Result<Option<NotifyCommand>, SpecError> {
    let Some(line) = line else { return Ok(None) };
    if let Err(e) = ScriptCommand::parse(&line.command) {
        return Err(SpecError::Invalid(format!(
            "{}: notify script '{}': {e}",
            line.location, line.command
        )));
    }
    let user = line
        .run_as
        .as_ref()
        .or(default_script_user(cfg).as_ref())
        .map(run_as_string);
    // Resolved here, once, on the thread that loads the configuration: a transition
    // never looks a user up (NSS may block for seconds).
    let mut run_as = None;
    if let Some(u) = &user {
        match ScriptUser::lookup(u) {
            Ok(r) => run_as = Some(r),
            Err(e) => {
                let hint = if line.run_as.is_some() {
                    " (the words after the command are the user and group to run it as; to pass them as arguments, quote the command with them)"
                } else {
                    ""
                };
                return Err(SpecError::Invalid(format!(
                    "{}: notify script '{}' cannot run as '{u}': {e}{hint}",
                    line.location, line.command
                )));
            }
        }
    }
    Ok(Some(NotifyCommand {
        command: line.command.clone(),
        user,
        run_as,
    }))
}

pub fn from_config(cfg: &Config) -> Result<DaemonSpec, SpecError> {
    check_default_script_user(cfg)?;
    let mut checks = Checks::default();
    for s in &cfg.scripts {
        let mut sp = ScriptSpec::new(&s.name, &s.script);
        sp.interval = Duration::from_millis(s.interval_ms);
        sp.timeout = Duration::from_millis(s.timeout_ms);
        sp.weight = s.weight.value;
        sp.weight_reverse = s.weight.reverse;
        sp.rise = s.rise;
        sp.fall = s.fall;
        sp.user = s
            .user
            .as_ref()
            .or(default_script_user(cfg).as_ref())
            .map(run_as_string);
        sp.init_fail = s.init_fail;
        checks.scripts.push(sp);
    }
    for n in &cfg.nginx_checks {
        let mut sp = NginxCheckSpec::new(&n.name, &n.url);
        sp.expect_status = n.expect;
        sp.interval = Duration::from_millis(n.interval_ms);
        sp.timeout = Duration::from_millis(n.timeout_ms);
        sp.rise = n.rise;
        sp.fall = n.fall;
        sp.weight = n.weight.value;
        sp.pidfile = n.pidfile.clone();
        checks.nginx.push(sp);
    }
    for f in &cfg.track_files {
        let mut sp = FileSpec::new(&f.name, &f.file);
        sp.weight = f.weight.value;
        sp.init_file = f.init_value.map(|value| FileInit {
            value,
            overwrite: f.init_overwrite,
        });
        checks.files.push(sp);
    }

    let mut instances = Vec::new();
    for inst in &cfg.instances {
        let group = cfg
            .sync_groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == &inst.name));
        instances.push(instance_spec(cfg, inst, group)?);
    }
    let mut sync_groups = Vec::new();
    for g in &cfg.sync_groups {
        sync_groups.push(GroupSpec {
            name: g.name.clone(),
            members: g.members.clone(),
            notify: notify_spec(cfg, &g.notify)?,
        });
    }
    Ok(DaemonSpec {
        instances,
        checks,
        notify_fifo: cfg.global.notify_fifo.clone(),
        sync_groups,
        dynamic_interfaces: cfg.global.dynamic_interfaces,
    })
}

fn notify_spec(cfg: &Config, n: &NotifyScripts) -> Result<NotifySpec, SpecError> {
    Ok(NotifySpec {
        notify_master: notify_command(cfg, &n.master)?,
        notify_backup: notify_command(cfg, &n.backup)?,
        notify_fault: notify_command(cfg, &n.fault)?,
        notify_stop: notify_command(cfg, &n.stop)?,
        notify: notify_command(cfg, &n.notify)?,
        timeout: Duration::ZERO,
    })
}

/// The tracked items of an instance or a sync group, with their weights resolved.
fn tracks_of(
    cfg: &Config,
    scripts: &[TrackRef],
    files: &[TrackRef],
    interfaces: &[TrackInterface],
) -> Result<Vec<TrackSpec>, SpecError> {
    let mut tracks = Vec::new();
    for t in scripts {
        let Some(Weight { value, reverse }) = cfg.track_script_weight(t) else {
            return Err(SpecError::Invalid(format!(
                "{}: track_script {} names no vrrp_script or vrrp_nginx_check",
                t.location, t.name
            )));
        };
        let kind = if cfg.script(&t.name).is_some() {
            ItemKind::Script
        } else {
            ItemKind::Nginx
        };
        tracks.push(TrackSpec {
            name: t.name.clone(),
            kind,
            weight: value,
            reverse,
        });
    }
    for t in files {
        let Some(Weight { value, reverse }) = cfg.track_file_weight(t) else {
            return Err(SpecError::Invalid(format!(
                "{}: track_file {} names no vrrp_track_file",
                t.location, t.name
            )));
        };
        tracks.push(TrackSpec {
            name: t.name.clone(),
            kind: ItemKind::File,
            weight: value,
            reverse,
        });
    }
    for t in interfaces {
        tracks.push(TrackSpec {
            name: t.name.clone(),
            kind: ItemKind::Interface,
            weight: t.weight.value,
            reverse: t.weight.reverse,
        });
    }
    Ok(tracks)
}

fn instance_spec(
    cfg: &Config,
    inst: &VrrpInstance,
    group: Option<&SyncGroup>,
) -> Result<InstanceSpec, SpecError> {
    let v6 = inst.is_ipv6();
    let family = if v6 { Family::V6 } else { Family::V4 };
    let version = if inst.version == 3 {
        Version::V3
    } else {
        Version::V2
    };
    let mut tracks = tracks_of(
        cfg,
        &inst.track_scripts,
        &inst.track_files,
        &inst.track_interfaces,
    )?;
    if let Some(g) = group {
        // keepalived (vrrp_complete_instance): without sync_group_tracking_weight a member
        // tracks with weight 0, so any failure faults it and with it the whole group; a
        // lowered priority on one member would split the group across the two nodes.
        if !g.global_tracking {
            for t in &mut tracks {
                t.weight = 0;
            }
        }
        // The group's own tracking applies to every member (keepalived.conf(5)).
        tracks.extend(tracks_of(
            cfg,
            &g.track_scripts,
            &g.track_files,
            &g.track_interfaces,
        )?);
    }
    let sync_group = group.map(|g| g.name.clone());
    let to_spec = |v: &haxdp_config::VirtualIp| VipSpec {
        addr: v.address,
        prefix_len: v.prefix_len,
        dev: if v.dev == inst.interface {
            None
        } else {
            Some(v.dev.clone())
        },
        label: v.label.clone(),
        scope: scope_value(v.scope.as_deref()),
        broadcast: v.brd,
        nodad: v.nodad,
    };
    let vips: Vec<VipSpec> = inst.vips.iter().map(to_spec).collect();
    // `virtual_ipaddress_excluded`: owned like the VIPs (added as master,
    // removed otherwise) but not listed in the adverts, as keepalived does.
    let excluded: Vec<VipSpec> = inst.excluded_vips.iter().map(to_spec).collect();
    let placeholder = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let owner = inst.priority == 255;
    let core = InstanceConfig {
        name: inst.name.clone(),
        vrid: inst.vrid,
        version,
        family,
        priority: inst.priority,
        advert_int_cs: inst.advert_int_cs,
        preempt: !inst.nopreempt,
        preempt_delay_cs: inst.preempt_delay_ms / 10,
        accept: inst.accept,
        vips: vips.iter().map(|v| v.addr).collect(),
        primary_addr: placeholder,
        auth_pass: inst.auth.map(|a| a.bytes),
        start_as_master: inst.state == Some(haxdp_config::StateHint::Master),
        higher_prio_send_advert: inst.higher_prio_send_advert,
        address_owner: owner,
    };
    let g = &inst.garp;
    let mut vips = vips;
    vips.extend(excluded);
    Ok(InstanceSpec {
        core,
        ifname: inst.interface.clone(),
        vips,
        unicast_peers: inst.unicast_peers.clone(),
        allowed_sources: inst.allowed_sources(),
        mcast_group: if v6 {
            IpAddr::V6(cfg.global.mcast_group6)
        } else {
            IpAddr::V4(cfg.global.mcast_group4)
        },
        src_addr: inst.unicast_src_ip.or(inst.mcast_src_ip),
        garp: GarpTiming {
            repeat: g.master_repeat.max(1),
            interval: Duration::from_micros(if v6 { g.na_interval_us } else { g.interval_us }),
            delay: Duration::from_secs(u64::from(g.master_delay_s)),
            refresh: (g.master_refresh_s > 0)
                .then(|| Duration::from_secs(u64::from(g.master_refresh_s))),
            refresh_repeat: g.master_refresh_repeat.max(1),
            // keepalived's fallbacks are global_defs' repeat and delay, not the
            // instance's garp_master_* (vrrp_complete_init, vrrp_complete_instance).
            lower_prio_repeat: if inst.strict {
                0
            } else {
                g.lower_prio_repeat.unwrap_or(cfg.global.garp.master_repeat)
            },
            lower_prio_delay: if inst.strict {
                Duration::ZERO
            } else {
                Duration::from_secs(u64::from(
                    g.lower_prio_delay_s
                        .unwrap_or(cfg.global.garp.master_delay_s),
                ))
            },
        },
        tracks,
        notify: notify_spec(cfg, &inst.notify)?,
        sync_group,
        dont_track_primary: inst.dont_track_primary,
    })
}

/// The initial state of a tracked item before its first result.
pub fn initial_state(t: &TrackSpec) -> CheckState {
    match t.kind {
        ItemKind::Interface => CheckState::Up,
        _ => CheckState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(text: &str) -> DaemonSpec {
        let loaded = haxdp_config::parse_bytes(
            Path::new("test.conf"),
            text.as_bytes(),
            &haxdp_config::ReadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("config refused: {e:?}"));
        from_config(&loaded.config).unwrap_or_else(|e| panic!("spec: {e}"))
    }

    #[test]
    fn excluded_vips_are_owned_but_not_advertised() {
        let s = spec_of(
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n \
             virtual_ipaddress {\n  192.0.2.100/24\n }\n virtual_ipaddress_excluded {\n  \
             2001:db8::100/64\n }\n}\n",
        );
        let i = &s.instances[0];
        let owned: Vec<String> = i.vips.iter().map(|v| v.addr.to_string()).collect();
        assert_eq!(owned, ["192.0.2.100", "2001:db8::100"]);
        let advertised: Vec<String> = i.core.vips.iter().map(|a| a.to_string()).collect();
        assert_eq!(advertised, ["192.0.2.100"]);
    }

    /// keepalived 2.2.7: garp_lower_prio_repeat / _delay default to global_defs'
    /// vrrp_garp_master_repeat / _delay (not the instance's), and to 0 in strict mode.
    #[test]
    fn garp_lower_prio_defaults_as_keepalived() {
        let inst = |id: u8, extra: &str| {
            format!(
                "vrrp_instance VI_{id} {{\n interface eth0\n virtual_router_id {id}\n priority 100\n \
                 garp_master_repeat 2\n {extra}\n virtual_ipaddress {{\n  192.0.2.{id}/24\n }}\n}}\n"
            )
        };
        let s = spec_of(&format!(
            "global_defs {{\n vrrp_garp_master_repeat 7\n vrrp_garp_master_delay 3\n}}\n{}{}{}",
            inst(1, ""),
            inst(2, "garp_lower_prio_repeat 4\n garp_lower_prio_delay 0"),
            inst(3, "strict_mode on"),
        ));
        let g: Vec<(u32, u64)> = s
            .instances
            .iter()
            .map(|i| (i.garp.lower_prio_repeat, i.garp.lower_prio_delay.as_secs()))
            .collect();
        assert_eq!(g, [(7, 3), (4, 0), (0, 0)]);
    }

    #[test]
    fn weights_come_from_the_check_unless_the_instance_overrides_them() {
        let s = spec_of(
            "vrrp_script chk {\n script \"/bin/true\"\n weight -20\n}\n\
             vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n \
             track_script {\n  chk\n }\n virtual_ipaddress {\n  192.0.2.100/24\n }\n}\n\
             vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n priority 100\n \
             track_script {\n  chk weight -5\n }\n virtual_ipaddress {\n  192.0.2.101/24\n }\n}\n",
        );
        assert_eq!(s.instances[0].tracks[0].weight, -20);
        assert_eq!(s.instances[1].tracks[0].weight, -5);
        assert_eq!(
            s.checks.scripts.len(),
            1,
            "one script run for both instances"
        );
    }

    fn spec_result(text: &str) -> Result<DaemonSpec, SpecError> {
        let loaded = haxdp_config::parse_bytes(
            Path::new("test.conf"),
            text.as_bytes(),
            &haxdp_config::ReadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("config refused: {e:?}"));
        from_config(&loaded.config)
    }

    fn with_notify(line: &str) -> String {
        format!(
            "global_defs {{\n script_user nobody\n}}\n\
             vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n priority 100\n \
             {line}\n notify /bin/true\n virtual_ipaddress {{\n  192.0.2.100/24\n }}\n}}\n"
        )
    }

    #[test]
    fn notify_scripts_run_as_their_own_user_else_script_user() {
        let s = spec_of(&with_notify("notify_master \"/bin/echo master\" root root"));
        let n = &s.instances[0].notify;
        let master = n.notify_master.as_ref().expect("notify_master");
        assert_eq!(master.command, "/bin/echo master");
        assert_eq!(master.user.as_deref(), Some("root root"));
        let generic = n.notify.as_ref().expect("notify");
        assert_eq!(generic.user.as_deref(), Some("nobody"));
    }

    #[test]
    fn a_notify_user_that_does_not_exist_is_refused_with_its_line() {
        // Unquoted, keepalived reads `master` as the user: no such user here.
        let e = spec_result(&with_notify("notify_master /bin/echo master"))
            .expect_err("no user 'master' on this machine");
        let msg = e.to_string();
        assert!(msg.starts_with("test.conf:8:"), "{msg}");
        assert!(msg.contains("cannot run as 'master'"), "{msg}");
        assert!(msg.contains("quote the command"), "{msg}");
    }

    fn grouped(group_extra: &str) -> DaemonSpec {
        spec_of(&format!(
            "vrrp_script chk {{\n script \"/bin/true\"\n weight -20\n}}\n\
             vrrp_script gchk {{\n script \"/bin/true\"\n weight -5\n}}\n\
             vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n track_script {{\n  gchk\n }}\n \
             notify_master \"/bin/echo group master\"\n{group_extra}}}\n\
             vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n priority 100\n \
             track_script {{\n  chk\n }}\n track_interface {{\n  eth1 weight -10\n }}\n \
             virtual_ipaddress {{\n  192.0.2.100/24\n }}\n}}\n\
             vrrp_instance VI_2 {{\n interface eth0\n virtual_router_id 52\n priority 100\n \
             virtual_ipaddress {{\n  192.0.2.101/24\n }}\n}}\n"
        ))
    }

    fn weights(s: &DaemonSpec, i: usize) -> Vec<(String, i32)> {
        s.instances[i]
            .tracks
            .iter()
            .map(|t| (t.name.clone(), t.weight))
            .collect()
    }

    #[test]
    fn sync_group_members_track_unweighted_plus_the_groups_items() {
        let s = grouped("");
        // keepalived: member weights become 0 (a failure faults the group); the group's
        // own items apply to every member with their weights.
        assert_eq!(
            weights(&s, 0),
            [("chk".into(), 0), ("eth1".into(), 0), ("gchk".into(), -5)]
        );
        assert_eq!(weights(&s, 1), [("gchk".to_string(), -5)]);
        assert_eq!(s.sync_groups.len(), 1);
        assert_eq!(s.sync_groups[0].members, ["VI_1", "VI_2"]);
        assert_eq!(
            s.sync_groups[0]
                .notify
                .notify_master
                .as_ref()
                .map(|c| c.command.as_str()),
            Some("/bin/echo group master")
        );
    }

    #[test]
    fn sync_group_tracking_weight_keeps_member_weights() {
        let s = grouped(" sync_group_tracking_weight\n");
        assert_eq!(
            weights(&s, 0),
            [
                ("chk".into(), -20),
                ("eth1".into(), -10),
                ("gchk".into(), -5)
            ]
        );
    }
}

/// The user a script runs as when neither its line nor `global_defs script_user` names one,
/// as keepalived 2.2.7 chooses it (lib/notify.c get_default_script_user): `keepalived_script`
/// if that user exists, else the daemon's own user (root).
const KEEPALIVED_SCRIPT_USER: &str = "keepalived_script";

fn user_exists(name: &str) -> bool {
    ScriptUser::lookup(name).is_ok()
}

/// `script_user`, else keepalived's default ([`KEEPALIVED_SCRIPT_USER`] when it exists).
pub fn default_script_user(cfg: &Config) -> Option<RunAs> {
    default_script_user_with(cfg.global.script_user.as_ref(), user_exists)
}

fn default_script_user_with(
    configured: Option<&RunAs>,
    exists: impl Fn(&str) -> bool,
) -> Option<RunAs> {
    configured.cloned().or_else(|| {
        exists(KEEPALIVED_SCRIPT_USER).then(|| RunAs {
            user: KEEPALIVED_SCRIPT_USER.into(),
            group: None,
        })
    })
}

/// keepalived refuses to run scripts as root by default under `enable_script_security`
/// ("Unable to set default user keepalived_script for script"): the same, at load, when a
/// script or notify line has no user of its own.
fn check_default_script_user(cfg: &Config) -> Result<(), SpecError> {
    check_default_script_user_with(cfg, user_exists)
}

fn check_default_script_user_with(
    cfg: &Config,
    exists: impl Fn(&str) -> bool,
) -> Result<(), SpecError> {
    if !cfg.global.enable_script_security
        || default_script_user_with(cfg.global.script_user.as_ref(), &exists).is_some()
    {
        return Ok(());
    }
    let notify_lines = |n: &haxdp_config::NotifyScripts| {
        [&n.notify, &n.master, &n.backup, &n.fault, &n.stop]
            .into_iter()
            .flatten()
            .filter(|l| l.run_as.is_none())
            .map(|l| l.location.clone())
            .collect::<Vec<_>>()
    };
    let first = cfg
        .scripts
        .iter()
        .filter(|s| s.user.is_none())
        .map(|s| s.location.clone())
        .chain(cfg.instances.iter().flat_map(|i| notify_lines(&i.notify)))
        .chain(cfg.sync_groups.iter().flat_map(|g| notify_lines(&g.notify)))
        .next();
    match first {
        None => Ok(()),
        Some(at) => Err(SpecError::Invalid(format!(
            "{at}: enable_script_security is on and this script has no user: keepalived then runs \
             scripts as {KEEPALIVED_SCRIPT_USER}, which does not exist here (keepalived refuses: \
             \"Unable to set default user {KEEPALIVED_SCRIPT_USER} for script\"); create it \
             (useradd -r -s /usr/sbin/nologin {KEEPALIVED_SCRIPT_USER}) or set global_defs script_user"
        ))),
    }
}

#[cfg(test)]
mod default_script_user_tests {
    use super::*;

    #[test]
    fn keepalived_script_when_it_exists_else_root() {
        let named = RunAs {
            user: "nginx".into(),
            group: None,
        };
        assert_eq!(
            default_script_user_with(Some(&named), |_| true),
            Some(named.clone())
        );
        assert_eq!(
            default_script_user_with(None, |u| u == KEEPALIVED_SCRIPT_USER).map(|r| r.user),
            Some(KEEPALIVED_SCRIPT_USER.to_string())
        );
        assert_eq!(default_script_user_with(None, |_| false), None);
    }

    #[test]
    fn script_security_without_a_script_user_is_refused() {
        let text = "global_defs {\n enable_script_security\n}\n\
                    vrrp_script chk {\n script /bin/true\n}\n\
                    vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n \
                    priority 100\n advert_int 1\n track_script {\n  chk\n }\n \
                    virtual_ipaddress {\n  192.0.2.100/24\n }\n}\n";
        let loaded = haxdp_config::parse_bytes(
            std::path::Path::new("k.conf"),
            text.as_bytes(),
            &haxdp_config::ReadOptions::default(),
        )
        .expect("parses");
        let e = check_default_script_user_with(&loaded.config, |_| false)
            .expect_err("no keepalived_script and no script_user accepted");
        assert!(e.to_string().contains("keepalived_script"), "{e}");
        assert!(check_default_script_user_with(&loaded.config, |_| true).is_ok());
    }
}
