// SPDX-License-Identifier: GPL-2.0

//! A capture node's behaviour as a trait: a node implements `VideoOps` in
//! safe Rust, and `Tables` generates the C tables for it (V4L2 ioctls, vb2
//! queue operations, the media entity's link validation) with trampolines
//! that find the node and call it.  vb2 itself answers the buffer ioctls.

use super::formats::Fmt;
use super::media::{set_str, sys};
use super::pad_ops::State;
use super::subdev::{self, Controls, OpsTable};
use super::video::{Locked, VideoNode};
use core::ffi::c_void;
use core::marker::PhantomData;
use kernel::{bindings, prelude::*};

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

/// A capture node.  The layer answers the buffer ioctls (vb2), refuses
/// `S_FMT` while the node holds buffers, and runs the stream thread.
pub(crate) trait VideoOps: Send + Sync + Sized + 'static {
    /// The stream thread's context, made at stream on, dropped after the
    /// thread stopped.
    type Stream: Send + 'static;
    /// `VIDIOC_QUERYCAP`'s driver, card and bus info.
    const DRIVER: &'static CStr;
    const BUS_INFO: &'static CStr;
    /// The stream thread's name and the jiffies between its ticks.
    const THREAD: &'static CStr;
    const INTERVAL: kernel::ffi::c_long;
    /// Frame sizes: minimum and maximum width, minimum and maximum height
    /// (any step).
    const SIZES: [u32; 4];

    /// The node's (and its entity's) name.
    fn name(&self) -> &'static CStr;
    /// Whether the pipeline is set up through the media device
    /// (`V4L2_CAP_IO_MC`), rather than through this node.
    fn io_mc(&self) -> bool;
    /// The current format.
    fn format(&self) -> PixFmt;
    /// `fourcc` `w`x`h` as the node would accept it.
    fn try_format(&self, fourcc: u32, w: u32, h: u32) -> PixFmt;
    /// Sets the format (the node holds no buffers; `held` is its lock);
    /// the format set.
    fn set_format(
        node: &VideoNode<Self>,
        held: &Locked<'_>,
        fourcc: u32,
        w: u32,
        h: u32,
    ) -> Result<PixFmt>;
    /// The `index`th pixel format offered, of those that fit the media bus
    /// code `mbus` if it is not 0.
    fn enum_format(&self, index: usize, mbus: u32) -> Option<u32>;
    /// Whether `fourcc` is a pixel format of the node's.
    fn knows(&self, fourcc: u32) -> bool;
    /// Link validation: whether frames of the upstream pad format `src`
    /// fit the node's format.
    fn accepts(&self, src: &Fmt) -> bool;
    /// Controls of other entities the node offers as its own (none if
    /// the node is configured through the media device).
    fn inherited(&self) -> impl Iterator<Item = Controls>;
    /// Stream on, after the pipeline's links were validated.
    fn start(node: &VideoNode<Self>) -> Result<Self::Stream>;
    /// One tick of the stream thread.
    fn tick(stream: &mut Self::Stream, node: &VideoNode<Self>);
}

/// The C tables of a `T` node.
pub(crate) struct Tables<T>(PhantomData<T>);

impl<T: VideoOps> Tables<T> {
    const IOCTL: OpsTable<sys::v4l2_ioctl_ops> = OpsTable(sys::v4l2_ioctl_ops {
        vidioc_querycap: Some(querycap::<T>),
        vidioc_g_fmt_vid_cap: Some(g_fmt::<T>),
        vidioc_s_fmt_vid_cap: Some(s_fmt::<T>),
        vidioc_try_fmt_vid_cap: Some(try_fmt::<T>),
        vidioc_enum_fmt_vid_cap: Some(enum_fmt::<T>),
        vidioc_enum_framesizes: Some(enum_framesizes::<T>),
        vidioc_enum_input: Some(enum_input::<T>),
        vidioc_g_input: Some(g_input::<T>),
        vidioc_s_input: Some(s_input),
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
        ..pin_init::zeroed()
    });
    /// For a node with controls: control events too.  (No LOG_STATUS: the
    /// core logs a handler's own controls only, not inherited ones.)
    const IOCTL_CTRLS: OpsTable<sys::v4l2_ioctl_ops> = OpsTable(sys::v4l2_ioctl_ops {
        vidioc_subscribe_event: Some(sys::v4l2_ctrl_subscribe_event),
        vidioc_unsubscribe_event: Some(sys::v4l2_event_unsubscribe),
        ..Self::IOCTL.0
    });
    const QUEUE: OpsTable<sys::vb2_ops> = OpsTable(sys::vb2_ops {
        queue_setup: Some(queue_setup::<T>),
        buf_prepare: Some(buf_prepare::<T>),
        buf_queue: Some(buf_queue::<T>),
        start_streaming: Some(start_streaming::<T>),
        stop_streaming: Some(stop_streaming::<T>),
        ..pin_init::zeroed()
    });
    const ENTITY: OpsTable<sys::media_entity_operations> = OpsTable(sys::media_entity_operations {
        link_validate: Some(link_validate::<T>),
        ..pin_init::zeroed()
    });

