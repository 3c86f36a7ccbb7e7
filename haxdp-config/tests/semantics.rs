//! The semantic checks and the resolved values of the model.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use haxdp_config::{check_config_report, load_with, ReadOptions, Severity, StateHint, Weight};

fn vi(body: &str) -> String {
    format!("vrrp_instance VI_1 {{\n{body}}}\n")
}

#[test]
fn vrid_and_priority_ranges() {
    for bad in ["0", "256", "-1"] {
        let d = refused(&vi(&format!(
            " interface eth0\n virtual_router_id {bad}\n virtual_ipaddress {{\n  192.0.2.1\n }}\n"
        )));
        has_error(&d, 3, "virtual_router_id");
    }
    for bad in ["0", "256"] {
        has_error(
            &refused(&instance(&format!("    priority {bad}\n"))),
            5,
            "must be 1 to 255",
        );
    }
    let l = ok(&vi(" interface eth0\n virtual_router_id 255\n priority 255\n virtual_ipaddress {\n  192.0.2.1\n }\n"));
    assert_eq!(
        (l.config.instances[0].vrid, l.config.instances[0].priority),
        (255, 255)
    );
    has_error(
        &refused(&vi(" interface eth0\n priority 100\n")),
        1,
        "no 'virtual_router_id'",
    );
    has_error(&refused(&vi(" virtual_router_id 5\n")), 1, "no 'interface'");
}

#[test]
fn advert_int_per_version() {
    // v2: whole seconds 1..255 (RFC 3768 5.3.7).
    assert_eq!(
        ok(&instance("    advert_int 3\n")).config.instances[0].advert_int_cs,
        300
    );
    has_error(
        &refused(&instance("    advert_int 0.5\n")),
        5,
        "whole seconds",
    );
    has_error(&refused(&instance("    advert_int 256\n")), 5, "1 to 255");
    // v3: 0.01..40.95 in centiseconds (RFC 9568 5.2.7).
    let l = ok(&instance("    version 3\n    advert_int 0.01\n"));
    assert_eq!(
        (
            l.config.instances[0].version,
            l.config.instances[0].advert_int_cs
        ),
        (3, 1)
    );
    let l = ok(&instance("    version 3\n    advert_int 40.95\n"));
    assert_eq!(l.config.instances[0].advert_int_cs, 4095);
    has_error(
        &refused(&instance("    version 3\n    advert_int 41\n")),
        6,
        "0.01 to 40.95",
    );
    has_error(
        &refused(&instance("    version 3\n    advert_int 0.005\n")),
        6,
        "centiseconds",
    );
    // The global version applies when the instance has none.
    let l = ok(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance("    advert_int 0.2\n")
    ));
    assert_eq!(
        (
            l.config.instances[0].version,
            l.config.instances[0].advert_int_cs
        ),
        (3, 20)
    );
    // The instance's version wins over the global one.
    let l = ok(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance("    version 2\n")
    ));
    assert_eq!(l.config.instances[0].version, 2);
}

#[test]
fn families_are_not_mixed() {
    let d = refused(&vi(" interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n  2001:db8::1\n }\n"));
    has_error(&d, 6, "mixes IPv4 and IPv6");
    // Excluded addresses may be of the other family (seed 004's advice).
    let l = ok(&vi(" interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1\n }\n virtual_ipaddress_excluded {\n  2001:db8::1/64 -nodad\n }\n"));
    let i = &l.config.instances[0];
    assert_eq!(i.excluded_vips[0].prefix_len, 64);
    assert!(i.excluded_vips[0].nodad);
    assert_eq!(i.excluded_vips[0].dev, "eth0");
    // IPv6 VIPs with no version anywhere: VRRPv3, as keepalived does.
    let l = ok(&vi(
        " interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1\n }\n",
    ));
    assert_eq!(l.config.instances[0].version, 3);
    assert_eq!(l.config.instances[0].vips[0].prefix_len, 128);
    // ... but an explicit version 2 with IPv6 is refused.
    has_error(&refused(&vi(" interface eth0\n version 2\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1\n }\n")), 3, "IPv4 only");
    // Unicast peers must match the VIPs' family.
    let d = refused(&instance(
        "    unicast_peer {\n        2001:db8::2\n    }\n",
    ));
    has_error(&d, 1, "not the same address family");
}

