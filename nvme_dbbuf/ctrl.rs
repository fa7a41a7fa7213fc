// SPDX-License-Identifier: GPL-2.0

//! Controller bring-up and tear-down (NVMe Base Specification 2.0, sections
//! 3.5.1 and 3.6) and synchronous admin commands.
//!
//! Admin commands are waited for by polling, which also works before the
//! admin queue's interrupt (vector 0) is registered and after it is freed;
//! the interrupt only posts completions for the waiter (and keeps a shared
//! INTx line from staying asserted).
//!
//! A controller that times out an admin command, or will not stop, may
//! still own memory of ours: it is disabled and its bus mastering cleared
//! before any such memory is unmapped or freed.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kernel::{
    device::Bound,
    io::poll::read_poll_timeout,
    io::Io,
    new_mutex, pci,
    prelude::*,
    sync::{Arc, Mutex},
    time::Delta,
};

use crate::cmd::{Sqe, Status};
use crate::doorbell::Doorbells;
use crate::fault::HOOKS;
use crate::pci_ext;
use crate::queue::Queue;
use crate::{regs, spec};

/// BAR0: the register block; doorbells are reached with run-time checked
/// offsets (their stride is CAP.DSTRD).
pub(crate) type Bar0<'bound> = pci::Bar<'bound, { regs::END }>;

/// Admin queue entries (both rings).
const ADMIN_DEPTH: u16 = 32;
/// How long an admin command may take before we give up on the controller.
pub(crate) const ADMIN_TIMEOUT_MS: i64 = 60_000;
/// Shutdown (CC.SHN) completion wait.
const SHUTDOWN_TIMEOUT_MS: i64 = 5_000;

/// The controller: registers, capabilities and the admin queue.
pub(crate) struct Ctrl<'bound> {
    pub(crate) pdev: &'bound pci::Device<Bound>,
    /// Shared with the queues' doorbells, which keep it mapped.
    pub(crate) bar: Arc<Bar0<'bound>>,
    /// CAP as read at probe (it does not change).
    pub(crate) cap: regs::CAP,
    /// CAP.DSTRD.
    pub(crate) dstrd: u8,
    /// CAP.MQES + 1.
    pub(crate) max_entries: u32,
    /// CSTS.RDY transition timeout, from CAP.TO.
    ready_ms: u32,
    pub(crate) admin: Arc<Queue<'bound>>,
    /// Serialises admin commands; holds the next command id.
    admin_lock: Pin<KBox<Mutex<u16>>>,
    /// Test hooks (debugfs `inject`): the next disable reports CSTS.RDY
    /// stuck at 1; the next admin completion is lost.
    pub(crate) fake_stuck_rdy: AtomicBool,
    pub(crate) fake_lost_admin: AtomicBool,
    /// The interruptible admin command waiting now (its generation; 0 for
    /// none), the one asked to give up, and the last generation given.
    waiting: AtomicU32,
    interrupt: AtomicU32,
    generation: AtomicU32,
    /// Passthrough commands under way ([`Ctrl::passthrough`]).
    passthrough: AtomicU32,
    /// An I/O timeout found the reset lock held while a passthrough command
    /// was under way, perhaps not waiting yet: that command gives up before
    /// it starts, or resets after it completes, rather than leave the
    /// timed-out request for another timeout period.
    recovery_wanted: AtomicBool,
}

/// A passthrough command under way, from before it takes the reset lock
/// until it has let go of it.
pub(crate) struct Passthrough<'a>(&'a AtomicU32);

impl Drop for Passthrough<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A finished admin command.
pub(crate) struct AdminResult {
    pub(crate) status: Status,
    pub(crate) dw0: u32,
}

