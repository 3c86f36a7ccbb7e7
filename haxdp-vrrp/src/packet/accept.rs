//! The socket receive path's acceptance rule: the checks the XDP program makes, in
//! its order and under its names ([`DropReason`], whose documentation is the list).
//!
//! [`accept_advert`] is what the socket path calls for each packet a raw socket
//! returns; [`accept_frame`] puts in front of it what the Linux stack does before a
//! raw socket sees a frame (`ip_rcv_core()`, `ipv6_rcv()`), so that a whole frame can
//! be judged the way the XDP program judges it: the differential test
//! (`tests/tests/xdp_differential.rs`) holds the two equal on every frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use haxdp_common::{DropReason, MAX_ADDR_BYTES};

use super::{decode, Advert, Family, Version, HEADER_LEN, TYPE_ADVERTISEMENT};

/// What the receive path knows about the instance an advert is addressed to
/// (interface, VRID, family): what the XDP program finds in INSTANCES and ALLOWED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watched<'a> {
    /// The instance's VRRP version; an advert of the other is `version_mismatch`.
    pub version: Version,
    /// VRRPv2: `Some(password)` when the instance uses PASS authentication (the 8
    /// bytes keepalived sends, [`super::pass_auth`]), `None` for none.
    pub auth: Option<[u8; 8]>,
    /// `Some(list)`: only these sources may speak (keepalived's `check_unicast_src`,
    /// haxdp's `haxdp_allowed_peers`); `None`: anyone.
    pub allowed_sources: Option<&'a [IpAddr]>,
}

/// Judges a VRRP message the socket path received: `payload` is the IP payload (as
/// long as the IP header says), from `src` to `dst` with TTL / hop limit `ttl`.
/// `instance(vrid)` looks up the instance watched on the receiving interface for
/// the VRID and the family of `src`.
///
/// Makes checks 6 to 19 of [`DropReason`] in order (the stack made 1 to 5; 20, room
/// in the XDP program's PEERS map, does not exist here) and returns the decoded
/// advert, or the reason to drop it.
pub fn accept_advert<'a, F>(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    instance: F,
) -> Result<Advert, DropReason>
where
    F: FnOnce(u8) -> Option<Watched<'a>>,
{
    // RFC 9568 7.1: TTL / hop limit 255, so the advert cannot come from off-link.
    if ttl != 255 {
        return Err(DropReason::BadTtl);
    }
    let family = Family::of(&src);
    // The tracker's bound on the address list (haxdp_common::MAX_ADDR_BYTES), made
    // where the XDP program makes it: after the version and type checks of decode().
    if let Some(h) = payload.get(..HEADER_LEN) {
        let version = h[0] >> 4;
        let version_ok = version == 3 || (version == 2 && family == Family::V4);
        if version_ok
            && h[0] & 0x0f == TYPE_ADVERTISEMENT
            && usize::from(h[3]) * family.addr_len() > MAX_ADDR_BYTES
        {
            return Err(DropReason::TooManyAddrs);
        }
    }
    let advert = decode(payload, src, dst).map_err(|e| e.drop_reason())?;
    let Some(w) = instance(advert.vrid) else {
        return Err(DropReason::VridNotWatched);
    };
    if advert.version != w.version {
        return Err(DropReason::VersionMismatch);
    }
    // RFC 3768 7.1: the auth type must be ours and PASS data must match. VRRPv3 has
    // no authentication (RFC 9568 9), and decode() returns none for it.
    if advert.version == Version::V2 && advert.auth != w.auth {
        return Err(DropReason::AuthMismatch);
    }
    if let Some(list) = w.allowed_sources {
        if !list.contains(&src) {
            return Err(DropReason::SourceNotAllowed);
        }
    }
    Ok(advert)
}

/// What becomes of one Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameVerdict {
    /// Not a VRRP advert of this interface (not IPv4/IPv6 protocol 112, too short to
    /// say, or 802.1Q/802.1ad tagged): passed untouched, counted nowhere.
    NotAdvert,
    /// Accepted: the decoded advert and its source.
    Accepted {
        src: IpAddr,
        advert: Advert,
    },
    Dropped(DropReason),
}

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_VRRP: u8 = 112;

/// Judges a whole Ethernet frame received on an interface the way the XDP program
/// does: the stack's IP checks (checks 1 to 5 of [`DropReason`]), then
/// [`accept_advert`]. `instance(family, vrid)` looks up the watched instance.
pub fn accept_frame<'a, F>(frame: &[u8], instance: F) -> FrameVerdict
where
    F: FnOnce(Family, u8) -> Option<Watched<'a>>,
{
    let Some(et) = frame.get(12..14) else {
        return FrameVerdict::NotAdvert;
    };
    // A tagged frame has EtherType 0x8100/0x88a8 here: the VLAN interface's.
    let l3 = ETH_HLEN;
    let ip = &frame[l3..];
    let (family, src, dst, ttl, payload) = match u16::from_be_bytes([et[0], et[1]]) {
        ETH_P_IP => {
            if ip.get(9) != Some(&IPPROTO_VRRP) {
                return FrameVerdict::NotAdvert;
            }
            match ipv4(ip) {
                Ok(p) => p,
                Err(r) => return FrameVerdict::Dropped(r),
            }
        }
        ETH_P_IPV6 => {
            // Only VRRP right after the fixed header; VRRP senders use no extension
            // headers.
            if ip.get(6) != Some(&IPPROTO_VRRP) {
                return FrameVerdict::NotAdvert;
            }
            match ipv6(ip) {
                Ok(p) => p,
                Err(r) => return FrameVerdict::Dropped(r),
            }
        }
        _ => return FrameVerdict::NotAdvert,
    };
    match accept_advert(payload, src, dst, ttl, |vrid| instance(family, vrid)) {
        Ok(advert) => FrameVerdict::Accepted { src, advert },
        Err(r) => FrameVerdict::Dropped(r),
    }
}

