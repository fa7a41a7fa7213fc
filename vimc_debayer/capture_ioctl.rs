// SPDX-License-Identifier: GPL-2.0

//! The capture nodes' ioctls: capabilities, formats, frame sizes and the
//! one input.  In video-centric mode a format set on a node configures the
//! pipeline behind it (`video_centric.rs`).

use super::capture::{of_file, PixFmt};
use super::formats;
use super::media::sys;
use super::pixfmt;
use super::streamer::Path;
use super::subdev::OpsTable;
use super::video_centric;
use core::ffi::c_void;
use kernel::{bindings, prelude::*};

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
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_format,
) -> i32 {
    // SAFETY: the core passes our file and a valid format of our buffer
    // type.
    let (this, pix) = unsafe { (of_file(file), (*f).fmt.pix.as_mut()) };
    let new = if this.centric {
        PixFmt::adjust_centric(this.path, pix.pixelformat, pix.width, pix.height)
    } else {
        PixFmt::adjust(pix.pixelformat, pix.width, pix.height)
    };
    *pix = new.to_v4l2();
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
    let new = if this.centric {
        match video_centric::set_format(this, pix.pixelformat, pix.width, pix.height) {
            Ok(new) => new,
            Err(e) => return e.to_errno(),
        }
    } else {
        let new = PixFmt::adjust(pix.pixelformat, pix.width, pix.height);
        *this.fmt.lock() = new;
        new
    };
    *pix = new.to_v4l2();
    crate::dyndbg::ddbg!(
        "capture: format {:#x} {}x{} ({} bytes)\n",
        new.pixelformat,
        new.width,
        new.height,
        new.sizeimage
    );
    0
}

/// # Safety
///
/// Called by the kernel (V4L2, vb2, media or kthread core) with the
/// pointers it documents, valid for the call.
unsafe extern "C" fn enum_fmt(
    file: *mut bindings::file,
    _priv: *mut c_void,
    f: *mut sys::v4l2_fmtdesc,
) -> i32 {
    // SAFETY: the core passes our file and a valid descriptor.
    let (this, f) = unsafe { (of_file(file), &mut *f) };
    let index = f.index as usize;
    let fourcc = if this.centric {
        // (The core clears `mbus_code` on nodes without `IO_MC`.)
        pixfmt::centric_fourcc(this.path == Path::Rgb, index)
    } else if f.mbus_code != 0 {
        let code = f.mbus_code;
        (0..)
            .map_while(pixfmt::capture_fourcc)
            .filter(|&p| pixfmt::code_fits(code, p))
            .nth(index)
    } else {
        pixfmt::capture_fourcc(index)
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
    if fs.index != 0 || pixfmt::fourcc_bpp(fs.pixel_format).is_none() {
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
/// Called by the V4L2 core with the pointers it documents, valid for the
/// call.  (Nodes with `IO_MC` never get here: the core answers for them.)
unsafe extern "C" fn enum_input(
    _file: *mut bindings::file,
    _priv: *mut c_void,
    inp: *mut sys::v4l2_input,
) -> i32 {
    // SAFETY: the core passes a valid, zeroed request but for the index.
    let inp = unsafe { &mut *inp };
    if inp.index != 0 {
        return EINVAL.to_errno();
    }
    inp.type_ = sys::V4L2_INPUT_TYPE_CAMERA;
    for (d, &c) in inp.name.iter_mut().zip(b"Camera\0".iter()) {
        *d = c;
    }
    0
}

/// # Safety
///
/// As `enum_input`.
unsafe extern "C" fn g_input(_file: *mut bindings::file, _priv: *mut c_void, i: *mut u32) -> i32 {
    // SAFETY: the core passes a valid output.
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

pub(crate) static IOCTL_OPS: OpsTable<sys::v4l2_ioctl_ops> = OpsTable(sys::v4l2_ioctl_ops {
    vidioc_querycap: Some(querycap),
    vidioc_g_fmt_vid_cap: Some(g_fmt),
    vidioc_s_fmt_vid_cap: Some(s_fmt),
    vidioc_try_fmt_vid_cap: Some(try_fmt),
    vidioc_enum_fmt_vid_cap: Some(enum_fmt),
    vidioc_enum_framesizes: Some(enum_framesizes),
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
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});
