// SPDX-License-Identifier: GPL-2.0

//! One NVMe submission/completion queue pair: the rings in coherent DMA
//! memory, the tail/head/phase state; its two doorbells are `doorbell.rs`'s.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::{
    device::{Bound, Device},
    dma::{Coherent, DmaAddress},
    io::{io_project, Io},
    new_spinlock, new_spinlock_irq,
    prelude::*,
    sync::{
        barrier::{dma_mb, Read},
        Arc, SpinLock, SpinLockIrq,
    },
};

use crate::blk_ops::NvmeOps;
use crate::cmd::{Cqe, Sqe};
use crate::doorbell::{bump, DbPath, Doorbells, Stats};
use crate::fault::InjectSlot;
use crate::le::Le32;
use crate::mq::HwTags;
use crate::reset_work::ResetWork;

/// Submission side state, under the SQ lock.
pub(crate) struct SqState {
    tail: u16,
    /// Tail value last published: batching publishes once per batch.
    rung: u16,
    path: DbPath,
}

/// Completion side state, under the CQ lock.
pub(crate) struct CqState {
    head: u16,
    phase: bool,
    path: DbPath,
}

/// What the completion loop found.
pub(crate) struct Reaped {
    /// Completions consumed.
    pub(crate) count: u32,
}

/// A submission/completion queue pair.
#[pin_data]
pub(crate) struct Queue<'bound> {
    pub(crate) qid: u16,
    /// Entries in each ring (the usable depth is one less).
    pub(crate) depth: u16,
    sq: Coherent<[Sqe]>,
    cq: Coherent<[Cqe]>,
    pub(crate) db: Doorbells<'bound>,
    #[pin]
    sq_state: SpinLock<SqState>,
    /// Taken in the queue's interrupt handler and, for the polled admin
    /// queue and resets, in process context: hence the IRQ-disabling kind.
    #[pin]
    cq_state: SpinLockIrq<CqState>,
    /// blk-mq tags of this hardware queue (set by `init_hctx`), to turn a
    /// command id back into a request.
    pub(crate) tags: HwTags<NvmeOps>,
    /// Where the next completion will appear, `head | phase << 16`: a copy
    /// of the CQ state for [`Self::cqe_pending`], which reads it without
    /// the lock (stale at worst, which only delays a completion to the
    /// next poll).
    cq_next: AtomicU32,
    pub(crate) stats: Stats,
    /// Set when a reset failed to bring the queue back: requests fail fast.
    dead: AtomicBool,
    /// The controller's reset work, queued when a completion names no
    /// request in flight (none for the admin queue).
    reset_work: Option<Arc<ResetWork>>,
    /// Test hook (debugfs `inject`) for the next completion.
    inject: InjectSlot,
    /// The admin queue's last completion (`Mailbox` packing), posted by
    /// whoever reaps it (its interrupt or the polling waiter) for the one
    /// admin command in flight.
    mailbox: AtomicU64,
}

/// A completion as the admin mailbox holds it: command id, status and
/// dword 0 in one word; `EMPTY` has a status no entry can carry (15 bits).
struct Mailbox;

impl Mailbox {
    const EMPTY: u64 = u64::MAX;

    fn pack(cqe: &Cqe) -> u64 {
        (u64::from(cqe.cid()) << 48) | (u64::from(cqe.status().0) << 32) | u64::from(cqe.result())
    }
}

/// An admin completion taken from the mailbox.
pub(crate) struct Posted {
    pub(crate) cid: u16,
    pub(crate) status: crate::cmd::Status,
    pub(crate) dw0: u32,
}

