//! The advert socket: raw IP protocol 112 on one interface and family.
//!
//! It sends adverts (multicast to 224.0.0.18 / ff02::12, or unicast to the
//! configured peers) with TTL / hop limit 255 (RFC 9568 5.1.1.3, 5.1.2.3), and
//! joins the VRRP group so that the NIC's multicast filter lets adverts in
//! for the XDP program to see.
//!
//! When the XDP fast path is live the socket carries a drop-all socket
//! filter: the kernel still finds a raw socket for protocol 112 (so it does
//! not answer unicast adverts with ICMP protocol-unreachable) but never
//! queues a packet on it. When XDP is not available the filter is left off
//! and the socket is the receive path, with user-space timestamps.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::clock::monotonic_ns;

pub const IPPROTO_VRRP: i32 = 112;
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{ifname}: cannot open the VRRP socket: {op}: {source} (haxdp needs CAP_NET_RAW)")]
    Setup {
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{ifname}: cannot send advert to {dst}: {source}")]
    Send {
        ifname: String,
        dst: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("{ifname}: receive failed: {source}")]
    Recv {
        ifname: String,
        #[source]
        source: io::Error,
    },
}

/// One advert as the socket receive path saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6); RFC 9568 7.1 requires 255.
    pub ttl: u8,
    /// The VRRP message, IP header stripped.
    pub payload: Vec<u8>,
    /// CLOCK_MONOTONIC nanoseconds when user space read it.
    pub rx_ns: u64,
}

/// The buffers one msghdr points at: payload vector, control message, address.
struct MsgParts {
    iov: libc::iovec,
    cmsg: [u64; 8],
    sa4: libc::sockaddr_in,
    sa6: libc::sockaddr_in6,
}

impl MsgParts {
    fn new() -> Self {
        MsgParts {
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            cmsg: [0; 8],
            sa4: sockaddr_v4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            sa6: sockaddr_v6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)),
        }
    }
}

pub struct AdvertSocket {
    fd: AsyncFd<OwnedFd>,
    ifname: String,
    ifindex: u32,
    src: IpAddr,
}

/// Converts a CLOCK_REALTIME packet timestamp to CLOCK_MONOTONIC by the
/// clocks' current offset (accurate unless the wall clock steps meanwhile).
fn realtime_to_monotonic(ts: libc::timespec) -> u64 {
    let mut real: libc::timespec = unsafe { zeroed() };
    // SAFETY: real is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut real) };
    let to_ns = |t: libc::timespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
    let age = (to_ns(real) - to_ns(ts)).max(0);
    (monotonic_ns() as i128 - age).max(0) as u64
}

