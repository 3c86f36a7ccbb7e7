//! The reader: comments, quoting, braces, includes, @host lines, CRLF, and malformed input
//! that must give a clear error with its line.

mod common;

use std::path::Path;

use common::*;
use haxdp_config::{load_with, parse_bytes, LoadError, ReadOptions, Severity};

#[test]
fn comments_quotes_and_braces() {
    let text = "! comment\n\
# another\n\
global_defs   {   # trailing comment\n\
\trouter_id\t r1   ! bang comment\n\
}\n\
vrrp_script chk{ \n\
  script \"[[ -f /x ]] && exit 1 || exit 0\"   # 注释\n\
}\n\
vrrp_instance VI_1\n\
{\n\
    interface eth0\n\
    virtual_router_id 51\n\
    authentication {\n\
        auth_type PASS\n\
        auth_pass ab#cd!ef\n\
    }\n\
    track_script { chk weight -5 reverse }\n\
    virtual_ipaddress { 192.0.2.10/24 dev eth1 label eth1:vip scope global brd + no_track }\n\
}\n";
    let l = ok(text);
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("r1"));
    assert_eq!(
        c.script("chk").map(|s| s.script.as_str()),
        Some("[[ -f /x ]] && exit 1 || exit 0")
    );
    let i = &c.instances[0];
    // '#' and '!' inside a word are not comments (keepalived keeps `ab#cd!ef`).
    assert_eq!(i.auth.map(|a| a.bytes), Some(*b"ab#cd!ef"));
    assert_eq!(
        i.track_scripts[0].weight.map(|w| (w.value, w.reverse)),
        Some((-5, true))
    );
    let v = &i.vips[0];
    assert_eq!(v.dev, "eth1");
    assert_eq!(v.label.as_deref(), Some("eth1:vip"));
    assert_eq!(v.brd, Some("192.0.2.255".parse().expect("addr")));
    assert!(v.no_track);
}

#[test]
fn crlf_files() {
    let text = instance("    nopreempt\n").replace('\n', "\r\n");
    let l = ok(&text);
    assert!(l.config.instances[0].nopreempt);
    assert_eq!(l.config.instances[0].interface, "eth0");
}

#[test]
fn unclosed_brace_names_the_opening_line() {
    let d = refused("vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        192.0.2.1\n    }\n");
    has_error(&d, 1, "never closed");
}

#[test]
fn extra_closing_brace() {
    let text = format!("{}}}\n", instance(""));
    let d = refused(&text);
    has_error(&d, 9, "unexpected '}'");
}

#[test]
fn unterminated_quote() {
    let d = refused(&format!(
        "vrrp_script s {{\n  script \"/bin/true\n}}\n{}",
        instance("")
    ));
    has_error(&d, 2, "unterminated quoted string");
}

#[test]
fn unknown_keywords() {
    // Top level and global_defs: a warning, as keepalived does.
    let l = ok(&format!(
        "frobnicate 1\nglobal_defs {{\n  frob 2\n}}\n{}",
        instance("")
    ));
    has_diag(
        &l.diagnostics,
        Severity::Warning,
        1,
        "unknown keyword 'frobnicate'",
    );
    has_diag(&l.diagnostics, Severity::Warning, 3, "'frob'");
    // Inside vrrp_instance: an error, a typo would change the election.
    let d = refused(&instance("    priorty 150\n"));
    has_error(&d, 5, "unknown vrrp_instance keyword 'priorty'");
    // A keepalived keyword haxdp does not implement: a warning.
    let l = ok(&instance("    use_vmac\n"));
    has_diag(&l.diagnostics, Severity::Warning, 5, "not supported");
    // Inside vrrp_script: an error.
    let d = refused(&format!(
        "vrrp_script s {{\n  script /bin/true\n  intreval 2\n}}\n{}",
        instance("")
    ));
    has_error(&d, 3, "intreval");
}

#[test]
fn bad_numbers() {
    has_error(
        &refused(&instance("    advert_int fast\n")),
        5,
        "not a number of seconds",
    );
    has_error(
        &refused(&instance("    priority 1e2\n")),
        5,
        "'1e2' is not a whole number",
    );
    let d = refused(&instance("    preempt_delay -3\n"));
    has_error(&d, 5, "preempt_delay");
    let d = refused("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 0x33\n}\n");
    has_error(&d, 3, "'0x33' is not a whole number");
}

#[test]
fn bad_addresses() {
    let d = refused("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.300/24\n }\n}\n");
    has_error(&d, 5, "'192.0.2.300' is not an IPv4 or IPv6 address");
    let d = refused("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.3/33\n }\n}\n");
    has_error(&d, 5, "prefix length");
    let d = refused(&instance(
        "    unicast_peer {\n        198.51.100.999\n    }\n",
    ));
    has_error(&d, 6, "198.51.100.999");
    // Two addresses on one line: the second is read as an option, as keepalived does.
    let d = refused("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress { 192.0.2.1 192.0.2.2 }\n}\n");
    has_error(&d, 4, "one address per line");
}

