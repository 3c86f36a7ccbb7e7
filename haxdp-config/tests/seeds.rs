//! Every keepalived.conf from the seed articles parses into the model its author meant.

mod common;

use std::net::IpAddr;

use common::*;
use haxdp_config::{AuthPass, Severity, StateHint, VrrpInstance, Weight};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn pass(s: &str) -> Option<AuthPass> {
    let mut bytes = [0u8; 8];
    for (d, s) in bytes.iter_mut().zip(s.bytes()) {
        *d = s;
    }
    Some(AuthPass { bytes })
}

fn w(value: i32) -> Weight {
    Weight {
        value,
        reverse: false,
    }
}

fn inst<'a>(l: &'a haxdp_config::Loaded, name: &str) -> &'a VrrpInstance {
    l.config
        .instance(name)
        .unwrap_or_else(|| panic!("no instance {name}"))
}

fn no_unknown_keywords(l: &haxdp_config::Loaded) {
    // The Chinese trailing comments must have been read as comments, not keywords.
    for d in &l.diagnostics {
        assert!(
            !d.message.contains("unknown"),
            "unexpected unknown keyword: {d}"
        );
    }
}

fn check_seed000(file: &str, router: &str, prio1: u8, prio2: u8) {
    let l = load_fixture(file);
    no_unknown_keywords(&l);
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some(router));
    assert_eq!(c.scripts.len(), 2);
    let chkfile = c.script("chkfile").expect("chkfile");
    assert_eq!(
        chkfile.script,
        "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0"
    );
    assert_eq!(chkfile.interval_ms, 1000);
    assert_eq!(chkfile.timeout_ms, 1000);
    assert_eq!(chkfile.weight, w(-2));
    let chkngx = c.script("chkngx").expect("chkngx");
    assert_eq!(chkngx.script, "/etc/keepalived/chkngx.sh");
    assert_eq!((chkngx.rise, chkngx.fall), (3, 3));
    assert_eq!(c.instances.len(), 2);
    for (name, vrid, prio, vip, label, pw) in [
        ("VI_1", 51, prio1, "192.168.124.251", "vip1", "8SSmX60h"),
        ("VI_2", 52, prio2, "192.168.124.252", "vip2", "9SSmX60h"),
    ] {
        let i = inst(&l, name);
        assert_eq!(i.interface, "eno16777736");
        assert_eq!(i.vrid, vrid);
        assert_eq!(i.priority, prio);
        let want_state = if prio == 100 {
            StateHint::Master
        } else {
            StateHint::Backup
        };
        assert_eq!(i.state, Some(want_state));
        assert_eq!(i.version, 2);
        assert_eq!(i.advert_int_cs, 100);
        assert_eq!(i.auth, pass(pw), "auth_pass truncated to 8 bytes");
        assert_eq!(i.vips.len(), 1);
        assert_eq!(i.vips[0].address, ip(vip));
        assert_eq!(i.vips[0].prefix_len, 24);
        assert_eq!(i.vips[0].dev, "eno16777736");
        assert_eq!(i.vips[0].label.as_deref(), Some(label));
        let ts: Vec<&str> = i.track_scripts.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(ts, ["chkfile", "chkngx"]);
        // Tracking the instance's own interface is dropped, as keepalived does: that
        // interface going down faults the instance anyway.
        assert!(i.track_interfaces.is_empty());
        assert_eq!(
            i.notify.master.as_ref().map(|n| n.command.as_str()),
            Some("/etc/keepalived/notify.sh master")
        );
        assert_eq!(
            i.notify.fault.as_ref().map(|n| n.command.as_str()),
            Some("/etc/keepalived/notify.sh fault")
        );
        assert_eq!(
            i.notify.notify.as_ref().map(|n| n.command.as_str()),
            Some("/etc/keepalived/notify.sh")
        );
        assert!(i.accept, "accept is on without vrrp_strict");
        assert_eq!(i.garp.master_delay_s, 5);
    }
    // keepalived -t reports both truncations at these lines too.
    has_diag(&l.diagnostics, Severity::Warning, 26, "first 8");
    has_diag(&l.diagnostics, Severity::Warning, 53, "first 8");
    has_diag(&l.diagnostics, Severity::Warning, 7, "shell syntax");
    has_diag(&l.diagnostics, Severity::Warning, 29, "own interface");
    has_diag(&l.diagnostics, Severity::Warning, 56, "own interface");
}

