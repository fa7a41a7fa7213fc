// SPDX-License-Identifier: GPL-2.0

//! The video nodes: "Capture" on the scaler's source pad and "Raw Capture 0"
//! on the sensor's, as in vimc.  Each has a vb2 queue (vmalloc memory;
//! mmap, userptr and dmabuf), the pixel formats of the pipeline's codes,
//! and the check at stream on that its format is its upstream pad's.
//! Frames come from `streamer.rs`.

use super::formats;
use super::media::{sys, MediaDevice};
use super::streamer::{Path, Sources, Streamer};
use super::subdev::{self, OpsTable};
use super::timing::Timings;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use kernel::{
    bindings,
    error::to_result,
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
    types::Opaque,
};

/// Buffers a queue may have (vb2's default, set explicitly because the
/// queued list is sized for it).
const MAX_BUFFERS: u32 = 32;

/// Registration progress, for `PinnedDrop` to undo exactly what was done.
const STAGE_NONE: u8 = 0;
const STAGE_QUEUE: u8 = 1;
const STAGE_REGISTERED: u8 = 2;

/// A buffer vb2 gave us and we have not returned yet.
pub(crate) struct QueuedBuf(pub(crate) *mut sys::vb2_buffer);
// SAFETY: the buffer belongs to the queue until `vb2_buffer_done`, which
// may be called from any context; we only pass the pointer along.
unsafe impl Send for QueuedBuf {}

#[pin_data(PinnedDrop)]
pub(crate) struct Capture {
    #[pin]
    vdev: Opaque<sys::video_device>,
    #[pin]
    queue: Opaque<sys::vb2_queue>,
    #[pin]
    pad: Opaque<sys::media_pad>,
    /// The node's and the queue's lock (`vdev->lock`, `q->lock`).
    #[pin]
    lock: Opaque<bindings::mutex>,
    /// Per device, not static: `owner` is our module, so an open node
    /// pins it.
    #[pin]
    fops: Opaque<sys::v4l2_file_operations>,
    /// The media device's pipeline, shared by both nodes so that they
    /// may stream at once (the media core refuses a pad already in
    /// another pipeline).
    pipe: *mut sys::media_pipeline,
    /// Buffers queued by userspace, oldest first.
    #[pin]
    queued: SpinLock<KVec<QueuedBuf>>,
    /// The capture format; changed (under `lock`) only while the queue
    /// holds no buffers.  Its own lock because the other node's stream on
    /// reads it too (link validation runs over the whole graph).
    #[pin]
    fmt: SpinLock<PixFmt>,
    /// The frame producer while streaming.
    #[pin]
    streamer: Mutex<Option<Streamer>>,
    sources: Sources,
    path: Path,
    timings: Arc<Timings>,
    pub(crate) sequence: AtomicU32,
    stage: AtomicU8,
}

// SAFETY: the C structures are used under `lock` (ioctls, vb2 ops) or the
// spinlock (queued buffers); the rest is atomics or immutable.
unsafe impl Send for Capture {}
// SAFETY: as above.
unsafe impl Sync for Capture {}

/// A node's pixel format: what `struct v4l2_pix_format` carries that is
/// not constant here (field none, colorspace sRGB).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PixFmt {
    pub(crate) pixelformat: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bytesperline: u32,
    pub(crate) sizeimage: u32,
}

impl PixFmt {
    /// The pixel format `fourcc`/`w`x`h` clamped as the node accepts it.
    fn adjust(fourcc: u32, w: u32, h: u32) -> Self {
        let (pixelformat, width, height, bytesperline, sizeimage) =
            formats::adjust_capture(fourcc, w, h);
        Self {
            pixelformat,
            width,
            height,
            bytesperline,
            sizeimage,
        }
    }

    fn to_v4l2(self) -> sys::v4l2_pix_format {
        sys::v4l2_pix_format {
            width: self.width,
            height: self.height,
            pixelformat: self.pixelformat,
            field: sys::v4l2_field_V4L2_FIELD_NONE,
            bytesperline: self.bytesperline,
            sizeimage: self.sizeimage,
            colorspace: sys::v4l2_colorspace_V4L2_COLORSPACE_SRGB,
            ..Default::default()
        }
    }
}

