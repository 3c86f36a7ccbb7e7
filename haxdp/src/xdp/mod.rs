//! The XDP receive path: `loader` loads, pins, attaches and hands over the
//! program and its maps ([`loader::XdpLoader`]); `rx` is the daemon's view of it
//! ([`rx::KernelRx`]: PEERS lookups, ring-buffer events turned into adverts,
//! watch and unwatch).

pub mod loader;
pub mod rx;
pub mod seen;
