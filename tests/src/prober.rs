//! A client that asks "who has the VIP?" every millisecond and writes down
//! who answered, as a LAN client's ARP cache would see a failover.
//!
//! The prober runs in a dedicated thread that joins the lab namespace with
//! setns(2) (the call changes the network namespace of the calling thread
//! only), opens AF_PACKET sockets on the interface, broadcasts an ARP request
//! for the VIP every `interval` and records every ARP reply for the VIP with
//! its kernel receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME) and the
//! replier's MAC. It also records the VRRP adverts (IP protocol 112) crossing
//! the interface, in both directions, so that a scenario can compare the
//! wire's last advert of a master with the first reply of its successor on
//! one clock.
//!
//! [`analyse`] turns the replies into the numbers the chaos suite asserts:
//! the longest stretch with no owner, the time two owners answered at once,
//! and how often the set of owners changed.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// SO_TIMESTAMPNS (asm-generic/socket.h, SO_TIMESTAMPNS_OLD): a struct
/// timespec of the skb's receive time in every recvmsg's control data.
const SO_TIMESTAMPNS: libc::c_int = 35;
/// linux/if_packet.h: the packet was sent by this host (seen on a tap).
pub(crate) const PACKET_OUTGOING: u8 = 4;
pub(crate) const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
pub(crate) const ETH_P_ALL: u16 = 0x0003;
const IPPROTO_VRRP: u8 = 112;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot open /run/netns/{ns}: {source} (is the namespace still there?)")]
    OpenNetns { ns: String, source: std::io::Error },
    #[error("setns into {ns} failed: {source} (needs CAP_SYS_ADMIN: run as root)")]
    Setns { ns: String, source: std::io::Error },
    #[error("no interface {ifname} in namespace {ns}")]
    NoInterface { ns: String, ifname: String },
    #[error("{what} on {ifname}: {source}")]
    Socket {
        what: &'static str,
        ifname: String,
        source: std::io::Error,
    },
    #[error("{ifname} in {ns} has no IPv4 address to ask from; give the client an address first")]
    NoSourceAddress { ns: String, ifname: String },
    #[error("cannot start the {what} thread: {source}")]
    Spawn {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the prober thread panicked")]
    Panicked,
}

/// A link-layer address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff`.
    pub fn parse(s: &str) -> Option<Mac> {
        let mut b = [0u8; 6];
        let mut parts = s.split(':');
        for x in &mut b {
            *x = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(b))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One ARP reply for the VIP. `t` is seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reply {
    pub t: f64,
    pub mac: Mac,
}

/// One VRRP advert seen on the interface.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdvertSeen {
    pub t: f64,
    pub src: Ipv4Addr,
    pub vrid: u8,
    pub prio: u8,
    /// Sent out of this interface (on a bridge port: towards the host behind it).
    pub outgoing: bool,
}

/// What to probe.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// Name under /run/netns.
    pub netns: String,
    pub ifname: String,
    /// `None`: only record adverts (for example on a bridge port).
    pub vip: Option<Ipv4Addr>,
    /// Time between two ARP requests.
    pub interval: Duration,
    /// The prober stops by itself after this long, even if nobody calls `finish`.
    pub max_duration: Duration,
}

impl ProbeConfig {
    /// An ARP prober for `vip` every millisecond.
    pub fn arp(netns: &str, ifname: &str, vip: Ipv4Addr, max_duration: Duration) -> Self {
        Self {
            netns: netns.into(),
            ifname: ifname.into(),
            vip: Some(vip),
            interval: Duration::from_millis(1),
            max_duration,
        }
    }

    /// Records adverts only.
    pub fn adverts(netns: &str, ifname: &str, max_duration: Duration) -> Self {
        Self {
            netns: netns.into(),
            ifname: ifname.into(),
            vip: None,
            interval: Duration::from_millis(1),
            max_duration,
        }
    }
}

