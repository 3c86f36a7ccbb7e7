//! One test per rule of the state machine, each named for the RFC section (or keepalived
//! behaviour) it checks.

use std::net::IpAddr;

use haxdp_vrrp::fsm::{master_down_interval_ns, skew_ns, NS_PER_CS, TRANSITION_LOG_LEN};
use haxdp_vrrp::{
    Action, Advert, ConfigError, DiscardReason, Event, Family, Input, Instance, InstanceConfig,
    State, Version,
};

const MS: u64 = 1_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn cfg(version: Version, priority: u8) -> InstanceConfig {
    InstanceConfig {
        name: "VI_1".into(),
        vrid: 51,
        version,
        family: Family::V4,
        priority,
        advert_int_cs: 100,
        preempt: true,
        preempt_delay_cs: 0,
        accept: false,
        vips: vec![ip("192.0.2.100")],
        primary_addr: ip("192.0.2.10"),
        auth_pass: None,
        start_as_master: false,
        higher_prio_send_advert: false,
        address_owner: false,
    }
}

fn inst(c: InstanceConfig) -> Instance {
    Instance::new(c).expect("valid test config")
}

fn advert(version: Version, priority: u8, int_cs: u16) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority,
        max_adver_int_cs: int_cs,
        addrs: vec![ip("192.0.2.100")],
        auth: None,
    }
}

fn rx(i: &mut Instance, now: u64, src: &str, a: Advert) -> Vec<Action> {
    i.handle(
        now,
        Input::Advert {
            src: ip(src),
            advert: a,
            rx_ns: now,
        },
    )
}

/// The actions to perform, without the [`Action::Transition`] reports (checked on their
/// own in `transition_actions_report_every_change_last`).
fn effects(mut acts: Vec<Action>) -> Vec<Action> {
    acts.retain(|a| !matches!(a, Action::Transition { .. }));
    acts
}

const TO_MASTER: [Action; 5] = [
    Action::SendAdvert { priority: 100 },
    Action::AddVips,
    Action::SendGratuitous,
    Action::Notify {
        state: State::Master,
    },
    Action::ReportPeers,
];

/// Drives a fresh instance to Master through its master-down timer.
fn master(c: InstanceConfig) -> (Instance, u64) {
    let mut i = inst(c);
    i.handle(0, Input::Startup);
    let t = i
        .next_deadline()
        .expect("backup arms the master-down timer");
    i.handle(t, Input::Timer);
    assert_eq!(i.state(), State::Master);
    (i, t)
}

#[test]
fn rfc9568_6_1_master_down_interval_and_skew_v3() {
    // Skew_Time = ((256 - 100) * 100 cs) / 256 = 60.9375 cs.
    assert_eq!(skew_ns(Version::V3, 100, 100), 609_375_000);
    assert_eq!(
        master_down_interval_ns(Version::V3, 100, 100),
        3_000 * MS + 609_375_000
    );
    // Within one centisecond of the RFC's integer-centisecond formula for all inputs.
    for p in [1u8, 50, 100, 200, 254, 255] {
        for int in [1u16, 7, 100, 4095] {
            let rfc_cs = (256 - u64::from(p)) * u64::from(int) / 256;
            let ours = skew_ns(Version::V3, p, int);
            assert!(
                ours >= rfc_cs * NS_PER_CS && ours < (rfc_cs + 1) * NS_PER_CS,
                "{p} {int}"
            );
        }
    }
    // Sub-centisecond skews still order priorities at 1 cs intervals.
    assert!(skew_ns(Version::V3, 200, 1) < skew_ns(Version::V3, 100, 1));
    let i = inst(cfg(Version::V3, 100));
    assert_eq!(i.master_down_interval_ns(), 3_609_375_000);
}

#[test]
fn rfc3768_6_1_v2_skew_is_seconds_not_interval_scaled() {
    // keepalived / RFC 3768: Skew_Time = (256 - Priority) / 256 seconds.
    assert_eq!(skew_ns(Version::V2, 100, 100), 609_375_000);
    assert_eq!(skew_ns(Version::V2, 100, 300), 609_375_000);
    assert_eq!(
        master_down_interval_ns(Version::V2, 100, 300),
        9_000 * MS + 609_375_000
    );
}

