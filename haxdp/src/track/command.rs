//! Running a keepalived script string: parse once, then spawn it in its own process group
//! with a timeout. Shared by `vrrp_script` checks and the notify scripts.
//!
//! What keepalived 2.2.7 does (checked against the Debian package): it never uses a shell.
//! The string is split into words honouring `'...'`, `"..."` and `\` escapes, the first word
//! is looked up in `PATH` when it has no `/`, and the result is `execve`d. `$HOME` and
//! `>/dev/null` reach the program as literal arguments; `[[ -f down ]] && exit 1 || exit 0`
//! is refused at start-up with "Cannot find script [[ in path - disabling" and the track is
//! silently dropped, so the seeds' manual-failover `down` file has no effect there. Those
//! configs come from keepalived 1.x on RHEL, which ran every script via `system()`, i.e.
//! `/bin/sh -c` with bash as `/bin/sh`, where the file did lower the priority.
//!
//! haxdp honours what the author wrote: a string without shell syntax is exec'd directly with
//! keepalived's word splitting (identical to 2.2.7), and a string that contains shell syntax
//! runs via `/bin/sh -c`, or `/bin/bash -c` when it uses bash's `[[` (Debian's `/bin/sh` is
//! dash, where `[[` is "not found", exit 127). [`ScriptCommand::keepalived_divergence`] says
//! when keepalived 2.2.7 would have behaved differently so the daemon can log it at load.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The shell used for strings that need one (POSIX `system()` uses the same path).
pub const POSIX_SHELL: &str = "/bin/sh";
/// The shell used for strings using bash's `[[ ... ]]`, when it is installed.
pub const BASH: &str = "/bin/bash";

/// A script string that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("script string is empty: give the path of a program or a shell command")]
    Empty,
    #[error("script string `{0}` has an unterminated quote: close the ' or \" it opens")]
    UnterminatedQuote(String),
    #[error("script string `{0}` ends with a lone backslash: remove it or escape it as \\\\")]
    TrailingBackslash(String),
    #[error("script user `{0}` does not exist: create it or fix `script_user`/`user`")]
    UnknownUser(String),
    #[error("looking up script user `{user}` failed: {reason}")]
    UserLookup { user: String, reason: String },
}

/// How a script string is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    /// `execve(argv[0], argv)` after keepalived's word splitting; `argv[0]` is looked up in
    /// `PATH` when it has no `/`, as keepalived does (it logs a warning for that).
    Exec { argv: Vec<String> },
    /// `shell -c script`, because the string contains shell syntax.
    Shell { shell: PathBuf, script: String },
}

/// A parsed keepalived script string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCommand {
    source: String,
    kind: CommandKind,
    /// Why a shell is needed, for logs (`None` for exec).
    shell_reason: Option<String>,
}

/// Identity a script runs as (keepalived's `script_user` / per-script `user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptUser {
    pub uid: u32,
    pub gid: u32,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Exited(i32),
    /// Killed by a signal that we did not send.
    Signalled(i32),
    /// Ran past its timeout; its whole process group was killed with SIGKILL.
    TimedOut,
    /// fork/exec failed (program missing, not executable, ...).
    SpawnFailed(String),
}

impl RunStatus {
    /// keepalived counts only exit status 0 as success; anything else, including a timeout
    /// or a signal, is a failure (vrrp_scheduler.c, `vrrp_script_child_thread`).
    pub fn success(&self) -> bool {
        matches!(self, RunStatus::Exited(0))
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunStatus::Exited(c) => write!(f, "exited with status {c}"),
            RunStatus::Signalled(s) => write!(f, "killed by signal {s}"),
            RunStatus::TimedOut => f.write_str("timed out, process group killed"),
            RunStatus::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

/// Result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub elapsed: Duration,
}

/// Words of a string split the way keepalived splits a script string, plus whether the
/// string contains something only a shell would interpret.
struct Split {
    words: Vec<String>,
    shell_reason: Option<String>,
}

/// Shell keywords and builtins that cannot be exec'd: a string starting with one of them is
/// shell code (`exit 1`, `if ...`, `! cmd`).
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "!",
    "{", "}", "exit", "cd", "export", "source", ".", "set", "unset", "eval", "exec", "ulimit",
    "umask", "trap", "return", "read", "alias", "[[",
];

