//! Virtual IP addresses through rtnetlink: add, remove, reconcile, and the
//! link/address monitor that tells the daemon when an interface goes down or
//! someone deletes a VIP by hand while we are master.

use std::net::{IpAddr, Ipv4Addr};

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, MulticastGroup};

/// One virtual address as keepalived's `virtual_ipaddress` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Interface index the address lives on (`dev`, else the instance's interface).
    pub ifindex: u32,
    pub ifname: String,
    pub label: Option<String>,
    /// `scope` as the kernel's numeric value (0 global, 200 site, 253 link, 254 host).
    pub scope: u8,
    pub broadcast: Option<Ipv4Addr>,
    /// IPv6 only: skip duplicate address detection (`-nodad`), so the
    /// address is usable at once after a takeover.
    pub nodad: bool,
}

impl std::fmt::Display for Vip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} dev {}", self.addr, self.prefix_len, self.ifname)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("cannot open a netlink socket: {0} (haxdp needs CAP_NET_ADMIN)")]
    Socket(#[source] std::io::Error),
    #[error("cannot add VIP {vip}: {source} (check that the interface exists and that haxdp has CAP_NET_ADMIN)")]
    Add {
        vip: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("cannot remove VIP {vip}: {source}")]
    Remove {
        vip: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("cannot list addresses of {ifname}: {source}")]
    List {
        ifname: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("interface {0} does not exist (check `interface` / `dev` in the configuration)")]
    NoSuchInterface(String),
    #[error("cannot query interface {ifname}: {source}")]
    Link {
        ifname: String,
        #[source]
        source: rtnetlink::Error,
    },
}

/// What the kernel tells us about an interface.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    /// IFF_UP and IFF_RUNNING (carrier): keepalived's notion of "interface up".
    pub up: bool,
    /// IFLA_XDP_PROG_ID: the XDP program attached to the interface, if any.
    pub xdp_prog_id: Option<u32>,
}

fn link_info(msg: &LinkMessage) -> LinkInfo {
    let mut name = String::new();
    let mut mac = None;
    let mut xdp_prog_id = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Xdp(x) => {
                xdp_prog_id = x.iter().find_map(|a| match a {
                    rtnetlink::packet_route::link::LinkXdp::ProgId(id) if *id != 0 => Some(*id),
                    _ => None,
                });
            }
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(a);
                mac = Some(m);
            }
            _ => {}
        }
    }
    let flags = msg.header.flags;
    LinkInfo {
        ifindex: msg.header.index,
        name,
        mac,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
        xdp_prog_id,
    }
}

