// SPDX-License-Identifier: GPL-2.0

//! The driver's side of the block layer: what its blk-mq callbacks
//! (`blk_ops.rs`) share, the namespace a disk's queue stands for, the
//! controller-page limits of a request, and the driver's tag set and disk
//! types over the local blk-mq layer (`mq.rs`).

use kernel::{prelude::*, sync::Arc};

use crate::blk_ops::NvmeOps;
use crate::lease::Lease;
use crate::mq::{self, DiskParams};
use crate::nvme_dev::DevLt;
use crate::pool::{DmaPool, SgPool};
use crate::prp;
use crate::queue::Queue;

/// Most DMA segments per request.
pub(crate) const MAX_SEGS: usize = 128;
/// Controller page size this driver programs (CC.MPS = 0).
pub(crate) const PAGE: u64 = 4096;
/// PRP list entries: one page, never chained.
const PRP_ENTRIES: usize = (PAGE / 8) as usize;
/// Largest request: what one PRP list page describes at any alignment,
/// capped lower to bound the per-request scatterlist.
pub(crate) const MAX_TRANSFER: u64 = {
    let m = prp::max_transfer(PAGE, PRP_ENTRIES as u64);
    if m > 512 * 1024 {
        512 * 1024
    } else {
        m
    }
};

/// The driver's tag set and disks.
pub(crate) type TagSet<'bound> = mq::TagSet<'bound, NvmeOps>;
pub(crate) type Disk<'bound> = mq::Disk<'bound, NvmeOps>;

/// The tag set's data (`set->driver_data`), which it owns: what its
/// callbacks share with the controller, and the controller itself for the
/// timeout handler.  The controller owns the tag set, so it is reached
/// through its lease, which its teardown revokes once its disks are gone
/// (no request left to time out).
pub(crate) struct IoSet<'bound> {
    pub(crate) shared: Arc<BlkShared<'bound>>,
    pub(crate) ctrl: Arc<Lease<DevLt>>,
}

/// What the tag set's callbacks share with the controller.
pub(crate) struct BlkShared<'bound> {
    /// The DMA device the data is mapped for.
    pub(crate) dev: &'bound kernel::device::Device<kernel::device::Bound>,
    pub(crate) queues: KVec<Arc<Queue<'bound>>>,
    /// Interrupt vector of the first I/O queue (vector 0 is the admin
    /// queue's when there are more).
    pub(crate) irq_offset: u32,
    /// How many of `queues`, the last ones, have no interrupt: blk-mq's
    /// poll queues, reaped by `->poll`.
    pub(crate) polled: usize,
    /// Per-request time limit.
    pub(crate) timeout_jiffies: u32,
    /// PRP list pages, taken per request on demand.
    pub(crate) lists: DmaPool<'bound>,
    /// Discard ranges: one 16-byte block per discard (one range).
    pub(crate) ranges: DmaPool<'bound>,
    /// Scatterlists for requests of several segments.
    pub(crate) sgs: SgPool<MAX_SEGS>,
}

impl BlkShared<'_> {
    /// How many I/O queues have an interrupt (the first ones).
    pub(crate) fn irq_queues(&self) -> usize {
        self.queues.len().saturating_sub(self.polled)
    }
}

/// Per-namespace data: `request_queue->queuedata`.
pub(crate) struct Ns {
    pub(crate) nsid: u32,
    /// log2 of the logical block size.
    pub(crate) lba_shift: u8,
}

/// Queue limits for a namespace: what PRPs from one list page can describe.
pub(crate) struct Limits {
    pub(crate) block_size: u32,
    pub(crate) max_transfer: u64,
    pub(crate) write_cache: bool,
    pub(crate) write_zeroes: bool,
    pub(crate) discard: bool,
}

impl Limits {
    /// The disk's parameters for these.
    pub(crate) fn disk_params(&self) -> Result<DiskParams> {
        // Both count blocks; Write Zeroes in 16 bits (0's based), a DSM
        // range in 32.  One range per Dataset Management command.
        let sectors_per_block = self.block_size >> 9;
        let mut p = DiskParams {
            logical_block_size: self.block_size,
            max_hw_sectors: u32::try_from(self.max_transfer >> 9)?,
            max_segments: MAX_SEGS as u16,
            // Every segment but the first starts, and all but the last end,
            // on a controller page: the precondition of PRPs.
            virt_boundary_mask: (PAGE - 1) as usize,
            // PRP entries must be dword aligned.
            dma_alignment: 3,
            write_cache: self.write_cache,
            ..DiskParams::default()
        };
        if self.write_zeroes {
            p.max_write_zeroes_sectors = u32::from(u16::MAX) * sectors_per_block;
        }
        if self.discard {
            // A bio carries at most 4 GiB - 1 bytes; whole blocks only.
            p.max_discard_sectors = (u32::MAX >> 9) & !(sectors_per_block - 1);
            p.max_discard_segments = 1;
            p.discard_granularity = self.block_size;
        }
        Ok(p)
    }
}
