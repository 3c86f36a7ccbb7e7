//! VRRP advertisement codec: VRRPv2 (RFC 3768, with keepalived's PASS authentication) and
//! VRRPv3 (RFC 9568), over IPv4 and IPv6.
//!
//! Only the VRRP message is handled here; the IP header (TTL/hop limit 255, protocol 112,
//! multicast destination) is the receive path's business (RFC 9568 7.1 first checks). The
//! source and destination addresses are still parameters because VRRPv3's checksum covers
//! a pseudo-header made of them (RFC 9568 5.2.8).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::checksum;

pub mod accept;
pub use accept::{accept_advert, accept_frame, FrameVerdict, Watched};
pub use haxdp_common::DropReason;

/// VRRP message type for an ADVERTISEMENT (RFC 9568 5.2.2); the only type defined.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Fixed header length, both versions.
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data trailer (RFC 3768 5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// VRRPv2 Auth Type 0: no authentication (RFC 3768 5.3.6).
pub const V2_AUTH_NONE: u8 = 0;
/// VRRPv2 Auth Type 1: simple text password, as keepalived's `auth_type PASS` sends it.
pub const V2_AUTH_PASS: u8 = 1;
/// Largest Max Advertisement Interval a VRRPv3 header can carry (12 bits, RFC 9568 5.2.7).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;
/// Largest VRRPv2 interval in centiseconds (8-bit seconds field, RFC 3768 5.3.7).
pub const V2_MAX_INTERVAL_CS: u16 = 255 * 100;

/// Protocol version carried in the high nibble of the first octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Version {
    /// VRRPv2, RFC 3768; IPv4 only.
    V2,
    /// VRRPv3, RFC 9568; IPv4 and IPv6.
    V3,
}

impl Version {
    fn wire(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// Address family of a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
}

/// A decoded VRRP advertisement, version independent.
///
/// VRRPv2 (RFC 3768 5.1):
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (1)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            .                                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (n)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv3 (RFC 9568 5.1):
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// +                                                               +
/// +                                                               +
/// +                                                               +
/// |                                                               |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The interval is kept in centiseconds for both versions so the state machine has one
/// unit: VRRPv3's Max Adver Int is centiseconds on the wire; VRRPv2's Adver Int is whole
/// seconds on the wire and is stored here multiplied by 100 (so a VRRPv2 advert always has
/// a multiple of 100 here, and encoding any other value is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds (see the type's documentation for VRRPv2).
    pub max_adver_int_cs: u16,
    /// The virtual addresses, all of the packet's address family.
    pub addrs: Vec<IpAddr>,
    /// VRRPv2 only: `Some(password)` for Auth Type 1 (PASS; keepalived zero-pads short
    /// passwords and keeps the first 8 bytes of long ones, see [`pass_auth`]), `None` for
    /// Auth Type 0. Always `None` for VRRPv3, which has no authentication (RFC 9568 9).
    pub auth: Option<[u8; 8]>,
}

/// Builds the 8-byte PASS authentication data the way keepalived does: the first 8 bytes
/// of the configured password, zero-padded when shorter.
pub fn pass_auth(password: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    let n = password.len().min(8);
    out[..n].copy_from_slice(&password[..n]);
    out
}

/// Why a received VRRP message was rejected by [`decode`]; one variant per check of
/// RFC 9568 7.1 that can be made on the message itself (TTL, VRID, authentication and
/// interval comparisons need the instance and are made by the state machine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("VRRP message is {len} bytes, shorter than the 8-byte header; drop it")]
    TooShort { len: usize },
    #[error("VRRP version {0} is not supported (only 2 and 3); drop it")]
    BadVersion(u8),
    #[error("VRRP type {0} is not ADVERTISEMENT (1); drop it (RFC 9568 7.1)")]
    BadType(u8),
    #[error(
        "VRRP message length {actual} does not match {expected} bytes implied by its \
         address count {count}; drop it (RFC 9568 7.1)"
    )]
    BadLength {
        expected: usize,
        actual: usize,
        count: u8,
    },
    #[error("VRRP checksum mismatch: carried {carried:#06x}, computed {computed:#06x}; drop it")]
    BadChecksum { carried: u16, computed: u16 },
    #[error("source {src} and destination {dst} are of different address families")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    #[error("VRRPv2 is defined for IPv4 only (RFC 3768); an IPv6 VRRPv2 message was dropped")]
    V2OverIpv6,
    #[error(
        "VRRPv2 auth type {0} is not supported (0 none, 1 PASS); IPsec AH (2) is not \
         implemented; drop it"
    )]
    BadAuthType(u8),
    #[error(
        "advertisement interval is zero, which would make the master-down interval only \
         the skew time; drop it"
    )]
    ZeroInterval,
}