impl<'bound> Ctrl<'bound> {
    /// Reads CAP, checks what this driver needs, and allocates the admin queue.
    pub(crate) fn new(pdev: &'bound pci::Device<Bound>, bar: Bar0<'bound>) -> Result<Self> {
        // 64-bit register: alignment is only known at run time.
        let cap = bar.try_read(regs::CAP)?;
        let mpsmin: u8 = cap.mpsmin().into();
        if spec::page_size(mpsmin) > 4096 {
            dev_err!(
                pdev,
                "CAP.MPSMIN {} needs pages larger than 4 KiB\n",
                mpsmin
            );
            return Err(ENODEV);
        }
        if !spec::supports_nvm_command_set(cap.css().into()) {
            dev_err!(pdev, "controller lacks the NVM command set\n");
            return Err(ENODEV);
        }
        let dstrd: u8 = cap.dstrd().into();
        let max_entries = spec::max_queue_entries(cap.mqes().into());
        // A one-entry ring is always full (CAP.MQES 0 is reserved).
        if max_entries < 2 {
            dev_err!(pdev, "CAP.MQES {} is invalid\n", max_entries);
            return Err(ENODEV);
        }
        let depth = ADMIN_DEPTH.min(u16::try_from(max_entries).unwrap_or(u16::MAX));
        let bar = Arc::new(bar, GFP_KERNEL)?;
        let db = Doorbells::new(&bar, 0, dstrd)?;
        let admin = Arc::pin_init(Queue::new(pdev.as_ref(), 0, depth, db, None)?, GFP_KERNEL)?;
        Ok(Self {
            pdev,
            bar,
            cap,
            dstrd,
            max_entries,
            ready_ms: spec::ready_timeout_ms(cap.to().into()),
            admin,
            admin_lock: KBox::pin_init(new_mutex!(0u16, "nvme_dbbuf:admin"), GFP_KERNEL)?,
            fake_stuck_rdy: AtomicBool::new(false),
            fake_lost_admin: AtomicBool::new(false),
            waiting: AtomicU32::new(0),
            interrupt: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            passthrough: AtomicU32::new(0),
            recovery_wanted: AtomicBool::new(false),
        })
    }

    /// Reads CSTS; a set CFS (when `fatal_is_error`) or an all-ones read
    /// (the device is gone) ends any wait at once.
    fn csts(&self, fatal_is_error: bool) -> Result<regs::CSTS> {
        let csts = self.bar.read(regs::CSTS);
        if csts.into_raw() == u32::MAX {
            return Err(ENODEV);
        }
        if fatal_is_error && bool::from(csts.cfs()) {
            dev_err!(self.pdev, "controller fatal status (CSTS.CFS)\n");
            return Err(EIO);
        }
        Ok(csts)
    }

    /// Whether an enabled controller has stopped working: CSTS reads
    /// all-ones (gone from the bus), CFS, or RDY clear (not running, or its
    /// registers no longer decode).  Returns the raw CSTS if so.
    pub(crate) fn down(&self) -> Option<u32> {
        let csts = self.bar.read(regs::CSTS);
        let raw = csts.into_raw();
        (raw == u32::MAX || bool::from(csts.cfs()) || !bool::from(csts.rdy())).then_some(raw)
    }

    /// Waits, bounded by CAP.TO, for CSTS.RDY to read `ready`.
    fn wait_ready(&self, ready: bool) -> Result {
        read_poll_timeout(
            || self.csts(ready),
            |csts| bool::from(csts.rdy()) == ready,
            Delta::from_millis(1),
            Delta::from_millis(i64::from(self.ready_ms)),
        )
        .map(|_| ())
        .inspect_err(|e| {
            if *e == ETIMEDOUT {
                dev_err!(
                    self.pdev,
                    "CSTS.RDY did not become {} within {} ms\n",
                    ready,
                    self.ready_ms
                );
            }
        })
    }

    /// Clears CC.EN and waits for the controller to stop.  If it does not,
    /// its DMA is cut (bus mastering off) before this returns the error, so
    /// callers may take back and free what it owned; [`Self::enable`] turns
    /// bus mastering on again.
    pub(crate) fn disable(&self) -> Result {
        let cc = self.bar.read(regs::CC);
        if bool::from(cc.en()) {
            self.bar.write_reg(cc.with_const_en::<0>());
        }
        let r = if HOOKS && self.fake_stuck_rdy.swap(false, Ordering::Relaxed) {
            dev_warn!(self.pdev, "test hook: CSTS.RDY reported stuck at 1\n");
            Err(ETIMEDOUT)
        } else {
            self.wait_ready(false)
        };
        if r.is_err() {
            self.stop_dma();
        }
        r
    }

    /// Bus mastering off: the controller can no longer reach host memory.
    pub(crate) fn stop_dma(&self) {
        pci_ext::clear_master(self.pdev);
        dev_warn!(
            self.pdev,
            "bus mastering off (PCI_COMMAND {:#06x})\n",
            pci_ext::command(self.pdev).unwrap_or(u16::MAX)
        );
    }

