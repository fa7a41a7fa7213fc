// SPDX-License-Identifier: GPL-2.0

//! blk-mq glue: the tag set (one hardware context per I/O queue), one disk
//! per namespace, and the request path (command building, DMA mapping, PRPs,
//! completion).
//!
//! The 7.3 `block::mq` abstraction has no per-request driver data, hardware
//! context index, queue mapping, timeout or request sector/length/data
//! accessors, so this file uses the C API directly, each call with its
//! `// SAFETY:` argument.  Nothing here is used before the controller and its
//! queues exist, and everything here is torn down before they go.

use core::{
    cell::UnsafeCell,
    ffi::c_void,
    marker::PhantomData,
    sync::atomic::{fence, AtomicBool, AtomicU16, AtomicU8, Ordering},
};

use kernel::{bindings, prelude::*, static_lock_class};

use crate::cmd::{self, Cqe, Sqe};
use crate::data_map::DataMapping;
use crate::fault::{self, Inject};
use crate::irq::Completer;
use crate::pool::{DmaPool, SgPool};
use crate::prp;
use crate::queue::Queue;
use crate::NvmeDev;

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

/// `BLK_FEAT_WRITE_CACHE` (a macro with a cast, not in the bindings).
const BLK_FEAT_WRITE_CACHE: bindings::blk_features_t = 1 << 0;
const BLK_STS_OK: bindings::blk_status_t = 0;
const BLK_STS_NOTSUPP: bindings::blk_status_t = 1;
pub(crate) const BLK_STS_IOERR: bindings::blk_status_t = 10;
pub(crate) const BLK_STS_RESOURCE: bindings::blk_status_t = 9;
/// `RQF_DONTPREP` and `REQ_FAILFAST_*` (macros with casts).
const RQF_DONTPREP: bindings::req_flags_t = 1 << bindings::rqf_flags___RQF_DONTPREP;
const REQ_FAILFAST: bindings::blk_opf_t = (1 << bindings::req_flag_bits___REQ_FAILFAST_DEV)
    | (1 << bindings::req_flag_bits___REQ_FAILFAST_TRANSPORT)
    | (1 << bindings::req_flag_bits___REQ_FAILFAST_DRIVER);

/// The raw `struct device` behind a bound device reference.
pub(crate) fn dev_raw(
    dev: &kernel::device::Device<kernel::device::Bound>,
) -> *mut bindings::device {
    // `device::Device` is `repr(transparent)` over `Opaque<bindings::device>`.
    core::ptr::from_ref(dev).cast_mut().cast()
}

/// Per-request driver data (blk-mq PDU), set up in `init_request`.
///
/// What the timeout handler, a stale completion entry or a reset may touch
/// while another path owns the request is atomic; the rest is the owner's
/// alone ([`Iod::owned`]).
#[repr(C)]
struct Iod {
    owned: UnsafeCell<Owned>,
    /// This use of the request: its generation (the command id's top 4
    /// bits, [`GENERATION`]: a completion for an earlier use of the same
    /// tag is recognised as stale) and whether an Abort was sent for it
    /// ([`ABORT_SENT`], first timeout).  One byte, so that the Abort mark
    /// lands on the use it is meant for.
    generation: AtomicU8,
    status: AtomicU16,
    /// Cancelled by a controller reset: retried (requeued) or failed, as
    /// `cmd::disposition` decides.
    cancelled: AtomicBool,
}

/// Bytes of driver data in each request.
pub(crate) const PDU_BYTES: usize = core::mem::size_of::<Iod>();

/// [`Iod::generation`]: the generation bits, and the Abort mark.
const GENERATION: u8 = 0xf;
const ABORT_SENT: u8 = 0x10;

/// The part of an [`Iod`] only the request's owner uses.
struct Owned {
    /// The data as the controller sees it.
    data: DataMapping,
    /// Times this request was requeued after a failure or a reset; kept
    /// across requeues (`RQF_DONTPREP`), zeroed for each new request.
    retries: u8,
}

