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
pub(crate) struct SetHead {
    set: bindings::blk_mq_tag_set,
    dma_dev: *mut bindings::device,
}

impl SetHead {
    /// The DMA device of tag set `set`.
    ///
    /// # Safety
    ///
    /// `set` is a live tag set allocated by [`TagSet::new`].
    pub(crate) unsafe fn dma_dev_of(set: *mut bindings::blk_mq_tag_set) -> *mut bindings::device {
        // SAFETY: the first field of a `repr(C)` `SetHead`, itself the first
        // field of a `repr(C)` `SetBox` (caller guarantee).
        unsafe { (*set.cast::<SetHead>()).dma_dev }
    }
}

/// One allocation for the C tag set and the data it owns, which
/// `driver_data` points at.
#[repr(C)]
struct SetBox<D> {
    head: SetHead,
    data: D,
}

/// A blk-mq tag set that owns its callbacks' data, freed on drop.
///
/// # Invariants
///
/// `set` came from `KBox::into_raw` and `blk_mq_alloc_tag_set` succeeded on
/// it; its `driver_data` points at its `data`, and its `dma_dev` is a
/// device bound for `'a`; `hw_tags` are the [`HwTags`] it claimed, which
/// the data owns.
pub(crate) struct TagSet<'a, T: Operations> {
    set: *mut SetBox<T::SetData<'a>>,
    hw_tags: KVec<*const HwTags<T>>,
    _t: PhantomData<(T, T::SetData<'a>)>,
}

// SAFETY: the tag set is used through the C API, which locks internally;
// `hw_tags` point at `Sync` atomics; the data is `Send + Sync`.
unsafe impl<T: Operations> Send for TagSet<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Operations> Sync for TagSet<'_, T> {}

impl<'a, T: Operations> TagSet<'a, T> {
    /// A tag set whose callbacks reach `data`, which it owns.
    pub(crate) fn new(data: T::SetData<'a>, p: TagSetParams<'a>) -> Result<Self> {
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
        let hw_tags = KVec::with_capacity(p.nr_hw_queues as usize, GFP_KERNEL)?;
        let boxed = SetBox {
            head: SetHead {
                set,
                dma_dev: dev_raw(p.dma_dev),
            },
            data,
        };
        let set = KBox::into_raw(KBox::new(boxed, GFP_KERNEL)?);
        // SAFETY: `set` is a valid allocation; the data stays there until
        // `drop` frees the box, after the C tag set.
        let (raw, data) = unsafe {
            let data = &(*set).data;
            (*set).head.set.driver_data = core::ptr::from_ref(data).cast_mut().cast();
            (core::ptr::addr_of_mut!((*set).head.set), data)
        };
        // SAFETY: a valid, initialised tag set description.
        let ret = unsafe { bindings::blk_mq_alloc_tag_set(raw) };
        if ret != 0 {
            // SAFETY: from `into_raw` above, not shared with C on failure.
            drop(unsafe { KBox::from_raw(set) });
            return Err(Error::from_errno(ret));
        }
        // SAFETY: allocated: it has `nr_hw_queues` hardware queues (which
        // the allocation may have lowered).
        let nr = unsafe { (*raw).nr_hw_queues };
        let mut this = Self {
            set,
            hw_tags,
            _t: PhantomData,
        };
        // On failure, dropping `this` undoes the claims made so far.
        this.claim_hw_tags(data, nr)?;
        Ok(this)
    }

    /// Points each hardware queue's [`HwTags`] at this tag set, the first
    /// `nr` of `data`'s.
    fn claim_hw_tags(&mut self, data: &T::SetData<'a>, nr: u32) -> Result {
        let raw = self.as_raw();
        for i in 0..nr {
            if let Some(h) = T::hw_tags(data, i) {
                // SAFETY: `i < nr`, the set's hardware queues; the set lives
                // until `drop` frees it, which clears and releases the tags
                // it claimed first (invariant).
                if !unsafe { h.set(raw, i) } {
                    // Another tag set's.
                    return Err(EBUSY);
                }
                // Capacity reserved in `new` for every queue.
                let _ = self.hw_tags.push(core::ptr::from_ref(h), GFP_KERNEL);
            }
        }
        Ok(())
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::blk_mq_tag_set {
        // SAFETY: allocated in `new` (invariant); only the address is taken.
        unsafe { core::ptr::addr_of_mut!((*self.set).head.set) }
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

impl<T: Operations> Drop for TagSet<'_, T> {
    fn drop(&mut self) {
        for h in &self.hw_tags {
            // SAFETY: the set's data, not yet dropped, owns them (invariant).
            unsafe { (**h).clear() };
        }
        // A lookup that found the set before it was cleared runs in an RCU
        // read-side section ([`HwTags::with_request`]): wait for those.
        kernel::sync::rcu::synchronize_rcu();
        for h in &self.hw_tags {
            // SAFETY: as above.
            unsafe { (**h).release() };
        }
        // SAFETY: allocated in `new` (invariant); every disk using it was
        // deleted before (a `Disk` holds its tag set).
        unsafe { bindings::blk_mq_free_tag_set(self.as_raw()) };
        // SAFETY: from `KBox::into_raw` in `new`; C no longer uses it.  The
        // data drops with it, after the C tag set.
        drop(unsafe { KBox::from_raw(self.set) });
    }
}
