//! A bounded VRRP advert flooder for the bad-input tests and benchmarks.
//!
//! It writes whole Ethernet frames on an AF_PACKET socket from a thread that
//! has entered the sender's network namespace, so it can forge any source
//! address. Every flood is bounded by a packet count and a duration.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use haxdp_vrrp::{encode, Advert, Version};

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// Adverts for the VRID with a corrupted checksum.
    BadChecksum,
    /// Valid adverts of a low priority from one spoofed source.
    SpoofedLowPriority,
    /// Valid low-priority adverts, each from a different spoofed source
    /// (cycling through `sources` addresses).
    ManySources { sources: u32 },
}

#[derive(Debug, Clone)]
pub struct FloodSpec {
    pub kind: FloodKind,
    pub vrid: u8,
    pub version: Version,
    pub advert_int_cs: u16,
    pub vips: Vec<Ipv4Addr>,
    pub auth: Option<[u8; 8]>,
    /// Packets per second to aim for (the sender sleeps to pace itself).
    pub rate: u64,
    pub max_packets: u64,
    pub max_duration: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FloodReport {
    pub sent: u64,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One Ethernet frame: IPv4, TTL 255, protocol 112, to 224.0.0.18.
pub fn frame(src_mac: [u8; 6], src: Ipv4Addr, vrrp: &[u8]) -> Vec<u8> {
    let dst = Ipv4Addr::new(224, 0, 0, 18);
    let mut f = Vec::with_capacity(14 + 20 + vrrp.len());
    f.extend_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + vrrp.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[1] = 0xc0;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = 255;
    ip[9] = 112;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(vrrp);
    f
}

fn advert_bytes(spec: &FloodSpec, src: Ipv4Addr, priority: u8) -> Vec<u8> {
    let advert = Advert {
        version: spec.version,
        vrid: spec.vrid,
        priority,
        max_adver_int_cs: spec.advert_int_cs,
        addrs: spec.vips.iter().map(|a| (*a).into()).collect(),
        auth: spec.auth,
    };
    encode(&advert, src.into(), Ipv4Addr::new(224, 0, 0, 18).into())
        .unwrap_or_else(|e| panic!("cannot encode the flood advert: {e}"))
}

/// Floods from namespace `netns` (a name under /run/netns) on `ifname`.
/// Runs on its own thread; returns what it sent.
pub fn flood(netns: &str, ifname: &str, spec: FloodSpec) -> std::thread::JoinHandle<FloodReport> {
    let netns = netns.to_string();
    let ifname = ifname.to_string();
    std::thread::spawn(move || {
        let nsf = std::fs::File::open(format!("/run/netns/{netns}"))
            .unwrap_or_else(|e| panic!("open /run/netns/{netns}: {e}"));
        // SAFETY: setns on this thread only (CLONE_NEWNET affects the caller).
        assert_eq!(
            unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns {netns}"
        );
        let ifindex = {
            let name = std::ffi::CString::new(ifname.clone()).expect("ifname");
            // SAFETY: NUL-terminated name.
            unsafe { libc::if_nametoindex(name.as_ptr()) }
        };
        assert!(ifindex != 0, "no interface {ifname} in {netns}");
        // SAFETY: plain socket(2); checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;

        let mac = [0x02, 0xee, 0, 0, 0, 1];
        let spoof = Ipv4Addr::new(192, 0, 2, 250);
        let template = match spec.kind {
            FloodKind::BadChecksum => {
                let mut b = advert_bytes(&spec, spoof, 200);
                b[6] ^= 0x5a;
                frame(mac, spoof, &b)
            }
            FloodKind::SpoofedLowPriority | FloodKind::ManySources { .. } => {
                frame(mac, spoof, &advert_bytes(&spec, spoof, 1))
            }
        };
        let start = Instant::now();
        let mut sent = 0u64;
        let mut pkt = template.clone();
        while sent < spec.max_packets && start.elapsed() < spec.max_duration {
            if let FloodKind::ManySources { sources } = spec.kind {
                // 198.51.100.0/24 and onwards as spoofed sources, each with a
                // valid checksum for its own source address.
                let n = (sent % u64::from(sources.max(1))) as u32;
                let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 51, 100, 0)) + n);
                pkt = frame(mac, src, &advert_bytes(&spec, src, 1));
            }
            // SAFETY: pkt and sll outlive the call.
            let r = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if r > 0 {
                sent += 1;
            }
            // Pace: stay at or under the requested rate.
            let due = Duration::from_secs_f64(sent as f64 / spec.rate.max(1) as f64);
            let el = start.elapsed();
            if due > el + Duration::from_micros(200) {
                std::thread::sleep(due - el);
            }
        }
        FloodReport {
            sent,
            elapsed: start.elapsed(),
        }
    })
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
pub fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line (proc(5)).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_valid_ip_header_and_ttl_255() {
        let f = frame(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(192, 0, 2, 9),
            &[0x31, 51, 1, 1, 0, 100, 0, 0],
        );
        assert_eq!(f[14 + 8], 255);
        assert_eq!(f[14 + 9], 112);
        assert_eq!(
            ip_checksum(&f[14..34]),
            0,
            "IPv4 header checksum must verify"
        );
    }
}