impl Iod {
    /// The owner's part.
    ///
    /// # Safety
    ///
    /// The caller owns the request (`queue_rq` until it starts it, then
    /// the one `complete`) and holds no other reference to this part.
    #[expect(clippy::mut_from_ref)]
    unsafe fn owned(&self) -> &mut Owned {
        // SAFETY: one owner at a time (caller guarantee).
        unsafe { &mut *self.owned.get() }
    }
}

/// What the tag set's callbacks share, a field of the controller (which is
/// `set->driver_data`).
pub(crate) struct BlkShared<'bound> {
    /// The DMA device the data is mapped for.
    pub(crate) dev: &'bound kernel::device::Device<kernel::device::Bound>,
    pub(crate) queues: KVec<Pin<KBox<Queue<'bound>>>>,
    /// Interrupt vector of the first I/O queue (vector 0 is the admin
    /// queue's when there are more).
    pub(crate) irq_offset: u32,
    /// How many of `queues`, the last ones, have no interrupt: blk-mq's
    /// poll queues, reaped by `->poll`.
    pub(crate) polled: usize,
    /// Per-request time limit.
    pub(crate) timeout_jiffies: u32,
    /// PRP list pages (and discard ranges), taken per request on demand.
    pub(crate) lists: DmaPool<'bound>,
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
///
/// # Invariants
///
/// `dev` is the bound device the disk hangs off, alive as long as the disk
/// (its [`Disk`] borrows it).
pub(crate) struct Ns {
    dev: *mut bindings::device,
    nsid: u32,
    /// log2 of the logical block size.
    lba_shift: u8,
}

/// A blk-mq tag set, freed on drop.
///
/// # Invariants
///
/// `set` came from `KBox::into_raw` and `blk_mq_alloc_tag_set` succeeded on
/// it; its `driver_data` is a controller whose `shared` is set, which
/// outlives the tag set.
pub(crate) struct TagSet {
    set: *mut bindings::blk_mq_tag_set,
}

// SAFETY: the tag set is only used through the C API, which locks internally.
unsafe impl Send for TagSet {}
// SAFETY: as above.
unsafe impl Sync for TagSet {}

impl TagSet {
    /// A tag set with one hardware context per I/O queue of `dev`, each
    /// `depth` deep; its callbacks reach `dev`.
    ///
    /// # Safety
    ///
    /// `dev` must stay at its address and outlive the returned tag set and
    /// every disk on it (the tag set is to be a field of `dev`).
    pub(crate) unsafe fn new(dev: &NvmeDev<'_>, depth: u32) -> Result<Self> {
        let shared = dev.shared.as_ref().ok_or(EINVAL)?;
        // SAFETY: all-zero is the documented starting state of a tag set.
        let mut set: bindings::blk_mq_tag_set = unsafe { core::mem::zeroed() };
        set.ops = &OPS;
        set.nr_hw_queues = u32::try_from(shared.queues.len())?;
        set.queue_depth = depth;
        set.cmd_size = u32::try_from(core::mem::size_of::<Iod>())?;
        set.numa_node = bindings::NUMA_NO_NODE;
        // Default, read (unused: no queues of its own) and poll maps.
        set.nr_maps = if shared.polled > 0 {
            bindings::hctx_type_HCTX_MAX_TYPES
        } else {
            1
        };
        set.timeout = shared.timeout_jiffies;
        set.driver_data = core::ptr::from_ref(dev).cast_mut().cast();
        let set = KBox::into_raw(KBox::new(set, GFP_KERNEL)?);
        // SAFETY: `set` is a valid, initialised tag set description.
        let ret = unsafe { bindings::blk_mq_alloc_tag_set(set) };
        if ret != 0 {
            // SAFETY: from `into_raw` above, not shared with C on failure.
            drop(unsafe { KBox::from_raw(set) });
            return Err(Error::from_errno(ret));
        }
        Ok(Self { set })
    }
}

impl TagSet {
    /// Stops dispatch to every hardware queue, waiting for `queue_rq` calls
    /// in progress.
    pub(crate) fn quiesce(&self) {
        // SAFETY: allocated in `new` (invariant).
        unsafe { bindings::blk_mq_quiesce_tagset(self.set) };
    }

    pub(crate) fn unquiesce(&self) {
        // SAFETY: allocated in `new` (invariant).
        unsafe { bindings::blk_mq_unquiesce_tagset(self.set) };
    }