#[test]
fn duplicate_vrid_family_interface() {
    let two = |a: &str, b: &str| {
        format!(
            "vrrp_instance A {{\n interface {}\n virtual_router_id 7\n virtual_ipaddress {{\n  {}\n }}\n}}\nvrrp_instance B {{\n interface {}\n virtual_router_id 7\n virtual_ipaddress {{\n  {}\n }}\n}}\n",
            a.split(' ').next().unwrap_or(""),
            a.split(' ').nth(1).unwrap_or(""),
            b.split(' ').next().unwrap_or(""),
            b.split(' ').nth(1).unwrap_or("")
        )
    };
    let d = refused(&two("eth0 192.0.2.1", "eth0 192.0.2.2"));
    has_error(&d, 8, "both use VRID 7 for IPv4 on eth0");
    // Same VRID, other family: independent virtual routers (RFC 9568 7.1).
    ok(&two("eth0 192.0.2.1", "eth0 2001:db8::1"));
    // Same VRID, other interface.
    ok(&two("eth0 192.0.2.1", "eth1 192.0.2.2"));
    // Same instance name twice.
    let d = refused(&format!(
        "{}{}",
        instance(""),
        instance("").replace("51", "52")
    ));
    has_error(&d, 9, "already defined");
}

#[test]
fn master_with_nopreempt() {
    let l = ok(&instance("    state MASTER\n    nopreempt\n"));
    let i = &l.config.instances[0];
    assert!(!i.nopreempt, "cleared, as keepalived does");
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        5,
        "nopreempt does not work",
    );
    let l = ok(&instance(
        "    state BACKUP\n    nopreempt\n    preempt_delay 2.5\n",
    ));
    assert!(l.config.instances[0].nopreempt);
    assert_eq!(l.config.instances[0].preempt_delay_ms, 2500);
    has_error(
        &refused(&instance("    state ACTIVE\n")),
        5,
        "MASTER or BACKUP",
    );
}

#[test]
fn track_references_must_exist() {
    let d = refused(&instance("    track_script {\n        nosuch\n    }\n"));
    has_error(&d, 6, "track_script 'nosuch' names no vrrp_script");
    let d = refused(&instance("    track_file {\n        nofile\n    }\n"));
    has_error(&d, 6, "names no vrrp_track_file");
    let l = ok(&format!(
        "vrrp_track_file tf {{\n  file /run/haxdp/prio\n  weight -10\n  init_file 5 overwrite\n}}\n{}",
        instance("    track_file {\n        tf weight 3\n    }\n    track_interface {\n        eth1\n        eth2 weight -30 reverse\n    }\n")
    ));
    let c = &l.config;
    let tf = c.track_file("tf").expect("tf");
    assert_eq!(tf.weight.value, -10);
    assert_eq!((tf.init_value, tf.init_overwrite), (Some(5), true));
    let i = &c.instances[0];
    assert_eq!(i.track_files[0].weight.map(|w| w.value), Some(3));
    assert_eq!(i.track_interfaces.len(), 2);
    assert_eq!(
        i.track_interfaces[0].weight,
        Weight {
            value: 0,
            reverse: false
        }
    );
    assert_eq!(
        i.track_interfaces[1].weight,
        Weight {
            value: -30,
            reverse: true
        }
    );
}

#[test]
fn own_interface_tracking() {
    let l = ok(&instance(
        "    track_interface {\n        eth0 weight -2\n    }\n",
    ));
    assert!(l.config.instances[0].track_interfaces.is_empty());
    has_diag(&l.diagnostics, Severity::Warning, 6, "own interface");
    let l = ok(&instance(
        "    dont_track_primary\n    track_interface {\n        eth0 weight -2\n    }\n",
    ));
    assert!(l.config.instances[0].dont_track_primary);
    assert_eq!(l.config.instances[0].track_interfaces[0].weight.value, -2);
}

#[test]
fn authentication() {
    let l = ok(&instance(
        "    authentication {\n        auth_type PASS\n        auth_pass 123456789abc\n    }\n",
    ));
    assert_eq!(
        l.config.instances[0].auth.map(|a| a.bytes),
        Some(*b"12345678")
    );
    has_diag(&l.diagnostics, Severity::Warning, 7, "only the first 8");
    let d = refused(&instance(
        "    authentication {\n        auth_type AH\n        auth_pass x\n    }\n",
    ));
    has_error(&d, 5, "auth_type AH is not supported");
    let d = refused(&instance(
        "    authentication {\n        auth_type PASS\n    }\n",
    ));
    has_error(&d, 5, "without 'auth_pass'");
    // VRRPv3 has no authentication (RFC 9568): ignored with a warning.
    let l = ok(&instance(
        "    version 3\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }\n",
    ));
    assert_eq!(l.config.instances[0].auth, None);
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        6,
        "VRRPv3 has no authentication",
    );
}

