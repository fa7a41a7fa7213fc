// SPDX-License-Identifier: GPL-2.0

//! The capture nodes' vb2 queue operations (buffers, stream on and off)
//! and their media entity's side of link validation.

use super::capture::of_queue;
use super::media::sys;
use super::pad_ops::State;
use super::streamer::Streamer;
use super::subdev::{self, OpsTable};
use core::sync::atomic::Ordering;
use kernel::{bindings, prelude::*};

/// A buffer vb2 gave us and we have not returned yet.
///
/// # Invariants
///
/// `0` is the `vb2_buf` of a `struct vb2_v4l2_buffer` of one of our
/// queues, queued to us (`buf_queue`) and not returned yet; one
/// `QueuedBuf` per buffer, consumed by returning it.
pub(crate) struct QueuedBuf(*mut sys::vb2_buffer);
// SAFETY: the buffer belongs to us until `vb2_buffer_done`, which may be
// called from any context.
unsafe impl Send for QueuedBuf {}

impl QueuedBuf {
    /// # Safety
    ///
    /// `vb` is a buffer vb2 just queued to us (`buf_queue`).
    pub(crate) unsafe fn new(vb: *mut sys::vb2_buffer) -> Self {
        Self(vb)
    }

    /// Copies `src` into plane 0, as much as fits; the bytes copied, or
    /// `None` if the plane has no kernel mapping.
    pub(crate) fn fill(&mut self, src: &[u8]) -> Option<usize> {
        let vb = self.0;
        // SAFETY: by the invariants the buffer and its planes are ours;
        // the copy stays within plane 0's length.
        unsafe {
            let vaddr = sys::vb2_plane_vaddr(vb, 0).cast::<u8>();
            if vaddr.is_null() || (*vb).num_planes == 0 {
                return None;
            }
            let len = src.len().min((*vb).planes[0].length as usize);
            core::ptr::copy_nonoverlapping(src.as_ptr(), vaddr, len);
            Some(len)
        }
    }

    /// Completes the buffer: `payload` bytes, `sequence`, a monotonic
    /// timestamp, progressive; done if `ok`, else in error.
    pub(crate) fn done(self, payload: usize, sequence: u32, ok: bool) {
        let vb = self.0;
        // SAFETY: by the invariants; `vb2_buf` is the first member of the
        // `vb2_v4l2_buffer` (`buf_struct_size`); returned once, here.
        unsafe {
            (*vb).timestamp = bindings::ktime_get() as u64;
            let vbuf = vb.cast::<sys::vb2_v4l2_buffer>();
            (*vbuf).sequence = sequence;
            (*vbuf).field = sys::v4l2_field_V4L2_FIELD_NONE;
            if (*vb).num_planes > 0 {
                (*vb).planes[0].bytesused = payload as u32; // vb2_set_plane_payload
            }
            let state = if ok {
                sys::vb2_buffer_state_VB2_BUF_STATE_DONE
            } else {
                sys::vb2_buffer_state_VB2_BUF_STATE_ERROR
            };
            sys::vb2_buffer_done(vb, state);
        }
    }

