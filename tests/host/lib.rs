//! The modules' `core`-only files, included verbatim (the same source the
//! kernel build compiles) so that host tests can exercise them.

/// nvme_dbbuf's core-only files, under the names the module gives them
/// (`super::le` in `cmd.rs` resolves the same way here).
#[path = "../../nvme_dbbuf"]
pub mod nvme {
    pub mod cmd;
    pub mod eventidx;
    pub mod identify;
    pub mod le;
    pub mod passthru_cmd;
    pub mod prp;
    pub mod spec;
    pub mod state;
}
pub use nvme::{
    cmd as nvme_cmd, eventidx as nvme_eventidx, identify as nvme_identify, le as nvme_le,
    passthru_cmd as nvme_passthru, prp as nvme_prp, spec as nvme_spec, state as nvme_state,
};

#[path = "../../common/dyndbg_core.rs"]
pub mod dyndbg_core;

/// vimc_debayer's core-only files, under the names the module gives them
/// (the module's `super::formats` paths resolve the same way here).
#[path = "../../vimc_debayer"]
pub mod vimc {
    pub mod debayer_core;
    pub mod formats;
    pub mod pixfmt;
    pub mod scaler_core;
    pub mod timing;
}
