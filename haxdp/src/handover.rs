//! Planned restart and upgrade without moving a VIP (`haxdp upgrade`).
//!
//! keepalived has no such path: its restart sends priority 0 and fails over (and back,
//! with preemption). haxdp's running daemon instead starts its successor itself, as a
//! child in the same service (systemd's cgroup, the same `NOTIFY_SOCKET`), from the
//! binary now on disk, with the same command line, and hands it everything over one
//! unix socket pair (fd 3 in the successor, `--handover-fd 3`):
//!
//! 1. successor → `Hello`: it has read and checked the configuration (a bad file is
//!    refused here: the running daemon goes on).
//! 2. running → `Go`: it has pinned its XDP links next to its maps
//!    (`/sys/fs/bpf/haxdp/<netns>/link-IFNAME`) and keeps advertising.
//! 3. successor: loads its XDP program on the running daemon's pinned maps after
//!    comparing their layout with its own (another layout is refused with a message,
//!    the running daemon goes on), replaces the program on each pinned link atomically
//!    (`BPF_LINK_UPDATE`: the NIC is never without a program, and both programs write
//!    the same maps), opens its sockets → `Ready`.
//! 4. running: stops its timers and its reading of the event ring, and sends `State`:
//!    every instance's state machine (`haxdp_vrrp::fsm::Handover`: state, priority,
//!    learned interval, followed master, master-down deadline, peers, counters), its
//!    tracked checks, the receive paths. From here it does nothing but wait.
//! 5. successor: binds the control socket, adopts each instance without a transition
//!    (a Master advertises at once), starts reading the ring where the running daemon
//!    stopped → `Done`, tells systemd `MAINPID=` itself, and runs.
//! 6. running: exits 0 without releasing anything, leaving the pins to the successor.
//!
//! Until `Done` the running daemon can roll back: a successor that exits, refuses or
//! does not answer in time is reaped and the running daemon takes its links back
//! (`XdpLoader::take_back_links`) and goes on as before; `haxdp upgrade` reports why.
//!
//! Why a socket pair rather than systemd's file-descriptor store: the hand-over must work
//! the same outside systemd (the lab, containers), the state is small and typed, and the
//! kernel objects that must outlive a process are already pinned in bpffs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::track::{CheckState, TrackKey};

/// The fd number the successor finds its end of the socket pair on.
pub const SUCCESSOR_FD: i32 = 3;
/// How long the running daemon waits for its successor to be ready: configuration,
/// XDP verification (about a second for a debug build), sockets.
pub const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long the running daemon waits, frozen, for `Done` after sending its state.
pub const DONE_WITHIN: Duration = Duration::from_secs(3);

/// One message of the hand-over, a JSON line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Msg {
    Hello {
        pid: u32,
        version: String,
    },
    /// The running daemon's receive path per interface whose link it pinned.
    Go {
        links: BTreeMap<String, String>,
    },
    Refuse {
        why: String,
    },
    Ready,
    State(Box<Snapshot>),
    Done,
}

/// What the running daemon hands over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub pid: u32,
    pub version: String,
    pub started_unix_ms: u64,
    /// Receive path per interface (`xdp-native`, `xdp-skb`, `socket`).
    pub attached: BTreeMap<String, String>,
    pub instances: Vec<InstanceState>,
}

/// One instance, matched in the successor by name, VRID and interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceState {
    pub name: String,
    pub vrid: u8,
    pub ifname: String,
    pub core: haxdp_vrrp::fsm::Handover,
    pub tracked: Vec<(TrackKey, CheckState)>,
    pub held: bool,
    pub protected: Option<IpAddr>,
    pub discards: BTreeMap<String, u64>,
    pub link_up: bool,
    pub in_fault: bool,
    /// (CLOCK_MONOTONIC, wall clock ms) of the transitions, for `status`.
    pub transitions_wall: Vec<(u64, u64)>,
}

/// Set when this process handed over and exits: the pid files and pins are the
/// successor's now.
pub static HANDED_OVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One end of the hand-over socket pair.
pub struct Channel {
    r: BufReader<tokio::net::unix::OwnedReadHalf>,
    w: tokio::net::unix::OwnedWriteHalf,
}

impl Channel {
    fn new(s: UnixStream) -> Self {
        let (r, w) = s.into_split();
        Channel {
            r: BufReader::new(r),
            w,
        }
    }

    /// The successor's end, inherited as `fd`.
    pub fn from_fd(fd: i32) -> std::io::Result<Self> {
        // SAFETY: the predecessor passed this fd for us alone (`spawn_successor`); nothing
        // else in this process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let s = std::os::unix::net::UnixStream::from(owned);
        s.set_nonblocking(true)?;
        // Not inherited by the scripts this process runs.
        // SAFETY: fcntl on an fd we own.
        unsafe { libc::fcntl(s.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Self::new(UnixStream::from_std(s)?))
    }

    pub async fn send(&mut self, m: &Msg) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(m).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.w.write_all(&line).await?;
        self.w.flush().await
    }

