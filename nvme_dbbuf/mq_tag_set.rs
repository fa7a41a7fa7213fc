// SPDX-License-Identifier: GPL-2.0

//! A blk-mq tag set for an [`Operations`] driver: its hardware queues,
//! depth and timeout, quiesce/unquiesce, and the walk over requests in
//! flight a controller reset needs.

use core::{ffi::c_void, marker::PhantomData};

use kernel::{
    bindings,
    device::{Bound, Device},
    prelude::*,
};

use crate::mq::{dev_raw, HwTags, Operations, Request};
use crate::mq_request::Pdu;
use crate::mq_vtable::OperationsVTable;

/// What a tag set is made of.
pub(crate) struct TagSetParams<'a> {
    /// The device requests' data is mapped for.
    pub(crate) dma_dev: &'a Device<Bound>,
    /// Hardware queues, the poll queues (if any) last.
    pub(crate) nr_hw_queues: u32,
    pub(crate) depth: u32,
    /// Per-request time limit.
    pub(crate) timeout_jiffies: u32,
    /// Whether there are poll queues (then the read and poll maps exist).
    pub(crate) poll_maps: bool,
}

/// The C tag set and what this layer adds to it, found from the C one
/// (its first field).
#[repr(C)]
pub(crate) struct SetBox {
    set: bindings::blk_mq_tag_set,
    dma_dev: *mut bindings::device,
}

impl SetBox {
    /// The DMA device of tag set `set`.
    ///
    /// # Safety
    ///
    /// `set` is a live tag set allocated by [`TagSet::new`].
    pub(crate) unsafe fn dma_dev_of(set: *mut bindings::blk_mq_tag_set) -> *mut bindings::device {
        // SAFETY: the first field of a `repr(C)` `SetBox` (caller guarantee).
        unsafe { (*set.cast::<SetBox>()).dma_dev }
    }
}

/// A blk-mq tag set, freed on drop.
///
/// # Invariants
///
/// `set` came from `KBox::into_raw` and `blk_mq_alloc_tag_set` succeeded on
/// it; its `driver_data` is a `T::SetData` and its `dma_dev` a bound device,
/// both outliving the tag set; `hw_tags` are the [`HwTags`] it set, which
/// live as long.
pub(crate) struct TagSet<T: Operations> {
    set: *mut SetBox,
    hw_tags: KVec<*const HwTags<T>>,
    _t: PhantomData<T>,
}

// SAFETY: the tag set is used through the C API, which locks internally;
// `hw_tags` point at `Sync` atomics.
unsafe impl<T: Operations> Send for TagSet<T> {}
// SAFETY: as above.
unsafe impl<T: Operations> Sync for TagSet<T> {}

