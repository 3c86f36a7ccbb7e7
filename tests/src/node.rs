//! A `haxdp run` daemon inside a lab namespace, the keepalived.conf the e2e
//! tests give it, and the questions they ask about the VIP.

use std::path::PathBuf;
use std::time::Duration;

use crate::{wait_for, workspace_bin, Netns, Proc, TempDir};

/// The IPv4 VIP of the tests' `VI_1`.
pub const VIP: &str = "192.0.2.100";

/// keepalived's VRRPv2 simple password block, as the seeds write it.
pub const PASS_AUTH: &str = "  authentication {\n    auth_type PASS\n    auth_pass 1111\n  }";

/// How a node receives adverts in a test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rx {
    /// `--no-xdp`: raw sockets only.
    Socket,
    /// The XDP program (the daemon falls back to sockets if it cannot attach;
    /// tests that pick this path check the log for `receive path xdp`).
    Xdp,
}

/// One `VI_1` instance on `eth0`, VRID 51, VIP 192.0.2.100/24; `extra` goes
/// inside the instance block (track_script, notify, authentication).
pub fn haxdp_config(name: &str, prio: u8, version: u8, advert_int: &str, extra: &str) -> String {
    format!(
        "global_defs {{\n  router_id {name}\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {prio}\n  advert_int {advert_int}\n  version {version}\n{extra}\n  \
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    )
}

/// `haxdp run` in a namespace, with its config and state in a scratch directory.
pub struct Node<'a> {
    pub ns: &'a Netns,
    pub dir: TempDir,
    pub proc: Option<Proc>,
    pub conf: PathBuf,
    pub rx: Rx,
    /// The binary `start` runs (the build's `haxdp` unless a test installs another).
    pub bin: PathBuf,
    /// Start in the namespace's network only, in the host's mount namespace (BPF pins
    /// outlive the process, as under systemd); `ip netns exec` otherwise.
    pub net_only: bool,
}

impl<'a> Node<'a> {
    /// Writes `config` and starts the daemon.
    pub fn haxdp(ns: &'a Netns, name: &str, config: &str, rx: Rx) -> Self {
        let dir = TempDir::new(name);
        let conf = dir.file("keepalived.conf", config);
        let mut n = Node {
            ns,
            dir,
            proc: None,
            conf,
            rx,
            bin: workspace_bin("haxdp"),
            net_only: false,
        };
        n.start();
        n
    }

    /// Starts (or restarts) the daemon; each start logs to a new file.
    pub fn start(&mut self) {
        let bin = self.bin.clone();
        let state = self.dir.path.join("state");
        let mut args = vec![
            bin.to_str().expect("utf-8 path").to_string(),
            "run".into(),
            "-f".into(),
            self.conf.to_str().expect("utf-8 path").into(),
            "--state-dir".into(),
            state.to_str().expect("utf-8 path").into(),
            "--log-level".into(),
            "debug".into(),
        ];
        if matches!(self.rx, Rx::Socket) {
            args.push("--no-xdp".into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let n = self.dir.path.read_dir().map(|d| d.count()).unwrap_or(0);
        let log = self.dir.path.join(format!("haxdp-{n}.log"));
        self.proc = Some(if self.net_only {
            self.ns.spawn_net_only(&argv, &log)
        } else {
            self.ns.spawn(&argv, &log)
        });
    }

    pub fn proc(&self) -> &Proc {
        self.proc.as_ref().expect("node is running")
    }

    /// The log of the current (or last) start.
    pub fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.log_text()).unwrap_or_default()
    }
}

/// A real keepalived (VRRP half only, `-P`) in `ns`, in the foreground, running
/// `config` written as `{name}.conf` in `dir`, logging to `{name}.log`.
pub fn keepalived(ns: &Netns, dir: &TempDir, name: &str, config: &str) -> Proc {
    crate::require_program("keepalived", "keepalived");
    let conf = dir.file(&format!("{name}.conf"), config);
    let pid = dir.path.join(format!("{name}.pid"));
    let vpid = dir.path.join(format!("{name}.vrrp.pid"));
    ns.spawn(
        &[
            "keepalived",
            "-f",
            conf.to_str().expect("utf-8 path"),
            "-p",
            pid.to_str().expect("utf-8 path"),
            "-r",
            vpid.to_str().expect("utf-8 path"),
            "-n",
            "-l",
            "-D",
            "-P",
        ],
        &dir.path.join(format!("{name}.log")),
    )
}

/// Whether `ns` has the VIP configured on `eth0`.
pub fn has_vip(ns: &Netns) -> bool {
    let out = ns.try_exec(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
}

/// Waits until the VIP is (or is not) on `ns`; false on timeout.
pub fn wait_vip(ns: &Netns, present: bool, timeout: Duration) -> bool {
    wait_for(timeout, || (has_vip(ns) == present).then_some(())).is_some()
}

/// The MAC `Lan` gives host i.
pub fn mac_of(i: usize) -> String {
    format!("02:00:00:00:01:{:02x}", 10 + i)
}

/// Master_Down_Interval for VRRPv3 (RFC 9568 6.1), seconds:
/// 3 * Advertisement_Interval + Skew_Time.
pub fn mdi_v3(prio: u8, advert_cs: u32) -> f64 {
    3.0 * f64::from(advert_cs) / 100.0 + skew_v3(prio, advert_cs)
}

/// Skew_Time for VRRPv3 (RFC 9568 6.1), seconds:
/// ((256 - priority) * Master_Adver_Interval) / 256.
pub fn skew_v3(prio: u8, advert_cs: u32) -> f64 {
    (256.0 - f64::from(prio)) * f64::from(advert_cs) / 100.0 / 256.0
}
