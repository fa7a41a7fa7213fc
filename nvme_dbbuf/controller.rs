// SPDX-License-Identifier: GPL-2.0

//! The controller's life after probe: Doorbell Buffer Config and I/O queue
//! creation (at probe and after every reset), controller reset, failing I/O
//! when the controller is gone (I/O timeouts: `timeout.rs`), and the
//! ordered teardown at unbind -- each gated by the state machine
//! (`state.rs`).

use core::sync::atomic::Ordering;

use kernel::{prelude::*, sync::Arc};

use crate::cmd;
use crate::dbbuf::DbBuf;
use crate::doorbell::DbPath;
use crate::dyndbg::dev_ddbg;
use crate::irq;
use crate::pci_ext;
use crate::state::CtrlState;
use crate::NvmeDev;

impl<'bound> NvmeDev<'bound> {
    pub(crate) fn dbbuf_on(&self) -> bool {
        self.dbbuf_on.load(Ordering::Relaxed)
    }

    pub(crate) fn resets(&self) -> u32 {
        self.resets.load(Ordering::Relaxed)
    }

    /// Doorbell Buffer Config on a freshly enabled controller, before any
    /// I/O queue exists.  Returns whether shadow doorbells are on.
    ///
    /// The spec ends the buffers' lifetime at every controller reset, and a
    /// controller that saw the command once may still hold stale EventIdx
    /// values in them; so both are zeroed and the command re-issued each
    /// time, never assumed to survive.
    pub(crate) fn configure_dbbuf(&self, want: bool) -> bool {
        let pdev = self.ctrl.pdev;
        // Until the command succeeds the controller knows no buffers.
        self.ctrl.admin.set_paths(DbPath::Mmio, DbPath::Mmio);
        let Some(db) = self.dbbuf.as_ref() else {
            dev_ddbg!(
                pdev,
                "dbbuf: controller lacks Doorbell Buffer Config (OACS bit 8)\n"
            );
            dev_info!(
                pdev,
                "Doorbell Buffer Config not supported: MMIO doorbells\n"
            );
            return false;
        };
        if !want {
            dev_ddbg!(
                pdev,
                "dbbuf: off by request (module parameter or debugfs)\n"
            );
            dev_info!(pdev, "shadow doorbells off by request: MMIO doorbells\n");
            return false;
        }
        let last = u16::try_from(self.nr_io_queues()).unwrap_or(u16::MAX);
        if db.max_qid().is_none_or(|m| m < last) {
            dev_info!(
                pdev,
                "{} I/O queues do not fit the doorbell buffers at this stride: MMIO doorbells\n",
                last
            );
            return false;
        }
        self.send_dbbuf_config(db)
    }

    /// Zeroes `db` and hands it to the controller (Doorbell Buffer Config);
    /// whether the controller took it.
    fn send_dbbuf_config(&self, db: &Arc<DbBuf>) -> bool {
        let pdev = self.ctrl.pdev;
        let stale = db.nonzero_words().unwrap_or(0);
        if let Err(e) = db.zero() {
            dev_warn!(
                pdev,
                "dbbuf: cannot zero the buffers ({:?}): MMIO doorbells\n",
                e
            );
            return false;
        }
        dev_ddbg!(
            pdev,
            "dbbuf: zeroed shadow doorbell and EventIdx buffers ({} non-zero words before)\n",
            stale
        );
        let (shadow, ei) = (db.shadow_dma(), db.eventidx_dma());
        match self.ctrl.admin_ok(cmd::dbbuf_config(shadow, ei)) {
            Ok(_) => {
                if let (Some(sq), Some(cq)) = (db.sq(0), db.cq(0)) {
                    self.ctrl
                        .admin
                        .set_paths(DbPath::ShadowAndMmio(sq), DbPath::ShadowAndMmio(cq));
                }
                dev_info!(
                    pdev,
                    "shadow doorbells on: Doorbell Buffer Config shadow {:#x} eventidx {:#x}\n",
                    shadow,
                    ei
                );
                true
            }
            Err(e) => {
                dev_ddbg!(pdev, "dbbuf: command failed: {:?}\n", e);
                dev_info!(
                    pdev,
                    "Doorbell Buffer Config failed ({:?}): MMIO doorbells\n",
                    e
                );
                false
            }
        }
    }