/// The record of one probe run. Times are seconds since the Unix epoch.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub started: f64,
    pub ended: f64,
    /// ARP requests sent.
    pub sent: u64,
    pub replies: Vec<Reply>,
    pub adverts: Vec<AdvertSeen>,
    /// Replies and adverts whose timestamp came from user space because the
    /// kernel gave none (should stay 0).
    pub user_timestamps: u64,
    /// Longest time between two of our own requests, seconds: above a few
    /// interval lengths the prober itself was starved, and a gap it
    /// measured around that time may be partly its own.
    pub max_send_gap: f64,
    /// Whether the prober thread got SCHED_FIFO (it asks for it so that
    /// builds sharing the machine do not delay its requests).
    pub realtime: bool,
}

impl Probe {
    /// Last advert from `src` (either direction) at or before `before`.
    pub fn last_advert_from(&self, src: Ipv4Addr, before: f64) -> Option<f64> {
        self.adverts
            .iter()
            .filter(|a| a.src == src && a.t <= before)
            .map(|a| a.t)
            .reduce(f64::max)
    }

    /// First reply from `mac` after `after`.
    pub fn first_reply_from(&self, mac: Mac, after: f64) -> Option<f64> {
        self.replies
            .iter()
            .filter(|r| r.mac == mac && r.t > after)
            .map(|r| r.t)
            .reduce(f64::min)
    }

    /// Last reply from `mac`, if any.
    pub fn last_reply_from(&self, mac: Mac) -> Option<f64> {
        self.replies
            .iter()
            .filter(|r| r.mac == mac)
            .map(|r| r.t)
            .reduce(f64::max)
    }

    /// Longest time between two consecutive adverts from `src` within
    /// `[from, to]` (edges count), looking only at one direction.
    pub fn longest_advert_gap(&self, src: Ipv4Addr, outgoing: bool, from: f64, to: f64) -> f64 {
        let mut ts: Vec<f64> = self
            .adverts
            .iter()
            .filter(|a| a.src == src && a.outgoing == outgoing && a.t >= from && a.t <= to)
            .map(|a| a.t)
            .collect();
        ts.sort_by(f64::total_cmp);
        let mut prev = from;
        let mut worst = 0.0f64;
        for t in ts.into_iter().chain(std::iter::once(to)) {
            worst = worst.max(t - prev);
            prev = t;
        }
        worst
    }

    /// [`analyse`] over the whole run.
    pub fn analysis(&self, merge: f64) -> Analysis {
        analyse(&self.replies, self.started, self.ended, merge)
    }
}

/// Seconds since the Unix epoch, the clock of the kernel's SO_TIMESTAMPNS.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A running prober; `finish` stops it and returns its record.
pub struct Prober {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Probe, ProbeError>>>,
}

impl Prober {
    /// Starts the prober and returns once its sockets are open (the first
    /// request goes out at once).
    pub fn start(cfg: ProbeConfig) -> Result<Self, ProbeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), ProbeError>>();
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("prober-{}", cfg.netns))
            .spawn(move || {
                let sockets = match Sockets::open(&cfg) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        let _ = ready_tx.send(Err(e));
                        // The caller has the error; the join value only repeats it.
                        return Err(ProbeError::Socket {
                            what: "setup",
                            ifname: cfg.ifname.clone(),
                            source: std::io::Error::other(msg),
                        });
                    }
                };
                Ok(sockets.run(&cfg, &stop2))
            })
            .map_err(|source| ProbeError::Spawn {
                what: "prober",
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop,
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(ProbeError::Panicked)
            }
        }
    }

    /// Stops probing and returns what was seen.
    pub fn finish(mut self) -> Result<Probe, ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| ProbeError::Panicked)?,
            None => Err(ProbeError::Panicked),
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The prober's sockets, opened inside the target namespace.
struct Sockets {
    arp: Option<OwnedFd>,
    ip: OwnedFd,
    request: Vec<u8>,
    vip: Option<Ipv4Addr>,
    own_ip: Ipv4Addr,
}

