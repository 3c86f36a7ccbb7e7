//! `cargo xtask lab`: the seeds' active-active nginx pair, for real, in
//! network namespaces.
//!
//! Two load balancers run Debian's nginx and haxdp: VI_1 (VIP1) is master on
//! lb1 and backup on lb2, VI_2 (VIP2) the other way round, each protected by
//! haxdp's native nginx check. A client probes both VIPs over HTTP every
//! 10 ms and records who answered. The drill: stop nginx on lb1 (VIP1 moves
//! to lb2), start it again (VIP1 comes back), kill lb2's daemon (VIP2 moves
//! to lb1). The timeline shows each step's outage as the client saw it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use haxdp_tests::{wait_for, Lan, Netns, Proc, TempDir};

const VIP1: &str = "192.0.2.100";
const VIP2: &str = "192.0.2.200";

fn lb_config(name: &str, prio1: u8, prio2: u8, dir: &Path) -> String {
    let pid = dir.join("nginx.pid");
    format!(
        "! {name}: the seeds' active-active pair, with haxdp's native nginx check
global_defs {{
    router_id {name}
}}

vrrp_nginx_check chk_nginx {{
    url http://127.0.0.1/health
    expect 200
    interval 0.2
    timeout 0.1
    rise 2
    fall 2
    weight -20
    pidfile {pid}
}}

vrrp_instance VI_1 {{
    state {s1}
    interface eth0
    virtual_router_id 51
    priority {prio1}
    advert_int 0.1
    version 3
    track_script {{
        chk_nginx
    }}
    virtual_ipaddress {{
        {VIP1}/24
    }}
}}

vrrp_instance VI_2 {{
    state {s2}
    interface eth0
    virtual_router_id 52
    priority {prio2}
    advert_int 0.1
    version 3
    track_script {{
        chk_nginx
    }}
    virtual_ipaddress {{
        {VIP2}/24
    }}
}}
",
        pid = pid.display(),
        s1 = if prio1 > prio2 { "MASTER" } else { "BACKUP" },
        s2 = if prio2 > prio1 { "MASTER" } else { "BACKUP" },
    )
}

/// A minimal nginx serving `name` on port 80, every file under `dir` (the
/// lab's and the benchmark's load balancers).
pub(crate) fn nginx_config(name: &str, dir: &Path) -> String {
    format!(
        "daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 80;
        location / {{
            return 200 \"{name}\\n\";
        }}
    }}
}}
",
        dir = dir.display()
    )
}

struct Lb<'a> {
    name: &'static str,
    ns: &'a Netns,
    dir: PathBuf,
    conf: PathBuf,
    nginx: Option<Proc>,
    haxdp: Option<Proc>,
    bin: PathBuf,
}

impl<'a> Lb<'a> {
    fn start_nginx(&mut self) {
        let conf = self.dir.join("nginx.conf");
        self.nginx = Some(self.ns.spawn(
            &[
                "nginx",
                "-c",
                conf.to_str().unwrap_or_default(),
                "-p",
                self.dir.to_str().unwrap_or_default(),
            ],
            &self.dir.join("nginx.out"),
        ));
    }

    fn stop_nginx(&mut self) {
        if let Some(mut p) = self.nginx.take() {
            p.signal(libc::SIGTERM);
            p.wait_exit(Duration::from_secs(5));
        }
    }

    fn start_haxdp(&mut self) {
        let n = std::fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0);
        self.haxdp = Some(self.ns.spawn(
            &[
                self.bin.to_str().unwrap_or_default(),
                "run",
                "-f",
                self.conf.to_str().unwrap_or_default(),
                "--state-dir",
                self.dir.join("state").to_str().unwrap_or_default(),
            ],
            &self.dir.join(format!("haxdp-{n}.log")),
        ));
    }
}

/// One probe result.
#[derive(Clone)]
struct Probe {
    at: Instant,
    vip: &'static str,
    /// The body ("lb1" / "lb2"), or None when nobody answered in time.
    who: Option<String>,
}

fn http_get(vip: &str) -> Option<String> {
    let addr: SocketAddr = format!("{vip}:80").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(50)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(50))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split("\r\n\r\n").nth(1).map(|b| b.trim().to_string())
}

