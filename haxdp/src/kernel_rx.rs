//! The daemon's view of the XDP fast path: which VRIDs to watch, the kernel
//! timestamp of a peer's last advert, and the changed adverts the program
//! pushes to its ring buffer, turned into adverts for the state machine.

use std::collections::HashMap;
use std::net::IpAddr;

use haxdp_common::{
    AdvertEvent, InstanceConf, PeerKey, AUTH_NONE, AUTH_PASS, FAMILY_V4, FAMILY_V6,
    VERSION_MASK_V2, VERSION_MASK_V3,
};
use haxdp_vrrp::{Advert, Family, InstanceConfig, Version};

use crate::fastpath::Fastpath;
pub use crate::fastpath::{FastpathError as KernelRxError, XdpAttachMode};

/// A changed advert reported by the XDP program.
#[derive(Debug, Clone)]
pub struct KernelAdvert {
    pub ifindex: u32,
    pub family: Family,
    pub src: IpAddr,
    pub advert: Advert,
    /// `bpf_ktime_get_ns()` when the advert arrived (CLOCK_MONOTONIC).
    pub rx_ns: u64,
}

fn family_code(f: Family) -> u8 {
    match f {
        Family::V4 => FAMILY_V4,
        Family::V6 => FAMILY_V6,
    }
}

pub struct KernelRx {
    fast: Fastpath,
    /// VRRPv2 PASS data per watched instance: the XDP program has already
    /// checked it, and the state machine compares it again (RFC 3768 7.1).
    auth: HashMap<(u32, u8, u8), Option<[u8; 8]>>,
}

impl KernelRx {
    pub fn load() -> Result<Self, KernelRxError> {
        Ok(Self {
            fast: Fastpath::load()?,
            auth: HashMap::new(),
        })
    }

    pub fn attach(&mut self, ifname: &str) -> Result<XdpAttachMode, KernelRxError> {
        self.fast.attach(ifname)
    }

    /// Tells the XDP program to accept this instance's adverts. Peers it
    /// remembered for the VRID are forgotten, so that the first advert the
    /// new state machine needs arrives as a "new peer" event.
    pub fn watch(
        &mut self,
        ifindex: u32,
        cfg: &InstanceConfig,
        auth_type: u8,
    ) -> Result<(), KernelRxError> {
        let fam = family_code(cfg.family);
        self.fast.unwatch(ifindex, cfg.vrid, fam)?;
        let mask = match cfg.version {
            Version::V2 => VERSION_MASK_V2,
            Version::V3 => VERSION_MASK_V3,
        };
        let (auth, pass) = match (auth_type, cfg.auth_pass) {
            (AUTH_PASS, Some(p)) => (AUTH_PASS, p),
            _ => (AUTH_NONE, [0; 8]),
        };
        self.fast
            .watch(ifindex, cfg.vrid, fam, InstanceConf::new(mask, auth, &pass))?;
        self.auth.insert(
            (ifindex, cfg.vrid, fam),
            cfg.auth_pass.filter(|_| auth == AUTH_PASS),
        );
        Ok(())
    }

    pub fn unwatch(&mut self, ifindex: u32, cfg: &InstanceConfig) -> Result<(), KernelRxError> {
        let fam = family_code(cfg.family);
        self.auth.remove(&(ifindex, cfg.vrid, fam));
        self.fast.unwatch(ifindex, cfg.vrid, fam)
    }

    /// Kernel timestamp of the last valid advert from `addr` for the VRID.
    pub fn peer_last_ns(
        &self,
        ifindex: u32,
        _family: Family,
        vrid: u8,
        addr: IpAddr,
    ) -> Result<Option<u64>, KernelRxError> {
        Ok(self
            .fast
            .peer(&PeerKey::new(ifindex, vrid, addr))?
            .map(|p| p.last_ns))
    }

    /// Forgets peers silent for longer than `older_than_ns`, so that the
    /// bounded PEERS map has room for real peers after a spoofing flood.
    pub fn prune(&mut self, older_than_ns: u64) -> Result<usize, KernelRxError> {
        self.fast.prune_peers(older_than_ns)
    }

    /// Converts one ring-buffer record for the state machine.
    pub fn to_advert(&self, ev: &AdvertEvent) -> KernelAdvert {
        let family = if ev.family == FAMILY_V6 {
            Family::V6
        } else {
            Family::V4
        };
        let version = if ev.version == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let auth = match version {
            Version::V2 => self
                .auth
                .get(&(ev.ifindex, ev.vrid, ev.family))
                .copied()
                .flatten(),
            Version::V3 => None,
        };
        KernelAdvert {
            ifindex: ev.ifindex,
            family,
            src: ev.src_ip(),
            advert: Advert {
                version,
                vrid: ev.vrid,
                priority: ev.priority,
                max_adver_int_cs: ev.interval_cs,
                addrs: ev.addresses(),
                auth,
            },
            rx_ns: ev.ktime_ns,
        }
    }

    /// Starts a task that forwards every ring-buffer record to `f` (which
    /// returns false to stop).
    pub fn spawn_events<F>(&mut self, mut f: F) -> Result<(), KernelRxError>
    where
        F: FnMut(AdvertEvent) -> bool + Send + 'static,
    {
        let mut events = self.fast.take_events()?;
        tokio::spawn(async move {
            loop {
                match events.next_batch().await {
                    Ok(batch) => {
                        for ev in batch {
                            if !f(ev) {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!("XDP event ring: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(())
    }
}
