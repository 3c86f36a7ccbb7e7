//! haxdp: a VRRP daemon with an XDP fast path, reading keepalived.conf.
//!
//! A module per concern (see `../shared/ARCHITECTURE.md`).

pub mod advert_socket;
pub mod clock;
pub mod control;
pub mod daemon;
pub mod deadline;
pub mod garp;
pub mod handover;
pub mod logging;
pub mod maps_cmd;
pub mod metrics;
pub mod netlink;
pub mod notify;
pub mod ops;
pub mod sd;
pub mod spec;
pub mod track;
pub mod xdp;