#[test]
fn rfc9568_6_4_1_startup_goes_to_backup_with_master_down_timer() {
    let mut i = inst(cfg(Version::V3, 100));
    let a = effects(i.handle(5 * MS, Input::Startup));
    assert_eq!(
        a,
        [
            Action::RemoveVips,
            Action::Notify {
                state: State::Backup
            },
            Action::ReportPeers
        ]
    );
    assert_eq!(i.state(), State::Backup);
    assert_eq!(
        i.next_deadline(),
        Some(5 * MS + i.master_down_interval_ns())
    );
}

#[test]
fn rfc9568_6_4_1_address_owner_goes_straight_to_master() {
    let mut c = cfg(Version::V3, 255);
    c.address_owner = true;
    let mut i = inst(c);
    let a = effects(i.handle(0, Input::Startup));
    assert_eq!(
        a,
        [
            Action::SendAdvert { priority: 255 },
            Action::AddVips,
            Action::SendGratuitous,
            Action::Notify {
                state: State::Master
            },
            Action::ReportPeers
        ]
    );
    assert_eq!(i.next_deadline(), Some(1_000 * MS));
    // 255 without address_owner is refused.
    assert!(matches!(
        Instance::new(cfg(Version::V3, 255)),
        Err(ConfigError::OwnerPriority { .. })
    ));
}

#[test]
fn rfc9568_6_4_2_master_down_timer_makes_master() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    let t = i.next_deadline().expect("armed");
    // RFC 9568 6.4.2 fires only when the timer expires; an early Timer is ignored.
    assert!(i.handle(t - 1, Input::Timer).is_empty());
    assert_eq!(i.state(), State::Backup);
    assert_eq!(effects(i.handle(t, Input::Timer)), TO_MASTER);
    assert_eq!(i.master_addr(), Some(ip("192.0.2.10")));
    // RFC 9568 6.4.3: Adver_Timer then fires every Advertisement_Interval.
    assert_eq!(i.next_deadline(), Some(t + 1_000 * MS));
    let a = i.handle(t + 1_000 * MS, Input::Timer);
    assert_eq!(a, [Action::SendAdvert { priority: 100 }]);
    assert_eq!(i.next_deadline(), Some(t + 2_000 * MS));
    // A late wakeup keeps the cadence of the schedule.
    i.handle(t + 2_050 * MS, Input::Timer);
    assert_eq!(i.next_deadline(), Some(t + 3_000 * MS));
}

#[test]
fn rfc9568_6_4_2_backup_resets_timer_from_kernel_timestamp() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    let a = i.handle(
        900 * MS,
        Input::Advert {
            src: ip("192.0.2.20"),
            advert: advert(Version::V3, 200, 100),
            rx_ns: 800 * MS,
        },
    );
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(
        i.next_deadline(),
        Some(800 * MS + i.master_down_interval_ns())
    );
    assert_eq!(i.master_addr(), Some(ip("192.0.2.20")));
}

#[test]
fn rfc9568_6_4_2_v3_backup_adopts_master_interval() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    // From a router it did not follow yet, one advert never shortens the interval
    // (a forged advert with 1 cs would otherwise fire the timer between two real ones).
    rx(&mut i, 5 * MS, "192.0.2.20", advert(Version::V3, 200, 50));
    assert_eq!(i.master_adver_int_cs(), 100);
    // The next one comes from the router followed: its interval is adopted.
    rx(&mut i, 10 * MS, "192.0.2.20", advert(Version::V3, 200, 50));
    assert_eq!(i.master_adver_int_cs(), 50);
    assert_eq!(
        i.next_deadline(),
        Some(10 * MS + master_down_interval_ns(Version::V3, 100, 50))
    );
    // As master it advertises its own configured interval again.
    i.handle(i.next_deadline().expect("armed"), Input::Timer);
    assert_eq!(i.advert(100).max_adver_int_cs, 100);
    assert_eq!(i.master_adver_int_cs(), 100);
}

#[test]
fn rfc3768_7_1_v2_backup_discards_other_interval() {
    let mut i = inst(cfg(Version::V2, 100));
    i.handle(0, Input::Startup);
    let before = i.next_deadline();
    let a = rx(&mut i, 10 * MS, "192.0.2.20", advert(Version::V2, 200, 200));
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::IntervalMismatch
        }]
    );
    assert_eq!(i.next_deadline(), before);
    assert_eq!(i.master_adver_int_cs(), 100);
}

