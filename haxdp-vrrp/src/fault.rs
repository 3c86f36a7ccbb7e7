//! Why an instance is held in keepalived's Fault state, besides its interface being down
//! ([`crate::Input::Fault`]).
//!
//! A cause leaves the process as text: in `haxdp status`, in the transition reason
//! (`FaultOn { reason: "chk failed" }`), in logs, and in the hand-over snapshot that a
//! successor process reads. That text is [`FaultCause`]'s `Display`, and it is what serde
//! writes and reads, so a snapshot carries the same strings whichever version wrote it;
//! [`FromStr`] gives back the cause for every string `Display` writes, and keeps any other
//! (one a caller made up, or a later version's) as [`FaultCause::Other`], unchanged.

use std::cmp::Ordering;
use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One fault condition of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum FaultCause {
    /// A tracked item that puts the instance in Fault (a weight-0 `vrrp_script`,
    /// `track_interface` or nginx check, a `track_file` at -254) failed: `chk failed`.
    Check(String),
    /// The advert source address was removed from the interface:
    /// `source address 192.0.2.10 removed`.
    SourceAddressRemoved(IpAddr),
    /// keepalived's `vrrp_sync_group`: another member is in Fault of its own making
    /// (see [`crate::node::own_fault`]): `sync group G: member VI_2 in fault`.
    SyncGroup { group: String, member: String },
    /// Any other text, kept as it is.
    Other(String),
}

impl fmt::Display for FaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultCause::Check(name) => write!(f, "{name} failed"),
            FaultCause::SourceAddressRemoved(addr) => write!(f, "source address {addr} removed"),
            FaultCause::SyncGroup { group, member } => {
                write!(f, "sync group {group}: member {member} in fault")
            }
            FaultCause::Other(text) => f.write_str(text),
        }
    }
}

impl FromStr for FaultCause {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        if let Some(addr) = s
            .strip_prefix("source address ")
            .and_then(|r| r.strip_suffix(" removed"))
            .and_then(|a| a.parse::<IpAddr>().ok().filter(|ip| ip.to_string() == a))
        {
            return Ok(FaultCause::SourceAddressRemoved(addr));
        }
        if let Some((group, member)) = s
            .strip_prefix("sync group ")
            .and_then(|r| r.strip_suffix(" in fault"))
            .and_then(|r| r.split_once(": member "))
        {
            return Ok(FaultCause::SyncGroup {
                group: group.to_owned(),
                member: member.to_owned(),
            });
        }
        if let Some(name) = s.strip_suffix(" failed") {
            return Ok(FaultCause::Check(name.to_owned()));
        }
        Ok(FaultCause::Other(s.to_owned()))
    }
}

impl From<&str> for FaultCause {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(c) => c,
            Err(e) => match e {},
        }
    }
}

impl From<String> for FaultCause {
    fn from(s: String) -> Self {
        FaultCause::from(s.as_str())
    }
}

impl From<FaultCause> for String {
    fn from(c: FaultCause) -> String {
        c.to_string()
    }
}

/// No cause: the empty text (a Fault entered at startup with none on record).
impl Default for FaultCause {
    fn default() -> Self {
        FaultCause::Other(String::new())
    }
}

/// Ordered by text, as the strings that named causes before were, so that a set of causes
/// lists (and hands over) in the same order.
impl Ord for FaultCause {
    fn cmp(&self, other: &Self) -> Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for FaultCause {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings earlier versions wrote, in status, logs and hand-over snapshots.
    const OLD: [&str; 8] = [
        "chk_nginx failed",
        "eth1 failed",
        "source address 192.0.2.10 removed",
        "source address 2001:db8::10 removed",
        "sync group G1: member VI_2 in fault",
        "script:chk_nginx",
        "sim",
        "",
    ];

    #[test]
    fn old_strings_round_trip_through_the_cause_and_serde() {
        for s in OLD {
            let c = FaultCause::from(s);
            assert_eq!(c.to_string(), s);
            let json = serde_json::to_string(&c).expect("serializes");
            assert_eq!(json, serde_json::to_string(s).expect("a string"));
            let back: FaultCause = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, c);
        }
        assert_eq!(
            FaultCause::from("chk failed"),
            FaultCause::Check("chk".into())
        );
        assert_eq!(
            FaultCause::from("source address 192.0.2.10 removed"),
            FaultCause::SourceAddressRemoved("192.0.2.10".parse().expect("literal"))
        );
        assert_eq!(
            FaultCause::from("sync group G1: member VI_2 in fault"),
            FaultCause::SyncGroup {
                group: "G1".into(),
                member: "VI_2".into()
            }
        );
        // An address written otherwise than IpAddr writes it stays the text it was.
        assert_eq!(
            FaultCause::from("source address 2001:DB8::10 removed"),
            FaultCause::Other("source address 2001:DB8::10 removed".into())
        );
    }

    #[test]
    fn causes_order_as_their_texts() {
        let mut causes: Vec<FaultCause> = OLD.iter().map(|s| FaultCause::from(*s)).collect();
        causes.sort();
        let mut texts = OLD.to_vec();
        texts.sort();
        let sorted: Vec<String> = causes.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, texts);
    }
}
