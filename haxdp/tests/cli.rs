//! The binary's keepalived 2.2.7 command line: `--signum` prints keepalived's numbers, `-t`
//! exits as keepalived's config test, `-i` selects `@ID` lines, `-v` is the version and
//! `-V` is not.

use std::process::Command;

fn haxdp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_haxdp"))
        .args(args)
        .output()
        .expect("run haxdp")
}

fn conf(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("haxdp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  \
    virtual_router_id 51\n  priority 100\n  advert_int 1\n  \
    virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n";

#[test]
fn signum_prints_keepalived_numbers() {
    for (name, n) in [
        ("STOP", "15"),
        ("RELOAD", "1"),
        ("DATA", "10"),
        ("STATS", "12"),
        ("STATS_CLEAR", "63"),
        ("JSON", "36"),
    ] {
        let out = haxdp(&[&format!("--signum={name}")]);
        assert!(out.status.success(), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{n}\n"),
            "{name}"
        );
    }
    let out = haxdp(&["--signum=TDUMP"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown sigfunc TDUMP"));
}

#[test]
fn config_test_exit_codes_and_config_id() {
    let good = conf("good.conf", GOOD);
    let out = haxdp(&["-t", "-f", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let bad = conf("bad.conf", "vrrp_instance VI_1 {\n  priorty 100\n}\n");
    let out = haxdp(&["-t", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let missing = haxdp(&["--config-test", "-f", "/nonexistent/keepalived.conf"]);
    assert_eq!(missing.status.code(), Some(4));
    // `@lbx` lines apply only where the config id is lbx.
    let cond = conf(
        "cond.conf",
        &GOOD.replace("  priority 100\n", "  priority 100\n@lbx  priorty 7\n"),
    );
    let out = haxdp(&["-t", "-f", cond.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "@lbx applied without -i lbx: {out:?}"
    );
    let out = haxdp(&["-t", "-i", "lbx", "-f", cond.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "-i lbx did not select the @lbx line: {out:?}"
    );
    let out = haxdp(&["--config-id=lby", "-t", "-f", cond.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn version_is_v_and_capital_v_is_not() {
    let out = haxdp(&["-v"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("haxdp "));
    // -V is --dont-release-vrrp: with -t it only checks the file, never prints a version.
    let good = conf("v.conf", GOOD);
    let out = haxdp(&["-V", "-t", "-f", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).starts_with("haxdp "));
    // -C (checkers only) would run nothing: refused.
    let out = haxdp(&["-C", "-f", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
}
