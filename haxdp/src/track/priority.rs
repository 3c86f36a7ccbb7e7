//! Effective priority of an instance from its base priority and tracked items, with
//! keepalived 2.2.7's arithmetic (vrrp_track.c: `initialise_track_script_state`,
//! `process_script_update_priority`, `update_track_file_status`,
//! `vrrp_set_effective_priority`).

/// What a tracked item is; only used to label contributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Script,
    Interface,
    File,
    Nginx,
}

/// State of a tracked check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// No result yet (keepalived's SCRIPT_INIT_STATE_INIT): contributes nothing, and a
    /// weight-0 item holds the instance in init until it reports.
    Unknown,
    Up,
    Down,
    /// A `track_file` value (already clamped to -254..=254 as keepalived does).
    Value(i64),
}

/// One tracked item as seen by one instance (weight and `reverse` are per instance in
/// keepalived: `track_script { chk weight -5 reverse }` overrides the script's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedItem<'a> {
    pub name: &'a str,
    pub kind: ItemKind,
    pub weight: i32,
    pub reverse: bool,
    pub state: CheckState,
}

/// How one item changed the instance, for `haxdp status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contribution {
    pub name: String,
    pub kind: ItemKind,
    /// Added to the base priority (before clamping).
    pub delta: i32,
    /// This item alone puts the instance in FAULT.
    pub fault: bool,
}

/// Result of [`effective_priority`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EffectivePriority {
    /// 1..=254, or 255 for an address owner (whose priority keepalived never changes).
    pub priority: u8,
    /// At least one weight-0 item (or a file at -254) is failing: the instance is FAULT.
    pub fault: bool,
    /// A weight-0 script has not reported yet; keepalived keeps the instance in INIT.
    pub init_pending: bool,
    /// Items that changed the priority or caused the fault, in input order.
    pub contributions: Vec<Contribution>,
}

/// keepalived's bound for one file's contribution (`status` in update_track_file_status):
/// -254 means fault, the positive side is capped at 253.
const FILE_FAULT: i64 = -254;
const FILE_MAX: i64 = 253;

