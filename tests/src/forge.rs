//! Forged VRRPv3 adverts from a third host on the LAN, and a cheap sampler of
//! which namespaces hold which VIPs, for the "no second master" drills.
//!
//! Both work on sockets opened inside a lab namespace by a short-lived thread
//! that enters it (`setns`): a socket stays in the namespace it was created
//! in, so the test thread can then use it without spawning a process per
//! send or per sample (a sample is one netlink address dump, tens of
//! microseconds, so sampling every 10 ms does not load the lab).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The IPv4 VRRP multicast group (RFC 9568 5.1.1.2).
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// One VRRPv3 advert as a third host would forge it. Unlike
/// `haxdp_vrrp::encode`, any Max Adver Int is allowed, 0 included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forged {
    pub vrid: u8,
    pub priority: u8,
    /// Max Adver Int, centiseconds (12 bits on the wire).
    pub max_adver_int_cs: u16,
    /// The IPv4 source address (and the address the checksum covers).
    pub src: Ipv4Addr,
    /// The VIPs the advert lists: the instance's own, so that it passes
    /// keepalived's address-list check.
    pub vips: Vec<Ipv4Addr>,
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn add_words(sum: &mut u32, bytes: &[u8]) {
    for c in bytes.chunks(2) {
        *sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
}

/// The VRRPv3 message (RFC 9568 5.1): version 3, type 1, the 12-bit Max
/// Adver Int, and the checksum over the IPv4 pseudo-header (source,
/// 224.0.0.18, zero, protocol 112, VRRP length) and the message.
pub fn vrrp_v3_message(f: &Forged) -> Vec<u8> {
    assert!(
        f.max_adver_int_cs <= 0x0fff,
        "Max Adver Int is 12 bits: {}",
        f.max_adver_int_cs
    );
    let count = u8::try_from(f.vips.len()).expect("at most 255 VIPs");
    let [hi, lo] = f.max_adver_int_cs.to_be_bytes();
    let mut m = vec![0x31, f.vrid, f.priority, count, hi, lo, 0, 0];
    for v in &f.vips {
        m.extend_from_slice(&v.octets());
    }
    let mut sum = 0u32;
    add_words(&mut sum, &f.src.octets());
    add_words(&mut sum, &VRRP_GROUP.octets());
    add_words(&mut sum, &[0, 112]);
    add_words(&mut sum, &(m.len() as u16).to_be_bytes());
    add_words(&mut sum, &m);
    m[6..8].copy_from_slice(&fold(sum).to_be_bytes());
    m
}

/// Runs `f` on a thread that has entered network namespace `netns` (a name
/// under /run/netns) and returns what it returns.
fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let nsf = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns moves only this short-lived thread.
        let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace helper thread")
}

/// An AF_PACKET socket on `ifname` inside a lab namespace: sends whole
/// Ethernet frames, so it can forge any source address.
pub struct Injector {
    fd: OwnedFd,
    ifindex: i32,
    /// The Ethernet source of the forged frames.
    pub mac: [u8; 6],
}

impl Injector {
    pub fn open(netns: &str, ifname: &str, mac: [u8; 6]) -> Self {
        let ifname = ifname.to_string();
        let what = format!("{ifname} in {netns}");
        let (fd, ifindex) = in_netns(netns, move || {
            let name = std::ffi::CString::new(ifname).expect("ifname");
            // SAFETY: NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            // SAFETY: plain socket(2); checked below.
            let fd =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: a fresh descriptor we own.
            (unsafe { OwnedFd::from_raw_fd(fd) }, ifindex)
        });
        assert!(ifindex != 0, "no interface {what}");
        Self {
            fd,
            ifindex: ifindex as i32,
            mac,
        }
    }

