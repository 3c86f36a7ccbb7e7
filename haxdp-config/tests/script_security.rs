//! `enable_script_security` as keepalived 2.2.7 checks scripts (lib/notify.c
//! check_security): every path component owned by root, no file or non-sticky directory
//! writable by a non-root group or by others, and the target of a symlink checked too.
//! chown needs root; as another user the test says so and checks nothing.

use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use haxdp_config::{load_with, LoadError, ReadOptions};

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn conf(script: &Path) -> String {
    format!(
        "global_defs {{\n enable_script_security\n}}\nvrrp_script s {{\n script {}\n}}\n\
         vrrp_instance VI_1 {{\n state BACKUP\n interface eth0\n virtual_router_id 51\n \
         priority 100\n advert_int 1\n track_script {{\n  s\n }}\n \
         virtual_ipaddress {{\n  192.0.2.100/24\n }}\n}}\n",
        script.display()
    )
}

fn verdict(dir: &Path, script: &Path) -> Result<(), String> {
    let p = dir.join("k.conf");
    std::fs::write(&p, conf(script)).unwrap();
    match load_with(&p, &ReadOptions::default()) {
        Ok(_) => Ok(()),
        Err(LoadError::Invalid { diagnostics, .. }) => Err(diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn group_writable_and_foreign_owned_components_are_refused() {
    if !is_root() {
        eprintln!("script_security: needs root for chown; skipped");
        return;
    }
    // Not under /tmp's sticky bit alone: a directory of our own, 0755, root's.
    let d = Dir(std::env::temp_dir().join(format!("haxdp-scriptsec-{}", std::process::id())));
    let bin = d.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let set = |p: &Path, mode: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(mode));
    set(&d.0, 0o755).unwrap();
    set(&bin, 0o755).unwrap();
    let script = bin.join("chk.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    set(&script, 0o755).unwrap();
    assert_eq!(verdict(&d.0, &script), Ok(()));

    // A directory writable by a group that is not root's.
    chown(&bin, Some(0), Some(65534)).unwrap();
    set(&bin, 0o775).unwrap();
    let e = verdict(&d.0, &script).expect_err("group-writable script dir accepted");
    assert!(e.contains("writable by group 65534"), "{e}");
    // Group-writable by root's group is keepalived's "safe".
    chown(&bin, Some(0), Some(0)).unwrap();
    assert_eq!(verdict(&d.0, &script), Ok(()));
    set(&bin, 0o755).unwrap();

    // A script owned by another user.
    chown(&script, Some(65534), None).unwrap();
    let e = verdict(&d.0, &script).expect_err("foreign-owned script accepted");
    assert!(e.contains("owned by uid 65534"), "{e}");
    chown(&script, Some(0), None).unwrap();

    // A symlink whose target lies in an unsafe directory.
    let bad = d.0.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    chown(&bad, Some(0), Some(65534)).unwrap();
    set(&bad, 0o775).unwrap();
    let target = bad.join("real.sh");
    std::fs::write(&target, "#!/bin/sh\nexit 0\n").unwrap();
    set(&target, 0o755).unwrap();
    let link = bin.join("link.sh");
    symlink(&target, &link).unwrap();
    let e = verdict(&d.0, &link).expect_err("symlink into an unsafe dir accepted");
    assert!(e.contains("writable by group 65534"), "{e}");
}