impl Capture {
    /// A node fed through `path`; `pipe` outlives it.
    pub(crate) fn new(
        path: Path,
        sources: Sources,
        pipe: *mut sys::media_pipeline,
        timings: Arc<Timings>,
    ) -> Result<impl PinInit<Self>> {
        // Room for every buffer vb2 may hand us, so `buf_queue` (atomic
        // context, no way to fail) never allocates.
        let queued = KVec::with_capacity(MAX_BUFFERS as usize, GFP_KERNEL)?;
        // The default format is what the upstream pad's default produces
        // (the scaler's default is 1:1), so that the default pipeline streams.
        let code = match path {
            Path::Rgb => formats::DEFAULT_RGB,
            Path::Raw => formats::DEFAULT_BAYER.code,
        };
        let fmt = PixFmt::adjust(
            formats::fourcc_of_code(code).unwrap_or(0),
            formats::DEFAULT_BAYER.width,
            formats::DEFAULT_BAYER.height,
        );
        Ok(pin_init!(Self {
            vdev <- Opaque::ffi_init(|p: *mut sys::video_device| {
                // SAFETY: valid for writes; all-zero is what the V4L2 core
                // expects of a video device before setup.
                unsafe { p.write_bytes(0, 1) }
            }),
            queue <- Opaque::ffi_init(|p: *mut sys::vb2_queue| {
                // SAFETY: as above, for `vb2_queue_init`.
                unsafe { p.write_bytes(0, 1) }
            }),
            pad <- Opaque::ffi_init(|p: *mut sys::media_pad| {
                // SAFETY: as above, for `media_entity_pads_init`.
                unsafe { p.write_bytes(0, 1) }
            }),
            lock <- Opaque::ffi_init(|p: *mut bindings::mutex| {
                // SAFETY: `p` is pinned and valid for writes; the class key
                // is static.
                unsafe {
                    bindings::__mutex_init(
                        p,
                        c"vimc_debayer capture".as_char_ptr(),
                        kernel::static_lock_class!().as_ptr(),
                    )
                }
            }),
            fops <- Opaque::ffi_init(|p: *mut sys::v4l2_file_operations| {
                // SAFETY: as above; filled in by `register`.
                unsafe { p.write_bytes(0, 1) }
            }),
            pipe,
            queued <- new_spinlock!(queued, "vimc_debayer capture queue"),
            fmt <- new_spinlock!(fmt, "vimc_debayer capture format"),
            streamer <- new_mutex!(None, "vimc_debayer streamer"),
            sources,
            path,
            timings,
            sequence: AtomicU32::new(0),
            stage: AtomicU8::new(STAGE_NONE),
        }))
    }