impl DecodeError {
    /// The name the XDP program counts the same failure under (the one acceptance
    /// rule: see [`DropReason`] for the checks and their order).
    pub fn drop_reason(&self) -> DropReason {
        drop_reason(self)
    }
}

/// See [`DecodeError::drop_reason`].
pub fn drop_reason(e: &DecodeError) -> DropReason {
    match e {
        // Shorter than the header, or not the length its count implies (which also
        // covers bytes after the message): one rule, RFC 9568 7.1.
        DecodeError::TooShort { .. } | DecodeError::BadLength { .. } => DropReason::BadLength,
        DecodeError::BadVersion(_) | DecodeError::V2OverIpv6 => DropReason::BadVersion,
        DecodeError::BadType(_) => DropReason::BadType,
        DecodeError::BadChecksum { .. } => DropReason::BadChecksum,
        // Not possible for a packet off the wire: one IP header has one family.
        DecodeError::MixedFamilies { .. } => DropReason::BadIpHeader,
        DecodeError::BadAuthType(_) => DropReason::BadAuthType,
        DecodeError::ZeroInterval => DropReason::ZeroInterval,
    }
}

/// Why [`encode`] refused an advert: each would put something on the wire that a peer
/// must reject or would misread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("source {src} and destination {dst} are of different address families")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
    #[error("VRRPv2 is defined for IPv4 only (RFC 3768); use version 3 for IPv6")]
    V2OverIpv6,
    #[error("virtual address {addr} is not of the packet's address family")]
    AddressFamily { addr: IpAddr },
    #[error("{count} virtual addresses do not fit the 8-bit count field; use at most 255")]
    TooManyAddresses { count: usize },
    #[error(
        "interval {cs} cs cannot be sent: VRRPv3 carries 1..=4095 cs, VRRPv2 whole seconds \
         1..=255 (a multiple of 100 cs)"
    )]
    BadInterval { cs: u16 },
    #[error("VRRPv3 has no authentication (RFC 9568 9); remove auth from the advert")]
    AuthOnV3,
}

fn family_of(src: IpAddr, dst: IpAddr) -> Option<Family> {
    let f = Family::of(&src);
    (f == Family::of(&dst)).then_some(f)
}

/// Expected message length for `count` addresses (RFC 3768 5.1 / RFC 9568 5.1).
fn message_len(version: Version, family: Family, count: usize) -> usize {
    let auth = match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * family.addr_len() + auth
}

