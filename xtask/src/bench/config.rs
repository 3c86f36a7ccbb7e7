//! The keepalived.conf text both daemons of a row run.

use std::fmt::Write as _;

use haxdp_tests::node::VIP;

/// One VRRP instance of a generated keepalived.conf.
#[derive(Debug, Clone)]
pub(crate) struct InstanceConf {
    pub(crate) vrid: u8,
    pub(crate) priority: u8,
    pub(crate) master: bool,
    pub(crate) version: u8,
    /// keepalived's advert_int text: "1", "0.05".
    pub(crate) advert: String,
    pub(crate) vip: String,
    /// VRRPv2 PASS authentication, as in the seeds.
    pub(crate) auth: bool,
    pub(crate) track_script: Option<String>,
}

impl InstanceConf {
    pub(crate) fn new(vrid: u8, priority: u8, version: u8, advert: &str, vip: &str) -> Self {
        Self {
            vrid,
            priority,
            master: priority >= 100,
            version,
            advert: advert.to_string(),
            vip: vip.to_string(),
            auth: false,
            track_script: None,
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(out, "vrrp_instance VI_{} {{", self.vrid);
        let _ = writeln!(
            out,
            "    state {}",
            if self.master { "MASTER" } else { "BACKUP" }
        );
        let _ = writeln!(out, "    interface eth0");
        let _ = writeln!(out, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(out, "    priority {}", self.priority);
        let _ = writeln!(out, "    advert_int {}", self.advert);
        let _ = writeln!(out, "    version {}", self.version);
        if self.auth {
            out.push_str(
                "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n",
            );
        }
        if let Some(t) = &self.track_script {
            let _ = writeln!(out, "    track_script {{\n        {t}\n    }}");
        }
        let _ = writeln!(
            out,
            "    virtual_ipaddress {{\n        {}\n    }}",
            self.vip
        );
        out.push_str("}\n");
    }
}

/// A whole keepalived.conf: global_defs, `preamble` (checks), the instances.
/// A row's load balancer: one VRRPv3 instance, VRID 51, the lab's VIP, adverts every
/// `advert` (keepalived's advert_int text), at `prio` (100 and up: state MASTER).
pub(crate) fn one_vip_v3(prio: u8, advert: &str) -> String {
    config(
        "lb",
        "",
        &[InstanceConf::new(51, prio, 3, advert, &format!("{VIP}/24"))],
    )
}

pub(crate) fn config(router_id: &str, preamble: &str, instances: &[InstanceConf]) -> String {
    let mut s = format!("global_defs {{\n    router_id {router_id}\n}}\n{preamble}");
    for i in instances {
        i.render(&mut s);
    }
    s
}

/// Master_Down_Interval, RFC 9568 6.1 (VRRPv3) and RFC 3768 6.1 (VRRPv2,
/// whose Skew_Time does not scale with the interval).
pub(crate) fn master_down_interval(version: u8, prio: u8, advert_s: f64) -> f64 {
    let skew = if version == 3 {
        (256.0 - f64::from(prio)) * advert_s / 256.0
    } else {
        (256.0 - f64::from(prio)) / 256.0
    };
    3.0 * advert_s + skew
}

pub(crate) fn many_instances(
    n: u16,
    prio: u8,
    advert: &str,
    vip: impl Fn(u8) -> String,
) -> Vec<InstanceConf> {
    (1..=n)
        .filter_map(|v| u8::try_from(v).ok())
        .map(|v| InstanceConf::new(v, prio, 3, advert, &vip(v)))
        .collect()
}
