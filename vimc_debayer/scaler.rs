// SPDX-License-Identifier: GPL-2.0

//! The scaler entity: sink crop (selection) and source size, for RGB and
//! Bayer codes.  The resampling itself is `scaler_core`.

use super::formats::{self, Fmt, Rect};
use super::media::{sys, MediaDevice};
use super::streamer::Streams;
use super::subdev::{self, Desc, OpsTable, Subdev};
use kernel::prelude::*;

pub(crate) const SINK: u32 = 0;
pub(crate) const SRC: u32 = 1;

#[pin_data]
pub(crate) struct Scaler {
    #[pin]
    pub(crate) sd: Subdev<2>,
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

impl Scaler {
    pub(crate) fn new(streams: Streams) -> impl PinInit<Self> {
        pin_init!(Self {
            sd <- Subdev::new(),
            streams,
        })
    }

    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        let this = core::ptr::from_ref(self.get_ref()).cast_mut().cast();
        // SAFETY: `sd` is structurally pinned in `self`.
        let sd = unsafe { self.map_unchecked(|s| &s.sd) };
        sd.register(
            media,
            module,
            &DESC,
            kernel::static_lock_class!(),
            this,
            core::ptr::null_mut(),
        )
    }
}

static DESC: Desc<2> = Desc {
    name: c"Scaler",
    function: sys::MEDIA_ENT_F_PROC_VIDEO_SCALER,
    pad_flags: [sys::MEDIA_PAD_FL_SINK, sys::MEDIA_PAD_FL_SOURCE],
    ops: &OPS,
    internal_ops: &INTERNAL_OPS,
};

static PAD_OPS: OpsTable<sys::v4l2_subdev_pad_ops> = OpsTable(sys::v4l2_subdev_pad_ops {
    enum_mbus_code: Some(enum_mbus_code),
    enum_frame_size: Some(enum_frame_size),
    get_fmt: Some(sys::v4l2_subdev_get_fmt),
    set_fmt: Some(set_fmt),
    get_selection: Some(get_selection),
    set_selection: Some(set_selection),
    // SAFETY: all-NULL is "not implemented" for the remaining ops.
    ..unsafe { core::mem::zeroed() }
});

static OPS: OpsTable<sys::v4l2_subdev_ops> = OpsTable(sys::v4l2_subdev_ops {
    pad: &PAD_OPS.0,
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});

static INTERNAL_OPS: OpsTable<sys::v4l2_subdev_internal_ops> =
    OpsTable(sys::v4l2_subdev_internal_ops {
        init_state: Some(init_state),
        // SAFETY: as above.
        ..unsafe { core::mem::zeroed() }
    });

/// # Safety
///
/// `sd` is one of our registered scalers.
unsafe fn this<'a>(sd: *mut sys::v4l2_subdev) -> &'a Scaler {
    // SAFETY: `dev_priv` was set to the owning `Scaler` by `register`.
    unsafe { &*(*sd).dev_priv.cast::<Scaler>() }
}

/// # Safety
///
/// `state` is a valid, locked state of one of our scalers.
unsafe fn state_crop<'a>(state: *mut sys::v4l2_subdev_state) -> Option<&'a mut sys::v4l2_rect> {
    // SAFETY: per the contract; NULL if the pad had no crop.
    unsafe { sys::__v4l2_subdev_state_get_crop(state, SINK, 0).as_mut() }
}

fn rect_of(r: &sys::v4l2_rect) -> Rect {
    Rect {
        left: r.left.max(0) as u32,
        top: r.top.max(0) as u32,
        width: r.width,
        height: r.height,
    }
}

fn set_rect(r: Rect, out: &mut sys::v4l2_rect) {
    out.left = r.left as i32;
    out.top = r.top as i32;
    out.width = r.width;
    out.height = r.height;
}

fn full(f: Fmt) -> Rect {
    Rect {
        left: 0,
        top: 0,
        width: f.width,
        height: f.height,
    }
}