impl<T: Operations> TagSet<T> {
    /// A tag set whose callbacks reach `data`.
    ///
    /// # Safety
    ///
    /// `data` stays at its address and outlives the returned tag set and
    /// every disk on it; `p.dma_dev` stays bound as long; nothing looks
    /// requests up through its [`HwTags`] (completion handlers) once the
    /// tag set is dropped.
    pub(crate) unsafe fn new(data: &T::SetData<'_>, p: TagSetParams<'_>) -> Result<Self> {
        // SAFETY: all-zero is the documented starting state of a tag set.
        let mut set: bindings::blk_mq_tag_set = unsafe { core::mem::zeroed() };
        set.ops = OperationsVTable::<T>::build();
        set.nr_hw_queues = p.nr_hw_queues;
        set.queue_depth = p.depth;
        set.cmd_size = u32::try_from(core::mem::size_of::<Pdu<T>>())?;
        set.numa_node = bindings::NUMA_NO_NODE;
        // Default, read (no queues of its own here) and poll maps.
        set.nr_maps = if p.poll_maps {
            bindings::hctx_type_HCTX_MAX_TYPES
        } else {
            1
        };
        set.timeout = p.timeout_jiffies;
        set.driver_data = core::ptr::from_ref(data).cast_mut().cast();
        let mut hw_tags = KVec::with_capacity(p.nr_hw_queues as usize, GFP_KERNEL)?;
        let boxed = SetBox {
            set,
            dma_dev: dev_raw(p.dma_dev),
        };
        let set = KBox::into_raw(KBox::new(boxed, GFP_KERNEL)?);
        // SAFETY: a valid, initialised tag set description.
        let ret = unsafe { bindings::blk_mq_alloc_tag_set(core::ptr::addr_of_mut!((*set).set)) };
        if ret != 0 {
            // SAFETY: from `into_raw` above, not shared with C on failure.
            drop(unsafe { KBox::from_raw(set) });
            return Err(Error::from_errno(ret));
        }
        // SAFETY: allocated: it has `nr_hw_queues` hardware queues (which
        // the allocation may have lowered).
        let nr = unsafe { (*set).set.nr_hw_queues };
        for i in 0..nr {
            if let Some(h) = T::hw_tags(data, i) {
                // SAFETY: `i < nr`; the set lives until `drop` frees it,
                // which clears `h` first (invariant).
                unsafe { h.set(core::ptr::addr_of_mut!((*set).set), i) };
                // Capacity reserved above for every queue.
                let _ = hw_tags.push(core::ptr::from_ref(h), GFP_KERNEL);
            }
        }
        Ok(Self {
            set,
            hw_tags,
            _t: PhantomData,
        })
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::blk_mq_tag_set {
        // SAFETY: allocated in `new` (invariant); only the address is taken.
        unsafe { core::ptr::addr_of_mut!((*self.set).set) }
    }

    /// Stops dispatch to every hardware queue, waiting for `queue_rq` calls
    /// in progress.
    pub(crate) fn quiesce(&self) {
        // SAFETY: allocated in `new` (invariant).
        unsafe { bindings::blk_mq_quiesce_tagset(self.as_raw()) };
    }

    pub(crate) fn unquiesce(&self) {
        // SAFETY: allocated in `new` (invariant).
        unsafe { bindings::blk_mq_unquiesce_tagset(self.as_raw()) };
    }

    /// Calls `f` on every request in flight (started, not completed).
    pub(crate) fn for_each_in_flight(&self, mut f: impl FnMut(&Request<T>)) {
        let mut f: &mut dyn FnMut(&Request<T>) = &mut f;
        // SAFETY: allocated in `new` (invariant); `busy_one` only uses
        // `data` as the closure passed here, for the duration of the call.
        unsafe {
            bindings::blk_mq_tagset_busy_iter(
                self.as_raw(),
                Some(busy_one::<T>),
                core::ptr::from_mut(&mut f).cast(),
            )
        };
    }
}

/// # Safety
///
/// Only called by `blk_mq_tagset_busy_iter` from
/// [`TagSet::for_each_in_flight`].
unsafe extern "C" fn busy_one<T: Operations>(
    rq: *mut bindings::request,
    data: *mut c_void,
) -> bool {
    // SAFETY: a started request of the tag set, alive during the walk.
    let rq = unsafe { Request::<T>::from_raw(rq) };
    if rq.is_in_flight() {
        // SAFETY: `data` is the closure reference `for_each_in_flight`
        // passed, alive for the call.
        let f = unsafe { &mut *data.cast::<&mut dyn FnMut(&Request<T>)>() };
        f(rq);
    }
    true
}

impl<T: Operations> Drop for TagSet<T> {
    fn drop(&mut self) {
        for h in &self.hw_tags {
            // SAFETY: they live as long as the set's data (invariant).
            unsafe { (**h).clear() };
        }
        // SAFETY: allocated in `new` (invariant); every disk using it was
        // deleted before (a `Disk` holds its tag set).
        unsafe { bindings::blk_mq_free_tag_set(self.as_raw()) };
        // SAFETY: from `KBox::into_raw` in `new`; C no longer uses it.
        drop(unsafe { KBox::from_raw(self.set) });
    }
}