/// Moves the calling thread into the network namespace `/run/netns/NAME`
/// (setns(2) with CLONE_NEWNET changes only the calling thread's namespace).
pub(crate) fn enter_netns(name: &str) -> Result<(), ProbeError> {
    let f = File::open(format!("/run/netns/{name}")).map_err(|source| ProbeError::OpenNetns {
        ns: name.into(),
        source,
    })?;
    // SAFETY: a valid namespace fd.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(ProbeError::Setns {
            ns: name.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The index of `ifname` in the calling thread's namespace (`ns` only names
/// it in the error).
pub(crate) fn if_index(ns: &str, ifname: &str) -> Result<u32, ProbeError> {
    let missing = || ProbeError::NoInterface {
        ns: ns.into(),
        ifname: ifname.into(),
    };
    let cname = std::ffi::CString::new(ifname).map_err(|_| missing())?;
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(missing());
    }
    Ok(ifindex)
}

fn io_err(what: &'static str, ifname: &str) -> ProbeError {
    ProbeError::Socket {
        what,
        ifname: ifname.into(),
        source: std::io::Error::last_os_error(),
    }
}

impl Sockets {
    fn open(cfg: &ProbeConfig) -> Result<Self, ProbeError> {
        enter_netns(&cfg.netns)?;
        let cname =
            std::ffi::CString::new(cfg.ifname.as_str()).map_err(|_| ProbeError::NoInterface {
                ns: cfg.netns.clone(),
                ifname: cfg.ifname.clone(),
            })?;
        let ifindex = if_index(&cfg.netns, &cfg.ifname)?;
        // Frames a host sends are handed only to ETH_P_ALL taps
        // (dev_queue_xmit_nit walks ptype_all), so a recorder on a bridge
        // port, which wants the frames the bridge sends to the host behind
        // it, listens to everything; the client only needs what it receives.
        let ip_proto = if cfg.vip.is_some() {
            ETH_P_IP
        } else {
            ETH_P_ALL
        };
        let ip = packet_socket(ip_proto, ifindex, &cfg.ifname)?;
        let (arp, request, own_ip) = match cfg.vip {
            None => (None, Vec::new(), Ipv4Addr::UNSPECIFIED),
            Some(vip) => {
                let arp = packet_socket(ETH_P_ARP, ifindex, &cfg.ifname)?;
                let mac = if_hwaddr(&arp, &cname, &cfg.ifname)?;
                let own_ip = if_ipv4(&arp, &cname).ok_or_else(|| ProbeError::NoSourceAddress {
                    ns: cfg.netns.clone(),
                    ifname: cfg.ifname.clone(),
                })?;
                (Some(arp), arp_request(mac, own_ip, vip), own_ip)
            }
        };
        Ok(Self {
            arp,
            ip,
            request,
            vip: cfg.vip,
            own_ip,
        })
    }

