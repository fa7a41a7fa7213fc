// SPDX-License-Identifier: GPL-2.0

//! The `blk_mq_ops` of an [`Operations`] driver: each callback turns blk-mq's
//! raw pointers into the references `Operations` takes.
//!
//! What the pointers are, for a tag set from [`crate::mq::TagSet::new`]:
//! `set->driver_data` is the driver's `SetData` (owned by the tag set);
//! `hctx->driver_data` its `HwData` (`init_hctx`, borrowed from the
//! `SetData`); `q->queuedata` the disk's
//! `QueueData` (`Disk::new`, freed after the queue); each request's PDU a
//! `Pdu<T>` (`init_request`).

use core::{ffi::c_void, marker::PhantomData};

use kernel::{bindings, prelude::*};

use crate::mq::{Completing, Operations, Pending, QueueMaps, Request, TimeoutReturn};
use crate::mq_request::Pdu;

pub(crate) struct OperationsVTable<T: Operations>(PhantomData<T>);

/// The data a hardware context's callbacks reach.
///
/// # Safety
///
/// `hctx` is a live hardware context of a tag set built for `T`, set up by
/// `init_hctx`.
unsafe fn hctx_parts<'a, T: Operations>(
    hctx: *mut bindings::blk_mq_hw_ctx,
) -> (&'a T::HwData<'a>, &'a T::SetData<'a>) {
    // SAFETY: see the module's documentation.
    unsafe {
        (
            &*(*hctx).driver_data.cast::<T::HwData<'a>>(),
            &*(*(*(*hctx).queue).tag_set)
                .driver_data
                .cast::<T::SetData<'a>>(),
        )
    }
}

/// The data a request's callbacks reach.
///
/// # Safety
///
/// `rq` is a live, allocated request of a tag set built for `T`.
unsafe fn rq_parts<'a, T: Operations>(
    rq: *mut bindings::request,
) -> (&'a T::HwData<'a>, &'a T::SetData<'a>, &'a T::QueueData) {
    // SAFETY: see the module's documentation; an allocated request has its
    // hardware context and queue.
    unsafe {
        let (hw, set) = hctx_parts::<T>((*rq).mq_hctx);
        (hw, set, &*(*(*rq).q).queuedata.cast::<T::QueueData>())
    }
}

impl<T: Operations> OperationsVTable<T> {
    /// # Safety
    ///
    /// Only called by blk-mq, as `struct blk_mq_ops` callback.
    unsafe extern "C" fn queue_rq(
        _hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: blk-mq hands `queue_rq` a request it owns, not started.
        let (rq, last) = unsafe { (Request::<T>::from_raw((*bd).rq), (*bd).last) };
        // SAFETY: a request of ours, on its hardware context.
        let (hw, set, queue) = unsafe { rq_parts::<T>(rq.as_raw()) };
        // SAFETY: as above.
        let pending = unsafe { Pending::new(rq) };
        match T::queue_rq(hw, queue, set, pending, last) {
            Ok(_started) => 0,
            // Handed back unstarted: blk-mq ends or retries it.
            Err((_pending, s)) => s.0,
        }
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`].
    unsafe extern "C" fn commit_rqs(hctx: *mut bindings::blk_mq_hw_ctx) {
        // SAFETY: a hardware context of ours.
        let (hw, _) = unsafe { hctx_parts::<T>(hctx) };
        T::commit_rqs(hw);
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`]; `rq`'s completion was claimed
    /// ([`Request::claim`]).
    unsafe extern "C" fn complete(rq: *mut bindings::request) {
        // SAFETY: a request of ours, whose one completion this is.
        let (rq, (hw, set, queue)) = unsafe { (Request::<T>::from_raw(rq), rq_parts::<T>(rq)) };
        // SAFETY: as above.
        T::complete(set, hw, queue, unsafe { Completing::new(rq) });
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`].
    unsafe extern "C" fn timeout(rq: *mut bindings::request) -> bindings::blk_eh_timer_return {
        // SAFETY: a request of ours; blk-mq holds a reference while it
        // times out.
        let (rq, (hw, set, _)) = unsafe { (Request::<T>::from_raw(rq), rq_parts::<T>(rq)) };
        match T::timeout(set, hw, rq) {
            TimeoutReturn::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
            TimeoutReturn::ResetTimer => bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER,
        }
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`].
    unsafe extern "C" fn poll(
        hctx: *mut bindings::blk_mq_hw_ctx,
        _iob: *mut bindings::io_comp_batch,
    ) -> i32 {
        // SAFETY: a hardware context of ours.
        let (hw, _) = unsafe { hctx_parts::<T>(hctx) };
        i32::try_from(T::poll(hw)).unwrap_or(i32::MAX)
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`]; `data` is the tag set's `driver_data`.
    unsafe extern "C" fn init_hctx(
        hctx: *mut bindings::blk_mq_hw_ctx,
        data: *mut c_void,
        index: u32,
    ) -> i32 {
        // SAFETY: the set's data, alive as long as the tag set.
        let set = unsafe { &*data.cast::<T::SetData<'_>>() };
        let Some(hw) = T::hw_data(set, index) else {
            return EINVAL.to_errno();
        };
        // SAFETY: `hctx` is being set up for us; `hw` is borrowed from the
        // set's data, which outlives every hardware context.
        unsafe { (*hctx).driver_data = core::ptr::from_ref(hw).cast_mut().cast() };
        0
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`].
    unsafe extern "C" fn init_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx: u32,
        _node: i32,
    ) -> i32 {
        // No `exit_request`: nothing to drop (blk-mq frees the memory).
        const { assert!(!core::mem::needs_drop::<Pdu<T>>()) };
        // SAFETY: the PDU is `cmd_size` bytes reserved for us, sized for a
        // `Pdu<T>`; writing a whole one initialises it.
        unsafe {
            bindings::blk_mq_rq_to_pdu(rq)
                .cast::<Pdu<T>>()
                .write(Pdu::new())
        };
        0
    }

    /// # Safety
    ///
    /// As [`Self::queue_rq`].
    unsafe extern "C" fn map_queues(set: *mut bindings::blk_mq_tag_set) {
        // SAFETY: `set` is ours (its data alive); it has `nr_maps` maps,
        // which blk-mq lets us fill here.
        let (data, maps) = unsafe {
            let nr = (*set).nr_maps as usize;
            (
                &*(*set).driver_data.cast::<T::SetData<'_>>(),
                (*set).map.get_mut(..nr).unwrap_or(&mut []),
            )
        };
        // SAFETY: as above.
        T::map_queues(data, &mut unsafe { QueueMaps::new(maps) });
    }

    const VTABLE: bindings::blk_mq_ops = bindings::blk_mq_ops {
        queue_rq: Some(Self::queue_rq),
        commit_rqs: Some(Self::commit_rqs),
        complete: Some(Self::complete),
        init_hctx: Some(Self::init_hctx),
        init_request: Some(Self::init_request),
        map_queues: Some(Self::map_queues),
        poll: Some(Self::poll),
        timeout: Some(Self::timeout),
        // SAFETY: all-zero (no callback) is valid for the remaining members.
        ..unsafe { core::mem::zeroed() }
    };

    pub(crate) const fn build() -> &'static bindings::blk_mq_ops {
        &Self::VTABLE
    }
}
