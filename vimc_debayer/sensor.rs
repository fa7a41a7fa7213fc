// SPDX-License-Identifier: GPL-2.0

//! The sensor entity: one source pad producing any Bayer code of the
//! pixel-map table, at any size vimc allows, and vimc's sensor controls:
//! test pattern, flips, brightness, contrast, hue, saturation (drawn by
//! `tpg.rs`).

use super::formats::{self, Fmt, BAYER_MAPS};
use super::media::{sys, MediaDevice};
use super::streamer::Streams;
use super::subdev::{self, Desc, OpsTable, Subdev};
use super::tpg::Look;
use kernel::{error::to_result, new_spinlock, prelude::*, sync::SpinLock, types::Opaque};

/// Source pad.
pub(crate) const SRC: u32 = 0;

/// vimc's test pattern control id.
const CID_TEST_PATTERN: u32 = subdev::CID_VIMC_BASE;

/// The standard controls: id, min, max, default (step 1), as vimc's.
const STD_CTRLS: [(u32, i64, i64, i64); 6] = [
    (sys::V4L2_CID_VFLIP, 0, 1, 0),
    (sys::V4L2_CID_HFLIP, 0, 1, 0),
    (sys::V4L2_CID_BRIGHTNESS, 0, 255, 128),
    (sys::V4L2_CID_CONTRAST, 0, 255, 128),
    (sys::V4L2_CID_HUE, -128, 127, 0),
    (sys::V4L2_CID_SATURATION, 0, 255, 128),
];

#[pin_data(PinnedDrop)]
pub(crate) struct Sensor {
    #[pin]
    pub(crate) sd: Subdev<1>,
    #[pin]
    hdl: Opaque<sys::v4l2_ctrl_handler>,
    /// What the controls ask for, and how many times they changed (so a
    /// stream redraws its frame when they do).
    #[pin]
    look: SpinLock<(Look, u32)>,
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

// SAFETY: the control handler is used under its own lock by the core.
unsafe impl Send for Sensor {}
// SAFETY: as above.
unsafe impl Sync for Sensor {}

impl Sensor {
    pub(crate) fn new(streams: Streams) -> impl PinInit<Self> {
        pin_init!(Self {
            sd <- Subdev::new(),
            hdl <- Opaque::ffi_init(|p: *mut sys::v4l2_ctrl_handler| {
                // SAFETY: valid for writes; zero is "not initialised", which
                // `v4l2_ctrl_handler_free` accepts.
                unsafe { p.write_bytes(0, 1) }
            }),
            look <- new_spinlock!((Look::DEFAULT, 0), "vimc_debayer sensor look"),
            streams,
        })
    }

    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        let this: *mut core::ffi::c_void = core::ptr::from_ref(self.get_ref()).cast_mut().cast();
        let hdl = self.hdl.get();
        // SAFETY: `hdl` is zeroed and pinned in `self`; the lock class key
        // and the configs are static; `this` outlives the handler, which
        // `drop` frees after unregistering the sub-device.
        unsafe {
            to_result(sys::v4l2_ctrl_handler_init_class(
                hdl,
                8,
                kernel::static_lock_class!().as_ptr(),
                c"vimc_debayer sensor".as_char_ptr(),
            ))?;
            sys::v4l2_ctrl_new_custom(hdl, &subdev::CTRL_CLASS.0, core::ptr::null_mut());
            sys::v4l2_ctrl_new_custom(hdl, &CTRL_PATTERN.0, this);
            for (id, min, max, def) in STD_CTRLS {
                let c = sys::v4l2_ctrl_new_std(hdl, &CTRL_OPS.0, id, min, max, 1, def);
                if !c.is_null() {
                    (*c).priv_ = this;
                }
            }
            to_result((*hdl).error)?;
        }
        // SAFETY: `sd` is structurally pinned in `self`.
        let sd = unsafe { self.map_unchecked(|s| &s.sd) };
        sd.register(
            media,
            module,
            &DESC,
            kernel::static_lock_class!(),
            this,
            hdl,
        )
    }

    /// What the controls ask for now, and their change count.
    pub(crate) fn look(&self) -> (Look, u32) {
        *self.look.lock()
    }

