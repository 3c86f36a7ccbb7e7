//! The resume checkpoint: after a crash (`kill -9`, `Restart=` bringing the daemon back)
//! a master takes its mastership straight back instead of failing over twice.
//!
//! Every [`RESUME_EVERY`] and at every state change the engine writes which instances are
//! MASTER, when (CLOCK_MONOTONIC, on which boot) and the advert each sends. A daemon
//! started after a crash finds the file and, before anything else (reading the
//! configuration, loading the XDP program: the verifier takes most of a second), sends
//! those adverts again every interval from its own sockets: the **bridge**. The peers'
//! Master_Down_Timers (RFC 9568 6.4.2: 3 intervals and the skew) never run out while the
//! new process starts; once its instances run, the engine decides which resume
//! ([`Engine::resume_candidates`]) and stops the bridge.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use haxdp_vrrp::State;
use tracing::{info, warn};

use super::{Engine, Inst};
use crate::advert_socket::AdvertSocket;
use crate::clock;
use crate::xdp::loader::newest_advert;
use haxdp_vrrp::Input;

/// In the state dir: which instances are MASTER, rewritten every [`RESUME_EVERY`] and at
/// every state change, removed at a clean stop; after a crash the next daemon reads it.
pub(super) const RESUME_FILE: &str = "haxdp.resume";
pub(super) const RESUME_EVERY: Duration = Duration::from_millis(200);
/// The bridge stops by itself after this long (the engine stops it much sooner).
const BRIDGE_AT_MOST: Duration = Duration::from_secs(10);

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ResumeCheckpoint {
    /// `/proc/sys/kernel/random/boot_id`: CLOCK_MONOTONIC restarts with the machine.
    boot_id: String,
    mono_ns: u64,
    masters: Vec<String>,
    /// What each master sends, for the bridge.
    #[serde(default)]
    adverts: Vec<KeptAdvert>,
}

/// A master's advert as the checkpoint keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct KeptAdvert {
    name: String,
    ifname: String,
    ifindex: u32,
    src: IpAddr,
    group: IpAddr,
    dsts: Vec<IpAddr>,
    interval_cs: u16,
    advert: haxdp_vrrp::Advert,
}