    fn name(&self) -> &'static CStr {
        match self.path {
            Path::Rgb => c"Capture",
            Path::Raw => c"Raw Capture 0",
        }
    }

    /// The entity, for the link from upstream.
    pub(crate) fn entity(&self) -> *mut sys::media_entity {
        // SAFETY: `vdev` lives as long as `self`.
        unsafe { &raw mut (*self.vdev.get()).entity }
    }

    /// The current format (a copy).
    pub(crate) fn format(&self) -> PixFmt {
        *self.fmt.lock()
    }

    /// Sets up the queue and registers `/dev/videoN`.
    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        let this = core::ptr::from_ref(self.get_ref()).cast_mut();
        let vdev = self.vdev.get();
        let q = self.queue.get();
        // SAFETY: all of these are pinned fields of `self`, zeroed and not
        // yet shared with the C side; `self` outlives the registration.
        unsafe {
            let f = &mut *self.fops.get();
            f.owner = module.as_ptr().cast();
            f.open = Some(sys::v4l2_fh_open);
            f.release = Some(sys::vb2_fop_release);
            f.poll = Some(sys::vb2_fop_poll);
            f.unlocked_ioctl = Some(sys::video_ioctl2);
            f.mmap = Some(sys::vb2_fop_mmap);

            (*self.pad.get()).flags = sys::MEDIA_PAD_FL_SINK as kernel::ffi::c_ulong;
            (*vdev).entity.name = self.name().as_char_ptr();
            (*vdev).entity.function = sys::MEDIA_ENT_F_IO_V4L;
            (*vdev).entity.ops = &MOPS.0;
            to_result(sys::media_entity_pads_init(
                &raw mut (*vdev).entity,
                1,
                self.pad.get(),
            ))?;

            (*q).type_ = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
            (*q).io_modes = sys::vb2_io_modes_VB2_MMAP
                | sys::vb2_io_modes_VB2_USERPTR
                | sys::vb2_io_modes_VB2_DMABUF;
            (*q).drv_priv = this.cast();
            (*q).buf_struct_size = core::mem::size_of::<sys::vb2_v4l2_buffer>() as u32;
            (*q).ops = &QOPS.0;
            (*q).mem_ops = &raw const sys::vb2_vmalloc_memops;
            (*q).timestamp_flags = sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
            (*q).min_reqbufs_allocation = 2;
            (*q).max_num_buffers = MAX_BUFFERS;
            (*q).lock = self.lock.get();
            (*q).dev = (*media.v4l2()).dev;
            to_result(sys::vb2_queue_init(q))?;
            self.stage.store(STAGE_QUEUE, Ordering::Relaxed);

            (*vdev).device_caps =
                sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_STREAMING | sys::V4L2_CAP_IO_MC;
            (*vdev).release = Some(sys::video_device_release_empty);
            (*vdev).fops = self.fops.get();
            (*vdev).ioctl_ops = &IOCTL_OPS.0;
            (*vdev).lock = self.lock.get();
            (*vdev).queue = q;
            (*vdev).v4l2_dev = media.v4l2();
            (*vdev).vfl_dir = sys::vfl_devnode_direction_VFL_DIR_RX;
            let name = self.name().to_bytes_with_nul();
            for (d, &c) in (*vdev).name.iter_mut().zip(name.iter()) {
                *d = c as kernel::ffi::c_char;
            }
            to_result(sys::__video_register_device(
                vdev,
                sys::vfl_devnode_type_VFL_TYPE_VIDEO,
                -1,
                1,
                module.as_ptr().cast(),
            ))?;
        }
        self.stage.store(STAGE_REGISTERED, Ordering::Relaxed);
        Ok(())
    }

    /// Whether frames of the pad format `src` fit the node's format.
    pub(crate) fn accepts(&self, src: &formats::Fmt) -> bool {
        let fmt = self.format();
        src.width == fmt.width
            && src.height == fmt.height
            && formats::fourcc_of_code(src.code) == Some(fmt.pixelformat)
    }

    /// Takes the oldest queued buffer, if any.
    pub(crate) fn next_buffer(&self) -> Option<QueuedBuf> {
        let mut q = self.queued.lock();
        if q.is_empty() {
            return None;
        }
        q.remove(0).ok()
    }

    /// Returns every queued buffer to vb2 in `state`.
    fn return_all(&self, state: sys::vb2_buffer_state) {
        // Drained in place: the list keeps the room `new` made for it.
        let mut q = self.queued.lock();
        for b in q.drain_all() {
            // SAFETY: a buffer vb2 queued to us and we never returned.
            unsafe { sys::vb2_buffer_done(b.0, state) };
        }
    }

    /// Whether buffers are allocated (`vb2_is_busy`, a static inline).
    fn busy(&self) -> bool {
        // SAFETY: read under `lock` (the caller is an ioctl); the bitmap is
        // NULL or `max_num_buffers` bits.
        unsafe {
            let q = self.queue.get();
            !(*q).bufs_bitmap.is_null()
                && bindings::__bitmap_weight((*q).bufs_bitmap, (*q).max_num_buffers) > 0
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Capture {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: undo in reverse what `register` did; unregistering stops
        // streaming (stop_streaming runs) and frees the buffers.
        unsafe {
            match self.stage.load(Ordering::Relaxed) {
                STAGE_REGISTERED => sys::vb2_video_unregister_device(self.vdev.get()),
                STAGE_QUEUE => sys::vb2_queue_release(self.queue.get()),
                _ => {}
            }
            bindings::mutex_destroy(self.lock.get());
        }
    }
}

/// # Safety
///
/// `q` is our queue.
unsafe fn of_queue<'a>(q: *mut sys::vb2_queue) -> &'a Capture {
    // SAFETY: `drv_priv` was set to the owning `Capture`, which outlives
    // the queue.
    unsafe { &*(*q).drv_priv.cast::<Capture>() }
}

/// # Safety
///
/// `file` is an open file of our node.
unsafe fn of_file<'a>(file: *mut bindings::file) -> &'a Capture {
    // SAFETY: the node's queue is ours (set in `register`).
    unsafe { of_queue((*sys::video_devdata(file)).queue) }
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn querycap(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    cap: *mut sys::v4l2_capability,
) -> i32 {
    // SAFETY: the core passes a valid, zeroed capability.
    let cap = unsafe { &mut *cap };
    for (field, s) in [
        (&mut cap.driver[..], &b"vimc_debayer\0"[..]),
        (&mut cap.card[..], &b"vimc_debayer\0"[..]),
        (&mut cap.bus_info[..], &b"platform:vimc_debayer\0"[..]),
    ] {
        for (d, &c) in field.iter_mut().zip(s.iter()) {
            *d = c;
        }
    }
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn g_fmt(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: the core passes our file and a valid format, under `lock`.
    unsafe { *(*f).fmt.pix.as_mut() = of_file(file).format().to_v4l2() };
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn try_fmt(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: the core passes a valid format of our buffer type.
    let pix = unsafe { (*f).fmt.pix.as_mut() };
    *pix = PixFmt::adjust(pix.pixelformat, pix.width, pix.height).to_v4l2();
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn s_fmt(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: as `g_fmt`.
    let this = unsafe { of_file(file) };
    if this.busy() {
        return EBUSY.to_errno();
    }
    // SAFETY: as `try_fmt`.
    let pix = unsafe { (*f).fmt.pix.as_mut() };
    let new = PixFmt::adjust(pix.pixelformat, pix.width, pix.height);
    *pix = new.to_v4l2();
    crate::dyndbg::ddbg!(
        "capture: format {:#x} {}x{} ({} bytes)\n",
        new.pixelformat,
        new.width,
        new.height,
        new.sizeimage
    );
    *this.fmt.lock() = new;
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn enum_fmt(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_fmtdesc,
) -> i32 {
    // SAFETY: the core passes a valid descriptor.
    let f = unsafe { &mut *f };
    let fourcc = if f.mbus_code != 0 {
        if f.index > 0 {
            return EINVAL.to_errno();
        }
        formats::fourcc_of_code(f.mbus_code)
    } else {
        formats::capture_fourcc(f.index as usize)
    };
    match fourcc {
        Some(p) => {
            f.pixelformat = p;
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn enum_framesizes(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    fs: *mut sys::v4l2_frmsizeenum,
) -> i32 {
    // SAFETY: the core passes a valid request.
    let fs = unsafe { &mut *fs };
    if fs.index != 0 || formats::fourcc_bpp(fs.pixel_format).is_none() {
        return EINVAL.to_errno();
    }
    fs.type_ = sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_CONTINUOUS;
    // SAFETY: `stepwise` is the union member for this type.
    let s = unsafe { fs.__bindgen_anon_1.stepwise.as_mut() };
    s.min_width = formats::MIN_WIDTH;
    s.max_width = formats::MAX_WIDTH;
    s.min_height = formats::MIN_HEIGHT;
    s.max_height = formats::MAX_HEIGHT;
    s.step_width = 1;
    s.step_height = 1;
    0
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
    let pushed = this.queued.lock().push_within_capacity(QueuedBuf(vb));
    if pushed.is_err() {
        // SAFETY: vb2 gave us the buffer; give it back, failed.
        unsafe { sys::vb2_buffer_done(vb, sys::vb2_buffer_state_VB2_BUF_STATE_ERROR) };
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
    let ret = unsafe { sys::video_device_pipeline_start(this.vdev.get(), this.pipe) };
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
            unsafe { sys::video_device_pipeline_stop(this.vdev.get()) };
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
    unsafe { sys::video_device_pipeline_stop(this.vdev.get()) };
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
        subdev::with_active_state(sd, |st| {
            subdev::state_fmt(st, u32::from(src_pad.index)).map(|m| subdev::fmt_of(m))
        })
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

static MOPS: OpsTable<sys::media_entity_operations> = OpsTable(sys::media_entity_operations {
    link_validate: Some(link_validate),
    // SAFETY: all-NULL is "not implemented" for the remaining ops.
    ..unsafe { core::mem::zeroed() }
});

static QOPS: OpsTable<sys::vb2_ops> = OpsTable(sys::vb2_ops {
    queue_setup: Some(queue_setup),
    buf_prepare: Some(buf_prepare),
    buf_queue: Some(buf_queue),
    start_streaming: Some(start_streaming),
    stop_streaming: Some(stop_streaming),
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});

static IOCTL_OPS: OpsTable<sys::v4l2_ioctl_ops> = OpsTable(sys::v4l2_ioctl_ops {
    vidioc_querycap: Some(querycap),
    vidioc_g_fmt_vid_cap: Some(g_fmt),
    vidioc_s_fmt_vid_cap: Some(s_fmt),
    vidioc_try_fmt_vid_cap: Some(try_fmt),
    vidioc_enum_fmt_vid_cap: Some(enum_fmt),
    vidioc_enum_framesizes: Some(enum_framesizes),
    vidioc_reqbufs: Some(sys::vb2_ioctl_reqbufs),
    vidioc_create_bufs: Some(sys::vb2_ioctl_create_bufs),
    vidioc_prepare_buf: Some(sys::vb2_ioctl_prepare_buf),
    vidioc_querybuf: Some(sys::vb2_ioctl_querybuf),
    vidioc_qbuf: Some(sys::vb2_ioctl_qbuf),
    vidioc_dqbuf: Some(sys::vb2_ioctl_dqbuf),
    vidioc_expbuf: Some(sys::vb2_ioctl_expbuf),
    vidioc_streamon: Some(sys::vb2_ioctl_streamon),
    vidioc_streamoff: Some(sys::vb2_ioctl_streamoff),
    vidioc_remove_bufs: Some(sys::vb2_ioctl_remove_bufs),
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});