    /// Sends one frame.
    pub fn send_frame(&self, frame: &[u8]) {
        // SAFETY: zeroed sockaddr_ll is a valid value; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        // SAFETY: frame and sll outlive the call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            r,
            frame.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends ONE valid VRRPv3 advert: IPv4, TTL 255, to 224.0.0.18, from `f.src`.
    pub fn send_v3(&self, f: &Forged) {
        self.send_frame(&crate::flood::frame(self.mac, f.src, &vrrp_v3_message(f)));
    }
}

/// A NETLINK_ROUTE socket inside a lab namespace that lists its IPv4 addresses.
pub struct AddrWatch {
    fd: OwnedFd,
    seq: u32,
}

const NLMSG_HDRLEN: usize = 16;

impl AddrWatch {
    pub fn open(netns: &str) -> Self {
        let fd = in_netns(netns, || {
            // SAFETY: plain socket(2); checked below.
            let fd = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                )
            };
            assert!(
                fd >= 0,
                "netlink socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: a fresh descriptor we own.
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: a valid timeval for SO_RCVTIMEO.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        Self { fd, seq: 0 }
    }

    /// Every IPv4 address configured in the namespace (one RTM_GETADDR dump).
    pub fn v4(&mut self) -> Vec<Ipv4Addr> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut req = Vec::with_capacity(24);
        req.extend_from_slice(&24u32.to_ne_bytes());
        req.extend_from_slice(&libc::RTM_GETADDR.to_ne_bytes());
        req.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req.extend_from_slice(&seq.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        req.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
        req.extend_from_slice(&0u32.to_ne_bytes());
        // SAFETY: req outlives the call.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        assert_eq!(
            r,
            req.len() as isize,
            "netlink send: {}",
            std::io::Error::last_os_error()
        );
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: buf is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            assert!(n > 0, "netlink recv: {}", std::io::Error::last_os_error());
            let mut msgs = &buf[..n as usize];
            while msgs.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(msgs[0..4].try_into().expect("4 bytes")) as usize;
                let ty = u16::from_ne_bytes(msgs[4..6].try_into().expect("2 bytes"));
                let mseq = u32::from_ne_bytes(msgs[8..12].try_into().expect("4 bytes"));
                if len < NLMSG_HDRLEN || len > msgs.len() {
                    break;
                }
                let body = &msgs[NLMSG_HDRLEN..len];
                if mseq == seq {
                    match i32::from(ty) {
                        libc::NLMSG_DONE => return out,
                        libc::NLMSG_ERROR => {
                            let errno = i32::from_ne_bytes(body[0..4].try_into().expect("4 bytes"));
                            panic!("netlink address dump failed: errno {}", -errno);
                        }
                        _ if ty == libc::RTM_NEWADDR => {
                            if let Some(a) = ifa_v4(body) {
                                out.push(a);
                            }
                        }
                        _ => {}
                    }
                }
                let step = (len + 3) & !3;
                msgs = &msgs[step.min(msgs.len())..];
            }
        }
    }
}

/// The address of one RTM_NEWADDR body: IFA_LOCAL, else IFA_ADDRESS.
fn ifa_v4(body: &[u8]) -> Option<Ipv4Addr> {
    let mut attrs = body.get(8..)?;
    let (mut local, mut address) = (None, None);
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        if data.len() == 4 {
            let a = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
            match ty {
                libc::IFA_LOCAL => local = Some(a),
                libc::IFA_ADDRESS => address = Some(a),
                _ => {}
            }
        }
        let step = (len + 3) & !3;
        attrs = &attrs[step.min(attrs.len())..];
    }
    local.or(address)
}

/// One sample: for each watched host, which of the VIPs it holds.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    /// `held[host][vip]`.
    pub held: Vec<Vec<bool>>,
}

impl Sample {
    /// How many hosts hold VIP `vip`.
    pub fn holders(&self, vip: usize) -> usize {
        self.held.iter().filter(|h| h[vip]).count()
    }
}