#[test]
fn rfc3768_7_1_v2_pass_auth_must_match() {
    let mut c = cfg(Version::V2, 100);
    c.auth_pass = Some(haxdp_vrrp::pass_auth(b"secret"));
    let mut i = inst(c);
    i.handle(0, Input::Startup);
    let mut a = advert(Version::V2, 200, 100);
    a.auth = Some(haxdp_vrrp::pass_auth(b"other"));
    assert_eq!(
        rx(&mut i, MS, "192.0.2.20", a.clone()),
        [Action::Discarded {
            reason: DiscardReason::AuthMismatch
        }]
    );
    a.auth = None;
    assert_eq!(
        rx(&mut i, MS, "192.0.2.20", a.clone()),
        [Action::Discarded {
            reason: DiscardReason::AuthMismatch
        }]
    );
    a.auth = Some(haxdp_vrrp::pass_auth(b"secret"));
    assert!(rx(&mut i, MS, "192.0.2.20", a).is_empty());
}

#[test]
fn rfc9568_7_1_instance_checks() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    let cases = [
        (
            "192.0.2.10",
            advert(Version::V3, 200, 100),
            DiscardReason::OwnAdvert,
        ),
        (
            "192.0.2.20",
            advert(Version::V2, 200, 100),
            DiscardReason::VersionMismatch,
        ),
        (
            "192.0.2.20",
            Advert {
                vrid: 52,
                ..advert(Version::V3, 200, 100)
            },
            DiscardReason::VridMismatch,
        ),
        (
            "2001:db8::20",
            advert(Version::V3, 200, 100),
            DiscardReason::FamilyMismatch,
        ),
        (
            "192.0.2.20",
            Advert {
                addrs: vec![ip("192.0.2.99")],
                ..advert(Version::V3, 200, 100)
            },
            DiscardReason::AddressMismatch,
        ),
    ];
    for (src, a, reason) in cases {
        assert_eq!(rx(&mut i, MS, src, a), [Action::Discarded { reason }]);
    }
    // The address owner may advertise a different list (RFC 9568 7.1).
    let owner = Advert {
        addrs: vec![ip("192.0.2.99")],
        ..advert(Version::V3, 255, 100)
    };
    assert!(rx(&mut i, MS, "192.0.2.20", owner).is_empty());
}

#[test]
fn rfc9568_6_4_2_preempt_discards_lower_priority() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    let deadline = i.next_deadline();
    let a = rx(&mut i, 500 * MS, "192.0.2.20", advert(Version::V3, 50, 100));
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::LowerPriority
        }]
    );
    assert_eq!(
        i.next_deadline(),
        deadline,
        "a lower master must not hold off preemption"
    );
    // Equal priority is accepted (priority >= local).
    rx(
        &mut i,
        600 * MS,
        "192.0.2.20",
        advert(Version::V3, 100, 100),
    );
    assert_eq!(
        i.next_deadline(),
        Some(600 * MS + i.master_down_interval_ns())
    );
}

#[test]
fn rfc9568_6_4_2_nopreempt_accepts_lower_priority_master() {
    let mut c = cfg(Version::V3, 100);
    c.preempt = false;
    let mut i = inst(c);
    i.handle(0, Input::Startup);
    assert!(rx(&mut i, 500 * MS, "192.0.2.20", advert(Version::V3, 50, 100)).is_empty());
    assert_eq!(
        i.next_deadline(),
        Some(500 * MS + i.master_down_interval_ns())
    );
    assert_eq!(i.master_addr(), Some(ip("192.0.2.20")));
}

