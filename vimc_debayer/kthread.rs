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
        // format directives; a new kthread waits for its first wake-up.
        let task = unsafe {
            let task = kernel::error::from_err_ptr(bindings::kthread_create_on_node(
                Some(run::<T>),
                data,
                bindings::NUMA_NO_NODE,
                name.as_char_ptr(),
            ))?;
            bindings::wake_up_process(task);
            task
        };
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
    // thread in `kthread_stop` before touching it.  (Without the freezer,
    // `set_freezable` is a static inline no-op.)
    let ctx = unsafe {
        #[cfg(CONFIG_FREEZER)]
        super::media::sys::set_freezable();
        &mut *data.cast::<T>()
    };
    // Tick, sleep, then check: a stop during either ends the loop at the
    // check (`kthread` calls no thread function told to stop before it
    // started).
    loop {
        ctx.tick();
        // plain calls on the current kthread; `kthread_stop` and
        // the freezer wake it early, and the freezer parks it in
        // `kthread_freezable_should_stop`, between ticks; a NULL
        // `was_frozen` is allowed.
        // SAFETY: as the comment above says.
        let stop = unsafe {
            bindings::schedule_timeout_interruptible(T::INTERVAL);
            bindings::kthread_freezable_should_stop(core::ptr::null_mut())
        };
        if stop {
            break;
        }
    }
    0
}