/// Enters a network namespace on the current thread only (setns(2) with
/// CLONE_NEWNET affects the calling thread).
fn enter_netns(name: &str) -> Result<()> {
    let f = std::fs::File::open(format!("/run/netns/{name}"))
        .with_context(|| format!("open /run/netns/{name}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace fd; affects this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns {name}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn start_prober(
    client: String,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Probe>>>, std::thread::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let h = std::thread::spawn(move || {
        if let Err(e) = enter_netns(&client) {
            eprintln!("lab: prober: {e:#}");
            return;
        }
        while !stop.load(Ordering::Relaxed) {
            for vip in [VIP1, VIP2] {
                let who = http_get(vip);
                if let Ok(mut v) = l.lock() {
                    v.push(Probe {
                        at: Instant::now(),
                        vip,
                        who,
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (log, h)
}

/// The longest run of failed probes of `vip` after `from`, and who answers at the end.
fn outage(log: &[Probe], vip: &str, from: Instant) -> (Duration, Option<String>) {
    let mut worst = Duration::ZERO;
    let mut down_since: Option<Instant> = None;
    let mut last_ok: Option<Instant> = None;
    let mut who = None;
    for p in log.iter().filter(|p| p.vip == vip && p.at >= from) {
        match &p.who {
            Some(w) => {
                if let Some(d) = down_since.take() {
                    // The outage runs from the last good probe before it.
                    let start = last_ok.unwrap_or(d);
                    worst = worst.max(p.at - start);
                }
                last_ok = Some(p.at);
                who = Some(w.clone());
            }
            None => {
                down_since.get_or_insert(p.at);
            }
        }
    }
    if let Some(d) = down_since {
        worst = worst.max(Instant::now() - last_ok.unwrap_or(d));
        who = None;
    }
    (worst, who)
}

fn haxdp_status(ns: &Netns, bin: &Path) -> String {
    let out = ns.try_exec(&[bin.to_str().unwrap_or_default(), "status"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn answers(log: &Arc<Mutex<Vec<Probe>>>, vip: &str, who: &str, since: Instant) -> bool {
    log.lock()
        .map(|v| {
            v.iter()
                .rev()
                .find(|p| p.vip == vip && p.at >= since)
                .is_some_and(|p| p.who.as_deref() == Some(who))
        })
        .unwrap_or(false)
}

/// Waits for `vip` to be answered by `want` after `since`, then reports the
/// longest outage the client saw: one row of the drill summary.
fn observe_step(
    log: &Arc<Mutex<Vec<Probe>>>,
    step: &'static str,
    vip: &'static str,
    want: &str,
    since: Instant,
    stamp: &dyn Fn(Instant) -> String,
) -> (&'static str, bool, Duration) {
    let ok = wait_for(Duration::from_secs(5), || {
        answers(log, vip, want, since).then_some(())
    });
    // A little longer, so that a flap right after the move would show.
    std::thread::sleep(Duration::from_millis(300));
    let (gap, who) = outage(
        &log.lock().map(|v| v.clone()).unwrap_or_default(),
        vip,
        since,
    );
    println!(
        "{} {vip} now answered by {} (outage seen by the client: {:.0} ms)",
        stamp(Instant::now()),
        who.as_deref().unwrap_or("nobody"),
        gap.as_secs_f64() * 1e3
    );
    (step, ok.is_some(), gap)
}

/// Runs the lab. `bin` is the built haxdp binary.
pub fn run(bin: &Path, keep: bool) -> Result<()> {
    haxdp_tests::require_root();
    for tool in ["nginx", "ip"] {
        if std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            bail!("{tool} is missing: run `cargo xtask setup` (installs nginx-light and iproute2)");
        }
    }
    println!("lab: building namespaces (bridge, lb1, lb2, client) on 192.0.2.0/24");
    let lan = Lan::new(3);
    let tmp = TempDir::new("lab");
    let mut lbs = Vec::new();
    for (i, (name, p1, p2)) in [("lb1", 100u8, 90u8), ("lb2", 90, 100)]
        .into_iter()
        .enumerate()
    {
        let dir = tmp.path.join(name);
        for sub in ["", "body", "proxy", "fastcgi", "uwsgi", "scgi", "state"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(dir.join("nginx.conf"), nginx_config(name, &dir))?;
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, lb_config(name, p1, p2, &dir))?;
        lbs.push(Lb {
            name,
            ns: &lan.hosts[i],
            dir,
            conf,
            nginx: None,
            haxdp: None,
            bin: bin.to_path_buf(),
        });
    }
    for lb in lbs.iter_mut() {
        lb.start_nginx();
        lb.start_haxdp();
    }
    let client = &lan.hosts[2];
    let stop = Arc::new(AtomicBool::new(false));
    let (log, prober) = start_prober(client.name.clone(), stop.clone());
    let t0 = Instant::now();
    let stamp = |t: Instant| format!("{:>8.3}s", (t - t0).as_secs_f64());

    let ok = wait_for(Duration::from_secs(10), || {
        (answers(&log, VIP1, "lb1", t0) && answers(&log, VIP2, "lb2", t0)).then_some(())
    });
    if ok.is_none() {
        for lb in &lbs {
            eprintln!(
                "--- {}:\n{}",
                lb.name,
                lb.haxdp.as_ref().map(|p| p.log_text()).unwrap_or_default()
            );
        }
        bail!("the pair did not converge: VIP1 should answer from lb1 and VIP2 from lb2");
    }
    println!(
        "{} VIP1 {VIP1} -> lb1, VIP2 {VIP2} -> lb2 (active-active)",
        stamp(Instant::now())
    );
    let mut rows = Vec::new();

    // Step 1: nginx dies on lb1: VIP1 moves to lb2.
    let s1 = Instant::now();
    lbs[0].stop_nginx();
    println!("{} stop nginx on lb1", stamp(s1));
    rows.push(observe_step(
        &log,
        "stop nginx on lb1: VIP1 -> lb2",
        VIP1,
        "lb2",
        s1,
        &stamp,
    ));

    // Step 2: nginx is back on lb1: VIP1 returns (preempt).
    let s2 = Instant::now();
    lbs[0].start_nginx();
    println!("{} start nginx on lb1", stamp(s2));
    rows.push(observe_step(
        &log,
        "start nginx on lb1: VIP1 -> lb1",
        VIP1,
        "lb1",
        s2,
        &stamp,
    ));

    // Step 3: lb2's daemon is killed: VIP2 moves to lb1.
    let s3 = Instant::now();
    if let Some(p) = &lbs[1].haxdp {
        p.signal(libc::SIGKILL);
    }
    println!("{} kill -9 haxdp on lb2", stamp(s3));
    rows.push(observe_step(
        &log,
        "kill -9 haxdp on lb2: VIP2 -> lb1",
        VIP2,
        "lb1",
        s3,
        &stamp,
    ));

    stop.store(true, Ordering::Relaxed);
    let _ = prober.join();
    println!("\nhaxdp status on lb1:\n{}", haxdp_status(lbs[0].ns, bin));
    println!("drill summary:");
    println!("| step | result | client-observed outage |");
    println!("| --- | --- | --- |");
    for (step, ok, gap) in &rows {
        println!(
            "| {step} | {} | {:.0} ms |",
            if *ok { "ok" } else { "FAILED" },
            gap.as_secs_f64() * 1e3
        );
    }
    let failed = rows.iter().any(|r| !r.1);
    if keep {
        println!("\n--keep: the lab stays up. Enter it with:");
        for lb in &lbs {
            println!(
                "  ip netns exec {} bash      # {}: `{} status`, `{} maps`",
                lb.ns.name,
                lb.name,
                bin.display(),
                bin.display()
            );
        }
        println!(
            "  ip netns exec {} bash      # client: curl http://{VIP1}/ http://{VIP2}/",
            client.name
        );
        println!(
            "Remove it with: ip netns del <name> for each (bridge {})",
            lan.bridge.name
        );
        for lb in lbs.iter_mut() {
            if let Some(p) = lb.nginx.take() {
                std::mem::forget(p);
            }
            if let Some(p) = lb.haxdp.take() {
                std::mem::forget(p);
            }
        }
        std::mem::forget(tmp);
        std::mem::forget(lan);
    } else {
        for lb in lbs.iter_mut() {
            lb.stop_nginx();
            if let Some(mut p) = lb.haxdp.take() {
                p.signal(libc::SIGTERM);
                p.wait_exit(Duration::from_secs(5));
            }
        }
        drop(lbs);
        drop(lan);
        println!("lab removed");
    }
    if failed {
        bail!("a drill step failed (see the table above)");
    }
    Ok(())
}
