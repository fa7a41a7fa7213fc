// SPDX-License-Identifier: GPL-2.0

//! The controller state machine, after the in-tree driver's
//! `nvme_change_ctrl_state`: one place that says who may submit, reset or
//! tear down.  `core` only: the module and the host tests include this file
//! verbatim.
//!
//! ```text
//!   New ──► Live ◄──► Resetting ──► Dead
//!    │        │           ▲           │
//!    └────────┴─► Deleting ◄──────────┘
//! ```
//!
//! A reset may start from New (an I/O timeout during probe's partition
//! scan) and from Dead (an explicit reset asked for through debugfs); a
//! failed reset ends in Dead, whose queues fail every request.  Deleting is
//! final: nothing resets a controller that is being unbound.

use core::sync::atomic::{AtomicU8, Ordering};

/// Where a controller is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CtrlState {
    /// Probe is bringing it up.
    New = 0,
    /// Up: I/O and admin commands run.
    Live = 1,
    /// A reset owns it: no admin command but the reset's own.
    Resetting = 2,
    /// Unbind is tearing it down.
    Deleting = 3,
    /// It did not come back from a reset: every request fails.
    Dead = 4,
}

impl CtrlState {
    const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::New,
            1 => Self::Live,
            2 => Self::Resetting,
            3 => Self::Deleting,
            _ => Self::Dead,
        }
    }

    /// Whether a controller in state `self` may go to `to`.
    pub const fn may_become(self, to: Self) -> bool {
        use CtrlState::*;
        matches!(
            (self, to),
            (New, Live)
                | (Resetting, Live)
                | (New | Live | Dead, Resetting)
                | (Resetting, Dead)
                | (New | Live | Resetting | Dead, Deleting)
        )
    }

    /// Whether a command from outside the driver's own recovery (an I/O
    /// timeout's Abort, a passthrough command) may be sent.
    pub const fn takes_commands(self) -> bool {
        matches!(self, Self::New | Self::Live)
    }
}

/// A controller's state, changed only along [`CtrlState::may_become`].
pub struct State(AtomicU8);

impl State {
    pub const fn new() -> Self {
        Self(AtomicU8::new(CtrlState::New as u8))
    }

    pub fn get(&self) -> CtrlState {
        CtrlState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves to `to` if the current state allows it; returns the state it
    /// was in, or `Err` with the state that refused.
    pub fn change(&self, to: CtrlState) -> Result<CtrlState, CtrlState> {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let from = CtrlState::from_u8(cur);
            if !from.may_become(to) {
                return Err(from);
            }
            match self
                .0
                .compare_exchange(cur, to as u8, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(from),
                Err(now) => cur = now,
            }
        }
    }
}

impl State {
    /// Moves from exactly `from` to `to` (if allowed); false otherwise.
    pub fn change_from(&self, from: CtrlState, to: CtrlState) -> bool {
        from.may_become(to)
            && self
                .0
                .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}
