// SPDX-License-Identifier: GPL-2.0

//! A periodic, freezable kernel thread that owns its work (the 7.3 kernel
//! crate has no kthread abstraction): `Ticker::start` hands the thread a
//! boxed context and calls `T::tick` on it every `T::INTERVAL` jiffies
//! until the `Ticker` is dropped, which stops the thread before the
//! context goes.

use core::ffi::c_void;
use kernel::{bindings, prelude::*};

/// What the thread does each interval.
pub(crate) trait Tick: Send + 'static {
    /// Jiffies between ticks.
    const INTERVAL: kernel::ffi::c_long;
    fn tick(&mut self);
}

/// A running thread and its context.
///
/// # Invariants
///
/// `task` is a started kthread running `run::<T>` on `ctx`, which it alone
/// uses until `drop` has stopped it; it never exits on its own.
pub(crate) struct Ticker<T: Tick> {
    task: *mut bindings::task_struct,
    _ctx: KBox<T>,
}

// SAFETY: the task pointer is only passed to `kthread_stop`; the context
// is `Send` and used by the thread alone until that returns.
unsafe impl<T: Tick> Send for Ticker<T> {}

impl<T: Tick> Ticker<T> {
    /// Starts the thread `name` on `ctx`.  Freezable, as vimc's streamer:
    /// while the system suspends it does no work.
    pub(crate) fn start(ctx: KBox<T>, name: &'static CStr) -> Result<Self> {
        let data = core::ptr::from_ref(&*ctx).cast_mut().cast();
        // SAFETY: `data` is the boxed context, which the returned `Ticker`
        // keeps until `drop` has stopped the thread; the name has no
        // format directives.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(run::<T>),
                data,
                bindings::NUMA_NO_NODE,
                name.as_char_ptr(),
            )
        };
        let task = kernel::error::from_err_ptr(task)?;
        // SAFETY: a new kthread waiting for its first wake-up.
        unsafe { bindings::wake_up_process(task) };
        Ok(Self { task, _ctx: ctx })
    }
}

impl<T: Tick> Drop for Ticker<T> {
    fn drop(&mut self) {
        // SAFETY: by the invariants the thread is alive until told to stop;
        // after this the context is ours again.  (-EINTR when it never ran
        // is fine.)
        unsafe { bindings::kthread_stop(self.task) };
    }
}

/// The thread: a tick per interval until told to stop.
///
/// # Safety
///
/// Started by `Ticker::start` with its context.
unsafe extern "C" fn run<T: Tick>(data: *mut c_void) -> i32 {
    // SAFETY: `data` is the `T` the `Ticker` owns, which waits for this
    // thread in `kthread_stop` before touching it.
    let ctx = unsafe { &mut *data.cast::<T>() };
    // Without the freezer, `set_freezable` is a static inline no-op.
    // SAFETY: plain calls on the current kthread; the freezer parks it in
    // `kthread_freezable_should_stop`, between ticks.
    #[cfg(CONFIG_FREEZER)]
    unsafe {
        super::media::sys::set_freezable()
    };
    // SAFETY: as above; a NULL `was_frozen` is allowed.
    while !unsafe { bindings::kthread_freezable_should_stop(core::ptr::null_mut()) } {
        ctx.tick();
        // SAFETY: as above; `kthread_stop` and the freezer wake us early.
        unsafe { bindings::schedule_timeout_interruptible(T::INTERVAL) };
    }
    0
}