    fn run(self, cfg: &ProbeConfig, stop: &AtomicBool) -> Probe {
        let mut probe = Probe {
            started: wall_now(),
            ..Probe::default()
        };
        // SAFETY: sched_setscheduler(0, ...) changes only the calling thread;
        // a failure (no CAP_SYS_NICE) leaves it as it was.
        probe.realtime = unsafe {
            let param = libc::sched_param { sched_priority: 10 };
            libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0
        };
        let begin = Instant::now();
        let mut last_sent: Option<Instant> = None;
        let deadline = begin + cfg.max_duration;
        let mut next_send = begin;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(arp) = &self.arp {
                if now >= next_send {
                    // SAFETY: a valid fd and a buffer of the given length.
                    let n = unsafe {
                        libc::send(
                            arp.as_raw_fd(),
                            self.request.as_ptr().cast(),
                            self.request.len(),
                            0,
                        )
                    };
                    if n > 0 {
                        probe.sent += 1;
                        if let Some(l) = last_sent {
                            probe.max_send_gap =
                                probe.max_send_gap.max(now.duration_since(l).as_secs_f64());
                        }
                        last_sent = Some(now);
                    }
                    next_send += cfg.interval;
                    // After a stall, keep the pace instead of sending a burst.
                    if next_send < now {
                        next_send = now + cfg.interval;
                    }
                }
            } else {
                next_send = now + cfg.interval;
            }
            let wait = next_send
                .min(deadline)
                .saturating_duration_since(Instant::now());
            self.wait_readable(wait);
            if let Some(arp) = &self.arp {
                while let Some((len, ts, _)) = recv(arp, &mut buf) {
                    if let Some(mac) = self.parse_reply(&buf[..len]) {
                        let t = ts.unwrap_or_else(|| {
                            probe.user_timestamps += 1;
                            wall_now()
                        });
                        probe.replies.push(Reply { t, mac });
                    }
                }
            }
            while let Some((len, ts, pkttype)) = recv(&self.ip, &mut buf) {
                if let Some((src, vrid, prio)) = parse_advert(&buf[..len]) {
                    let t = ts.unwrap_or_else(|| {
                        probe.user_timestamps += 1;
                        wall_now()
                    });
                    probe.adverts.push(AdvertSeen {
                        t,
                        src,
                        vrid,
                        prio,
                        outgoing: pkttype == PACKET_OUTGOING,
                    });
                }
            }
        }
        probe.ended = wall_now();
        probe.replies.sort_by(|a, b| a.t.total_cmp(&b.t));
        probe.adverts.sort_by(|a, b| a.t.total_cmp(&b.t));
        probe
    }

    fn wait_readable(&self, wait: Duration) {
        let mut fds = vec![libc::pollfd {
            fd: self.ip.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(arp) = &self.arp {
            fds.push(libc::pollfd {
                fd: arp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: fds is a valid array of its length; a null sigmask.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
    }

    /// An ARP reply (RFC 826 op 2) for the VIP addressed to us: the sender's MAC.
    fn parse_reply(&self, f: &[u8]) -> Option<Mac> {
        let vip = self.vip?;
        if f.len() < 42 || u16::from_be_bytes([f[12], f[13]]) != ETH_P_ARP {
            return None;
        }
        let a = &f[14..42];
        let op = u16::from_be_bytes([a[6], a[7]]);
        let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
        let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
        // Gratuitous ARPs (target = sender = VIP) announce, they do not answer.
        (op == 2 && spa == vip && tpa == self.own_ip).then(|| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&a[8..14]);
            Mac(m)
        })
    }
}

/// An IPv4 VRRP packet (RFC 9568 5.1): source, VRID, priority.
pub(crate) fn parse_advert(f: &[u8]) -> Option<(Ipv4Addr, u8, u8)> {
    if f.len() < 14 + 20 || u16::from_be_bytes([f[12], f[13]]) != ETH_P_IP {
        return None;
    }
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IPPROTO_VRRP || ip.len() < ihl + 4 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    Some((src, ip[ihl + 1], ip[ihl + 2]))
}

/// Broadcast "who has `vip`? tell `ip`" from `mac` (RFC 826).
fn arp_request(mac: [u8; 6], ip: Ipv4Addr, vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&vip.octets());
    f
}

pub(crate) fn packet_socket(proto: u16, ifindex: u32, ifname: &str) -> Result<OwnedFd, ProbeError> {
    // SAFETY: plain socket(2).
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::c_int::from(proto.to_be()),
        )
    };
    if fd < 0 {
        return Err(io_err("socket(AF_PACKET)", ifname));
    }
    // SAFETY: fd was just returned by socket(2) and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_ll is valid; the fields we need are set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a sockaddr_ll of the given size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r != 0 {
        return Err(io_err("bind(AF_PACKET)", ifname));
    }
    let on: libc::c_int = 1;
    let rcvbuf: libc::c_int = 4 << 20;
    for (opt, val) in [(SO_TIMESTAMPNS, on), (libc::SO_RCVBUF, rcvbuf)] {
        // SAFETY: an int option of the given size.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&val as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if r != 0 {
            return Err(io_err("setsockopt", ifname));
        }
    }
    Ok(fd)
}

fn ifreq_for(name: &std::ffi::CStr) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.to_bytes()) {
        *d = *s as libc::c_char;
    }
    req
}