#[test]
fn strict_mode_consequences() {
    let g = "global_defs {\n vrrp_strict\n}\n";
    let d = refused(&format!(
        "{g}{}",
        instance("    unicast_peer {\n        192.0.2.2\n    }\n")
    ));
    has_error(&d, 8, "vrrp_strict forbids unicast_peer");
    let l = ok(&format!("{g}{}", instance("    accept\n")));
    assert!(l.config.instances[0].accept);
    assert!(l.config.instances[0].strict);
    assert!(!l.diagnostics.iter().any(|d| d.keyword == "vrrp_strict"));
    let l = ok(&format!(
        "{g}{}",
        instance("    priority 255\n    state MASTER\n")
    ));
    assert_eq!(l.config.instances[0].state, Some(StateHint::Master));
    let l = ok(&instance("    no_accept\n"));
    assert!(!l.config.instances[0].accept);
}

#[test]
fn garp_settings_resolve_against_globals() {
    let l = ok(&format!(
        "global_defs {{\n vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 3\n vrrp_garp_master_refresh 60\n vrrp_garp_interval 0.001\n vrrp_gna_interval 0.5\n}}\n{}",
        instance("    garp_master_repeat 7\n")
    ));
    let g = l.config.instances[0].garp;
    assert_eq!(
        (
            g.master_delay_s,
            g.master_repeat,
            g.master_refresh_s,
            g.master_refresh_repeat
        ),
        (2, 7, 60, 1)
    );
    assert_eq!((g.interval_us, g.na_interval_us), (1_000, 500_000));
    assert_eq!(l.config.global.garp.master_repeat, 3);
}

#[test]
fn global_defs_values() {
    let l = ok(&format!(
        "global_defs {{\n router_id lb1\n vrrp_mcast_group4 224.0.0.19\n vrrp_mcast_group6 ff02::13\n script_user nobody nogroup\n vrrp_higher_prio_send_advert\n vrrp_notify_fifo /run/haxdp.fifo\n notification_email {{\n  ops@example.com\n }}\n}}\n{}",
        instance("")
    ));
    let g = &l.config.global;
    assert_eq!(g.mcast_group4.to_string(), "224.0.0.19");
    assert_eq!(g.mcast_group6.to_string(), "ff02::13");
    assert_eq!(
        g.script_user
            .as_ref()
            .map(|u| (u.user.as_str(), u.group.as_deref())),
        Some(("nobody", Some("nogroup")))
    );
    assert!(l.config.instances[0].higher_prio_send_advert);
    assert_eq!(
        l.config.instances[0].notify_fifo.as_deref(),
        Some(std::path::Path::new("/run/haxdp.fifo"))
    );
    has_diag(&l.diagnostics, Severity::Info, 8, "does not send mail");
    let d = refused(&format!(
        "global_defs {{\n vrrp_mcast_group4 192.0.2.1\n}}\n{}",
        instance("")
    ));
    has_error(&d, 2, "not an IPv4 multicast address");
}

