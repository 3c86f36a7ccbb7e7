//! The control socket behind `haxdp status`.
//!
//! It is an abstract unix socket (`@haxdp/control`): Linux scopes abstract
//! socket names to the network namespace (unix(7)), so two daemons in two
//! namespaces of one host never collide, and `ip netns exec NS haxdp status`
//! reaches the daemon of NS. Abstract sockets have no file permissions, so
//! the server checks the peer's credentials (SO_PEERCRED) and serves only
//! root or its own user.
//!
//! Protocol: the client writes one line (`status`, or `upgrade` for a planned restart,
//! see `crate::handover`), the server answers with one JSON document and closes.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const CONTROL_NAME: &[u8] = b"haxdp/control";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Status {
    pub pid: u32,
    /// The running build (`haxdp --version`).
    #[serde(default)]
    pub version: String,
    pub config_file: String,
    pub started_unix_ms: u64,
    /// Invalid adverts dropped by the socket receive path (the XDP path
    /// counts its drops in the kernel: `haxdp maps`).
    pub socket_drops: u64,
    /// Dropped adverts by reason, both receive paths.
    #[serde(default)]
    pub drops: DropCounts,
    /// The last reload: accepted or refused, and why.
    #[serde(default)]
    pub last_reload: Option<ReloadStatus>,
    /// How the daemon started: fresh, or after a crash and what it resumed.
    #[serde(default)]
    pub start_mode: String,
    /// Instances waiting for their interface (`dynamic_interfaces`), as `NAME (IFNAME)`.
    #[serde(default)]
    pub waiting_for_interface: Vec<String>,
    /// The engine's event queue: room, how full it got, what it dropped.
    #[serde(default)]
    pub event_queue: EventQueueStatus,
    /// notify_fifo lines dropped (no reader, or a full pipe).
    #[serde(default)]
    pub notify_fifo_dropped: u64,
    pub instances: Vec<InstanceStatus>,
}

/// The outcome of a reload (HUP).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    pub at_unix_ms: u64,
    pub accepted: bool,
    pub message: String,
}

/// Dropped adverts by reason, as `haxdp status` shows them: the XDP program's
/// counters (`KernelRx::drop_counters`) and the socket path's, both under the
/// `haxdp_common::DropReason` names (one acceptance rule, one list of names).
/// Every reason is present in `xdp` when the XDP path is loaded, zero or not.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub xdp: std::collections::BTreeMap<String, u64>,
    pub socket: std::collections::BTreeMap<String, u64>,
}

impl DropCounts {
    /// From the kernel's `(name, count)` pairs and the socket path's counts.
    pub fn new(
        xdp: &[(&str, u64)],
        socket: &std::collections::BTreeMap<haxdp_common::DropReason, u64>,
    ) -> Self {
        DropCounts {
            xdp: xdp.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            socket: socket
                .iter()
                .map(|(r, c)| (r.name().to_string(), *c))
                .collect(),
        }
    }

