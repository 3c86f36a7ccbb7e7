//! One file per row of the table.

mod row10_start;
mod row1_crash;
mod row2_nginx;
mod row3_stall;
mod row4_starvation;
mod row5_steady_cpu;
mod row6_floods;
mod row7_scale;
mod row8_restart;
mod row9_vrids_10ms;

pub(crate) use row10_start::row10_start;
pub(crate) use row1_crash::row1_crash;
pub(crate) use row2_nginx::row2_nginx;
pub(crate) use row3_stall::row3_stall;
pub(crate) use row4_starvation::row4_starvation;
pub(crate) use row5_steady_cpu::row5_steady_cpu;
pub(crate) use row6_floods::row6_floods;
pub(crate) use row7_scale::row7_scale;
pub(crate) use row8_restart::row8_restart;
pub(crate) use row9_vrids_10ms::row9_vrids_10ms;