#[test]
fn nginx_check_one_line_and_block() {
    let l = ok(&format!(
        "vrrp_nginx_check ngx {{ url http://127.0.0.1/healthz expect 204 interval 0.2 timeout 0.1 rise 2 fall 3 weight -20 pidfile /run/nginx.pid }}\n\
vrrp_nginx_check ngx2 {{\n  url http://[::1]:8080/\n  weight 10 reverse\n}}\n{}",
        instance("    track_script {\n        ngx\n        ngx2 weight 5\n    }\n")
    ));
    let c = &l.config;
    let n = c.nginx_check("ngx").expect("ngx");
    assert_eq!(n.url, "http://127.0.0.1/healthz");
    assert_eq!(n.expect, 204);
    assert_eq!(
        (n.interval_ms, n.timeout_ms, n.rise, n.fall),
        (200, 100, 2, 3)
    );
    assert_eq!(
        n.weight,
        Weight {
            value: -20,
            reverse: false
        }
    );
    assert_eq!(
        n.pidfile.as_deref(),
        Some(std::path::Path::new("/run/nginx.pid"))
    );
    let n2 = c.nginx_check("ngx2").expect("ngx2");
    assert_eq!(
        (n2.expect, n2.interval_ms, n2.timeout_ms),
        (200, 1000, 1000)
    );
    assert_eq!(
        n2.weight,
        Weight {
            value: 10,
            reverse: true
        }
    );
    let ts: Vec<&str> = c.instances[0]
        .track_scripts
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(ts, ["ngx", "ngx2"]);
    // Errors: https, timeout > interval, unknown key, missing value.
    has_error(
        &refused(&format!(
            "vrrp_nginx_check n {{ url https://127.0.0.1/ }}\n{}",
            instance("")
        )),
        1,
        "plain HTTP",
    );
    has_error(
        &refused(&format!(
            "vrrp_nginx_check n {{ url http://127.0.0.1/ interval 0.1 timeout 0.2 }}\n{}",
            instance("")
        )),
        1,
        "longer than interval",
    );
    has_error(
        &refused(&format!(
            "vrrp_nginx_check n {{\n url http://127.0.0.1/\n expcet 200\n}}\n{}",
            instance("")
        )),
        3,
        "unknown vrrp_nginx_check keyword 'expcet'",
    );
    has_error(
        &refused(&format!(
            "vrrp_nginx_check n {{ url http://127.0.0.1/ rise }}\n{}",
            instance("")
        )),
        1,
        "'rise' needs a value",
    );
    // A name shared by a vrrp_script and a vrrp_nginx_check is ambiguous in track_script.
    let d = refused(&format!("vrrp_script n {{\n script /bin/true\n}}\nvrrp_nginx_check n {{ url http://127.0.0.1/ }}\n{}", instance("")));
    has_error(&d, 4, "already defined");
}

#[test]
fn vrrp_script_defaults_and_fields() {
    let l = ok(&format!(
        "vrrp_script s {{\n script \"/bin/true arg\"\n interval 0.5\n timeout 0.25\n weight 10 reverse\n rise 2\n fall 4\n user nobody\n init_fail\n}}\nvrrp_script u {{\n script /bin/echo unquoted words\n}}\n{}",
        instance("")
    ));
    let s = l.config.script("s").expect("s");
    assert_eq!(s.script, "/bin/true arg");
    assert_eq!(
        (s.interval_ms, s.timeout_ms, s.rise, s.fall),
        (500, 250, 2, 4)
    );
    assert_eq!(
        s.weight,
        Weight {
            value: 10,
            reverse: true
        }
    );
    assert!(s.init_fail);
    assert_eq!(s.user.as_ref().map(|u| u.user.as_str()), Some("nobody"));
    assert_eq!(
        l.config.script("u").map(|s| s.script.as_str()),
        Some("/bin/echo unquoted words")
    );
    has_error(
        &refused(&format!(
            "vrrp_script s {{\n interval 1\n}}\n{}",
            instance("")
        )),
        1,
        "no 'script' line",
    );
    has_error(
        &refused(&format!(
            "vrrp_script s {{\n script /bin/true\n weight 300\n}}\n{}",
            instance("")
        )),
        3,
        "must be -253 to 253",
    );
}

#[test]
fn sync_groups() {
    let two = format!(
        "{}{}",
        instance(""),
        instance("")
            .replace("VI_1", "VI_2")
            .replace("51", "52")
            .replace("192.0.2.10", "192.0.2.11")
    );
    let l = ok(&format!(
        "{two}vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n notify_master \"/bin/echo master\"\n global_tracking\n}}\n"
    ));
    let g = &l.config.sync_groups[0];
    assert_eq!(g.members, ["VI_1", "VI_2"]);
    assert_eq!(
        g.notify.master.as_ref().map(|n| n.command.as_str()),
        Some("/bin/echo master")
    );
    assert!(g.global_tracking);
    let d = refused(&format!(
        "{two}vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_9\n }}\n}}\n"
    ));
    has_error(&d, 17, "'VI_9', which is no vrrp_instance");
    let d = refused(&format!(
        "{two}vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n}}\nvrrp_sync_group H {{\n group {{\n  VI_1 VI_2\n }}\n}}\n"
    ));
    has_error(&d, 23, "in both vrrp_sync_group G and H");
}

