//! Data-driven conformance cases, grouped in the spirit of the UNH-IOL VRRP test suites
//! (state machine, timers, invalid packets, proper transmission).
//!
//! Each folder under `tests/conformance/` has `input.json`:
//! - `config`: fields of `InstanceConfig` overriding the defaults below;
//! - `events`: `{"at_ms", ...}` with one of `input` (an `Input` as JSON), `advert` (an
//!   advert from `src` built from the instance's own parameters with overrides), or
//!   `packet` (`src`, optional `dst`, `hex` of a VRRP message that goes through `decode`);
//! - `until_ms`: when to stop firing timers;
//! - optional `expect_sent_hex`: the exact messages the instance must send, in order,
//!   checked independently of `expected.json` (e.g. frames captured from keepalived).
//!
//! `expected.json` is the transcript: every step that produced actions, changed state or
//! moved the deadline.
//! `HAXDP_REGEN=1 cargo test -p haxdp-vrrp --test conformance` rewrites the transcripts
//! after a deliberate change; review the diff before committing it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use haxdp_vrrp::{decode, encode, Action, Advert, Input, Instance, InstanceConfig};
use serde_json::{json, Value};

const MS: u64 = 1_000_000;

fn default_config() -> Value {
    json!({
        "name": "VI_1", "vrid": 51, "version": "V3", "family": "V4", "priority": 100,
        "advert_int_cs": 100, "preempt": true, "preempt_delay_cs": 0, "accept": false,
        "vips": ["192.0.2.100"], "primary_addr": "192.0.2.10", "auth_pass": null,
        "start_as_master": false, "higher_prio_send_advert": false, "address_owner": false
    })
}

fn merge(base: &mut Value, over: &Value) {
    if let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mcast(src: IpAddr) -> IpAddr {
    match src {
        IpAddr::V4(_) => "224.0.0.18".parse().expect("literal"),
        IpAddr::V6(_) => "ff02::12".parse().expect("literal"),
    }
}

struct Run {
    inst: Instance,
    transcript: Vec<Value>,
    sent: Vec<String>,
}

impl Run {
    fn record(
        &mut self,
        now: u64,
        on: Value,
        mut actions: Vec<Action>,
        old: (haxdp_vrrp::State, Option<u64>),
    ) {
        // A transition shows in the transcript as the step's `state`.
        actions.retain(|a| !matches!(a, Action::Transition { .. }));
        let state = self.inst.state();
        if actions.is_empty() && old == (state, self.inst.next_deadline()) {
            return;
        }
        let cfg = self.inst.config();
        let src = cfg.primary_addr;
        let mut acts = Vec::new();
        for a in &actions {
            let mut v = serde_json::to_value(a).expect("actions serialize");
            if let Action::SendAdvert { priority } = a {
                let bytes = encode(&self.inst.advert(*priority), src, mcast(src))
                    .unwrap_or_else(|e| panic!("instance built an unsendable advert: {e}"));
                self.sent.push(to_hex(&bytes));
                v = json!({ "send_advert": { "priority": priority, "hex": to_hex(&bytes) } });
            }
            acts.push(v);
        }
        self.transcript.push(json!({
            "at_ns": now,
            "on": on,
            "actions": acts,
            "state": state,
            "deadline_ns": self.inst.next_deadline(),
        }));
    }

    fn feed(&mut self, now: u64, on: Value, input: Input) {
        let old = (self.inst.state(), self.inst.next_deadline());
        let actions = self.inst.handle(now, input);
        self.record(now, on, actions, old);
    }

    fn timers_until(&mut self, t: u64, inclusive: bool) {
        while let Some(d) = self.inst.next_deadline() {
            if d > t || (!inclusive && d == t) {
                break;
            }
            self.feed(d, json!("timer"), Input::Timer);
        }
    }
}

fn run_case(dir: &Path) -> (Value, Vec<String>, Option<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("input.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let input: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut cfg = default_config();
    merge(&mut cfg, &input["config"]);
    let cfg: InstanceConfig =
        serde_json::from_value(cfg).unwrap_or_else(|e| panic!("{}: config: {e}", dir.display()));
    let inst = Instance::new(cfg.clone()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let own = inst.advert(cfg.priority);
    let mut run = Run {
        inst,
        transcript: Vec::new(),
        sent: Vec::new(),
    };
    let events = input["events"].as_array().cloned().unwrap_or_default();
    for ev in &events {
        let at = ev["at_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: event without at_ms", dir.display()))
            * MS;
        run.timers_until(at, false);
        if let Some(i) = ev.get("input") {
            let input: Input = serde_json::from_value(i.clone())
                .unwrap_or_else(|e| panic!("{}: {i}: {e}", dir.display()));
            run.feed(at, i.clone(), input);
        } else if let Some(a) = ev.get("advert") {
            let mut base = serde_json::to_value(&own).expect("advert serializes");
            merge(&mut base, a);
            let src: IpAddr = serde_json::from_value(a["src"].clone()).expect("advert.src");
            let advert: Advert = serde_json::from_value(base)
                .unwrap_or_else(|e| panic!("{}: {a}: {e}", dir.display()));
            run.feed(
                at,
                json!({ "advert": a }),
                Input::Advert {
                    src,
                    advert,
                    rx_ns: at,
                },
            );
        } else if let Some(p) = ev.get("packet") {
            let src: IpAddr = serde_json::from_value(p["src"].clone()).expect("packet.src");
            let dst: IpAddr = match p.get("dst") {
                Some(d) => serde_json::from_value(d.clone()).expect("packet.dst"),
                None => mcast(src),
            };
            let bytes = hex(p["hex"].as_str().expect("packet.hex"));
            match decode(&bytes, src, dst) {
                Ok(advert) => run.feed(
                    at,
                    json!({ "packet": p }),
                    Input::Advert {
                        src,
                        advert,
                        rx_ns: at,
                    },
                ),
                Err(e) => run.transcript.push(json!({
                    "at_ns": at, "on": { "packet": p }, "decode_error": format!("{e:?}"),
                    "state": run.inst.state(),
                })),
            }
        } else {
            panic!(
                "{}: event {ev} has no input, advert or packet",
                dir.display()
            );
        }
    }
    let until = input["until_ms"].as_u64().unwrap_or(0) * MS;
    run.timers_until(until, true);
    let expect_sent = input
        .get("expect_sent_hex")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|h| h.as_str().expect("hex string").to_string())
                .collect()
        });
    (Value::Array(run.transcript), run.sent, expect_sent)
}

#[test]
fn conformance_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/conformance")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input.json").exists())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 15,
        "expected at least 15 cases, found {}",
        dirs.len()
    );
    let regen = std::env::var_os("HAXDP_REGEN").is_some();
    let mut failed = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (transcript, sent, expect_sent) = run_case(dir);
        if let Some(want) = expect_sent {
            let got: Vec<&String> = sent.iter().take(want.len()).collect();
            let want: Vec<&String> = want.iter().collect();
            if got != want {
                eprintln!("{name}: sent {got:#?}\nwanted {want:#?}");
                failed.push(name.clone());
            }
        }
        let path = dir.join("expected.json");
        let pretty = serde_json::to_string_pretty(&transcript).expect("serialize") + "\n";
        if regen {
            std::fs::write(&path, pretty).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let want: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| {
                panic!(
                    "{}: missing or invalid; run with HAXDP_REGEN=1",
                    path.display()
                )
            });
        if want != transcript {
            eprintln!(
                "{name}: transcript differs\n--- expected\n{}\n--- got\n{pretty}",
                serde_json::to_string_pretty(&want).unwrap_or_default()
            );
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "failing cases: {failed:?}");
}
