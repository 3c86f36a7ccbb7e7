//! Local hardening (issue 13): a squatted control name does not stop the daemon and the
//! client does not trust the squatter; state files are never written through symlinks.
//! Root: namespaces and an unprivileged squatter process (uid 65534) created here.

use std::time::Duration;

use haxdp_tests::node::{haxdp_config, wait_vip, Node, Rx};
use haxdp_tests::{require_root, wait_for, workspace_bin, Lan, Netns};

/// Binds `@haxdp/control` inside `ns` as uid/gid 65534 (nobody) and waits; returns the
/// squatter's pid. Only async-signal-safe calls after fork.
fn squat_control_name(ns: &Netns) -> i32 {
    let path = std::ffi::CString::new(format!("/run/netns/{}", ns.name)).unwrap();
    // SAFETY: open of a NUL-terminated path.
    let nsfd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(nsfd >= 0, "open {path:?}");
    // SAFETY: zeroed sockaddr_un, then the abstract name after the leading NUL.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let name = b"haxdp/control";
    for (i, b) in name.iter().enumerate() {
        addr.sun_path[1 + i] = *b as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    // SAFETY: the child makes only async-signal-safe system calls and never returns.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            if libc::setns(nsfd, libc::CLONE_NEWNET) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                libc::_exit(2);
            }
            let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if s < 0
                || libc::bind(s, (&addr as *const libc::sockaddr_un).cast(), len) != 0
                || libc::listen(s, 1) != 0
            {
                libc::_exit(3);
            }
            loop {
                libc::pause();
            }
        }
        libc::close(nsfd);
        pid
    }
}

#[test]
fn squatted_control_name_neither_stops_the_daemon_nor_fools_the_client() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let squatter = squat_control_name(h);
    // The name is taken before the daemon starts.
    let held = wait_for(Duration::from_secs(2), || {
        let out = h.try_exec(&["ss", "-xlp"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("@haxdp/control")
            .then_some(())
    });
    assert!(held.is_some(), "the squatter did not bind @haxdp/control");
    let node = Node::haxdp(
        h,
        "lb1",
        &haxdp_config("lb1", 100, 3, "0.1", ""),
        Rx::Socket,
    );
    assert!(
        wait_vip(h, true, Duration::from_secs(5)),
        "the daemon did not start with the control name squatted:\n{}",
        node.log()
    );
    assert!(
        node.log().contains("held by uid 65534"),
        "no clear message about the squatter:\n{}",
        node.log()
    );
    let bin = workspace_bin("haxdp");
    let out = h.try_exec(&[bin.to_str().unwrap(), "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("VI_1") && text.contains("MASTER"),
        "haxdp status did not reach the daemon past the squatter: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: our own child.
    unsafe {
        libc::kill(squatter, libc::SIGKILL);
        libc::waitpid(squatter, std::ptr::null_mut(), 0);
    }
    // With the squatter gone and nothing on the fallback, the client says so.
    node.proc().signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn state_files_are_not_written_through_symlinks() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let conf = haxdp_config("lb1", 100, 3, "0.1", "");
    // Node::haxdp starts at once; plant the links first in a directory of our own.
    let dir = haxdp_tests::TempDir::new("harden");
    let state = dir.path.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let victim = dir.file("victim", "precious\n");
    for name in ["VI_1.state", "VI_1.state.tmp"] {
        std::os::unix::fs::symlink(&victim, state.join(name)).unwrap();
    }
    let bin = workspace_bin("haxdp");
    let conf_path = dir.file("keepalived.conf", &conf);
    let mut p = h.spawn(
        &[
            bin.to_str().unwrap(),
            "-f",
            conf_path.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--no-xdp",
        ],
        &dir.path.join("haxdp.log"),
    );
    assert!(
        wait_vip(h, true, Duration::from_secs(5)),
        "{}",
        p.log_text()
    );
    let st = wait_for(Duration::from_secs(3), || {
        std::fs::read_to_string(state.join("VI_1.state"))
            .ok()
            .filter(|s| s == "STATE=MASTER\n")
    });
    assert!(st.is_some(), "no STATE=MASTER:\n{}", p.log_text());
    assert!(
        !std::fs::symlink_metadata(state.join("VI_1.state"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the state file is still a symlink"
    );
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "a state file was written through a symlink"
    );
}

/// A notify_fifo path that is a symlink (even to a real FIFO) is refused with a clear
/// message instead of being written through.
#[test]
fn notify_fifo_through_a_symlink_is_refused() {
    require_root();
    let lan = Lan::new(1);
    let h = &lan.hosts[0];
    let dir = haxdp_tests::TempDir::new("harden-fifo");
    let real = dir.path.join("real.fifo");
    let c = std::ffi::CString::new(real.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let link = dir.path.join("notify.fifo");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let conf = haxdp_config("lb1", 100, 3, "0.1", "").replacen(
        "global_defs {\n",
        &format!("global_defs {{\n  notify_fifo {}\n", link.display()),
        1,
    );
    let conf_path = dir.file("keepalived.conf", &conf);
    let bin = workspace_bin("haxdp");
    let mut p = h.spawn(
        &[
            bin.to_str().unwrap(),
            "-f",
            conf_path.to_str().unwrap(),
            "--state-dir",
            dir.path.join("state").to_str().unwrap(),
            "--no-xdp",
        ],
        &dir.path.join("haxdp.log"),
    );
    let code = p.wait_exit(Duration::from_secs(5));
    assert!(
        code.is_some_and(|c| c != 0),
        "started with notify_fifo at a symlink (exit {code:?}):\n{}",
        p.log_text()
    );
    assert!(p.log_text().contains("is not a FIFO"), "{}", p.log_text());
}