fn setopt<T>(fd: i32, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: val points to a T of the size we pass.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Attaches a classic BPF program of one instruction, `ret #0`, to socket `fd`: from now
/// on the kernel queues nothing to it (socket(7), SO_ATTACH_FILTER); what is queued
/// already stays readable.
fn attach_drop_all(fd: i32) -> io::Result<()> {
    let mut insn = [libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: insn.as_mut_ptr(),
    };
    setopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

impl AdvertSocket {
    /// Opens the socket for `ifname` with source address `src` (the family of
    /// `src` picks IPv4 or IPv6). `receive` leaves the socket readable (the
    /// raw-socket receive path); otherwise a drop-all filter is attached.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        group: IpAddr,
        receive: bool,
    ) -> Result<Self, NetError> {
        let err = |op: &'static str| {
            let source = io::Error::last_os_error();
            NetError::Setup {
                ifname: ifname.to_string(),
                op,
                source,
            }
        };
        let wrap = |op: &'static str| {
            move |source: io::Error| NetError::Setup {
                ifname: ifname.to_string(),
                op,
                source,
            }
        };
        let domain = if src.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2).
        let raw = unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                IPPROTO_VRRP,
            )
        };
        if raw < 0 {
            return Err(err("socket"));
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();

        if receive {
            // The socket is the receive path: a large queue rides out bursts
            // (floods of bad adverts) without dropping the master's adverts.
            // SO_RCVBUFFORCE needs CAP_NET_ADMIN, which the daemon has.
            let size: i32 = 8 << 20;
            if setopt(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
                let _ = setopt(s, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
            }
        } else {
            // Attached before anything can be queued.
            attach_drop_all(s).map_err(wrap("SO_ATTACH_FILTER"))?;
        }
        // SO_BINDTODEVICE: adverts leave and arrive on this interface only.
        let name = std::ffi::CString::new(ifname).map_err(|_| NetError::Setup {
            ifname: ifname.to_string(),
            op: "interface name",
            source: io::Error::from(io::ErrorKind::InvalidInput),
        })?;
        // SAFETY: name is NUL-terminated; length includes the NUL.
        let r = unsafe {
            libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.as_bytes_with_nul().len() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(err("SO_BINDTODEVICE"));
        }

        // Kernel receive timestamps (CLOCK_REALTIME, converted on read), so
        // that adverts queued while the daemon was stalled keep their
        // arrival time.
        let on: i32 = 1;
        setopt(s, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on).map_err(wrap("SO_TIMESTAMPNS"))?;

        match src {
            IpAddr::V4(a) => {
                let ttl: i32 = 255;
                setopt(s, libc::IPPROTO_IP, libc::IP_TTL, &ttl).map_err(wrap("IP_TTL"))?;
                setopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)
                    .map_err(wrap("IP_MULTICAST_TTL"))?;
                let off: i32 = 0;
                setopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &off)
                    .map_err(wrap("IP_MULTICAST_LOOP"))?;
                // Internetwork control precedence, as keepalived marks adverts.
                let tos: i32 = 0xc0;
                setopt(s, libc::IPPROTO_IP, libc::IP_TOS, &tos).map_err(wrap("IP_TOS"))?;
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from(match group {
                            IpAddr::V4(g) => g,
                            IpAddr::V6(_) => VRRP_GROUP_V4,
                        })
                        .to_be(),
                    },
                    imr_address: libc::in_addr {
                        s_addr: u32::from(a).to_be(),
                    },
                    imr_ifindex: ifindex as i32,
                };
                setopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)
                    .map_err(wrap("IP_MULTICAST_IF"))?;
                setopt(s, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)
                    .map_err(wrap("IP_ADD_MEMBERSHIP (the VRRP group)"))?;
                // No bind(2): a raw socket bound to an address only receives
                // packets sent to that address (raw(7)), which would hide the
                // multicast adverts. The source is set per packet (IP_PKTINFO).
            }
            IpAddr::V6(a) => {
                let hops: i32 = 255;
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops)
                    .map_err(wrap("IPV6_MULTICAST_HOPS"))?;
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops)
                    .map_err(wrap("IPV6_UNICAST_HOPS"))?;
                let off: i32 = 0;
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &off)
                    .map_err(wrap("IPV6_MULTICAST_LOOP"))?;
                let idx = ifindex as i32;
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)
                    .map_err(wrap("IPV6_MULTICAST_IF"))?;
                let on: i32 = 1;
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &on)
                    .map_err(wrap("IPV6_RECVHOPLIMIT"))?;
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &on)
                    .map_err(wrap("IPV6_RECVPKTINFO"))?;
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: match group {
                            IpAddr::V6(g) => g.octets(),
                            IpAddr::V4(_) => VRRP_GROUP_V6.octets(),
                        },
                    },
                    ipv6mr_interface: ifindex,
                };
                setopt(s, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
                    .map_err(wrap("IPV6_ADD_MEMBERSHIP (the VRRP group)"))?;
                // No bind(2), as for IPv4; the source is set per packet
                // (IPV6_PKTINFO), which also works for a tentative address.
                let _ = a;
            }
        }
        // SAFETY: the OwnedFd moves into the AsyncFd, which keeps it open
        // and unchanged for its whole lifetime.
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| wrap("register with tokio")(io::Error::from(e)))?;
        Ok(Self {
            fd,
            ifname: ifname.to_string(),
            ifindex,
            src,
        })
    }

    /// Makes a receiving socket send-only (the XDP program receives from now on): new
    /// adverts are no longer queued to it; read the ones already queued with `drain`.
    pub fn stop_receiving(&self) -> Result<(), NetError> {
        attach_drop_all(self.fd.get_ref().as_raw_fd()).map_err(|source| NetError::Setup {
            ifname: self.ifname.clone(),
            op: "SO_ATTACH_FILTER",
            source,
        })
    }

    pub fn source(&self) -> IpAddr {
        self.src
    }

    /// Sends one VRRP message (no IP header) to `dst`: the multicast group or
    /// a unicast peer.
    pub fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), NetError> {
        let s = self.fd.get_ref().as_raw_fd();
        let mut parts = MsgParts::new();
        let msg = self.fill(&mut parts, payload, dst)?;
        // SAFETY: msg points at live buffers (`parts`, `payload`) for the call.
        let r = unsafe { libc::sendmsg(s, &msg, 0) };
        if r < 0 {
            return Err(NetError::Send {
                ifname: self.ifname.clone(),
                dst,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Sends several messages with one sendmmsg(2): a master's adverts due in the same
    /// wake-up. Returns how many went out; the first failure, if any, is the error of
    /// the message it stopped at.
    pub fn send_many(&self, msgs: &[(Vec<u8>, IpAddr)]) -> Result<usize, NetError> {
        if msgs.is_empty() {
            return Ok(0);
        }
        let s = self.fd.get_ref().as_raw_fd();
        let mut parts: Vec<Box<MsgParts>> =
            msgs.iter().map(|_| Box::new(MsgParts::new())).collect();
        let mut hdrs = Vec::with_capacity(msgs.len());
        for ((payload, dst), p) in msgs.iter().zip(parts.iter_mut()) {
            hdrs.push(libc::mmsghdr {
                msg_hdr: self.fill(p, payload, *dst)?,
                msg_len: 0,
            });
        }
        let mut sent = 0;
        while sent < hdrs.len() {
            // SAFETY: every header points at boxed parts and payloads alive until return.
            let r = unsafe {
                libc::sendmmsg(
                    s,
                    hdrs[sent..].as_mut_ptr(),
                    (hdrs.len() - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                return Err(NetError::Send {
                    ifname: self.ifname.clone(),
                    dst: msgs[sent].1,
                    source: io::Error::last_os_error(),
                });
            }
            sent += r as usize;
        }
        Ok(sent)
    }

    /// The msghdr for `payload` to `dst` from our source address on our interface
    /// (IP_PKTINFO / IPV6_PKTINFO), its buffers in `parts`.
    fn fill(
        &self,
        parts: &mut MsgParts,
        payload: &[u8],
        dst: IpAddr,
    ) -> Result<libc::msghdr, NetError> {
        let p = parts;
        p.iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        // SAFETY: msghdr is plain data; every pointer is set below.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = &mut p.iov;
        msg.msg_iovlen = 1;
        msg.msg_control = p.cmsg.as_mut_ptr().cast();
        let sa4 = &mut p.sa4;
        let sa6 = &mut p.sa6;
        // SAFETY: the control buffer is large enough for one in_pktinfo or
        // in6_pktinfo (CMSG_SPACE of either is < 64 bytes); the libc CMSG
        // macros compute every offset.
        unsafe {
            match (dst, self.src) {
                (IpAddr::V4(d), IpAddr::V4(src)) => {
                    sa4.sin_addr.s_addr = u32::from(d).to_be();
                    msg.msg_name = (sa4 as *mut libc::sockaddr_in).cast();
                    msg.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
                    msg.msg_controllen =
                        libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
                    let c = libc::CMSG_FIRSTHDR(&msg);
                    (*c).cmsg_level = libc::IPPROTO_IP;
                    (*c).cmsg_type = libc::IP_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                    let info = libc::in_pktinfo {
                        ipi_ifindex: self.ifindex as i32,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from(src).to_be(),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
                }
                (IpAddr::V6(d), IpAddr::V6(src)) => {
                    let scope = if (d.segments()[0] & 0xff00) == 0xff00
                        || (d.segments()[0] & 0xffc0) == 0xfe80
                    {
                        self.ifindex
                    } else {
                        0
                    };
                    sa6.sin6_addr.s6_addr = d.octets();
                    sa6.sin6_scope_id = scope;
                    msg.msg_name = (sa6 as *mut libc::sockaddr_in6).cast();
                    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
                    msg.msg_controllen =
                        libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                    let c = libc::CMSG_FIRSTHDR(&msg);
                    (*c).cmsg_level = libc::IPPROTO_IPV6;
                    (*c).cmsg_type = libc::IPV6_PKTINFO;
                    (*c).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                    let info = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: src.octets(),
                        },
                        ipi6_ifindex: self.ifindex,
                    };
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
                }
                _ => {
                    return Err(NetError::Send {
                        ifname: self.ifname.clone(),
                        dst,
                        source: io::Error::from(io::ErrorKind::InvalidInput),
                    })
                }
            }
        }
        Ok(msg)
    }

    /// Reads every advert already queued, without waiting (socket receive
    /// path only): before a takeover the daemon looks at what arrived while
    /// it was not running.
    pub fn drain(&self) -> Vec<Received> {
        let mut out = Vec::new();
        let fd = self.fd.get_ref().as_raw_fd();
        while let Ok(r) = recv_one(fd, self.src.is_ipv4(), libc::MSG_DONTWAIT) {
            if let Some(r) = r {
                out.push(r);
            }
            if out.len() >= 4096 {
                break;
            }
        }
        out
    }

    /// Waits for the next advert (socket receive path only).
    pub async fn recv(&self) -> Result<Received, NetError> {
        loop {
            let mut guard = self.fd.readable().await.map_err(|source| NetError::Recv {
                ifname: self.ifname.clone(),
                source,
            })?;
            match guard.try_io(|fd| recv_one(fd.get_ref().as_raw_fd(), self.src.is_ipv4(), 0)) {
                Ok(Ok(Some(r))) => return Ok(r),
                Ok(Ok(None)) => continue,
                Ok(Err(source)) => {
                    return Err(NetError::Recv {
                        ifname: self.ifname.clone(),
                        source,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }
}

fn sockaddr_v4(a: SocketAddrV4) -> libc::sockaddr_in {
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    sa
}

fn sockaddr_v6(a: SocketAddrV6) -> libc::sockaddr_in6 {
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as u16;
    sa.sin6_addr.s6_addr = a.ip().octets();
    sa.sin6_scope_id = a.scope_id();
    sa
}

/// A control-message buffer aligned for `cmsghdr`. CMSG_FIRSTHDR returns the buffer's
/// start and the parser reads `cmsg_level` / `cmsg_type` through a `&cmsghdr`, which
/// is undefined behaviour unless the buffer has `cmsghdr`'s alignment (cmsg(3): the
/// buffer "should be aligned" via a union with `struct cmsghdr`, as the man page's
/// example does). A plain `[u8; N]` has alignment 1.
#[repr(C)]
struct CmsgBuf {
    _align: [libc::cmsghdr; 0],
    bytes: [u8; 128],
}

const _: () = assert!(std::mem::align_of::<CmsgBuf>() >= std::mem::align_of::<libc::cmsghdr>());

impl CmsgBuf {
    fn new() -> Self {
        Self {
            _align: [],
            bytes: [0; 128],
        }
    }
}

/// What `recv_one` takes from the ancillary data.
#[derive(Debug, Default, PartialEq, Eq)]
struct Ancillary {
    /// SCM_TIMESTAMPNS, converted to CLOCK_MONOTONIC.
    rx_ns: Option<u64>,
    /// IPV6_HOPLIMIT.
    hop_limit: Option<u8>,
    /// IPV6_PKTINFO's destination.
    dst6: Option<Ipv6Addr>,
}

/// Walks the control messages of a `recvmsg` result. `msg.msg_control` must point to a
/// [`CmsgBuf`] (checked: a misaligned buffer would make the `&cmsghdr` below UB).
fn parse_cmsgs(msg: &libc::msghdr) -> Ancillary {
    assert!(
        (msg.msg_control as usize).is_multiple_of(std::mem::align_of::<libc::cmsghdr>()),
        "control buffer not aligned for cmsghdr"
    );
    let mut out = Ancillary::default();
    // SAFETY: walking the control buffer the kernel filled, aligned for cmsghdr (checked
    // above), with the libc CMSG macros that bound every step by msg_controllen; the
    // payloads are read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                out.rx_ns = Some(realtime_to_monotonic(ts));
            } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_HOPLIMIT {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
                out.hop_limit = Some(v.clamp(0, 255) as u8);
            } else if h.cmsg_level == libc::IPPROTO_IPV6 && h.cmsg_type == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>());
                out.dst6 = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

/// Reads one datagram; `Ok(None)` for one that is too short to be an advert.
fn recv_one(s: i32, v4: bool, flags: i32) -> io::Result<Option<Received>> {
    let mut buf = [0u8; 2048];
    let mut name: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut cmsg = CmsgBuf::new();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.bytes.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.bytes.len();
    // SAFETY: every pointer in msg refers to a live local buffer.
    let n = unsafe { libc::recvmsg(s, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let anc = parse_cmsgs(&msg);
    let rx_ns = anc.rx_ns.unwrap_or_else(monotonic_ns);
    let ttl = anc.hop_limit.unwrap_or(0);
    let dst6 = anc.dst6.unwrap_or(Ipv6Addr::UNSPECIFIED);
    let data = &buf[..n as usize];
    if v4 {
        // Raw IPv4 sockets deliver the IP header (raw(7)).
        if data.len() < 20 {
            return Ok(None);
        }
        let ihl = usize::from(data[0] & 0x0f) * 4;
        if ihl < 20 || data.len() < ihl {
            return Ok(None);
        }
        let src = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
        let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
        return Ok(Some(Received {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            ttl: data[8],
            payload: data[ihl..].to_vec(),
            rx_ns,
        }));
    }
    // IPv6: no header; source from msg_name, hop limit and destination from
    // ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO).
    let src = Ipv6Addr::from(name.sin6_addr.s6_addr);
    let dst = dst6;
    Ok(Some(Received {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl,
        payload: data.to_vec(),
        rx_ns,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer placed right after one byte, as a `[u8; 128]` would be inside a
    /// frame or struct: only `CmsgBuf`'s own alignment keeps it aligned for `cmsghdr`.
    #[repr(C, align(16))]
    struct AfterOneByte {
        pad: u8,
        cmsg: CmsgBuf,
    }

    #[test]
    fn cmsg_buffer_aligned_and_parsed() {
        let mut frame = AfterOneByte {
            pad: 0,
            cmsg: CmsgBuf::new(),
        };
        assert_eq!(frame.pad, 0);
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_control = frame.cmsg.bytes.as_mut_ptr().cast();
        msg.msg_controllen = frame.cmsg.bytes.len();
        // SAFETY: one IPV6_HOPLIMIT message written into the buffer with the CMSG macros,
        // as the kernel would; the buffer is aligned (asserted by parse_cmsgs).
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            assert!(!c.is_null());
            (*c).cmsg_level = libc::IPPROTO_IPV6;
            (*c).cmsg_type = libc::IPV6_HOPLIMIT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<i32>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), 255);
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<i32>() as u32) as usize;
        }
        let anc = parse_cmsgs(&msg);
        assert_eq!(anc.hop_limit, Some(255));
        assert_eq!(anc.rx_ns, None);
        assert_eq!(anc.dst6, None);
    }
}
