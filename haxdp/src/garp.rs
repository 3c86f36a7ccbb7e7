//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6),
//! sent as whole Ethernet frames on an AF_PACKET socket so that they do not
//! depend on the VIP's address state (an IPv6 VIP may still be tentative).
//!
//! RFC 9568 6.4.2 / 6.4.3: on becoming master, "for each IPv4 address
//! associated with the Virtual Router, broadcast a gratuitous ARP request
//! containing the virtual router MAC address"; for IPv6 "send an unsolicited
//! ND Neighbor Advertisement with the Router Flag (R) set ... for each IPv6
//! address". haxdp, like keepalived by default, keeps the interface's own MAC
//! (no VMAC), so the frames carry that address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum GarpError {
    #[error("cannot open an AF_PACKET socket: {0} (haxdp needs CAP_NET_RAW)")]
    Socket(#[source] io::Error),
    #[error("cannot send gratuitous ARP/NA for {addr} on ifindex {ifindex}: {source}")]
    Send {
        addr: IpAddr,
        ifindex: u32,
        #[source]
        source: io::Error,
    },
}

/// A send-only AF_PACKET socket.
pub struct GarpSender {
    fd: OwnedFd,
}

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;

impl GarpSender {
    pub fn open() -> Result<Self, GarpError> {
        // Protocol 0: the socket receives nothing, it only sends.
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(GarpError::Socket(io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends one gratuitous ARP or unsolicited NA for `addr` from `mac`.
    pub fn announce(&self, ifindex: u32, mac: [u8; 6], addr: IpAddr) -> Result<(), GarpError> {
        let (frame, proto) = match addr {
            IpAddr::V4(a) => (garp_frame(mac, a), ETH_P_ARP),
            IpAddr::V6(a) => (unsolicited_na_frame(mac, a), ETH_P_IPV6),
        };
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and sll outlive the call; lengths are theirs.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(GarpError::Send {
                addr,
                ifindex,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

/// A gratuitous ARP request (sender = target = VIP, broadcast), the form
/// keepalived sends and that every host updates its cache from (RFC 5227 3).
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes()); // hardware type Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol IPv4
    f.push(6);
    f.push(4);
    f.extend_from_slice(&1u16.to_be_bytes()); // request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&vip.octets());
    f.resize(60, 0); // minimum Ethernet payload padding
    f
}

/// An unsolicited neighbour advertisement to all-nodes (RFC 4861 7.2.6):
/// Override set, Router set (RFC 9568 6.4.2), Solicited clear, with the
/// target link-layer address option.
pub fn unsolicited_na_frame(mac: [u8; 6], vip: Ipv6Addr) -> Vec<u8> {
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.push(136); // neighbour advertisement
    icmp.push(0);
    icmp.extend_from_slice(&[0, 0]); // checksum, filled below
    icmp.extend_from_slice(&[0xa0, 0, 0, 0]); // R | O
    icmp.extend_from_slice(&vip.octets());
    icmp.push(2); // target link-layer address option
    icmp.push(1); // length in 8-octet units
    icmp.extend_from_slice(&mac);
    let csum = icmpv6_checksum(&vip, &dst, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(58); // next header ICMPv6
    f.push(255); // hop limit: RFC 4861 7.1.2 requires 255
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for c in bytes.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += u32::from(w);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(body);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

    #[test]
    fn garp_is_a_broadcast_request_with_sender_equal_target() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "ARP op must be request");
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &[192, 0, 2, 100]);
        assert_eq!(&f[38..42], &[192, 0, 2, 100]);
    }

    #[test]
    fn na_checksum_verifies_and_flags_are_router_override() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = unsolicited_na_frame(MAC, vip);
        let icmp = &f[54..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0xa0);
        assert_eq!(f[21], 255, "hop limit must be 255 (RFC 4861 7.1.2)");
        // A correct checksum sums to zero with the checksum field included.
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let mut zeroed = icmp.to_vec();
        let stored = u16::from_be_bytes([zeroed[2], zeroed[3]]);
        zeroed[2] = 0;
        zeroed[3] = 0;
        assert_eq!(icmpv6_checksum(&vip, &dst, &zeroed), stored);
        assert_eq!(&icmp[26..32], &MAC);
    }
}
