//! Fuzzes the VRRP decoder over IPv4 and IPv6. The first byte picks the family and the
//! source/destination addresses come from the input, so the VRRPv3 pseudo-header checksum
//! is exercised too. Whatever decodes must re-encode to a message of the same length that
//! decodes to the same advert.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use haxdp_vrrp::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let (src, dst, msg) = if sel & 1 == 0 {
        let Some((a, rest)) = rest.split_first_chunk::<4>() else { return };
        let Some((b, msg)) = rest.split_first_chunk::<4>() else { return };
        (IpAddr::V4(Ipv4Addr::from(*a)), IpAddr::V4(Ipv4Addr::from(*b)), msg)
    } else {
        let Some((a, rest)) = rest.split_first_chunk::<16>() else { return };
        let Some((b, msg)) = rest.split_first_chunk::<16>() else { return };
        (IpAddr::V6(Ipv6Addr::from(*a)), IpAddr::V6(Ipv6Addr::from(*b)), msg)
    };
    if let Ok(advert) = decode(msg, src, dst) {
        let again = match encode(&advert, src, dst) {
            Ok(b) => b,
            Err(e) => panic!("decoded advert does not re-encode: {e}: {advert:?}"),
        };
        assert_eq!(again.len(), msg.len());
        assert_eq!(decode(&again, src, dst), Ok(advert));
    }
});
