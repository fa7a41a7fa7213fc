// SPDX-License-Identifier: GPL-2.0

//! The debayer entity: a Bayer sink pad, an RGB source pad and the
//! "Debayer Mean Window Size" control.  The conversion itself is
//! `debayer_core`, driven by the pixel-map table row of the sink code.

use super::formats::{self, BAYER_MAPS, RGB_MAPS};
use super::media::{sys, MediaDevice};
use super::streamer::Streams;
use super::subdev::{self, Desc, OpsTable, Subdev};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{error::to_result, prelude::*, types::Opaque};

pub(crate) const SINK: u32 = 0;
pub(crate) const SRC: u32 = 1;

/// vimc's window control id.
const CID_MEAN_WIN_SIZE: u32 = subdev::CID_VIMC_BASE + 1;

#[pin_data(PinnedDrop)]
pub(crate) struct Debayer {
    #[pin]
    pub(crate) sd: Subdev<2>,
    #[pin]
    hdl: Opaque<sys::v4l2_ctrl_handler>,
    /// Current window size (the control's value).
    pub(crate) window: AtomicU32,
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

// SAFETY: the control handler is used under its own lock by the core.
unsafe impl Send for Debayer {}
// SAFETY: as above.
unsafe impl Sync for Debayer {}

impl Debayer {
    pub(crate) fn new(streams: Streams) -> impl PinInit<Self> {
        pin_init!(Self {
            sd <- Subdev::new(),
            hdl <- Opaque::ffi_init(|p: *mut sys::v4l2_ctrl_handler| {
                // SAFETY: valid for writes; zero is "not initialised", which
                // `v4l2_ctrl_handler_free` accepts.
                unsafe { p.write_bytes(0, 1) }
            }),
            window: AtomicU32::new(formats::WINDOW_DEFAULT),
            streams,
        })
    }

    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        let this = core::ptr::from_ref(self.get_ref()).cast_mut();
        let hdl = self.hdl.get();
        // SAFETY: `hdl` is zeroed and pinned in `self`; the lock class key is
        // static; the configs are `'static`; `this` outlives the handler.
        unsafe {
            to_result(sys::v4l2_ctrl_handler_init_class(
                hdl,
                2,
                kernel::static_lock_class!().as_ptr(),
                c"vimc_debayer window".as_char_ptr(),
            ))?;
            sys::v4l2_ctrl_new_custom(hdl, &subdev::CTRL_CLASS.0, core::ptr::null_mut());
            sys::v4l2_ctrl_new_custom(hdl, &CTRL_WINDOW.0, this.cast());
            to_result((*hdl).error)?;
        }
        // SAFETY: `sd` is structurally pinned in `self`.
        let sd = unsafe { self.map_unchecked(|s| &s.sd) };
        sd.register(
            media,
            module,
            &DESC,
            kernel::static_lock_class!(),
            this.cast(),
            hdl,
        )
    }
}

#[pinned_drop]
impl PinnedDrop for Debayer {
    fn drop(self: Pin<&mut Self>) {
        // The handler goes after the sub-device's node, through which
        // control ioctls reach it (as vimc's release follows unregister).
        self.sd.unregister();
        // SAFETY: freeing a zeroed or initialised handler is valid; no one
        // reaches it through the unregistered sub-device.
        unsafe { sys::v4l2_ctrl_handler_free(self.hdl.get()) };
    }
}

static DESC: Desc<2> = Desc {
    name: c"Debayer A",
    function: sys::MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV,
    pad_flags: [sys::MEDIA_PAD_FL_SINK, sys::MEDIA_PAD_FL_SOURCE],
    ops: &OPS,
    internal_ops: &INTERNAL_OPS,
};

static PAD_OPS: OpsTable<sys::v4l2_subdev_pad_ops> = OpsTable(sys::v4l2_subdev_pad_ops {
    enum_mbus_code: Some(enum_mbus_code),
    enum_frame_size: Some(enum_frame_size),
    get_fmt: Some(sys::v4l2_subdev_get_fmt),
    set_fmt: Some(set_fmt),
    // SAFETY: all-NULL is "not implemented" for the remaining ops.
    ..unsafe { core::mem::zeroed() }
});