#[test]
fn script_security() {
    let t = TempDir::new("sec");
    let good = t.write("bin/good.sh", b"#!/bin/sh\nexit 0\n");
    let noexec = t.write("bin/noexec.sh", b"#!/bin/sh\nexit 0\n");
    let open = t.write("bin/open.sh", b"#!/bin/sh\nexit 0\n");
    let set = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set(&t.0, 0o755);
    set(&t.0.join("bin"), 0o755);
    set(&good, 0o755);
    set(&noexec, 0o644);
    set(&open, 0o757);
    let conf = |sec: bool, script: &std::path::Path| {
        format!(
            "global_defs {{\n{}}}\nvrrp_script s {{\n script {}\n}}\n{}",
            if sec { " enable_script_security\n" } else { "" },
            script.display(),
            instance("    track_script {\n        s\n    }\n")
        )
    };
    let run = |text: String| {
        let p = t.write("k.conf", text.as_bytes());
        load_with(&p, &ReadOptions::default())
    };
    assert!(run(conf(true, &good)).is_ok());
    for (script, needle) in [
        (&noexec, "not an executable"),
        (&open, "writable by other users"),
    ] {
        match run(conf(true, script)) {
            Err(haxdp_config::LoadError::Invalid { diagnostics, .. }) => {
                has_error(&diagnostics, 5, needle)
            }
            other => panic!(
                "{} accepted with script security: {other:?}",
                script.display()
            ),
        }
    }
    // Without script security: a world-writable script is accepted, a non-executable one
    // is a warning.
    assert!(run(conf(false, &open)).is_ok());
    let l = run(conf(false, &noexec)).expect("accepted");
    has_diag(&l.diagnostics, Severity::Warning, 4, "not an executable");
    // A world-writable directory above the script counts too.
    set(&t.0.join("bin"), 0o777);
    match run(conf(true, &good)) {
        Err(haxdp_config::LoadError::Invalid { diagnostics, .. }) => {
            has_error(&diagnostics, 5, "writable by other users")
        }
        other => panic!("accepted: {other:?}"),
    }
    set(&t.0.join("bin"), 0o755);
}

#[test]
fn check_config_exit_codes_and_output() {
    let t = TempDir::new("report");
    let good = t.write(
        "good.conf",
        format!(
            "vrrp_nginx_check ngx {{ url http://127.0.0.1/ weight -20 }}\n{}",
            instance("    track_script {\n        ngx\n    }\n    frobnicate\n")
                .replace("    frobnicate\n", "")
        )
        .as_bytes(),
    );
    let (out, err, code) = check_config_report(&good, false);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("vrrp_instance VI_1: interface eth0, VRID 51, VRRPv2, priority 100"),
        "{out}"
    );
    assert!(out.contains("VIPs: 192.0.2.10/24 dev eth0"), "{out}");
    assert!(out.contains("nginx ngx http://127.0.0.1/"), "{out}");
    let (out, _, code) = check_config_report(&good, true);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["config"]["instances"][0]["vrid"], 51);
    assert_eq!(
        v["config"]["instances"][0]["vips"][0]["address"],
        "192.0.2.10"
    );
    assert_eq!(v["config"]["nginx_checks"][0]["weight"]["value"], -20);

    let bad = t.write(
        "bad.conf",
        instance("    priority 0\n    frobnicate\n").as_bytes(),
    );
    let (out, err, code) = check_config_report(&bad, false);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("bad.conf:5: error: priority: 0 is out of range"),
        "{err}"
    );
    assert!(
        err.contains("bad.conf:6: error: unknown vrrp_instance keyword 'frobnicate'"),
        "{err}"
    );
    let (out, _, code) = check_config_report(&bad, true);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["status"], "invalid");
    assert!(v["config"].is_null());
    assert_eq!(v["diagnostics"][0]["line"], 5);
    assert_eq!(v["diagnostics"][0]["severity"], "error");
    assert_eq!(v["diagnostics"][0]["keyword"], "priority");

    let (out, err, code) = check_config_report(&t.0.join("missing.conf"), true);
    assert_eq!(code, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["status"], "unreadable");
    let (_, err, code) = check_config_report(&t.0, false);
    assert_eq!(code, 2, "a directory is unreadable as a config: {err}");
}