#[test]
fn binary_garbage() {
    let mut bytes = b"vrrp_instance VI_1 {\n".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x00, 0x13, b'\n']);
    bytes.extend_from_slice(b"}\n");
    let e = parse_bytes(Path::new("bin.conf"), &bytes, &ReadOptions::default());
    let Err(LoadError::Invalid { diagnostics, .. }) = e else {
        panic!("binary accepted: {e:?}")
    };
    has_error(&diagnostics, 2, "binary");
    // A whole binary file stops after a bounded number of errors.
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = parse_bytes(Path::new("junk.conf"), &junk, &ReadOptions::default());
    let Err(LoadError::Invalid { diagnostics, .. }) = e else {
        panic!("junk accepted")
    };
    assert!(diagnostics.len() < 40, "{} diagnostics", diagnostics.len());
}

#[test]
fn gbk_comment_is_still_a_comment() {
    // A comment saved in GBK is not UTF-8; it is a comment all the same.
    let mut bytes = instance("").into_bytes();
    let pos = bytes.iter().position(|&b| b == b'\n').expect("newline");
    let mut tail = bytes.split_off(pos);
    bytes.extend_from_slice(b" # \xc4\xe3\xba\xc3");
    bytes.append(&mut tail);
    let l = parse_bytes(Path::new("gbk.conf"), &bytes, &ReadOptions::default());
    assert!(l.is_ok(), "{l:?}");
}

#[test]
fn an_undefined_parameter_as_a_keyword_is_refused() {
    let d = refused(&format!("$INSTANCE\n$IF=eth0\n{}", instance("")));
    has_error(
        &d,
        1,
        "'$INSTANCE' names no parameter defined before this line",
    );
}

#[test]
fn no_instance_is_an_error() {
    let d = refused("global_defs {\n router_id x\n}\n");
    has_error(&d, 0, "no vrrp_instance");
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let text = "{".repeat(100_000);
    let d = refused(&text);
    assert!(d.iter().any(|d| d.message.contains("nested deeper")));
}

#[test]
fn includes_with_globs_relative_to_the_including_file() {
    let t = TempDir::new("inc");
    t.write(
        "conf.d/10-script.conf",
        b"vrrp_script chk {\n  script /bin/true\n}\n",
    );
    t.write(
        "conf.d/20-vi.conf",
        instance("    track_script {\n        chk\n    }\n").as_bytes(),
    );
    t.write("conf.d/README", b"not included: does not match the glob\n");
    let main = t.write(
        "keepalived.conf",
        b"global_defs {\n  router_id inc\n}\ninclude conf.d/*.conf\n",
    );
    let l = load_with(&main, &ReadOptions::default()).expect("loads");
    assert_eq!(l.config.instances.len(), 1);
    assert_eq!(l.config.instances[0].track_scripts[0].name, "chk");
    assert_eq!(l.config.instances[0].location.line, 1);
    assert!(l.config.instances[0]
        .location
        .file
        .ends_with("conf.d/20-vi.conf"));
}

#[test]
fn include_loop_is_an_error_with_its_line() {
    let t = TempDir::new("loop");
    t.write("a.conf", b"! a\ninclude b.conf\n");
    t.write("b.conf", b"include a.conf\n");
    let main = t.0.join("a.conf");
    let Err(LoadError::Invalid { diagnostics, .. }) = load_with(&main, &ReadOptions::default())
    else {
        panic!("loop accepted")
    };
    let d = diagnostics
        .iter()
        .find(|d| d.message.contains("include loop"))
        .expect("loop diagnostic");
    assert_eq!(d.line, 1);
    assert!(d.file.ends_with("b.conf"), "{d}");
    // A file including itself.
    t.write("self.conf", b"\n\ninclude self.conf\n");
    let Err(LoadError::Invalid { diagnostics, .. }) =
        load_with(&t.0.join("self.conf"), &ReadOptions::default())
    else {
        panic!("self include accepted")
    };
    has_error(&diagnostics, 3, "include loop");
}

#[test]
fn include_of_missing_file_warns() {
    let t = TempDir::new("miss");
    let main = t.write(
        "k.conf",
        format!("include nothing-*.conf\n{}", instance("")).as_bytes(),
    );
    let l = load_with(&main, &ReadOptions::default()).expect("loads");
    has_diag(&l.diagnostics, Severity::Warning, 1, "matched no file");
}