impl Scaler {
    /// Active sink format, source format and crop, read under the state
    /// lock (for the streamer).
    pub(crate) fn active_config(&self) -> Option<(Fmt, Fmt, Rect)> {
        // SAFETY: registered and finalized by `register`.
        unsafe {
            subdev::with_active_state(self.sd.raw(), |st| {
                let sink = subdev::state_fmt(st, SINK).map(|m| subdev::fmt_of(m))?;
                let src = subdev::state_fmt(st, SRC).map(|m| subdev::fmt_of(m))?;
                let crop = state_crop(st).map(|r| rect_of(r))?;
                Some((sink, src, crop))
            })
        }
        .flatten()
    }
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn init_state(
    _sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
) -> i32 {
    let f = Fmt {
        code: formats::DEFAULT_RGB,
        ..formats::DEFAULT_BAYER
    };
    // SAFETY: called by the core with a valid, locked state.
    unsafe {
        for pad in [SINK, SRC] {
            if let Some(m) = subdev::state_fmt(state, pad) {
                subdev::mbus_fmt(f, m);
            }
        }
        if let Some(r) = state_crop(state) {
            set_rect(full(f), r);
        }
    }
    0
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn enum_mbus_code(
    _sd: *mut sys::v4l2_subdev,
    _state: *mut sys::v4l2_subdev_state,
    code: *mut sys::v4l2_subdev_mbus_code_enum,
) -> i32 {
    // SAFETY: the core passes a valid enumeration request.
    unsafe { subdev::answer_code(code, |_, i| formats::scaler_code(i)) }
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn enum_frame_size(
    _sd: *mut sys::v4l2_subdev,
    _state: *mut sys::v4l2_subdev_state,
    fse: *mut sys::v4l2_subdev_frame_size_enum,
) -> i32 {
    // SAFETY: the core passes a valid enumeration request.
    unsafe { subdev::answer_size(fse, |_, c| formats::bytes_per_pixel(c).is_some()) }
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn set_fmt(
    sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
    fmt: *mut sys::v4l2_subdev_format,
) -> i32 {
    // SAFETY: the core passes a valid request and locked state; `sd` is ours.
    let (fmt, this) = unsafe { (&mut *fmt, this(sd)) };
    if subdev::is_active(fmt.which) && this.streams.any() {
        return EBUSY.to_errno();
    }
    // SAFETY: as above; distinct pads and the crop are distinct entries.
    let (Some(sink), Some(src), Some(crop)) = (unsafe {
        (
            subdev::state_fmt(state, SINK),
            subdev::state_fmt(state, SRC),
            state_crop(state),
        )
    }) else {
        return EINVAL.to_errno();
    };
    let req = subdev::fmt_of(&fmt.format);
    let new = if fmt.pad == SINK {
        // A new sink format resets the crop and the source to it, as vimc.
        let new = formats::adjust_scaler_sink(req);
        subdev::mbus_fmt(new, sink);
        set_rect(full(new), crop);
        subdev::mbus_fmt(new, src);
        new
    } else {
        let new = formats::adjust_scaler_source(req, subdev::fmt_of(sink));
        subdev::mbus_fmt(new, src);
        new
    };
    subdev::mbus_fmt(new, &mut fmt.format);
    0
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn get_selection(
    _sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
    sel: *mut sys::v4l2_subdev_selection,
) -> i32 {
    // SAFETY: the core passes a valid request and locked state.
    let sel = unsafe { &mut *sel };
    if sel.pad != SINK {
        return EINVAL.to_errno();
    }
    // SAFETY: as above.
    let (Some(sink), Some(crop)) = (unsafe { subdev::state_fmt(state, SINK) }, unsafe {
        state_crop(state)
    }) else {
        return EINVAL.to_errno();
    };
    match sel.target {
        sys::V4L2_SEL_TGT_CROP => set_rect(rect_of(crop), &mut sel.r),
        sys::V4L2_SEL_TGT_CROP_BOUNDS => set_rect(full(subdev::fmt_of(sink)), &mut sel.r),
        _ => return EINVAL.to_errno(),
    }
    0
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn set_selection(
    sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
    sel: *mut sys::v4l2_subdev_selection,
) -> i32 {
    // SAFETY: the core passes a valid request and locked state; `sd` is ours.
    let (sel, this) = unsafe { (&mut *sel, this(sd)) };
    if sel.pad != SINK || sel.target != sys::V4L2_SEL_TGT_CROP {
        return EINVAL.to_errno();
    }
    if subdev::is_active(sel.which) && this.streams.any() {
        return EBUSY.to_errno();
    }
    // SAFETY: as above.
    let (Some(sink), Some(crop)) = (unsafe { subdev::state_fmt(state, SINK) }, unsafe {
        state_crop(state)
    }) else {
        return EINVAL.to_errno();
    };
    let s = subdev::fmt_of(sink);
    let bayer = formats::bayer_map(s.code).is_some();
    let r = formats::clamp_crop(rect_of(&sel.r), s.width, s.height, bayer);
    set_rect(r, crop);
    set_rect(r, &mut sel.r);
    0
}
