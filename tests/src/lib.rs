//! Helpers for root tests in network namespaces: a LAN of namespaces on a
//! bridge, processes started inside them and ended by pid, and clean-up that
//! runs on drop, also when a test panics.
//!
//! Every name carries the test process's pid and a counter, so parallel and
//! repeated runs never collide; only documentation addresses are used
//! (192.0.2.0/24, 2001:db8::/32).

pub mod chaos;
pub mod flood;
pub mod forge;
pub mod frames;
pub mod node;
pub mod observe;
pub mod prober;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short unique tag: interface names are limited to 15 bytes.
pub fn unique_tag() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{n:x}", std::process::id() & 0xfffff)
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Panics unless the test runs as root: these tests must not skip silently.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (CAP_NET_ADMIN, CAP_BPF): run it through `cargo xtask test` as root"
    );
}

/// Fails the test, naming the Debian package, when `program` is not on the PATH.
pub fn require_program(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh")
        .status
        .success();
    assert!(
        found,
        "{program} is not installed: `cargo xtask test` installs it (apt-get install {package})"
    );
}

/// A network namespace that is deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Self {
        let name = format!("hx{prefix}{}", unique_tag());
        sh(&["ip", "netns", "add", &name]);
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace and waits for it, panicking on failure.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Runs a command inside the namespace, returning its output whatever the status.
    pub fn try_exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }

    /// Starts a long-running process in the namespace's network only (`nsenter --net`),
    /// in the host's mount namespace: unlike `ip netns exec`, which gives each process a
    /// mount namespace of its own with a fresh /sys (and so a private bpffs when the
    /// daemon mounts one), the BPF pins outlive the process, as under systemd.
    pub fn spawn_net_only(&self, args: &[&str], log: &Path) -> Proc {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.name)).arg("--");
        self.spawn_with(cmd, args, log)
    }

    /// Starts a long-running process inside the namespace.
    pub fn spawn(&self, args: &[&str], log: &Path) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        self.spawn_with(cmd, args, log)
    }

    /// `cmd args`, its output to `log`.
    fn spawn_with(&self, mut cmd: Command, args: &[&str], log: &Path) -> Proc {
        let f = fs::File::create(log).unwrap_or_else(|e| panic!("cannot create {log:?}: {e}"));
        let f2 = f.try_clone().expect("dup log file");
        let child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {}: {e}", self.name));
        Proc {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes still inside would keep the namespace's interfaces alive.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: pids listed inside our own namespace: ours.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        // A daemon killed with SIGKILL (crash drills) leaves its BPF pins, which bpffs
        // keeps for the whole host, under the namespace's inode: remove them with it.
        let inode = std::fs::metadata(format!("/run/netns/{}", self.name))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .ok();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if let Some(ino) = inode {
            let _ = std::fs::remove_dir_all(format!("/sys/fs/bpf/haxdp/{ino}"));
        }
    }
}

/// A process we started; killed by pid on drop.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// The pid of the process inside the namespace (`ip netns exec` execs
    /// the command in place, so it is the child's pid).
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.pid();
        if pid > 0 {
            // SAFETY: signalling a child we started.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Waits for the process to exit, up to `timeout`; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Some(st.code().unwrap_or(128 + st_signal(&st)));
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn st_signal(st: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.signal().unwrap_or(0)
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A LAN: one bridge namespace and hosts attached to it by veth pairs. Each
/// host's LAN interface is called `eth0` inside its namespace.
pub struct Lan {
    pub bridge: Netns,
    pub hosts: Vec<Netns>,
}

impl Lan {
    /// Creates `n` hosts; host i gets 192.0.2.(10+i)/24 and 2001:db8::(10+i)/64.
    pub fn new(n: usize) -> Self {
        let bridge = Netns::new("br");
        bridge.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        bridge.exec(&["ip", "link", "set", "br0", "up"]);
        let mut lan = Lan {
            bridge,
            hosts: Vec::new(),
        };
        for i in 0..n {
            lan.add_host(i);
        }
        lan
    }

    fn add_host(&mut self, i: usize) {
        let host = Netns::new("h");
        self.plug(&host, i);
        self.hosts.push(host);
    }

    /// Deletes host i's `eth0` (the veth pair goes with it) and creates it again, with
    /// the same name, MAC and addresses but a new ifindex: what a re-created VLAN or bond
    /// interface, or a restarted network, looks like to a daemon.
    pub fn recreate_link(&self, i: usize) {
        self.hosts[i].exec(&["ip", "link", "del", "eth0"]);
        self.plug(&self.hosts[i], i);
    }

    /// Host i's `eth0`: a veth pair whose other end is a port of the bridge.
    fn plug(&self, host: &Netns, i: usize) {
        let tag = unique_tag();
        let a = format!("hxa{tag}");
        let b = format!("hxb{tag}");
        sh(&[
            "ip",
            "link",
            "add",
            &a,
            "netns",
            &host.name,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &self.bridge.name,
        ]);
        host.exec(&["ip", "link", "set", &a, "name", "eth0"]);
        host.exec(&[
            "ip",
            "link",
            "set",
            "eth0",
            "address",
            &format!("02:00:00:00:01:{:02x}", 10 + i),
        ]);
        // IPv6 addresses usable at once: no duplicate address detection.
        host.exec(&["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"]);
        host.exec(&["ip", "link", "set", "eth0", "up"]);
        host.exec(&[
            "ip",
            "addr",
            "add",
            &format!("192.0.2.{}/24", 10 + i),
            "dev",
            "eth0",
        ]);
        host.exec(&[
            "ip",
            "addr",
            "add",
            &format!("2001:db8::{}/64", 10 + i),
            "dev",
            "eth0",
            "nodad",
        ]);
        self.bridge
            .exec(&["ip", "link", "set", &b, "master", "br0"]);
        self.bridge.exec(&["ip", "link", "set", &b, "up"]);
    }

    /// The bridge-side port name of host i (for netem or link-down drills).
    pub fn port_of(&self, i: usize) -> String {
        let out = self.hosts[i].exec(&["cat", "/sys/class/net/eth0/iflink"]);
        let peer: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("iflink is a number");
        let out = self.bridge.exec(&["ip", "-o", "link"]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut parts = line.split(": ");
            let idx = parts.next().unwrap_or("").trim();
            let name = parts.next().unwrap_or("");
            if idx == peer.to_string() {
                return name.split('@').next().unwrap_or(name).to_string();
            }
        }
        panic!("no bridge port for host {i}");
    }
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A scratch directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("haxdp-{prefix}-{}", unique_tag()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {path:?}: {e}"));
        Self { path }
    }

    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::write(&p, contents).unwrap_or_else(|e| panic!("cannot write {p:?}: {e}"));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("HAXDP_KEEP_TEST_DIRS").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Path of a binary built by this workspace (`target/<profile>/NAME`).
pub fn workspace_bin(name: &str) -> PathBuf {
    // tests run from target/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("test binary lives in target/<profile>/deps");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{p:?} is missing: build it first (`cargo build -p {name}`; `cargo xtask test` does)"
    );
    p
}
