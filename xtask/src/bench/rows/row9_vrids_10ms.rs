use anyhow::Result;

use super::row5_steady_cpu::steady_cpu;
use crate::bench::report::Report;
use crate::bench::Ctx;

/// Row 9: row 5's steady state at the most VRIDs one interface can carry, 255 at
/// 10 ms adverts (25,500 adverts/s on the LAN).
pub(crate) fn row9_vrids_10ms(ctx: &Ctx, report: &mut Report) -> Result<()> {
    steady_cpu(ctx, report, 9, 255, "255 VRIDs on one interface")
}