    /// Hands every request still in flight back to the block layer (its
    /// completion requeues or fails it).  Only after the controller is
    /// stopped (disabled, or its bus mastering cut), its handlers
    /// synchronised and its completion queues reaped; returns how many
    /// there were.
    pub(crate) fn cancel_inflight(&self) -> u32 {
        let mut n = 0u32;
        // SAFETY: allocated in `new` (invariant); `cancel_one` only uses
        // `data` as the counter passed here.
        unsafe {
            bindings::blk_mq_tagset_busy_iter(
                self.set,
                Some(cancel_one),
                core::ptr::from_mut(&mut n).cast(),
            )
        };
        n
    }
}

impl Drop for TagSet {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` (invariant); every disk using it was
        // deleted and put before (field order of the driver data).
        unsafe { bindings::blk_mq_free_tag_set(self.set) };
        // SAFETY: from `KBox::into_raw` in `new`; C no longer uses it.
        drop(unsafe { KBox::from_raw(self.set) });
    }
}

/// Queue limits for a namespace: what PRPs from one list page can describe.
pub(crate) struct Limits {
    pub(crate) block_size: u32,
    pub(crate) max_transfer: u64,
    pub(crate) write_cache: bool,
    pub(crate) write_zeroes: bool,
    pub(crate) discard: bool,
}

/// A namespace's disk, deleted on drop.
///
/// # Invariants
///
/// `disk` was added with `device_add_disk`; `ns` came from `KBox::into_raw`
/// and is the disk's queuedata.
pub(crate) struct Disk<'bound> {
    disk: *mut bindings::gendisk,
    ns: *mut Ns,
    _dev: PhantomData<&'bound kernel::device::Device<kernel::device::Bound>>,
}

// SAFETY: a handle to a C object with its own locking.
unsafe impl Send for Disk<'_> {}
// SAFETY: as above.
unsafe impl Sync for Disk<'_> {}

/// No callbacks; `owner` pins the module while a disk is open, so rmmod
/// cannot free this table (and the code behind the disk) under an open file.
const FOPS: bindings::block_device_operations = bindings::block_device_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    // SAFETY: all-zero (no callbacks) is a valid operations table.
    ..unsafe { core::mem::zeroed() }
};

impl<'bound> Disk<'bound> {
    /// Allocates and adds the disk `name` of namespace `nsid` (logical
    /// blocks of 2^`lba_shift` bytes) under `parent`, `sectors` long.
    ///
    /// # Safety
    ///
    /// The disk must be dropped before `set` (it does I/O through it).
    pub(crate) unsafe fn new(
        set: &TagSet,
        parent: &'bound kernel::device::Device<kernel::device::Bound>,
        (nsid, lba_shift): (u32, u8),
        lim: &Limits,
        name: &[u8],
        sectors: u64,
    ) -> Result<Self> {
        let parent = dev_raw(parent);
        let ns = Ns {
            dev: parent,
            nsid,
            lba_shift,
        };
        // SAFETY: all-zero limits mean "block layer defaults".
        let mut l: bindings::queue_limits = unsafe { core::mem::zeroed() };
        l.logical_block_size = lim.block_size;
        l.physical_block_size = lim.block_size;
        l.io_min = lim.block_size;
        l.max_hw_sectors = u32::try_from(lim.max_transfer >> 9)?;
        l.max_segments = MAX_SEGS as u16;
        // Every segment but the first starts, and all but the last end, on a
        // controller page: the precondition of PRPs.
        l.virt_boundary_mask = (PAGE - 1) as usize;
        // PRP entries must be dword aligned.
        l.dma_alignment = 3;
        if lim.write_cache {
            l.features |= BLK_FEAT_WRITE_CACHE;
        }
        // Both count blocks; Write Zeroes in 16 bits (0's based), a DSM
        // range in 32.  One range per Dataset Management command.
        let sectors_per_block = lim.block_size >> 9;
        if lim.write_zeroes {
            l.max_write_zeroes_sectors = u32::from(u16::MAX) * sectors_per_block;
        }
        if lim.discard {
            // A bio carries at most 4 GiB - 1 bytes; whole blocks only.
            l.max_hw_discard_sectors = (u32::MAX >> 9) & !(sectors_per_block - 1);
            l.max_discard_segments = 1;
            l.discard_granularity = lim.block_size;
        }
        let ns = KBox::into_raw(KBox::new(ns, GFP_KERNEL)?);
        // SAFETY: `set.set` is an allocated tag set; `l` is valid for the
        // call; `ns` stays valid until `drop` (after del_gendisk).
        let disk = unsafe {
            bindings::__blk_mq_alloc_disk(set.set, &mut l, ns.cast(), static_lock_class!().as_ptr())
        };
        if let Err(e) = kernel::error::from_err_ptr(disk) {
            // SAFETY: from `into_raw` above, unused on failure.
            drop(unsafe { KBox::from_raw(ns) });
            return Err(e);
        }
        // SAFETY: `disk` is a freshly allocated gendisk nobody else sees yet.
        unsafe {
            (*disk).fops = &FOPS;
            let dst = &mut (*disk).disk_name;
            let n = name.len().min(dst.len() - 1);
            for (d, s) in dst.iter_mut().zip(name.iter().take(n)) {
                *d = *s;
            }
            bindings::set_capacity(disk, sectors);
        }
        // SAFETY: `parent` is the bound PCI device; `disk` is set up.
        let ret = unsafe { bindings::device_add_disk(parent, disk, core::ptr::null_mut()) };
        if ret != 0 {
            // SAFETY: allocated above, never added.
            unsafe { bindings::put_disk(disk) };
            // SAFETY: from `into_raw` above; the queue that referenced it is gone.
            drop(unsafe { KBox::from_raw(ns) });
            return Err(Error::from_errno(ret));
        }
        Ok(Self {
            disk,
            ns,
            _dev: PhantomData,
        })
    }
}

impl Drop for Disk<'_> {
    fn drop(&mut self) {
        // SAFETY: added in `new` (invariant).  del_gendisk waits for
        // outstanding I/O, which still completes: interrupts are freed later.
        unsafe {
            bindings::del_gendisk(self.disk);
            bindings::put_disk(self.disk);
        }
        // SAFETY: from `KBox::into_raw` in `new`; the queue is gone.
        drop(unsafe { KBox::from_raw(self.ns) });
    }
}

/// # Safety
///
/// `rq` is a request of a tag set built by [`TagSet::new`].
unsafe fn iod<'a>(rq: *mut bindings::request) -> &'a Iod {
    // SAFETY: the PDU of our requests is an `Iod` (cmd_size), initialised in
    // `init_request`; shared: the concurrently used fields are atomic.
    unsafe { &*bindings::blk_mq_rq_to_pdu(rq).cast::<Iod>() }
}

/// Maps `rq`'s data and builds its read/write command.
///
/// # Safety
///
/// `rq` is a started-to-be request of our tag set on namespace `ns`.
unsafe fn build_rw(
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
unsafe fn build_write_zeroes(
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
unsafe fn build_discard(
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

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn queue_rq(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a live hctx (driver_data set in init_hctx to a
    // queue that outlives the tag set) and request of our tag set whose
    // request_queue's queuedata is the namespace's `Ns`.
    let (queue, ns, shared, rq, last) = unsafe {
        (
            &*(*hctx).driver_data.cast::<Queue<'_>>(),
            &*(*(*hctx).queue).queuedata.cast::<Ns>(),
            shared_of((*(*(*hctx).queue).tag_set).driver_data),
            (*bd).rq,
            (*bd).last,
        )
    };
    // SAFETY: as above.
    let (op, tag) = unsafe {
        (
            (*rq).cmd_flags & ((1 << bindings::REQ_OP_BITS) - 1),
            (*rq).tag,
        )
    };
    let Some(shared) = shared.filter(|_| !queue.is_dead()) else {
        return BLK_STS_IOERR;
    };
    let sqe = match op {
        // SAFETY: `rq` is a request of our tag set on `ns`.
        bindings::req_op_REQ_OP_READ => unsafe { build_rw(ns, shared, rq, false) },
        // SAFETY: as above.
        bindings::req_op_REQ_OP_WRITE => unsafe { build_rw(ns, shared, rq, true) },
        bindings::req_op_REQ_OP_FLUSH => Ok(cmd::flush(ns.nsid)),
        // SAFETY: as above.
        bindings::req_op_REQ_OP_WRITE_ZEROES => unsafe { build_write_zeroes(ns, rq) },
        // SAFETY: as above.
        bindings::req_op_REQ_OP_DISCARD => unsafe { build_discard(ns, shared, rq) },
        _ => Err(BLK_STS_NOTSUPP),
    };
    let sqe = match sqe {
        Ok(s) => s,
        Err(sts) => {
            // Entries queued earlier in this batch still need their doorbell.
            if last {
                queue.commit();
            }
            return sts;
        }
    };
    // SAFETY: `rq` is ours, not started yet.
    let cid = unsafe { next_use(rq, tag) };
    // The generation before the IN_FLIGHT state (paired in `complete_one`).
    fence(Ordering::Release);
    // SAFETY: `rq` is a valid request about to be issued.
    unsafe { bindings::blk_mq_start_request(rq) };
    queue.submit(&sqe.with_cid(cid), last);
    BLK_STS_OK
}

/// Readies `rq`'s PDU for its next use; returns the command id of that use.
///
/// # Safety
///
/// `queue_rq` owns `rq` (with tag `tag`) and has not started it.
unsafe fn next_use(rq: *mut bindings::request, tag: i32) -> u16 {
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

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn commit_rqs(hctx: *mut bindings::blk_mq_hw_ctx) {
    // SAFETY: see `queue_rq`.
    let queue = unsafe { &*(*hctx).driver_data.cast::<Queue<'_>>() };
    queue.commit();
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn complete(rq: *mut bindings::request) {
    // SAFETY: `rq` is one of ours, completed by `IoCompleter` or cancelled
    // by a reset; its hctx's driver_data is its queue (`init_hctx`).
    let (ns, shared, iod, queue, flags) = unsafe {
        (
            &*(*(*rq).q).queuedata.cast::<Ns>(),
            shared_of((*(*(*rq).q).tag_set).driver_data),
            iod(rq),
            &*(*(*rq).mq_hctx).driver_data.cast::<Queue<'_>>(),
            (*rq).cmd_flags,
        )
    };
    // SAFETY: its one completion owns the request.
    let owned = unsafe { iod.owned() };
    // SAFETY: set up by `queue_rq` for `ns`'s device; completed (or
    // cancelled once the controller stopped), so the controller is done
    // with it.
    unsafe { owned.data.release(ns.dev, shared) };
    let status = (!iod.cancelled.load(Ordering::Relaxed))
        .then(|| cmd::Status(iod.status.load(Ordering::Relaxed)));
    let noretry = flags & REQ_FAILFAST != 0 || queue.is_dead();
    let max = *crate::module_parameters::max_retries.value_ref();
    if cmd::disposition(status, noretry, owned.retries, max) == cmd::Disposition::Retry {
        // Run it again; after a reset, once the queues are back (the kick
        // is held off until they are unquiesced).
        owned.retries += 1;
        // SAFETY: `rq` is ours and was in flight.
        unsafe { bindings::blk_mq_requeue_request(rq, true) };
        return;
    }
    let sts = match status {
        Some(s) if s.is_success() => BLK_STS_OK,
        Some(s) if s.is_invalid_opcode() => BLK_STS_NOTSUPP,
        _ => BLK_STS_IOERR,
    };
    // SAFETY: `rq` is in flight and completed exactly once.
    unsafe { bindings::blk_mq_end_request(rq, sts) };
}

/// The controller a tag set's `driver_data` names.
///
/// # Safety
///
/// `data` is the `driver_data` of a live [`TagSet`].
unsafe fn dev_of<'a>(data: *mut c_void) -> &'a NvmeDev<'a> {
    // SAFETY: a live controller (`TagSet` invariant), used through `&` only.
    unsafe { &*data.cast::<NvmeDev<'a>>() }
}

/// The queues of the controller a tag set's `driver_data` names.
///
/// # Safety
///
/// `data` is the `driver_data` of a live [`TagSet`]; its controller may be
/// in its `drop`, which frees the tag set before the `shared` field goes.
unsafe fn shared_of<'a>(data: *mut c_void) -> Option<&'a BlkShared<'a>> {
    // SAFETY: as the caller's; only the field is referenced (a request
    // completed during the controller's drop still finds `shared` there).
    unsafe { &*core::ptr::addr_of!((*data.cast::<NvmeDev<'a>>()).shared) }.as_ref()
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn init_hctx(
    hctx: *mut bindings::blk_mq_hw_ctx,
    data: *mut c_void,
    index: u32,
) -> i32 {
    // SAFETY: `data` is `set->driver_data`, live (`TagSet` invariant).
    let Some(shared) = (unsafe { shared_of(data) }) else {
        return EINVAL.to_errno();
    };
    let Some(queue) = shared.queues.get(index as usize) else {
        return EINVAL.to_errno();
    };
    // The tag set, whose tags these are, is freed after everything that
    // reaps completions: the disks (`->poll`, timeouts), the queues'
    // interrupts and the reset work (teardown and field order).
    // SAFETY: `hctx` is being initialised by blk-mq for us; see above.
    unsafe {
        (*hctx).driver_data = core::ptr::from_ref::<Queue<'_>>(queue).cast_mut().cast();
        queue.set_tags((*hctx).tags);
    }
    0
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn init_request(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx: u32,
    _node: i32,
) -> i32 {
    // SAFETY: the PDU is `cmd_size` bytes reserved for us; writing a whole
    // `Iod` initialises it.
    unsafe {
        bindings::blk_mq_rq_to_pdu(rq).cast::<Iod>().write(Iod {
            owned: UnsafeCell::new(Owned {
                data: DataMapping::new(),
                retries: 0,
            }),
            generation: AtomicU8::new(0),
            status: AtomicU16::new(0),
            cancelled: AtomicBool::new(false),
        })
    };
    0
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn map_queues(set: *mut bindings::blk_mq_tag_set) {
    // SAFETY: `set` is ours (its driver_data is live); it has `nr_maps`
    // maps, each of which blk-mq lets us fill here.
    let (shared, maps) = unsafe {
        let nr = (*set).nr_maps as usize;
        (
            shared_of((*set).driver_data),
            (*set).map.get_mut(..nr).unwrap_or(&mut []),
        )
    };
    let Some(shared) = shared else {
        return;
    };
    let counts = [shared.irq_queues(), 0, shared.polled];
    let mut offset = 0u32;
    for (ty, (map, n)) in maps.iter_mut().zip(counts).enumerate() {
        map.nr_queues = n as u32;
        map.queue_offset = offset;
        offset += n as u32;
        if n == 0 {
            continue;
        }
        // The interrupt queues follow their vectors' affinity (a plain
        // spread when the vectors carry none: MSI/INTx); the poll queues
        // have none, so they get the plain spread.
        // SAFETY: `map` is one of the set's maps, `dev` the bound device.
        unsafe {
            if ty == bindings::hctx_type_HCTX_TYPE_POLL as usize {
                bindings::blk_mq_map_queues(map);
            } else {
                bindings::blk_mq_map_hw_queues(map, dev_raw(shared.dev), shared.irq_offset);
            }
        }
    }
}

/// Reaps a poll queue for blk-mq (io_uring IOPOLL, `RWF_HIPRI`): returns
/// how many completions it found.
///
/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn poll(
    hctx: *mut bindings::blk_mq_hw_ctx,
    _iob: *mut bindings::io_comp_batch,
) -> i32 {
    // SAFETY: see `queue_rq`.
    let queue = unsafe { &*(*hctx).driver_data.cast::<Queue<'_>>() };
    if !queue.cqe_pending() {
        return 0;
    }
    let n = queue.reap(|cqe| IoCompleter::complete(queue, cqe)).count;
    queue.count_polled(n);
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn timeout(rq: *mut bindings::request) -> bindings::blk_eh_timer_return {
    // SAFETY: `rq` is ours: its queue's tag set names our controller, its
    // hctx's driver_data is its queue (`init_hctx`).
    let (dev, queue) = unsafe {
        (
            dev_of((*(*(*rq).q).tag_set).driver_data),
            &*(*(*rq).mq_hctx).driver_data.cast::<Queue<'_>>(),
        )
    };
    // The use of the request that timed out, taken before the reap below
    // can complete it (and blk-mq send it again).
    // SAFETY: `rq` is ours; blk-mq holds a reference while it times out.
    let Some(this_use) = (unsafe { in_flight_at(rq) }) else {
        return bindings::blk_eh_timer_return_BLK_EH_DONE;
    };
    let generation = this_use & GENERATION;
    // Still in flight at that generation (not completed, or taken back by
    // a reset and sent again).
    // SAFETY: as above.
    let still_ours = || unsafe { in_flight_at(rq) }.map(|u| u & GENERATION) == Some(generation);
    // A lost interrupt looks like a timeout: reap the queue first, as the
    // in-tree driver does, and only then blame the controller.
    queue.reap(|cqe| IoCompleter::complete(queue, cqe));
    if !still_ours() {
        // SAFETY: as above.
        let tag = unsafe { (*rq).tag };
        pr_warn!(
            "nvme_dbbuf: queue {}: tag {} timed out, completion polled\n",
            queue.qid,
            tag
        );
        return bindings::blk_eh_timer_return_BLK_EH_DONE;
    }
    // SAFETY: `rq` is ours and in flight; only the atomic fields of its PDU
    // are used here: its completion may run concurrently.
    let (iod, tag, qid) = unsafe { (iod(rq), (*rq).tag, (*(*rq).mq_hctx).queue_num + 1) };
    let abort_sent = this_use & ABORT_SENT != 0;
    let cid = (u16::from(generation) << 12) | (tag as u16 & 0xfff);
    let qid = u16::try_from(qid).unwrap_or(u16::MAX);
    // Called before the Abort goes out; marks this use only (a later one
    // has another generation, without the mark).
    let mark = || {
        let _ = iod.generation.compare_exchange(
            generation,
            generation | ABORT_SENT,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    };
    match dev.io_timeout(qid, cid, !abort_sent, still_ours, mark) {
        TimeoutAction::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
        TimeoutAction::AbortSent | TimeoutAction::Later => {
            bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER
        }
    }
}

/// The use ([`Iod::generation`]) `rq` is in flight at, if it is: its
/// state, then the generation `queue_rq` wrote before starting it.
///
/// # Safety
///
/// `rq` is a request of our tag set (its tags' requests live as long as
/// it).
unsafe fn in_flight_at(rq: *mut bindings::request) -> Option<u8> {
    // SAFETY: caller guarantee; C writes the state concurrently, so it is
    // read through a raw pointer.
    let state = unsafe { core::ptr::addr_of!((*rq).state).read_volatile() };
    fence(Ordering::Acquire);
    // SAFETY: as above; only an atomic field of the PDU.
    let generation = unsafe { iod(rq) }.generation.load(Ordering::Relaxed);
    (state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT).then_some(generation)
}

/// What the controller's timeout handling did with a request.
pub(crate) enum TimeoutAction {
    /// The request was handed back (reset, or failed): blk-mq is done.
    Done,
    /// An Abort was sent: wait one more period, then reset.
    AbortSent,
    /// Nothing done (a reset, a passthrough command or another timeout
    /// holds the controller; a reset takes the request back): wait another
    /// period.
    Later,
}

/// Whether fault injection (`io-timeout-fail`, `fail_io_timeout`) wants this
/// completion dropped, as C drivers check with `blk_should_fake_timeout()`
/// (which is `false` without `CONFIG_FAIL_IO_TIMEOUT`).
///
/// # Safety
///
/// `q` is a live request queue.
#[cfg(not(CONFIG_FAIL_IO_TIMEOUT))]
unsafe fn should_fake_timeout(_q: *mut bindings::request_queue) -> bool {
    false
}

/// # Safety
///
/// `q` is a live request queue.
#[cfg(CONFIG_FAIL_IO_TIMEOUT)]
unsafe fn should_fake_timeout(q: *mut bindings::request_queue) -> bool {
    // SAFETY: `q` is live (caller); `queue_flags` is a plain bitmap word.
    let flags = unsafe { core::ptr::read_volatile(&(*q).queue_flags) };
    // SAFETY: as above.
    flags & (1 << bindings::QUEUE_FLAG_FAIL_IO) != 0
        && unsafe { bindings::__blk_should_fake_timeout(q) }
}

/// # Safety
///
/// Only called by `blk_mq_tagset_busy_iter` from [`TagSet::cancel_inflight`].
unsafe extern "C" fn cancel_one(rq: *mut bindings::request, data: *mut c_void) -> bool {
    // SAFETY: `rq` is a started request of our tag set.
    let state = unsafe { core::ptr::addr_of!((*rq).state).read_volatile() };
    if state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT {
        // SAFETY: as above; the controller is stopped and its completions
        // reaped (`cancel_inflight`'s precondition), so nothing else
        // completes `rq`.
        unsafe {
            iod(rq).cancelled.store(true, Ordering::Relaxed);
            bindings::blk_mq_complete_request(rq);
            *data.cast::<u32>() += 1;
        }
    }
    true
}

const OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
    queue_rq: Some(queue_rq),
    commit_rqs: Some(commit_rqs),
    complete: Some(complete),
    init_hctx: Some(init_hctx),
    init_request: Some(init_request),
    map_queues: Some(map_queues),
    poll: Some(poll),
    timeout: Some(timeout),
    // SAFETY: all-zero (no callback) is valid for the remaining members.
    ..unsafe { core::mem::zeroed() }
};

/// Completes I/O commands from the queue's interrupt.
pub(crate) struct IoCompleter;

impl Completer for IoCompleter {
    fn complete(queue: &Queue<'_>, cqe: &Cqe) {
        let inject = queue.hooks().take_for_completion();
        let mut cid = cqe.cid();
        if inject == Inject::BadCid {
            // A generation this tag is not at: looks like a stale completion.
            cid ^= 0x8000;
        }
        // Only after a real completion: a copy of an entry that fault
        // injection dropped would rightly be taken as the request's one.
        if complete_one(queue, cid, cqe) && inject == Inject::DupCid {
            // The same entry again, as from a controller that posts a
            // completion twice: the request has been completed (or handed
            // to its completion) already, so this must be refused as stale.
            complete_one(queue, cid, cqe);
        }
    }
}

/// Completes the request a completion entry with command id `cid` names, if
/// it is in flight at that generation; otherwise logs the entry and has the
/// controller reset.  Returns whether it completed a request.
fn complete_one(queue: &Queue<'_>, cid: u16, cqe: &Cqe) -> bool {
    let tag = cid & 0xfff;
    let generation = (cid >> 12) as u8;
    let Some(rq) = queue.tag_to_rq(tag) else {
        pr_err!(
            "nvme_dbbuf: queue {}: completion for invalid command id {:#x}: resetting\n",
            queue.qid,
            cid
        );
        queue.bad_completion();
        return false;
    };
    // The state first, then the generation `queue_rq` wrote before starting
    // the request: a stale entry racing with a reissue of the tag then sees
    // either not IN_FLIGHT or the new generation, never the new state with
    // the old generation.
    // SAFETY: `rq` is a request of our tag set (from its tags), alive while
    // the tag set is.
    if unsafe { in_flight_at(rq) }.map(|u| u & GENERATION) != Some(generation) {
        pr_err!(
            "nvme_dbbuf: queue {}: stale completion for command id {:#x}: resetting\n",
            queue.qid,
            cid
        );
        queue.bad_completion();
        return false;
    }
    // In flight at this entry's generation: the request is ours to
    // complete.
    // SAFETY: as above; only an atomic field of the PDU.
    unsafe { iod(rq) }
        .status
        .store(cqe.status().0, Ordering::Relaxed);
    // SAFETY: `rq` is ours, so is its queue.
    if unsafe { should_fake_timeout((*rq).q) } {
        return false;
    }
    if fault::lose_io() {
        pr_warn!(
            "nvme_dbbuf: queue {}: test hook: completion {:#x} lost\n",
            queue.qid,
            cid
        );
        return false;
    }
    // SAFETY: checked just above: in flight at this entry's generation, so
    // this is its one completion; a copy of the entry finds it COMPLETE,
    // IDLE or at a later generation.
    unsafe { bindings::blk_mq_complete_request(rq) };
    true
}