    /// Sets one control's value in `look`; `false` if `id` is not ours.
    fn set(&self, id: u32, val: i32) -> bool {
        let mut g = self.look.lock();
        let l = &mut g.0;
        let byte = u8::try_from(val).unwrap_or(0);
        match id {
            CID_TEST_PATTERN => l.pattern = u32::try_from(val).unwrap_or(0),
            sys::V4L2_CID_HFLIP => l.hflip = val != 0,
            sys::V4L2_CID_VFLIP => l.vflip = val != 0,
            sys::V4L2_CID_BRIGHTNESS => l.brightness = byte,
            sys::V4L2_CID_CONTRAST => l.contrast = byte,
            sys::V4L2_CID_SATURATION => l.saturation = byte,
            sys::V4L2_CID_HUE => l.hue = i16::try_from(val).unwrap_or(0),
            _ => return false,
        }
        g.1 = g.1.wrapping_add(1);
        true
    }
}

#[pinned_drop]
impl PinnedDrop for Sensor {
    fn drop(self: Pin<&mut Self>) {
        // The handler goes after the sub-device's node, through which
        // control ioctls reach it.
        self.sd.unregister();
        // SAFETY: freeing a zeroed or initialised handler is valid; no one
        // reaches it through the unregistered sub-device.
        unsafe { sys::v4l2_ctrl_handler_free(self.hdl.get()) };
    }
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn s_ctrl(ctrl: *mut sys::v4l2_ctrl) -> i32 {
    // SAFETY: the framework passes one of our controls; `priv_` of each
    // is the owning `Sensor`, which outlives its control handler.
    let (id, val, owner) = unsafe { ((*ctrl).id, (*ctrl).val, (*ctrl).priv_.cast::<Sensor>()) };
    // SAFETY: as above.
    let Some(this) = (unsafe { owner.as_ref() }) else {
        return EINVAL.to_errno();
    };
    if !this.set(id, val) {
        return EINVAL.to_errno();
    }
    crate::dyndbg::ddbg!("sensor: control {:#x} = {}\n", id, val);
    0
}

static CTRL_OPS: OpsTable<sys::v4l2_ctrl_ops> = OpsTable(sys::v4l2_ctrl_ops {
    s_ctrl: Some(s_ctrl),
    // SAFETY: all-NULL is "not implemented" for the remaining ops.
    ..unsafe { core::mem::zeroed() }
});

// The menu is tpg's own list of pattern names, as vimc's.
#[allow(clippy::disallowed_methods)]
static CTRL_PATTERN: OpsTable<sys::v4l2_ctrl_config> = OpsTable(sys::v4l2_ctrl_config {
    ops: &CTRL_OPS.0,
    id: CID_TEST_PATTERN,
    name: c"Test Pattern".as_ptr().cast(),
    type_: sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_MENU,
    max: sys::tpg_pattern_TPG_PAT_NOISE as i64,
    qmenu: (&raw const sys::tpg_pattern_strings).cast(),
    // SAFETY: as above.
    ..unsafe { core::mem::zeroed() }
});

static DESC: Desc<1> = Desc {
    name: c"Sensor A",
    function: sys::MEDIA_ENT_F_CAM_SENSOR,
    pad_flags: [sys::MEDIA_PAD_FL_SOURCE],
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

/// # Safety
///
/// `sd` is one of our registered sensors.
unsafe fn this<'a>(sd: *mut sys::v4l2_subdev) -> &'a Sensor {
    // SAFETY: `dev_priv` was set to the owning `Sensor` by `register`,
    // which outlives the registration.
    unsafe { &*(*sd).dev_priv.cast::<Sensor>() }
}

/// # Safety
///
/// Called by the V4L2 core, with pointers valid for the call.
unsafe extern "C" fn init_state(
    _sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
) -> i32 {
    // SAFETY: called by the core with a valid, locked state.
    if let Some(f) = unsafe { subdev::state_fmt(state, SRC) } {
        subdev::mbus_fmt(formats::DEFAULT_BAYER, f);
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
    unsafe { subdev::answer_code(code, |_, i| BAYER_MAPS.get(i).map(|m| m.code)) }
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
    unsafe { subdev::answer_size(fse, |_, c| formats::bayer_map(c).is_some()) }
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
    let new: Fmt = formats::adjust_bayer(subdev::fmt_of(&fmt.format));
    // SAFETY: as above.
    let Some(cur) = (unsafe { subdev::state_fmt(state, fmt.pad) }) else {
        return EINVAL.to_errno();
    };
    subdev::mbus_fmt(new, cur);
    subdev::mbus_fmt(new, &mut fmt.format);
    0
}