#[test]
fn seed000_lb1() {
    check_seed000("seed-000/lb1.conf", "host1", 100, 99);
}

#[test]
fn seed000_lb2() {
    check_seed000("seed-000/lb2.conf", "host2", 99, 100);
}

#[test]
fn seed001_strict_master() {
    let l = load_fixture("seed-001/master.conf");
    no_unknown_keywords(&l);
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert!(c.global.vrrp_strict);
    assert!(c.global.vrrp_skip_check_adv_addr);
    assert_eq!(c.global.garp.interval_us, 0);
    let s = c.script("chk_nginx").expect("chk_nginx");
    assert_eq!(s.script, "/etc/keepalived/nginx_pid.sh");
    assert_eq!(s.interval_ms, 2000);
    assert_eq!(s.weight, w(3));
    let i = inst(&l, "VI_1");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("ens32", 51, 100)
    );
    assert!(i.strict);
    // vrrp_strict consequences, as keepalived applies them.
    assert_eq!(
        i.state,
        Some(StateHint::Backup),
        "MASTER needs priority 255"
    );
    assert_eq!(i.auth, None, "strict mode drops authentication");
    assert!(!i.accept, "strict mode turns Accept_Mode off");
    assert_eq!(i.vips[0].address, ip("192.168.2.242"));
    assert_eq!(i.vips[0].prefix_len, 32);
    assert_eq!(i.vips[0].dev, "ens32");
    // Mail settings are accepted with a note; garp interval 0 is flagged like keepalived.
    has_diag(&l.diagnostics, Severity::Info, 8, "does not send mail");
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        13,
        "vrrp_garp_interval 0",
    );
    has_diag(&l.diagnostics, Severity::Warning, 14, "vrrp_gna_interval 0");
    has_diag(&l.diagnostics, Severity::Warning, 12, "accept");
}

#[test]
fn seed002_master_with_ipvs() {
    let l = load_fixture("seed-002/master.conf");
    no_unknown_keywords(&l);
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("lb01"));
    // `vrrp_script httpd_check{` with the brace glued to the name.
    let s = c.script("httpd_check").expect("httpd_check");
    assert_eq!(s.script, "/scripts/check_h.sh");
    assert_eq!(s.weight, w(-20));
    let i = inst(&l, "VI_1");
    assert_eq!(i.state, Some(StateHint::Master));
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("ens160", 51, 100)
    );
    assert_eq!(i.auth, pass("1"));
    assert_eq!(i.vips[0].address, ip("192.168.8.100"));
    assert_eq!(i.track_scripts[0].name, "httpd_check");
    assert_eq!(
        i.notify.master.as_ref().map(|n| n.command.as_str()),
        Some("/scripts/notify.sh master 192.168.8.100")
    );
    assert_eq!(
        i.notify.backup.as_ref().map(|n| n.command.as_str()),
        Some("/scripts/notify.sh backup 192.168.8.100")
    );
    let ipvs: Vec<_> = l
        .diagnostics
        .iter()
        .filter(|d| d.keyword == "virtual_server")
        .collect();
    assert_eq!(ipvs.len(), 1, "one warning for the whole virtual_server");
    assert_eq!(ipvs[0].severity, Severity::Warning);
    assert!(ipvs[0].message.contains("lines 33-59"), "{}", ipvs[0]);
}