/// Handle on the kernel's routing netlink, for addresses and links.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the netlink connection; its driver runs as a tokio task.
    pub fn open() -> Result<Self, VipError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(VipError::Socket)?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    pub async fn link_by_name(&self, ifname: &str) -> Result<LinkInfo, VipError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(ifname.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(link_info(&msg)),
            Ok(None) => Err(VipError::NoSuchInterface(ifname.to_string())),
            // ENODEV comes back as an error message, not an empty dump.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {
                Err(VipError::NoSuchInterface(ifname.to_string()))
            }
            Err(source) => Err(VipError::Link {
                ifname: ifname.to_string(),
                source,
            }),
        }
    }

    /// Addresses currently on an interface, with their prefix lengths.
    pub async fn addresses(
        &self,
        ifindex: u32,
        ifname: &str,
    ) -> Result<Vec<(IpAddr, u8, AddressScope)>, VipError> {
        let mut out = Vec::new();
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => {
                    if let Some(a) = address_of(&msg) {
                        out.push((a, msg.header.prefix_len, msg.header.scope));
                    }
                }
                Ok(None) => break,
                Err(source) => {
                    return Err(VipError::List {
                        ifname: ifname.to_string(),
                        source,
                    })
                }
            }
        }
        Ok(out)
    }

    /// The interface's primary address of a family: keepalived sends adverts
    /// from the first IPv4 address of the interface, and from the link-local
    /// address for IPv6 (RFC 9568 5.1.2.1), skipping our own VIPs.
    pub async fn primary_address(
        &self,
        ifindex: u32,
        ifname: &str,
        v6: bool,
        exclude: &[IpAddr],
    ) -> Result<Option<IpAddr>, VipError> {
        let addrs = self.addresses(ifindex, ifname).await?;
        Ok(addrs
            .into_iter()
            .map(|(a, _, _)| a)
            .filter(|a| !exclude.contains(a))
            .find(|a| match a {
                IpAddr::V4(_) => !v6,
                IpAddr::V6(a6) => v6 && (a6.segments()[0] & 0xffc0) == 0xfe80,
            }))
    }

    pub async fn has_address(&self, vip: &Vip) -> Result<bool, VipError> {
        Ok(self
            .addresses(vip.ifindex, &vip.ifname)
            .await?
            .iter()
            .any(|(a, p, _)| *a == vip.addr && *p == vip.prefix_len))
    }

    /// Adds a VIP; an address that is already there counts as success, so
    /// that a restart after a crash and a repeated takeover are idempotent.
    pub async fn add_vip(&self, vip: &Vip) -> Result<(), VipError> {
        let mut req = self
            .handle
            .address()
            .add(vip.ifindex, vip.addr, vip.prefix_len);
        let msg = req.message_mut();
        // The builder invents a broadcast address; keepalived sets one only
        // when `brd` is configured.
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        if let Some(b) = vip.broadcast {
            msg.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(label) = &vip.label {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
        msg.header.scope = AddressScope::from(vip.scope);
        if vip.nodad && vip.addr.is_ipv6() {
            msg.header.flags |= AddressHeaderFlags::Nodad;
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(source) => Err(VipError::Add {
                vip: vip.to_string(),
                source,
            }),
        }
    }

    /// Removes a VIP; an address that is already gone counts as success.
    pub async fn remove_vip(&self, vip: &Vip) -> Result<(), VipError> {
        let mut msg = AddressMessage::default();
        msg.header.family = match vip.addr {
            IpAddr::V4(_) => rtnetlink::packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => rtnetlink::packet_route::AddressFamily::Inet6,
        };
        msg.header.prefix_len = vip.prefix_len;
        msg.header.index = vip.ifindex;
        msg.attributes.push(AddressAttribute::Local(vip.addr));
        msg.attributes.push(AddressAttribute::Address(vip.addr));
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.raw_code() == -libc::EADDRNOTAVAIL || e.raw_code() == -libc::ENODEV =>
            {
                Ok(())
            }
            Err(source) => Err(VipError::Remove {
                vip: vip.to_string(),
                source,
            }),
        }
    }
}

fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address on point-to-point links;
    // IFA_ADDRESS otherwise (rtnetlink(7)).
    let mut addr = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => addr = Some(*a),
            _ => {}
        }
    }
    addr
}

/// A change the kernel announced on the link/address multicast groups.
#[derive(Debug, Clone)]
pub enum NetEvent {
    Link(LinkInfo),
    LinkGone { ifindex: u32 },
    AddressRemoved { ifindex: u32, addr: IpAddr },
    AddressAdded { ifindex: u32, addr: IpAddr },
}

/// Subscribes to link and address changes (like `ip monitor link address`)
/// and forwards them on a channel.
pub fn monitor() -> Result<tokio::sync::mpsc::UnboundedReceiver<NetEvent>, VipError> {
    let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(VipError::Socket)?;
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((msg, _)) = messages.next().await {
            let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                continue;
            };
            let ev = match inner {
                RouteNetlinkMessage::NewLink(l) => NetEvent::Link(link_info(&l)),
                RouteNetlinkMessage::DelLink(l) => NetEvent::LinkGone {
                    ifindex: l.header.index,
                },
                RouteNetlinkMessage::DelAddress(a) => match address_of(&a) {
                    Some(addr) => NetEvent::AddressRemoved {
                        ifindex: a.header.index,
                        addr,
                    },
                    None => continue,
                },
                RouteNetlinkMessage::NewAddress(a) => match address_of(&a) {
                    Some(addr) => NetEvent::AddressAdded {
                        ifindex: a.header.index,
                        addr,
                    },
                    None => continue,
                },
                _ => continue,
            };
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
