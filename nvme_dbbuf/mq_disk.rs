// SPDX-License-Identifier: GPL-2.0

//! A disk on a [`TagSet`], in the manner of `kernel::block::mq::GenDisk`:
//! its queue limits and features, capacity and name, and the request
//! queue's data the driver's callbacks reach.

use core::marker::PhantomData;

use kernel::{
    bindings,
    device::{Bound, Device},
    prelude::*,
    static_lock_class,
    sync::Arc,
};

use crate::mq::{dev_raw, Operations, TagSet};

/// `BLK_FEAT_WRITE_CACHE` (a macro with a cast, not in the bindings).
const BLK_FEAT_WRITE_CACHE: bindings::blk_features_t = 1 << 0;

/// A disk's queue limits and features; zero means the block layer's
/// default.
#[derive(Default)]
pub(crate) struct DiskParams {
    pub(crate) logical_block_size: u32,
    pub(crate) max_hw_sectors: u32,
    pub(crate) max_segments: u16,
    /// Every segment but the first starts, and all but the last end, on
    /// this mask + 1.
    pub(crate) virt_boundary_mask: usize,
    pub(crate) dma_alignment: u32,
    pub(crate) write_cache: bool,
    pub(crate) max_write_zeroes_sectors: u32,
    pub(crate) max_discard_sectors: u32,
    pub(crate) max_discard_segments: u16,
    pub(crate) discard_granularity: u32,
}

impl DiskParams {
    fn queue_limits(&self) -> bindings::queue_limits {
        // SAFETY: all-zero limits mean "block layer defaults".
        let mut l: bindings::queue_limits = unsafe { core::mem::zeroed() };
        l.logical_block_size = self.logical_block_size;
        l.physical_block_size = self.logical_block_size;
        l.io_min = self.logical_block_size;
        l.max_hw_sectors = self.max_hw_sectors;
        l.max_segments = self.max_segments;
        l.virt_boundary_mask = self.virt_boundary_mask;
        l.dma_alignment = self.dma_alignment;
        if self.write_cache {
            l.features |= BLK_FEAT_WRITE_CACHE;
        }
        l.max_write_zeroes_sectors = self.max_write_zeroes_sectors;
        l.max_hw_discard_sectors = self.max_discard_sectors;
        l.max_discard_segments = self.max_discard_segments;
        l.discard_granularity = self.discard_granularity;
        l
    }
}

/// A disk, deleted on drop.
///
/// A disk that is leaked (`mem::forget`) keeps its tag set, and with it
/// the driver's callbacks, alive past the device's binding: like a
/// [`crate::irq::QueueIrq`], a disk is not under `Devres`, and its owner
/// drops it in its teardown.
///
/// # Invariants
///
/// `disk` was added with `device_add_disk` on `set`, which it keeps alive;
/// `data` came from `KBox::into_raw` and is the disk's queuedata.
pub(crate) struct Disk<'bound, T: Operations> {
    disk: *mut bindings::gendisk,
    data: *mut T::QueueData,
    /// Dropped after the disk is deleted (it does its I/O through it).
    _set: Arc<TagSet<'bound, T>>,
    _dev: PhantomData<&'bound Device<Bound>>,
}

// SAFETY: a handle to a C object with its own locking; the queue data is
// `Send + Sync`.
unsafe impl<T: Operations> Send for Disk<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Operations> Sync for Disk<'_, T> {}

/// No callbacks; `owner` pins the module while a disk is open, so rmmod
/// cannot free this table (and the code behind the disk) under an open file.
const FOPS: bindings::block_device_operations = bindings::block_device_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    // SAFETY: all-zero (no callbacks) is a valid operations table.
    ..unsafe { core::mem::zeroed() }
};

impl<'bound, T: Operations> Disk<'bound, T> {
    /// Allocates and adds the disk `name` (`sectors` long) on `set` under
    /// `parent`, its queue reaching `data`.
    pub(crate) fn new(
        set: &Arc<TagSet<'bound, T>>,
        parent: &'bound Device<Bound>,
        data: T::QueueData,
        params: &DiskParams,
        name: &[u8],
        sectors: u64,
    ) -> Result<Self> {
        let mut l = params.queue_limits();
        let data = KBox::into_raw(KBox::new(data, GFP_KERNEL)?);
        // SAFETY: `set` is an allocated tag set; `l` is valid for the call;
        // `data` stays valid until `drop` (after del_gendisk).
        let disk = unsafe {
            bindings::__blk_mq_alloc_disk(
                set.as_raw(),
                &mut l,
                data.cast(),
                static_lock_class!().as_ptr(),
            )
        };
        if let Err(e) = kernel::error::from_err_ptr(disk) {
            // SAFETY: from `into_raw` above, unused on failure.
            drop(unsafe { KBox::from_raw(data) });
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
        // SAFETY: `parent` is a bound device; `disk` is set up.
        let ret =
            unsafe { bindings::device_add_disk(dev_raw(parent), disk, core::ptr::null_mut()) };
        if ret != 0 {
            // SAFETY: allocated above, never added.
            unsafe { bindings::put_disk(disk) };
            // SAFETY: from `into_raw` above; the queue that referenced it is gone.
            drop(unsafe { KBox::from_raw(data) });
            return Err(Error::from_errno(ret));
        }
        Ok(Self {
            disk,
            data,
            _set: set.clone(),
            _dev: PhantomData,
        })
    }
}

impl<T: Operations> Drop for Disk<'_, T> {
    fn drop(&mut self) {
        // SAFETY: added in `new` (invariant).  del_gendisk waits for
        // outstanding I/O, which still completes.
        unsafe {
            bindings::del_gendisk(self.disk);
            bindings::put_disk(self.disk);
        }
        // SAFETY: from `KBox::into_raw` in `new`; the queue is gone.
        drop(unsafe { KBox::from_raw(self.data) });
    }
}