#[test]
fn seed002_backup() {
    let l = load_fixture("seed-002/backup.conf");
    let i = inst(&l, "VI_1");
    assert_eq!(i.state, Some(StateHint::Backup));
    assert_eq!(i.priority, 90);
    assert!(i.track_scripts.is_empty());
    has_diag(&l.diagnostics, Severity::Warning, 24, "lines 24-50");
}

#[test]
fn seed003_dual_master() {
    let m = load_fixture("seed-003/master.conf");
    let b = load_fixture("seed-003/backup.conf");
    assert_eq!(m.config.global.router_id.as_deref(), Some("keep_131"));
    assert_eq!(b.config.global.router_id.as_deref(), Some("keep_132"));
    let s = m.config.script("check_nginx").expect("check_nginx");
    assert_eq!((s.interval_ms, s.weight), (2000, w(10)));
    for (l, p1, p2) in [(&m, 100, 80), (&b, 80, 100)] {
        let v1 = inst(l, "VI_1");
        let v2 = inst(l, "VI_2");
        assert_eq!((v1.vrid, v1.priority), (51, p1));
        assert_eq!((v2.vrid, v2.priority), (52, p2));
        assert_eq!(v1.vips[0].address, ip("192.168.252.101"));
        assert_eq!(v2.vips[0].address, ip("192.168.252.102"));
        assert_eq!(v1.auth, pass("1111"));
        assert_eq!(v1.interface, "ens33");
    }
    assert_eq!(inst(&m, "VI_1").track_scripts[0].name, "check_nginx");
    assert!(
        b.diagnostics.is_empty(),
        "clean config, no diagnostics: {:?}",
        b.diagnostics
    );
}

#[test]
fn seed004_nginx_plus_unicast_v3() {
    let l = load_fixture("seed-004/keepalived.conf");
    no_unknown_keywords(&l);
    let c = &l.config;
    assert_eq!(c.global.vrrp_version, Some(3));
    let s = c.script("chk_manual_failover").expect("script");
    assert_eq!((s.interval_ms, s.weight), (10_000, w(50)));
    let s = c.script("chk_nginx_service").expect("script");
    assert_eq!(s.script, "/usr/libexec/keepalived/nginx-ha-check");
    assert_eq!((s.interval_ms, s.weight), (3_000, w(50)));
    let i = inst(&l, "VI_1");
    assert_eq!(i.state, None);
    assert_eq!(i.version, 3, "global vrrp_version applies");
    assert_eq!(
        (i.interface.as_str(), i.vrid, i.priority),
        ("eth0", 51, 101)
    );
    assert_eq!(i.advert_int_cs, 100);
    assert!(i.accept);
    assert_eq!(i.garp.master_refresh_s, 5);
    assert_eq!(i.garp.master_refresh_repeat, 1);
    assert_eq!(i.unicast_src_ip, Some(ip("192.168.100.100")));
    assert_eq!(i.unicast_peers, vec![ip("192.168.100.101")]);
    assert_eq!(i.vips[0].address, ip("192.168.100.150"));
    let ts: Vec<&str> = i.track_scripts.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(ts, ["chk_nginx_service", "chk_manual_failover"]);
    assert_eq!(
        i.notify.notify.as_ref().map(|n| n.command.as_str()),
        Some("/usr/libexec/keepalived/nginx-ha-notify")
    );
}

#[test]
fn every_fixture_has_a_test() {
    // A new fixture without expectations would silently test nothing.
    let mut found = Vec::new();
    for dir in std::fs::read_dir(fixture("")).expect("fixtures dir") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir()
            || !dir
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("seed dir") {
            let f = f.expect("entry").path();
            found.push(format!(
                "{}/{}",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                f.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            "seed-000/lb1.conf",
            "seed-000/lb2.conf",
            "seed-001/master.conf",
            "seed-002/backup.conf",
            "seed-002/master.conf",
            "seed-003/backup.conf",
            "seed-003/master.conf",
            "seed-004/keepalived.conf",
        ]
    );
}