    /// The non-zero counters, one line each (for `haxdp status`).
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        for (path, map) in [("xdp", &self.xdp), ("socket", &self.socket)] {
            let nz: Vec<String> = map
                .iter()
                .filter(|(_, c)| **c > 0)
                .map(|(n, c)| format!("{n} {c}"))
                .collect();
            if !nz.is_empty() {
                let _ = writeln!(o, "dropped adverts ({path}): {}", nz.join(", "));
            }
        }
        o
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub family: String,
    pub state: String,
    pub base_priority: u8,
    pub effective_priority: u8,
    /// What moved the priority away from its base, e.g. `chk_nginx -20`.
    pub priority_reasons: Vec<String>,
    pub fault_reasons: Vec<String>,
    pub master_addr: Option<String>,
    pub last_advert_age_ms: Option<u64>,
    /// `xdp-native`, `xdp-skb` or `socket`.
    pub receive_path: String,
    pub advert_interval_ms: u64,
    pub master_down_interval_ms: u64,
    pub vips: Vec<String>,
    pub transitions: Vec<TransitionStatus>,
    /// Adverts the state machine ignored, by reason.
    pub discarded: std::collections::BTreeMap<String, u64>,
    /// New advert sources the XDP program refused because the instance's room in
    /// PEERS was full (spoofing, or more routers than the room holds): the instance may
    /// not see every router.
    #[serde(default)]
    pub refused_peers: u64,
    /// This instance's notify scripts: how many transitions wait, the most that ever
    /// waited, and how many were dropped for newer ones.
    #[serde(default)]
    pub notify_queue: NotifyQueueStatus,
    /// VIPs this master has not been able to add, retried with backoff.
    #[serde(default)]
    pub vips_missing: Vec<VipMissingStatus>,
    /// Lower-priority adverts heard as master (another router acting as master).
    #[serde(default)]
    pub lower_prio_adverts: u64,
    /// Gratuitous ARP / NA bursts they triggered (garp_lower_prio_repeat).
    #[serde(default)]
    pub lower_prio_garp_bursts: u64,
}

/// The engine's bounded event queue (`haxdp status`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct EventQueueStatus {
    pub capacity: usize,
    pub depth: usize,
    pub max_depth: usize,
    /// XDP reports dropped because the queue was full.
    pub dropped_kernel: u64,
    pub dropped_housekeeping: u64,
    /// `haxdp status` requests refused because the queue was full.
    pub dropped_status: u64,
}

/// One instance's notify queue.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct NotifyQueueStatus {
    pub depth: usize,
    pub max_depth: usize,
    pub dropped: u64,
}

/// A VIP a master could not add.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct VipMissingStatus {
    pub vip: String,
    pub error: String,
    pub attempts: u32,
    pub since_unix_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TransitionStatus {
    pub at_unix_ms: u64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot open the control socket @haxdp/control: {0} (is another haxdp running in this network namespace?)")]
    Bind(#[source] std::io::Error),
    #[error("no haxdp daemon answers in this network namespace ({0}); start one with `haxdp run -f FILE`, or enter its namespace with `ip netns exec NS haxdp status`")]
    Connect(#[source] std::io::Error),
    #[error("the daemon's answer could not be read: {0}")]
    Protocol(String),
}

fn abstract_addr() -> std::io::Result<std::os::unix::net::SocketAddr> {
    std::os::unix::net::SocketAddr::from_abstract_name(CONTROL_NAME)
}

/// Binds the control socket. Fails if a daemon (root, or our own user) already serves this
/// namespace. If anyone else holds the abstract name (an unprivileged user can bind any
/// free abstract name, unix(7)), the daemon still starts: it says who squats the name and
/// serves on [`fallback_path`] instead, a filesystem socket in a root-owned directory,
/// where `haxdp status` looks next.
pub fn bind() -> Result<tokio::net::UnixListener, ControlError> {
    let l = match std::os::unix::net::UnixListener::bind_addr(
        &abstract_addr().map_err(ControlError::Bind)?,
    ) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let holder = std::os::unix::net::UnixStream::connect_addr(
                &abstract_addr().map_err(ControlError::Bind)?,
            )
            .ok()
            .and_then(|s| peer_cred(&s));
            match holder {
                Some(c) if trusted_uid(c.uid) => return Err(ControlError::Bind(e)),
                holder => {
                    let who = holder
                        .map(|c| format!("uid {} (pid {})", c.uid, c.pid))
                        .unwrap_or_else(|| "a process that does not answer".into());
                    let path = fallback_path().map_err(ControlError::Bind)?;
                    tracing::error!(
                        "the control name @haxdp/control is held by {who}, not by a root daemon; \
                         serving haxdp status on {} instead (find the squatter with \
                         `ss -xlp | grep haxdp/control`)",
                        path.display()
                    );
                    bind_fallback(&path).map_err(ControlError::Bind)?
                }
            }
        }
        Err(e) => return Err(ControlError::Bind(e)),
    };
    l.set_nonblocking(true).map_err(ControlError::Bind)?;
    tokio::net::UnixListener::from_std(l).map_err(ControlError::Bind)
}

