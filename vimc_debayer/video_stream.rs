// SPDX-License-Identifier: GPL-2.0

//! A capture node's stream: vb2's start and stop, the media pipeline, and
//! the thread that ticks `T`'s stream with the node borrowed.  A submodule
//! of `video.rs`.

use super::super::kthread::{Tick, Ticker};
use super::super::media::sys;
use super::super::video_ops::VideoOps;
use super::VideoNode;
use core::sync::atomic::Ordering;
use kernel::{error::to_result, prelude::*};

/// The stream thread's work: `T`'s stream context and its node.
///
/// # Invariants
///
/// `node` is the pinned `VideoNode<T>` whose `stream` holds the `Ticker`
/// running this job; the node stops the thread before it goes.
pub(super) struct Job<T: VideoOps> {
    stream: T::Stream,
    node: *const VideoNode<T>,
}

// SAFETY: `T::Stream` is `Send`; the node is `Sync` and outlives the
// thread (invariants).
unsafe impl<T: VideoOps> Send for Job<T> {}

impl<T: VideoOps> Tick for Job<T> {
    const INTERVAL: kernel::ffi::c_long = T::INTERVAL;

    fn tick(&mut self) {
        // SAFETY: by the invariants the node is alive while the thread runs.
        let node = unsafe { &*self.node };
        T::tick(&mut self.stream, node);
    }
}

impl<T: VideoOps> VideoNode<T> {
    /// Starts the pipeline (link validation), then `T`'s stream and the
    /// thread that ticks it.
    ///
    /// # Safety
    ///
    /// Called as vb2's `start_streaming` of this (registered) node.
    pub(crate) unsafe fn start_streaming(&self) -> Result {
        self.sequence.store(0, Ordering::Relaxed);
        // SAFETY: a registered node (the contract); the pipeline object is
        // the set's, alive as long as any node.
        to_result(unsafe {
            sys::video_device_pipeline_start(self.vdev.get(), self.shared.pipe.get())
        })
        .inspect_err(|e| crate::dyndbg::ddbg!("video: pipeline start failed: {:?}\n", e))?;
        let started = self.start_thread();
        if started.is_err() {
            // SAFETY: started above.
            unsafe { sys::video_device_pipeline_stop(self.vdev.get()) };
        }
        started
    }

    /// `T`'s stream and the thread that ticks it.
    fn start_thread(&self) -> Result {
        let stream = T::start(self)?;
        let job = Job {
            stream,
            node: core::ptr::from_ref(self),
        };
        let ticker = Ticker::start(KBox::new(job, GFP_KERNEL)?, T::THREAD)?;
        *self.stream.lock() = Some(ticker);
        Ok(())
    }

    /// Stops the thread (then `T`'s stream goes) and the pipeline.
    ///
    /// # Safety
    ///
    /// Called as vb2's `stop_streaming` of this node, which vb2 calls only
    /// after `start_streaming` succeeded.
    pub(crate) unsafe fn stop_streaming(&self) {
        drop(self.stream.lock().take());
        // SAFETY: started by `start_streaming` (the contract).
        unsafe { sys::video_device_pipeline_stop(self.vdev.get()) };
    }
}
