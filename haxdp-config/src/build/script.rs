//! The commands haxdp runs: `vrrp_script` blocks and the `notify*` keywords of instances
//! and sync groups, with keepalived's checks of their paths (script security).

use std::path::Path;

use super::Builder;
use crate::diag::Location;
use crate::model::*;
use crate::syntax::Node;

/// A word after an unquoted notify command that reads like an argument to it (a state
/// name, a path, an option, an address or a number) rather than a user name.
fn looks_like_argument(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    matches!(w.as_str(), "master" | "backup" | "fault" | "stop")
        || word.starts_with(['/', '-', '$', '"', '\''])
        || word.parse::<std::net::IpAddr>().is_ok()
        || word.bytes().all(|b| b.is_ascii_digit())
}

impl Builder<'_> {
    /// `notify*` keywords shared by instances and sync groups; `true` if `c` was one.
    pub(super) fn notify(&mut self, c: &Node, notify: &mut NotifyScripts) -> bool {
        let slot = match c.kw.as_str() {
            "notify" => &mut notify.notify,
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            "notify_stop" => &mut notify.stop,
            _ => return false,
        };
        self.no_block(c);
        // keepalived 2.2.7 (notify_script_init): the first word is the command, the next
        // two are the user and group it runs as; anything after them is ignored.
        match c.args.as_slice() {
            [] => self.err(c, format!("'{}' needs a command", c.kw)),
            [command, rest @ ..] if rest.len() <= 2 => {
                if let Some(user) = rest.first() {
                    if !command.contains(char::is_whitespace) && looks_like_argument(user) {
                        self.warn(
                            c,
                            format!(
                                "keepalived reads '{user}' as the user to run '{command}' as, not as its argument, and haxdp does the same; to pass arguments, quote the command: {} \"{}\"",
                                c.kw,
                                c.args.join(" ")
                            ),
                        );
                    }
                }
                *slot = Some(NotifyScript {
                    command: command.clone(),
                    run_as: rest.first().map(|u| RunAs {
                        user: u.clone(),
                        group: rest.get(1).cloned(),
                    }),
                    location: c.loc.clone(),
                });
            }
            _ => self.err(
                c,
                format!(
                    "'{}' takes a command (in double quotes when it has arguments), then optionally the user and group to run it as: {} \"{}\"",
                    c.kw,
                    c.kw,
                    c.args.join(" ")
                ),
            ),
        }
        true
    }

    pub(super) fn vrrp_script(&mut self, n: &Node, security: bool) -> Option<VrrpScript> {
        let name = self.block_name(n)?;
        let mut script = None;
        let mut interval_us = None;
        let mut timeout_us = None;
        let mut weight = Weight {
            value: 0,
            reverse: false,
        };
        let mut rise = 1;
        let mut fall = 1;
        let mut user = None;
        let mut init_fail = false;
        for c in self.children(n) {
            match c.kw.as_str() {
                "script" => {
                    script = self.command(c);
                    if let Some(cmd) = &script {
                        check_script_path(self, cmd, &c.loc, "script", security);
                    }
                }
                "interval" => interval_us = self.seconds_us(c, 1_000, 86_400_000_000),
                "timeout" => timeout_us = self.seconds_us(c, 1_000, 86_400_000_000),
                "weight" => {
                    self.no_block(c);
                    if let Some(w) = self.weight(c, &c.args, -253, 253) {
                        weight = w;
                    }
                }
                "rise" => rise = self.u32_in(c, 1, 1_000_000).unwrap_or(rise),
                "fall" => fall = self.u32_in(c, 1, 1_000_000).unwrap_or(fall),
                "user" => user = self.run_as(c),
                "init_fail" => init_fail = self.flag(c),
                k => self.err(
                    c,
                    format!(
                        "unknown vrrp_script keyword '{k}' (expected script, interval, timeout, weight, rise, fall, user, init_fail)"
                    ),
                ),
            }
        }
        let Some(script) = script else {
            self.err(n, format!("vrrp_script {name} has no 'script' line"));
            return None;
        };
        // keepalived: interval defaults to 1 s, timeout to the interval.
        let interval_us = interval_us.unwrap_or(1_000_000);
        let timeout_us = timeout_us.unwrap_or(interval_us);
        Some(VrrpScript {
            name,
            script,
            interval_ms: interval_us / 1000,
            timeout_ms: timeout_us / 1000,
            weight,
            rise,
            fall,
            user,
            init_fail,
            location: n.loc.clone(),
        })
    }
}