/// Compute the effective priority and fault state.
///
/// - Up/Down items (scripts, interfaces, nginx checks), with `m = -1` when `reverse`:
///   weight > 0 adds `weight * m` while Up; weight < 0 adds `weight * m` while Down;
///   weight 0 means FAULT while Down (while Up when reversed).
/// - File items: `value * weight * m`, clamped to -254..=253; -254 is FAULT. With weight 0,
///   a nonzero value is FAULT (a zero value when reversed).
/// - The sum is clamped to 1..=254 (RFC 9568 6.1: 255 is reserved for the address owner;
///   0 means "stop"). Base 255 is kept as is: keepalived does not change an owner's
///   priority, though a weight-0 failure still faults it.
pub fn effective_priority(base: u8, items: &[TrackedItem<'_>]) -> EffectivePriority {
    let owner = base == 255;
    let mut total = i64::from(base);
    let mut fault = false;
    let mut init_pending = false;
    let mut contributions = Vec::new();
    for item in items {
        let m: i64 = if item.reverse { -1 } else { 1 };
        let w = i64::from(item.weight);
        let (delta, item_fault) = match item.state {
            CheckState::Unknown => {
                if item.weight == 0 {
                    init_pending = true;
                }
                (0, false)
            }
            CheckState::Up | CheckState::Down => {
                let up = item.state == CheckState::Up;
                if item.weight == 0 {
                    (0, up != (m == 1))
                } else if (w > 0 && up) || (w < 0 && !up) {
                    (w * m, false)
                } else {
                    (0, false)
                }
            }
            CheckState::Value(v) => {
                if item.weight == 0 {
                    (0, (v != 0) == (m == 1))
                } else {
                    let s = v
                        .saturating_mul(w)
                        .saturating_mul(m)
                        .clamp(FILE_FAULT, FILE_MAX);
                    if s == FILE_FAULT {
                        (0, true)
                    } else {
                        (s, false)
                    }
                }
            }
        };
        fault |= item_fault;
        let delta = if owner { 0 } else { delta };
        total += delta;
        if delta != 0 || item_fault {
            contributions.push(Contribution {
                name: item.name.to_owned(),
                kind: item.kind,
                // |delta| <= 253 per item, so it fits.
                delta: i32::try_from(delta).unwrap_or(if delta < 0 { i32::MIN } else { i32::MAX }),
                fault: item_fault,
            });
        }
    }
    let priority = if owner {
        255
    } else {
        // In range by the clamp.
        u8::try_from(total.clamp(1, 254)).unwrap_or(254)
    };
    EffectivePriority {
        priority,
        fault,
        init_pending,
        contributions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::*;
    use ItemKind::*;

    fn item(kind: ItemKind, weight: i32, reverse: bool, state: CheckState) -> TrackedItem<'static> {
        TrackedItem {
            name: "x",
            kind,
            weight,
            reverse,
            state,
        }
    }

    /// (base, kind, weight, reverse, state) -> (priority, fault, init_pending)
    type Row = (u8, ItemKind, i32, bool, CheckState, u8, bool, bool);

    #[test]
    fn single_item_table() {
        // (base, kind, weight, reverse, state) -> (priority, fault, init_pending)
        let table: &[Row] = &[
            // Seed 000: weight -2, failing lowers 100 -> 98, passing leaves it.
            (100, Script, -2, false, Down, 98, false, false),
            (100, Script, -2, false, Up, 100, false, false),
            // Seed 003/004: positive weights add while OK.
            (100, Script, 10, false, Up, 110, false, false),
            (100, Script, 10, false, Down, 100, false, false),
            (100, Script, 50, false, Up, 150, false, false),
            // No result yet: no change in either direction.
            (100, Script, -2, false, Unknown, 100, false, false),
            (100, Script, 10, false, Unknown, 100, false, false),
            (100, Script, 0, false, Unknown, 100, false, true),
            // weight 0: failure is FAULT, priority untouched.
            (100, Script, 0, false, Down, 100, true, false),
            (100, Script, 0, false, Up, 100, false, false),
            // reverse inverts: success is the bad state.
            (100, Script, 0, true, Up, 100, true, false),
            (100, Script, 0, true, Down, 100, false, false),
            (100, Script, 10, true, Up, 90, false, false),
            (100, Script, -10, true, Down, 110, false, false),
            // Clamping to 1..=254.
            (250, Script, 50, false, Up, 254, false, false),
            (10, Script, -50, false, Down, 1, false, false),
            (254, Nginx, 1, false, Up, 254, false, false),
            // Address owner keeps 255 whatever the weights, but still faults.
            (255, Script, -50, false, Down, 255, false, false),
            (255, Script, 0, false, Down, 255, true, false),
            // track_interface: default weight 0 -> down is FAULT.
            (100, Interface, 0, false, Down, 100, true, false),
            (100, Interface, -2, false, Down, 98, false, false),
            (100, Interface, -2, false, Up, 100, false, false),
            // track_file: value * weight.
            (100, File, 1, false, Value(0), 100, false, false),
            (100, File, 1, false, Value(-20), 80, false, false),
            (100, File, -10, false, Value(3), 70, false, false),
            (100, File, 2, true, Value(5), 90, false, false),
            (100, File, 1, false, Value(-254), 100, true, false),
            (100, File, 100, false, Value(-3), 100, true, false),
            (100, File, 100, false, Value(9), 254, false, false),
            (100, File, 0, false, Value(0), 100, false, false),
            (100, File, 0, false, Value(7), 100, true, false),
            (100, File, 0, true, Value(0), 100, true, false),
            (100, File, 0, true, Value(7), 100, false, false),
        ];
        for (i, &(base, kind, w, rev, st, prio, fault, pending)) in table.iter().enumerate() {
            let r = effective_priority(base, &[item(kind, w, rev, st)]);
            assert_eq!(
                (r.priority, r.fault, r.init_pending),
                (prio, fault, pending),
                "row {i}: base {base} {kind:?} weight {w} reverse {rev} {st:?}"
            );
        }
    }

    #[test]
    fn sums_and_reports_contributions() {
        // Seed 000 master: chkfile and chkngx (-2 each) and eno16777736 (-2).
        let items = [
            TrackedItem {
                name: "chkfile",
                kind: Script,
                weight: -2,
                reverse: false,
                state: Down,
            },
            TrackedItem {
                name: "chkngx",
                kind: Script,
                weight: -2,
                reverse: false,
                state: Up,
            },
            TrackedItem {
                name: "eno16777736",
                kind: Interface,
                weight: -2,
                reverse: false,
                state: Down,
            },
            TrackedItem {
                name: "down",
                kind: File,
                weight: 0,
                reverse: false,
                state: Value(1),
            },
        ];
        let r = effective_priority(100, &items);
        assert_eq!(r.priority, 96);
        assert!(r.fault);
        assert_eq!(
            r.contributions,
            vec![
                Contribution {
                    name: "chkfile".into(),
                    kind: Script,
                    delta: -2,
                    fault: false
                },
                Contribution {
                    name: "eno16777736".into(),
                    kind: Interface,
                    delta: -2,
                    fault: false
                },
                Contribution {
                    name: "down".into(),
                    kind: File,
                    delta: 0,
                    fault: true
                },
            ]
        );
        let none = effective_priority(100, &[]);
        assert_eq!(
            (none.priority, none.fault, none.contributions.len()),
            (100, false, 0)
        );
    }
}