    /// Configures doorbell buffers, then creates every I/O queue pair on the
    /// controller with the doorbell path to match.  Returns whether shadow
    /// doorbells are on.
    pub(crate) fn start_io_queues(&self, want_dbbuf: bool) -> Result<bool> {
        let on = self.configure_dbbuf(want_dbbuf);
        let (irq_offset, with_irq) = self
            .shared
            .as_ref()
            .map_or((0, 0), |s| (s.irq_offset, s.irq_queues()));
        let pin_based = self.vectors.as_ref().is_some_and(|v| v.pin_based());
        for (i, q) in self.io_queues().enumerate() {
            let qid = q.qid;
            // The polled queues, last, have no interrupt.
            let vector = if i < with_irq {
                Some(u16::try_from(irq_offset + u32::try_from(i)?)?)
            } else {
                None
            };
            let slots = self
                .dbbuf
                .as_ref()
                .and_then(|db| Some((db.sq(qid)?, db.cq(qid)?)));
            match slots {
                // A level-triggered pin stays asserted until a CQ head MMIO
                // write lets the controller see the queue drained: skipping
                // it makes an interrupt storm nobody claims.
                Some((sq, cq)) if on && pin_based && vector.is_some() => {
                    q.set_paths(DbPath::Shadow(sq), DbPath::ShadowAndMmio(cq))
                }
                Some((sq, cq)) if on => q.set_paths(DbPath::Shadow(sq), DbPath::Shadow(cq)),
                _ => q.set_paths(DbPath::Mmio, DbPath::Mmio),
            }
            self.ctrl
                .admin_ok(cmd::create_cq(qid, q.depth, q.cq_dma(), vector))?;
            if let Err(e) = self
                .ctrl
                .admin_ok(cmd::create_sq(qid, q.depth, q.sq_dma(), qid))
            {
                let _ = self.ctrl.admin_ok(cmd::delete_cq(qid));
                return Err(e);
            }
        }
        dev_ddbg!(
            self.ctrl.pdev,
            "dbbuf: {} I/O queue(s) created with {} doorbells\n",
            self.nr_io_queues(),
            if on { "shadow" } else { "MMIO" }
        );
        Ok(on)
    }

    /// Controller reset: stops dispatch, disables the controller (which
    /// forgets its queues and the doorbell buffers), takes back every
    /// command still in flight for requeueing, enables the controller and
    /// rebuilds the queues, with shadow doorbells if `dbbuf` says so (`None`:
    /// as before), then lets the requeued commands run again.  If the
    /// controller does not come back the queues fail requests from then on.
    pub(crate) fn reset(&self, dbbuf: Option<bool>) -> Result {
        let _guard = self.reset_lock.lock();
        self.reset_locked(dbbuf)
    }

