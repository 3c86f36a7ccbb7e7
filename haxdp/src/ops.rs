//! What an operator drives the daemon with, as keepalived 2.2.7 has it: the options of the
//! command line that reach the engine, the signal numbers (`--signum`), and the dump files
//! keepalived writes on its signals (`keepalived.data`, `keepalived.stats`,
//! `keepalived.json`), written without following symlinks.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use haxdp_vrrp::fsm::Stats;
use serde::Serialize;

/// Options of the command line that the engine reads; set once by `main` before the
/// daemon starts ([`set`]), defaults otherwise (tests, library use).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where keepalived's dump files go: `$TMPDIR` or `/tmp` as keepalived (its
    /// `tmp_dir`), or `--dump-dir`.
    pub dump_dir: PathBuf,
    /// keepalived's `-V/--dont-release-vrrp`: leave the VIPs on the interface at stop.
    pub dont_release_vrrp: bool,
    /// How long the stop sequence waits for notify_stop / STOP scripts in all.
    pub stop_timeout: Duration,
    /// `--metrics-listen`: where `/metrics` is served; off when `None`.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dump_dir: default_dump_dir(),
            dont_release_vrrp: false,
            stop_timeout: Duration::from_secs(5),
            metrics_listen: None,
        }
    }
}

static OPTIONS: OnceLock<Options> = OnceLock::new();

/// Sets the options; the first call wins.
pub fn set(opts: Options) {
    let _ = OPTIONS.set(opts);
}

/// The options in force.
pub fn options() -> &'static Options {
    OPTIONS.get_or_init(Options::default)
}

/// keepalived's `tmp_dir`: `$TMPDIR` if set, else `/tmp`.
pub fn default_dump_dir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// `SIGJSON` of keepalived 2.2.7 (`lib/signals.h`): `SIGRTMIN + 2`, 36 with glibc.
pub fn sig_json() -> i32 {
    libc::SIGRTMIN() + 2
}

/// `SIGSTATS_CLEAR` of keepalived 2.2.7: `SIGRTMAX - 1`, 63 with glibc.
pub fn sig_stats_clear() -> i32 {
    libc::SIGRTMAX() - 1
}

/// keepalived's `get_signum`: the number `--signum=NAME` prints. keepalived 2.2.7 as
/// Debian builds it (with JSON, without THREAD_DUMP) knows these six names.
pub fn signum(name: &str) -> Option<i32> {
    Some(match name {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        "DATA" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => sig_stats_clear(),
        "JSON" => sig_json(),
        _ => return None,
    })
}

/// Signals whose default action ends the process and that neither keepalived nor haxdp
/// gives a meaning: caught by a handler that does nothing, so that a stray `kill -ALRM`
/// or a real-time signal cannot end the daemon without its stop sequence. (A handler,
/// not `SIG_IGN`: an ignored disposition would be inherited by the scripts the daemon
/// runs; a handler is reset to the default by execve.) The synchronous fault signals
/// (SEGV, BUS, ILL, FPE, TRAP, ABRT, SYS) keep their default: they mean a bug.
pub fn neutral_signals() -> Vec<i32> {
    let mut v = vec![
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSTKFLT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
    ];
    for s in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        if s != sig_json() && s != sig_stats_clear() {
            v.push(s);
        }
    }
    v
}

extern "C" fn neutral_handler(_sig: libc::c_int) {}

/// Installs the do-nothing handler for every [`neutral_signals`] signal.
pub fn neutralize_signals() -> io::Result<()> {
    for sig in neutral_signals() {
        install_neutral(sig)?;
    }
    Ok(())
}

/// From the first instruction of the daemon until the engine's handlers are in place
/// (configuration read, sockets opened): the neutral signals, and keepalived's HUP, USR1,
/// USR2, STATS_CLEAR and JSON, do nothing instead of ending the process. An exporter's
/// scrape during start-up then cannot kill it; TERM and INT keep their default until the
/// stop sequence exists, since nothing needs stopping yet.
pub fn neutralize_early() -> io::Result<()> {
    neutralize_signals()?;
    for sig in [
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        sig_json(),
        sig_stats_clear(),
    ] {
        install_neutral(sig)?;
    }
    Ok(())
}