#[test]
fn host_conditional_lines() {
    let text = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n @lb1 priority 150\n @^lb1 priority 50\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n";
    let on = |id: Option<&str>| {
        let opts = ReadOptions {
            config_id: id.map(str::to_string),
        };
        parse_bytes(Path::new("h.conf"), text.as_bytes(), &opts)
            .expect("loads")
            .config
            .instances[0]
            .priority
    };
    assert_eq!(on(Some("lb1")), 150);
    assert_eq!(on(Some("lb2")), 50);
    assert_eq!(on(None), 50);
}

#[test]
fn unreadable_file() {
    let e = load_with(
        Path::new("/nonexistent/haxdp/keepalived.conf"),
        &ReadOptions::default(),
    );
    let Err(e @ LoadError::Unreadable { .. }) = e else {
        panic!("expected unreadable: {e:?}")
    };
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("cannot read"));
}

#[test]
fn diagnostic_display_is_file_line_severity_message() {
    let d = refused(&instance("    priority 300\n"));
    let line = d
        .iter()
        .find(|d| d.keyword == "priority")
        .expect("priority diag")
        .to_string();
    assert_eq!(
        line,
        "test.conf:5: error: priority: 300 is out of range: must be 1 to 255"
    );
}

/// keepalived.conf(5) "Parameter substitution": `$NAME=VALUE`, `$NAME` before whitespace,
/// `${NAME}` anywhere, recursive at the time of use, undefined names left alone, `@ID`
/// definitions, multiline definitions.
#[test]
fn parameter_substitution() {
    let text = "\
$VRID=51
@lb1 $PRIO=150
@^lb1 $PRIO=100
$BASE=192.0.${NET}.1${SUB}
$NET=2
$SUB=0
$CHECK= \\
vrrp_script chk { \\
    script \"/bin/true\" \\
}
$CHECK
vrrp_instance VI_1 {
 interface eth0
 virtual_router_id $VRID
 priority $PRIO
 notify \"/bin/echo $HOME ${UNDEFINED}\"
 virtual_ipaddress {
  ${BASE}/24
$SUB=1
  ${BASE}/24
 }
 track_script {
  chk
 }
}
";
    let on = |id: Option<&str>| {
        let opts = ReadOptions {
            config_id: id.map(str::to_string),
        };
        parse_bytes(Path::new("p.conf"), text.as_bytes(), &opts).expect("loads")
    };
    let l = on(Some("lb1"));
    let i = &l.config.instances[0];
    assert_eq!((i.vrid, i.priority), (51, 150));
    let vips: Vec<String> = i.vips.iter().map(|v| v.address.to_string()).collect();
    assert_eq!(vips, ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(on(None).config.instances[0].priority, 100);
    // An undefined parameter stays as written (a `$` in a script is not eaten).
    assert_eq!(
        i.notify.notify.as_ref().map(|n| n.command.as_str()),
        Some("/bin/echo $HOME ${UNDEFINED}")
    );
    assert_eq!(l.config.scripts[0].script, "/bin/true");
    // Lines keep their own numbers: the instance starts on line 12.
    assert_eq!(i.location.line, 12);
}

#[test]
fn parameter_loops_and_open_definitions_are_errors_not_hangs() {
    let d = refused(&format!(
        "$A=x${{A}}\n{}",
        instance("    priority ${A}\n").replace("priority 100\n", "")
    ));
    has_error(&d, 5, "keeps expanding");
    let d = refused(&format!("{}$TAIL= \\\n  router_id x \\", instance("")));
    assert!(
        d.iter().any(|d| d
            .message
            .contains("multiline definition of $TAIL is still open")),
        "{d:?}"
    );
}

/// Files that each include their whole directory are read once each: before, the loop
/// check let every ordering through, 8 files took 8! reads.
#[test]
fn files_including_their_directory_are_read_once_each() {
    let dir = std::env::temp_dir().join(format!("haxdp-incl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    for i in 0..8 {
        std::fs::write(
            dir.join("conf.d").join(format!("f{i}.conf")),
            format!(
                "include {}/conf.d/*.conf\nvrrp_script s{i} {{\n  script /bin/true\n}}\n",
                dir.display()
            ),
        )
        .unwrap();
    }
    let top = dir.join("keepalived.conf");
    std::fs::write(&top, format!("include {}/conf.d/*.conf\n", dir.display())).unwrap();
    let t0 = std::time::Instant::now();
    let loaded = haxdp_config::load(&top);
    let took = t0.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    // Each file includes itself (a loop, refused) and the others: once each now.
    let diags = match loaded {
        Ok(l) => l.diagnostics,
        Err(haxdp_config::LoadError::Invalid { diagnostics, .. }) => diagnostics,
        Err(e) => panic!("{e}"),
    };
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(diags.len() < 8 * 8 + 8, "{} diagnostics", diags.len());
}
