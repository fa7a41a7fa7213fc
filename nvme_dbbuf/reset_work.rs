// SPDX-License-Identifier: GPL-2.0

//! A controller reset requested from interrupt context.
//!
//! A completion whose command id names no request in flight means the
//! controller and the driver no longer agree on the queue's contents; the
//! queue cannot be trusted until the controller is reset.  The completion
//! handler cannot sleep, so it queues this work item, which runs the reset in
//! process context.  The 7.3 workqueue abstraction has no cancel, which
//! unbind needs, so this wraps the C work item directly.

use core::ptr::NonNull;

use kernel::{bindings, prelude::*, static_lock_class, sync::Arc, types::Opaque};

use crate::NvmeDev;

/// The reset work item of one controller.
///
/// # Invariants
///
/// `work` was initialised with [`run`] as its function.  `owner` is the
/// controller this work resets, complete whenever the work can be queued,
/// and it disables this work (`disable_sync`) after the last thing that can
/// queue it is gone and before it is freed.
#[pin_data]
pub(crate) struct ResetWork<'bound> {
    #[pin]
    work: Opaque<bindings::work_struct>,
    owner: NonNull<NvmeDev<'bound>>,
}

// SAFETY: the work item is only touched through the workqueue API, which
// has its own locking; `owner` is only read, and used through `&`, and every
// part of `NvmeDev` reachable through `&` is `Sync`.
unsafe impl Send for ResetWork<'_> {}
// SAFETY: as above.
unsafe impl Sync for ResetWork<'_> {}

impl<'bound> ResetWork<'bound> {
    /// The reset work of controller `owner`.
    ///
    /// # Safety
    ///
    /// `owner` must be complete before the first [`Self::schedule`], and it
    /// must call [`Self::disable_sync`] after the last one and before it is
    /// freed (the work dereferences it when it runs).
    unsafe fn new(owner: NonNull<NvmeDev<'bound>>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes; `run` matches `work_func_t`
            // and the name and lock class are static.
            work <- Opaque::ffi_init(|slot: *mut bindings::work_struct| unsafe {
                bindings::init_work_with_key(
                    slot,
                    Some(run),
                    false,
                    c"nvme_dbbuf:reset".as_char_ptr(),
                    static_lock_class!().as_ptr(),
                )
            }),
            owner,
        })
    }

    /// Queues the reset; a reset already queued absorbs this request.
    /// Callable from any context.
    pub(crate) fn schedule(&self) {
        // SAFETY: `work` is initialised (invariant); `system_wq` is always
        // available.  Queueing an already pending item is a no-op.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                bindings::system_wq,
                self.work.get(),
            )
        };
    }

    /// Waits for a running reset, drops a queued one, and makes later
    /// [`Self::schedule`] calls no-ops: the queues, which keep a reference,
    /// outlive the controller's handle.
    fn disable_sync(&self) {
        // SAFETY: `work` is initialised (invariant).
        unsafe { bindings::disable_work_sync(self.work.get()) };
    }
}

/// The work function.
///
/// # Safety
///
/// Called by the workqueue with the `work` field of a live [`ResetWork`].
unsafe extern "C" fn run(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` field of a `ResetWork` (the only item
    // initialised with this function); `Opaque` is `repr(transparent)`.
    let this = unsafe {
        &*kernel::container_of!(
            work.cast::<Opaque<bindings::work_struct>>(),
            ResetWork<'_>,
            work
        )
    };
    // SAFETY: the controller is complete while the work can run and
    // cancels it before it is freed (invariant).
    unsafe { this.owner.as_ref() }.reset_after_bad_completion();
}

/// The controller's handle on its reset work: dropping it cancels the
/// work (waiting for a running one).  A field of the controller, declared
/// after everything that can queue the work (the interrupts) and before
/// what the work uses (the tag set, the queues).
pub(crate) struct OwnedResetWork<'bound>(Arc<ResetWork<'bound>>);

impl<'bound> OwnedResetWork<'bound> {
    /// The reset work of controller `owner`.
    ///
    /// # Safety
    ///
    /// As [`ResetWork::new`]; dropping the value is the `disable_sync` that
    /// asks for.
    pub(crate) unsafe fn new(owner: NonNull<NvmeDev<'bound>>) -> Result<Self> {
        // SAFETY: this function's contract.
        let work = unsafe { ResetWork::new(owner) };
        Ok(Self(Arc::pin_init(work, GFP_KERNEL)?))
    }

    /// A reference for a queue to schedule the work with.
    pub(crate) fn share(&self) -> Arc<ResetWork<'bound>> {
        self.0.clone()
    }
}

impl Drop for OwnedResetWork<'_> {
    fn drop(&mut self) {
        self.0.disable_sync();
    }
}