fn install_neutral(sig: i32) -> io::Result<()> {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid
    // argument; the handler is async-signal-safe (it does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = neutral_handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Writes `body` to `path` the way keepalived closed CVE-2018-19044: never through a
/// symlink. The bytes go to a new file created beside it (O_CREAT|O_EXCL|O_NOFOLLOW, mode
/// 0644), which then replaces `path` with rename(2): a symlink or hard link an
/// unprivileged user planted at `path` (e.g. `/tmp/keepalived.data`) is replaced, never
/// written through, and a reader never sees a partial file.
pub fn write_file_nofollow(path: &Path, body: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let mut f: File = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A leftover of ours, or something planted: remove the name (never follows)
            // and create it afresh.
            std::fs::remove_file(&tmp)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    // No fsync: readers need the rename's atomicity, not durability across a crash (state
    // files live in /run), and an fsync per transition slowed the state writer behind
    // busy disks.
    let written = f.write_all(body);
    drop(f);
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// keepalived's state numbers (`VRRP_STATE_*`), as its JSON and keepalived-exporter use
/// them.
pub fn state_number(state: &str) -> u8 {
    match state {
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        _ => 0,
    }
}

/// One instance as the dump files show it.
#[derive(Debug, Clone, Default)]
pub struct InstanceDump {
    pub name: String,
    pub ifname: String,
    pub vrid: u8,
    pub version: u8,
    /// `MASTER`, `BACKUP`, `FAULT`, `INIT`.
    pub state: String,
    pub base_priority: u8,
    pub effective_priority: u8,
    pub master_priority: u8,
    pub advert_int_cs: u16,
    pub master_adver_int_cs: u16,
    pub accept: bool,
    pub nopreempt: bool,
    pub preempt_delay_s: u32,
    pub last_transition_unix_s: f64,
    pub master_addr: Option<String>,
    /// `ADDR/PREFIX`.
    pub vips: Vec<String>,
    pub stats: Stats,
    /// Adverts refused for a wrong or missing password (keepalived's `auth_failure`).
    pub auth_failure: u64,
    /// Adverts refused for their interval (keepalived's `advert_interval_err`).
    pub advert_interval_err: u64,
    /// Adverts refused for their address list (keepalived's `addr_list_err`).
    pub addr_list_err: u64,
}

/// keepalived's `keepalived.data` layout (vrrp_print_data) for the fields haxdp has,
/// followed by haxdp's own status text.
pub fn render_data(insts: &[InstanceDump], haxdp_status: &str) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "------< VRRP Topology >------");
    for i in insts {
        let _ = writeln!(o, " VRRP Instance = {}", i.name);
        let _ = writeln!(o, "   VRRP Version = {}", i.version);
        let _ = writeln!(o, "   State = {}", i.state);
        let _ = writeln!(o, "   Wantstate = {}", i.state);
        let _ = writeln!(o, "   Interface = {}", i.ifname);
        let _ = writeln!(o, "   Virtual Router ID = {}", i.vrid);
        let _ = writeln!(o, "   Priority = {}", i.base_priority);
        let _ = writeln!(o, "   Effective priority = {}", i.effective_priority);
        let _ = writeln!(
            o,
            "   Advert interval = {} milli-sec",
            u32::from(i.advert_int_cs) * 10
        );
        let _ = writeln!(
            o,
            "   Master router = {}",
            i.master_addr.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(o, "   Master priority = {}", i.master_priority);
        let _ = writeln!(o, "   Virtual IP ({}):", i.vips.len());
        for v in &i.vips {
            let _ = writeln!(
                o,
                "     {} dev {} scope global",
                crate::metrics::keepalived_addr(v),
                i.ifname
            );
        }
    }
    let _ = writeln!(o, "------< haxdp status >------");
    o.push_str(haxdp_status);
    o
}

/// keepalived's `keepalived.stats` (vrrp_print_stats), line for line. Counters haxdp does
/// not keep apart (TTL, type and length errors are dropped by the receive path before an
/// instance sees them, counted by reason in `haxdp status`) are 0.
pub fn render_stats(insts: &[InstanceDump]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for i in insts {
        let s = &i.stats;
        let _ = writeln!(o, "VRRP Instance: {}", i.name);
        let _ = writeln!(o, "  Advertisements:");
        let _ = writeln!(o, "    Received: {}", s.advert_rcvd);
        let _ = writeln!(o, "    Sent: {}", s.advert_sent);
        let _ = writeln!(o, "  Became master: {}", s.become_master);
        let _ = writeln!(o, "  Released master: {}", s.release_master);
        let _ = writeln!(o, "  Packet Errors:");
        let _ = writeln!(o, "    Length: 0");
        let _ = writeln!(o, "    TTL: 0");
        let _ = writeln!(o, "    Invalid Type: 0");
        let _ = writeln!(o, "    Advertisement Interval: {}", i.advert_interval_err);
        let _ = writeln!(o, "    Address List: {}", i.addr_list_err);
        let _ = writeln!(o, "  Authentication Errors:");
        let _ = writeln!(o, "    Invalid Type: 0");
        let _ = writeln!(o, "    Type Mismatch: 0");
        let _ = writeln!(o, "    Failure: {}", i.auth_failure);
        let _ = writeln!(o, "  Priority Zero:");
        let _ = writeln!(o, "    Received: {}", s.pri_zero_rcvd);
        let _ = writeln!(o, "    Sent: {}", s.pri_zero_sent);
    }
    o
}

#[derive(Serialize)]
struct JsonData<'a> {
    iname: &'a str,
    ifp_ifname: &'a str,
    master_priority: u8,
    last_transition: f64,
    vrid: u8,
    base_priority: u8,
    effective_priority: u8,
    vipset: bool,
    adver_int: f64,
    master_adver_int: f64,
    accept: u8,
    nopreempt: bool,
    preempt_delay: u32,
    state: u8,
    wantstate: u8,
    version: u8,
    vips: Vec<String>,
    evips: Vec<String>,
}