/// The peer of a unix socket (SO_PEERCRED).
#[derive(Debug, Clone, Copy)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
}

fn peer_cred(s: &impl std::os::fd::AsRawFd) -> Option<PeerCred> {
    let mut c = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: c and len are valid for the call; the kernel writes at most len bytes.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(PeerCred {
        pid: c.pid,
        uid: c.uid,
    })
}

/// Root, or the user this process runs as (a daemon run by hand as that user).
fn trusted_uid(uid: u32) -> bool {
    // SAFETY: geteuid cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// The directory of the fallback control socket: root's, 0755, never a symlink.
pub const FALLBACK_DIR: &str = "/run/haxdp";

/// `/run/haxdp/control-<netns inode>.sock`: per network namespace, as the abstract name is.
pub fn fallback_path() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/self/ns/net")?.ino();
    Ok(std::path::Path::new(FALLBACK_DIR).join(format!("control-{ino}.sock")))
}

/// The fallback directory must be root's and writable by root only, so that nobody else
/// can plant or replace the socket.
fn check_fallback_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir)?;
    if !m.file_type().is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory owned by root and writable by root only",
            dir.display()
        )));
    }
    Ok(())
}

fn bind_fallback(path: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().unwrap_or(std::path::Path::new(FALLBACK_DIR));
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
    }
    check_fallback_dir(dir)?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// How long `upgrade` waits for the hand-over's outcome.
pub const UPGRADE_WITHIN: Duration = Duration::from_secs(60);

/// The answer to `upgrade`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeAnswer {
    pub ok: bool,
    pub message: String,
}

/// Serves requests forever; `snapshot` asks the engine for the current
/// status (`None` when it did not answer in time), `upgrade` starts a hand-over to a
/// successor process and waits for its outcome.
pub async fn serve<F, Fut, U, UFut>(listener: tokio::net::UnixListener, snapshot: F, upgrade: U)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<Status>> + Send + 'static,
    U: Fn() -> UFut + Send + Sync + 'static,
    UFut: std::future::Future<Output = Option<(bool, String)>> + Send + 'static,
{
    let snapshot = std::sync::Arc::new(snapshot);
    let upgrade = std::sync::Arc::new(upgrade);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let allowed = stream
            .peer_cred()
            .map(|c| c.uid() == 0 || c.uid() == unsafe { libc::geteuid() })
            .unwrap_or(false);
        let snapshot = snapshot.clone();
        let upgrade = upgrade.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            if !allowed {
                let _ = stream
                    .write_all(b"{\"error\":\"permission denied: run haxdp status as root\"}\n")
                    .await;
                return;
            }
            let (r, mut w) = stream.split();
            let mut line = String::new();
            let read = tokio::time::timeout(
                Duration::from_secs(2),
                BufReader::new(r).read_line(&mut line),
            )
            .await;
            if !matches!(read, Ok(Ok(_))) {
                return;
            }
            let body = match line.trim() {
                "status" => match tokio::time::timeout(Duration::from_secs(2), snapshot()).await {
                    Ok(Some(st)) => serde_json::to_string(&st).unwrap_or_default(),
                    _ => "{\"error\":\"the daemon's engine did not answer within 2 s (it may be stalled); `haxdp maps` reads the kernel's view directly\"}".to_string(),
                },
                "upgrade" => {
                    let answer = match tokio::time::timeout(UPGRADE_WITHIN, upgrade()).await {
                        Ok(Some((ok, message))) => UpgradeAnswer { ok, message },
                        Ok(None) => UpgradeAnswer {
                            ok: false,
                            message: "the daemon's engine did not take the request (busy?)".into(),
                        },
                        Err(_) => UpgradeAnswer {
                            ok: false,
                            message: format!(
                                "no outcome within {} s; see the daemon's log and `haxdp status`",
                                UPGRADE_WITHIN.as_secs()
                            ),
                        },
                    };
                    serde_json::to_string(&answer).unwrap_or_default()
                }
                other => format!("{{\"error\":\"unknown request {other:?}\"}}"),
            };
            let _ = w.write_all(body.as_bytes()).await;
            let _ = w.write_all(b"\n").await;
        });
    }
}