#[test]
fn keepalived_preempt_delay_holds_preemption_after_startup() {
    let mut c = cfg(Version::V3, 100);
    c.preempt_delay_cs = 500; // 5 s
    let mut i = inst(c);
    i.handle(1_000 * MS, Input::Startup);
    // Before 6 s: the lower master is accepted as if nopreempt.
    assert!(rx(
        &mut i,
        5_999 * MS,
        "192.0.2.20",
        advert(Version::V3, 50, 100)
    )
    .is_empty());
    assert_eq!(
        i.next_deadline(),
        Some(5_999 * MS + i.master_down_interval_ns())
    );
    // From 6 s on: preempt.
    let a = rx(
        &mut i,
        6_000 * MS,
        "192.0.2.20",
        advert(Version::V3, 50, 100),
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::LowerPriority
        }]
    );
    let t = i.next_deadline().expect("armed");
    assert_eq!(t, 5_999 * MS + i.master_down_interval_ns());
    i.handle(t, Input::Timer);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn rfc9568_6_4_3_shutdown_sends_priority_zero() {
    let (mut i, t) = master(cfg(Version::V3, 100));
    let a = effects(i.handle(t + MS, Input::Shutdown));
    assert_eq!(
        a,
        [
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Notify {
                state: State::Initialize
            }
        ]
    );
    assert_eq!(i.state(), State::Initialize);
    assert_eq!(i.next_deadline(), None);
    // RFC 9568 6.4.2: a backup shuts down silently.
    let mut b = inst(cfg(Version::V3, 100));
    b.handle(0, Input::Startup);
    assert_eq!(
        effects(b.handle(MS, Input::Shutdown)),
        [
            Action::RemoveVips,
            Action::Notify {
                state: State::Initialize
            }
        ]
    );
}

#[test]
fn rfc9568_6_4_2_priority_zero_sets_timer_to_skew() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    rx(
        &mut i,
        100 * MS,
        "192.0.2.20",
        advert(Version::V3, 200, 100),
    );
    assert!(rx(&mut i, 200 * MS, "192.0.2.20", advert(Version::V3, 0, 100)).is_empty());
    assert_eq!(i.next_deadline(), Some(200 * MS + 609_375_000));
    assert_eq!(i.next_deadline(), Some(200 * MS + i.skew_ns()));
}

#[test]
fn rfc9568_6_4_3_master_steps_down_for_higher_priority() {
    let (mut i, t) = master(cfg(Version::V3, 100));
    let a = effects(rx(
        &mut i,
        t + MS,
        "192.0.2.5",
        advert(Version::V3, 101, 50),
    ));
    assert_eq!(
        a,
        [
            Action::RemoveVips,
            Action::Notify {
                state: State::Backup
            },
            Action::ReportPeers
        ]
    );
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.master_addr(), Some(ip("192.0.2.5")));
    // RFC 9568 6.4.3: adopt the new master's interval for the Master_Down_Timer.
    assert_eq!(
        i.next_deadline(),
        Some(t + MS + master_down_interval_ns(Version::V3, 100, 50))
    );
    let last = i.transitions().last().expect("logged");
    assert_eq!((last.old, last.new), (State::Master, State::Backup));
    assert_eq!(
        last.event,
        Event::BetterAdvert {
            src: ip("192.0.2.5"),
            priority: 101
        }
    );
}

#[test]
fn rfc9568_6_4_3_equal_priority_higher_address_wins() {
    let (mut i, t) = master(cfg(Version::V3, 100));
    let a = rx(&mut i, t + MS, "192.0.2.9", advert(Version::V3, 100, 100));
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::NotBetterThanUs
        }]
    );
    assert_eq!(i.state(), State::Master);
    rx(
        &mut i,
        t + 2 * MS,
        "192.0.2.11",
        advert(Version::V3, 100, 100),
    );
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn keepalived_higher_prio_send_advert_answers_lower_priority() {
    let mut c = cfg(Version::V3, 100);
    c.higher_prio_send_advert = true;
    let (mut i, t) = master(c);
    let a = rx(&mut i, t + MS, "192.0.2.20", advert(Version::V3, 50, 100));
    assert_eq!(
        a,
        [
            Action::Discarded {
                reason: DiscardReason::NotBetterThanUs
            },
            Action::SendAdvert { priority: 100 }
        ]
    );
    // Without the flag: ignored quietly.
    let (mut j, t) = master(cfg(Version::V3, 100));
    let a = rx(&mut j, t + MS, "192.0.2.20", advert(Version::V3, 50, 100));
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::NotBetterThanUs
        }]
    );
}

#[test]
fn rfc9568_6_4_3_master_answers_priority_zero() {
    let (mut i, t) = master(cfg(Version::V3, 100));
    let a = rx(
        &mut i,
        t + 300 * MS,
        "192.0.2.20",
        advert(Version::V3, 0, 100),
    );
    assert_eq!(a, [Action::SendAdvert { priority: 100 }]);
    assert_eq!(i.next_deadline(), Some(t + 1_300 * MS));
}