/// Shell syntax that keepalived 2.x, which execs scripts without a shell, cannot run.
fn needs_shell(cmd: &str) -> bool {
    let first = cmd.split_whitespace().next().unwrap_or("");
    let runs_shell = matches!(
        first.rsplit('/').next().unwrap_or(first),
        "sh" | "bash" | "dash" | "zsh" | "ksh"
    );
    if runs_shell {
        return false;
    }
    first == "[["
        || first == "["
        || ["&&", "||", ";", "|", ">", "<", "$(", "`"]
            .iter()
            .any(|m| cmd.contains(m))
}

pub(super) fn check_script_path(
    b: &mut Builder<'_>,
    cmd: &str,
    at: &Location,
    kw: &str,
    security: bool,
) {
    let Some(first) = cmd.split_whitespace().next() else {
        return;
    };
    if needs_shell(cmd) {
        b.d.warn_at(
            at,
            kw,
            format!("'{cmd}' is shell syntax: haxdp runs it with a shell (bash for [[ ]]), but keepalived 2.x runs scripts without one and silently disables this check; write it as /bin/sh -c '...' if the file must also work under keepalived"),
        );
        return;
    }
    if !first.starts_with('/') {
        return;
    }
    let path = Path::new(first);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            if b.missing_reported.insert(first.to_string()) {
                b.d.warn_at(
                    at,
                    kw,
                    format!("script {first} cannot be read on this machine ({e}); it cannot run until it exists (reported once per path)"),
                );
            }
            return;
        }
    };
    let d = &mut *b.d;
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if meta.is_dir() || mode & 0o111 == 0 {
        let msg = format!("script {first} is not an executable file; chmod +x it");
        if security {
            d.error_at(at, kw, msg);
        } else {
            d.warn_at(at, kw, msg);
        }
        return;
    }
    if !security {
        return;
    }
    // keepalived 2.2.7's script security (lib/notify.c check_security), for the path as
    // written and, when it is a symlink, for what it points to: every component, seen
    // without following symlinks, must be owned by root, and neither a file nor a
    // directory without the sticky bit may be writable by others or by a group other than
    // root's; otherwise a non-root user could swap the script root runs.
    let mut paths = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path) {
        if real != path {
            paths.push(real);
        }
    }
    for full in &paths {
        if let Some(why) = insecure_component(full) {
            d.error_at(
                at,
                kw,
                format!(
                    "{why}, and enable_script_security is on: a non-root user could replace {first} (keepalived disables such a script)"
                ),
            );
            return;
        }
    }
}

/// The first component of `path` that keepalived's check_security refuses, and why.
fn insecure_component(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut components: Vec<&Path> = path.ancestors().collect();
    components.reverse();
    for p in components {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let mode = m.mode();
        let sticky_dir = m.is_dir() && mode & 0o1000 != 0;
        let checked = m.is_file() || (m.is_dir() && !sticky_dir);
        // keepalived runs as root and asks for root; a reader run as another user (tests,
        // check-config by hand) also accepts its own files.
        // SAFETY: geteuid cannot fail.
        if m.uid() != 0 && m.uid() != unsafe { libc::geteuid() } {
            return Some(format!(
                "{} is owned by uid {}, not root; chown root {}",
                p.display(),
                m.uid(),
                p.display()
            ));
        }
        if checked && m.gid() != 0 && mode & 0o020 != 0 {
            return Some(format!(
                "{} is writable by group {}; chmod g-w {}",
                p.display(),
                m.gid(),
                p.display()
            ));
        }
        if checked && mode & 0o002 != 0 {
            return Some(format!(
                "{} is writable by other users; chmod o-w {}",
                p.display(),
                p.display()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_detection() {
        assert!(needs_shell(
            "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0"
        ));
        assert!(!needs_shell("killall -0 nginx"));
        assert!(!needs_shell("/etc/keepalived/chkngx.sh"));
        assert!(!needs_shell("/bin/sh -c 'a && b'"));
    }
}
