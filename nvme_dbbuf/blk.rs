// SPDX-License-Identifier: GPL-2.0

//! blk-mq glue, the tag set and the disks: one hardware context per I/O
//! queue, one disk per namespace.  The per-request data and the commands
//! built from requests are `request.rs`'s, the `blk_mq_ops` callbacks and
//! the completion path `blk_ops.rs`'s.
//!
//! The 7.3 `block::mq` abstraction has no per-request driver data, hardware
//! context index, queue mapping, timeout or request sector/length/data
//! accessors, so these files use the C API directly, each call with its
//! `// SAFETY:` argument.  Nothing here is used before the controller and its
//! queues exist, and everything here is torn down before they go.

use core::{
    marker::PhantomData,
    sync::atomic::{AtomicPtr, Ordering},
};

use kernel::{bindings, prelude::*, static_lock_class};

use crate::blk_ops::{cancel_one, shared_of, OPS};
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
pub(crate) const BLK_STS_OK: bindings::blk_status_t = 0;
pub(crate) const BLK_STS_NOTSUPP: bindings::blk_status_t = 1;
pub(crate) const BLK_STS_IOERR: bindings::blk_status_t = 10;
pub(crate) const BLK_STS_RESOURCE: bindings::blk_status_t = 9;
/// `RQF_DONTPREP` and `REQ_FAILFAST_*` (macros with casts).
pub(crate) const RQF_DONTPREP: bindings::req_flags_t = 1 << bindings::rqf_flags___RQF_DONTPREP;
pub(crate) const REQ_FAILFAST: bindings::blk_opf_t = (1
    << bindings::req_flag_bits___REQ_FAILFAST_DEV)
    | (1 << bindings::req_flag_bits___REQ_FAILFAST_TRANSPORT)
    | (1 << bindings::req_flag_bits___REQ_FAILFAST_DRIVER);

/// The raw `struct device` behind a bound device reference.
pub(crate) fn dev_raw(
    dev: &kernel::device::Device<kernel::device::Bound>,
) -> *mut bindings::device {
    // `device::Device` is `repr(transparent)` over `Opaque<bindings::device>`.
    core::ptr::from_ref(dev).cast_mut().cast()
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
    pub(crate) dev: *mut bindings::device,
    pub(crate) nsid: u32,
    /// log2 of the logical block size.
    pub(crate) lba_shift: u8,
}

/// A hardware queue's blk-mq tags, to turn a command id back into a
/// request: set by `init_hctx`, cleared before the tag set is freed.
///
/// # Invariants
///
/// Null, or the tags of a hardware context of a live [`TagSet`]: the tag
/// set clears it before freeing them, after everything that looks
/// requests up (the queue's interrupt, the reset work, the disks' `->poll`
/// and timeouts) is gone (teardown order).
pub(crate) struct HwTags(AtomicPtr<bindings::blk_mq_tags>);

impl HwTags {
    pub(crate) const fn new() -> Self {
        Self(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Gives the hardware queue its tags.
    ///
    /// # Safety
    ///
    /// `tags` are the tags of a hardware context of a live [`TagSet`] whose
    /// drop clears them (the queue is in its controller's `shared`).
    pub(crate) unsafe fn set(&self, tags: *mut bindings::blk_mq_tags) {
        self.0.store(tags, Ordering::Release);
    }

    /// The request with `tag`, if the tag is valid.
    pub(crate) fn rq(&self, tag: u16) -> Option<*mut bindings::request> {
        let tags = self.0.load(Ordering::Acquire);
        if tags.is_null() {
            return None;
        }
        // SAFETY: non-null: live tags (invariant).
        let t = unsafe { &*tags };
        if u32::from(tag) >= t.nr_tags {
            return None;
        }
        // SAFETY: `tag < nr_tags`, the length of `rqs` (blk_mq_tag_to_rq()).
        let rq = unsafe { core::ptr::read_volatile(t.rqs.add(usize::from(tag))) };
        (!rq.is_null()).then_some(rq)
    }
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
        set.cmd_size = u32::try_from(crate::request::PDU_BYTES)?;
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
        // SAFETY: allocated in `new` (invariant): its controller is live.
        if let Some(shared) = unsafe { shared_of((*self.set).driver_data) } {
            for q in &shared.queues {
                q.tags.0.store(core::ptr::null_mut(), Ordering::Release);
            }
        }
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

impl Limits {
    /// The block layer's limits for these.
    fn queue_limits(&self) -> Result<bindings::queue_limits> {
        let lim = self;
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
        Ok(l)
    }
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
        let mut l = lim.queue_limits()?;
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
