//! `vrrp_sync_group`, and the tracking weights that its members ignore.

use super::track::Tracking;
use super::{Builder, Known};
use crate::diag::Diags;
use crate::model::*;
use crate::syntax::Node;

impl Builder<'_> {
    pub(super) fn sync_group(&mut self, n: &Node, k: &Known<'_>) -> Option<SyncGroup> {
        let name = self.block_name(n)?;
        let mut members = Vec::new();
        let mut notify = NotifyScripts::default();
        let mut tracking = Tracking::default();
        let mut global_tracking = false;
        let mut ok = true;
        for c in self.children(n) {
            if self.notify(c, &mut notify) {
                continue;
            }
            if let Some(refs_ok) = self.tracking(c, k, &mut tracking) {
                ok &= refs_ok;
                continue;
            }
            match c.kw.as_str() {
                "group" => {
                    for m in self.children(c) {
                        self.no_block(m);
                        members.push((m.kw.clone(), m.loc.clone()));
                        for extra in &m.args {
                            members.push((extra.clone(), m.loc.clone()));
                        }
                    }
                }
                // keepalived sets one flag for both (global_tracking is its deprecated name).
                "global_tracking" | "sync_group_tracking_weight" => global_tracking = self.flag(c),
                "smtp_alert" => self.info(c, "haxdp does not send mail; smtp_alert ignored"),
                "notify_priority_changes" => self.warn(
                    c,
                    format!(
                        "vrrp_sync_group keyword '{}' is not supported by haxdp; ignored",
                        c.kw
                    ),
                ),
                k => {
                    self.err(
                        c,
                        format!("unknown vrrp_sync_group keyword '{k}' (expected group, notify*, track_script, track_interface, track_file, sync_group_tracking_weight, global_tracking)"),
                    );
                    ok = false;
                }
            }
        }
        if members.is_empty() {
            self.err(
                n,
                format!("vrrp_sync_group {name} has no 'group {{ ... }}' of instances"),
            );
            return None;
        }
        if members.len() == 1 {
            self.warn(
                n,
                format!("vrrp_sync_group {name} has only one member; a sync group needs two to mean anything (keepalived ignores it too)"),
            );
        }
        ok.then(|| SyncGroup {
            name,
            members: members.into_iter().map(|(m, _)| m).collect(),
            notify,
            track_scripts: tracking.scripts,
            track_interfaces: tracking.interfaces,
            track_files: tracking.files,
            global_tracking,
            location: n.loc.clone(),
        })
    }
}

/// keepalived (vrrp_complete_instance): members of a sync group without
/// sync_group_tracking_weight track with weight 0, so that a failure faults the whole group
/// instead of lowering one member's priority and splitting the group across nodes. Each
/// weighted item that this silences gets a warning at its line.
pub(super) fn warn_ignored_sync_weights(cfg: &Config, d: &mut Diags) {
    let weighted = |w: Option<Weight>| w.is_some_and(|w| w.value != 0);
    for sg in cfg.sync_groups.iter().filter(|g| !g.global_tracking) {
        for i in cfg
            .instances
            .iter()
            .filter(|i| sg.members.contains(&i.name))
        {
            let items = i
                .track_scripts
                .iter()
                .filter(|t| weighted(cfg.track_script_weight(t)))
                .chain(
                    i.track_files
                        .iter()
                        .filter(|t| weighted(cfg.track_file_weight(t))),
                )
                .map(|t| (t.name.as_str(), &t.location))
                .chain(
                    i.track_interfaces
                        .iter()
                        .filter(|t| t.weight.value != 0)
                        .map(|t| (t.name.as_str(), &t.location)),
                );
            for (name, at) in items {
                d.warn_at(
                    at,
                    "vrrp_sync_group",
                    format!(
                        "{} is in vrrp_sync_group {}: the weight of '{name}' is ignored and its failure puts the whole group in FAULT, as keepalived does; add sync_group_tracking_weight to {} to keep weights",
                        i.name, sg.name, sg.name
                    ),
                );
            }
        }
    }
}
