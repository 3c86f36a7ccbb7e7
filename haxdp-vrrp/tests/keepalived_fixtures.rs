//! The codec against adverts captured from a real keepalived 2.2.7 (see
//! `tests/fixtures/README.md`): every frame decodes to the fields its configuration says,
//! and our encoder reproduces it byte for byte (checksums included, so the VRRPv3 IPv4
//! pseudo-header checksum matches keepalived's).

use std::net::IpAddr;
use std::path::PathBuf;

use haxdp_vrrp::{decode, encode, pass_auth, Advert, Version};

struct Fixture {
    name: String,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture hex"))
        .collect()
}

fn load(name: &str) -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name}: no `{key}` line"))
            .trim()
            .to_string()
    };
    Fixture {
        name: name.to_string(),
        src: field("src").parse().expect("src address"),
        dst: field("dst").parse().expect("dst address"),
        ttl: field("ttl").parse().expect("ttl"),
        payload: hex(&field("payload")),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn check(f: &Fixture, expected: &Advert) {
    // RFC 9568 5.1.1.3 / 5.1.2.3: keepalived sends with TTL / hop limit 255.
    assert_eq!(f.ttl, 255, "{}", f.name);
    let got = decode(&f.payload, f.src, f.dst).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    assert_eq!(&got, expected, "{}", f.name);
    let bytes = encode(expected, f.src, f.dst).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    assert_eq!(
        bytes, f.payload,
        "{}: encoder output differs from keepalived's",
        f.name
    );
}

fn advert(version: Version, vrid: u8, priority: u8, int_cs: u16, addrs: &[&str]) -> Advert {
    Advert {
        version,
        vrid,
        priority,
        max_adver_int_cs: int_cs,
        addrs: addrs.iter().map(|a| ip(a)).collect(),
        auth: None,
    }
}

#[test]
fn v2_pass_short_password_zero_padded() {
    let mut a = advert(Version::V2, 51, 150, 100, &["192.0.2.100", "192.0.2.101"]);
    a.auth = Some(*b"hxpw42\0\0");
    assert_eq!(a.auth, Some(pass_auth(b"hxpw42")));
    check(&load("v2_vrid51_prio150.hex"), &a);
    a.priority = 0;
    check(&load("v2_vrid51_prio0.hex"), &a);
}

#[test]
fn v2_pass_long_password_truncated_to_8() {
    let mut a = advert(Version::V2, 52, 100, 200, &["192.0.2.102"]);
    a.auth = Some(pass_auth(b"longpassword"));
    assert_eq!(a.auth, Some(*b"longpass"));
    check(&load("v2_vrid52_prio100.hex"), &a);
    a.priority = 0;
    check(&load("v2_vrid52_prio0.hex"), &a);
}

#[test]
fn v2_no_auth() {
    let mut a = advert(Version::V2, 53, 200, 100, &["192.0.2.103"]);
    check(&load("v2_vrid53_prio200.hex"), &a);
    a.priority = 0;
    check(&load("v2_vrid53_prio0.hex"), &a);
}

#[test]
fn v3_ipv4_checksum_with_pseudo_header() {
    let mut a = advert(
        Version::V3,
        61,
        120,
        100,
        &["192.0.2.110", "192.0.2.111", "192.0.2.112"],
    );
    let f = load("v3_vrid61_prio120.hex");
    check(&f, &a);
    // The carried checksum is the pseudo-header one, not the plain message sum.
    let carried = u16::from_be_bytes([f.payload[6], f.payload[7]]);
    assert_ne!(carried, haxdp_vrrp::checksum::v2(&f.payload));
    a.priority = 0;
    check(&load("v3_vrid61_prio0.hex"), &a);
}

#[test]
fn v3_ipv6_centisecond_interval() {
    let mut a = advert(
        Version::V3,
        71,
        130,
        50,
        &["2001:db8::100", "2001:db8::101"],
    );
    let f = load("v3_vrid71_prio130.hex");
    assert_eq!(f.dst, ip("ff02::12"));
    check(&f, &a);
    a.priority = 0;
    check(&load("v3_vrid71_prio0.hex"), &a);
}

#[test]
fn every_fixture_is_covered() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut hexes: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hex"))
        .collect();
    hexes.sort();
    assert_eq!(
        hexes,
        [
            "v2_vrid51_prio0.hex",
            "v2_vrid51_prio150.hex",
            "v2_vrid52_prio0.hex",
            "v2_vrid52_prio100.hex",
            "v2_vrid53_prio0.hex",
            "v2_vrid53_prio200.hex",
            "v3_vrid61_prio0.hex",
            "v3_vrid61_prio120.hex",
            "v3_vrid71_prio0.hex",
            "v3_vrid71_prio130.hex",
        ]
    );
}
