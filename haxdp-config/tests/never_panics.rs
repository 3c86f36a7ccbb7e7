//! Whatever the bytes, the reader answers with a config or diagnostics, never a panic.

use std::path::Path;

use haxdp_config::{parse_bytes, LoadError, ReadOptions};
use proptest::prelude::*;

/// Words from keepalived.conf, so that random lines reach the model builder, not only the
/// lexer.
const VOCAB: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "vrrp_track_file",
    "vrrp_nginx_check",
    "virtual_server",
    "real_server",
    "include",
    "$P=",
    "$P",
    "${P}",
    "$Q=${P}${P}",
    "\\",
    "{",
    "}",
    "\n",
    "\n",
    "\n",
    "VI_1",
    "chk",
    "state",
    "MASTER",
    "BACKUP",
    "interface",
    "eth0",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt_delay",
    "authentication",
    "auth_type",
    "PASS",
    "AH",
    "auth_pass",
    "unicast_src_ip",
    "unicast_peer",
    "mcast_src_ip",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "track_script",
    "track_interface",
    "track_file",
    "weight",
    "reverse",
    "notify",
    "notify_master",
    "accept",
    "no_accept",
    "garp_master_delay",
    "vrrp_strict",
    "vrrp_version",
    "script",
    "interval",
    "timeout",
    "rise",
    "fall",
    "url",
    "http://127.0.0.1/",
    "expect",
    "pidfile",
    "group",
    "file",
    "init_file",
    "dev",
    "label",
    "scope",
    "brd",
    "+",
    "no_track",
    "-nodad",
    "0",
    "1",
    "2",
    "3",
    "51",
    "255",
    "256",
    "-20",
    "0.01",
    "40.95",
    "1e9",
    "192.0.2.1",
    "192.0.2.1/24",
    "2001:db8::1",
    "2001:db8::1/129",
    "\"/bin/true\"",
    "\"unterminated",
    "#",
    "!",
    "@lb1",
    "@^lb1",
    "\r",
    "\t",
];

fn check(bytes: &[u8]) {
    match parse_bytes(
        Path::new("/nonexistent/haxdp-fuzz/fuzz.conf"),
        bytes,
        &ReadOptions::default(),
    ) {
        Ok(l) => {
            // Accepted configs satisfy the model's invariants.
            for i in &l.config.instances {
                assert!(i.vrid >= 1 && i.priority >= 1);
                assert!(i.version == 2 || i.version == 3);
                assert!((1..=25_500).contains(&i.advert_int_cs));
            }
        }
        Err(LoadError::Invalid { diagnostics, .. }) => {
            assert!(diagnostics
                .iter()
                .any(|d| d.severity == haxdp_config::Severity::Error));
        }
        Err(e @ LoadError::Unreadable { .. }) => panic!("in-memory text cannot be unreadable: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn random_keyword_soup(words in proptest::collection::vec(proptest::sample::select(VOCAB), 0..300)) {
        check(words.join(" ").as_bytes());
    }
}