type IpParts<'p> = (Family, IpAddr, IpAddr, u8, &'p [u8]);

/// `ip_rcv_core()` (net/ipv4/ip_input.c), in its order, then the fragment check.
fn ipv4(ip: &[u8]) -> Result<IpParts<'_>, DropReason> {
    let Some(h) = ip.get(..20) else {
        return Err(DropReason::Truncated);
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        return Err(DropReason::BadIpHeader);
    }
    let Some(full) = ip.get(..ihl) else {
        return Err(DropReason::Truncated);
    };
    // ip_fast_csum(): the one's complement sum over the header, field included, is
    // all ones.
    if crate::checksum::finish(crate::checksum::sum_words(0, full)) != 0 {
        return Err(DropReason::BadIpHeader);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if ip.len() < total {
        return Err(DropReason::Truncated);
    }
    if total < ihl {
        return Err(DropReason::BadIpHeader);
    }
    // MF or a fragment offset: the stack would reassemble; VRRP senders never
    // fragment an advert, and the XDP program cannot reassemble.
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return Err(DropReason::Fragment);
    }
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    // The stack trims the packet to its total length (pskb_trim_rcsum): what follows
    // is link-layer padding.
    Ok((Family::V4, src, dst, h[8], &ip[ihl..total]))
}

/// `ipv6_rcv()` (net/ipv6/ip6_input.c): version, then the payload length.
fn ipv6(ip: &[u8]) -> Result<IpParts<'_>, DropReason> {
    let Some(h) = ip.get(..40) else {
        return Err(DropReason::Truncated);
    };
    if h[0] >> 4 != 6 {
        return Err(DropReason::BadIpHeader);
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let Some(payload) = ip.get(40..40 + len) else {
        return Err(DropReason::Truncated);
    };
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&h[8..24]);
    d.copy_from_slice(&h[24..40]);
    Ok((
        Family::V6,
        IpAddr::V6(Ipv6Addr::from(s)),
        IpAddr::V6(Ipv6Addr::from(d)),
        h[7],
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{encode, pass_auth};

    fn v4(s: &str) -> IpAddr {
        s.parse().expect("address literal")
    }

    fn v3(vrid: u8) -> Advert {
        Advert {
            version: Version::V3,
            vrid,
            priority: 100,
            max_adver_int_cs: 100,
            addrs: vec![v4("192.0.2.100")],
            auth: None,
        }
    }

    const W3: Watched<'static> = Watched {
        version: Version::V3,
        auth: None,
        allowed_sources: None,
    };

    #[test]
    fn checks_in_the_shared_order() {
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let good = encode(&v3(51), s, d).expect("valid advert");
        let ok = accept_advert(&good, s, d, 255, |_| Some(W3));
        assert_eq!(ok, Ok(v3(51)));
        assert_eq!(
            accept_advert(&good, s, d, 64, |_| Some(W3)),
            Err(DropReason::BadTtl)
        );
        assert_eq!(
            accept_advert(&good, s, d, 255, |_| None),
            Err(DropReason::VridNotWatched)
        );
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            accept_advert(&trailing, s, d, 255, |_| Some(W3)),
            Err(DropReason::BadLength)
        );
        let v2 = Watched {
            version: Version::V2,
            auth: Some(pass_auth(b"secret")),
            allowed_sources: None,
        };
        assert_eq!(
            accept_advert(&good, s, d, 255, |_| Some(v2)),
            Err(DropReason::VersionMismatch)
        );
        let list = [v4("192.0.2.2")];
        let only = Watched {
            allowed_sources: Some(&list),
            ..W3
        };
        assert_eq!(
            accept_advert(&good, s, d, 255, |_| Some(only)),
            Err(DropReason::SourceNotAllowed)
        );
        // 65 addresses: past the tracker's bound, whatever else is wrong after it.
        let mut many = vec![0x31, 51, 100, 65, 0, 100, 0, 0];
        many.resize(8 + 65 * 4 + 3, 0);
        assert_eq!(
            accept_advert(&many, s, d, 255, |_| Some(W3)),
            Err(DropReason::TooManyAddrs)
        );
    }

    #[test]
    fn zero_interval_is_refused_for_both_versions() {
        let (s, d) = (v4("192.0.2.1"), v4("224.0.0.18"));
        let mut m = encode(&v3(51), s, d).expect("valid");
        m[4] = 0;
        m[5] = 0;
        m[6..8].copy_from_slice(&[0, 0]);
        let c = crate::checksum::v3_ipv4(
            "192.0.2.1".parse().expect("literal"),
            "224.0.0.18".parse().expect("literal"),
            &m,
        );
        m[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            accept_advert(&m, s, d, 255, |_| Some(W3)),
            Err(DropReason::ZeroInterval)
        );
    }
}