#[derive(Serialize)]
struct JsonStats {
    advert_rcvd: u64,
    advert_sent: u64,
    become_master: u64,
    release_master: u64,
    packet_len_err: u64,
    advert_interval_err: u64,
    ip_ttl_err: u64,
    invalid_type_rcvd: u64,
    addr_list_err: u64,
    invalid_authtype: u64,
    authtype_mismatch: u64,
    auth_failure: u64,
    pri_zero_rcvd: u64,
    pri_zero_sent: u64,
}

#[derive(Serialize)]
struct JsonInstance<'a> {
    data: JsonData<'a>,
    stats: JsonStats,
}

/// keepalived's `keepalived.json` (vrrp_json.c): an array of `{ "data": .., "stats": .. }`
/// with keepalived's field names, the ones keepalived-exporter's JSON mode reads.
pub fn render_json(insts: &[InstanceDump]) -> String {
    let v: Vec<JsonInstance> = insts
        .iter()
        .map(|i| {
            let state = state_number(&i.state);
            JsonInstance {
                data: JsonData {
                    iname: &i.name,
                    ifp_ifname: &i.ifname,
                    master_priority: i.master_priority,
                    last_transition: i.last_transition_unix_s,
                    vrid: i.vrid,
                    base_priority: i.base_priority,
                    effective_priority: i.effective_priority,
                    vipset: state == 2,
                    adver_int: f64::from(i.advert_int_cs) / 100.0,
                    master_adver_int: f64::from(i.master_adver_int_cs) / 100.0,
                    accept: u8::from(i.accept),
                    nopreempt: i.nopreempt,
                    preempt_delay: i.preempt_delay_s,
                    state,
                    wantstate: state,
                    version: i.version,
                    vips: i
                        .vips
                        .iter()
                        .map(|v| {
                            format!(
                                "{} dev {} scope global",
                                crate::metrics::keepalived_addr(v),
                                i.ifname
                            )
                        })
                        .collect(),
                    evips: Vec::new(),
                },
                stats: JsonStats {
                    advert_rcvd: i.stats.advert_rcvd,
                    advert_sent: i.stats.advert_sent,
                    become_master: i.stats.become_master,
                    release_master: i.stats.release_master,
                    packet_len_err: 0,
                    advert_interval_err: i.advert_interval_err,
                    ip_ttl_err: 0,
                    invalid_type_rcvd: 0,
                    addr_list_err: i.addr_list_err,
                    invalid_authtype: 0,
                    authtype_mismatch: 0,
                    auth_failure: i.auth_failure,
                    pri_zero_rcvd: i.stats.pri_zero_rcvd,
                    pri_zero_sent: i.stats.pri_zero_sent,
                },
            }
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into()) + "\n"
}

/// The kernel's advert count of an instance at the last STATS_CLEAR.
static KERNEL_BASE: Mutex<BTreeMap<String, (u64, u64)>> = Mutex::new(BTreeMap::new());

/// Adverts received by an instance on the XDP path since the last STATS_CLEAR, from the
/// kernel's running `total` (which can shrink when silent peers are pruned).
pub fn kernel_received(instance: &str, total: u64) -> u64 {
    let Ok(mut base) = KERNEL_BASE.lock() else {
        return total;
    };
    let e = base.entry(instance.to_owned()).or_insert((0, 0));
    // e.0: the total at the clear, e.1: the latest total seen.
    if total < e.1 {
        // PEERS forgot a source: keep counting from what is left.
        e.0 = e.0.saturating_sub(e.1 - total);
    }
    e.1 = total;
    total.saturating_sub(e.0)
}

/// STATS_CLEAR for the kernel's counts of an instance.
pub fn clear_kernel_received(instance: &str) {
    if let Ok(mut base) = KERNEL_BASE.lock() {
        let e = base.entry(instance.to_owned()).or_insert((0, 0));
        e.0 = e.1;
    }
}

/// Per instance: the last transition (its time) and priority-0 count that keepalived's
/// log lines were written for.
static KEEPALIVED_LINES: Mutex<BTreeMap<String, (u64, u64)>> = Mutex::new(BTreeMap::new());

/// Records `(at_ns, pri0)` as logged for `instance`; returns what was recorded before.
pub fn keepalived_lines_seen(instance: &str, at_ns: u64, pri0: u64) -> (u64, u64) {
    let Ok(mut m) = KEEPALIVED_LINES.lock() else {
        return (at_ns, pri0);
    };
    let prev = m.get(instance).copied().unwrap_or((0, 0));
    if prev != (at_ns, pri0) {
        m.insert(instance.to_owned(), (at_ns, pri0));
    }
    prev
}

/// Which of keepalived's dumps a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// SIGUSR1: `keepalived.data`.
    Data,
    /// SIGUSR2: `keepalived.stats`.
    Stats,
    /// SIGSTATS_CLEAR: `keepalived.stats`, then the counters are cleared.
    StatsClear,
    /// SIGJSON: `keepalived.json`.
    Json,
}