#[test]
fn effective_priority_is_clamped() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::PriorityChanged { effective: 0 });
    assert_eq!(i.effective_priority(), 1);
    i.handle(0, Input::PriorityChanged { effective: 255 });
    assert_eq!(i.effective_priority(), 254);
    let mut c = cfg(Version::V3, 255);
    c.address_owner = true;
    let mut o = inst(c);
    assert_eq!(o.effective_priority(), 255);
    o.handle(0, Input::PriorityChanged { effective: 0 });
    assert_eq!(o.effective_priority(), 1);
}

#[test]
fn priority_change_in_master_is_advertised_at_once() {
    let (mut i, t) = master(cfg(Version::V3, 100));
    let a = i.handle(t + 10 * MS, Input::PriorityChanged { effective: 60 });
    assert_eq!(a, [Action::SendAdvert { priority: 60 }]);
    assert_eq!(i.next_deadline(), Some(t + 1_010 * MS));
    assert!(i
        .handle(t + 20 * MS, Input::PriorityChanged { effective: 60 })
        .is_empty());
}

#[test]
fn keepalived_fault_releases_vips_and_stops_adverts() {
    // Interface down: cannot send, so no priority-0 advert.
    let (mut i, t) = master(cfg(Version::V3, 100));
    let a = effects(i.handle(t + MS, Input::InterfaceDown));
    assert_eq!(
        a,
        [
            Action::RemoveVips,
            Action::Notify {
                state: State::Fault
            }
        ]
    );
    assert_eq!(i.next_deadline(), None);
    let a = rx(
        &mut i,
        t + 2 * MS,
        "192.0.2.20",
        advert(Version::V3, 200, 100),
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::NotListening
        }]
    );
    let a = effects(i.handle(t + 3 * MS, Input::InterfaceUp));
    assert_eq!(
        a,
        [
            Action::RemoveVips,
            Action::Notify {
                state: State::Backup
            },
            Action::ReportPeers
        ]
    );
    assert_eq!(
        i.next_deadline(),
        Some(t + 3 * MS + i.master_down_interval_ns())
    );

    // A failed check with the link up: priority 0 first, so a backup takes over fast.
    let (mut j, t) = master(cfg(Version::V3, 100));
    let a = effects(j.handle(
        t + MS,
        Input::Fault {
            on: true,
            reason: "chk_nginx".into(),
        },
    ));
    assert_eq!(
        a,
        [
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
            Action::Notify {
                state: State::Fault
            }
        ]
    );
    // Fault holds while any reason is on.
    j.handle(t + 2 * MS, Input::InterfaceDown);
    j.handle(
        t + 3 * MS,
        Input::Fault {
            on: false,
            reason: "chk_nginx".into(),
        },
    );
    assert_eq!(j.state(), State::Fault);
    j.handle(t + 4 * MS, Input::InterfaceUp);
    assert_eq!(j.state(), State::Backup);

    // Startup with the interface down goes to Fault.
    let mut k = inst(cfg(Version::V3, 100));
    k.handle(0, Input::InterfaceDown);
    k.handle(0, Input::Startup);
    assert_eq!(k.state(), State::Fault);
}

#[test]
fn advert_refresh_moves_the_master_down_deadline() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    let a = i.handle(
        0,
        Input::AdvertRefresh {
            src: ip("192.0.2.20"),
            rx_ns: 0,
        },
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::UnknownPeer
        }]
    );
    rx(
        &mut i,
        100 * MS,
        "192.0.2.20",
        advert(Version::V3, 200, 100),
    );
    let a = i.handle(
        3_000 * MS,
        Input::AdvertRefresh {
            src: ip("192.0.2.20"),
            rx_ns: 2_900 * MS,
        },
    );
    assert!(a.is_empty());
    assert_eq!(
        i.next_deadline(),
        Some(2_900 * MS + i.master_down_interval_ns())
    );
    // A refresh of a lower-priority advert is discarded like the advert was.
    let a = rx(
        &mut i,
        3_000 * MS,
        "192.0.2.30",
        advert(Version::V3, 10, 100),
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::WorseThanMaster
        }]
    );
    let a = i.handle(
        3_100 * MS,
        Input::AdvertRefresh {
            src: ip("192.0.2.30"),
            rx_ns: 3_100 * MS,
        },
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::WorseThanMaster
        }]
    );
}

