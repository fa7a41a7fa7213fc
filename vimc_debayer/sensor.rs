// SPDX-License-Identifier: GPL-2.0

//! The sensor entity: one source pad producing any Bayer code of the
//! pixel-map table, at any size vimc allows.

use super::formats::{self, Fmt, BAYER_MAPS};
use super::media::{sys, MediaDevice};
use super::streamer::Streams;
use super::subdev::{self, Desc, OpsTable, Subdev};
use kernel::prelude::*;

/// Source pad.
pub(crate) const SRC: u32 = 0;

#[pin_data]
pub(crate) struct Sensor {
    #[pin]
    pub(crate) sd: Subdev<1>,
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

impl Sensor {
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