impl<'bound> Queue<'bound> {
    /// Allocates the rings of queue `qid` with `depth` entries each.
    pub(crate) fn new(
        dev: &Device<Bound>,
        qid: u16,
        depth: u16,
        db: Doorbells<'bound>,
        reset_work: Option<Arc<ResetWork>>,
    ) -> Result<impl PinInit<Self, Error>> {
        let sq = Coherent::<Sqe>::zeroed_slice(dev, depth.into(), GFP_KERNEL)?;
        let cq = Coherent::<Cqe>::zeroed_slice(dev, depth.into(), GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            qid,
            depth,
            sq,
            cq,
            db,
            sq_state <- new_spinlock!(
                SqState { tail: 0, rung: 0, path: DbPath::Mmio },
                "nvme_dbbuf:sq"
            ),
            cq_state <- new_spinlock_irq!(
                CqState { head: 0, phase: true, path: DbPath::Mmio },
                "nvme_dbbuf:cq"
            ),
            tags: HwTags::new(),
            cq_next: AtomicU32::new(1 << 16),
            stats: Stats::default(),
            dead: AtomicBool::new(false),
            reset_work,
            inject: InjectSlot::new(),
            mailbox: AtomicU64::new(Mailbox::EMPTY),
        }? Error))
    }

    /// Bus address of the submission ring.
    pub(crate) fn sq_dma(&self) -> DmaAddress {
        self.sq.dma_address()
    }

    /// Bus address of the completion ring.
    pub(crate) fn cq_dma(&self) -> DmaAddress {
        self.cq.dma_address()
    }

    /// Zeroes the rings and the indices, for a queue the controller no
    /// longer knows (after a controller disable).
    pub(crate) fn reset(&self) {
        let mut sq = self.sq_state.lock();
        let mut cq = self.cq_state.lock();
        // The controller is disabled: it does not access the rings now.
        for i in 0..usize::from(self.depth) {
            // Cannot fail: `i < depth`, the rings' length.
            let _ = write_sqe(&self.sq, i, &Sqe::default());
            let _ = write_cqe(&self.cq, i, &Cqe::default());
        }
        sq.tail = 0;
        sq.rung = 0;
        cq.head = 0;
        cq.phase = true;
        self.cq_next.store(1 << 16, Ordering::Relaxed);
    }

    /// Chooses how this queue's doorbells are published.  Only while the
    /// queue is idle (no request in flight), between controller enable and
    /// the first command on the queue.
    pub(crate) fn set_paths(&self, sq: DbPath, cq: DbPath) {
        self.sq_state.lock().path = sq;
        self.cq_state.lock().path = cq;
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    pub(crate) fn set_dead(&self, dead: bool) {
        self.dead.store(dead, Ordering::Relaxed);
    }

    /// A completion named no request in flight: the queue's contents are
    /// unknown, so ask for a controller reset (from any context).
    pub(crate) fn bad_completion(&self) {
        if let Some(w) = &self.reset_work {
            w.schedule();
        }
    }

    /// Counts completions `->poll` reaped.
    pub(crate) fn count_polled(&self, n: u32) {
        if n > 0 {
            bump(&self.stats.polled, n.into());
        }
    }

    /// The test hooks armed on this queue.
    pub(crate) fn hooks(&self) -> &InjectSlot {
        &self.inject
    }

    /// Posts an admin completion for the waiting command.
    pub(crate) fn post(&self, cqe: &Cqe) {
        self.mailbox.store(Mailbox::pack(cqe), Ordering::Release);
    }

    /// Takes the posted admin completion, if any.
    pub(crate) fn take_posted(&self) -> Option<Posted> {
        let v = self.mailbox.swap(Mailbox::EMPTY, Ordering::Acquire);
        (v != Mailbox::EMPTY).then_some(Posted {
            cid: (v >> 48) as u16,
            status: crate::cmd::Status((v >> 32) as u16),
            dw0: v as u32,
        })
    }

    /// Publishes the tail if entries were queued since the last time.
    fn publish_sq(&self, s: &mut SqState) {
        if s.rung == s.tail {
            return;
        }
        self.db.sq_tail(&s.path, s.tail, s.rung, &self.stats);
        s.rung = s.tail;
    }

    /// Copies `sqe` into the ring at the tail and advances it; rings the
    /// doorbell when `last` (or when the caller batches, later via
    /// [`Self::commit`]).  The block layer never has more commands in flight
    /// than `depth - 1` (the tag set's depth), so the ring cannot overflow.
    pub(crate) fn submit(&self, sqe: &Sqe, last: bool) {
        let mut s = self.sq_state.lock();
        let tail = s.tail;
        // The controller does not read entries at or past the doorbell
        // tail, so this slot is ours.  Cannot fail: `tail < depth`, the
        // ring's length (it wraps below).
        let _ = write_sqe(&self.sq, usize::from(tail), sqe);
        s.tail = if tail + 1 == self.depth { 0 } else { tail + 1 };
        bump(&self.stats.submitted, 1);
        if last {
            self.publish_sq(&mut s);
        }
    }

    /// Rings the doorbell for entries queued without one (blk-mq
    /// `commit_rqs`, or a batch whose last request failed to queue).
    pub(crate) fn commit(&self) {
        let mut s = self.sq_state.lock();
        self.publish_sq(&mut s);
    }

    /// Consumes every new completion, calling `f` on each, then rings the CQ
    /// head doorbell once.  Runs in interrupt context or, for the polled admin
    /// queue, in process context.
    pub(crate) fn reap(&self, mut f: impl FnMut(&Cqe)) -> Reaped {
        let mut c = self.cq_state.lock();
        let old = c.head;
        let mut count = 0;
        loop {
            // Only the phase tag first: it is the device's "entry valid"
            // flag, written with the entry.
            if self.phase_at(c.head) != Some(c.phase) {
                break;
            }
            // The rest of the entry only after seeing the phase flip.
            dma_mb(Read);
            // The device may write the ring concurrently: volatile reads.
            let Ok(cqe) = read_cqe(&self.cq, usize::from(c.head)) else {
                break; // Cannot happen: `phase_at` checked `head < depth`.
            };
            f(&cqe);
            count += 1;
            if c.head + 1 == self.depth {
                c.head = 0;
                c.phase = !c.phase;
            } else {
                c.head += 1;
            }
        }
        if count > 0 {
            let next = u32::from(c.head) | (u32::from(c.phase) << 16);
            self.cq_next.store(next, Ordering::Relaxed);
            bump(&self.stats.reaped, count.into());
            self.db.cq_head(&c.path, c.head, old, &self.stats);
        }
        Reaped { count }
    }

    /// The phase tag of CQ entry `head` as the device last wrote it, or
    /// `None` past the ring.
    fn phase_at(&self, head: u16) -> Option<bool> {
        // The device may write the entry concurrently: a volatile read.
        let dw3 = (|| -> Result<Le32> {
            Ok(io_project!(&self.cq, [try: usize::from(head)].dw3).copy_read())
        })()
        .ok()?;
        Some(Cqe::phase_of_dw3(dw3))
    }

    /// Whether a completion waits at the CQ head, without taking the CQ
    /// lock: `->poll` is called in a loop while polled I/O waits, and most
    /// calls find nothing (as the in-tree `nvme_cqe_pending`).
    pub(crate) fn cqe_pending(&self) -> bool {
        let next = self.cq_next.load(Ordering::Relaxed);
        self.phase_at(next as u16) == Some(next >> 16 != 0)
    }
}

/// Writes `e` into entry `i` of a submission ring (volatile: the device
/// reads the ring); `ERANGE` past the ring.
fn write_sqe(ring: &Coherent<[Sqe]>, i: usize, e: &Sqe) -> Result {
    io_project!(ring, [try: i]).copy_write(*e);
    Ok(())
}

/// Writes `e` into entry `i` of a completion ring (only to clear it).
fn write_cqe(ring: &Coherent<[Cqe]>, i: usize, e: &Cqe) -> Result {
    io_project!(ring, [try: i]).copy_write(*e);
    Ok(())
}

/// Reads entry `i` of a completion ring as the device wrote it.
fn read_cqe(ring: &Coherent<[Cqe]>, i: usize) -> Result<Cqe> {
    Ok(io_project!(ring, [try: i]).copy_read())
}
