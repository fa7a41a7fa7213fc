// SPDX-License-Identifier: GPL-2.0

//! The Shadow Doorbell and EventIdx buffers of Doorbell Buffer Config, and
//! the per-queue publish step that decides whether MMIO is still needed.

use kernel::{
    device::{Bound, Device},
    dma::{Coherent, DmaAddress},
    io::{io_read, io_write},
    prelude::*,
    sync::{
        barrier::{mb, Full},
        Arc,
    },
};

use crate::eventidx;

/// Bytes in each buffer: one memory page (CC.MPS 0), which the command's PRP
/// entries can describe without a list.
pub(crate) const BUF_BYTES: usize = 4096;
const WORDS: usize = BUF_BYTES / 4;

/// Both buffers of one controller.  Allocated once at probe and kept across
/// resets: a reset only ends the controller's use of them.  Shared by the
/// queues whose slots they hold ([`ShadowSlot`]), so they outlive every
/// queue that publishes through them.  Device-visible values are
/// little-endian (the spec's; "nvme-pci: fix doorbell buffer value
/// endianness" upstream).
pub(crate) struct DbBuf {
    shadow: Coherent<[u32]>,
    eventidx: Coherent<[u32]>,
    dstrd: u8,
}

/// Reads word `i` of `buf` as the device wrote it (volatile).
fn load(buf: &Coherent<[u32]>, i: usize) -> Result<u32> {
    Ok(u32::from_le(io_read!(buf, [try: i])))
}

/// Writes word `i` of `buf` for the device (volatile).
fn store(buf: &Coherent<[u32]>, i: usize, v: u32) -> Result {
    io_write!(buf, [try: i], v.to_le());
    Ok(())
}

impl DbBuf {
    pub(crate) fn new(dev: &Device<Bound>, dstrd: u8) -> Result<Arc<Self>> {
        Arc::new(
            Self {
                shadow: Coherent::<u32>::zeroed_slice(dev, WORDS, GFP_KERNEL)?,
                eventidx: Coherent::<u32>::zeroed_slice(dev, WORDS, GFP_KERNEL)?,
                dstrd,
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
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
    pub(crate) fn zero(&self) -> Result {
        for i in 0..WORDS {
            store(&self.shadow, i, 0)?;
            store(&self.eventidx, i, 0)?;
        }
        Ok(())
    }

    /// Non-zero words in both buffers: what a reset leaves behind, for the
    /// debug print that shows the zeroing had something to do.
    pub(crate) fn nonzero_words(&self) -> Result<usize> {
        let mut n = 0;
        for i in 0..WORDS {
            n += usize::from(load(&self.shadow, i)? != 0)
                + usize::from(load(&self.eventidx, i)? != 0);
        }
        Ok(n)
    }

    fn slot(self: &Arc<Self>, index: usize) -> Option<ShadowSlot> {
        (index < WORDS).then(|| ShadowSlot {
            buf: self.clone(),
            index,
        })
    }

    /// The submission queue tail slot of queue `qid`.
    pub(crate) fn sq(self: &Arc<Self>, qid: u16) -> Option<ShadowSlot> {
        self.slot(eventidx::sq_slot(qid, self.dstrd))
    }

    /// The completion queue head slot of queue `qid`.
    pub(crate) fn cq(self: &Arc<Self>, qid: u16) -> Option<ShadowSlot> {
        self.slot(eventidx::cq_slot(qid, self.dstrd))
    }
}

/// One doorbell's Shadow Doorbell slot and EventIdx slot.
///
/// # Invariants
///
/// `index < WORDS`: inside both buffers.
#[derive(Clone)]
pub(crate) struct ShadowSlot {
    buf: Arc<DbBuf>,
    index: usize,
}

impl ShadowSlot {
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
        if store(&self.buf.shadow, self.index, new.into()).is_err() {
            // Cannot happen (type invariant); MMIO is always correct.
            return true;
        }
        // Barrier 2: the store of the new value must be globally visible
        // before we load EventIdx.  Otherwise we could read an old EventIdx
        // while the controller, which writes EventIdx and then re-reads the
        // shadow slot, still reads our old value: both sides conclude the
        // other will act and the doorbell is lost (the queue hangs).  Only a
        // full barrier orders a store before a later load.
        mb(Full);
        // EventIdx is a 16-bit index in a 32-bit slot.
        load(&self.buf.eventidx, self.index)
            .map_or(true, |ei| eventidx::need_event(ei as u16, new, old))
    }

    /// Publishes `new` without consulting EventIdx, for doorbells that
    /// always ring MMIO as well (the admin queue).
    pub(crate) fn store(&self, new: u16) {
        // Entries before the value, as in `publish`; the MMIO write that
        // follows is ordered after this store by writel() itself.
        mb(Full);
        // Cannot fail (type invariant); the MMIO write follows anyway.
        let _ = store(&self.buf.shadow, self.index, new.into());
    }
}