#[test]
fn rfc9568_6_4_2_backup_keeps_following_the_better_of_two_masters() {
    let mut c = cfg(Version::V3, 20);
    c.preempt = false;
    let mut i = inst(c);
    i.handle(0, Input::Startup);
    for at in [500, 1_000] {
        rx(&mut i, at * MS, "192.0.2.20", advert(Version::V3, 100, 50));
    }
    let deadline = i.next_deadline();
    // A worse transient master with a shorter interval must not shorten our timer.
    let a = rx(
        &mut i,
        1_001 * MS,
        "192.0.2.5",
        advert(Version::V3, 100, 10),
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::WorseThanMaster
        }]
    );
    assert_eq!((i.next_deadline(), i.master_adver_int_cs()), (deadline, 50));
    // Nor may its priority-0 advert when it stops.
    rx(&mut i, 1_002 * MS, "192.0.2.5", advert(Version::V3, 0, 10));
    assert_eq!(i.next_deadline(), deadline);
    // Still alive by its own timing (3 of its intervals), our master keeps winning.
    let a = rx(
        &mut i,
        2_400 * MS,
        "192.0.2.5",
        advert(Version::V3, 100, 10),
    );
    assert_eq!(
        a,
        [Action::Discarded {
            reason: DiscardReason::WorseThanMaster
        }]
    );
    // Once our master has been silent that long, the other one is followed; its first
    // advert does not shorten the interval (the kernel is asked to report the next one,
    // unchanged or not), its next one sets it.
    let a = rx(
        &mut i,
        2_600 * MS,
        "192.0.2.5",
        advert(Version::V3, 100, 10),
    );
    assert_eq!(a, [Action::ReportPeers]);
    assert_eq!(
        (i.master_addr(), i.master_adver_int_cs()),
        (Some(ip("192.0.2.5")), 50)
    );
    rx(
        &mut i,
        2_700 * MS,
        "192.0.2.5",
        advert(Version::V3, 100, 10),
    );
    assert_eq!(i.master_adver_int_cs(), 10);
}

#[test]
fn change_state_logs_every_transition_bounded() {
    let mut i = inst(cfg(Version::V3, 100));
    i.handle(0, Input::Startup);
    let t = i.next_deadline().expect("armed");
    i.handle(t, Input::Timer);
    let log = i.transitions();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].instance, "VI_1");
    assert_eq!(
        (log[0].event.clone(), log[0].old, log[0].new),
        (Event::Startup, State::Initialize, State::Backup)
    );
    assert_eq!((log[1].event.clone(), log[1].at_ns), (Event::MasterDown, t));
    let mut now = t;
    for _ in 0..TRANSITION_LOG_LEN {
        now += MS;
        i.handle(now, Input::InterfaceDown);
        i.handle(now, Input::InterfaceUp);
    }
    assert_eq!(i.transitions().len(), TRANSITION_LOG_LEN);
    assert_eq!(i.transitions().last().map(|t| t.new), Some(State::Backup));
}

#[test]
fn accept_mode_is_carried_for_the_caller() {
    let mut c = cfg(Version::V3, 100);
    c.accept = true;
    assert!(inst(c).accept_mode());
    assert!(!inst(cfg(Version::V3, 100)).accept_mode());
}

#[test]
fn invalid_configs_are_refused() {
    let bad = |f: &dyn Fn(&mut InstanceConfig)| {
        let mut c = cfg(Version::V2, 100);
        f(&mut c);
        Instance::new(c).expect_err("must be refused")
    };
    assert!(matches!(bad(&|c| c.vrid = 0), ConfigError::ZeroVrid { .. }));
    assert!(matches!(
        bad(&|c| c.priority = 0),
        ConfigError::ZeroPriority { .. }
    ));
    assert!(matches!(
        bad(&|c| c.advert_int_cs = 150),
        ConfigError::BadInterval { .. }
    ));
    assert!(matches!(
        bad(&|c| c.family = Family::V6),
        ConfigError::V2OverIpv6 { .. }
    ));
    assert!(matches!(
        bad(&|c| c.vips.push(ip("2001:db8::1"))),
        ConfigError::WrongFamily { .. }
    ));
    assert!(matches!(
        bad(&|c| {
            c.version = Version::V3;
            c.auth_pass = Some([1; 8]);
        }),
        ConfigError::AuthOnV3 { .. }
    ));
}

