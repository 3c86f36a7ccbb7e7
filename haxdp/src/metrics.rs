//! `--metrics-listen ADDR:PORT`: Prometheus metrics at `/metrics`, under
//! keepalived-exporter's names and labels so that its dashboards and alerts work
//! unchanged, plus `haxdp_*` for what only haxdp knows.
//!
//! The engine never waits for a scrape: once a second (and at start) it publishes a
//! [`Snapshot`] ([`publish`]); the HTTP server runs on a thread of its own, takes the
//! latest snapshot and encodes it with `prometheus-client` (OpenMetrics text). A scrape of
//! a hung engine still answers, with `haxdp_snapshot_age_seconds` growing.
//!
//! keepalived-exporter's series (its `collector.go`): `keepalived_up`;
//! `keepalived_vrrp_state{iname,intf,vrid,ip_address}` one per VIP (0 init, 1 backup,
//! 2 master, 3 fault); counters with `{iname,intf,vrid}`: advertisements received / sent,
//! become / release master, priority zero received / sent, authentication failure,
//! interval and address-list errors (and, at 0, the error kinds haxdp drops before an
//! instance sees them); `keepalived_script_status{name}` (1 good, 0 bad).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::control::Status;
use crate::ops::InstanceDump;

/// What the engine publishes for a scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub instances: Vec<InstanceDump>,
    pub status: Status,
    /// `vrrp_script` / `vrrp_nginx_check` / `track_file` results by name: Some(true) good.
    pub scripts: Vec<(String, Option<bool>)>,
    /// Sources the kernel tracks per instance (PEERS entries), by instance name.
    pub peers: Vec<(String, u64)>,
}

struct Latest {
    at: Instant,
    snap: Arc<Snapshot>,
}

static LATEST: Mutex<Option<Latest>> = Mutex::new(None);

/// The engine's side: replace the snapshot scrapes read.
pub fn publish(snap: Snapshot) {
    if let Ok(mut l) = LATEST.lock() {
        *l = Some(Latest {
            at: Instant::now(),
            snap: Arc::new(snap),
        });
    }
}

/// Whether the metrics endpoint is on (the engine publishes only then).
pub fn enabled() -> bool {
    crate::ops::options().metrics_listen.is_some()
}

/// The engine loop's cadence for [`publish`].
#[derive(Debug)]
pub struct Publisher {
    last: Option<Instant>,
}

