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
    sync::atomic::{fence, AtomicBool, AtomicU16, AtomicU32, AtomicU8, Ordering},
};

use kernel::{bindings, prelude::*, static_lock_class};

use crate::cmd::{self, Cqe, Sqe};
use crate::irq::Completer;
use crate::prp;
use crate::queue::{Inject, Queue};
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
const BLK_STS_IOERR: bindings::blk_status_t = 10;
const BLK_STS_RESOURCE: bindings::blk_status_t = 9;
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
    /// This request's PRP list page (coherent), fixed from `init_request`
    /// to `exit_request`.
    prp_list: *mut u64,
    prp_dma: bindings::dma_addr_t,
}

/// [`Iod::generation`]: the generation bits, and the Abort mark.
const GENERATION: u8 = 0xf;
const ABORT_SENT: u8 = 0x10;

/// The part of an [`Iod`] only the request's owner uses.
struct Owned {
    sg: [bindings::scatterlist; MAX_SEGS],
    /// How the data is mapped, for the unmap.
    map: DataMap,
    write: bool,
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

/// How a request's data is DMA-mapped.
#[derive(Clone, Copy)]
enum DataMap {
    /// No data, or already unmapped.
    None,
    /// `sg[..nents]`, through dma_map_sg.
    Sg { nents: i32 },
    /// Its one segment, through dma_map_page (no scatterlist).
    Single { dma: bindings::dma_addr_t, len: u32 },
}

/// What the tag set's callbacks share, a field of the controller (which is
/// `set->driver_data`).
pub(crate) struct BlkShared<'bound> {
    /// The DMA device: the PRP list pages are allocated on it.
    pub(crate) dev: &'bound kernel::device::Device<kernel::device::Bound>,
    pub(crate) queues: KVec<Pin<KBox<Queue<'bound>>>>,
    /// Interrupt vector of the first I/O queue (vector 0 is the admin
    /// queue's when there are more).
    pub(crate) irq_offset: u32,
    /// Per-request time limit.
    pub(crate) timeout_jiffies: u32,
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
        set.nr_maps = 1;
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

fn dma_dir(write: bool) -> bindings::dma_data_direction {
    if write {
        bindings::dma_data_direction::DMA_TO_DEVICE
    } else {
        bindings::dma_data_direction::DMA_FROM_DEVICE
    }
}

/// Maps `rq`'s data and builds its read/write command.
///
/// # Safety
///
/// `rq` is a started-to-be request of our tag set on namespace `ns`.
unsafe fn build_rw(
    ns: &Ns,
    rq: *mut bindings::request,
    write: bool,
) -> Result<Sqe, bindings::blk_status_t> {
    // SAFETY: caller guarantee: `queue_rq` owns the request.
    let (iod, owned, sector, bytes, nsegs) = unsafe {
        let iod = iod(rq);
        (
            iod,
            iod.owned(),
            (*rq).__sector,
            (*rq).__data_len,
            (*rq).nr_phys_segments,
        )
    };
    let blocks = rw_blocks(ns, bytes, nsegs).ok_or(BLK_STS_IOERR)?;
    owned.write = write;
    let single = if nsegs == 1 {
        // SAFETY: caller guarantee; one segment of `bytes` bytes.
        unsafe { map_single(ns, rq, bytes, write)? }
    } else {
        None
    };
    // Either the one directly mapped segment or `mapped` scatterlist entries.
    let mapped = match single {
        Some((dma, len)) => {
            owned.map = DataMap::Single { dma, len };
            0
        }
        None => {
            // SAFETY: caller guarantee; `nsegs` was checked above.
            let n = unsafe { map_sg(ns, rq, owned, nsegs, write)? };
            owned.map = DataMap::Sg { nents: n.nents };
            n.mapped
        }
    };
    let segs = Iterator::chain(
        single.into_iter(),
        owned
            .sg
            .iter()
            .take(mapped)
            .map(|s| (s.dma_address, s.dma_length)),
    );
    // SAFETY: `prp_list` is a page of coherent memory owned by this request.
    let list = unsafe { core::slice::from_raw_parts_mut(iod.prp_list, PRP_ENTRIES) };
    match prp::build(segs, PAGE, list, iod.prp_dma) {
        Ok(p) => Ok(
            cmd::rw(write, ns.nsid, sector >> (ns.lba_shift - 9), blocks, false)
                .with_prps(p.prp1, p.prp2),
        ),
        Err(e) => {
            pr_err!("nvme_dbbuf: cannot describe request with PRPs: {:?}\n", e);
            // SAFETY: mapped just above with these arguments.
            unsafe { unmap(ns, owned) };
            Err(BLK_STS_IOERR)
        }
    }
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

/// `dma_map_sg` result: entries handed in (needed again to unmap), entries
/// the mapping produced.
struct SgMapped {
    nents: i32,
    mapped: usize,
}

/// Maps a request's data through its scatterlist.
///
/// # Safety
///
/// `rq` is a started-to-be request of our tag set on `ns`, with `iod` its
/// PDU and `1 <= nsegs <= MAX_SEGS` physical segments.
unsafe fn map_sg(
    ns: &Ns,
    rq: *mut bindings::request,
    iod: &mut Owned,
    nsegs: u16,
    write: bool,
) -> Result<SgMapped, bindings::blk_status_t> {
    let sg = iod.sg.as_mut_ptr();
    let mut last: *mut bindings::scatterlist = core::ptr::null_mut();
    // SAFETY: `sg` has MAX_SEGS >= `nsegs` entries; only the ones this
    // request can use are initialised (it is per-I/O work), and
    // __blk_rq_map_sg fills at most `nr_phys_segments`.
    let n = unsafe {
        bindings::sg_init_table(sg, u32::from(nsegs));
        bindings::__blk_rq_map_sg(rq, sg, &mut last)
    };
    if n <= 0 {
        return Err(BLK_STS_IOERR);
    }
    // SAFETY: `n` initialised entries; `ns.dev` is our DMA device.
    let mapped = unsafe { bindings::dma_map_sg_attrs(ns.dev, sg, n, dma_dir(write), 0) };
    if mapped == 0 {
        return Err(BLK_STS_RESOURCE);
    }
    Ok(SgMapped {
        nents: n,
        mapped: mapped as usize,
    })
}

/// Maps a one-segment request's data directly, without a scatterlist, as the
/// in-tree driver does for small I/O (`nvme_pci_setup_data_simple`).  In a
/// guest profile the scatterlist round trip was 27-38% of the samples
/// in this driver's code and its helpers; a slower submission lets the
/// controller catch up (EventIdx) between two of a burst, which costs an
/// MMIO doorbell (Documentation/nvme-dbbuf.rst, "How the 4 KiB gap closed").
/// `None` if the request's first bio_vec is not all of its data (then the
/// scatterlist path maps it).
///
/// # Safety
///
/// `rq` is a started-to-be request of our tag set on `ns` with one physical
/// segment of `bytes` bytes.
unsafe fn map_single(
    ns: &Ns,
    rq: *mut bindings::request,
    bytes: u32,
    write: bool,
) -> Result<Option<(u64, u32)>, bindings::blk_status_t> {
    // No peer device memory (P2PDMA) reaches here, whatever the kernel's
    // config: the disk does not set `BLK_FEAT_PCI_P2PDMA`, and without it
    // the block layer never lets such pages into a bio (`ITER_ALLOW_P2PDMA`
    // in `bio_iov_iter_get_pages`), so `dma_map_page` is right for every
    // single segment.
    // `req_bvec()`: the current bio_vec of the first bio, as its iterator
    // (possibly advanced by a split) sees it.  (Its special-payload case is
    // for drivers that attach one; this driver never does.)
    // SAFETY: a request with data has a bio whose iterator indexes its
    // bio_vec array.
    let (page, offset, len) = unsafe {
        let bio = (*rq).bio;
        if bio.is_null() {
            return Ok(None);
        }
        let it = (*bio).bi_iter;
        let bv = &*(*bio).bi_io_vec.add(it.bi_idx as usize);
        let done = it.bi_offset;
        (
            bv.bv_page,
            bv.bv_offset.saturating_add(done),
            it.bi_size.min(bv.bv_len.saturating_sub(done)),
        )
    };
    if len != bytes {
        return Ok(None);
    }
    let dir = dma_dir(write);
    // SAFETY: `page` + `offset` .. + `len` is the request's data (a
    // multi-page bio_vec is physically contiguous); `ns.dev` is our DMA
    // device.
    let dma = unsafe {
        bindings::dma_map_page_attrs(ns.dev, page, offset as usize, len as usize, dir, 0)
    };
    // `dma_mapping_error()`, an inline: DMA debug wants to be told the
    // result was checked.
    #[cfg(CONFIG_DMA_API_DEBUG)]
    // SAFETY: `dma` came from mapping on `ns.dev`.
    unsafe {
        bindings::debug_dma_mapping_error(ns.dev, dma)
    };
    if dma == DMA_MAPPING_ERROR {
        return Err(BLK_STS_RESOURCE);
    }
    Ok(Some((dma, len)))
}

/// `DMA_MAPPING_ERROR`, a macro bindgen does not carry.
const DMA_MAPPING_ERROR: bindings::dma_addr_t = !0;

/// # Safety
///
/// `iod` was mapped by `build_rw` for `ns`'s device.
unsafe fn unmap(ns: &Ns, iod: &mut Owned) {
    let dir = dma_dir(iod.write);
    match iod.map {
        DataMap::None => {}
        // SAFETY: caller guarantee: mapped with these entries.
        DataMap::Sg { nents } => unsafe {
            bindings::dma_unmap_sg_attrs(ns.dev, iod.sg.as_mut_ptr(), nents, dir, 0)
        },
        // SAFETY: caller guarantee: mapped at `dma` for `len` bytes.
        DataMap::Single { dma, len } => unsafe {
            bindings::dma_unmap_page_attrs(ns.dev, dma, len as usize, dir, 0)
        },
    }
    iod.map = DataMap::None;
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
    // SAFETY: as above; no data to map.
    unsafe { iod(rq).owned().map = DataMap::None };
    Ok(cmd::write_zeroes(ns.nsid, slba, blocks))
}

/// Dataset Management deallocate with one range, which goes into the
/// request's own PRP list page (the command carries no data otherwise).
///
/// # Safety
///
/// `rq` is a request of our tag set on `ns`.
unsafe fn build_discard(
    ns: &Ns,
    rq: *mut bindings::request,
) -> Result<Sqe, bindings::blk_status_t> {
    // SAFETY: caller guarantee.
    let (slba, blocks) = unsafe { block_range(ns, rq) }.ok_or(BLK_STS_IOERR)?;
    // SAFETY: as above.
    let iod = unsafe { iod(rq) };
    // SAFETY: as above: `queue_rq` owns the request.
    unsafe { iod.owned().map = DataMap::None };
    // SAFETY: `prp_list` is a coherent page owned by this request, 8-byte
    // aligned, larger than one 16-byte range.
    unsafe {
        iod.prp_list
            .cast::<cmd::DsmRange>()
            .write_volatile(cmd::DsmRange::new(slba, blocks))
    };
    Ok(cmd::discard(ns.nsid, 1, iod.prp_dma))
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
    let (queue, ns, rq, last) = unsafe {
        (
            &*(*hctx).driver_data.cast::<Queue<'_>>(),
            &*(*(*hctx).queue).queuedata.cast::<Ns>(),
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
    if queue.is_dead() {
        return BLK_STS_IOERR;
    }
    let sqe = match op {
        // SAFETY: `rq` is a request of our tag set on `ns`.
        bindings::req_op_REQ_OP_READ => unsafe { build_rw(ns, rq, false) },
        // SAFETY: as above.
        bindings::req_op_REQ_OP_WRITE => unsafe { build_rw(ns, rq, true) },
        bindings::req_op_REQ_OP_FLUSH => Ok(cmd::flush(ns.nsid)),
        // SAFETY: as above.
        bindings::req_op_REQ_OP_WRITE_ZEROES => unsafe { build_write_zeroes(ns, rq) },
        // SAFETY: as above.
        bindings::req_op_REQ_OP_DISCARD => unsafe { build_discard(ns, rq) },
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
    let (ns, iod, queue, flags) = unsafe {
        (
            &*(*(*rq).q).queuedata.cast::<Ns>(),
            iod(rq),
            &*(*(*rq).mq_hctx).driver_data.cast::<Queue<'_>>(),
            (*rq).cmd_flags,
        )
    };
    // SAFETY: its one completion owns the request.
    let owned = unsafe { iod.owned() };
    // SAFETY: mapped (or not: `DataMap::None`) by `build_rw`.
    unsafe { unmap(ns, owned) };
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
    // SAFETY: as the caller's; only the field is referenced (`exit_request`
    // runs while the controller is being dropped, `shared` still there).
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
    // SAFETY: `hctx` is being initialised by blk-mq for us; its tags live
    // as long as the tag set, freed after the queues' interrupts (the
    // controller's field order), which are what reap completions.
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
    set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx: u32,
    _node: i32,
) -> i32 {
    // SAFETY: `set` is ours: its driver_data is live (`TagSet` invariant).
    let Some(shared) = (unsafe { shared_of((*set).driver_data) }) else {
        return EINVAL.to_errno();
    };
    let mut dma: bindings::dma_addr_t = 0;
    // SAFETY: `shared.dev` is the bound PCI device.
    let list = unsafe {
        bindings::dma_alloc_attrs(
            dev_raw(shared.dev),
            PAGE as usize,
            &mut dma,
            bindings::GFP_KERNEL,
            0,
        )
    };
    if list.is_null() {
        return ENOMEM.to_errno();
    }
    let pdu = bindings::blk_mq_rq_to_pdu;
    // SAFETY: the PDU is `cmd_size` bytes reserved for us; writing a whole
    // `Iod` initialises it (the scatterlist is set up per request).
    unsafe {
        pdu(rq).cast::<Iod>().write(Iod {
            owned: UnsafeCell::new(Owned {
                sg: core::mem::zeroed(),
                map: DataMap::None,
                write: false,
                retries: 0,
            }),
            generation: AtomicU8::new(0),
            status: AtomicU16::new(0),
            cancelled: AtomicBool::new(false),
            prp_list: list.cast(),
            prp_dma: dma,
        })
    };
    0
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn exit_request(
    set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx: u32,
) {
    // SAFETY: as in `init_request`, which initialised the PDU.
    unsafe {
        let Some(shared) = shared_of((*set).driver_data) else {
            return;
        };
        let iod = iod(rq);
        bindings::dma_free_attrs(
            dev_raw(shared.dev),
            PAGE as usize,
            iod.prp_list.cast(),
            iod.prp_dma,
            0,
        );
    }
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn map_queues(set: *mut bindings::blk_mq_tag_set) {
    // SAFETY: `set` is ours; map 0 is the default map.  Falls back to a
    // plain spread when the vectors carry no affinity (MSI/INTx).
    unsafe {
        let Some(shared) = shared_of((*set).driver_data) else {
            return;
        };
        bindings::blk_mq_map_hw_queues(&mut (*set).map[0], dev_raw(shared.dev), shared.irq_offset);
    }
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
/// completion dropped, as C drivers check with `blk_should_fake_timeout()`.
///
/// # Safety
///
/// `q` is a live request queue.
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
    exit_request: Some(exit_request),
    map_queues: Some(map_queues),
    timeout: Some(timeout),
    // SAFETY: all-zero (no callback) is valid for the remaining members.
    ..unsafe { core::mem::zeroed() }
};

/// Completes I/O commands from the queue's interrupt.
pub(crate) struct IoCompleter;

impl Completer for IoCompleter {
    fn complete(queue: &Queue<'_>, cqe: &Cqe) {
        let inject = queue.take_injected();
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

/// Test hook (module parameter `fault_lose_io`): completions still to lose.
pub(crate) static LOSE_IO: AtomicU32 = AtomicU32::new(0);

/// Whether the test hook wants this completion lost (counting it).
fn lose_io() -> bool {
    LOSE_IO.load(Ordering::Relaxed) != 0
        && LOSE_IO
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
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
    if lose_io() {
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
