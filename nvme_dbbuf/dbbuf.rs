// SPDX-License-Identifier: GPL-2.0

//! The Shadow Doorbell and EventIdx buffers of Doorbell Buffer Config (the
//! publish step through their slots is in `doorbell.rs`).

use kernel::{
    device::{Bound, Device},
    dma::{Coherent, DmaAddress},
    io::{io_project, Io},
    prelude::*,
    sync::Arc,
};

use crate::doorbell::ShadowSlot;
use crate::eventidx;
use crate::le::Le32;

/// Bytes in each buffer: one memory page (CC.MPS 0), which the command's PRP
/// entries can describe without a list.
pub(crate) const BUF_BYTES: usize = 4096;
pub(crate) const WORDS: usize = BUF_BYTES / 4;

/// Both buffers of one controller.  Allocated once at probe and kept across
/// resets: a reset only ends the controller's use of them.  Shared by the
/// queues whose slots they hold ([`ShadowSlot`]), so they outlive every
/// queue that publishes through them.  Device-visible values are
/// little-endian ([`Le32`]; the spec's, "nvme-pci: fix doorbell buffer
/// value endianness" upstream).
pub(crate) struct DbBuf {
    shadow: Coherent<[Le32]>,
    eventidx: Coherent<[Le32]>,
    dstrd: u8,
}

/// Reads word `i` of `buf` as the device wrote it (volatile).
fn load(buf: &Coherent<[Le32]>, i: usize) -> Result<u32> {
    Ok(io_project!(buf, [try: i]).copy_read().get())
}

/// Writes word `i` of `buf` for the device (volatile).
fn store(buf: &Coherent<[Le32]>, i: usize, v: u32) -> Result {
    io_project!(buf, [try: i]).copy_write(Le32::new(v));
    Ok(())
}

impl DbBuf {
    pub(crate) fn new(dev: &Device<Bound>, dstrd: u8) -> Result<Arc<Self>> {
        Arc::new(
            Self {
                shadow: Coherent::<Le32>::zeroed_slice(dev, WORDS, GFP_KERNEL)?,
                eventidx: Coherent::<Le32>::zeroed_slice(dev, WORDS, GFP_KERNEL)?,
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
        ShadowSlot::new(self.clone(), index)
    }

    /// Writes shadow doorbell word `i`.
    pub(crate) fn store_shadow(&self, i: usize, v: u16) -> Result {
        store(&self.shadow, i, v.into())
    }

    /// The controller's EventIdx in word `i` (a 16-bit index in a 32-bit
    /// slot).
    pub(crate) fn load_eventidx(&self, i: usize) -> Result<u16> {
        load(&self.eventidx, i).map(|v| v as u16)
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
