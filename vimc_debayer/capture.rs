// SPDX-License-Identifier: GPL-2.0

//! The video nodes: "Capture" on the scaler's source pad and "Raw Capture 0"
//! on the sensor's, as in vimc.  Each has a vb2 queue (vmalloc memory;
//! mmap, userptr and dmabuf), the pixel formats of the pipeline's codes,
//! and the check at stream on that its format is its upstream pad's.
//! Frames come from `streamer.rs`; the vb2 and media callbacks are in
//! `capture_queue.rs`, the ioctls in `capture_ioctl.rs`.

use super::capture_ioctl::IOCTL_OPS;
use super::capture_queue::{QueuedBuf, MOPS, QOPS};
use super::formats;
use super::media::{sys, MediaDevice};
use super::pixfmt;
use super::streamer::{Path, Sources, Streamer};
use super::timing::Timings;
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
    pub(crate) pipe: *mut sys::media_pipeline,
    /// Buffers queued by userspace, oldest first.
    #[pin]
    pub(crate) queued: SpinLock<KVec<QueuedBuf>>,
    /// The capture format; changed (under `lock`) only while the queue
    /// holds no buffers.  Its own lock because the other node's stream on
    /// reads it too (link validation runs over the whole graph).
    #[pin]
    pub(crate) fmt: SpinLock<PixFmt>,
    /// The frame producer while streaming.
    #[pin]
    pub(crate) streamer: Mutex<Option<Streamer>>,
    pub(crate) sources: Sources,
    pub(crate) path: Path,
    pub(crate) timings: Arc<Timings>,
    pub(crate) sequence: AtomicU32,
    /// Video-centric mode (module parameter, read at load): `S_FMT`
    /// configures the pipeline, and both nodes share one lock.
    pub(crate) centric: bool,
    stage: AtomicU8,
}

// SAFETY: the C structures are used under `lock` (ioctls, vb2 ops) or the
// spinlock (queued buffers); the rest is atomics or immutable.
unsafe impl Send for Capture {}
// SAFETY: as above.
unsafe impl Sync for Capture {}

/// A node's pixel format: what `struct v4l2_pix_format` carries that is
/// not constant here (field none, colorspace sRGB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PixFmt {
    pub(crate) pixelformat: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bytesperline: u32,
    pub(crate) sizeimage: u32,
}

impl PixFmt {
    /// The pixel format `fourcc`/`w`x`h` clamped as vimc's nodes accept it.
    pub(crate) fn adjust(fourcc: u32, w: u32, h: u32) -> Self {
        Self::of(pixfmt::adjust_capture(fourcc, w, h))
    }

    /// As the `path` node accepts it in video-centric mode.
    pub(crate) fn adjust_centric(path: Path, fourcc: u32, w: u32, h: u32) -> Self {
        Self::of(pixfmt::adjust_centric(path == Path::Rgb, fourcc, w, h))
    }

    fn of(
        (pixelformat, width, height, bytesperline, sizeimage): (u32, u32, u32, u32, u32),
    ) -> Self {
        Self {
            pixelformat,
            width,
            height,
            bytesperline,
            sizeimage,
        }
    }

    pub(crate) fn to_v4l2(self) -> sys::v4l2_pix_format {
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

/// The two nodes, in one allocation so that each finds the other (in
/// video-centric mode a format set on one may change the other's).
///
/// # Invariants
///
/// Every `Capture` is the `rgb` (path `Rgb`) or the `raw` (path `Raw`)
/// field of a `Nodes`: `Capture::new` is private to this file.
#[pin_data]
pub(crate) struct Nodes {
    /// Dropped first: in video-centric mode it runs under `rgb`'s lock.
    #[pin]
    pub(crate) raw: Capture,
    #[pin]
    pub(crate) rgb: Capture,
}

impl Nodes {
    /// Both nodes; `pipe` outlives them.
    pub(crate) fn new(
        sources: Sources,
        pipe: *mut sys::media_pipeline,
        timings: &Arc<Timings>,
        centric: bool,
    ) -> Result<impl PinInit<Self, Error>> {
        let raw = Capture::new(Path::Raw, sources, pipe, timings.clone(), centric)?;
        let rgb = Capture::new(Path::Rgb, sources, pipe, timings.clone(), centric)?;
        Ok(try_pin_init!(Self { raw <- raw, rgb <- rgb }? Error))
    }

    /// Registers the RGB node, then the raw one (whose lock may be the RGB
    /// node's).
    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        // SAFETY: both fields are structurally pinned.
        let (rgb, raw) = unsafe {
            (
                self.map_unchecked(|n| &n.rgb),
                self.map_unchecked(|n| &n.raw),
            )
        };
        rgb.register(media, module)?;
        raw.register(media, module)
    }
}

impl Capture {
    /// A node fed through `path`; `pipe` outlives it.
    fn new(
        path: Path,
        sources: Sources,
        pipe: *mut sys::media_pipeline,
        timings: Arc<Timings>,
        centric: bool,
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
            pixfmt::fourcc_of_code(code).unwrap_or(0),
            formats::DEFAULT_BAYER.width,
            formats::DEFAULT_BAYER.height,
        );
        Ok(pin_init!(Self {
            vdev <- pin_init::init_zeroed(),
            queue <- pin_init::init_zeroed(),
            pad <- pin_init::init_zeroed(),
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
            fops <- pin_init::init_zeroed(),
            pipe,
            queued <- new_spinlock!(queued, "vimc_debayer capture queue"),
            fmt <- new_spinlock!(fmt, "vimc_debayer capture format"),
            streamer <- new_mutex!(None, "vimc_debayer streamer"),
            sources,
            path,
            timings,
            sequence: AtomicU32::new(0),
            centric,
            stage: AtomicU8::new(STAGE_NONE),
        }))
    }