    pub(crate) fn reset_locked(&self, dbbuf: Option<bool>) -> Result {
        let pdev = self.ctrl.pdev;
        if let Err(now) = self.state.change(CtrlState::Resetting) {
            // Only unbind refuses (under this lock nothing else is
            // Resetting).
            dev_ddbg!(pdev, "reset refused: controller {:?}\n", now);
            return Err(EBUSY);
        }
        let want = dbbuf.unwrap_or_else(|| self.dbbuf_on());
        dev_ddbg!(
            pdev,
            "reset: quiescing, then dbbuf {}\n",
            if want { "on" } else { "off" }
        );
        // `reinit` tries the disable once more, and if the controller does
        // not come back the queues are marked dead.
        let cancelled = self.stop_and_take_back();
        dev_ddbg!(pdev, "reset: {} command(s) in flight requeued\n", cancelled);
        let r = self.reinit(want);
        match r {
            Ok(on) => {
                // Unless unbind began meanwhile (then it stays Deleting).
                let _ = self.state.change(CtrlState::Live);
                self.dbbuf_on.store(on, Ordering::Relaxed);
                self.resets.fetch_add(1, Ordering::Relaxed);
                for q in self.io_queues() {
                    q.set_dead(false);
                    q.hooks().arm(crate::fault::Inject::None);
                }
                dev_info!(
                    pdev,
                    "controller reset done, {} doorbells, {} command(s) requeued\n",
                    if on { "shadow" } else { "MMIO" },
                    cancelled
                );
            }
            Err(e) => {
                let _ = self.state.change(CtrlState::Dead);
                dev_err!(pdev, "controller reset failed ({:?}): failing I/O\n", e);
                self.dbbuf_on.store(false, Ordering::Relaxed);
                for q in self.io_queues() {
                    q.set_dead(true);
                }
            }
        }
        if let Some(t) = self.tagset.as_ref() {
            t.unquiesce();
        }
        r.map(|_| ())
    }

    /// A timeout's reset (I/O, or a passthrough command's, which stopped
    /// the controller); if unbind began meanwhile (the reset is refused),
    /// what is in flight fails instead, so the request is handed back
    /// either way.  Called with the reset lock held.
    pub(crate) fn reset_or_fail(&self) {
        if self.reset_locked(None) == Err(EBUSY) && !self.state.get().takes_commands() {
            self.fail_all_locked();
        }
    }

    /// The device is gone (surprise removal): fail the commands in flight,
    /// and every later one, at once.
    pub(crate) fn fail_all(&self) {
        let _guard = self.reset_lock.lock();
        self.fail_all_locked();
    }

    /// The first half of a reset, as the in-tree `nvme_dev_disable`: stop
    /// dispatch, stop the controller (a disable that fails cuts its DMA
    /// before anything it owned is taken back), wait for running handlers,
    /// reap what it completed (those completions are good), then hand every
    /// request still in flight back to its completion, which requeues or
    /// fails it.  Leaves dispatch stopped; returns how many were in flight.
    fn stop_and_take_back(&self) -> u32 {
        if let Some(t) = self.tagset.as_ref() {
            t.quiesce();
        }
        let _ = self.ctrl.disable();
        for irq in self.irqs.as_ref().into_iter().flatten() {
            irq.synchronize();
        }
        for q in self.io_queues() {
            q.reap(|cqe| <crate::blk_ops::IoCompleter as irq::Completer>::complete(q, cqe));
        }
        let mut n = 0;
        if let Some(t) = self.tagset.as_ref() {
            t.for_each_in_flight(|rq| n += u32::from(crate::blk_ops::cancel(rq)));
        }
        n
    }

    /// Stops the controller and fails every request in flight and after.
    pub(crate) fn fail_all_locked(&self) {
        for q in self.io_queues() {
            q.set_dead(true);
        }
        let n = self.stop_and_take_back();
        if let Some(t) = self.tagset.as_ref() {
            t.unquiesce();
        }
        dev_warn!(
            self.ctrl.pdev,
            "controller {:?}: {} command(s) failed\n",
            self.state.get(),
            n
        );
    }

    /// The reset work's body: a completion named no request in flight.
    pub(crate) fn reset_after_bad_completion(&self) {
        let _guard = self.reset_lock.lock();
        if !self.state.get().takes_commands() {
            return;
        }
        dev_warn!(
            self.ctrl.pdev,
            "resetting the controller after a completion with a bad command id\n"
        );
        let _ = self.reset_locked(None);
    }

