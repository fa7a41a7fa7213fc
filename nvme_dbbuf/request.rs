// SPDX-License-Identifier: GPL-2.0

//! An I/O request as this driver sees it: the per-request data (blk-mq
//! PDU) and the NVMe command built from the request.

use core::{
    cell::UnsafeCell,
    sync::atomic::{fence, AtomicBool, AtomicU16, AtomicU8, Ordering},
};

use kernel::{bindings, prelude::*};

use crate::blk::{
    BlkShared, Ns, BLK_STS_IOERR, BLK_STS_RESOURCE, MAX_SEGS, MAX_TRANSFER, RQF_DONTPREP,
};
use crate::cmd::{self, Sqe};
use crate::data_map::DataMapping;

/// Per-request driver data (blk-mq PDU), set up in `init_request`.
///
/// What the timeout handler, a stale completion entry or a reset may touch
/// while another path owns the request is atomic; the rest is the owner's
/// alone ([`Iod::owned`]).
#[repr(C)]
pub(crate) struct Iod {
    owned: UnsafeCell<Owned>,
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

/// Bytes of driver data in each request.
pub(crate) const PDU_BYTES: usize = core::mem::size_of::<Iod>();

/// [`Iod::generation`]: the generation bits, and the Abort mark.
pub(crate) const GENERATION: u8 = 0xf;
pub(crate) const ABORT_SENT: u8 = 0x10;

/// The part of an [`Iod`] only the request's owner uses.
pub(crate) struct Owned {
    /// The data as the controller sees it.
    pub(crate) data: DataMapping,
    /// Times this request was requeued after a failure or a reset; kept
    /// across requeues (`RQF_DONTPREP`), zeroed for each new request.
    pub(crate) retries: u8,
}

impl Iod {
    /// A request's data before its first use.
    pub(crate) fn new() -> Self {
        Self {
            owned: UnsafeCell::new(Owned {
                data: DataMapping::new(),
                retries: 0,
            }),
            generation: AtomicU8::new(0),
            status: AtomicU16::new(0),
            cancelled: AtomicBool::new(false),
        }
    }

    /// The owner's part.
    ///
    /// # Safety
    ///
    /// The caller owns the request (`queue_rq` until it starts it, then
    /// the one `complete`) and holds no other reference to this part.
    #[expect(clippy::mut_from_ref)]
    pub(crate) unsafe fn owned(&self) -> &mut Owned {
        // SAFETY: one owner at a time (caller guarantee).
        unsafe { &mut *self.owned.get() }
    }
}

/// # Safety
///
/// `rq` is a request of a tag set built by [`crate::blk::TagSet::new`].
pub(crate) unsafe fn iod<'a>(rq: *mut bindings::request) -> &'a Iod {
    // SAFETY: the PDU of our requests is an `Iod` (cmd_size), initialised in
    // `init_request`; shared: the concurrently used fields are atomic.
    unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<Iod>() }
}

