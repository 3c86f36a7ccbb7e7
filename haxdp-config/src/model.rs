//! The typed, validated configuration. Every value here has been range-checked and has had
//! keepalived's defaults applied; the daemon uses it as it is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::diag::Location;

pub(crate) fn ser_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

fn ser_path_opt<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_some(&p.to_string_lossy()),
        None => s.serialize_none(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub global: GlobalDefs,
    pub scripts: Vec<VrrpScript>,
    pub nginx_checks: Vec<NginxCheck>,
    pub track_files: Vec<TrackFile>,
    pub instances: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
}

impl Config {
    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.scripts.iter().find(|s| s.name == name)
    }
    pub fn nginx_check(&self, name: &str) -> Option<&NginxCheck> {
        self.nginx_checks.iter().find(|s| s.name == name)
    }
    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|s| s.name == name)
    }
    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.instances.iter().find(|s| s.name == name)
    }
    /// The weight a `track_script` reference applies: its own, else its vrrp_script's or
    /// vrrp_nginx_check's. `None` when it names neither.
    pub fn track_script_weight(&self, t: &TrackRef) -> Option<Weight> {
        let default = match self.script(&t.name) {
            Some(s) => s.weight,
            None => self.nginx_check(&t.name)?.weight,
        };
        Some(t.weight.unwrap_or(default))
    }
    /// The weight a `track_file` reference applies: its own, else its vrrp_track_file's.
    pub fn track_file_weight(&self, t: &TrackRef) -> Option<Weight> {
        Some(t.weight.unwrap_or(self.track_file(&t.name)?.weight))
    }
}

/// Gratuitous ARP / unsolicited NA timing, resolved per instance against `global_defs`
/// (keepalived's defaults: delay 5 s, repeat 5, no refresh, refresh repeat 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GarpSettings {
    /// Seconds after becoming MASTER before the second burst of GARPs.
    pub master_delay_s: u32,
    /// GARPs per burst on becoming MASTER.
    pub master_repeat: u32,
    /// Seconds between periodic GARP refreshes while MASTER; 0 = no refresh.
    pub master_refresh_s: u32,
    /// GARPs per refresh.
    pub master_refresh_repeat: u32,
    /// Seconds after a lower-priority advert is seen before re-sending GARPs; `None` = off.
    pub lower_prio_delay_s: Option<u32>,
    /// GARPs sent on seeing a lower-priority advert; `None` = off.
    pub lower_prio_repeat: Option<u32>,
    /// Spacing between gratuitous ARPs on one interface, microseconds; 0 = no spacing.
    pub interval_us: u64,
    /// Spacing between unsolicited neighbour advertisements, microseconds; 0 = no spacing.
    pub na_interval_us: u64,
}

impl Default for GarpSettings {
    fn default() -> Self {
        GarpSettings {
            master_delay_s: 5,
            master_repeat: 5,
            master_refresh_s: 0,
            master_refresh_repeat: 1,
            lower_prio_delay_s: None,
            lower_prio_repeat: None,
            interval_us: 0,
            na_interval_us: 0,
        }
    }
}

/// A user (and optional group) a script runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunAs {
    pub user: String,
    pub group: Option<String>,
}

/// `global_defs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    /// `vrrp_version` as written; instances carry the resolved version.
    pub vrrp_version: Option<u8>,
    pub garp: GarpSettings,
    pub mcast_group4: Ipv4Addr,
    pub mcast_group6: Ipv6Addr,
    pub enable_script_security: bool,
    pub script_user: Option<RunAs>,
    pub vrrp_strict: bool,
    pub vrrp_skip_check_adv_addr: bool,
    pub vrrp_higher_prio_send_advert: bool,
    /// `vrrp_check_unicast_src`: every instance with unicast peers accepts adverts
    /// only from them (keepalived 2.2.7 global_parser.c; vrrp.c vrrp_check_packet).
    pub vrrp_check_unicast_src: bool,
    /// `dynamic_interfaces`: an instance whose interface does not exist yet waits for it
    /// instead of refusing the configuration (keepalived 2.x).
    pub dynamic_interfaces: bool,
    /// `notify_fifo` / `vrrp_notify_fifo` (the latter wins for VRRP events).
    #[serde(serialize_with = "ser_path_opt")]
    pub notify_fifo: Option<PathBuf>,
    pub location: Option<Location>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            vrrp_version: None,
            garp: GarpSettings::default(),
            // RFC 9568 5.1.1.2 / 5.1.2.2: the VRRP multicast groups.
            mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            enable_script_security: false,
            script_user: None,
            vrrp_strict: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_higher_prio_send_advert: false,
            vrrp_check_unicast_src: false,
            dynamic_interfaces: false,
            notify_fifo: None,
            location: None,
        }
    }
}

/// A priority weight as in keepalived: while the check fails (or, with `reverse`, while it
/// succeeds) the weight is added to the priority; weight 0 means "failure = FAULT state".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Weight {
    pub value: i32,
    pub reverse: bool,
}

/// `vrrp_script NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    /// The command exactly as written (quotes removed), shell syntax included.
    pub script: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub weight: Weight,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<RunAs>,
    /// Start in the failed state until the first run succeeds (`init_fail`).
    pub init_fail: bool,
    pub location: Location,
}

/// `vrrp_nginx_check NAME { ... }`: haxdp's native HTTP check of a local nginx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NginxCheck {
    pub name: String,
    /// `http://HOST[:PORT]/PATH`; only plain HTTP (the check talks to the local nginx).
    pub url: String,
    /// Expected HTTP status code.
    pub expect: u16,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub rise: u32,
    pub fall: u32,
    pub weight: Weight,
    /// If set, the check first verifies that the pid in this file is alive.
    #[serde(serialize_with = "ser_path_opt")]
    pub pidfile: Option<PathBuf>,
    pub location: Location,
}