    pub(crate) fn reinit(&self, want_dbbuf: bool) -> Result<bool> {
        self.ctrl.disable()?;
        for q in self.io_queues() {
            q.reset();
        }
        self.ctrl.enable()?;
        // The queue count is a feature the reset cleared: ask for the
        // queues we already have.
        let have16 = u16::try_from(self.nr_io_queues())?;
        let (sqs, cqs) =
            cmd::granted_queues(self.ctrl.admin_ok(cmd::set_num_queues(have16, have16))?);
        let have = u32::from(have16);
        if sqs.min(cqs) < have {
            dev_err!(
                self.ctrl.pdev,
                "after reset the controller grants {} I/O queues, {} needed\n",
                sqs.min(cqs),
                have
            );
            return Err(ENODEV);
        }
        self.start_io_queues(want_dbbuf)
    }
}

impl NvmeDev<'_> {
    /// Ordered hardware shutdown, run by `unbind` (or a failed bring-up)
    /// while the device is still bound, and by `drop` (which finds it done), as
    /// the in-tree `nvme_remove`: no reset any more; the disks deleted while
    /// the controller still works (one that is gone has its commands failed
    /// first, so that takes seconds, not a timeout per request); then a
    /// passthrough command still waiting is interrupted, the lease is
    /// revoked (no request is left to time out), and the I/O queues are
    /// deleted and the controller shut down, so it stops touching our
    /// memory before anything is freed.  A second call only finds it done.
    pub(crate) fn teardown(&self) {
        // A queued reset does nothing, a timeout fails what is in flight,
        // no passthrough command starts.
        let _ = self.state.change(CtrlState::Deleting);
        // A running reset ends (the checks below would find it between
        // disable and enable); a passthrough command may hold the lock
        // until its timeout, and is left running while the disks go.
        self.wait_for_reset();
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        // Gone from the bus, or its registers say it is not running (CSTS
        // all-ones, CFS, or RDY clear: decoding off reads 0 under QEMU).
        let gone = !pci_ext::is_present(self.ctrl.pdev) || self.ctrl.down().is_some();
        if gone {
            self.fail_all();
        }
        // del_gendisk flushes and waits for outstanding I/O.
        drop(core::mem::take(&mut *self.disks.lock()));
        // A passthrough command still waiting: shut down first (CC.SHN, as
        // in-tree before it cancels what is left), then interrupt it.
        if self.ctrl.interruptible_waiting() {
            self.ctrl.shutdown();
            self.ctrl.interrupt();
        }
        drop(self.reset_lock.lock());
        self.revoke_user_access();
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        // Stopped by an interrupted passthrough command, or failed since
        // the check above: no queue to delete, nothing to shut down, but
        // make sure it no longer reaches our memory.
        if self.ctrl.down().is_some() {
            if self.ctrl.disable().is_ok() {
                // (A failed disable has cut it already.)
                self.ctrl.stop_dma();
            }
            self.ctrl.admin.set_paths(DbPath::Mmio, DbPath::Mmio);
            return;
        }
        // Interrupts are still registered: the deletions complete through
        // the admin queue like any command.  SQ before its CQ.
        let queues = self.shared.as_ref().map(|s| s.queues.as_slice());
        for q in queues.unwrap_or(&[]).iter().rev() {
            let _ = self.ctrl.admin_ok(cmd::delete_sq(q.qid));
            let _ = self.ctrl.admin_ok(cmd::delete_cq(q.qid));
        }
        self.ctrl.shutdown();
        self.ctrl.admin.set_paths(DbPath::Mmio, DbPath::Mmio);
        // As `pci_disable_device` does at the in-tree driver's remove:
        // whatever the shutdown left, nothing of ours is reachable by DMA.
        pci_ext::clear_master(self.ctrl.pdev);
    }

    /// Waits until no reset or timeout holds the reset lock; a passthrough
    /// command waiting for its completion may keep it.
    fn wait_for_reset(&self) {
        loop {
            if self.reset_lock.try_lock().is_some() || self.ctrl.interruptible_waiting() {
                return;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
        }
    }
}