impl Dump {
    pub fn file_name(self) -> &'static str {
        match self {
            Dump::Data => "keepalived.data",
            Dump::Stats | Dump::StatsClear => "keepalived.stats",
            Dump::Json => "keepalived.json",
        }
    }
}

/// Writes one dump into the dump directory; the path written, or why not.
pub fn write_dump(kind: Dump, insts: &[InstanceDump], haxdp_status: &str) -> io::Result<PathBuf> {
    let body = match kind {
        Dump::Data => render_data(insts, haxdp_status),
        Dump::Stats | Dump::StatsClear => render_stats(insts),
        Dump::Json => render_json(insts),
    };
    let path = options().dump_dir.join(kind.file_name());
    write_file_nofollow(&path, body.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signum_as_keepalived_prints_them() {
        // `keepalived --signum=X` of Debian's keepalived 2.2.7 on glibc.
        for (name, n) in [
            ("STOP", 15),
            ("RELOAD", 1),
            ("DATA", 10),
            ("STATS", 12),
            ("STATS_CLEAR", 63),
            ("JSON", 36),
        ] {
            assert_eq!(signum(name), Some(n), "{name}");
        }
        assert_eq!(signum("TDUMP"), None);
        assert_eq!(signum("stop"), None);
    }

    #[test]
    fn neutral_signals_spare_the_meaningful_ones() {
        let n = neutral_signals();
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
            36,
            63,
        ] {
            assert!(!n.contains(&s), "{s}");
        }
        assert!(n.contains(&64) && n.contains(&34) && n.contains(&libc::SIGALRM));
    }

    #[test]
    fn writes_replace_symlinks_instead_of_following_them() {
        let dir = std::env::temp_dir().join(format!("haxdp-ops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let link = dir.join("keepalived.data");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_file_nofollow(&link, b"dump\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "dump\n");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn json_has_keepalived_field_names() {
        let d = InstanceDump {
            name: "VI_1".into(),
            ifname: "eth0".into(),
            vrid: 51,
            version: 3,
            state: "MASTER".into(),
            vips: vec!["192.0.2.100/24".into()],
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&render_json(&[d])).unwrap();
        assert_eq!(v[0]["data"]["iname"], "VI_1");
        assert_eq!(v[0]["data"]["state"], 2);
        assert_eq!(v[0]["data"]["vrid"], 51);
        assert!(v[0]["stats"]["advert_sent"].is_u64());
    }
}