    /// Programs the admin queue and CC, and waits for CSTS.RDY.
    pub(crate) fn enable(&self) -> Result {
        pci_ext::set_master(self.pdev);
        self.admin.reset();
        let entries = u32::from(self.admin.depth) - 1;
        self.bar.write_reg(
            regs::AQA::zeroed()
                .try_with_asqs(entries)?
                .try_with_acqs(entries)?,
        );
        self.bar
            .try_write_reg(regs::ASQ::zeroed().with_base(self.admin.sq_dma()))?;
        self.bar
            .try_write_reg(regs::ACQ::zeroed().with_base(self.admin.cq_dma()))?;
        // 4 KiB pages (MPS 0), NVM command set, round robin, 64-byte SQEs and
        // 16-byte CQEs.
        self.bar.write_reg(
            regs::CC::zeroed()
                .with_const_iosqes::<6>()
                .with_const_iocqes::<4>()
                .with_const_en::<1>(),
        );
        self.wait_ready(true)
    }

    /// Normal shutdown (CC.SHN = 01b) before the device goes away: the
    /// controller flushes its cache and stops touching host memory.
    pub(crate) fn shutdown(&self) {
        let cc = self.bar.read(regs::CC);
        if !bool::from(cc.en()) {
            return;
        }
        self.bar.write_reg(cc.with_const_shn::<1>());
        // SHST 10b: shutdown processing complete.
        let done = read_poll_timeout(
            || self.csts(false),
            |csts| u8::from(csts.shst()) == 2,
            Delta::from_millis(1),
            Delta::from_millis(SHUTDOWN_TIMEOUT_MS),
        );
        if let Err(ETIMEDOUT) = done {
            dev_warn!(self.pdev, "shutdown did not complete, disabling instead\n");
            // A failed disable stops its DMA too.
            let _ = self.disable();
        }
    }

    /// Runs one admin command to completion (polled, bounded).
    pub(crate) fn admin_cmd(&self, sqe: Sqe) -> Result<AdminResult> {
        self.admin_cmd_timeout(sqe, None, false)
    }

    /// Makes the interruptible admin command waiting now, if any, give up
    /// as if it had timed out: recovery from an I/O timeout, and unbind,
    /// must not wait for a passthrough command's own timeout.  Aimed at
    /// that command: one that starts later is not affected.
    pub(crate) fn interrupt(&self) {
        if self.passthrough.load(Ordering::SeqCst) != 0 {
            self.recovery_wanted.store(true, Ordering::SeqCst);
        }
        let g = self.waiting.load(Ordering::SeqCst);
        if g != 0 {
            self.interrupt.store(g, Ordering::SeqCst);
        }
    }

