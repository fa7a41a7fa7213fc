// SPDX-License-Identifier: GPL-2.0

//! Per-request I/O memory taken on demand, as the in-tree driver does
//! (`dma_pool` for PRP lists, a mempool for what it cannot fail on), instead
//! of a scatterlist and a PRP list page embedded in every request of every
//! queue: a request that needs neither (one segment, at most two pages)
//! takes nothing.
//!
//! Blocks carry the pool they came from, so giving one to another pool is
//! refused (and reported) rather than corrupting it; a block never given
//! back leaks, it is not freed twice.

use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use kernel::{
    bindings,
    device::{Bound, Device},
    prelude::*,
};

use crate::le::Le64;

/// Counts of one pool, for debugfs and the leak check of the tests.
#[derive(Default)]
pub(crate) struct PoolStats {
    taken: AtomicU64,
    given_back: AtomicU64,
    failed: AtomicU64,
}

impl PoolStats {
    /// (taken, given back, allocations that failed), in total.
    pub(crate) fn snapshot(&self) -> (u64, u64, u64) {
        let back = self.given_back.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        (taken, back, self.failed.load(Ordering::Relaxed))
    }

    /// Counts a block given back; one more than were taken is a double
    /// free somewhere, worth a loud report.
    fn count_back(&self) {
        let back = self.given_back.fetch_add(1, Ordering::Relaxed) + 1;
        if back > self.taken.load(Ordering::Relaxed) {
            pr_err!("nvme_dbbuf: pool: more blocks given back than taken\n");
        }
    }
}

/// A DMA pool of `size`-byte coherent blocks on one device.
///
/// # Invariants
///
/// `pool` came from `dma_pool_create_node` on a device bound for `'bound`
/// and is destroyed on drop.  Its owner drops it after its users (the
/// controller's field order: the tag set first); a block still out then
/// is reported by `dma_pool_destroy` and leaked, not freed under its user.
pub(crate) struct DmaPool<'bound> {
    pool: NonNull<bindings::dma_pool>,
    size: usize,
    pub(crate) stats: PoolStats,
    _dev: PhantomData<&'bound Device<Bound>>,
}

// SAFETY: the DMA pool API locks internally.
unsafe impl Send for DmaPool<'_> {}
// SAFETY: as above.
unsafe impl Sync for DmaPool<'_> {}

/// A block from a [`DmaPool`]: little-endian 64-bit entries the device
/// reads at `dma`.
///
/// # Invariants
///
/// `cpu` is a block of `len` [`Le64`]s from `pool`, at bus address `dma`,
/// owned by this value alone until given back with [`DmaPool::free`].
#[must_use = "a block not given back to its pool leaks"]
pub(crate) struct PoolBlock {
    cpu: NonNull<Le64>,
    len: usize,
    dma: bindings::dma_addr_t,
    pool: NonNull<bindings::dma_pool>,
}

// SAFETY: owned memory, no thread affinity.
unsafe impl Send for PoolBlock {}

impl PoolBlock {
    pub(crate) fn dma(&self) -> bindings::dma_addr_t {
        self.dma
    }

    /// The block's entries, for the CPU to fill before the device reads them.
    pub(crate) fn entries(&mut self) -> &mut [Le64] {
        // SAFETY: `len` entries owned by `self` (invariant), borrowed
        // mutably through it.
        unsafe { core::slice::from_raw_parts_mut(self.cpu.as_ptr(), self.len) }
    }
}

impl<'bound> DmaPool<'bound> {
    /// A pool of `size`-byte blocks aligned to `size` (a power of two) on
    /// `dev`, named `name` in the device's `pools` file.
    pub(crate) fn new(
        name: &'static CStr,
        dev: &'bound Device<Bound>,
        size: usize,
    ) -> Result<Self> {
        if !size.is_power_of_two() || size < 8 {
            return Err(EINVAL);
        }
        let raw = crate::mq::dev_raw(dev);
        // SAFETY: `raw` is a bound device, alive for `'bound`; `name` is a
        // NUL-terminated string (copied by the pool).
        let pool = unsafe {
            bindings::dma_pool_create_node(
                name.as_char_ptr(),
                raw,
                size,
                size,
                0,
                bindings::NUMA_NO_NODE,
            )
        };
        Ok(Self {
            pool: NonNull::new(pool).ok_or(ENOMEM)?,
            size,
            stats: PoolStats::default(),
            _dev: PhantomData,
        })
    }

    /// A block, without sleeping; `None` when memory is short (the caller
    /// asks blk-mq to try again later).
    pub(crate) fn alloc(&self) -> Option<PoolBlock> {
        let mut dma: bindings::dma_addr_t = 0;
        // SAFETY: `pool` is live (invariant); `dma` is written on success.
        let cpu =
            unsafe { bindings::dma_pool_alloc(self.pool.as_ptr(), bindings::GFP_ATOMIC, &mut dma) };
        let Some(cpu) = NonNull::new(cpu.cast::<Le64>()) else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.stats.taken.fetch_add(1, Ordering::Relaxed);
        Some(PoolBlock {
            cpu,
            len: self.size / 8,
            dma,
            pool: self.pool,
        })
    }