/// Whether a master silent for `elapsed_ns` may take its mastership back: the peers count
/// their Master_Down_Timer (3 intervals at least) from its last advert, which went out at
/// most one interval before the checkpoint; under 1.75 intervals none can have fired.
fn within_resume_window(elapsed_ns: u64, interval_ns: u64) -> bool {
    elapsed_ns < 2 * interval_ns - interval_ns / 4
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The bridge's task and when it last advertised each instance.
pub(super) struct Bridge {
    last: Arc<Mutex<HashMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Bridge {
    /// After a crash: the checkpoint's masters whose peers are still waiting (less than
    /// 1.75 of their intervals since the checkpoint, as [`Engine::resume_candidates`]
    /// decides) are advertised at once and every interval until [`Bridge::stop`].
    /// `None` after a clean stop, on another boot, or when no master may resume.
    pub(super) fn start(state_dir: &std::path::Path) -> Option<Bridge> {
        let text = std::fs::read_to_string(state_dir.join(RESUME_FILE)).ok()?;
        let cp: ResumeCheckpoint = serde_json::from_str(&text).ok()?;
        if cp.boot_id != boot_id() {
            return None;
        }
        let now = clock::monotonic_ns();
        let mut sends = Vec::new();
        for k in cp.adverts {
            let int = u64::from(k.interval_cs) * haxdp_vrrp::fsm::NS_PER_CS;
            if !within_resume_window(now.saturating_sub(cp.mono_ns), int) {
                continue;
            }
            let frames: Vec<(IpAddr, Vec<u8>)> = k
                .dsts
                .iter()
                .filter_map(|d| {
                    haxdp_vrrp::encode(&k.advert, k.src, *d)
                        .ok()
                        .map(|b| (*d, b))
                })
                .collect();
            match AdvertSocket::open(&k.ifname, k.ifindex, k.src, k.group, false) {
                Ok(sock) => sends.push((k.name, sock, frames, Duration::from_nanos(int))),
                Err(e) => warn!(
                    "{} vrid {}: cannot advertise while starting after a crash: {e}",
                    k.ifname, k.advert.vrid
                ),
            }
        }
        if sends.is_empty() {
            return None;
        }
        let names: Vec<&str> = sends.iter().map(|s| s.0.as_str()).collect();
        info!(
            "after a crash: advertising {} while starting, so that no peer takes over",
            names.join(", ")
        );
        let last = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st) = (last.clone(), stop.clone());
        // A thread of its own: the engine's thread is busy with blocking work while it
        // starts (reading the configuration, the XDP verifier), which would hold back a
        // task on its runtime.
        let thread = std::thread::Builder::new()
            .name("haxdp-bridge".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut due: Vec<std::time::Instant> = sends.iter().map(|_| start).collect();
                while !st.load(Ordering::SeqCst) && start.elapsed() < BRIDGE_AT_MOST {
                    let now = std::time::Instant::now();
                    for (i, (name, sock, frames, every)) in sends.iter().enumerate() {
                        if now < due[i] {
                            continue;
                        }
                        for (dst, bytes) in frames {
                            if let Err(e) = sock.send(bytes, *dst) {
                                warn!("{name}: {e}");
                            }
                        }
                        if let Ok(mut m) = l.lock() {
                            m.insert(name.clone(), clock::monotonic_ns());
                        }
                        due[i] += *every;
                    }
                    // Short naps: `stop` is seen within 5 ms.
                    let next = due.iter().min().copied().unwrap_or(now);
                    let nap = next
                        .saturating_duration_since(std::time::Instant::now())
                        .min(Duration::from_millis(5));
                    std::thread::sleep(nap);
                }
            })
            .ok()?;
        Some(Bridge {
            last,
            stop,
            thread: Some(thread),
        })
    }

    /// When the bridge last advertised `name` (CLOCK_MONOTONIC).
    pub(super) fn last_sent(&self, name: &str) -> Option<u64> {
        self.last.lock().ok()?.get(name).copied()
    }

    /// Stops the thread; returns once it no longer sends.
    pub(super) fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Engine {
    /// After a crash (the resume checkpoint of a daemon that did not stop cleanly is
    /// there), the instances that were MASTER and may take the mastership straight back:
    /// the peers count their Master_Down_Timer (3 of our intervals at least) from our last
    /// advert, which went out at most one interval before the checkpoint's last rewrite;
    /// if less than 1.75 intervals have passed since, none of them can have taken over
    /// yet, and our advert reaches them before their timer fires. `start_mode` says what
    /// was decided and why.
    pub(super) fn resume_candidates(&mut self, now: u64) -> Vec<usize> {
        let path = self.opts.state_dir.join(RESUME_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            self.start_mode = "fresh".into();
            return Vec::new();
        };
        let _ = std::fs::remove_file(&path);
        let cp: ResumeCheckpoint = match serde_json::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.start_mode =
                    format!("after a crash; {} unreadable ({e}): fresh", path.display());
                warn!("{}", self.start_mode);
                return Vec::new();
            }
        };
        if cp.boot_id != boot_id() {
            self.start_mode = "fresh (the checkpoint is from another boot)".into();
            return Vec::new();
        }
        let elapsed = now.saturating_sub(cp.mono_ns);
        let mut out = Vec::new();
        let mut notes = Vec::new();
        for (i, inst) in self.insts.iter().enumerate() {
            if !cp.masters.contains(&inst.spec.core.name) {
                continue;
            }
            // The kernel's view until the crash: another router that advertised for this
            // VRID after our last checkpoint was taking over (or preempting) already.
            let other = newest_advert(&self.crashed_peers, inst.ifindex, inst.spec.core.vrid)
                .filter(|(t, src)| *t > cp.mono_ns && *src != inst.sock.source());
            if let Some((_, src)) = other {
                notes.push(format!(
                    "{} was MASTER but {src} advertised after the last checkpoint: elected again",
                    inst.spec.core.name
                ));
                continue;
            }
            let int = u64::from(inst.core.config().advert_int_cs) * haxdp_vrrp::fsm::NS_PER_CS;
            // The bridge kept advertising while this process started: count from its
            // last advert.
            let elapsed = self
                .bridge
                .as_ref()
                .and_then(|b| b.last_sent(&inst.spec.core.name))
                .map_or(elapsed, |at| now.saturating_sub(at).min(elapsed));
            if within_resume_window(elapsed, int) {
                out.push(i);
                notes.push(format!("{} resumed as MASTER", inst.spec.core.name));
            } else {
                notes.push(format!(
                    "{} was MASTER but {} ms have passed (a peer may have taken over): elected again",
                    inst.spec.core.name,
                    elapsed / 1_000_000
                ));
            }
        }
        self.start_mode = if notes.is_empty() {
            "after a crash; no instance was MASTER: fresh".into()
        } else {
            format!(
                "after a crash, {} ms after the last checkpoint: {}",
                elapsed / 1_000_000,
                notes.join("; ")
            )
        };
        info!("started {}", self.start_mode);
        out
    }

    /// [`Engine::start_instance`] for an instance that takes its mastership back after a
    /// crash: its VIPs are still on the interface, it advertises at once.
    pub(super) async fn resume_instance(&mut self, i: usize, now: u64) {
        if !self.insts[i].link_up && !self.insts[i].spec.dont_track_primary {
            self.start_instance(i, now).await;
            return;
        }
        self.recompute_priority(i, now).await;
        let acts = self.insts[i].core.handle(now, Input::Resume);
        self.apply(i, acts).await;
    }

    /// Rewrites the resume checkpoint: which instances are MASTER, when (CLOCK_MONOTONIC)
    /// and on which boot. Every [`RESUME_EVERY`] and at every state change, so that a
    /// daemon restarted after a crash knows how long its peers have been waiting.
    pub(super) fn write_resume(&mut self) {
        if self.stopping {
            return;
        }
        let masters: Vec<&Inst> = self
            .insts
            .iter()
            .filter(|i| i.core.state() == State::Master)
            .collect();
        // A node of backups has nothing to resume after a crash (the file's time only
        // bounds how long a master may take its mastership back): the checkpoint is
        // written once when the last master leaves, not every RESUME_EVERY.
        if masters.is_empty() && self.resume_idle {
            return;
        }
        let idle = masters.is_empty();
        let cp = ResumeCheckpoint {
            boot_id: boot_id(),
            mono_ns: clock::monotonic_ns(),
            masters: masters.iter().map(|i| i.spec.core.name.clone()).collect(),
            adverts: masters
                .iter()
                .map(|i| KeptAdvert {
                    name: i.spec.core.name.clone(),
                    ifname: i.spec.ifname.clone(),
                    ifindex: i.ifindex,
                    src: i.sock.source(),
                    group: i.spec.mcast_group,
                    dsts: i.dsts.clone(),
                    interval_cs: i.core.config().advert_int_cs,
                    advert: i.core.advert(i.core.effective_priority()),
                })
                .collect(),
        };
        let path = self.opts.state_dir.join(RESUME_FILE);
        if let Ok(body) = serde_json::to_vec(&cp) {
            let written = crate::ops::write_file_nofollow(&path, &body);
            self.resume_idle = idle && written.is_ok();
            if let Err(e) = written {
                if !self.resume_write_failed {
                    warn!(
                        "cannot write {}: {e}; a restart after a crash will not resume",
                        path.display()
                    );
                    self.resume_write_failed = true;
                }
            }
        }
    }
}