    /// Marks a passthrough command under way until the value is dropped.
    pub(crate) fn passthrough(&self) -> Passthrough<'_> {
        self.passthrough.fetch_add(1, Ordering::SeqCst);
        Passthrough(&self.passthrough)
    }

    /// Whether an [`Self::interrupt`] came for a passthrough command that
    /// was not waiting; clears it.
    pub(crate) fn take_recovery_wanted(&self) -> bool {
        self.recovery_wanted.swap(false, Ordering::SeqCst)
    }

    /// A passthrough command got the reset lock: what an I/O timeout wanted
    /// before was for the holder before it.
    pub(crate) fn passthrough_locked(&self) {
        self.recovery_wanted.store(false, Ordering::SeqCst);
    }

    /// Whether an interruptible admin command is waiting now.
    pub(crate) fn interruptible_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) != 0
    }

    /// Like [`Self::admin_cmd`], giving up after `timeout_ms` (default 60 s),
    /// or with `EINTR` on [`Self::interrupt`] if `interruptible`.
    pub(crate) fn admin_cmd_timeout(
        &self,
        sqe: Sqe,
        timeout_ms: Option<i64>,
        interruptible: bool,
    ) -> Result<AdminResult> {
        let mut cid = self.admin_lock.lock();
        let generation = if interruptible {
            self.begin_interruptible(sqe.opcode())?
        } else {
            0
        };
        let my = *cid;
        *cid = cid.wrapping_add(1);
        // Whatever an earlier, timed-out command left there is not ours.
        let _ = self.admin.take_posted();
        self.admin.submit(&sqe.with_cid(my), true);
        let r = self.wait_admin(my, generation, timeout_ms.unwrap_or(ADMIN_TIMEOUT_MS));
        if generation != 0 {
            self.waiting.store(0, Ordering::SeqCst);
        }
        match r {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(EIO),
            Err(e) => {
                self.admin_failed(sqe.opcode(), e);
                Err(e)
            }
        }
    }

    /// Marks an interruptible admin command as waiting; its generation
    /// (never 0, which means "none"), or `EINTR` if recovery already wants
    /// the admin queue.
    fn begin_interruptible(&self, opcode: u8) -> Result<u32> {
        let g = self
            .generation
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
            .max(1);
        self.waiting.store(g, Ordering::SeqCst);
        // Interrupted before it began waiting (paired with `interrupt`: it
        // either sees `waiting` or we see the flag).
        if self.take_recovery_wanted() {
            self.waiting.store(0, Ordering::SeqCst);
            dev_warn!(
                self.pdev,
                "admin command {:#04x} not sent: an I/O timeout waits for recovery\n",
                opcode
            );
            return Err(EINTR);
        }
        Ok(g)
    }

    /// Waits up to `timeout_ms` for the completion of command `my`: from the
    /// admin interrupt or reaped here.  `EINTR` if generation `generation`
    /// (not 0) is interrupted, `ENODEV` if the controller stops being ready.
    fn wait_admin(&self, my: u16, generation: u32, timeout_ms: i64) -> Result<Option<AdminResult>> {
        let mut stray = 0u32;
        let mut take = |cid: u16, status: Status, dw0: u32| {
            if cid != my {
                stray += 1;
                None
            } else if HOOKS && self.fake_lost_admin.swap(false, Ordering::Relaxed) {
                dev_warn!(self.pdev, "test hook: admin completion {:#x} lost\n", cid);
                None
            } else {
                Some(AdminResult { status, dw0 })
            }
        };
        let r = read_poll_timeout(
            || {
                let mut done = None;
                if let Some(p) = self.admin.take_posted() {
                    done = take(p.cid, p.status, p.dw0);
                }
                self.admin.reap(|cqe| {
                    if done.is_none() {
                        done = take(cqe.cid(), cqe.status(), cqe.result());
                    }
                });
                match done {
                    Some(d) => Ok(Some(d)),
                    None if generation != 0
                        && self.interrupt.load(Ordering::SeqCst) == generation =>
                    {
                        Err(EINTR)
                    }
                    // Admin commands run on an enabled controller only: not
                    // ready any more means it will not answer.
                    None => match self.csts(true) {
                        Ok(c) if bool::from(c.rdy()) => Ok(None),
                        Ok(_) => Err(ENODEV),
                        Err(e) => Err(e),
                    },
                }
            },
            Option::is_some,
            Delta::from_micros(50),
            Delta::from_millis(timeout_ms),
        );
        if stray > 0 {
            dev_warn!(
                self.pdev,
                "{} admin completion(s) with an unknown command id\n",
                stray
            );
        }
        r
    }

    /// An admin command failed to complete: the controller still owns it
    /// and its buffer, which the caller frees on this error, so it is
    /// stopped first.  Its I/O then times out into a reset.
    fn admin_failed(&self, opcode: u8, e: Error) {
        if e == EINTR {
            dev_warn!(
                self.pdev,
                "admin command {:#04x} interrupted by an I/O timeout or unbind\n",
                opcode
            );
        } else {
            dev_err!(
                self.pdev,
                "admin command {:#04x} failed to complete: {:?}\n",
                opcode,
                e
            );
        }
        if self.disable().is_ok() {
            // (A failed disable has cut it already.)
            self.stop_dma();
        }
    }

    /// Like [`Self::admin_cmd`], with a non-success status turned into `EIO`.
    pub(crate) fn admin_ok(&self, sqe: Sqe) -> Result<u32> {
        let op = sqe.opcode();
        let r = self.admin_cmd(sqe)?;
        if r.status.is_success() {
            Ok(r.dw0)
        } else {
            dev_err!(
                self.pdev,
                "admin command {:#04x} failed: status {:#06x}\n",
                op,
                r.status.0
            );
            Err(EIO)
        }
    }

    /// Doorbells of I/O queue `qid`.
    pub(crate) fn doorbells(&self, qid: u16) -> Result<Doorbells<'bound>> {
        Doorbells::new(&self.bar, qid, self.dstrd)
    }
}
