//! Sans-IO VRRP core: the advert codec ([`packet`], [`checksum`]), the per-instance state
//! machine of RFC 9568 section 6 ([`fsm`], its fault causes in [`fault`]) and a deterministic network simulator ([`sim`])
//! that checks the election's invariants. No sockets, no clocks, no async runtime: time
//! is an input, effects are returned as actions.

pub mod checksum;
pub mod fault;
pub mod fsm;
pub mod node;
pub mod packet;
pub mod sim;

pub use fault::FaultCause;
pub use fsm::{
    Action, ConfigError, DiscardReason, Event, Input, Instance, InstanceConfig, KnownPeer, State,
    Transition,
};
pub use packet::{decode, encode, pass_auth, Advert, DecodeError, EncodeError, Family, Version};