/// Samples, every `period`, which of `hosts` (namespace names) hold which
/// of `vips`, on a background thread until [`Sampler::stop`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<Sample>>>,
    pub started: Instant,
    pub period: Duration,
}

impl Sampler {
    pub fn start(hosts: &[&str], vips: &[Ipv4Addr], period: Duration) -> Self {
        let mut watches: Vec<AddrWatch> = hosts.iter().map(|h| AddrWatch::open(h)).collect();
        let vips = vips.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut next = started;
            while !flag.load(Ordering::Relaxed) {
                let t = started.elapsed().as_secs_f64();
                let held = watches
                    .iter_mut()
                    .map(|w| {
                        let have = w.v4();
                        vips.iter().map(|v| have.contains(v)).collect()
                    })
                    .collect();
                out.push(Sample { t, held });
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            out
        });
        Self {
            stop,
            handle: Some(handle),
            started,
            period,
        }
    }

    /// Seconds since the sampler started (the samples' time base).
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("running")
            .join()
            .expect("sampler thread")
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs of consecutive samples in which `pred` holds: (first index, length).
pub fn runs(samples: &[Sample], pred: impl Fn(&Sample) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, s) in samples.iter().enumerate() {
        match (pred(s), start) {
            (true, None) => start = Some(i),
            (false, Some(b)) => {
                out.push((b, i - b));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, samples.len() - b));
    }
    out
}

/// Parses `02:00:00:00:01:0c`.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("bad MAC {s}: {e}")))
        .collect();
    v.try_into()
        .unwrap_or_else(|_| panic!("a MAC has 6 bytes: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use haxdp_vrrp::{encode, Advert, Version};

    fn forged(cs: u16) -> Forged {
        Forged {
            vrid: 51,
            priority: 95,
            max_adver_int_cs: cs,
            src: Ipv4Addr::new(192, 0, 2, 50),
            vips: vec![Ipv4Addr::new(192, 0, 2, 100)],
        }
    }

    #[test]
    fn v3_message_matches_the_codec() {
        for cs in [1u16, 10, 100, 4095] {
            let f = forged(cs);
            let ours = vrrp_v3_message(&f);
            let theirs = encode(
                &Advert {
                    version: Version::V3,
                    vrid: f.vrid,
                    priority: f.priority,
                    max_adver_int_cs: cs,
                    addrs: f.vips.iter().map(|a| (*a).into()).collect(),
                    auth: None,
                },
                f.src.into(),
                VRRP_GROUP.into(),
            )
            .expect("encode");
            assert_eq!(ours, theirs, "cs {cs}");
        }
    }

    #[test]
    fn zero_interval_advert_has_a_valid_checksum() {
        let f = forged(0);
        let m = vrrp_v3_message(&f);
        assert_eq!(&m[4..6], &[0, 0]);
        // The sum over pseudo-header and message, checksum included, is 0xffff.
        let mut sum = 0u32;
        add_words(&mut sum, &f.src.octets());
        add_words(&mut sum, &VRRP_GROUP.octets());
        add_words(&mut sum, &[0, 112]);
        add_words(&mut sum, &(m.len() as u16).to_be_bytes());
        add_words(&mut sum, &m);
        assert_eq!(fold(sum), 0);
        let frame = crate::flood::frame([2, 0, 0, 0, 0, 1], f.src, &m);
        assert_eq!(frame[14 + 8], 255, "TTL 255");
        assert_eq!(&frame[14 + 16..14 + 20], &[224, 0, 0, 18]);
    }

    #[test]
    fn runs_finds_consecutive_samples() {
        let s = |b: bool| Sample {
            t: 0.0,
            held: vec![vec![b]],
        };
        let v = [s(false), s(true), s(true), s(false), s(true)];
        assert_eq!(runs(&v, |x| x.held[0][0]), vec![(1, 2), (4, 1)]);
        assert_eq!(parse_mac("02:00:00:00:01:0c"), [2, 0, 0, 0, 1, 12]);
    }
}
