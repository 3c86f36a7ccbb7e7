//! A neutral observer on the LAN: tcpdump in the client's namespace, parsed
//! into timestamped VRRP adverts and gratuitous ARPs. Timings in the tests
//! come from these kernel capture timestamps, not from sleeps.

use std::path::Path;
use std::time::Duration;

use crate::{Netns, Proc};

#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Advert {
        t: f64,
        src: String,
        vrid: u8,
        prio: u8,
    },
    /// A gratuitous ARP for `addr` (sender = target).
    Garp { t: f64, addr: String, mac: String },
}

impl Seen {
    pub fn t(&self) -> f64 {
        match self {
            Seen::Advert { t, .. } | Seen::Garp { t, .. } => *t,
        }
    }
}

pub struct Capture {
    proc: Proc,
}

impl Capture {
    /// Starts tcpdump on `ifname` in `ns`, printing VRRP and ARP with
    /// epoch timestamps and link-level headers.
    pub fn start(ns: &Netns, ifname: &str, log: &Path) -> Self {
        let proc = ns.spawn(
            &[
                "tcpdump",
                "-l",
                "-n",
                "-e",
                "-tt",
                "-i",
                ifname,
                "-s",
                "128",
                "proto 112 or arp",
            ],
            log,
        );
        // tcpdump prints "listening on" once the capture is live.
        let ok = crate::wait_for(Duration::from_secs(5), || {
            proc.log_text().contains("listening on").then_some(())
        });
        assert!(ok.is_some(), "tcpdump did not start: {}", proc.log_text());
        Self { proc }
    }

    pub fn events(&self) -> Vec<Seen> {
        parse(&self.proc.log_text())
    }
}

/// Parses `tcpdump -n -e -tt` lines.
pub fn parse(text: &str) -> Vec<Seen> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(t) = words.next().and_then(|w| w.parse::<f64>().ok()) else {
            continue;
        };
        let src_mac = words.next().unwrap_or("").to_string();
        if line.contains("VRRP") {
            // "...length 54: 192.0.2.10 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 100, ..."
            let head = line.split(": VRRP").next().unwrap_or("");
            let src = head
                .rsplit(": ")
                .next()
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("")
                .to_string();
            let field = |name: &str| -> Option<u8> {
                line.split(name)
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok())
            };
            if let (Some(vrid), Some(prio)) = (field("vrid "), field("prio ")) {
                out.push(Seen::Advert { t, src, vrid, prio });
            }
        } else if line.contains("ARP") && line.contains("Request who-has") {
            // "Request who-has 192.0.2.100 tell 192.0.2.100": gratuitous.
            let after = line.split("who-has ").nth(1).unwrap_or("");
            let mut w = after.split_whitespace();
            let target = w.next().unwrap_or("").trim_end_matches(',');
            let sender = after
                .split("tell ")
                .nth(1)
                .and_then(|r| r.split(|c: char| c == ',' || c.is_whitespace()).next())
                .unwrap_or("");
            if !target.is_empty() && target == sender {
                out.push(Seen::Garp {
                    t,
                    addr: target.to_string(),
                    mac: src_mac,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vrrp_and_garp_lines() {
        let text = "1795000000.100000 02:00:00:00:01:0a > 01:00:5e:00:00:12, ethertype IPv4 (0x0800), length 54: 192.0.2.10 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 100, intvl 10cs, length 12\n\
1795000000.500000 02:00:00:00:01:0b > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 192.0.2.100 tell 192.0.2.100, length 46\n";
        let ev = parse(text);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(
            matches!(&ev[0], Seen::Advert { vrid: 51, prio: 100, src, .. } if src == "192.0.2.10"),
            "{ev:?}"
        );
        assert!(
            matches!(&ev[1], Seen::Garp { addr, mac, .. } if addr == "192.0.2.100" && mac == "02:00:00:00:01:0b")
        );
    }
}