fn if_hwaddr(fd: &OwnedFd, name: &std::ffi::CStr, ifname: &str) -> Result<[u8; 6], ProbeError> {
    let mut req = ifreq_for(name);
    // SAFETY: SIOCGIFHWADDR fills the ifreq we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        return Err(io_err("SIOCGIFHWADDR", ifname));
    }
    // SAFETY: the kernel wrote a sockaddr into the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

fn if_ipv4(fd: &OwnedFd, name: &std::ffi::CStr) -> Option<Ipv4Addr> {
    let mut req = ifreq_for(name);
    // SAFETY: SIOCGIFADDR fills the ifreq we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFADDR, &mut req) } != 0 {
        return None;
    }
    // SAFETY: for AF_INET the union holds a sockaddr_in.
    let sa: libc::sockaddr_in = unsafe { std::mem::transmute_copy(&req.ifr_ifru.ifru_addr) };
    Some(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))
}

/// One non-blocking recvmsg: length, kernel timestamp, packet type.
pub(crate) fn recv(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, Option<f64>, u8)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zeroed plain-data structs.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut cmsg = [0u64; 16];
    // SAFETY: zeroed msghdr, every pointer set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: msg points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n <= 0 {
        return None;
    }
    let mut ts = None;
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPNS {
                let t: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if t.tv_sec != 0 {
                    ts = Some(t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((n as usize, ts, sll.sll_pkttype))
}

/// A stretch of time, seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: f64,
}

impl Span {
    pub fn len(&self) -> f64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The part of the span at or after `t`, in seconds (0 if none).
    pub fn len_after(&self, t: f64) -> f64 {
        (self.end - self.start.max(t)).max(0.0)
    }
}

/// What the replies say about ownership of the VIP.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The longest stretch of the window with no reply at all (the window's
    /// edges count, so a VIP nobody answers shows as one long gap).
    pub longest_gap: Span,
    /// Stretches during which two or more MACs were answering.
    pub dual: Vec<Span>,
    /// Every change of the (non-empty) set of MACs answering.
    pub owner_changes: usize,
    /// MACs in the order they first answered.
    pub owners: Vec<Mac>,
}

impl Analysis {
    pub fn dual_total(&self) -> f64 {
        self.dual.iter().map(Span::len).fold(0.0, |a, b| a + b)
    }

    pub fn dual_longest(&self) -> f64 {
        self.dual.iter().map(Span::len).fold(0.0, f64::max)
    }

    /// Total dual-owner time at or after `t`.
    pub fn dual_after(&self, t: f64) -> f64 {
        self.dual
            .iter()
            .map(|s| s.len_after(t))
            .fold(0.0, |a, b| a + b)
    }
}

