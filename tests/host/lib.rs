//! The modules' `core`-only files, included verbatim (the same source the
//! kernel build compiles) so that host tests can exercise them.

#[path = "../../nvme_dbbuf/spec.rs"]
pub mod nvme_spec;

#[path = "../../common/dyndbg_core.rs"]
pub mod dyndbg_core;

#[path = "../../nvme_dbbuf/cmd.rs"]
pub mod nvme_cmd;

#[path = "../../nvme_dbbuf/prp.rs"]
pub mod nvme_prp;

#[path = "../../nvme_dbbuf/identify.rs"]
pub mod nvme_identify;

#[path = "../../nvme_dbbuf/eventidx.rs"]
pub mod nvme_eventidx;

#[path = "../../nvme_dbbuf/passthru_cmd.rs"]
pub mod nvme_passthru;

#[path = "../../nvme_dbbuf/state.rs"]
pub mod nvme_state;

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
