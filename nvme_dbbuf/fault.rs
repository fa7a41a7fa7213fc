// SPDX-License-Identifier: GPL-2.0

//! Test hooks that make the controller look broken: a stale or duplicated
//! completion, a lost interrupt (debugfs `inject`), lost I/O completions
//! (parameter `fault_lose_io`).
//!
//! Like the in-tree driver's `fault_inject`, they work only with
//! `CONFIG_FAULT_INJECTION_DEBUG_FS`: without it there is no `inject` file,
//! `fault_lose_io` is ignored (with a warning), [`HOOKS`] is a constant
//! `false` and every check on the I/O path compiles to nothing.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::NvmeDev;

/// Whether this build has the hooks.
pub(crate) const HOOKS: bool = cfg!(CONFIG_FAULT_INJECTION_DEBUG_FS);

/// What the debugfs test hook does to the next completion of a queue.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Inject {
    /// Nothing: the completion is handled as it is.
    None = 0,
    /// Garble its command id (a stale generation).
    BadCid = 1,
    /// Handle it twice, as if the controller had posted it twice.
    DupCid = 2,
    /// Ignore the next interrupt, as if it had been lost.
    LostIrq = 3,
}

/// One queue's armed [`Inject`], taken by the first completion (or
/// interrupt, for `LostIrq`) that sees it.
pub(crate) struct InjectSlot(AtomicU8);

impl InjectSlot {
    pub(crate) const fn new() -> Self {
        Self(AtomicU8::new(Inject::None as u8))
    }

    /// Arms `what` for the next completion reaped.
    pub(crate) fn arm(&self, what: Inject) {
        self.0.store(what as u8, Ordering::Relaxed);
    }

    /// What is armed: a plain load, as this runs for every completion and
    /// an unconditional exchange would be a locked instruction each time.
    fn armed(&self) -> u8 {
        if HOOKS {
            self.0.load(Ordering::Relaxed)
        } else {
            Inject::None as u8
        }
    }

    /// Disarms `what`, if it is still the one armed.
    fn take(&self, what: Inject) -> bool {
        self.0
            .compare_exchange(
                what as u8,
                Inject::None as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// What the hook wants done to this completion (disarming it).
    /// `LostIrq` is the interrupt handler's to take.
    pub(crate) fn take_for_completion(&self) -> Inject {
        let armed = self.armed();
        [Inject::BadCid, Inject::DupCid]
            .into_iter()
            .find(|&w| armed == w as u8 && self.take(w))
            .unwrap_or(Inject::None)
    }

    /// Whether the hook wants this interrupt ignored (disarming it).
    pub(crate) fn take_lost_irq(&self) -> bool {
        self.armed() == Inject::LostIrq as u8 && self.take(Inject::LostIrq)
    }
}

/// Parameter `fault_lose_io`: I/O completions still to lose.
static LOSE_IO: AtomicU32 = AtomicU32::new(0);

/// Sets how many I/O completions to lose from now on.
pub(crate) fn set_lose_io(n: u32) {
    LOSE_IO.store(n, Ordering::Relaxed);
}

/// Whether the hook wants this I/O completion lost (counting it).
pub(crate) fn lose_io() -> bool {
    HOOKS
        && LOSE_IO.load(Ordering::Relaxed) != 0
        && LOSE_IO
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
}

impl NvmeDev<'_> {
    /// Debugfs `inject`: `what` happens to the next completion (or
    /// interrupt) on every I/O queue.
    pub(crate) fn inject(&self, what: Inject) {
        for q in self.io_queues() {
            q.hooks().arm(what);
        }
    }

    /// Debugfs `inject`: the next controller disable finds CSTS.RDY stuck
    /// at 1.
    pub(crate) fn inject_stuck_rdy(&self) {
        self.ctrl.fake_stuck_rdy.store(true, Ordering::Relaxed);
    }

    /// Debugfs `inject`: the next admin completion is lost.
    pub(crate) fn inject_lost_admin(&self) {
        self.ctrl.fake_lost_admin.store(true, Ordering::Relaxed);
    }
}