/// Analyses `replies` over the window `[from, to]`.
///
/// A MAC "is answering" from one of its replies to the next as long as they
/// are at most `merge` seconds apart (a few probe intervals: an owner answers
/// every probe, so a longer silence means it stopped). Two MACs answering at
/// the same time is dual ownership; a lone reply from a second MAC inside
/// another's stretch counts as a (zero-length) dual episode and as two owner
/// changes, because the client did get two different answers.
pub fn analyse(replies: &[Reply], from: f64, to: f64, merge: f64) -> Analysis {
    let mut rs: Vec<Reply> = replies
        .iter()
        .copied()
        .filter(|r| r.t >= from && r.t <= to)
        .collect();
    rs.sort_by(|a, b| a.t.total_cmp(&b.t));

    let mut longest_gap = Span {
        start: from,
        end: from,
    };
    let mut prev = from;
    for t in rs.iter().map(|r| r.t).chain(std::iter::once(to)) {
        if t - prev > longest_gap.len() {
            longest_gap = Span {
                start: prev,
                end: t,
            };
        }
        prev = t;
    }

    let mut owners: Vec<Mac> = Vec::new();
    let mut by_mac: BTreeMap<Mac, Vec<Span>> = BTreeMap::new();
    for r in &rs {
        if !owners.contains(&r.mac) {
            owners.push(r.mac);
        }
        let spans = by_mac.entry(r.mac).or_default();
        match spans.last_mut() {
            Some(s) if r.t - s.end <= merge => s.end = r.t,
            _ => spans.push(Span {
                start: r.t,
                end: r.t,
            }),
        }
    }

    // A MAC answering within `merge` of the window's edges was answering
    // before it opened (or still is after it closed): the edges are not
    // changes of owner.
    for spans in by_mac.values_mut() {
        for s in spans.iter_mut() {
            if s.start - from <= merge {
                s.start = from;
            }
            if to - s.end <= merge {
                s.end = to;
            }
        }
    }

    // Sweep over the instants where a stretch starts or ends: at each one,
    // starts are applied and the set looked at before ends, so a lone reply
    // (a zero-length stretch) is seen.
    let mut times: Vec<f64> = by_mac
        .values()
        .flat_map(|v| v.iter().flat_map(|s| [s.start, s.end]))
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut active: Vec<Mac> = Vec::new();
    let mut dual = Vec::new();
    let mut dual_start: Option<f64> = None;
    let mut last_set: Vec<Mac> = Vec::new();
    let mut owner_changes = 0;
    let mut look = |active: &[Mac], t: f64, dual_start: &mut Option<f64>| {
        if active.len() >= 2 && dual_start.is_none() {
            *dual_start = Some(t);
        }
        if active.len() < 2 {
            if let Some(s) = dual_start.take() {
                dual.push(Span { start: s, end: t });
            }
        }
        if !active.is_empty() {
            let mut set = active.to_vec();
            set.sort();
            if !last_set.is_empty() && set != last_set {
                owner_changes += 1;
            }
            last_set = set;
        }
    };
    for t in times {
        for (mac, spans) in &by_mac {
            if spans.iter().any(|s| s.start == t) {
                active.push(*mac);
            }
        }
        look(&active, t, &mut dual_start);
        if t >= to {
            break;
        }
        for (mac, spans) in &by_mac {
            if spans.iter().any(|s| s.end == t) {
                active.retain(|m| m != mac);
            }
        }
        look(&active, t, &mut dual_start);
    }
    if let Some(s) = dual_start {
        dual.push(Span { start: s, end: to });
    }
    Analysis {
        longest_gap,
        dual,
        owner_changes,
        owners,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = Mac([2, 0, 0, 0, 1, 0x0a]);
    const B: Mac = Mac([2, 0, 0, 0, 1, 0x0b]);
    const C: Mac = Mac([2, 0, 0, 0, 1, 0x0c]);
    const MERGE: f64 = 0.005;

    /// Replies from `mac` every millisecond over [from, to].
    fn every_ms(mac: Mac, from: f64, to: f64) -> Vec<Reply> {
        let n = ((to - from) * 1000.0).round() as usize;
        (0..=n)
            .map(|i| Reply {
                t: from + i as f64 * 0.001,
                mac,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn steady_owner_has_no_gap_dual_or_change() {
        let r = every_ms(A, 0.0, 1.0);
        let a = analyse(&r, 0.0, 1.0, MERGE);
        assert!(a.longest_gap.len() <= 0.001 + 1e-9, "{a:?}");
        assert!(a.dual.is_empty());
        assert_eq!(a.owner_changes, 0);
        assert_eq!(a.owners, vec![A]);
    }

    #[test]
    fn clean_failover_is_one_change_and_its_gap() {
        let mut r = every_ms(A, 0.0, 1.0);
        r.extend(every_ms(B, 1.365, 2.0));
        let a = analyse(&r, 0.0, 2.0, MERGE);
        assert!(close(a.longest_gap.start, 1.0), "{a:?}");
        assert!(close(a.longest_gap.end, 1.365), "{a:?}");
        assert!(close(a.longest_gap.len(), 0.365));
        assert!(a.dual.is_empty(), "{a:?}");
        assert_eq!(a.owner_changes, 1);
        assert_eq!(a.owners, vec![A, B]);
    }

    #[test]
    fn nobody_answering_counts_to_the_window_edge() {
        let r = every_ms(A, 0.0, 0.5);
        let a = analyse(&r, 0.0, 2.0, MERGE);
        assert!(close(a.longest_gap.start, 0.5));
        assert!(close(a.longest_gap.end, 2.0));
        let a = analyse(&[], 0.0, 2.0, MERGE);
        assert!(close(a.longest_gap.len(), 2.0));
        assert_eq!(a.owner_changes, 0);
        assert!(a.owners.is_empty());
    }

    #[test]
    fn interleaved_owners_are_dual_for_their_overlap() {
        // A answers until 1.1, B from 1.0: 100 ms of two owners, then B alone.
        let mut r = every_ms(A, 0.0, 1.1);
        r.extend(every_ms(B, 1.0, 2.0));
        let a = analyse(&r, 0.0, 2.0, MERGE);
        assert_eq!(a.dual.len(), 1, "{a:?}");
        assert!(close(a.dual[0].start, 1.0) && close(a.dual[0].end, 1.1));
        assert!(close(a.dual_total(), 0.1));
        assert!(close(a.dual_longest(), 0.1));
        assert!(close(a.dual_after(1.05), 0.05));
        assert!(close(a.dual_after(1.5), 0.0));
        // {A} -> {A, B} -> {B}
        assert_eq!(a.owner_changes, 2);
        assert!(a.longest_gap.len() <= 0.001 + 1e-9);
    }

    #[test]
    fn partition_and_heal_is_two_changes_back_to_the_first_owner() {
        let mut r = every_ms(A, 0.0, 3.0);
        r.extend(every_ms(B, 1.0, 2.05));
        let a = analyse(&r, 0.0, 3.0, MERGE);
        assert_eq!(a.owner_changes, 2, "{a:?}");
        assert!(close(a.dual_longest(), 1.05));
        assert!(close(a.dual_after(2.0), 0.05));
    }

    #[test]
    fn a_lone_stray_reply_is_a_flap() {
        let mut r = every_ms(A, 0.0, 1.0);
        r.push(Reply { t: 0.5004, mac: B });
        let a = analyse(&r, 0.0, 1.0, MERGE);
        assert_eq!(a.owner_changes, 2, "{a:?}");
        assert_eq!(a.dual.len(), 1);
        assert!(close(a.dual_total(), 0.0));
        assert_eq!(a.owners, vec![A, B]);
    }

    #[test]
    fn one_owner_pausing_is_a_gap_not_a_change() {
        let mut r = every_ms(A, 0.0, 1.0);
        r.extend(every_ms(A, 1.2, 2.0));
        let a = analyse(&r, 0.0, 2.0, MERGE);
        assert_eq!(a.owner_changes, 0, "{a:?}");
        assert!(close(a.longest_gap.len(), 0.2));
        assert!(a.dual.is_empty());
    }

    #[test]
    fn a_third_owner_is_counted_and_replies_outside_the_window_ignored() {
        let mut r = every_ms(A, 0.0, 1.0);
        r.extend(every_ms(B, 1.0005, 1.9995));
        r.extend(every_ms(C, 2.0, 3.0));
        r.extend(every_ms(A, 3.5, 4.0));
        let a = analyse(&r, 0.0, 3.0, MERGE);
        assert_eq!(a.owners, vec![A, B, C]);
        // Each takes over half a probe after the other's last answer: no
        // overlap, {A} -> {B} -> {C}.
        assert_eq!(a.owner_changes, 2, "{a:?}");
        assert!(a.dual.is_empty(), "{a:?}");
    }

    #[test]
    fn owners_at_the_window_edges_are_not_changes() {
        // Two owners from the start to the end (a dead master's kernel and
        // its successor): dual all along, no change.
        let mut r = every_ms(A, 0.0, 1.0);
        r.extend(every_ms(B, 0.0005, 0.9995));
        let a = analyse(&r, 0.0, 1.0, MERGE);
        assert_eq!(a.owner_changes, 0, "{a:?}");
        assert_eq!(a.dual.len(), 1);
        assert!(close(a.dual_total(), 1.0));
        // A second owner joins and both answer until the window closes.
        let mut r = every_ms(A, 0.0, 1.0);
        r.extend(every_ms(B, 0.6, 0.9995));
        let a = analyse(&r, 0.0, 1.0, MERGE);
        assert_eq!(a.owner_changes, 1, "{a:?}");
        assert!(close(a.dual_total(), 0.4));
    }

    #[test]
    fn advert_gaps_and_lookups() {
        let src = Ipv4Addr::new(192, 0, 2, 10);
        let other = Ipv4Addr::new(192, 0, 2, 11);
        let mut p = Probe {
            started: 0.0,
            ended: 1.0,
            ..Probe::default()
        };
        for t in [0.1, 0.2, 0.6, 0.7] {
            p.adverts.push(AdvertSeen {
                t,
                src,
                vrid: 51,
                prio: 100,
                outgoing: true,
            });
        }
        p.adverts.push(AdvertSeen {
            t: 0.3,
            src: other,
            vrid: 51,
            prio: 90,
            outgoing: true,
        });
        assert!(close(p.longest_advert_gap(src, true, 0.0, 1.0), 0.4));
        assert!(close(p.longest_advert_gap(src, false, 0.0, 1.0), 1.0));
        assert_eq!(p.last_advert_from(src, 0.5), Some(0.2));
        assert_eq!(p.last_advert_from(other, 0.2), None);
        p.replies = vec![Reply { t: 0.4, mac: A }, Reply { t: 0.5, mac: B }];
        assert_eq!(p.first_reply_from(B, 0.3), Some(0.5));
        assert_eq!(p.first_reply_from(A, 0.4), None);
        assert_eq!(p.last_reply_from(A), Some(0.4));
    }

    #[test]
    fn frames_round_trip_through_the_parsers() {
        let mac = [2, 0, 0, 0, 1, 0x0c];
        let me = Ipv4Addr::new(192, 0, 2, 12);
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let req = arp_request(mac, me, vip);
        assert_eq!(req.len(), 42);
        // Turn the request into the owner's reply.
        let mut rep = req.clone();
        rep[20..22].copy_from_slice(&2u16.to_be_bytes());
        rep[22..28].copy_from_slice(&B.0);
        rep[28..32].copy_from_slice(&vip.octets());
        rep[32..38].copy_from_slice(&mac);
        rep[38..42].copy_from_slice(&me.octets());
        let s = Sockets {
            arp: None,
            ip: dummy_fd(),
            request: req.clone(),
            vip: Some(vip),
            own_ip: me,
        };
        assert_eq!(s.parse_reply(&rep), Some(B));
        // Our own request and a gratuitous ARP are not answers.
        assert_eq!(s.parse_reply(&req), None);
        let mut garp = rep.clone();
        garp[38..42].copy_from_slice(&vip.octets());
        assert_eq!(s.parse_reply(&garp), None);
        assert_eq!(s.parse_reply(&rep[..30]), None);

        let mut adv = vec![0u8; 14 + 20 + 8];
        adv[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        adv[14] = 0x45;
        adv[14 + 9] = IPPROTO_VRRP;
        adv[14 + 12..14 + 16].copy_from_slice(&[192, 0, 2, 10]);
        adv[34] = 0x31;
        adv[35] = 51;
        adv[36] = 100;
        assert_eq!(
            parse_advert(&adv),
            Some((Ipv4Addr::new(192, 0, 2, 10), 51, 100))
        );
        adv[14 + 9] = 17;
        assert_eq!(parse_advert(&adv), None);
        assert_eq!(parse_advert(&adv[..20]), None);
    }

    fn dummy_fd() -> OwnedFd {
        OwnedFd::from(File::open("/dev/null").expect("/dev/null"))
    }

    #[test]
    fn mac_parse_and_display() {
        let m = Mac::parse("02:00:00:00:01:0b").expect("valid");
        assert_eq!(m, B);
        assert_eq!(m.to_string(), "02:00:00:00:01:0b");
        assert_eq!(Mac::parse("02:00:00:00:01"), None);
        assert_eq!(Mac::parse("02:00:00:00:01:0b:00"), None);
        assert_eq!(Mac::parse("zz:00:00:00:01:0b"), None);
    }
}
