//! Native nginx check against a small HTTP server on 127.0.0.1, pidfile liveness, and
//! track_file polling.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use haxdp::track::nginx::{check_once, pidfile_alive};
use haxdp::track::{
    CheckState, FileInit, FileSpec, HttpTarget, ItemKind, NginxCheckSpec, TrackEvent, Tracker,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod common;
use common::TempDir;

/// Status 0 means "accept, read the request, never answer".
async fn server(status: Arc<AtomicU16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let status = Arc::clone(&status);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 512];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let code = status.load(Ordering::Relaxed);
                if code == 0 {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let resp = format!(
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/health")
}

async fn next_event(rx: &mut mpsc::Receiver<TrackEvent>) -> TrackEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no track event in time")
        .expect("event channel closed")
}

#[tokio::test]
async fn http_status_ok_error_and_hang() {
    let status = Arc::new(AtomicU16::new(200));
    let url = server(Arc::clone(&status)).await;
    let target = HttpTarget::parse(&url).expect("url");
    let t = Duration::from_millis(500);
    assert_eq!(
        check_once(&target, 200, None, t).await,
        Ok("HTTP 200".to_owned())
    );
    status.store(500, Ordering::Relaxed);
    let err = check_once(&target, 200, None, t)
        .await
        .expect_err("500 fails");
    assert!(err.contains("HTTP 500"), "{err}");
    // A different expected status can be configured.
    assert!(check_once(&target, 500, None, t).await.is_ok());
    status.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let err = check_once(&target, 200, None, Duration::from_millis(300))
        .await
        .expect_err("hang fails");
    assert!(err.contains("no response"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "timeout not honoured: {:?}",
        start.elapsed()
    );
    // Nothing listening: connection refused is a failure, not a hang.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let target = HttpTarget::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
    assert!(check_once(&target, 200, None, t).await.is_err());
}

#[tokio::test]
async fn pidfile_liveness() {
    let d = TempDir::new("pid");
    let pf = d.path().join("nginx.pid");
    std::fs::write(&pf, format!("{}\n", std::process::id())).expect("write");
    assert!(pidfile_alive(&pf).is_ok());
    // A pid that certainly exited: a child we reaped.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    std::fs::write(&pf, format!("{dead}\n")).expect("write");
    let err = pidfile_alive(&pf).expect_err("dead pid");
    assert!(err.contains("not running"), "{err}");
    std::fs::write(&pf, "garbage").expect("write");
    assert!(pidfile_alive(&pf).is_err());
    std::fs::write(&pf, "0").expect("write");
    assert!(pidfile_alive(&pf).is_err());
    assert!(pidfile_alive(&d.path().join("missing.pid")).is_err());

    // The HTTP check fails too when the pidfile is dead, even with a 200.
    let url = server(Arc::new(AtomicU16::new(200))).await;
    let target = HttpTarget::parse(&url).expect("url");
    std::fs::write(&pf, format!("{dead}\n")).expect("write");
    assert!(
        check_once(&target, 200, Some(&pf), Duration::from_millis(500))
            .await
            .is_err()
    );
    std::fs::write(&pf, format!("{}\n", std::process::id())).expect("write");
    assert!(
        check_once(&target, 200, Some(&pf), Duration::from_millis(500))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn nginx_check_in_tracker_follows_fall() {
    let status = Arc::new(AtomicU16::new(200));
    let url = server(Arc::clone(&status)).await;
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    let mut spec = NginxCheckSpec::new("nginx", url);
    spec.interval = Duration::from_millis(50);
    spec.timeout = Duration::from_millis(200);
    spec.fall = 2;
    spec.rise = 2;
    tracker.add_nginx(spec).expect("add");
    let ev = next_event(&mut rx).await;
    assert_eq!((ev.kind, ev.state), (ItemKind::Nginx, CheckState::Up));
    status.store(503, Ordering::Relaxed);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.state, CheckState::Down);
    assert!(ev.detail.contains("503"), "{}", ev.detail);
    status.store(200, Ordering::Relaxed);
    assert_eq!(next_event(&mut rx).await.state, CheckState::Up);
    tracker.shutdown().await;

    let (tx, _rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    assert!(tracker
        .add_nginx(NginxCheckSpec::new("tls", "https://127.0.0.1/"))
        .is_err());
}

#[tokio::test]
async fn track_file_values() {
    let d = TempDir::new("tfile");
    let path = d.path().join("manual-failover");
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    let mut spec = FileSpec::new("failover", &path);
    spec.poll_interval = Duration::from_millis(20);
    tracker.add_file(spec).expect("add");
    // Missing file counts as 0.
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.state, CheckState::Value(0));
    assert!(ev.detail.contains("unreadable"), "{}", ev.detail);
    std::fs::write(&path, "-50\n").expect("write");
    assert_eq!(next_event(&mut rx).await.state, CheckState::Value(-50));
    std::fs::write(&path, "1000").expect("write");
    assert_eq!(next_event(&mut rx).await.state, CheckState::Value(254));
    std::fs::remove_file(&path).expect("rm");
    assert_eq!(next_event(&mut rx).await.state, CheckState::Value(0));
    tracker.shutdown().await;

    // init_file writes the value unless the file exists (or overwrite is set).
    let p2 = d.path().join("init");
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    let mut spec = FileSpec::new("init", &p2);
    spec.poll_interval = Duration::from_millis(20);
    spec.init_file = Some(FileInit {
        value: 5,
        overwrite: false,
    });
    tracker.add_file(spec.clone()).expect("add");
    assert_eq!(next_event(&mut rx).await.state, CheckState::Value(5));
    tracker.shutdown().await;
    std::fs::write(&p2, "7\n").expect("write");
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    tracker.add_file(spec.clone()).expect("add");
    assert_eq!(next_event(&mut rx).await.state, CheckState::Value(7));
    tracker.shutdown().await;
    spec.init_file = Some(FileInit {
        value: 3,
        overwrite: true,
    });
    let (tx, mut rx) = mpsc::channel(16);
    let mut tracker = Tracker::new(tx);
    tracker.add_file(spec).expect("add");
    assert_eq!(next_event(&mut rx).await.state, CheckState::Value(3));
    tracker.shutdown().await;
}
