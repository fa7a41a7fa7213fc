// SPDX-License-Identifier: GPL-2.0

//! The Shadow Doorbell and EventIdx buffers of Doorbell Buffer Config, and
//! the per-queue publish step that decides whether MMIO is still needed.

use core::ptr::NonNull;

use kernel::{
    device::{Bound, Device},
    dma::{Coherent, DmaAddress},
    prelude::*,
    sync::barrier::{mb, Full},
};

use crate::eventidx;

/// Bytes in each buffer: one memory page (CC.MPS 0), which the command's PRP
/// entries can describe without a list.
pub(crate) const BUF_BYTES: usize = 4096;
const WORDS: usize = BUF_BYTES / 4;

/// Both buffers of one controller.  Allocated once at probe and kept across
/// resets: a reset only ends the controller's use of them.
pub(crate) struct DbBuf {
    shadow: Coherent<[u32]>,
    eventidx: Coherent<[u32]>,
    dstrd: u8,
}

impl DbBuf {
    pub(crate) fn new(dev: &Device<Bound>, dstrd: u8) -> Result<Self> {
        Ok(Self {
            shadow: Coherent::<u32>::zeroed_slice(dev, WORDS, GFP_KERNEL)?,
            eventidx: Coherent::<u32>::zeroed_slice(dev, WORDS, GFP_KERNEL)?,
            dstrd,
        })
    }

    pub(crate) fn shadow_dma(&self) -> DmaAddress {
        self.shadow.dma_address()
    }

    pub(crate) fn eventidx_dma(&self) -> DmaAddress {
        self.eventidx.dma_address()
    }

    /// Highest queue id with slots in the buffers.
    pub(crate) fn max_qid(&self) -> Option<u16> {
        eventidx::max_qid(BUF_BYTES, self.dstrd)
    }

    /// Zeroes both buffers.  Only while the controller does not use them:
    /// before the command is (re)issued after a reset.
    pub(crate) fn zero(&self) {
        for i in 0..WORDS {
            // SAFETY: `i < WORDS`, the length of both allocations; the
            // controller is not using the buffers (caller's contract), and
            // the CPU side is only written through volatile accesses.
            unsafe {
                core::ptr::write_volatile(self.shadow.as_mut_ptr().cast::<u32>().add(i), 0);
                core::ptr::write_volatile(self.eventidx.as_mut_ptr().cast::<u32>().add(i), 0);
            }
        }
    }

    /// Non-zero words in both buffers: what a reset leaves behind, for the
    /// debug print that shows the zeroing had something to do.
    pub(crate) fn nonzero_words(&self) -> usize {
        let mut n = 0;
        for i in 0..WORDS {
            // SAFETY: `i < WORDS`; volatile because the device may write.
            let (a, b) = unsafe {
                (
                    core::ptr::read_volatile(self.shadow.as_ptr().cast::<u32>().add(i)),
                    core::ptr::read_volatile(self.eventidx.as_ptr().cast::<u32>().add(i)),
                )
            };
            n += usize::from(a != 0) + usize::from(b != 0);
        }
        n
    }

    fn slot(&self, index: usize) -> Option<Shadow> {
        if index >= WORDS {
            return None;
        }
        // SAFETY: `index < WORDS`, inside both allocations.
        let (db, ei) = unsafe {
            (
                self.shadow.as_mut_ptr().cast::<u32>().add(index),
                self.eventidx.as_mut_ptr().cast::<u32>().add(index),
            )
        };
        Some(Shadow {
            db: NonNull::new(db)?,
            ei: NonNull::new(ei)?,
        })
    }

    /// The submission queue tail slot of queue `qid`.
    pub(crate) fn sq(&self, qid: u16) -> Option<Shadow> {
        self.slot(eventidx::sq_slot(qid, self.dstrd))
    }

    /// The completion queue head slot of queue `qid`.
    pub(crate) fn cq(&self, qid: u16) -> Option<Shadow> {
        self.slot(eventidx::cq_slot(qid, self.dstrd))
    }
}

/// One doorbell's Shadow Doorbell slot and EventIdx slot.
///
/// # Invariants
///
/// Both point into a live [`DbBuf`], which outlives every queue holding a
/// `Shadow` (the driver data drops the queues first).
#[derive(Clone, Copy)]
pub(crate) struct Shadow {
    db: NonNull<u32>,
    ei: NonNull<u32>,
}

// SAFETY: the slots are plain DMA memory accessed only with volatile
// operations under the owning queue's SQ or CQ lock.
unsafe impl Send for Shadow {}
// SAFETY: as above.
unsafe impl Sync for Shadow {}

impl Shadow {
    /// Publishes a doorbell value moving from `old` to `new` and says
    /// whether the MMIO doorbell must be written as well.
    ///
    /// For a submission queue the caller has stored the entries up to `new`;
    /// for a completion queue it has read the entries up to `new`.
    pub(crate) fn publish(&self, new: u16, old: u16) -> bool {
        // Barrier 1: the controller may be polling the shadow slot rather
        // than waiting for MMIO, so it can act on the new value as soon as it
        // sees it.  SQ: our entry stores must be visible before the new tail
        // is (it would fetch a stale entry).  CQ: our reads of the consumed
        // entries must be done before the new head is visible (it may
        // overwrite them).  A write barrier orders the first; ordering prior
        // loads against the store needs the full barrier.
        mb(Full);
        // SAFETY: `db` points into the live buffer (type invariant).
        unsafe { core::ptr::write_volatile(self.db.as_ptr(), u32::from(new)) };
        // Barrier 2: the store of the new value must be globally visible
        // before we load EventIdx.  Otherwise we could read an old EventIdx
        // while the controller, which writes EventIdx and then re-reads the
        // shadow slot, still reads our old value: both sides conclude the
        // other will act and the doorbell is lost (the queue hangs).  Only a
        // full barrier orders a store before a later load.
        mb(Full);
        // SAFETY: `ei` points into the live buffer (type invariant).
        let ei = unsafe { core::ptr::read_volatile(self.ei.as_ptr()) };
        // EventIdx is a 16-bit index in a 32-bit slot.
        eventidx::need_event(ei as u16, new, old)
    }

    /// Publishes `new` without consulting EventIdx, for doorbells that
    /// always ring MMIO as well (the admin queue).
    pub(crate) fn store(&self, new: u16) {
        // Entries before the value, as in `publish`; the MMIO write that
        // follows is ordered after this store by writel() itself.
        mb(Full);
        // SAFETY: `db` points into the live buffer (type invariant).
        unsafe { core::ptr::write_volatile(self.db.as_ptr(), u32::from(new)) };
    }
}
