// SPDX-License-Identifier: GPL-2.0

//! An I/O request as this driver sees it: the per-request data (blk-mq
//! PDU) and the NVMe command built from the request.

use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU8, Ordering};

use kernel::prelude::*;

use crate::blk::{BlkShared, Ns, MAX_SEGS, MAX_TRANSFER};
use crate::blk_ops::NvmeOps;
use crate::cmd::{self, Sqe};
use crate::data_map::DataMapping;
use crate::mq::{Pending, Request, Status};

/// Per-request driver data any path may touch: the timeout handler, a
/// stale completion entry or a reset may look at it while another path
/// owns the request.
pub(crate) struct Iod {
    /// This use of the request: its generation (the command id's top 4
    /// bits, [`GENERATION`]: a completion for an earlier use of the same
    /// tag is recognised as stale) and whether an Abort was sent for it
    /// ([`ABORT_SENT`], first timeout).  One byte, so that the Abort mark
    /// lands on the use it is meant for.
    pub(crate) generation: AtomicU8,
    pub(crate) status: AtomicU16,
    /// Cancelled by a controller reset: retried (requeued) or failed, as
    /// `cmd::disposition` decides.
    pub(crate) cancelled: AtomicBool,
}

/// [`Iod::generation`]: the generation bits, and the Abort mark.
pub(crate) const GENERATION: u8 = 0xf;
pub(crate) const ABORT_SENT: u8 = 0x10;

/// The part of a request's data only its owner uses.
pub(crate) struct Owned {
    /// The data as the controller sees it.
    pub(crate) data: DataMapping,
    /// Times this request was requeued after a failure or a reset; kept
    /// across requeues, zeroed for each new request.
    pub(crate) retries: u8,
}

impl Iod {
    /// A request's data before its first use.
    pub(crate) fn new() -> (Self, Owned) {
        (
            Self {
                generation: AtomicU8::new(0),
                status: AtomicU16::new(0),
                cancelled: AtomicBool::new(false),
            },
            Owned {
                data: DataMapping::new(),
                retries: 0,
            },
        )
    }
}

/// Bytes of driver data in each request (layer's claim included).
pub(crate) const PDU_BYTES: usize = core::mem::size_of::<crate::mq_request::Pdu<NvmeOps>>();

/// Maps `rq`'s data and builds its read/write command.
pub(crate) fn build_rw(
    ns: &Ns,
    shared: &BlkShared<'_>,
    rq: &mut Pending<'_, NvmeOps>,
    write: bool,
) -> Result<Sqe, Status> {
    let (sector, bytes, nsegs) = (rq.sector(), rq.bytes(), rq.nr_phys_segments());
    let blocks = rw_blocks(ns, bytes, nsegs).ok_or(Status::IOERR)?;
    let (req, owned) = rq.split();
    let p = owned.data.map_rw(shared, req, write)?;
    Ok(
        cmd::rw(write, ns.nsid, sector >> (ns.lba_shift - 9), blocks, false)
            .with_prps(p.prp1, p.prp2),
    )
}

/// Blocks of a read/write of `bytes` in `nsegs` segments, if the command
/// and this driver's limits can carry it.
fn rw_blocks(ns: &Ns, bytes: u32, nsegs: u16) -> Option<u16> {
    let blocks = u16::try_from(bytes >> ns.lba_shift).ok()?;
    (blocks != 0
        && u64::from(bytes) <= MAX_TRANSFER
        && nsegs != 0
        && usize::from(nsegs) <= MAX_SEGS)
        .then_some(blocks)
}

/// The request's first block and block count, if it is whole blocks.
fn block_range(ns: &Ns, rq: &Request<NvmeOps>) -> Option<(u64, u32)> {
    let (sector, bytes) = (rq.sector(), rq.bytes());
    let blocks = bytes >> ns.lba_shift;
    (blocks > 0 && blocks << ns.lba_shift == bytes).then(|| (sector >> (ns.lba_shift - 9), blocks))
}

/// Write Zeroes: no data, at most 65535 blocks (the queue limit).
pub(crate) fn build_write_zeroes(ns: &Ns, rq: &Request<NvmeOps>) -> Result<Sqe, Status> {
    let (slba, blocks) = block_range(ns, rq).ok_or(Status::IOERR)?;
    let blocks = u16::try_from(blocks).map_err(|_| Status::IOERR)?;
    Ok(cmd::write_zeroes(ns.nsid, slba, blocks))
}

/// Dataset Management deallocate with one range, which goes into a block
/// of the range pool (the command carries no data otherwise).
pub(crate) fn build_discard(
    ns: &Ns,
    shared: &BlkShared<'_>,
    rq: &mut Pending<'_, NvmeOps>,
) -> Result<Sqe, Status> {
    let (slba, blocks) = block_range(ns, rq).ok_or(Status::IOERR)?;
    let mut b = shared.ranges.alloc().ok_or(Status::RESOURCE)?;
    let dma = b.dma();
    for (e, w) in b
        .entries()
        .iter_mut()
        .zip(cmd::DsmRange::new(slba, blocks).words())
    {
        *e = w;
    }
    rq.owned().data.hold_list(b);
    Ok(cmd::discard(ns.nsid, 1, dma))
}

/// Readies `rq`'s data for its next use; returns the command id of that use.
pub(crate) fn next_use(rq: &mut Pending<'_, NvmeOps>) -> u16 {
    if rq.first_dispatch() {
        // A new request, not a requeued one: no retries yet.
        rq.owned().retries = 0;
    }
    let iod = rq.data();
    // The next generation, without the Abort mark.
    let generation =
        (iod.generation.load(Ordering::Relaxed) & GENERATION).wrapping_add(1) & GENERATION;
    iod.generation.store(generation, Ordering::Relaxed);
    iod.status.store(0, Ordering::Relaxed);
    iod.cancelled.store(false, Ordering::Relaxed);
    (u16::from(generation) << 12) | (rq.tag() as u16 & 0xfff)
}

/// The use ([`Iod::generation`]) `rq` is in flight at, if it is: its
/// state, then the generation `queue_rq` wrote before starting it.
pub(crate) fn in_flight_at(rq: &Request<NvmeOps>) -> Option<u8> {
    rq.is_in_flight()
        .then(|| rq.data().generation.load(Ordering::Relaxed))
}