impl Publisher {
    pub const EVERY: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        Publisher { last: None }
    }

    /// True (and re-armed) when a snapshot is due.
    pub fn due_now(&mut self) -> bool {
        if !enabled() {
            return false;
        }
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }

    /// Sleeps until the next snapshot is due; forever when metrics are off.
    pub async fn due(&self) {
        match (enabled(), self.last) {
            (true, Some(t)) => tokio::time::sleep(Self::EVERY.saturating_sub(t.elapsed())).await,
            (true, None) => {}
            (false, _) => std::future::pending().await,
        }
    }
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstLabels {
    iname: String,
    intf: String,
    vrid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    iname: String,
    intf: String,
    vrid: String,
    ip_address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScriptLabels {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    iname: String,
    intf: String,
    vrid: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    path: String,
    reason: String,
}

/// keepalived's VIP text without the prefix for a host address (`ipaddresstos`), the
/// first word keepalived-exporter takes as `ip_address`.
pub fn keepalived_addr(vip: &str) -> String {
    match vip.rsplit_once('/') {
        Some((a, "32")) if !a.contains(':') => a.to_string(),
        Some((a, "128")) if a.contains(':') => a.to_string(),
        _ => vip.to_string(),
    }
}

/// The OpenMetrics text for a snapshot (`None`: nothing published yet, keepalived_up 0).
pub fn render(snap: Option<&Snapshot>, age: Duration) -> String {
    let mut reg = Registry::default();
    let up: Gauge = Gauge::default();
    up.set(i64::from(snap.is_some()));
    reg.register("keepalived_up", "Status", up);
    let Some(snap) = snap else {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        return out;
    };
    let state = Family::<StateLabels, Gauge>::default();
    let per_inst = |name: &'static str,
                    help: &'static str,
                    reg: &mut Registry,
                    f: &dyn Fn(&InstanceDump) -> u64| {
        let fam = Family::<InstLabels, Counter>::new_with_constructor(Counter::default);
        for i in &snap.instances {
            let l = InstLabels {
                iname: i.name.clone(),
                intf: i.ifname.clone(),
                vrid: i.vrid.to_string(),
            };
            fam.get_or_create(&l).inc_by(f(i));
        }
        reg.register(name, help, fam);
    };
    for i in &snap.instances {
        let n = i64::from(crate::ops::state_number(&i.state));
        if i.vips.is_empty() {
            state
                .get_or_create(&StateLabels {
                    iname: i.name.clone(),
                    intf: i.ifname.clone(),
                    vrid: i.vrid.to_string(),
                    ip_address: String::new(),
                })
                .set(n);
        }
        for v in &i.vips {
            state
                .get_or_create(&StateLabels {
                    iname: i.name.clone(),
                    intf: i.ifname.clone(),
                    vrid: i.vrid.to_string(),
                    ip_address: keepalived_addr(v),
                })
                .set(n);
        }
    }
    reg.register("keepalived_vrrp_state", "State of vrrp", state);
    per_inst(
        "keepalived_advertisements_received",
        "Advertisements received",
        &mut reg,
        &|i| i.stats.advert_rcvd,
    );
    per_inst(
        "keepalived_advertisements_sent",
        "Advertisements sent",
        &mut reg,
        &|i| i.stats.advert_sent,
    );
    per_inst(
        "keepalived_become_master",
        "Became master",
        &mut reg,
        &|i| i.stats.become_master,
    );
    per_inst(
        "keepalived_release_master",
        "Released master",
        &mut reg,
        &|i| i.stats.release_master,
    );
    per_inst(
        "keepalived_priority_zero_received",
        "Priority zero received",
        &mut reg,
        &|i| i.stats.pri_zero_rcvd,
    );
    per_inst(
        "keepalived_priority_zero_sent",
        "Priority zero sent",
        &mut reg,
        &|i| i.stats.pri_zero_sent,
    );
    per_inst(
        "keepalived_authentication_failure",
        "Authentication failure",
        &mut reg,
        &|i| i.auth_failure,
    );
    per_inst(
        "keepalived_advertisements_interval_errors",
        "Advertisement interval errors",
        &mut reg,
        &|i| i.advert_interval_err,
    );
    per_inst(
        "keepalived_address_list_errors",
        "Address list errors",
        &mut reg,
        &|i| i.addr_list_err,
    );
    // Dropped by the receive path before an instance sees them (haxdp_drops has them by
    // reason): 0 here, present so that keepalived-exporter's queries find the series.
    for (name, help) in [
        ("keepalived_packet_length_errors", "Packet length errors"),
        ("keepalived_ip_ttl_errors", "TTL errors"),
        ("keepalived_invalid_type_received", "Invalid type errors"),
        (
            "keepalived_authentication_invalid",
            "Authentication invalid",
        ),
        (
            "keepalived_authentication_mismatch",
            "Authentication mismatch",
        ),
    ] {
        per_inst(name, help, &mut reg, &|_| 0);
    }
    let scripts = Family::<ScriptLabels, Gauge>::default();
    for (name, good) in &snap.scripts {
        if let Some(good) = good {
            scripts
                .get_or_create(&ScriptLabels { name: name.clone() })
                .set(i64::from(*good));
        }
    }
    reg.register("keepalived_script_status", "Tracker Script Status", scripts);

    // haxdp's own.
    let eff = Family::<InstLabels, Gauge>::default();
    let base = Family::<InstLabels, Gauge>::default();
    let age_ms = Family::<InstLabels, Gauge>::default();
    let path = Family::<PathLabels, Gauge>::default();
    let peers = Family::<InstLabels, Gauge>::default();
    for s in &snap.status.instances {
        let l = InstLabels {
            iname: s.name.clone(),
            intf: s.interface.clone(),
            vrid: s.vrid.to_string(),
        };
        eff.get_or_create(&l).set(i64::from(s.effective_priority));
        base.get_or_create(&l).set(i64::from(s.base_priority));
        if let Some(a) = s.last_advert_age_ms {
            age_ms.get_or_create(&l).set(a as i64);
        }
        path.get_or_create(&PathLabels {
            iname: s.name.clone(),
            intf: s.interface.clone(),
            vrid: s.vrid.to_string(),
            path: s.receive_path.clone(),
        })
        .set(1);
        if let Some((_, n)) = snap.peers.iter().find(|(n, _)| *n == s.name) {
            peers.get_or_create(&l).set(*n as i64);
        }
    }
    reg.register(
        "haxdp_effective_priority",
        "Effective priority (base priority adjusted by tracked items)",
        eff,
    );
    reg.register("haxdp_base_priority", "Configured priority", base);
    reg.register(
        "haxdp_last_advert_age_milliseconds",
        "Age of the followed master's last advert, as a backup sees it",
        age_ms,
    );
    reg.register(
        "haxdp_receive_path",
        "Receive path of the instance's adverts (xdp-native, xdp-skb, socket): 1",
        path,
    );
    reg.register(
        "haxdp_peers",
        "Sources the XDP program tracks for the instance (PEERS entries)",
        peers,
    );
    let drops = Family::<DropLabels, Counter>::new_with_constructor(Counter::default);
    for (p, map) in [
        ("xdp", &snap.status.drops.xdp),
        ("socket", &snap.status.drops.socket),
    ] {
        for (reason, n) in map {
            drops
                .get_or_create(&DropLabels {
                    path: p.into(),
                    reason: reason.clone(),
                })
                .inc_by(*n);
        }
    }
    reg.register(
        "haxdp_drops",
        "Adverts dropped by the receive path, by reason",
        drops,
    );
    let snap_age: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    snap_age.set(age.as_secs_f64());
    reg.register(
        "haxdp_snapshot_age_seconds",
        "Age of the engine's last published snapshot (grows when the engine hangs)",
        snap_age,
    );
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// Binds the listener now (so a bad address fails the start) and serves it on a thread
/// of its own.
pub fn start(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    std::thread::Builder::new()
        .name("haxdp-metrics".into())
        .spawn(move || serve(listener))?;
    Ok(())
}

fn serve(listener: TcpListener) {
    // One scrape at a time, each bounded: a slow or malicious client holds nothing but
    // this thread, and only for the timeouts.
    for conn in listener.incoming() {
        let Ok(mut c) = conn else { continue };
        let _ = handle(&mut c);
    }
}

fn handle(c: &mut TcpStream) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while n < buf.len() {
        let r = c.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n")
            || buf[..n].windows(2).any(|w| w == b"\n\n")
        {
            break;
        }
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let line = req.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = if method == "GET" && path == "/metrics" {
        let latest = LATEST
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| (l.snap.clone(), l.at.elapsed())));
        let body = match &latest {
            Some((s, age)) => render(Some(s), *age),
            None => render(None, Duration::ZERO),
        };
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        )
    } else {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes())?;
    c.write_all(body.as_bytes())?;
    c.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_exporter_names_and_labels() {
        let mut i = InstanceDump {
            name: "VI_1".into(),
            ifname: "eth0".into(),
            vrid: 51,
            state: "MASTER".into(),
            vips: vec!["192.0.2.100/24".into(), "192.0.2.101/32".into()],
            ..Default::default()
        };
        i.stats.advert_sent = 7;
        i.stats.become_master = 1;
        let snap = Snapshot {
            instances: vec![i],
            scripts: vec![("chk_nginx".into(), Some(true))],
            ..Default::default()
        };
        let out = render(Some(&snap), Duration::ZERO);
        assert!(out.contains("keepalived_up 1"), "{out}");
        assert!(
            out.contains(
                "keepalived_vrrp_state{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\",ip_address=\"192.0.2.100/24\"} 2"
            ),
            "{out}"
        );
        assert!(out.contains("ip_address=\"192.0.2.101\"} 2"), "{out}");
        assert!(
            out.contains(
                "keepalived_advertisements_sent_total{iname=\"VI_1\",intf=\"eth0\",vrid=\"51\"} 7"
            ),
            "{out}"
        );
        assert!(out.contains("keepalived_become_master_total{"), "{out}");
        assert!(
            out.contains("keepalived_priority_zero_sent_total{"),
            "{out}"
        );
        assert!(
            out.contains("keepalived_authentication_failure_total{"),
            "{out}"
        );
        assert!(
            out.contains("keepalived_script_status{name=\"chk_nginx\"} 1"),
            "{out}"
        );
        let none = render(None, Duration::ZERO);
        assert!(none.contains("keepalived_up 0"), "{none}");
    }
}