/// Client side: asks the daemon of this namespace for its status. The answer is trusted
/// only from a daemon running as root (or as this user): a squatter on the abstract name
/// is named and skipped, and the daemon's fallback socket ([`fallback_path`]) is tried.
pub fn query() -> Result<Status, ControlError> {
    let buf = request("status", Duration::from_secs(5))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&buf) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(ControlError::Protocol(e.to_string()));
        }
    }
    serde_json::from_str(&buf).map_err(|e| ControlError::Protocol(e.to_string()))
}

/// Client side of `haxdp upgrade`: the running daemon hands over to a successor started
/// from the binary on disk, and says how it went.
pub fn upgrade() -> Result<UpgradeAnswer, ControlError> {
    let buf = request("upgrade", UPGRADE_WITHIN + Duration::from_secs(5))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&buf) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(ControlError::Protocol(e.to_string()));
        }
    }
    if buf.trim().is_empty() {
        // The daemon that handed over exits right after answering; an empty answer
        // means it went before the answer was written.
        return Err(ControlError::Protocol(
            "the daemon closed the connection without an answer; `haxdp status` shows which daemon runs now".into(),
        ));
    }
    serde_json::from_str(&buf).map_err(|e| ControlError::Protocol(e.to_string()))
}

/// One request line to the trusted daemon of this namespace; its answer.
fn request(line: &str, timeout: Duration) -> Result<String, ControlError> {
    let mut squatter = None;
    let mut s = match std::os::unix::net::UnixStream::connect_addr(
        &abstract_addr().map_err(ControlError::Connect)?,
    ) {
        Ok(s) => match peer_cred(&s) {
            Some(c) if trusted_uid(c.uid) => Some(s),
            c => {
                squatter = c;
                None
            }
        },
        Err(_) => None,
    };
    if s.is_none() {
        let fallback = fallback_path()
            .ok()
            .filter(|p| p.parent().is_some_and(|d| check_fallback_dir(d).is_ok()))
            .and_then(|p| std::os::unix::net::UnixStream::connect(p).ok())
            .filter(|s| peer_cred(s).is_some_and(|c| trusted_uid(c.uid)));
        s = fallback;
    }
    let mut s = match (s, squatter) {
        (Some(s), _) => s,
        (None, Some(c)) => {
            return Err(ControlError::Protocol(format!(
                "@haxdp/control is held by uid {} (pid {}), not by a root haxdp daemon; not trusting it",
                c.uid, c.pid
            )))
        }
        (None, None) => {
            return Err(ControlError::Connect(std::io::Error::other(
                "nothing listens on @haxdp/control or the fallback socket",
            )))
        }
    };
    s.set_read_timeout(Some(timeout))
        .map_err(ControlError::Connect)?;
    s.write_all(format!("{line}\n").as_bytes())
        .map_err(ControlError::Connect)?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)
        .map_err(|e| ControlError::Protocol(e.to_string()))?;
    Ok(buf)
}