/// RFC 9568 6.4.2 (Backup, the master's adverts reset Master_Down_Timer) under a flood of
/// spoofed lower-priority sources: the master we follow is never forgotten, so a refresh
/// of its advert (the XDP path's unchanged advert) still resets the timer.
#[test]
fn rfc9568_6_4_2_spoofed_sources_do_not_evict_the_master() {
    let mut b = inst(cfg(Version::V3, 90));
    b.handle(0, Input::Startup);
    rx(&mut b, 10 * MS, "192.0.2.11", advert(Version::V3, 100, 100));
    assert_eq!(b.master_addr(), Some(ip("192.0.2.11")));
    for n in 0..200u32 {
        let src = format!("198.51.100.{}", n % 250);
        let src = if n >= 250 {
            "203.0.113.1".to_string()
        } else {
            src
        };
        rx(
            &mut b,
            20 * MS + u64::from(n) * MS,
            &src,
            advert(Version::V3, 1, 100),
        );
    }
    let at = 2_000 * MS;
    let acts = b.handle(
        at,
        Input::AdvertRefresh {
            src: ip("192.0.2.11"),
            rx_ns: at,
        },
    );
    assert!(
        !acts.contains(&Action::Discarded {
            reason: DiscardReason::UnknownPeer
        }),
        "the master was forgotten: {acts:?}"
    );
    assert_eq!(b.next_deadline(), Some(at + b.master_down_interval_ns()));
    assert_eq!(b.state(), State::Backup);
}

/// A backup that switches from a live master to a router that beats it (equal priority,
/// higher address) waits one interval beyond its Master_Down_Interval: the old master,
/// stepping down for that router, takes over after its own (a skew difference shorter)
/// if it falls silent, and must win that race.
#[test]
fn handover_from_a_live_master_waits_one_interval_more() {
    let mut i = inst(cfg(Version::V3, 90));
    i.handle(0, Input::Startup);
    for at in [100, 1_100] {
        rx(&mut i, at * MS, "192.0.2.20", advert(Version::V3, 100, 100));
    }
    rx(
        &mut i,
        1_500 * MS,
        "192.0.2.60",
        advert(Version::V3, 100, 100),
    );
    assert_eq!(i.master_addr(), Some(ip("192.0.2.60")));
    assert_eq!(
        i.next_deadline(),
        Some(1_500 * MS + i.master_down_interval_ns() + 1_000 * MS)
    );
}