    pub(crate) const fn ioctl(ctrls: bool) -> &'static sys::v4l2_ioctl_ops {
        if ctrls {
            &Self::IOCTL_CTRLS.0
        } else {
            &Self::IOCTL.0
        }
    }

    pub(crate) const fn queue() -> &'static sys::vb2_ops {
        &Self::QUEUE.0
    }

    pub(crate) const fn entity() -> &'static sys::media_entity_operations {
        &Self::ENTITY.0
    }
}

/// Defines `vidioc_*` trampolines: `fn name(node, arg: ARG) -> i32 {..}`
/// becomes the C function the core calls with an open file of a
/// `VideoNode<T>` and a pointer to the ioctl's argument, giving the body the
/// node and the argument as references (and, as `fn name(node, arg: ARG,
/// held)`, the proof that the node's lock is held).
macro_rules! ioctls {
    ($($(#[$m:meta])* fn $name:ident($node:ident, $arg:ident: $ty:ty $(, $held:ident)?) -> i32 $body:block)*) => {$(
        $(#[$m])*
        ///
        /// # Safety
        ///
        /// Called by the V4L2 core with an open file of a registered
        /// `VideoNode<T>` and a valid argument, ours for the call.
        unsafe extern "C" fn $name<T: VideoOps>(
            file: *mut bindings::file,
            _priv: *mut c_void,
            arg: *mut $ty,
        ) -> i32 {
            // per the function's contract; the core copied the
            // argument in from user space and copies it back after, and
            // holds the node's lock (`vdev->lock`) for the call.  The
            // node's queue is its own (set in `register`).
            // SAFETY: as the comment above says.
            #[allow(unused_variables)]
            let ($node, $arg, held) = unsafe {
                let node = of_queue::<T>((*sys::video_devdata(file)).queue);
                (node, &mut *arg, node.locked())
            };
            $(let $held = held;)?
            $body
        }
    )*};
}

/// The single-planar capture format of `f`, the only type the core passes
/// to `vidioc_*_fmt_vid_cap`.
fn pix(f: &mut sys::v4l2_format) -> &mut sys::v4l2_pix_format {
    // SAFETY: the core checked `f.type_` is `V4L2_BUF_TYPE_VIDEO_CAPTURE`
    // (the only type whose ops we set), for which `pix` is the member.
    unsafe { f.fmt.pix.as_mut() }
}

ioctls! {
    fn querycap(node, cap: sys::v4l2_capability) -> i32 {
        set_str(&mut cap.driver, T::DRIVER);
        set_str(&mut cap.card, T::DRIVER);
        set_str(&mut cap.bus_info, T::BUS_INFO);
        0
    }

    fn g_fmt(node, f: sys::v4l2_format) -> i32 {
        *pix(f) = node.format().to_v4l2();
        0
    }

    fn try_fmt(node, f: sys::v4l2_format) -> i32 {
        let pix = pix(f);
        *pix = node
            .try_format(pix.pixelformat, pix.width, pix.height)
            .to_v4l2();
        0
    }

    /// Refused while the node holds buffers.
    fn s_fmt(node, f: sys::v4l2_format, held) -> i32 {
        if node.busy(&held) {
            return EBUSY.to_errno();
        }
        let pix = pix(f);
        match T::set_format(node, &held, pix.pixelformat, pix.width, pix.height) {
            Ok(new) => {
                *pix = new.to_v4l2();
                crate::dyndbg::ddbg!(
                    "video: format {:#x} {}x{} ({} bytes)\n",
                    new.pixelformat,
                    new.width,
                    new.height,
                    new.sizeimage
                );
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// (The core clears `mbus_code` on nodes without `IO_MC`.)
    fn enum_fmt(node, f: sys::v4l2_fmtdesc) -> i32 {
        match node.enum_format(f.index as usize, f.mbus_code) {
            Some(p) => {
                f.pixelformat = p;
                0
            }
            None => EINVAL.to_errno(),
        }
    }

    fn enum_framesizes(node, fs: sys::v4l2_frmsizeenum) -> i32 {
        if fs.index != 0 || !node.knows(fs.pixel_format) {
            return EINVAL.to_errno();
        }
        fs.type_ = sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_CONTINUOUS;
        // SAFETY: `stepwise` is the union member for this type.
        let s = unsafe { fs.__bindgen_anon_1.stepwise.as_mut() };
        [s.min_width, s.max_width, s.min_height, s.max_height] = T::SIZES;
        s.step_width = 1;
        s.step_height = 1;
        0
    }

    /// One camera input.  (Nodes with `IO_MC` never get here: the core
    /// answers for them.)
    fn enum_input(node, inp: sys::v4l2_input) -> i32 {
        if inp.index != 0 {
            return EINVAL.to_errno();
        }
        inp.type_ = sys::V4L2_INPUT_TYPE_CAMERA;
        set_str(&mut inp.name, c"Camera");
        0
    }

    fn g_input(node, i: u32) -> i32 {
        *i = 0;
        0
    }
}

/// # Safety
///
/// As `enum_input`.
unsafe extern "C" fn s_input(_file: *mut bindings::file, _priv: *mut c_void, i: u32) -> i32 {
    if i == 0 {
        0
    } else {
        EINVAL.to_errno()
    }
}

/// # Safety
///
/// Called by vb2 with our queue and arrays of `VB2_MAX_PLANES`.
unsafe extern "C" fn queue_setup<T: VideoOps>(
    q: *mut sys::vb2_queue,
    _nbuffers: *mut u32,
    nplanes: *mut u32,
    sizes: *mut u32,
    _alloc_devs: *mut *mut bindings::device,
) -> i32 {
    // SAFETY: as documented above.
    let (node, nplanes, size0) = unsafe { (of_queue::<T>(q), &mut *nplanes, &mut *sizes) };
    let need = node.format().sizeimage;
    if *nplanes != 0 {
        return if *size0 < need { EINVAL.to_errno() } else { 0 };
    }
    *nplanes = 1;
    *size0 = need;
    0
}

/// # Safety
///
/// Called by vb2 with a buffer of our queue.
unsafe extern "C" fn buf_prepare<T: VideoOps>(vb: *mut sys::vb2_buffer) -> i32 {
    // SAFETY: as documented above.
    let (node, vb) = unsafe { (of_queue::<T>((*vb).vb2_queue), &*vb) };
    let need = node.format().sizeimage;
    // `vb2_plane_size(vb, 0)`, a static inline.
    let have = if vb.num_planes > 0 {
        vb.planes[0].length
    } else {
        0
    };
    if have < need {
        crate::dyndbg::ddbg!("video: buffer too small ({} < {})\n", have, need);
        return EINVAL.to_errno();
    }
    0
}

/// # Safety
///
/// Called by vb2 with a buffer of our queue it hands to us.
unsafe extern "C" fn buf_queue<T: VideoOps>(vb: *mut sys::vb2_buffer) {
    // SAFETY: as documented above.
    unsafe { of_queue::<T>((*vb).vb2_queue).queue_buf(vb) };
}

/// # Safety
///
/// Called by vb2 with our queue, under the node's lock.
unsafe extern "C" fn start_streaming<T: VideoOps>(q: *mut sys::vb2_queue, _count: u32) -> i32 {
    // SAFETY: as documented above: this is the node's `start_streaming`,
    // and a failing one gives the buffers back as QUEUED.
    unsafe {
        let node = of_queue::<T>(q);
        match node.start_streaming() {
            Ok(()) => 0,
            Err(e) => {
                node.return_all(sys::vb2_buffer_state_VB2_BUF_STATE_QUEUED);
                e.to_errno()
            }
        }
    }
}

/// # Safety
///
/// As `start_streaming`.
unsafe extern "C" fn stop_streaming<T: VideoOps>(q: *mut sys::vb2_queue) {
    // SAFETY: as documented above: this is the node's `stop_streaming`,
    // which gives every buffer back as ERROR.
    unsafe {
        let node = of_queue::<T>(q);
        node.stop_streaming();
        node.return_all(sys::vb2_buffer_state_VB2_BUF_STATE_ERROR);
    }
}

/// The node's side of link validation: the upstream pad's active format
/// (a sub-device's source pad) must be what the node captures.
///
/// # Safety
///
/// Called by the media core with a valid link into our entity, under the
/// graph mutex.
unsafe extern "C" fn link_validate<T: VideoOps>(link: *mut sys::media_link) -> i32 {
    // SAFETY: as documented above; the source is a registered, finalized
    // sub-device's source pad (links into our nodes are made so), whose
    // state lock the media core does not hold here.
    let (node, src) = unsafe {
        let src_pad = &*(*link).__bindgen_anon_1.source;
        // The sink entity is embedded in our node's video device, whose
        // queue is the node's.
        let vdev = kernel::container_of!(
            (*(*link).__bindgen_anon_2.sink).entity,
            sys::video_device,
            entity
        );
        let node = of_queue::<T>((*vdev).queue);
        let sd = kernel::container_of!(src_pad.entity, sys::v4l2_subdev, entity);
        let pad = u32::from(src_pad.index);
        let src = subdev::with_active_state(sd, |st| State::from_raw(st).fmt(pad));
        (node, src.flatten())
    };
    if src.is_some_and(|s| node.accepts(&s)) {
        0
    } else {
        let fmt = node.format();
        crate::dyndbg::ddbg!(
            "video: link validation failed: source {:?}, capture {:#x} {}x{}\n",
            src,
            fmt.pixelformat,
            fmt.width,
            fmt.height
        );
        EPIPE.to_errno()
    }
}

/// # Safety
///
/// `q` is the queue of a registered `VideoNode<T>`.
unsafe fn of_queue<'a, T: VideoOps>(q: *mut sys::vb2_queue) -> &'a VideoNode<T> {
    // SAFETY: `drv_priv` was set to the owning node, which outlives the
    // queue.
    unsafe { &*(*q).drv_priv.cast::<VideoNode<T>>() }
}
