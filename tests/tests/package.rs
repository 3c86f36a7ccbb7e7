//! The Debian package `cargo xtask deb` builds (`cargo xtask test` builds it before this
//! test runs): its contents, conffiles and unit, then installed on this machine, checked
//! (`systemd-analyze verify`, the binary, the man page, not enabled, nothing started) and
//! purged again. Root.

use std::path::PathBuf;
use std::process::Command;

use haxdp_tests::{require_root, workspace_bin};

fn deb() -> PathBuf {
    // target/<profile>/haxdp -> target/debian/
    let target = workspace_bin("haxdp")
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("debian"))
        .expect("target dir");
    std::fs::read_dir(&target)
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "deb"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no .deb in {}: run `cargo xtask deb` (cargo xtask test does)",
                target.display()
            )
        })
}

fn out(cmd: &mut Command) -> (bool, String) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn deb_contents_unit_and_install() {
    require_root();
    let deb = deb();
    let (ok, list) = out(Command::new("dpkg-deb").arg("-c").arg(&deb));
    assert!(ok, "{list}");
    for path in [
        "./usr/sbin/haxdp",
        "./usr/lib/systemd/system/haxdp.service",
        "./etc/default/haxdp",
        "./usr/share/man/man8/haxdp.8.gz",
        "./usr/share/bash-completion/completions/haxdp",
        "./usr/share/zsh/vendor-completions/_haxdp",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(path)),
            "{path} missing:\n{list}"
        );
    }
    let ctl = std::env::temp_dir().join(format!("haxdp-deb-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ctl);
    let (ok, msg) = out(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl));
    assert!(ok, "{msg}");
    let conffiles = std::fs::read_to_string(ctl.join("conffiles")).unwrap_or_default();
    assert!(conffiles.contains("/etc/default/haxdp"), "{conffiles}");
    let postinst = std::fs::read_to_string(ctl.join("postinst")).unwrap();
    let starts = postinst.lines().map(str::trim).any(|l| {
        !l.starts_with('#')
            && !l.starts_with("echo")
            && !l.starts_with('"')
            && (l.contains("deb-systemd-invoke")
                || l.contains("systemctl start")
                || l.contains("systemctl restart")
                || l.contains("try-restart"))
    });
    assert!(
        !starts,
        "postinst starts or restarts the daemon (a failover on upgrade):\n{postinst}"
    );
    // The upgrade path that does not move a VIP: the running daemon hands over.
    assert!(
        postinst.contains("/usr/sbin/haxdp upgrade"),
        "postinst does not hand over to the new binary:\n{postinst}"
    );
    let _ = std::fs::remove_dir_all(&ctl);

    let was_installed = out(Command::new("dpkg").args(["-s", "haxdp"])).0;
    let (ok, msg) = out(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(ok, "dpkg -i: {msg}");
    let unit = "/usr/lib/systemd/system/haxdp.service";
    let text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "WatchdogSec=",
        "Conflicts=keepalived.service",
        "CapabilityBoundingSet=",
        "EnvironmentFile=-/etc/default/haxdp",
    ] {
        assert!(text.contains(line), "{line} missing in the unit:\n{text}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let (ok, msg) = out(Command::new("systemd-analyze").args(["verify", unit]));
        assert!(ok && msg.trim().is_empty(), "systemd-analyze verify: {msg}");
    }
    let (ok, n) = out(Command::new("/usr/sbin/haxdp").arg("--signum=JSON"));
    assert!(ok && n.trim() == "36", "{n}");
    if Command::new("man").arg("--version").output().is_ok() {
        let (ok, page) = out(Command::new("man").args(["-P", "cat", "8", "haxdp"]));
        assert!(ok && page.contains("SIGNALS"), "{page}");
    }
    // Installing neither enables nor starts it (it conflicts with keepalived.service).
    assert!(
        !std::path::Path::new("/etc/systemd/system/multi-user.target.wants/haxdp.service").exists(),
        "the package enabled haxdp.service"
    );
    if !was_installed {
        let (ok, msg) = out(Command::new("dpkg").args(["--purge", "haxdp"]));
        assert!(ok, "dpkg --purge: {msg}");
    }
}