    /// Whether `b` is one of this pool's blocks.
    pub(crate) fn owns(&self, b: &PoolBlock) -> bool {
        b.pool == self.pool
    }

    /// Gives `b` back.  Once the device no longer reads it.
    pub(crate) fn free(&self, b: PoolBlock) {
        if !self.owns(&b) {
            pr_err!("nvme_dbbuf: block given to a pool it is not from: leaked\n");
            return;
        }
        self.stats.count_back();
        // SAFETY: `b` came from this pool (checked) and is given back once
        // (`PoolBlock` is not `Clone`, consumed here).
        unsafe { bindings::dma_pool_free(self.pool.as_ptr(), b.cpu.as_ptr().cast(), b.dma) };
    }
}

impl Drop for DmaPool<'_> {
    fn drop(&mut self) {
        // SAFETY: created in `new`; its users are gone (invariant; a block
        // still out is reported and leaked by the C side).
        unsafe { bindings::dma_pool_destroy(self.pool.as_ptr()) };
    }
}

/// A mempool of `N`-entry scatterlists with `RESERVED` kept in reserve for
/// when kmalloc fails, so that some request can always progress under
/// memory pressure (one that finds the reserve taken is retried by blk-mq
/// once the holder completes).
///
/// # Invariants
///
/// `pool` came from `mempool_create` with the kmalloc allocator for
/// `N` scatterlist entries; destroyed on drop, after every list came back.
pub(crate) struct SgPool<const N: usize> {
    pool: NonNull<bindings::mempool_t>,
    pub(crate) stats: PoolStats,
}

// SAFETY: the mempool API locks internally.
unsafe impl<const N: usize> Send for SgPool<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> Sync for SgPool<N> {}

/// A scatterlist of `N` entries from an [`SgPool`], uninitialised (the user
/// runs `sg_init_table` on the entries it uses).
///
/// # Invariants
///
/// `sg` is an element of `pool`, owned by this value alone until given back
/// with [`SgPool::free`].
#[must_use = "a scatterlist not given back to its pool leaks"]
pub(crate) struct SgList {
    sg: NonNull<bindings::scatterlist>,
    pool: NonNull<bindings::mempool_t>,
}

// SAFETY: owned memory, no thread affinity.
unsafe impl Send for SgList {}

impl SgList {
    /// The entries, for the scatterlist calls of the DMA and block APIs.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut bindings::scatterlist {
        self.sg.as_ptr()
    }
}

impl<const N: usize> SgPool<N> {
    /// Scatterlists kept in reserve.
    const RESERVED: i32 = 1;

    pub(crate) fn new() -> Result<Self> {
        let size = N * core::mem::size_of::<bindings::scatterlist>();
        // SAFETY: the kmalloc pair takes the element size as its data.
        let pool = unsafe {
            bindings::mempool_create_node_noprof(
                Self::RESERVED,
                Some(bindings::mempool_kmalloc),
                Some(bindings::mempool_kfree),
                size as *mut c_void,
                bindings::GFP_KERNEL,
                bindings::NUMA_NO_NODE,
            )
        };
        Ok(Self {
            pool: NonNull::new(pool).ok_or(ENOMEM)?,
            stats: PoolStats::default(),
        })
    }

    /// A list, without sleeping; `None` only when memory is short and the
    /// reserve is in use (the caller asks blk-mq to try again later).
    pub(crate) fn alloc(&self) -> Option<SgList> {
        // SAFETY: `pool` is live (invariant).
        let sg =
            unsafe { bindings::mempool_alloc_noprof(self.pool.as_ptr(), bindings::GFP_ATOMIC) };
        let Some(sg) = NonNull::new(sg.cast()) else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.stats.taken.fetch_add(1, Ordering::Relaxed);
        Some(SgList {
            sg,
            pool: self.pool,
        })
    }

    /// Gives `l` back, once nothing maps it.
    pub(crate) fn free(&self, l: SgList) {
        if l.pool != self.pool {
            pr_err!("nvme_dbbuf: scatterlist given to a pool it is not from: leaked\n");
            return;
        }
        self.stats.count_back();
        // SAFETY: an element of this pool (checked), given back once.
        unsafe { bindings::mempool_free(l.sg.as_ptr().cast(), self.pool.as_ptr()) };
    }
}

impl<const N: usize> Drop for SgPool<N> {
    fn drop(&mut self) {
        // SAFETY: created in `new`; every element came back (invariant).
        unsafe { bindings::mempool_destroy(self.pool.as_ptr()) };
    }
}
