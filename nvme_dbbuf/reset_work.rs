// SPDX-License-Identifier: GPL-2.0

//! A controller reset requested from interrupt context.
//!
//! A completion whose command id names no request in flight means the
//! controller and the driver no longer agree on the queue's contents; the
//! queue cannot be trusted until the controller is reset.  The completion
//! handler cannot sleep, so it queues this work item, which runs the reset in
//! process context, reaching the controller through the controller's lease
//! (`lease.rs`): a reset queued while the controller goes finds it revoked.
//! The 7.3 workqueue abstraction has no cancel, which unbind needs, so this
//! wraps the C work item directly.

use kernel::{
    bindings,
    prelude::*,
    static_lock_class,
    sync::{Arc, SetOnce},
    types::Opaque,
};

use crate::{lease::Lease, nvme_dev::DevLt};

/// The reset work item of one controller.
///
/// # Invariants
///
/// `work` was initialised with [`run`] as its function, and is disabled
/// (`disable_sync`) before the item is freed.
#[pin_data]
pub(crate) struct ResetWork {
    #[pin]
    work: Opaque<bindings::work_struct>,
    /// The controller this work resets, once it has lent itself.
    dev: SetOnce<Arc<Lease<DevLt>>>,
}

// SAFETY: the work item is only touched through the workqueue API, which
// has its own locking; `dev` is `Send + Sync`.
unsafe impl Send for ResetWork {}
// SAFETY: as above.
unsafe impl Sync for ResetWork {}

impl ResetWork {
    /// A reset work item, idle until [`Self::lend`] names its controller.
    fn new() -> impl PinInit<Self> {
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
            dev: SetOnce::new(),
        })
    }

    /// Queues the reset; a reset already queued absorbs this request.
    /// Callable from any context.  On the unbound workqueue for long work
    /// (a reset waits for the controller, up to CAP.TO); 7.3 warns about
    /// `system_wq`, which is deprecated.
    pub(crate) fn schedule(&self) {
        // SAFETY: `work` is initialised (invariant); the system workqueues
        // are always available.  Queueing an already pending item is a no-op.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                bindings::system_dfl_long_wq,
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
            ResetWork,
            work
        )
    };
    if let Some(dev) = this.dev.as_ref() {
        // Revoked: the controller is going, and resets no more.
        let _ = dev.with(|dev| dev.reset_after_bad_completion());
    }
}

/// The controller's handle on its reset work: dropping it cancels the
/// work (waiting for a running one).  A field of the controller, declared
/// after everything that can queue the work (the interrupts) and before
/// what the work uses (the tag set, the queues).
pub(crate) struct OwnedResetWork(Arc<ResetWork>);

impl OwnedResetWork {
    /// A reset work item for a controller, idle until [`Self::lend`].
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(Arc::pin_init(ResetWork::new(), GFP_KERNEL)?))
    }

    /// The controller to reset: its lease, given before anything can queue
    /// the work.  Only the first call counts.
    pub(crate) fn lend(&self, dev: &Arc<Lease<DevLt>>) {
        self.0.dev.populate(dev.clone());
    }

    /// A reference for a queue to schedule the work with.
    pub(crate) fn share(&self) -> Arc<ResetWork> {
        self.0.clone()
    }
}

impl Drop for OwnedResetWork {
    fn drop(&mut self) {
        self.0.disable_sync();
    }
}
