//! haxdp: a VRRP daemon with an XDP fast path, reading keepalived.conf.
//!
//! A module per concern (see `../shared/ARCHITECTURE.md`).

pub mod fastpath;
pub mod garp;
pub mod maps_cmd;
pub mod netio;
pub mod vip;
pub mod control;