fn split(source: &str) -> Result<Split, CommandError> {
    let mut words = Vec::new();
    let mut reason: Option<String> = None;
    let mut note = |r: String| {
        if reason.is_none() {
            reason = Some(r);
        }
    };
    let mut cur = String::new();
    let mut in_word = false;
    // Whether the current word had any quoted part (so `''` is an empty word, and a quoted
    // `[[` or `#` is not syntax).
    let mut quoted = false;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    finish_word(&mut words, &mut cur, quoted, &mut note);
                    in_word = false;
                    quoted = false;
                }
            }
            '\'' => {
                in_word = true;
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(CommandError::UnterminatedQuote(source.to_owned())),
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(CommandError::UnterminatedQuote(source.to_owned())),
                        },
                        Some(ch @ ('$' | '`')) => {
                            note(format!("`{ch}` expansion inside double quotes"));
                            cur.push(ch);
                        }
                        Some(ch) => cur.push(ch),
                        None => return Err(CommandError::UnterminatedQuote(source.to_owned())),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(ch) => {
                    in_word = true;
                    quoted = true;
                    cur.push(ch);
                }
                None => return Err(CommandError::TrailingBackslash(source.to_owned())),
            },
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '`' | '\n' => {
                note(format!("shell operator `{}`", c.escape_default()));
                in_word = true;
                cur.push(c);
            }
            '$' => {
                note("`$` expansion".to_owned());
                in_word = true;
                cur.push(c);
            }
            '*' | '?' => {
                note(format!("glob `{c}`"));
                in_word = true;
                cur.push(c);
            }
            '#' | '~' if !in_word => {
                note(format!("`{c}` at the start of a word"));
                in_word = true;
                cur.push(c);
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        finish_word(&mut words, &mut cur, quoted, &mut note);
    }
    if let Some(first) = words.first() {
        if reason.is_none() && !first.starts_with('=') {
            if let Some((name, _)) = first.split_once('=') {
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    reason = Some(format!("variable assignment `{name}=`"));
                }
            }
        }
        if reason.is_none() && SHELL_WORDS.contains(&first.as_str()) {
            reason = Some(format!("shell keyword or builtin `{first}`"));
        }
    }
    Ok(Split {
        words,
        shell_reason: reason,
    })
}

fn finish_word(
    words: &mut Vec<String>,
    cur: &mut String,
    quoted: bool,
    note: &mut impl FnMut(String),
) {
    if !quoted && cur == "[[" {
        note("bash `[[ ... ]]` test".to_owned());
    }
    words.push(std::mem::take(cur));
}

/// POSIX single-quoting of one argument, for appending arguments to shell code.
pub fn shell_quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

impl ScriptCommand {
    /// Parse a script string exactly as written in keepalived.conf (without the config
    /// file's surrounding quotes).
    pub fn parse(source: &str) -> Result<Self, CommandError> {
        Self::parse_with_shells(source, Path::new(BASH).exists())
    }