    /// The next message, within `within`; EOF and timeouts are errors that say so.
    pub async fn recv(&mut self, within: Duration) -> Result<Msg, String> {
        let mut line = String::new();
        match tokio::time::timeout(within, self.r.read_line(&mut line)).await {
            Err(_) => Err(format!("no answer within {} s", within.as_secs_f64())),
            Ok(Err(e)) => Err(format!("the hand-over socket failed: {e}")),
            Ok(Ok(0)) => Err("the other process closed the hand-over socket (it exited)".into()),
            Ok(Ok(_)) => {
                serde_json::from_str(&line).map_err(|e| format!("unreadable message: {e}"))
            }
        }
    }
}

/// The binary this process was started from, as it was named then: after a package
/// upgrade `/proc/self/exe` names a deleted file, and the successor must be the new one.
static EXE: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Records the binary's path; call first thing in `main`.
pub fn record_exe() {
    if let Ok(p) = std::env::current_exe() {
        let _ = EXE.set(p);
    }
}

fn exe() -> std::path::PathBuf {
    EXE.get()
        .cloned()
        .unwrap_or_else(|| std::path::PathBuf::from("/proc/self/exe"))
}

/// This process's command line for its successor: the same arguments, without a
/// `--handover-fd` of our own start, with `--handover-fd 3`.
fn successor_args() -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--handover-fd" {
            args.next();
            continue;
        }
        if a.to_string_lossy().starts_with("--handover-fd=") {
            continue;
        }
        out.push(a);
    }
    out.push("--handover-fd".into());
    out.push(SUCCESSOR_FD.to_string().into());
    out
}

/// Starts the successor with its end of a new socket pair as fd 3; returns the child and
/// our end.
pub fn spawn_successor() -> std::io::Result<(tokio::process::Child, Channel)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let fd = theirs.as_raw_fd();
    let mut cmd = tokio::process::Command::new(exe());
    cmd.args(successor_args());
    // SAFETY: between fork and exec only async-signal-safe calls: dup2 and fcntl.
    unsafe {
        cmd.pre_exec(move || {
            if fd == SUCCESSOR_FD {
                // dup2 onto itself keeps FD_CLOEXEC: clear it.
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, SUCCESSOR_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    ours.set_nonblocking(true)?;
    Ok((child, Channel::new(UnixStream::from_std(ours)?)))
}

/// This build's version string, as `haxdp --version` and `haxdp status` say it; a debug
/// build says so (`+debug`).
pub fn version() -> &'static str {
    if cfg!(debug_assertions) {
        concat!(env!("CARGO_PKG_VERSION"), "+debug")
    } else {
        env!("CARGO_PKG_VERSION")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haxdp_vrrp::{Event, Family, FaultCause, InstanceConfig, State, Transition, Version};
    use serde_json::json;

    /// The typed fault causes and tracked-item keys are written as the strings a
    /// predecessor wrote, and read back from them: the two versions read each other's
    /// snapshots.
    #[test]
    fn snapshot_keeps_the_strings_of_causes_and_keys() {
        let cfg = InstanceConfig {
            name: "VI_1".into(),
            vrid: 51,
            version: Version::V3,
            family: Family::V4,
            priority: 100,
            advert_int_cs: 100,
            preempt: true,
            preempt_delay_cs: 0,
            accept: false,
            vips: vec!["192.0.2.100".parse().expect("literal")],
            primary_addr: "192.0.2.10".parse().expect("literal"),
            auth_pass: None,
            start_as_master: false,
            higher_prio_send_advert: false,
            address_owner: false,
        };
        let mut core = haxdp_vrrp::Instance::new(cfg).expect("valid").handover();
        core.faults = vec![
            FaultCause::Check("chk".into()),
            FaultCause::SourceAddressRemoved("192.0.2.10".parse().expect("literal")),
            FaultCause::SyncGroup {
                group: "G".into(),
                member: "VI_2".into(),
            },
        ];
        core.transitions = vec![Transition {
            instance: "VI_1".into(),
            at_ns: 5,
            event: Event::FaultOn {
                reason: FaultCause::Check("chk".into()),
            },
            old: State::Backup,
            new: State::Fault,
        }];
        let st = InstanceState {
            name: "VI_1".into(),
            vrid: 51,
            ifname: "eth0".into(),
            core,
            tracked: vec![
                (TrackKey::Interface("eth1".into()), CheckState::Up),
                (TrackKey::Check("chk".into()), CheckState::Down),
            ],
            held: false,
            protected: None,
            discards: BTreeMap::new(),
            link_up: true,
            in_fault: true,
            transitions_wall: vec![(5, 7)],
        };
        let v = serde_json::to_value(&st).expect("serializes");
        assert_eq!(
            v["tracked"],
            json!([["interface:eth1", "up"], ["chk", "down"]])
        );
        assert_eq!(
            v["core"]["faults"],
            json!([
                "chk failed",
                "source address 192.0.2.10 removed",
                "sync group G: member VI_2 in fault"
            ])
        );
        assert_eq!(
            v["core"]["transitions"][0]["event"],
            json!({ "fault_on": { "reason": "chk failed" } })
        );
        let back: InstanceState = serde_json::from_value(v.clone()).expect("deserializes");
        assert_eq!(back.tracked, st.tracked);
        assert_eq!(back.core, st.core);
        assert_eq!(serde_json::to_value(&back).expect("serializes"), v);
    }
}
