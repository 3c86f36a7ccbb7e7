//! Compares our reading of the seed configs with `keepalived -t` (Debian's keepalived
//! 2.2.7), run inside a throwaway network namespace that has the seeds' interfaces, so that
//! keepalived checks the config rather than the machine.
//!
//! Needs root, `ip` and `keepalived`:
//! `cargo test -p haxdp-config --test keepalived_compare -- --ignored`

mod common;

use std::process::Command;

use common::*;
use haxdp_config::{Diagnostic, LoadError, ReadOptions, Severity};

const SEEDS: &[&str] = &[
    "seed-000/lb1.conf",
    "seed-000/lb2.conf",
    "seed-001/master.conf",
    "seed-002/backup.conf",
    "seed-002/master.conf",
    "seed-003/backup.conf",
    "seed-003/master.conf",
    "seed-004/keepalived.conf",
];

/// The interfaces the seeds name.
const IFACES: &[&str] = &["eno16777736", "ens32", "ens160", "ens33", "eth0"];

struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "hxcfg-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        for (n, ifname) in IFACES.iter().enumerate() {
            let peer = format!("hxcp{n}");
            run(&[
                "ip", "-n", &ns.0, "link", "add", ifname, "type", "veth", "peer", "name", &peer,
            ]);
            run(&["ip", "-n", &ns.0, "link", "set", ifname, "up"]);
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pairs inside it.
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

/// `keepalived -t` on `file` inside `ns`: (exit code, the lines it printed).
fn keepalived_t(ns: &Netns, file: &std::path::Path) -> (i32, Vec<String>) {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "keepalived", "-t", "-l", "-D", "-f"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run keepalived: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = text
        .lines()
        .filter(|l| {
            // keepalived's start-up chatter, not about the config.
            ![
                "Starting ",
                "Running on",
                "Command line",
                "Opening file",
                "Configuration file",
                "NOTICE",
                "Script user",
            ]
            .iter()
            .any(|p| l.starts_with(p))
                && !l.trim().is_empty()
        })
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// The config line keepalived names in `(file: Line N)` or `(Line N)`.
fn line_of(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Line ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Is keepalived's message about `line` also reported by us? A warning naming a line
/// range (the skipped virtual_server) covers every line in it.
fn covered(ours: &[Diagnostic], line: u32) -> bool {
    ours.iter().any(|d| {
        if d.line == line {
            return true;
        }
        let Some(pos) = d.message.find("lines ") else {
            return false;
        };
        let range: String = d.message[pos + 6..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        match range
            .split_once('-')
            .map(|(a, b)| (a.parse::<u32>(), b.parse::<u32>()))
        {
            Some((Ok(a), Ok(b))) => (a..=b).contains(&line),
            _ => false,
        }
    })
}

/// keepalived's messages without a line, and the diagnostic of ours that says the same.
fn covered_unlined(ours: &[Diagnostic], msg: &str) -> bool {
    let has = |kw: &str| ours.iter().any(|d| d.keyword == kw);
    if msg.contains("since not found/accessible") {
        // Disabling track script X: the script is shell syntax or missing here.
        return has("script");
    }
    if msg.contains("Strict mode does not support authentication") {
        return has("authentication");
    }
    if msg.contains("State MASTER must match being address owner") {
        return has("state");
    }
    if msg.contains("since own interface") {
        return has("track_interface");
    }
    if msg.contains("SECURITY VIOLATION") {
        return has("enable_script_security");
    }
    if msg.starts_with("Warning - script") && msg.contains("executable by uid") {
        return has("script");
    }
    false
}

#[test]
#[ignore = "needs root, ip netns and keepalived: cargo test -p haxdp-config --test keepalived_compare -- --ignored"]
fn seeds_agree_with_keepalived_t() {
    let ns = Netns::new();
    let mut report = Vec::new();
    for seed in SEEDS {
        let path = fixture(seed);
        let ours = haxdp_config::load_with(&path, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{seed}: we refuse it: {e}"));
        let (code, msgs) = keepalived_t(&ns, &path);
        let mut missed = Vec::new();
        for m in &msgs {
            let ok = match line_of(m) {
                Some(line) => covered(&ours.diagnostics, line),
                None => covered_unlined(&ours.diagnostics, m),
            };
            if !ok {
                missed.push(m.clone());
            }
        }
        // keepalived exits 0 only when it has nothing to say; then neither have we
        // anything worse than a note.
        if code == 0 {
            assert!(
                !ours
                    .diagnostics
                    .iter()
                    .any(|d| d.severity == Severity::Warning),
                "{seed}: keepalived -t is silent but we warn: {:?}",
                ours.diagnostics
            );
        }
        report.push(format!(
            "{seed}: keepalived -t exit {code}, {} message(s), {} ours",
            msgs.len(),
            ours.diagnostics.len()
        ));
        assert!(
            missed.is_empty(),
            "{seed}: keepalived -t says what we do not:\n{}",
            missed.join("\n")
        );
    }
    println!("{}", report.join("\n"));
}

/// Configs keepalived complains about and we refuse.
const BROKEN: &[(&str, &str)] = &[
    ("vrid", "vrrp_instance X {\n interface eth0\n virtual_router_id 300\n priority 100\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n"),
    ("priority", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n priority 0\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n"),
    ("unclosed", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress {\n  192.0.2.1\n }\n"),
    ("extra brace", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n}\n"),
    ("bad address", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress {\n  192.0.2.300/24\n }\n}\n"),
    ("mixed families", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress {\n  192.0.2.1\n  2001:db8::1\n }\n}\n"),
    ("v3 advert_int", "global_defs {\n vrrp_version 3\n}\nvrrp_instance X {\n interface eth0\n virtual_router_id 30\n advert_int 41\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n"),
    ("v2 advert_int", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n advert_int 0.5\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n"),
    ("duplicate vrid", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress {\n  192.0.2.1\n }\n}\nvrrp_instance Y {\n interface eth0\n virtual_router_id 30\n virtual_ipaddress {\n  192.0.2.2\n }\n}\n"),
    ("missing track_script", "vrrp_instance X {\n interface eth0\n virtual_router_id 30\n track_script {\n  nosuch\n }\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n"),
];

#[test]
#[ignore = "needs root, ip netns and keepalived: cargo test -p haxdp-config --test keepalived_compare -- --ignored"]
fn broken_configs_are_refused_by_both() {
    let ns = Netns::new();
    let t = TempDir::new("kcmp");
    for (what, text) in BROKEN {
        let path = t.write(&format!("{}.conf", what.replace(' ', "-")), text.as_bytes());
        let (code, msgs) = keepalived_t(&ns, &path);
        assert_ne!(code, 0, "{what}: keepalived -t accepts it");
        assert!(!msgs.is_empty(), "{what}: keepalived -t printed nothing");
        match haxdp_config::load_with(&path, &ReadOptions::default()) {
            Err(LoadError::Invalid { diagnostics, .. }) => {
                let first = diagnostics
                    .iter()
                    .find(|d| d.severity == Severity::Error)
                    .map(|d| d.to_string());
                println!("{what}: keepalived: {:?} / haxdp: {first:?}", msgs.first());
            }
            other => panic!("{what}: we accept what keepalived rejects: {other:?}"),
        }
    }
}