    /// [`ScriptCommand::parse`] with the presence of `/bin/bash` given, for tests.
    pub fn parse_with_shells(source: &str, have_bash: bool) -> Result<Self, CommandError> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err(CommandError::Empty);
        }
        let s = split(trimmed)?;
        if s.words.is_empty() {
            return Err(CommandError::Empty);
        }
        let kind = match &s.shell_reason {
            None => CommandKind::Exec { argv: s.words },
            Some(_) => {
                // `[[` is a bash keyword; dash (Debian's /bin/sh) answers 127 "not found".
                let wants_bash = s.words.iter().any(|w| w == "[[") && have_bash;
                CommandKind::Shell {
                    shell: PathBuf::from(if wants_bash { BASH } else { POSIX_SHELL }),
                    script: trimmed.to_owned(),
                }
            }
        };
        Ok(Self {
            source: source.to_owned(),
            kind,
            shell_reason: s.shell_reason,
        })
    }

    /// The string as written in the config.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn kind(&self) -> &CommandKind {
        &self.kind
    }

    /// Why the string needs a shell, if it does.
    pub fn shell_reason(&self) -> Option<&str> {
        self.shell_reason.as_deref()
    }

    /// When keepalived 2.2.7 would run this string differently, a sentence saying how
    /// (for a warning at config load). `None` when both run it the same way.
    pub fn keepalived_divergence(&self) -> Option<String> {
        let CommandKind::Shell { shell, .. } = &self.kind else {
            return None;
        };
        let reason = self.shell_reason.as_deref().unwrap_or("shell syntax");
        let first = split(self.source.trim())
            .ok()
            .and_then(|s| s.words.into_iter().next())
            .unwrap_or_default();
        let k = if SHELL_WORDS.contains(&first.as_str()) || first.contains('=') {
            format!("keepalived 2.2.7 would look for a program named `{first}`, find none and disable the script")
        } else if first.contains('/') {
            format!("keepalived 2.2.7 would exec `{first}` without a shell, passing the shell syntax as literal arguments")
        } else {
            format!("keepalived 2.2.7 would exec `{first}` from PATH (or disable the script if it is not there) without a shell, passing the shell syntax as literal arguments")
        };
        Some(format!(
            "script `{}` contains {reason}: haxdp runs it with `{} -c`; {k}",
            self.source,
            shell.display()
        ))
    }

    /// Program and arguments to spawn, with `extra` appended (keepalived appends
    /// `INSTANCE name state priority` to the generic `notify` script). For shell code the
    /// extra arguments are single-quoted and appended to the script text.
    pub fn program_and_args(&self, extra: &[String]) -> (PathBuf, Vec<String>) {
        match &self.kind {
            CommandKind::Exec { argv } => {
                let mut args: Vec<String> = argv[1..].to_vec();
                args.extend(extra.iter().cloned());
                (PathBuf::from(&argv[0]), args)
            }
            CommandKind::Shell { shell, script } => {
                let mut text = script.clone();
                for a in extra {
                    text.push(' ');
                    text.push_str(&shell_quote(a));
                }
                (shell.clone(), vec!["-c".to_owned(), text])
            }
        }
    }

    /// Run once: new process group, stdio on /dev/null (as keepalived's `set_std_fd`), the
    /// given user when we are root, and `timeout`, after which the whole group is killed
    /// with SIGKILL so children the script started die too.
    pub async fn run(
        &self,
        extra: &[String],
        user: Option<ScriptUser>,
        timeout: Duration,
    ) -> RunOutcome {
        let start = Instant::now();
        let (program, args) = self.program_and_args(extra);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // setpgid(0, 0) in the child: the script leads its own group, so a timeout can
            // kill everything it started with kill(-pgid) (keepalived does the same).
            .process_group(0);
        if let Some(u) = user {
            // std's Command does setgid, then setgroups(0) when root, then setuid, which
            // drops root's supplementary groups as keepalived does. Without root we cannot
            // switch users; the caller logs that once at load.
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                cmd.uid(u.uid).gid(u.gid);
            }
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return RunOutcome {
                    status: RunStatus::SpawnFailed(format!("{}: {e}", program.display())),
                    elapsed: start.elapsed(),
                }
            }
        };
        let Some(pid) = child.id() else {
            return RunOutcome {
                status: RunStatus::SpawnFailed("child exited before its pid was read".into()),
                elapsed: start.elapsed(),
            };
        };
        let mut guard = GroupGuard {
            pgid: pid as libc::pid_t,
            armed: true,
        };
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(st)) => {
                // The leader is reaped: its pid (= the pgid) may be reused from now on, so
                // never signal the group after this point.
                guard.armed = false;
                match (st.code(), st.signal()) {
                    (Some(c), _) => RunStatus::Exited(c),
                    (None, Some(s)) => RunStatus::Signalled(s),
                    (None, None) => RunStatus::SpawnFailed("unknown wait status".into()),
                }
            }
            Ok(Err(e)) => {
                guard.kill();
                guard.armed = false;
                RunStatus::SpawnFailed(format!("waiting for {}: {e}", program.display()))
            }
            Err(_) => {
                // The leader is not reaped yet (alive or zombie), so the pgid is still ours.
                guard.kill();
                guard.armed = false;
                // Reap the leader; SIGKILL cannot be caught, so this returns promptly.
                let _ = child.wait().await;
                RunStatus::TimedOut
            }
        };
        RunOutcome {
            status,
            elapsed: start.elapsed(),
        }
    }
}

