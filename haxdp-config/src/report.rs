//! `haxdp check-config -f FILE [--json]`: what haxdp will run, and every diagnostic.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::{load, Config, Diagnostic, LoadError, Severity, VrrpInstance, Weight};

#[derive(Serialize)]
struct JsonReport<'a> {
    file: String,
    /// `ok`, `invalid` or `unreadable`.
    status: &'static str,
    config: Option<&'a Config>,
    diagnostics: &'a [Diagnostic],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn weight(w: &Weight) -> String {
    if w.reverse {
        format!("weight {} reverse", w.value)
    } else {
        format!("weight {}", w.value)
    }
}

fn cs(cs: u16) -> String {
    if cs.is_multiple_of(100) {
        format!("{}s", cs / 100)
    } else {
        format!("{}.{:02}s", cs / 100, cs % 100)
    }
}

fn describe(out: &mut String, c: &Config, i: &VrrpInstance) {
    let _ = writeln!(
        out,
        "vrrp_instance {}: interface {}, VRID {}, VRRPv{}, priority {}, advert {}{}{}",
        i.name,
        i.interface,
        i.vrid,
        i.version,
        i.priority,
        cs(i.advert_int_cs),
        match i.state {
            Some(crate::StateHint::Master) => ", start MASTER",
            Some(crate::StateHint::Backup) => ", start BACKUP",
            None => "",
        },
        if i.nopreempt { ", nopreempt" } else { "" },
    );
    let vips: Vec<String> = i
        .vips
        .iter()
        .map(|v| {
            let mut s = format!("{}/{} dev {}", v.address, v.prefix_len, v.dev);
            if let Some(l) = &v.label {
                let _ = write!(s, " label {l}");
            }
            s
        })
        .collect();
    let _ = writeln!(
        out,
        "  VIPs: {}",
        if vips.is_empty() {
            "none".to_string()
        } else {
            vips.join(", ")
        }
    );
    if !i.excluded_vips.is_empty() {
        let ex: Vec<String> = i
            .excluded_vips
            .iter()
            .map(|v| format!("{}/{} dev {}", v.address, v.prefix_len, v.dev))
            .collect();
        let _ = writeln!(out, "  excluded VIPs: {}", ex.join(", "));
    }
    if !i.unicast_peers.is_empty() {
        let peers: Vec<String> = i.unicast_peers.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(
            out,
            "  unicast: src {} peers {}",
            i.unicast_src_ip
                .map_or_else(|| "(interface address)".to_string(), |a| a.to_string()),
            peers.join(", ")
        );
    }
    if let Some(allowed) = i.allowed_sources() {
        let a: Vec<String> = allowed.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(
            out,
            "  adverts accepted only from: {} (dropped in the kernel otherwise, as source_not_allowed)",
            if a.is_empty() {
                "nobody".to_string()
            } else {
                a.join(", ")
            }
        );
    }
    let mut checks = Vec::new();
    for t in &i.track_scripts {
        if let Some(s) = c.script(&t.name) {
            let w = t.weight.unwrap_or(s.weight);
            checks.push(format!(
                "script {} every {}ms ({})",
                t.name,
                s.interval_ms,
                weight(&w)
            ));
        } else if let Some(n) = c.nginx_check(&t.name) {
            let w = t.weight.unwrap_or(n.weight);
            checks.push(format!(
                "nginx {} {} every {}ms ({})",
                t.name,
                n.url,
                n.interval_ms,
                weight(&w)
            ));
        }
    }
    for t in &i.track_interfaces {
        checks.push(format!("interface {} ({})", t.name, weight(&t.weight)));
    }
    for t in &i.track_files {
        if let Some(f) = c.track_file(&t.name) {
            let w = t.weight.unwrap_or(f.weight);
            checks.push(format!(
                "file {} {} ({})",
                t.name,
                f.file.display(),
                weight(&w)
            ));
        }
    }
    let _ = writeln!(
        out,
        "  checks: {}",
        if checks.is_empty() {
            "none".to_string()
        } else {
            checks.join(", ")
        }
    );
}

fn diag_text(diags: &[Diagnostic]) -> String {
    let mut s = String::new();
    for d in diags {
        let _ = writeln!(s, "{d}");
    }
    s
}

/// Implements `haxdp check-config -f FILE [--json]`: returns (stdout, stderr, exit code).
/// Exit 0: runnable (warnings allowed); 1: errors, nothing would be applied; 2: the file
/// cannot be read.
pub fn check_config_report(path: &Path, json: bool) -> (String, String, i32) {
    let file = path.display().to_string();
    match load(path) {
        Ok(loaded) => {
            if json {
                let r = JsonReport {
                    file,
                    status: "ok",
                    config: Some(&loaded.config),
                    diagnostics: &loaded.diagnostics,
                    error: None,
                };
                (to_json(&r), String::new(), 0)
            } else {
                let c = &loaded.config;
                let mut out = String::new();
                let _ = writeln!(
                    out,
                    "{file}: configuration OK, {} VRRP instance(s)",
                    c.instances.len()
                );
                for i in &c.instances {
                    describe(&mut out, c, i);
                }
                for g in &c.sync_groups {
                    let _ = writeln!(out, "vrrp_sync_group {}: {}", g.name, g.members.join(", "));
                }
                let warnings = loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Warning)
                    .count();
                let mut err = diag_text(&loaded.diagnostics);
                if warnings > 0 {
                    let _ = writeln!(err, "{file}: {warnings} warning(s)");
                }
                (out, err, 0)
            }
        }
        Err(e) => {
            let code = e.exit_code();
            let (status, diags): (&'static str, &[Diagnostic]) = match &e {
                LoadError::Invalid { diagnostics, .. } => ("invalid", diagnostics),
                LoadError::Unreadable { .. } => ("unreadable", &[]),
            };
            let mut err = diag_text(diags);
            let _ = writeln!(err, "{e}");
            if json {
                let r = JsonReport {
                    file,
                    status,
                    config: None,
                    diagnostics: diags,
                    error: Some(e.to_string()),
                };
                (to_json(&r), err, code)
            } else {
                (String::new(), err, code)
            }
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    match serde_json::to_string_pretty(v) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // The model holds only strings, numbers, addresses and booleans; serde_json cannot
        // fail on them, but if it ever did the report says so rather than panicking.
        Err(e) => format!("{{\"status\":\"internal-error\",\"error\":\"{e}\"}}\n"),
    }
}