    /// The other node.
    pub(crate) fn sibling(&self) -> &Capture {
        let me = core::ptr::from_ref(self);
        // SAFETY: by the invariant of `Nodes`, `self` is the field its path
        // names, so the container is a live `Nodes`, borrowed as long as
        // `self` is.
        unsafe {
            match self.path {
                Path::Rgb => &(*kernel::container_of!(me, Nodes, rgb)).raw,
                Path::Raw => &(*kernel::container_of!(me, Nodes, raw)).rgb,
            }
        }
    }

    /// The node's lock: its own, or in video-centric mode the RGB node's
    /// for both (a format set on one node checks and changes the other).
    fn lock_ptr(&self) -> *mut bindings::mutex {
        if self.centric && self.path == Path::Raw {
            self.sibling().lock.get()
        } else {
            self.lock.get()
        }
    }

    pub(crate) fn name(&self) -> &'static CStr {
        match self.path {
            Path::Rgb => c"Capture",
            Path::Raw => c"Raw Capture 0",
        }
    }

    /// The video device (for the callbacks in `capture_queue.rs`).
    pub(crate) fn vdev(&self) -> *mut sys::video_device {
        self.vdev.get()
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
        let vdev = self.vdev.get();
        let q = self.queue.get();
        let lock = self.lock_ptr();
        // Media-controller-centric (vimc's behaviour): the pipeline is set
        // up through the media device, the node has one input.
        let io_mc = if self.centric { 0 } else { sys::V4L2_CAP_IO_MC };
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
        }
        self.init_queue(media, lock)?;
        // SAFETY: as above.
        unsafe {
            (*vdev).device_caps = sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_STREAMING | io_mc;
            (*vdev).release = Some(sys::video_device_release_empty);
            (*vdev).fops = self.fops.get();
            (*vdev).ioctl_ops = &IOCTL_OPS.0;
            (*vdev).lock = lock;
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

    /// Sets up the vb2 queue: vmalloc buffers, `QOPS`, `lock`.
    fn init_queue(self: Pin<&Self>, media: &MediaDevice, lock: *mut bindings::mutex) -> Result {
        let this = core::ptr::from_ref(self.get_ref()).cast_mut();
        let q = self.queue.get();
        // SAFETY: `q` is a pinned field of `self`, zeroed and not yet
        // shared with the C side; `self` outlives the queue.
        unsafe {
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
            (*q).lock = lock;
            (*q).dev = (*media.v4l2()).dev;
            to_result(sys::vb2_queue_init(q))?;
            self.stage.store(STAGE_QUEUE, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether frames of the pad format `src` fit the node's format.
    pub(crate) fn accepts(&self, src: &formats::Fmt) -> bool {
        let fmt = self.format();
        src.width == fmt.width
            && src.height == fmt.height
            && pixfmt::code_fits(src.code, fmt.pixelformat)
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
    pub(crate) fn return_all(&self, state: sys::vb2_buffer_state) {
        // Drained in place: the list keeps the room `new` made for it.
        let mut q = self.queued.lock();
        for b in q.drain_all() {
            b.give_back(state);
        }
    }

    /// Whether buffers are allocated (`vb2_is_busy`, a static inline).
    pub(crate) fn busy(&self) -> bool {
        // SAFETY: read under the node's lock (the caller is an ioctl of this
        // node, or in video-centric mode of either); the bitmap is
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
pub(crate) unsafe fn of_queue<'a>(q: *mut sys::vb2_queue) -> &'a Capture {
    // SAFETY: `drv_priv` was set to the owning `Capture`, which outlives
    // the queue.
    unsafe { &*(*q).drv_priv.cast::<Capture>() }
}

/// # Safety
///
/// `file` is an open file of our node.
pub(crate) unsafe fn of_file<'a>(file: *mut bindings::file) -> &'a Capture {
    // SAFETY: the node's queue is ours (set in `register`).
    unsafe { of_queue((*sys::video_devdata(file)).queue) }
}
