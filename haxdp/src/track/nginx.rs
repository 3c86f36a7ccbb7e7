//! Native nginx check: an HTTP/1.1 GET over a plain TCP connection (no TLS: the check
//! targets nginx's local status/health location, normally on 127.0.0.1), the status line
//! compared with the expected code, and an optional pidfile liveness test
//! (`kill(pid, 0)`). No process is forked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::script::RiseFall;
use super::{Publisher, TrackError};

/// A native nginx check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxCheckSpec {
    pub name: String,
    /// `http://host[:port]/path`; host may be a name, an IPv4 address or `[IPv6]`.
    pub url: String,
    pub expect_status: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Default weight; instances may override it.
    pub weight: i32,
    /// nginx's pidfile (`/run/nginx.pid` on Debian): the master process must be alive.
    pub pidfile: Option<PathBuf>,
}

impl NginxCheckSpec {
    /// Defaults: expect 200, every second, 1 s timeout, rise 1, fall 1, weight 0.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            expect_status: 200,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise: 1,
            fall: 1,
            weight: 0,
            pidfile: None,
        }
    }
}

/// Where an HTTP check connects and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Host to connect to (brackets removed from an IPv6 literal).
    pub host: String,
    pub port: u16,
    /// The `Host:` header value (the URL's authority as written).
    pub authority: String,
    pub path: String,
}

impl HttpTarget {
    /// Parse `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| "only http:// URLs are supported".to_owned())?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.is_empty() {
            return Err("no host".to_owned());
        }
        if authority.contains('@') {
            return Err("credentials in the URL are not supported".to_owned());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| "unterminated [IPv6] literal".to_owned())?;
            let port = match after {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{p}` after the IPv6 literal"))?
                    .parse::<u16>()
                    .map_err(|e| format!("bad port: {e}"))?,
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse::<u16>()
                        .map_err(|e| format!("bad port `{p}`: {e}"))?,
                ),
                None => (authority.to_owned(), 80),
            }
        };
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        Ok(Self {
            host,
            port,
            authority: authority.to_owned(),
            path,
        })
    }
}

/// Bound on how much of a response we read looking for the status line.
const MAX_HEAD: usize = 8192;

/// GET the target and return the response's status code.
pub async fn http_status(target: &HttpTarget) -> Result<u16, String> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect {}:{}: {e}", target.host, target.port))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: haxdp-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send request: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]);
        }
        if buf.len() >= MAX_HEAD {
            return Err("no status line in the first 8 KiB".to_owned());
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read response: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "connection closed without a response".to_owned()
            } else {
                "connection closed inside the status line".to_owned()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `HTTP/1.x SSS reason` -> SSS (RFC 9112 4).
pub fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 status line: `{text}`"));
    }
    let code = parts.next().unwrap_or_default();
    if code.len() != 3 {
        return Err(format!("bad status code in `{text}`"));
    }
    code.parse::<u16>()
        .map_err(|_| format!("bad status code in `{text}`"))
}

/// Whether the process named in `pidfile` is alive.
pub fn pidfile_alive(pidfile: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(pidfile)
        .map_err(|e| format!("read pidfile {}: {e}", pidfile.display()))?;
    let pid: libc::pid_t = text.trim().parse().map_err(|_| {
        format!(
            "pidfile {} holds `{}`, not a pid",
            pidfile.display(),
            text.trim()
        )
    })?;
    if pid <= 0 {
        // kill(0 or negative, 0) would test a process group, not nginx.
        return Err(format!("pidfile {} holds pid {pid}", pidfile.display()));
    }
    // SAFETY: signal 0 performs only the existence and permission check (kill(2)).
    let rc = unsafe { libc::kill(pid, 0) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EPERM) {
        // The process exists but belongs to someone we may not signal.
        return Ok(());
    }
    Err(format!(
        "pid {pid} from {} is not running ({err})",
        pidfile.display()
    ))
}

/// One check: pidfile (if any), then the HTTP request, all within `timeout`.
pub async fn check_once(
    target: &HttpTarget,
    expect_status: u16,
    pidfile: Option<&Path>,
    timeout: Duration,
) -> Result<String, String> {
    if let Some(p) = pidfile {
        pidfile_alive(p)?;
    }
    match tokio::time::timeout(timeout, http_status(target)).await {
        Err(_) => Err(format!("no response within {timeout:?}")),
        Ok(Err(e)) => Err(e),
        Ok(Ok(code)) if code == expect_status => Ok(format!("HTTP {code}")),
        Ok(Ok(code)) => Err(format!("HTTP {code}, expected {expect_status}")),
    }
}

pub(crate) struct Prepared {
    target: HttpTarget,
    expect_status: u16,
    interval: Duration,
    timeout: Duration,
    rise: u32,
    fall: u32,
    pidfile: Option<PathBuf>,
}

impl Prepared {
    pub(crate) fn new(spec: &NginxCheckSpec) -> Result<Self, TrackError> {
        let target = HttpTarget::parse(&spec.url).map_err(|reason| TrackError::BadUrl {
            name: spec.name.clone(),
            url: spec.url.clone(),
            reason,
        })?;
        if spec.interval.is_zero() {
            return Err(TrackError::ZeroInterval(spec.name.clone()));
        }
        Ok(Self {
            target,
            expect_status: spec.expect_status,
            interval: spec.interval,
            timeout: if spec.timeout.is_zero() {
                spec.interval
            } else {
                spec.timeout
            },
            rise: spec.rise,
            fall: spec.fall,
            pidfile: spec.pidfile.clone(),
        })
    }
}

pub(crate) async fn run_loop(p: Prepared, publisher: Publisher) {
    let mut rf = RiseFall::new(p.rise, p.fall, false);
    let mut ticker = tokio::time::interval(p.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = check_once(&p.target, p.expect_status, p.pidfile.as_deref(), p.timeout).await;
        let ok = result.is_ok();
        let detail = match result {
            Ok(d) | Err(d) => d,
        };
        let state = rf.record(ok);
        publisher.publish(state, detail).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/nginx_status").expect("valid");
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.path.as_str()
            ),
            ("127.0.0.1", 8080, "127.0.0.1:8080", "/nginx_status")
        );
        let t = HttpTarget::parse("http://localhost").expect("valid");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("localhost", 80, "/")
        );
        let t = HttpTarget::parse("http://[::1]:81/h?x=1").expect("valid");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 81, "/h?x=1")
        );
        let t = HttpTarget::parse("http://h?x").expect("valid");
        assert_eq!(t.path, "/?x");
        for bad in [
            "https://h/",
            "http://",
            "http://h:99999/",
            "http://[::1/",
            "http://u@h/",
            "http://:80/",
        ] {
            assert!(HttpTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Service Unavailable"),
            Ok(503)
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 204"), Ok(204));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line(b"HTTP/1.1 2000 X").is_err());
        assert!(parse_status_line(b"HTTP/1.1 abc X").is_err());
    }
}