/// A planned restart (`haxdp upgrade`): the successor's fresh instance goes on from the
/// predecessor's Master without a transition, advertises at once and keeps the counters.
#[test]
fn adopt_master_advertises_at_once_without_a_transition() {
    let (old, t) = master(cfg(Version::V3, 100));
    let h = old.handover();
    let mut new = inst(cfg(Version::V3, 100));
    let acts = new.adopt(t + 30 * MS, h).expect("fresh instance adopts");
    assert_eq!(acts, vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(new.state(), State::Master);
    assert_eq!(new.transitions(), old.transitions());
    assert_eq!(new.next_deadline(), Some(t + 30 * MS + 100 * NS_PER_CS));
    assert_eq!(new.stats().advert_sent, old.stats().advert_sent + 1);
    // Only a fresh instance adopts.
    assert!(new.adopt(t, old.handover()).is_none());
}

/// A Backup's Master_Down_Timer and the master it follows carry over unchanged: the
/// successor neither restarts the countdown (a master that died during the hand-over is
/// detected on time) nor forgets whom it follows.
#[test]
fn adopt_backup_keeps_its_master_down_deadline_and_master() {
    let mut old = inst(cfg(Version::V3, 90));
    old.handle(0, Input::Startup);
    rx(&mut old, 10 * MS, "192.0.2.1", advert(Version::V3, 100, 50));
    let deadline = old.next_deadline().expect("backup timer");
    let mut new = inst(cfg(Version::V3, 90));
    let acts = new.adopt(20 * MS, old.handover()).expect("adopts");
    assert!(acts.is_empty(), "{acts:?}");
    assert_eq!(new.state(), State::Backup);
    assert_eq!(new.next_deadline(), Some(deadline));
    assert_eq!(new.master_addr(), Some(ip("192.0.2.1")));
    assert_eq!(new.master_adver_int_cs(), old.master_adver_int_cs());
    assert_eq!(new.known_peers(), old.known_peers());
    // The timer fires when the predecessor's would have.
    assert!(new.handle(deadline - 1, Input::Timer).is_empty());
    assert_eq!(
        new.handle(deadline, Input::Timer)[0],
        Action::SendAdvert { priority: 90 }
    );
}

/// `haxdp status` prints states and transition reasons with `Display`; these are the
/// texts operators' tooling reads (they were the `Debug` output, upper-cased for states),
/// so they are pinned here and a `Debug` change cannot move them.
#[test]
fn status_names_of_states_and_reasons_are_fixed() {
    use haxdp_vrrp::fsm::{Event, State};
    let states = [
        (State::Initialize, "INITIALIZE"),
        (State::Backup, "BACKUP"),
        (State::Master, "MASTER"),
        (State::Fault, "FAULT"),
    ];
    for (s, want) in states {
        assert_eq!(s.to_string(), want);
    }
    let events = [
        (Event::Startup, "Startup"),
        (Event::Resumed, "Resumed"),
        (Event::Shutdown, "Shutdown"),
        (Event::MasterDown, "MasterDown"),
        (
            Event::BetterAdvert {
                src: "192.0.2.10".parse().unwrap(),
                priority: 100,
            },
            "BetterAdvert { src: 192.0.2.10, priority: 100 }",
        ),
        (Event::InterfaceDown, "InterfaceDown"),
        (Event::InterfaceUp, "InterfaceUp"),
        (
            Event::FaultOn {
                reason: "script:chk_nginx".into(),
            },
            "FaultOn { reason: \"script:chk_nginx\" }",
        ),
        (Event::FaultCleared, "FaultCleared"),
    ];
    for (e, want) in events {
        assert_eq!(e.to_string(), want);
    }
    use haxdp_vrrp::fsm::DiscardReason as D;
    let discards = [
        (D::VersionMismatch, "VersionMismatch"),
        (D::VridMismatch, "VridMismatch"),
        (D::FamilyMismatch, "FamilyMismatch"),
        (D::AuthMismatch, "AuthMismatch"),
        (D::IntervalMismatch, "IntervalMismatch"),
        (D::AddressMismatch, "AddressMismatch"),
        (D::OwnAdvert, "OwnAdvert"),
        (D::LowerPriority, "LowerPriority"),
        (D::NotBetterThanUs, "NotBetterThanUs"),
        (D::NotListening, "NotListening"),
        (D::UnknownPeer, "UnknownPeer"),
        (D::WorseThanMaster, "WorseThanMaster"),
    ];
    for (d, want) in discards {
        assert_eq!(d.name(), want);
    }
}

#[test]
fn transition_actions_report_every_change_last() {
    // Each state change is reported once, as the last action of the change, with the
    // event the transition log records (RFC 9568 6.4.1 startup, 6.4.2 master down, 6.4.3
    // a better master).
    let mut i = inst(cfg(Version::V3, 100));
    let mut seen = Vec::new();
    let mut check = |i: &Instance, acts: Vec<Action>| {
        let reported: Vec<&Action> = acts
            .iter()
            .filter(|a| matches!(a, Action::Transition { .. }))
            .collect();
        if let Some(t) = reported.first() {
            assert_eq!(reported.len(), 1, "{acts:?}");
            assert_eq!(acts.last(), Some(*t), "{acts:?}");
            let logged = i.transitions().last().expect("logged");
            assert_eq!(
                **t,
                Action::Transition {
                    from: logged.old,
                    to: logged.new,
                    why: logged.event.clone(),
                }
            );
            seen.push((logged.old, logged.new));
        }
    };
    let a = i.handle(0, Input::Startup);
    check(&i, a);
    let t = i.next_deadline().expect("armed");
    let a = i.handle(t, Input::Timer);
    check(&i, a);
    // A periodic advert is no change.
    let a = i.handle(t + 1_000 * MS, Input::Timer);
    assert!(!a.iter().any(|a| matches!(a, Action::Transition { .. })));
    let a = rx(
        &mut i,
        t + 1_001 * MS,
        "192.0.2.20",
        advert(Version::V3, 200, 100),
    );
    check(&i, a);
    let a = i.handle(t + 1_002 * MS, Input::Shutdown);
    check(&i, a);
    assert_eq!(
        seen,
        [
            (State::Initialize, State::Backup),
            (State::Backup, State::Master),
            (State::Master, State::Backup),
            (State::Backup, State::Initialize),
        ]
    );
}
