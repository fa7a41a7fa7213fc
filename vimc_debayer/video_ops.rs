// SPDX-License-Identifier: GPL-2.0

//! A capture node's behaviour as a trait: a node implements `VideoOps` in
//! safe Rust, and `Tables` generates the C tables for it (V4L2 ioctls, vb2
//! queue operations, the media entity's link validation) with trampolines
//! that find the node and call it.  vb2 itself answers the buffer ioctls.

use super::formats::Fmt;
use super::media::{set_str, sys};
use super::pad_ops::State;
use super::subdev::{self, Controls, OpsTable};
use super::video::{Locked, PixFmt, VideoNode};
use core::ffi::c_void;
use core::marker::PhantomData;
use kernel::{bindings, prelude::*};

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

const fn zeroed<Z>() -> Z {
    // SAFETY: only used for the C ops tables, for which all-NULL function
    // pointers mean "not implemented".
    unsafe { core::mem::zeroed() }
}

impl<T: VideoOps> Tables<T> {
    const IOCTL: OpsTable<sys::v4l2_ioctl_ops> = OpsTable(sys::v4l2_ioctl_ops {
        vidioc_querycap: Some(querycap::<T>),
        vidioc_g_fmt_vid_cap: Some(g_fmt::<T>),
        vidioc_s_fmt_vid_cap: Some(s_fmt::<T>),
        vidioc_try_fmt_vid_cap: Some(try_fmt::<T>),
        vidioc_enum_fmt_vid_cap: Some(enum_fmt::<T>),
        vidioc_enum_framesizes: Some(enum_framesizes::<T>),
        vidioc_enum_input: Some(enum_input),
        vidioc_g_input: Some(g_input),
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
        ..zeroed()
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
        ..zeroed()
    });
    const ENTITY: OpsTable<sys::media_entity_operations> = OpsTable(sys::media_entity_operations {
        link_validate: Some(link_validate::<T>),
        ..zeroed()
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

/// # Safety
///
/// Called by the V4L2 core with the pointers it documents, valid for the
/// call.
unsafe extern "C" fn querycap<T: VideoOps>(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    cap: *mut sys::v4l2_capability,
) -> i32 {
    // SAFETY: the core passes a valid, zeroed capability.
    let cap = unsafe { &mut *cap };
    set_str(&mut cap.driver, T::DRIVER);
    set_str(&mut cap.card, T::DRIVER);
    set_str(&mut cap.bus_info, T::BUS_INFO);
    0
}

/// # Safety
///
/// Called by the V4L2 core with our file and a valid format, under the
/// node's lock.
unsafe extern "C" fn g_fmt<T: VideoOps>(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: as documented above; `pix` is the member for our type.
    unsafe { *(*f).fmt.pix.as_mut() = of_file::<T>(file).format().to_v4l2() };
    0
}

/// # Safety
///
/// As `g_fmt`.
unsafe extern "C" fn try_fmt<T: VideoOps>(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: as `g_fmt`.
    let (node, pix) = unsafe { (of_file::<T>(file), (*f).fmt.pix.as_mut()) };
    *pix = node
        .try_format(pix.pixelformat, pix.width, pix.height)
        .to_v4l2();
    0
}

/// # Safety
///
/// As `g_fmt`.
unsafe extern "C" fn s_fmt<T: VideoOps>(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: as `g_fmt`; the core holds the node's lock for the call.
    let (node, pix, held) = unsafe {
        let node = of_file::<T>(file);
        (node, (*f).fmt.pix.as_mut(), node.locked())
    };
    if node.busy(&held) {
        return EBUSY.to_errno();
    }
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

/// # Safety
///
/// Called by the V4L2 core with our file and a valid descriptor.
unsafe extern "C" fn enum_fmt<T: VideoOps>(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_fmtdesc,
) -> i32 {
    // SAFETY: as documented above.
    let (node, f) = unsafe { (of_file::<T>(file), &mut *f) };
    // (The core clears `mbus_code` on nodes without `IO_MC`.)
    match node.enum_format(f.index as usize, f.mbus_code) {
        Some(p) => {
            f.pixelformat = p;
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// # Safety
///
/// Called by the V4L2 core with our file and a valid request.
unsafe extern "C" fn enum_framesizes<T: VideoOps>(
    file: *mut bindings::file,
    _priv: *mut c_void,
    fs: *mut sys::v4l2_frmsizeenum,
) -> i32 {
    // SAFETY: as documented above.
    let (node, fs) = unsafe { (of_file::<T>(file), &mut *fs) };
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

/// # Safety
///
/// Called by the V4L2 core with a valid request, zeroed but for the index.
/// (Nodes with `IO_MC` never get here: the core answers for them.)
unsafe extern "C" fn enum_input(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    inp: *mut sys::v4l2_input,
) -> i32 {
    // SAFETY: as documented above.
    let inp = unsafe { &mut *inp };
    if inp.index != 0 {
        return EINVAL.to_errno();
    }
    inp.type_ = sys::V4L2_INPUT_TYPE_CAMERA;
    set_str(&mut inp.name, c"Camera");
    0
}

/// # Safety
///
/// As `enum_input`, with a valid output.
unsafe extern "C" fn g_input(_file: *mut bindings::file, _priv: *mut c_void, i: *mut u32) -> i32 {
    // SAFETY: as documented above.
    unsafe { *i = 0 };
    0
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
        let node = of_entity::<T>((*(*link).__bindgen_anon_2.sink).entity);
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

/// # Safety
///
/// `file` is an open file of a registered `VideoNode<T>`.
unsafe fn of_file<'a, T: VideoOps>(file: *mut bindings::file) -> &'a VideoNode<T> {
    // SAFETY: the node's queue is its own (set in `register`).
    unsafe { of_queue((*sys::video_devdata(file)).queue) }
}

/// # Safety
///
/// `ent` is the entity of a registered `VideoNode<T>`.
unsafe fn of_entity<'a, T: VideoOps>(ent: *mut sys::media_entity) -> &'a VideoNode<T> {
    // SAFETY: the entity is embedded in the node's video device, whose
    // queue is the node's.
    unsafe { of_queue((*kernel::container_of!(ent, sys::video_device, entity)).queue) }
}