/// keepalived 2.2.7's notify lines: `KW COMMAND [USER [GROUP]]`, the command one word
/// (quoted when it has arguments).
#[test]
fn notify_command_then_user() {
    let l = ok(&instance(
        "    notify_master \"/etc/keepalived/notify.sh master\" nobody nogroup\n    notify_backup \"/etc/keepalived/notify.sh backup\" nobody\n    notify /etc/keepalived/notify.sh\n",
    ));
    let n = &l.config.instances[0].notify;
    let master = n.master.as_ref().expect("notify_master");
    assert_eq!(master.command, "/etc/keepalived/notify.sh master");
    let run_as = master.run_as.as_ref().expect("user given");
    assert_eq!(
        (run_as.user.as_str(), run_as.group.as_deref()),
        ("nobody", Some("nogroup"))
    );
    assert_eq!(master.location.line, 5);
    let backup = n.backup.as_ref().expect("notify_backup");
    assert_eq!(
        backup
            .run_as
            .as_ref()
            .map(|u| (u.user.as_str(), u.group.is_none())),
        Some(("nobody", true))
    );
    let generic = n.notify.as_ref().expect("notify");
    assert_eq!(generic.command, "/etc/keepalived/notify.sh");
    assert!(generic.run_as.is_none());
    assert!(
        l.diagnostics
            .iter()
            .all(|d| !d.message.contains("as the user")),
        "{:?}",
        l.diagnostics
    );

    // Unquoted, the word after the command is the user, as keepalived reads it: say so.
    let l = ok(&instance(
        "    notify_master /etc/keepalived/notify.sh master\n",
    ));
    let master = l.config.instances[0]
        .notify
        .master
        .as_ref()
        .expect("parsed");
    assert_eq!(master.command, "/etc/keepalived/notify.sh");
    assert_eq!(
        master.run_as.as_ref().map(|u| u.user.as_str()),
        Some("master")
    );
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        5,
        "quote the command: notify_master \"/etc/keepalived/notify.sh master\"",
    );

    // More words than command, user and group: refused, with the fix.
    let d = refused(&instance(
        "    notify_fault /etc/keepalived/notify.sh fault now root\n",
    ));
    has_error(&d, 5, "in double quotes when it has arguments");
}

/// keepalived 2.x runs only the first word of an unquoted vrrp_script command.
#[test]
fn unquoted_script_command_warns() {
    let l = ok(&format!(
        "vrrp_script chk {{\n    script killall -0 nginx\n}}\n{}",
        instance("    track_script {\n        chk\n    }\n")
    ));
    assert_eq!(l.config.scripts[0].script, "killall -0 nginx");
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        2,
        "keepalived runs only 'killall'",
    );
}

/// keepalived ignores member tracking weights inside a sync group (unless
/// sync_group_tracking_weight): say so at the tracked item's line.
#[test]
fn sync_group_member_weights_are_ignored_with_a_warning() {
    let two = |track: &str| {
        format!(
            "vrrp_script chk {{\n script \"/bin/true\"\n weight -20\n}}\n{}{}",
            instance(track),
            instance("")
                .replace("VI_1", "VI_2")
                .replace("51", "52")
                .replace("192.0.2.10", "192.0.2.11")
        )
    };
    let group =
        |extra: &str| format!("vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n{extra}}}\n");
    let l = ok(&format!(
        "{}{}",
        two("    track_script {\n        chk\n    }\n"),
        group("")
    ));
    // Line 10: `chk` inside VI_1's track_script (script block 4 lines, then instance).
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        10,
        "VI_1 is in vrrp_sync_group G: the weight of 'chk' is ignored",
    );
    // An explicit weight 0 is what keepalived does anyway: nothing to say.
    let l = ok(&format!(
        "{}{}",
        two("    track_script {\n        chk weight 0\n    }\n"),
        group("")
    ));
    assert!(
        l.diagnostics
            .iter()
            .all(|d| !d.message.contains("is ignored")),
        "{:?}",
        l.diagnostics
    );
    // sync_group_tracking_weight keeps the weights, silently.
    let l = ok(&format!(
        "{}{}",
        two("    track_script {\n        chk\n    }\n"),
        group(" sync_group_tracking_weight\n")
    ));
    assert!(l.config.sync_groups[0].global_tracking);
    assert!(
        l.diagnostics
            .iter()
            .all(|d| !d.message.contains("is ignored")),
        "{:?}",
        l.diagnostics
    );
}