/// Kills a script's process group if the run is abandoned (task aborted on shutdown or
/// reload) before the leader has been reaped.
struct GroupGuard {
    pgid: libc::pid_t,
    armed: bool,
}

impl GroupGuard {
    fn kill(&self) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        // ESRCH (group already gone) is fine.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill();
        }
    }
}

impl ScriptUser {
    /// Resolve a keepalived `script_user` value: `USER [GROUP]`; without a group, the
    /// user's primary group.
    pub fn lookup(spec: &str) -> Result<Self, CommandError> {
        let mut it = spec.split_whitespace();
        let user = it
            .next()
            .ok_or(CommandError::UnknownUser(spec.to_owned()))?;
        let (uid, mut gid) = lookup_passwd(user)?;
        if let Some(group) = it.next() {
            gid = lookup_group(group)?;
        }
        Ok(Self { uid, gid })
    }
}

fn lookup_passwd(user: &str) -> Result<(u32, u32), CommandError> {
    let cname = std::ffi::CString::new(user).map_err(|_| CommandError::UnknownUser(user.into()))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed passwd is a valid out-parameter for getpwnam_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives the use of pwd's fields.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(CommandError::UserLookup {
            user: user.into(),
            reason: io::Error::from_raw_os_error(rc).to_string(),
        });
    }
    if result.is_null() {
        return Err(CommandError::UnknownUser(user.into()));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

fn lookup_group(group: &str) -> Result<u32, CommandError> {
    let cname =
        std::ffi::CString::new(group).map_err(|_| CommandError::UnknownUser(group.into()))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed group is a valid out-parameter for getgrnam_r.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(CommandError::UserLookup {
            user: group.into(),
            reason: io::Error::from_raw_os_error(rc).to_string(),
        });
    }
    if result.is_null() {
        return Err(CommandError::UnknownUser(group.into()));
    }
    Ok(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_argv(s: &str) -> Vec<String> {
        match ScriptCommand::parse_with_shells(s, true).map(|c| c.kind) {
            Ok(CommandKind::Exec { argv }) => argv,
            other => panic!("`{s}` should exec directly, got {other:?}"),
        }
    }

    fn shell_of(s: &str, have_bash: bool) -> PathBuf {
        match ScriptCommand::parse_with_shells(s, have_bash).map(|c| c.kind) {
            Ok(CommandKind::Shell { shell, script }) => {
                assert_eq!(script, s.trim());
                shell
            }
            other => panic!("`{s}` should need a shell, got {other:?}"),
        }
    }

    #[test]
    fn plain_strings_split_like_keepalived() {
        // Same words keepalived 2.2.7 passed to a test script: [a b][c d][e f].
        assert_eq!(
            exec_argv(r#"/tmp/args.sh 'a b' "c d" e\ f"#),
            ["/tmp/args.sh", "a b", "c d", "e f"]
        );
        assert_eq!(
            exec_argv("/etc/keepalived/chkngx.sh"),
            ["/etc/keepalived/chkngx.sh"]
        );
        assert_eq!(exec_argv("killall -0 nginx"), ["killall", "-0", "nginx"]);
        assert_eq!(
            exec_argv("/etc/keepalived/notify.sh master"),
            ["/etc/keepalived/notify.sh", "master"]
        );
        assert_eq!(exec_argv("  /bin/true  "), ["/bin/true"]);
        assert_eq!(exec_argv("/x ''"), ["/x", ""]);
        // `[` is a real program (/usr/bin/[), so a POSIX test runs without a shell.
        assert_eq!(exec_argv("[ -f /x ]"), ["[", "-f", "/x", "]"]);
        // A quoted operator is a literal argument for the shell too.
        assert_eq!(exec_argv("/x '|' \"&&\""), ["/x", "|", "&&"]);
    }

    #[test]
    fn shell_syntax_is_detected() {
        for s in [
            "/x | grep y",
            "/x && /y",
            "/x; /y",
            "/x > /dev/null",
            "/x $HOME",
            "/x \"$HOME\"",
            "/x `id`",
            "/x *.pid",
            "exit 1",
            "FOO=1 /x",
            "! /x",
            "[ `curl -sL -w %{http_code} http://localhost -o /dev/null` -eq 200 ] && exit 0",
        ] {
            assert_eq!(shell_of(s, true), PathBuf::from(POSIX_SHELL), "{s}");
        }
    }

    #[test]
    fn double_bracket_prefers_bash() {
        let seed = "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0";
        assert_eq!(shell_of(seed, true), PathBuf::from(BASH));
        assert_eq!(shell_of(seed, false), PathBuf::from(POSIX_SHELL));
        assert_eq!(shell_of("[[ -f /x ]]", true), PathBuf::from(BASH));
        let c = ScriptCommand::parse_with_shells(seed, true).expect("parses");
        let note = c.keepalived_divergence().expect("keepalived differs here");
        assert!(note.contains("disable the script"), "{note}");
        assert!(ScriptCommand::parse("/bin/true")
            .expect("parses")
            .keepalived_divergence()
            .is_none());
    }

    #[test]
    fn bad_strings_are_refused() {
        assert_eq!(ScriptCommand::parse("  "), Err(CommandError::Empty));
        assert!(matches!(
            ScriptCommand::parse("/x 'abc"),
            Err(CommandError::UnterminatedQuote(_))
        ));
        assert!(matches!(
            ScriptCommand::parse("/x \\"),
            Err(CommandError::TrailingBackslash(_))
        ));
    }

    #[test]
    fn appended_args() {
        let c = ScriptCommand::parse("/n.sh x").expect("parses");
        let extra: Vec<String> = ["INSTANCE", "VI_1", "MASTER", "100"]
            .map(String::from)
            .into();
        let (p, a) = c.program_and_args(&extra);
        assert_eq!(p, PathBuf::from("/n.sh"));
        assert_eq!(a, ["x", "INSTANCE", "VI_1", "MASTER", "100"]);
        let c = ScriptCommand::parse_with_shells("/n.sh \"$X\"", true).expect("parses");
        let (p, a) = c.program_and_args(&["it's".to_owned()]);
        assert_eq!(p, PathBuf::from(POSIX_SHELL));
        assert_eq!(a, ["-c", "/n.sh \"$X\" 'it'\\''s'"]);
    }

    #[test]
    fn user_lookup() {
        assert_eq!(
            ScriptUser::lookup("root").expect("root exists"),
            ScriptUser { uid: 0, gid: 0 }
        );
        assert!(matches!(
            ScriptUser::lookup("no-such-user-haxdp"),
            Err(CommandError::UnknownUser(_))
        ));
    }
}