    /// Gives the buffer back unfilled, in `state` (stream off, a failed
    /// start).
    pub(crate) fn give_back(self, state: sys::vb2_buffer_state) {
        // SAFETY: by the invariants; returned once, here.
        unsafe { sys::vb2_buffer_done(self.0, state) };
    }
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn queue_setup(
    q: *mut sys::vb2_queue,
    _nbuffers: *mut u32,
    nplanes: *mut u32,
    sizes: *mut u32,
    _alloc_devs: *mut *mut bindings::device,
) -> i32 {
    // SAFETY: vb2 passes our queue and arrays of `VB2_MAX_PLANES`.
    let (this, nplanes, size0) = unsafe { (of_queue(q), &mut *nplanes, &mut *sizes) };
    let need = this.format().sizeimage;
    if *nplanes != 0 {
        return if *size0 < need { EINVAL.to_errno() } else { 0 };
    }
    *nplanes = 1;
    *size0 = need;
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn buf_prepare(vb: *mut sys::vb2_buffer) -> i32 {
    // SAFETY: vb2 passes a buffer of our queue.
    let (this, vb) = unsafe { (of_queue((*vb).vb2_queue), &*vb) };
    let need = this.format().sizeimage;
    // `vb2_plane_size(vb, 0)`, a static inline.
    let have = if vb.num_planes > 0 {
        vb.planes[0].length
    } else {
        0
    };
    if have < need {
        crate::dyndbg::ddbg!("capture: buffer too small ({} < {})\n", have, need);
        return EINVAL.to_errno();
    }
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn buf_queue(vb: *mut sys::vb2_buffer) {
    // SAFETY: vb2 passes a buffer of our queue.
    let this = unsafe { of_queue((*vb).vb2_queue) };
    // vb2 never has more than `max_num_buffers` buffers, for which `new`
    // made room, so this cannot fail; if it did, the buffer goes back.
    // SAFETY: vb2 just queued `vb` to us.
    let buf = unsafe { QueuedBuf::new(vb) };
    if let Err(buf) = this.queued.lock().push_within_capacity(buf) {
        buf.0.give_back(sys::vb2_buffer_state_VB2_BUF_STATE_ERROR);
    }
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn start_streaming(q: *mut sys::vb2_queue, _count: u32) -> i32 {
    // SAFETY: vb2 passes our queue, under `lock`.
    let this = unsafe { of_queue(q) };
    this.sequence.store(0, Ordering::Relaxed);
    // Link validation of the whole pipeline (formats on both ends of
    // every link agree, else -EPIPE).
    // SAFETY: registered node and our pipeline object.
    let ret = unsafe { sys::video_device_pipeline_start(this.vdev(), this.pipe) };
    if ret != 0 {
        crate::dyndbg::ddbg!("capture: pipeline start failed: {}\n", ret);
        this.return_all(sys::vb2_buffer_state_VB2_BUF_STATE_QUEUED);
        return ret;
    }
    match Streamer::start(this, &this.sources, this.path, &this.timings) {
        Ok(s) => {
            *this.streamer.lock() = Some(s);
            0
        }
        Err(e) => {
            // SAFETY: started above.
            unsafe { sys::video_device_pipeline_stop(this.vdev()) };
            this.return_all(sys::vb2_buffer_state_VB2_BUF_STATE_QUEUED);
            e.to_errno()
        }
    }
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn stop_streaming(q: *mut sys::vb2_queue) {
    // SAFETY: vb2 passes our queue, under `lock`.
    let this = unsafe { of_queue(q) };
    // Dropping the streamer stops its thread before anything it uses goes.
    drop(this.streamer.lock().take());
    // SAFETY: started by `start_streaming`.
    unsafe { sys::video_device_pipeline_stop(this.vdev()) };
    this.return_all(sys::vb2_buffer_state_VB2_BUF_STATE_ERROR);
}

/// The capture entity's side of link validation: the upstream pad's active
/// format (the scaler's or the sensor's) must be what the node captures.
///
/// # Safety
///
/// Called by the media core with a valid link, under the graph mutex.
unsafe extern "C" fn link_validate(link: *mut sys::media_link) -> i32 {
    // SAFETY: the media core passes a link whose sink is our entity and
    // whose source is a sub-device's source pad (an immutable link).
    let (src_pad, sink_ent) = unsafe {
        (
            &*(*link).__bindgen_anon_1.source,
            (*(*link).__bindgen_anon_2.sink).entity,
        )
    };
    // SAFETY: the sink entity is embedded in our video device, whose queue
    // is ours.
    let this = unsafe {
        let vdev = kernel::container_of!(sink_ent, sys::video_device, entity);
        of_queue((*vdev).queue)
    };
    // SAFETY: the source entity is a registered sub-device's.
    let sd = unsafe { kernel::container_of!(src_pad.entity, sys::v4l2_subdev, entity) };
    // SAFETY: as above; the active state exists for finalized sub-devices.
    let src = unsafe {
        subdev::with_active_state(sd, |st| State::from_raw(st).fmt(u32::from(src_pad.index)))
    }
    .flatten();
    if src.is_some_and(|s| this.accepts(&s)) {
        0
    } else {
        let fmt = this.format();
        crate::dyndbg::ddbg!(
            "capture: link validation failed: source {:?}, capture {:#x} {}x{}\n",
            src,
            fmt.pixelformat,
            fmt.width,
            fmt.height
        );
        EPIPE.to_errno()
    }
}

pub(crate) static MOPS: OpsTable<sys::media_entity_operations> =
    OpsTable(sys::media_entity_operations {
        link_validate: Some(link_validate),
        // SAFETY: all-NULL is "not implemented" for the remaining ops.
        ..unsafe { core::mem::zeroed() }
    });

pub(crate) static QOPS: OpsTable<sys::vb2_ops> = OpsTable(sys::vb2_ops {
    queue_setup: Some(queue_setup),
    buf_prepare: Some(buf_prepare),
    buf_queue: Some(buf_queue),
    start_streaming: Some(start_streaming),
    stop_streaming: Some(stop_streaming),
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});