/// Maps `rq`'s data and builds its read/write command.
///
/// # Safety
///
/// `rq` is a started-to-be request of our tag set on namespace `ns`.
pub(crate) unsafe fn build_rw(
    ns: &Ns,
    shared: &BlkShared<'_>,
    rq: *mut bindings::request,
    write: bool,
) -> Result<Sqe, bindings::blk_status_t> {
    // SAFETY: caller guarantee: `queue_rq` owns the request.
    let (owned, sector, bytes, nsegs) = unsafe {
        (
            iod(rq).owned(),
            (*rq).__sector,
            (*rq).__data_len,
            (*rq).nr_phys_segments,
        )
    };
    let blocks = rw_blocks(ns, bytes, nsegs).ok_or(BLK_STS_IOERR)?;
    // SAFETY: caller guarantee; `nsegs` was checked above.
    let p = unsafe {
        owned
            .data
            .map_rw(ns.dev, shared, rq, (bytes, nsegs), write)?
    };
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
///
/// # Safety
///
/// `rq` is a request of our tag set on `ns`.
unsafe fn block_range(ns: &Ns, rq: *mut bindings::request) -> Option<(u64, u32)> {
    // SAFETY: caller guarantee.
    let (sector, bytes) = unsafe { ((*rq).__sector, (*rq).__data_len) };
    let blocks = bytes >> ns.lba_shift;
    (blocks > 0 && blocks << ns.lba_shift == bytes).then(|| (sector >> (ns.lba_shift - 9), blocks))
}

/// Write Zeroes: no data, at most 65535 blocks (the queue limit).
///
/// # Safety
///
/// `rq` is a request of our tag set on `ns`.
pub(crate) unsafe fn build_write_zeroes(
    ns: &Ns,
    rq: *mut bindings::request,
) -> Result<Sqe, bindings::blk_status_t> {
    // SAFETY: caller guarantee.
    let (slba, blocks) = unsafe { block_range(ns, rq) }.ok_or(BLK_STS_IOERR)?;
    let blocks = u16::try_from(blocks).map_err(|_| BLK_STS_IOERR)?;
    Ok(cmd::write_zeroes(ns.nsid, slba, blocks))
}

/// Dataset Management deallocate with one range, which goes into a block
/// from the list pool (the command carries no data otherwise).
///
/// # Safety
///
/// `rq` is a request of our tag set on `ns`, owned by `queue_rq`.
pub(crate) unsafe fn build_discard(
    ns: &Ns,
    shared: &BlkShared<'_>,
    rq: *mut bindings::request,
) -> Result<Sqe, bindings::blk_status_t> {
    // SAFETY: caller guarantee.
    let (slba, blocks) = unsafe { block_range(ns, rq) }.ok_or(BLK_STS_IOERR)?;
    let mut b = shared.lists.alloc().ok_or(BLK_STS_RESOURCE)?;
    let dma = b.dma();
    for (e, w) in b
        .entries()
        .iter_mut()
        .zip(cmd::DsmRange::new(slba, blocks).words())
    {
        *e = w;
    }
    // SAFETY: caller guarantee: `queue_rq` owns the request.
    unsafe { iod(rq).owned().data.hold_list(b) };
    Ok(cmd::discard(ns.nsid, 1, dma))
}

/// Readies `rq`'s PDU for its next use; returns the command id of that use.
///
/// # Safety
///
/// `queue_rq` owns `rq` (with tag `tag`) and has not started it.
pub(crate) unsafe fn next_use(rq: *mut bindings::request, tag: i32) -> u16 {
    // SAFETY: caller guarantee: `rq` is ours.
    let iod = unsafe { iod(rq) };
    // SAFETY: not yet started: nothing else writes its flags, and we own it.
    unsafe {
        if (*rq).rq_flags & RQF_DONTPREP == 0 {
            // A new request, not a requeued one: no retries yet.
            iod.owned().retries = 0;
            (*rq).rq_flags |= RQF_DONTPREP;
        }
    }
    // The next generation, without the Abort mark.
    let generation =
        (iod.generation.load(Ordering::Relaxed) & GENERATION).wrapping_add(1) & GENERATION;
    iod.generation.store(generation, Ordering::Relaxed);
    iod.status.store(0, Ordering::Relaxed);
    iod.cancelled.store(false, Ordering::Relaxed);
    (u16::from(generation) << 12) | (tag as u16 & 0xfff)
}

/// The use ([`Iod::generation`]) `rq` is in flight at, if it is: its
/// state, then the generation `queue_rq` wrote before starting it.
///
/// # Safety
///
/// `rq` is a request of our tag set (its tags' requests live as long as
/// it).
pub(crate) unsafe fn in_flight_at(rq: *mut bindings::request) -> Option<u8> {
    // SAFETY: caller guarantee; C writes the state concurrently, so it is
    // read through a raw pointer.
    let state = unsafe { core::ptr::addr_of!((*rq).state).read_volatile() };
    fence(Ordering::Acquire);
    // SAFETY: as above; only an atomic field of the PDU.
    let generation = unsafe { iod(rq) }.generation.load(Ordering::Relaxed);
    (state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT).then_some(generation)
}

/// Whether fault injection (`io-timeout-fail`, `fail_io_timeout`) wants this
/// completion dropped, as C drivers check with `blk_should_fake_timeout()`
/// (which is `false` without `CONFIG_FAIL_IO_TIMEOUT`).
///
/// # Safety
///
/// `q` is a live request queue.
#[cfg(not(CONFIG_FAIL_IO_TIMEOUT))]
pub(crate) unsafe fn should_fake_timeout(_q: *mut bindings::request_queue) -> bool {
    false
}

/// # Safety
///
/// `q` is a live request queue.
#[cfg(CONFIG_FAIL_IO_TIMEOUT)]
pub(crate) unsafe fn should_fake_timeout(q: *mut bindings::request_queue) -> bool {
    // SAFETY: `q` is live (caller); `queue_flags` is a plain bitmap word.
    let flags = unsafe { core::ptr::read_volatile(&(*q).queue_flags) };
    // SAFETY: as above.
    flags & (1 << bindings::QUEUE_FLAG_FAIL_IO) != 0
        && unsafe { bindings::__blk_should_fake_timeout(q) }
}