static OPS: OpsTable<sys::v4l2_subdev_ops> = OpsTable(sys::v4l2_subdev_ops {
    core: &subdev::CTRL_CORE_OPS.0,
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

static CTRL_OPS: OpsTable<sys::v4l2_ctrl_ops> = OpsTable(sys::v4l2_ctrl_ops {
    s_ctrl: Some(s_ctrl),
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});

// The control framework clamps to min..max and rounds to the step, so an
// even request becomes the next odd size; the window can never be even.
#[allow(clippy::disallowed_methods)]
static CTRL_WINDOW: OpsTable<sys::v4l2_ctrl_config> = OpsTable(sys::v4l2_ctrl_config {
    ops: &CTRL_OPS.0,
    id: CID_MEAN_WIN_SIZE,
    name: c"Debayer Mean Window Size".as_ptr().cast(),
    type_: sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER,
    min: formats::WINDOW_MIN as i64,
    max: formats::WINDOW_MAX as i64,
    step: 2,
    def: formats::WINDOW_DEFAULT as i64,
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});

/// # Safety
///
/// `sd` is one of our registered debayers.
unsafe fn this<'a>(sd: *mut sys::v4l2_subdev) -> &'a Debayer {
    // SAFETY: `dev_priv` was set to the owning `Debayer` by `register`.
    unsafe { &*(*sd).dev_priv.cast::<Debayer>() }
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn s_ctrl(ctrl: *mut sys::v4l2_ctrl) -> i32 {
    // SAFETY: the framework passes one of our controls; `priv_` of the
    // window control is the owning `Debayer`.
    let (id, val, owner) = unsafe { ((*ctrl).id, (*ctrl).val, (*ctrl).priv_.cast::<Debayer>()) };
    if id != CID_MEAN_WIN_SIZE || owner.is_null() {
        return EINVAL.to_errno();
    }
    let val = val as u32;
    if !formats::window_valid(val) {
        return ERANGE.to_errno();
    }
    // SAFETY: `owner` outlives its control handler.
    unsafe { (*owner).window.store(val, Ordering::Relaxed) };
    crate::dyndbg::ddbg!("debayer: mean window size {}\n", val);
    0
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn init_state(
    _sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
) -> i32 {
    let sink = formats::DEFAULT_BAYER;
    let src = formats::Fmt {
        code: formats::DEFAULT_RGB,
        ..sink
    };
    // SAFETY: called by the core with a valid, locked state.
    unsafe {
        if let Some(f) = subdev::state_fmt(state, SINK) {
            subdev::mbus_fmt(sink, f);
        }
        if let Some(f) = subdev::state_fmt(state, SRC) {
            subdev::mbus_fmt(src, f);
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
    unsafe {
        subdev::answer_code(code, |pad, i| {
            if pad == SINK {
                BAYER_MAPS.get(i).map(|m| m.code)
            } else {
                RGB_MAPS.get(i).map(|m| m.code)
            }
        })
    }
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
    unsafe {
        subdev::answer_size(fse, |pad, c| {
            if pad == SINK {
                formats::bayer_map(c).is_some()
            } else {
                formats::rgb_map(c).is_some()
            }
        })
    }
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
    // SAFETY: as above; the two pads are distinct entries.
    let (Some(sink), Some(src)) = (unsafe { subdev::state_fmt(state, SINK) }, unsafe {
        subdev::state_fmt(state, SRC)
    }) else {
        return EINVAL.to_errno();
    };
    let req = subdev::fmt_of(&fmt.format);
    if fmt.pad == SINK {
        // The sink takes a table code and a clamped size; the source
        // follows its size and keeps its RGB code.
        let new = formats::adjust_bayer(req);
        crate::dyndbg::ddbg!(
            "debayer: sink {}x{} {:#x} -> {}x{} {:#x}\n",
            req.width,
            req.height,
            req.code,
            new.width,
            new.height,
            new.code
        );
        subdev::mbus_fmt(new, sink);
        let src_new = formats::adjust_debayer_source(src.code, src.code, new);
        subdev::mbus_fmt(src_new, src);
        subdev::mbus_fmt(new, &mut fmt.format);
    } else {
        let new = formats::adjust_debayer_source(req.code, src.code, subdev::fmt_of(sink));
        crate::dyndbg::ddbg!("debayer: source code {:#x} -> {:#x}\n", req.code, new.code);
        subdev::mbus_fmt(new, src);
        subdev::mbus_fmt(new, &mut fmt.format);
    }
    0
}