fn checksum_for(version: Version, src: IpAddr, dst: IpAddr, msg: &[u8]) -> u16 {
    match (version, src, dst) {
        (Version::V2, _, _) => checksum::v2(msg),
        (Version::V3, IpAddr::V4(s), IpAddr::V4(d)) => checksum::v3_ipv4(s, d, msg),
        (Version::V3, IpAddr::V6(s), IpAddr::V6(d)) => checksum::v3_ipv6(s, d, msg),
        // Callers establish matching families first; map a mixed pair to IPv6 so the
        // function stays total rather than panicking.
        (Version::V3, s, d) => checksum::v3_ipv6(to_v6(s), to_v6(d), msg),
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Decodes the VRRP message `bytes` (the IP payload) received from `src` to `dst`.
///
/// Checks, in order (RFC 9568 7.1, RFC 3768 7.1): header length, version, type, address
/// family, length against the address count, checksum, VRRPv2 auth type, interval. Every
/// read is preceded by a length check; the function never panics.
pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, DecodeError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DecodeError::TooShort { len: bytes.len() })?;
    let version = match header[0] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(DecodeError::BadVersion(v)),
    };
    let kind = header[0] & 0x0f;
    if kind != TYPE_ADVERTISEMENT {
        return Err(DecodeError::BadType(kind));
    }
    let family = family_of(src, dst).ok_or(DecodeError::MixedFamilies { src, dst })?;
    if version == Version::V2 && family == Family::V6 {
        return Err(DecodeError::V2OverIpv6);
    }
    let count = header[3];
    let expected = message_len(version, family, usize::from(count));
    if bytes.len() != expected {
        return Err(DecodeError::BadLength {
            expected,
            actual: bytes.len(),
            count,
        });
    }
    let carried = u16::from_be_bytes([header[6], header[7]]);
    let computed = checksum_for(version, src, dst, bytes);
    if carried != computed {
        return Err(DecodeError::BadChecksum { carried, computed });
    }
    let (max_adver_int_cs, auth) = match version {
        Version::V2 => {
            let auth = match header[4] {
                V2_AUTH_NONE => None,
                V2_AUTH_PASS => {
                    let mut pw = [0u8; V2_AUTH_LEN];
                    // Length was checked against `expected`, which includes the trailer.
                    pw.copy_from_slice(&bytes[expected - V2_AUTH_LEN..expected]);
                    Some(pw)
                }
                other => return Err(DecodeError::BadAuthType(other)),
            };
            (u16::from(header[5]) * 100, auth)
        }
        // RFC 9568 5.2.7: the 4 reserved bits are ignored on receipt.
        Version::V3 => (u16::from_be_bytes([header[4] & 0x0f, header[5]]), None),
    };
    if max_adver_int_cs == 0 {
        return Err(DecodeError::ZeroInterval);
    }
    let alen = family.addr_len();
    let addrs = bytes[HEADER_LEN..HEADER_LEN + usize::from(count) * alen]
        .chunks_exact(alen)
        .map(|c| match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
            Family::V6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(c);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        })
        .collect();
    Ok(Advert {
        version,
        vrid: header[1],
        priority: header[2],
        max_adver_int_cs,
        addrs,
        auth,
    })
}