/// `vrrp_track_file NAME { file PATH weight N [reverse] init_file [VALUE] [overwrite] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackFile {
    pub name: String,
    #[serde(serialize_with = "ser_path")]
    pub file: PathBuf,
    pub weight: Weight,
    /// `init_file [VALUE]`: create the file with VALUE (default 0) at start-up if missing.
    pub init_value: Option<i64>,
    /// `init_file ... overwrite`: write the value even if the file exists.
    pub init_overwrite: bool,
    pub location: Location,
}

/// The `state` keyword: only a start-up hint; the election decides (RFC 9568 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StateHint {
    Master,
    Backup,
}

/// `authentication { auth_type PASS auth_pass X }`: VRRPv2 simple text password
/// (RFC 2338 5.3.6), the first 8 bytes, zero padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuthPass {
    pub bytes: [u8; 8],
}

/// One address of `virtual_ipaddress` / `virtual_ipaddress_excluded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualIp {
    pub address: IpAddr,
    /// keepalived's default is a host route: /32 or /128.
    pub prefix_len: u8,
    /// The device, resolved to the instance's interface when not given.
    pub dev: String,
    pub label: Option<String>,
    /// `scope` as written (`global`, `host`, `link`, `site`, `nowhere` or a number).
    pub scope: Option<String>,
    pub brd: Option<Ipv4Addr>,
    /// `no_track`: the VIP's interface going down does not fault the instance.
    pub no_track: bool,
    /// `-nodad`: add the IPv6 address without duplicate address detection.
    pub nodad: bool,
    pub location: Location,
}

/// A tracked script or nginx check, by name, with an optional weight override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackRef {
    pub name: String,
    pub weight: Option<Weight>,
    pub location: Location,
}

/// `track_interface { IF [weight N [reverse]] }` (default weight 0: down = FAULT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackInterface {
    pub name: String,
    pub weight: Weight,
    pub location: Location,
}

/// One notify line, keepalived 2.x's `notify_master COMMAND [USER [GROUP]]`: the command is
/// one word (quoted when it has arguments), the words after it are the user and group to
/// run it as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyScript {
    pub command: String,
    /// `USER [GROUP]` written after the command; `None`: `global_defs script_user`.
    pub run_as: Option<RunAs>,
    pub location: Location,
}

/// Notify scripts, commands kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifyScripts {
    pub notify: Option<NotifyScript>,
    pub master: Option<NotifyScript>,
    pub backup: Option<NotifyScript>,
    pub fault: Option<NotifyScript>,
    pub stop: Option<NotifyScript>,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub state: Option<StateHint>,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds (RFC 9568 5.2.7 counts centiseconds).
    pub advert_int_cs: u16,
    /// 2 or 3, resolved: instance `version` > `global_defs vrrp_version` > 2.
    pub version: u8,
    pub nopreempt: bool,
    /// `preempt_delay`, milliseconds.
    pub preempt_delay_ms: u32,
    pub auth: Option<AuthPass>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived's `check_unicast_src` (or `global_defs vrrp_check_unicast_src`, or a
    /// `unicast_peer` with `min_ttl`/`max_ttl`, which keepalived 2.2.7 says turns it
    /// on): with unicast peers, adverts are accepted only from them.
    pub check_unicast_src: bool,
    /// haxdp's `haxdp_allowed_peers { ADDR ... }`: adverts are accepted only from these
    /// sources (for multicast setups; off when absent).
    pub allowed_peers: Option<Vec<IpAddr>>,
    pub mcast_src_ip: Option<IpAddr>,
    pub vips: Vec<VirtualIp>,
    pub excluded_vips: Vec<VirtualIp>,
    pub track_scripts: Vec<TrackRef>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_files: Vec<TrackRef>,
    pub notify: NotifyScripts,
    #[serde(serialize_with = "ser_path_opt")]
    pub notify_fifo: Option<PathBuf>,
    /// Accept packets to the VIPs when not the address owner (RFC 9568 6.1 Accept_Mode),
    /// resolved: `accept`/`no_accept`, else off under `vrrp_strict`, else on.
    pub accept: bool,
    pub garp: GarpSettings,
    pub dont_track_primary: bool,
    /// Strict RFC behaviour (`vrrp_strict` or the instance's `strict_mode`).
    pub strict: bool,
    pub skip_check_adv_addr: bool,
    pub higher_prio_send_advert: bool,
    pub location: Location,
}

impl VrrpInstance {
    /// The address family of the advertised addresses (all VIPs share one; checked).
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.address.is_ipv6())
    }

    /// The sources this instance accepts adverts from, `None` for anyone: the unicast
    /// peers under `check_unicast_src` (as keepalived, only when there are unicast
    /// peers), together with `haxdp_allowed_peers`.
    pub fn allowed_sources(&self) -> Option<Vec<IpAddr>> {
        let unicast = (self.check_unicast_src && !self.unicast_peers.is_empty())
            .then(|| self.unicast_peers.clone());
        match (unicast, &self.allowed_peers) {
            (None, None) => None,
            (u, a) => {
                let mut all = u.unwrap_or_default();
                for x in a.iter().flatten() {
                    if !all.contains(x) {
                        all.push(*x);
                    }
                }
                Some(all)
            }
        }
    }
}

/// `vrrp_sync_group NAME { group { ... } ... }`: members change state together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    pub notify: NotifyScripts,
    pub track_scripts: Vec<TrackRef>,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_files: Vec<TrackRef>,
    /// `global_tracking`: members' own tracking applies to the whole group.
    pub global_tracking: bool,
    pub location: Location,
}
