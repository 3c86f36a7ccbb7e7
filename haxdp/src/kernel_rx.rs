//! The daemon's view of the XDP fast path: which VRIDs to watch, the kernel
//! timestamp of a peer's last advert, and the changed adverts the program
//! pushes to its ring buffer, decoded for the state machine.

use std::net::IpAddr;

use haxdp_vrrp::{Advert, Family, InstanceConfig};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAttachMode {
    Native,
    Skb,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelRxError {
    #[error("the XDP fast path is not available in this build")]
    Unavailable,
}

pub struct KernelRx {}

impl KernelRx {
    pub fn load() -> Result<Self, KernelRxError> {
        Err(KernelRxError::Unavailable)
    }
    pub fn attach(&mut self, _ifname: &str) -> Result<XdpAttachMode, KernelRxError> {
        Err(KernelRxError::Unavailable)
    }
    pub fn watch(
        &mut self,
        _ifindex: u32,
        _cfg: &InstanceConfig,
        _auth_type: u8,
    ) -> Result<(), KernelRxError> {
        Err(KernelRxError::Unavailable)
    }
    pub fn unwatch(&mut self, _ifindex: u32, _cfg: &InstanceConfig) -> Result<(), KernelRxError> {
        Err(KernelRxError::Unavailable)
    }
    pub fn peer_last_ns(
        &self,
        _ifindex: u32,
        _family: Family,
        _vrid: u8,
        _addr: IpAddr,
    ) -> Result<Option<u64>, KernelRxError> {
        Err(KernelRxError::Unavailable)
    }
    pub fn spawn_events<F>(&mut self, _f: F) -> Result<(), KernelRxError>
    where
        F: FnMut(KernelAdvert) -> bool + Send + 'static,
    {
        Err(KernelRxError::Unavailable)
    }
}
