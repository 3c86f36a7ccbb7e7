//! Who may speak: keepalived's `check_unicast_src` / `vrrp_check_unicast_src` and
//! haxdp's `haxdp_allowed_peers`, resolved into `VrrpInstance::allowed_sources`.

mod common;

use std::net::IpAddr;

use common::*;
use haxdp_config::{check_config_report, Severity};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

const PEERS: &str = "    unicast_src_ip 192.0.2.1\n    unicast_peer {\n        192.0.2.2\n        192.0.2.3\n    }\n";

#[test]
fn off_by_default_even_with_unicast_peers() {
    let l = ok(&instance(PEERS));
    let i = &l.config.instances[0];
    assert!(!i.check_unicast_src);
    assert_eq!(i.allowed_peers, None);
    assert_eq!(i.allowed_sources(), None);
}

#[test]
fn check_unicast_src_allows_only_the_unicast_peers() {
    let l = ok(&instance(&format!("{PEERS}    check_unicast_src\n")));
    let i = &l.config.instances[0];
    assert!(i.check_unicast_src);
    assert_eq!(
        i.allowed_sources(),
        Some(vec![ip("192.0.2.2"), ip("192.0.2.3")])
    );
    assert!(
        !l.diagnostics
            .iter()
            .any(|d| d.message.contains("check_unicast_src")),
        "no longer reported as ignored: {:?}",
        l.diagnostics
    );
}

#[test]
fn global_vrrp_check_unicast_src_applies_to_every_unicast_instance() {
    let l = ok(&format!(
        "global_defs {{\n    vrrp_check_unicast_src\n}}\n{}",
        instance(PEERS)
    ));
    assert!(l.config.global.vrrp_check_unicast_src);
    assert_eq!(
        l.config.instances[0].allowed_sources(),
        Some(vec![ip("192.0.2.2"), ip("192.0.2.3")])
    );
}

#[test]
fn min_ttl_turns_check_unicast_src_on_as_in_keepalived() {
    let l = ok(&instance(
        "    unicast_peer {\n        192.0.2.2 min_ttl 250\n    }\n",
    ));
    let i = &l.config.instances[0];
    assert!(i.check_unicast_src);
    assert_eq!(i.allowed_sources(), Some(vec![ip("192.0.2.2")]));
    has_diag(&l.diagnostics, Severity::Warning, 6, "TTL 255");
}

#[test]
fn check_unicast_src_without_unicast_peers_does_nothing_and_says_so() {
    let l = ok(&instance("    check_unicast_src\n"));
    assert_eq!(l.config.instances[0].allowed_sources(), None);
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        5,
        "no effect without unicast_peer",
    );
}

#[test]
fn haxdp_allowed_peers_restricts_a_multicast_instance() {
    let l = ok(&instance(
        "    haxdp_allowed_peers {\n        192.0.2.1 192.0.2.2\n        192.0.2.4\n    }\n",
    ));
    assert_eq!(
        l.config.instances[0].allowed_sources(),
        Some(vec![ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.4")])
    );
    // Together with check_unicast_src: the union.
    let l = ok(&instance(&format!(
        "{PEERS}    check_unicast_src\n    haxdp_allowed_peers {{\n        192.0.2.9 192.0.2.2\n    }}\n"
    )));
    assert_eq!(
        l.config.instances[0].allowed_sources(),
        Some(vec![ip("192.0.2.2"), ip("192.0.2.3"), ip("192.0.2.9")])
    );
}

#[test]
fn haxdp_allowed_peers_must_be_addresses_of_the_instances_family() {
    has_error(
        &refused(&instance(
            "    haxdp_allowed_peers {\n        192.0.2.1 frobnicate\n    }\n",
        )),
        6,
        "not an IPv4 or IPv6 address",
    );
    has_error(
        &refused(&instance(
            "    haxdp_allowed_peers {\n        2001:db8::1\n    }\n",
        )),
        1,
        "haxdp_allowed_peers 2001:db8::1 is not the same address family",
    );
    let l = ok(&instance("    haxdp_allowed_peers {\n    }\n"));
    assert_eq!(l.config.instances[0].allowed_sources(), Some(vec![]));
    has_diag(&l.diagnostics, Severity::Warning, 5, "empty");
}

#[test]
fn check_config_reports_who_may_speak() {
    let t = TempDir::new("allowed");
    let f = t.write(
        "a.conf",
        instance("    haxdp_allowed_peers {\n        192.0.2.1 192.0.2.2\n    }\n").as_bytes(),
    );
    let (out, err, code) = check_config_report(&f, false);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("adverts accepted only from: 192.0.2.1, 192.0.2.2"),
        "{out}"
    );
    let (json, _, _) = check_config_report(&f, true);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        v["config"]["instances"][0]["allowed_peers"],
        serde_json::json!(["192.0.2.1", "192.0.2.2"])
    );
}
