//! Seeded random scenarios on the simulated LAN, checking the election invariants after
//! every step (see `haxdp_vrrp::sim`).
//!
//! `HAXDP_SIM_SCENARIOS=100000` runs a longer soak; `HAXDP_SIM_SEED=<n>` replays one seed.

use haxdp_vrrp::sim::{run_scenario, Scenario, Summary};

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|e| panic!("{name}={v}: not a number: {e}")),
    )
}

#[test]
fn random_scenarios_keep_the_invariants() {
    if let Some(seed) = env_u64("HAXDP_SIM_SEED") {
        let sc = Scenario::random(seed);
        eprintln!("{sc:#?}");
        if let Err(v) = run_scenario(&sc) {
            panic!("{v}");
        }
        return;
    }
    let n = env_u64("HAXDP_SIM_SCENARIOS").unwrap_or(4000);
    let mut total = Summary::default();
    let mut failures = Vec::new();
    for seed in 0..n {
        match run_scenario(&Scenario::random(seed)) {
            Ok(s) => {
                total.transitions += s.transitions;
                total.takeovers_checked += s.takeovers_checked;
                total.heals_checked += s.heals_checked;
                total.settled_checks += s.settled_checks;
            }
            Err(v) => {
                failures.push(v.seed);
                if failures.len() == 1 {
                    eprintln!("{v}");
                }
            }
        }
    }
    eprintln!("{n} scenarios: {total:?}");
    assert!(
        failures.is_empty(),
        "{} failing seeds, first ones: {:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    // The scenarios must actually exercise the checks, not pass vacuously.
    assert!(
        total.takeovers_checked as u64 > n / 50,
        "too few crash takeovers checked: {total:?}"
    );
    assert!(
        total.heals_checked > 0,
        "no partition heal with two masters was checked: {total:?}"
    );
    assert!(total.settled_checks as u64 > n, "{total:?}");
}