/// Renders the status for a terminal.
pub fn render(st: &Status) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "haxdp pid {} config {}", st.pid, st.config_file);
    if !st.start_mode.is_empty() {
        let _ = writeln!(o, "started {}", st.start_mode);
    }
    if !st.waiting_for_interface.is_empty() {
        let _ = writeln!(
            o,
            "waiting for their interface (dynamic_interfaces): {}",
            st.waiting_for_interface.join(", ")
        );
    }
    if let Some(r) = &st.last_reload {
        let _ = writeln!(
            o,
            "last reload {}: {} ({})",
            fmt_unix_ms(r.at_unix_ms),
            if r.accepted { "applied" } else { "REFUSED" },
            r.message
        );
    }
    for i in &st.instances {
        let _ = writeln!(
            o,
            "\n{name}: {state}  {iface} vrid {vrid} v{ver} {fam}  priority {eff} (base {base})  receive {path}",
            name = i.name,
            state = i.state,
            iface = i.interface,
            vrid = i.vrid,
            ver = i.version,
            fam = i.family,
            eff = i.effective_priority,
            base = i.base_priority,
            path = i.receive_path,
        );
        if !i.priority_reasons.is_empty() {
            let _ = writeln!(
                o,
                "  priority changed by: {}",
                i.priority_reasons.join(", ")
            );
        }
        if !i.fault_reasons.is_empty() {
            let _ = writeln!(o, "  fault: {}", i.fault_reasons.join(", "));
        }
        let _ = writeln!(
            o,
            "  master {}  last advert {}  advert interval {} ms  master-down {} ms",
            i.master_addr.as_deref().unwrap_or("-"),
            i.last_advert_age_ms
                .map(|a| format!("{a} ms ago"))
                .unwrap_or_else(|| "-".into()),
            i.advert_interval_ms,
            i.master_down_interval_ms,
        );
        let _ = writeln!(o, "  vips: {}", i.vips.join(" "));
        for m in &i.vips_missing {
            let _ = writeln!(
                o,
                "  WARNING: VIP {} NOT ADDED since {} ({} attempts): {}",
                m.vip,
                fmt_unix_ms(m.since_unix_ms),
                m.attempts,
                m.error
            );
        }
        if i.notify_queue.dropped > 0 || i.notify_queue.depth > 0 {
            let _ = writeln!(
                o,
                "  notify queue: {} waiting (most {}), {} dropped for newer transitions",
                i.notify_queue.depth, i.notify_queue.max_depth, i.notify_queue.dropped
            );
        }
        if i.lower_prio_adverts > 0 {
            let _ = writeln!(
                o,
                "  lower-priority adverts heard as master: {} (GARP bursts {})",
                i.lower_prio_adverts, i.lower_prio_garp_bursts
            );
        }
        if i.refused_peers > 0 {
            let _ = writeln!(
                o,
                "  WARNING: {} new advert source(s) refused, PEERS room full: this node may not see every router",
                i.refused_peers
            );
        }
        if !i.discarded.is_empty() {
            let d: Vec<String> = i
                .discarded
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(o, "  adverts ignored: {}", d.join(", "));
        }
        for t in i.transitions.iter().rev().take(10) {
            let _ = writeln!(
                o,
                "  {} {} -> {}: {}",
                fmt_unix_ms(t.at_unix_ms),
                t.from,
                t.to,
                t.reason
            );
        }
    }
    let drops = st.drops.render();
    if !drops.is_empty() {
        let _ = write!(o, "\n{drops}");
    }
    o
}

/// UTC wall-clock time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn fmt_unix_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = (secs / 86400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_formats_as_utc() {
        assert_eq!(fmt_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt_unix_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn drop_counts_use_the_shared_names() {
        use haxdp_common::DropReason;
        let mut socket = std::collections::BTreeMap::new();
        socket.insert(DropReason::ZeroInterval, 3);
        let d = DropCounts::new(&[("bad_ttl", 2), ("bad_length", 0)], &socket);
        assert_eq!(d.socket["zero_interval"], 3);
        assert_eq!(
            d.render(),
            "dropped adverts (xdp): bad_ttl 2\ndropped adverts (socket): zero_interval 3\n"
        );
    }
}
