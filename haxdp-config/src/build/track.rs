//! What an instance or a sync group tracks: `vrrp_nginx_check` and `vrrp_track_file`
//! blocks, and the `track_script`, `track_file` and `track_interface` lists.

use std::collections::HashSet;
use std::path::PathBuf;

use super::value::{fmt_secs_us, parse_int, parse_seconds_us, parse_weight};
use super::{Builder, Known};
use crate::model::*;
use crate::syntax::Node;

/// The `track_script`, `track_file` and `track_interface` lists of an instance or a sync
/// group, as `Builder::tracking` reads them.
#[derive(Default)]
pub(super) struct Tracking {
    pub(super) scripts: Vec<TrackRef>,
    pub(super) files: Vec<TrackRef>,
    pub(super) interfaces: Vec<TrackInterface>,
}

impl Builder<'_> {
    fn track_refs(&mut self, n: &Node) -> Vec<TrackRef> {
        let mut out = Vec::new();
        for c in self.children(n) {
            if c.block.is_some() {
                self.err(c, format!("'{}' inside {} cannot have a block", c.kw, n.kw));
                continue;
            }
            let weight = match c.args.first().map(String::as_str) {
                None => None,
                Some("weight") => match self.weight(c, &c.args[1..], -253, 253) {
                    Some(w) => Some(w),
                    None => continue,
                },
                Some(other) => {
                    self.err(
                        c,
                        format!(
                            "unexpected '{other}' after '{}': expected 'weight N [reverse]'",
                            c.kw
                        ),
                    );
                    continue;
                }
            };
            out.push(TrackRef {
                name: c.kw.clone(),
                weight,
                location: c.loc.clone(),
            });
        }
        out
    }

    /// `track_script`, `track_file` or `track_interface` in an instance or a sync group,
    /// appended to `out`: `None` when `c` is none of the three, else `Some(false)` when a
    /// reference names nothing (see `resolved_refs`).
    pub(super) fn tracking(&mut self, c: &Node, k: &Known<'_>, out: &mut Tracking) -> Option<bool> {
        Some(match c.kw.as_str() {
            "track_script" => self.resolved_refs(
                c,
                &k.checks,
                "vrrp_script or vrrp_nginx_check",
                &mut out.scripts,
            ),
            "track_file" => {
                self.resolved_refs(c, &k.track_files, "vrrp_track_file", &mut out.files)
            }
            "track_interface" => {
                out.interfaces.extend(self.track_interfaces(c));
                true
            }
            _ => return None,
        })
    }

    /// The references of a `track_script` / `track_file` block, appended to `out`, each
    /// checked against the names `known` defines. Returns false (after an error at the
    /// reference's line) when one names nothing, as `keepalived -t` reports it.
    fn resolved_refs(
        &mut self,
        n: &Node,
        known: &HashSet<String>,
        defined_by: &str,
        out: &mut Vec<TrackRef>,
    ) -> bool {
        let mut ok = true;
        for r in self.track_refs(n) {
            if !known.contains(&r.name) {
                self.d.error_at(
                    &r.location,
                    &n.kw,
                    format!("{} '{}' names no {defined_by}", n.kw, r.name),
                );
                ok = false;
            }
            out.push(r);
        }
        ok
    }

    fn track_interfaces(&mut self, n: &Node) -> Vec<TrackInterface> {
        let mut out = Vec::new();
        for c in self.children(n) {
            if c.block.is_some() {
                self.err(c, format!("'{}' inside {} cannot have a block", c.kw, n.kw));
                continue;
            }
            let weight = match c.args.first().map(String::as_str) {
                None => Weight {
                    value: 0,
                    reverse: false,
                },
                Some("weight") => match self.weight(c, &c.args[1..], -254, 254) {
                    Some(w) => w,
                    None => continue,
                },
                Some(other) => {
                    self.err(
                        c,
                        format!(
                            "unexpected '{other}' after '{}': expected 'weight N [reverse]'",
                            c.kw
                        ),
                    );
                    continue;
                }
            };
            if c.kw.len() > 15 {
                self.err(
                    c,
                    format!("interface name '{}' is longer than 15 characters", c.kw),
                );
                continue;
            }
            out.push(TrackInterface {
                name: c.kw.clone(),
                weight,
                location: c.loc.clone(),
            });
        }
        out
    }

    /// `vrrp_nginx_check NAME { url U expect N interval S timeout S rise N fall N
    /// weight N [reverse] pidfile P }`: pairs, on one line or many.
    pub(super) fn nginx_check(&mut self, n: &Node) -> Option<NginxCheck> {
        let name = self.block_name(n)?;
        let mut url = None;
        let mut expect = 200u16;
        let mut interval_us = 1_000_000u64;
        let mut timeout_us = None;
        let mut rise = 1u32;
        let mut fall = 1u32;
        let mut weight = Weight {
            value: 0,
            reverse: false,
        };
        let mut pidfile = None;
        let mut ok = true;
        for c in self.children(n) {
            if c.block.is_some() {
                self.err(
                    c,
                    format!("'{}' inside vrrp_nginx_check cannot have a block", c.kw),
                );
                ok = false;
                continue;
            }
            let words: Vec<&str> = std::iter::once(c.kw.as_str())
                .chain(c.args.iter().map(String::as_str))
                .collect();
            let mut i = 0;
            while i < words.len() {
                let key = words[i];
                let Some(&val) = words.get(i + 1) else {
                    self.err(c, format!("vrrp_nginx_check: '{key}' needs a value"));
                    ok = false;
                    break;
                };
                i += 2;
                let res: Result<(), String> = match key {
                    "url" => match val.strip_prefix("http://") {
                        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
                            url = Some(val.to_string());
                            Ok(())
                        }
                        _ => Err(format!(
                            "url '{val}' must be http://HOST[:PORT]/PATH (plain HTTP to the local nginx)"
                        )),
                    },
                    "expect" => parse_int(val, 100, 599).map(|v| {
                        expect = u16::try_from(v).unwrap_or(200);
                    }),
                    "interval" => parse_seconds_us(val).and_then(|us| {
                        if (10_000..=3_600_000_000).contains(&us) {
                            interval_us = us;
                            Ok(())
                        } else {
                            Err(format!("interval {val} must be 0.01 to 3600 s"))
                        }
                    }),
                    "timeout" => parse_seconds_us(val).and_then(|us| {
                        if (1_000..=3_600_000_000).contains(&us) {
                            timeout_us = Some(us);
                            Ok(())
                        } else {
                            Err(format!("timeout {val} must be 0.001 to 3600 s"))
                        }
                    }),
                    "rise" => parse_int(val, 1, 1_000_000).map(|v| {
                        rise = u32::try_from(v).unwrap_or(1);
                    }),
                    "fall" => parse_int(val, 1, 1_000_000).map(|v| {
                        fall = u32::try_from(v).unwrap_or(1);
                    }),
                    "weight" => {
                        let mut wargs = vec![val.to_string()];
                        if words.get(i) == Some(&"reverse") {
                            wargs.push("reverse".into());
                            i += 1;
                        }
                        parse_weight(&wargs, -253, 253).map(|w| weight = w)
                    }
                    "pidfile" => {
                        pidfile = Some(PathBuf::from(val));
                        Ok(())
                    }
                    other => Err(format!(
                        "unknown vrrp_nginx_check keyword '{other}' (expected url, expect, interval, timeout, rise, fall, weight, pidfile)"
                    )),
                };
                if let Err(e) = res {
                    self.err(c, format!("vrrp_nginx_check {name}: {e}"));
                    ok = false;
                }
            }
        }
        let Some(url) = url else {
            self.err(n, format!("vrrp_nginx_check {name} has no 'url'"));
            return None;
        };
        let timeout_us = timeout_us.unwrap_or(interval_us);
        if timeout_us > interval_us {
            self.err(
                n,
                format!(
                    "vrrp_nginx_check {name}: timeout {} is longer than interval {}; checks would overlap",
                    fmt_secs_us(timeout_us),
                    fmt_secs_us(interval_us)
                ),
            );
            ok = false;
        }
        ok.then(|| NginxCheck {
            name,
            url,
            expect,
            interval_ms: interval_us / 1000,
            timeout_ms: timeout_us / 1000,
            rise,
            fall,
            weight,
            pidfile,
            location: n.loc.clone(),
        })
    }

    pub(super) fn track_file_block(&mut self, n: &Node) -> Option<TrackFile> {
        let name = self.block_name(n)?;
        let mut file = None;
        let mut weight = Weight {
            value: 1,
            reverse: false,
        };
        let mut init_value = None;
        let mut init_overwrite = false;
        for c in self.children(n) {
            match c.kw.as_str() {
                "file" => file = self.value(c).map(PathBuf::from),
                "weight" => {
                    self.no_block(c);
                    if let Some(w) = self.weight(c, &c.args, -254, 254) {
                        weight = w;
                    }
                }
                "init_file" => {
                    self.no_block(c);
                    let mut v = 0i64;
                    for a in &c.args {
                        if a == "overwrite" {
                            init_overwrite = true;
                        } else {
                            match parse_int(a, i64::from(i32::MIN), i64::from(i32::MAX)) {
                                Ok(x) => v = x,
                                Err(e) => self.err(c, format!("init_file: {e}")),
                            }
                        }
                    }
                    init_value = Some(v);
                }
                k => self.err(
                    c,
                    format!(
                        "unknown vrrp_track_file keyword '{k}' (expected file, weight, init_file)"
                    ),
                ),
            }
        }
        let Some(file) = file else {
            self.err(n, format!("vrrp_track_file {name} has no 'file' line"));
            return None;
        };
        Some(TrackFile {
            name,
            file,
            weight,
            init_value,
            init_overwrite,
            location: n.loc.clone(),
        })
    }
}
