// SPDX-License-Identifier: GPL-2.0

//! I/O timeouts: an Abort the first time, a controller reset the second,
//! under the controller's reset lock (`controller.rs`).

use kernel::prelude::*;

use crate::blk_ops::TimeoutAction;
use crate::cmd;
use crate::dyndbg::dev_ddbg;
use crate::NvmeDev;

impl NvmeDev<'_> {
    /// An I/O command timed out (and reaping its queue did not find it).
    /// The first time, ask the controller to abort it and wait another
    /// timeout period; the second time, reset the controller, which
    /// requeues it (or fails it, out of retries).
    /// `mark_abort` records the Abort on the request before it is sent (its
    /// completion may requeue the request before the Abort's own returns).
    pub(crate) fn io_timeout(
        &self,
        qid: u16,
        cid: u16,
        first: bool,
        still_ours: impl Fn() -> bool,
        mark_abort: impl FnOnce(),
    ) -> TimeoutAction {
        // A reset, a passthrough command or another timeout holds the
        // controller: wait another period (a reset takes this request
        // back), cutting a passthrough command short, whose reset does.
        // Holding the lock also keeps a reset from re-enabling the
        // controller under an Abort still waiting for its completion.
        let _guard = match self.reset_lock.try_lock() {
            Some(g) => g,
            None => {
                self.ctrl.interrupt();
                // Unless it was let go meanwhile.
                match self.reset_lock.try_lock() {
                    Some(g) => g,
                    None => return TimeoutAction::Later,
                }
            }
        };
        // A reset that held the lock took the request back (it may be in
        // flight again, at another generation, not to be touched).
        if !still_ours() {
            return TimeoutAction::Done;
        }
        self.io_timeout_locked(qid, cid, first, mark_abort)
    }

    fn io_timeout_locked(
        &self,
        qid: u16,
        cid: u16,
        first: bool,
        mark_abort: impl FnOnce(),
    ) -> TimeoutAction {
        let pdev = self.ctrl.pdev;
        // Being unbound, or dead after a failed reset: nothing will complete
        // it, and nothing may reset the controller now; fail what is left.
        if !self.state.get().takes_commands() {
            self.fail_all_locked();
            return TimeoutAction::Done;
        }
        // A controller that is gone or has stopped cannot abort anything:
        // reset at once (the queues are failed if it does not come back).
        if let Some(csts) = self.ctrl.down() {
            dev_warn!(
                pdev,
                "I/O command {:#x} on queue {} timed out, controller down (CSTS {:#x}): resetting\n",
                cid,
                qid,
                csts
            );
            self.reset_or_fail();
            return TimeoutAction::Done;
        }
        if first {
            return self.send_abort(qid, cid, mark_abort);
        }
        dev_warn!(
            pdev,
            "I/O command {:#x} on queue {} timed out after Abort: resetting\n",
            cid,
            qid
        );
        self.reset_or_fail();
        TimeoutAction::Done
    }

    /// A request's first timeout: an Abort for it (marked sent first), or
    /// a reset if the Abort cannot be sent.
    fn send_abort(&self, qid: u16, cid: u16, mark_abort: impl FnOnce()) -> TimeoutAction {
        let pdev = self.ctrl.pdev;
        dev_warn!(
            pdev,
            "I/O command {:#x} on queue {} timed out, sending Abort\n",
            cid,
            qid
        );
        mark_abort();
        match self.ctrl.admin_cmd(cmd::abort(qid, cid)) {
            // Dword 0 bit 0 clear: the command was aborted; its completion
            // (with an abort status) is on its way.
            Ok(r) => dev_ddbg!(
                pdev,
                "abort of {:#x}: status {:#x}, {}\n",
                cid,
                r.status.0,
                if r.dw0 & 1 == 0 {
                    "aborted"
                } else {
                    "not aborted"
                }
            ),
            Err(e) => {
                dev_warn!(pdev, "Abort failed ({:?}): resetting\n", e);
                self.reset_or_fail();
                return TimeoutAction::Done;
            }
        }
        TimeoutAction::AbortSent
    }
}
