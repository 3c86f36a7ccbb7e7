use super::config::*;
use super::harness::*;
use super::report::*;
use super::stats::*;
use super::Kind;

#[test]
fn ping_gap_counts_from_the_last_reply_before_the_crash() {
    let text = "PING 192.0.2.100 (192.0.2.100) 56(84) bytes of data.\n\
[100.000] 64 bytes from 192.0.2.100: icmp_seq=1 ttl=64 time=0.1 ms\n\
[100.001] 64 bytes from 192.0.2.100: icmp_seq=2 ttl=64 time=0.1 ms\n\
[100.400] 64 bytes from 192.0.2.100: icmp_seq=300 ttl=64 time=0.1 ms\n\
[100.401] 64 bytes from 192.0.2.100: icmp_seq=301 ttl=64 time=0.1 ms\n";
    let r = ping_replies(text);
    assert_eq!(r.len(), 4);
    let gap = longest_reply_gap(&r, 100.0005).expect("a gap");
    assert!((gap - 0.399).abs() < 1e-6, "{gap}");
    assert_eq!(
        longest_reply_gap(&r, 200.0),
        None,
        "no reply after: no figure"
    );
}

#[test]
fn transitions_are_counted_per_daemon() {
    let ka = "Sun Nov 22 (VI_51) Entering BACKUP STATE (init)\n(VI_51) Entering MASTER STATE\n";
    assert_eq!(
        count_transitions(Kind::Keepalived, ka),
        Transitions {
            to_master: 1,
            to_backup: 1
        }
    );
    let hx =
        "INFO VI_51: Initialize -> Backup (Startup)\nINFO VI_51: Backup -> Master (MasterDown)\n";
    assert_eq!(
        count_transitions(Kind::Haxdp, hx),
        Transitions {
            to_master: 1,
            to_backup: 1
        }
    );
    assert_eq!(
        receive_path("x INFO eth0: receive path socket\n").as_deref(),
        Some("socket")
    );
}

#[test]
fn master_down_interval_follows_rfc_9568() {
    // 3 * 50 ms + (256 - 90) * 50 ms / 256
    assert!((master_down_interval(3, 90, 0.05) - 0.182_421_875).abs() < 1e-9);
    // VRRPv2 skew is (256 - prio) / 256 seconds whatever the interval.
    assert!((master_down_interval(2, 90, 1.0) - 3.648_437_5).abs() < 1e-9);
}

#[test]
fn config_renders_the_seeds_syntax() {
    let mut i = InstanceConf::new(51, 100, 2, "1", "192.0.2.100/24");
    i.auth = true;
    i.track_script = Some("chk_nginx".into());
    let c = config("lb1", "", &[i]);
    assert!(c.contains("state MASTER"), "{c}");
    assert!(c.contains("auth_pass 1111"), "{c}");
    assert!(
        c.contains("track_script {\n        chk_nginx\n    }"),
        "{c}"
    );
    assert!(c.contains("virtual_router_id 51"), "{c}");
}

#[test]
fn ratio_and_medians() {
    assert_eq!(median_max(&[3.0, 1.0, 2.0]), Some((2.0, 3.0)));
    assert_eq!(median_max(&[1.0, 2.0, 3.0, 4.0]), Some((2.5, 4.0)));
    assert_eq!(median_max(&[]), None);
    assert_eq!(fmt_ratio(Some(2.0), Some(1.0), Unit::Ms), "0.50x");
    assert_eq!(fmt_ratio(Some(0.0), Some(0.0), Unit::Count), "equal");
    assert_eq!(fmt_ratio(Some(0.0), Some(3.0), Unit::Count), "-");
}
