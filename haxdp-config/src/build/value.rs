//! The readers of one keyword's value: numbers, seconds, weights, addresses, flags, names,
//! users and commands, each reporting what is wrong at the keyword's line.

use std::net::IpAddr;

use super::Builder;
use crate::model::*;
use crate::syntax::Node;

pub(super) fn parse_int(s: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let v: i64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if v < lo || v > hi {
        return Err(format!("{v} is out of range: must be {lo} to {hi}"));
    }
    Ok(v)
}

/// Seconds written as a decimal (`1`, `0.2`, `40.95`) to microseconds, without going through
/// floating point so that `0.01` is exactly one centisecond.
pub(super) fn parse_seconds_us(s: &str) -> Result<u64, String> {
    let bad = || format!("'{s}' is not a number of seconds (like 1, 0.5 or 0.01)");
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(format!("'{s}' has more than 6 decimals"));
    }
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut micros: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        micros += u64::from(b - b'0') * 10u64.pow(5 - u32::try_from(i).unwrap_or(5));
    }
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(micros))
        .ok_or_else(|| format!("'{s}' is too large"))
}

pub(super) fn fmt_secs_us(us: u64) -> String {
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else {
        let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

pub(super) fn parse_weight(args: &[String], lo: i64, hi: i64) -> Result<Weight, String> {
    let Some(v) = args.first() else {
        return Err("'weight' needs a value".into());
    };
    let value = parse_int(v, lo, hi)?;
    let reverse = match args.get(1).map(String::as_str) {
        None => false,
        Some("reverse") => true,
        Some(other) => return Err(format!("unexpected '{other}' after weight {v}")),
    };
    if args.len() > 2 {
        return Err(format!("unexpected '{}' after weight", args[2]));
    }
    Ok(Weight {
        value: i32::try_from(value).unwrap_or(0),
        reverse,
    })
}

impl Builder<'_> {
    pub(super) fn err(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.error_at(&n.loc, &n.kw, msg);
    }
    pub(super) fn warn(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.warn_at(&n.loc, &n.kw, msg);
    }
    pub(super) fn info(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.info_at(&n.loc, &n.kw, msg);
    }

    pub(super) fn no_block(&mut self, n: &Node) {
        if n.block.is_some() {
            self.err(n, format!("'{}' does not take a {{ }} block", n.kw));
        }
    }

    /// The single value of `keyword VALUE`.
    pub(super) fn value<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        self.no_block(n);
        let Some(v) = n.args.first() else {
            self.err(n, format!("'{}' needs a value", n.kw));
            return None;
        };
        if n.args.len() > 1 {
            self.warn(
                n,
                format!(
                    "extra values after '{} {}' ignored: {}",
                    n.kw,
                    v,
                    n.args[1..].join(" ")
                ),
            );
        }
        Some(v)
    }

    pub(super) fn int(&mut self, n: &Node, lo: i64, hi: i64) -> Option<i64> {
        let v = self.value(n)?;
        match parse_int(v, lo, hi) {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(n, format!("{}: {e}", n.kw));
                None
            }
        }
    }

    pub(super) fn u32_in(&mut self, n: &Node, lo: u32, hi: u32) -> Option<u32> {
        self.int(n, i64::from(lo), i64::from(hi))
            .and_then(|v| u32::try_from(v).ok())
    }

    pub(super) fn seconds_us(&mut self, n: &Node, lo_us: u64, hi_us: u64) -> Option<u64> {
        let v = self.value(n)?;
        match parse_seconds_us(v) {
            Ok(us) if us >= lo_us && us <= hi_us => Some(us),
            Ok(_) => {
                self.err(
                    n,
                    format!(
                        "{}: {v} is out of range: must be {} to {}",
                        n.kw,
                        fmt_secs_us(lo_us),
                        fmt_secs_us(hi_us)
                    ),
                );
                None
            }
            Err(e) => {
                self.err(n, format!("{}: {e}", n.kw));
                None
            }
        }
    }

    pub(super) fn flag(&mut self, n: &Node) -> bool {
        self.no_block(n);
        if !n.args.is_empty() {
            self.warn(
                n,
                format!("'{}' takes no value; '{}' ignored", n.kw, n.args.join(" ")),
            );
        }
        true
    }

    pub(super) fn addr(&mut self, n: &Node, s: &str) -> Option<IpAddr> {
        match s.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(n, format!("'{s}' is not an IPv4 or IPv6 address"));
                None
            }
        }
    }

    pub(super) fn children<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        match &n.block {
            Some(c) => c,
            None => {
                self.err(n, format!("'{}' needs a {{ }} block", n.kw));
                &[]
            }
        }
    }

    /// The NAME of `keyword NAME { ... }`.
    pub(super) fn block_name(&mut self, n: &Node) -> Option<String> {
        match n.args.first() {
            Some(name) => {
                if n.args.len() > 1 {
                    self.warn(n, format!("extra words after '{} {name}' ignored", n.kw));
                }
                Some(name.clone())
            }
            None => {
                self.err(n, format!("'{}' needs a name", n.kw));
                None
            }
        }
    }

    pub(super) fn weight(&mut self, n: &Node, args: &[String], lo: i64, hi: i64) -> Option<Weight> {
        match parse_weight(args, lo, hi) {
            Ok(w) => Some(w),
            Err(e) => {
                self.err(n, format!("weight: {e}"));
                None
            }
        }
    }

    pub(super) fn run_as(&mut self, n: &Node) -> Option<RunAs> {
        self.no_block(n);
        match n.args.as_slice() {
            [u] => Some(RunAs {
                user: u.clone(),
                group: None,
            }),
            [u, g] => Some(RunAs {
                user: u.clone(),
                group: Some(g.clone()),
            }),
            _ => {
                self.err(n, format!("'{}' takes a user and an optional group", n.kw));
                None
            }
        }
    }

    /// A `vrrp_script` command: haxdp runs every word of the line.
    pub(super) fn command(&mut self, n: &Node) -> Option<String> {
        self.no_block(n);
        if n.args.is_empty() {
            self.err(n, format!("'{}' needs a command", n.kw));
            return None;
        }
        let line = n.args.join(" ");
        if n.args.len() > 1 {
            // keepalived 2.x (vrrp_vscript_script_handler) keeps only the first word, so an
            // unquoted `script killall -0 nginx` runs a bare `killall`, which always fails.
            self.warn(
                n,
                format!(
                    "keepalived runs only '{}' from this unquoted line (it drops the words after the first); haxdp runs all of it: quote it so that both run the same: {} \"{line}\"",
                    n.args[0], n.kw
                ),
            );
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(parse_seconds_us("1"), Ok(1_000_000));
        assert_eq!(parse_seconds_us("0.01"), Ok(10_000));
        assert_eq!(parse_seconds_us("40.95"), Ok(40_950_000));
        assert_eq!(parse_seconds_us(".5"), Ok(500_000));
        assert!(parse_seconds_us("1.0000001").is_err());
        assert!(parse_seconds_us("-1").is_err());
        assert!(parse_seconds_us("1e3").is_err());
        assert!(parse_seconds_us(".").is_err());
        assert!(parse_seconds_us("99999999999999999999").is_err());
    }

    #[test]
    pub(super) fn weights() {
        let w = parse_weight(&["-20".into(), "reverse".into()], -253, 253);
        assert_eq!(
            w,
            Ok(Weight {
                value: -20,
                reverse: true
            })
        );
        assert!(parse_weight(&["300".into()], -253, 253).is_err());
        assert!(parse_weight(&["2".into(), "sideways".into()], -253, 253).is_err());
    }
}