/// Encodes `advert` as the VRRP message (IP payload, no IP header) to send from `src` to
/// `dst`, with its checksum. Refuses adverts that cannot be represented on the wire.
pub fn encode(advert: &Advert, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
    let family = family_of(src, dst).ok_or(EncodeError::MixedFamilies { src, dst })?;
    if advert.version == Version::V2 && family == Family::V6 {
        return Err(EncodeError::V2OverIpv6);
    }
    if let Some(addr) = advert.addrs.iter().find(|a| Family::of(a) != family) {
        return Err(EncodeError::AddressFamily { addr: *addr });
    }
    let count = u8::try_from(advert.addrs.len()).map_err(|_| EncodeError::TooManyAddresses {
        count: advert.addrs.len(),
    })?;
    let cs = advert.max_adver_int_cs;
    let (b4, b5) = match advert.version {
        Version::V2 => {
            if cs == 0 || !cs.is_multiple_of(100) || cs > V2_MAX_INTERVAL_CS {
                return Err(EncodeError::BadInterval { cs });
            }
            let auth_type = if advert.auth.is_some() {
                V2_AUTH_PASS
            } else {
                V2_AUTH_NONE
            };
            // Bounded to 1..=255 by the check above.
            (auth_type, (cs / 100) as u8)
        }
        Version::V3 => {
            if advert.auth.is_some() {
                return Err(EncodeError::AuthOnV3);
            }
            if cs == 0 || cs > V3_MAX_INTERVAL_CS {
                return Err(EncodeError::BadInterval { cs });
            }
            // RFC 9568 5.2.7: reserved bits sent as zero.
            let [hi, lo] = cs.to_be_bytes();
            (hi, lo)
        }
    };
    let mut out = Vec::with_capacity(message_len(advert.version, family, usize::from(count)));
    out.extend_from_slice(&[
        (advert.version.wire() << 4) | TYPE_ADVERTISEMENT,
        advert.vrid,
        advert.priority,
        count,
        b4,
        b5,
        0,
        0,
    ]);
    for a in &advert.addrs {
        match a {
            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
    }
    if advert.version == Version::V2 {
        // RFC 3768 5.3.10: the 8 authentication bytes are present for every auth type and
        // zero when there is no authentication (keepalived sends them zeroed too).
        out.extend_from_slice(&advert.auth.unwrap_or([0; V2_AUTH_LEN]));
    }
    let sum = checksum_for(advert.version, src, dst, &out);
    out[checksum::CHECKSUM_OFFSET..checksum::CHECKSUM_OFFSET + 2]
        .copy_from_slice(&sum.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().expect("test address literal")
    }

    fn sample_v2() -> Advert {
        Advert {
            version: Version::V2,
            vrid: 51,
            priority: 150,
            max_adver_int_cs: 100,
            addrs: vec![v4("192.0.2.100")],
            auth: Some(pass_auth(b"secret")),
        }
    }

    #[test]
    fn pass_auth_pads_and_truncates_like_keepalived() {
        assert_eq!(&pass_auth(b"abc"), b"abc\0\0\0\0\0");
        assert_eq!(&pass_auth(b"longpassword"), b"longpass");
    }

    #[test]
    fn every_truncation_is_too_short_or_bad_length() {
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let bytes = encode(&sample_v2(), s, d).expect("valid advert");
        for n in 0..bytes.len() {
            let err = decode(&bytes[..n], s, d).expect_err("truncated message must fail");
            assert!(
                matches!(
                    err,
                    DecodeError::TooShort { .. } | DecodeError::BadLength { .. }
                ),
                "len {n}: {err:?}"
            );
        }
    }

    #[test]
    fn rfc9568_7_1_version_type_checks() {
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let mut bytes = encode(&sample_v2(), s, d).expect("valid advert");
        bytes[0] = 0x41;
        assert_eq!(decode(&bytes, s, d), Err(DecodeError::BadVersion(4)));
        bytes[0] = 0x22;
        assert_eq!(decode(&bytes, s, d), Err(DecodeError::BadType(2)));
    }

    #[test]
    fn rfc9568_7_1_checksum_check() {
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let mut bytes = encode(&sample_v2(), s, d).expect("valid advert");
        bytes[2] ^= 1;
        assert!(matches!(
            decode(&bytes, s, d),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn v3_checksum_covers_pseudo_header() {
        let a = Advert {
            version: Version::V3,
            vrid: 9,
            priority: 100,
            max_adver_int_cs: 100,
            addrs: vec![v4("192.0.2.100")],
            auth: None,
        };
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let bytes = encode(&a, s, d).expect("valid advert");
        assert_eq!(decode(&bytes, s, d).as_ref(), Ok(&a));
        // The same bytes from another source fail: the pseudo-header is covered.
        assert!(matches!(
            decode(&bytes, v4("192.0.2.2"), d),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn v2_over_ipv6_and_mixed_families_are_refused() {
        let s6: IpAddr = "fe80::1".parse().expect("literal");
        let d6: IpAddr = "ff02::12".parse().expect("literal");
        assert_eq!(encode(&sample_v2(), s6, d6), Err(EncodeError::V2OverIpv6));
        let s4 = v4("192.0.2.1");
        assert!(matches!(
            encode(&sample_v2(), s4, d6),
            Err(EncodeError::MixedFamilies { .. })
        ));
        let mut bytes = encode(&sample_v2(), s4, v4("224.0.0.18")).expect("valid");
        assert!(matches!(
            decode(&bytes, s4, d6),
            Err(DecodeError::MixedFamilies { .. })
        ));
        bytes.resize(8 + 16 + 8, 0);
        assert_eq!(decode(&bytes, s6, d6), Err(DecodeError::V2OverIpv6));
    }

    #[test]
    fn encode_refuses_unrepresentable_intervals() {
        let mut a = sample_v2();
        a.max_adver_int_cs = 150;
        assert_eq!(
            encode(&a, v4("192.0.2.1"), v4("224.0.0.18")),
            Err(EncodeError::BadInterval { cs: 150 })
        );
        a.version = Version::V3;
        a.auth = None;
        a.max_adver_int_cs = 4096;
        assert!(encode(&a, v4("192.0.2.1"), v4("224.0.0.18")).is_err());
    }

    #[test]
    fn v2_unknown_auth_type_rejected() {
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let mut bytes = encode(&sample_v2(), s, d).expect("valid advert");
        bytes[4] = 2;
        let sum = checksum::v2(&bytes);
        bytes[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(decode(&bytes, s, d), Err(DecodeError::BadAuthType(2)));
    }
}
