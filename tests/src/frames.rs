//! Hand-built Ethernet frames carrying VRRP adverts, for `cargo xtask bench-xdp` and the
//! XDP tests (`tests/tests/xdp.rs`, `xdp_differential.rs`). Written from the RFCs, not
//! from the code under test, so a shared misreading cannot hide.

use std::net::IpAddr;

/// One VRRP advertisement and the IP/Ethernet around it.
#[derive(Clone, Debug)]
pub struct Advert {
    pub version: u8,
    pub typ: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds; VRRPv2 frames carry `interval_cs / 100` seconds.
    pub interval_cs: u16,
    pub addrs: Vec<IpAddr>,
    /// VRRPv2 only (RFC 3768 5.3.6).
    pub auth_type: u8,
    pub auth_pass: [u8; 8],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub vlan: Option<u16>,
    /// IPv4 flags + fragment offset field.
    pub frag: u16,
}

impl Advert {
    /// A VRRPv3 advert as keepalived sends it: multicast, TTL 255, 1 s interval.
    pub fn v3(vrid: u8, priority: u8, src: IpAddr, addrs: Vec<IpAddr>) -> Self {
        let dst: IpAddr = match src {
            IpAddr::V4(_) => "224.0.0.18".parse().expect("literal"),
            IpAddr::V6(_) => "ff02::12".parse().expect("literal"),
        };
        Advert {
            version: 3,
            typ: 1,
            vrid,
            priority,
            interval_cs: 100,
            addrs,
            auth_type: 0,
            auth_pass: [0; 8],
            src,
            dst,
            ttl: 255,
            vlan: None,
            frag: 0,
        }
    }

    /// A VRRPv2 advert with PASS authentication.
    pub fn v2_pass(vrid: u8, priority: u8, src: IpAddr, addrs: Vec<IpAddr>, pass: &[u8]) -> Self {
        let mut a = Self::v3(vrid, priority, src, addrs);
        a.version = 2;
        a.auth_type = 1;
        let n = pass.len().min(8);
        a.auth_pass[..n].copy_from_slice(&pass[..n]);
        a
    }

    fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// The VRRP message with a correct checksum (RFC 9568 5.1, RFC 3768 5.1).
    pub fn vrrp(&self) -> Vec<u8> {
        let mut m = vec![(self.version << 4) | self.typ, self.vrid, self.priority];
        m.push(self.addrs.len() as u8);
        if self.version == 2 {
            m.push(self.auth_type);
            m.push((self.interval_cs / 100) as u8);
        } else {
            m.extend_from_slice(&(self.interval_cs & 0x0fff).to_be_bytes());
        }
        m.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
            }
        }
        if self.version == 2 {
            m.extend_from_slice(&self.auth_pass);
        }
        let mut sum_input = Vec::new();
        if self.version == 3 {
            sum_input = self.pseudo_header(m.len());
        }
        sum_input.extend_from_slice(&m);
        let c = checksum(&sum_input);
        m[6..8].copy_from_slice(&c.to_be_bytes());
        m
    }

    /// RFC 9568 5.2.8: the IPv4/IPv6 pseudo-header, upper-layer protocol 112.
    fn pseudo_header(&self, len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, 112]);
                p.extend_from_slice(&(len as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&(len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, 112]);
            }
            _ => panic!("advert with mixed address families"),
        }
        p
    }

    /// The whole Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        self.frame_around(&self.vrrp())
    }

    /// The Ethernet frame around a given (possibly tampered) VRRP message.
    pub fn frame_around(&self, vrrp: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        // Destination: the VRRP multicast MAC; source: the virtual router MAC
        // 00:00:5e:00:01:VRID (RFC 9568 7.3).
        if self.is_v6() {
            f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 0x12]);
            f.extend_from_slice(&[0, 0, 0x5e, 0, 2, self.vrid]);
        } else {
            f.extend_from_slice(&[0x01, 0, 0x5e, 0, 0, 0x12]);
            f.extend_from_slice(&[0, 0, 0x5e, 0, 1, self.vrid]);
        }
        if let Some(tag) = self.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&(tag & 0x0fff).to_be_bytes());
        }
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&[0x08, 0x00]);
                let mut ip = vec![0x45, 0xc0];
                ip.extend_from_slice(&((20 + vrrp.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&[0, 0]);
                ip.extend_from_slice(&self.frag.to_be_bytes());
                ip.extend_from_slice(&[self.ttl, 112, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                let c = checksum(&ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&[0x86, 0xdd]);
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
                f.extend_from_slice(&[112, self.ttl]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => panic!("advert with mixed address families"),
        }
        f.extend_from_slice(vrrp);
        f
    }
}

/// Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A TCP SYN to port 80, the packet a load balancer's XDP hook sees most.
pub fn tcp_frame() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&[198, 51, 100, 7, 203, 0, 113, 10]);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let tcp = [
        0xc3, 0x50, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];
    f.extend_from_slice(&tcp);
    f
}
