// SPDX-License-Identifier: GPL-2.0

//! A V4L2 sub-device with its media entity and pads: the one place that
//! registers, unregisters and reaches into `struct v4l2_subdev`.  Each
//! entity file supplies its ops table and pad formats.
//!
//! Formats live in the sub-device state the V4L2 core keeps (active and
//! try alike, locked by the core around every pad op), so the entities keep
//! no format copies of their own.

use super::formats::Fmt;
use super::media::{sys, MediaDevice};
use kernel::{error::to_result, prelude::*, sync::LockClassKey, types::Opaque};

/// An ops table in a `static`: the C structures hold raw pointers, which
/// are not `Sync`, but the tables are never written after compile time.
#[repr(transparent)]
pub(crate) struct OpsTable<T>(pub(crate) T);
// SAFETY: read-only after initialisation; shared only as `*const`.
unsafe impl<T> Sync for OpsTable<T> {}

/// What an entity file gives `Subdev::register`.
pub(crate) struct Desc<const N: usize> {
    pub(crate) name: &'static CStr,
    pub(crate) function: u32,
    pub(crate) pad_flags: [u32; N],
    pub(crate) ops: &'static OpsTable<sys::v4l2_subdev_ops>,
    pub(crate) internal_ops: &'static OpsTable<sys::v4l2_subdev_internal_ops>,
}

/// `struct v4l2_subdev` plus its pads, pinned.
#[pin_data(PinnedDrop)]
pub(crate) struct Subdev<const N: usize> {
    #[pin]
    sd: Opaque<sys::v4l2_subdev>,
    #[pin]
    pads: Opaque<[sys::media_pad; N]>,
}

// SAFETY: the V4L2 core serialises access to the sub-device (state lock,
// graph mutex); the Rust side only passes pointers.
unsafe impl<const N: usize> Send for Subdev<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> Sync for Subdev<N> {}

impl<const N: usize> Subdev<N> {
    /// Zeroed, not yet registered.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            sd <- Opaque::ffi_init(|p: *mut sys::v4l2_subdev| {
                // SAFETY: `p` is valid for writes; all-zero is the state
                // `v4l2_subdev_init` expects.
                unsafe { p.write_bytes(0, 1) }
            }),
            pads <- Opaque::ffi_init(|p: *mut [sys::media_pad; N]| {
                // SAFETY: as above, for `media_entity_pads_init`.
                unsafe { p.write_bytes(0, 1) }
            }),
        })
    }

    /// The raw sub-device.
    pub(crate) fn raw(&self) -> *mut sys::v4l2_subdev {
        self.sd.get()
    }

    /// Its media entity, for links.
    pub(crate) fn entity(&self) -> *mut sys::media_entity {
        // SAFETY: `raw()` is valid for the lifetime of `self`.
        unsafe { core::ptr::addr_of_mut!((*self.raw()).entity) }
    }

    /// Initialises and registers the sub-device with `media`'s V4L2 device.
    /// `key` is the entity's own lock class for its state lock (lockdep
    /// sees source and sink states locked together in link validation);
    /// `priv_` is what `dev_priv` points to (the entity owning `self`);
    /// `hdl` its control handler, if any.
    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
        desc: &Desc<N>,
        key: Pin<&'static LockClassKey>,
        priv_: *mut core::ffi::c_void,
        hdl: *mut sys::v4l2_ctrl_handler,
    ) -> Result {
        let sd = self.raw();
        let pads = self.pads.get().cast::<sys::media_pad>();
        // SAFETY: `sd` and `pads` are zeroed, pinned and ours; the ops
        // tables are `'static`.  On failure each step is undone below.
        unsafe {
            sys::v4l2_subdev_init(sd, &desc.ops.0);
            (*sd).internal_ops = &desc.internal_ops.0;
            (*sd).entity.function = desc.function;
            (*sd).entity.ops = &ENTITY_OPS.0;
            (*sd).dev_priv = priv_;
            (*sd).ctrl_handler = hdl;
            (*sd).flags |= sys::V4L2_SUBDEV_FL_HAS_DEVNODE;
            if !hdl.is_null() {
                (*sd).flags |= sys::V4L2_SUBDEV_FL_HAS_EVENTS;
            }
            let name = desc.name.to_bytes_with_nul();
            for (d, &c) in (*sd).name.iter_mut().zip(name.iter()) {
                *d = c as kernel::ffi::c_char;
            }
            for (i, &f) in desc.pad_flags.iter().enumerate() {
                (*pads.add(i)).flags = f as kernel::ffi::c_ulong;
            }
        }
        // SAFETY: `sd` is initialised; `pads` has `N` entries.
        to_result(unsafe { sys::media_entity_pads_init(&raw mut (*sd).entity, N as u16, pads) })?;
        // SAFETY: `sd` is initialised and its pads set; the lock class key
        // is a static as lockdep requires.
        to_result(unsafe {
            sys::__v4l2_subdev_init_finalize(sd, desc.name.as_char_ptr(), key.as_ptr())
        })?;
        // Registered with no owner module: the core would otherwise take a
        // module reference that only unregistering drops, and unregistering
        // runs from our module exit, so rmmod could never succeed.  (The
        // core skips that reference when the owner is the V4L2 device's
        // driver's owner; our device's driver is the built-in faux driver.)
        // SAFETY: `media` is registered and outlives its sub-devices
        // (the pipeline drops them first).
        let ret =
            unsafe { sys::__v4l2_device_register_subdev(media.v4l2(), sd, core::ptr::null_mut()) };
        if let Err(e) = to_result(ret) {
            // SAFETY: finalized above, not registered.
            unsafe { sys::v4l2_subdev_cleanup(sd) };
            return Err(e);
        }
        // Now the owner, for the device node registered later: an open
        // `/dev/v4l-subdevN` pins the module through its cdev, so rmmod
        // cannot free the entity under an open file.  `owner_v4l2_dev`
        // tells the release path not to drop a reference never taken.
        // SAFETY: registered above; no node exists yet, so nothing reads
        // these fields concurrently.
        unsafe {
            (*sd).owner = module.as_ptr().cast();
            (*sd).owner_v4l2_dev = true;
        }
        Ok(())
    }

    /// Removes the device node and the entity, so that no ioctl reaches
    /// the sub-device's controls any more: an entity with a control handler
    /// calls this before freeing it.  Dropping does it too; twice is fine.
    pub(crate) fn unregister(&self) {
        // SAFETY: a no-op for a sub-device that never was registered or
        // already is not (`v4l2_dev` NULL).
        unsafe { sys::v4l2_device_unregister_subdev(self.raw()) };
    }
}

#[pinned_drop]
impl<const N: usize> PinnedDrop for Subdev<N> {
    fn drop(self: Pin<&mut Self>) {
        self.unregister();
        // SAFETY: cleanup frees the active state if allocated; nothing
        // reaches the unregistered sub-device any more.
        unsafe { sys::v4l2_subdev_cleanup(self.raw()) };
    }
}

/// vimc's control class and the first id of its private controls, so
/// tools written for vimc find ours.
pub(crate) const CID_VIMC_CLASS: u32 = 0x00f0_0000 | 1;
pub(crate) const CID_VIMC_BASE: u32 = 0x00f0_0000 | 0xf000;

/// The "VIMC Controls" class control of every entity with controls.
// `CStrExt::as_char_ptr` is not const; a static needs the pointer now.
#[allow(clippy::disallowed_methods)]
pub(crate) static CTRL_CLASS: OpsTable<sys::v4l2_ctrl_config> = OpsTable(sys::v4l2_ctrl_config {
    id: CID_VIMC_CLASS,
    name: c"VIMC Controls".as_ptr().cast(),
    type_: sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_CTRL_CLASS,
    flags: sys::V4L2_CTRL_FLAG_READ_ONLY | sys::V4L2_CTRL_FLAG_WRITE_ONLY,
    // SAFETY: zero is the default of every other field.
    ..unsafe { core::mem::zeroed() }
});

/// Core ops of a sub-device with controls: control events, log status.
pub(crate) static CTRL_CORE_OPS: OpsTable<sys::v4l2_subdev_core_ops> =
    OpsTable(sys::v4l2_subdev_core_ops {
        log_status: Some(sys::v4l2_ctrl_subdev_log_status),
        subscribe_event: Some(sys::v4l2_ctrl_subdev_subscribe_event),
        unsubscribe_event: Some(sys::v4l2_event_subdev_unsubscribe),
        // SAFETY: all-NULL is "not implemented" for the remaining ops.
        ..unsafe { core::mem::zeroed() }
    });

static ENTITY_OPS: OpsTable<sys::media_entity_operations> =
    OpsTable(sys::media_entity_operations {
        link_validate: Some(sys::v4l2_subdev_link_validate),
        ..zeroed_entity_ops()
    });

const fn zeroed_entity_ops() -> sys::media_entity_operations {
    // SAFETY: all-NULL function pointers are the "not implemented" value.
    unsafe { core::mem::zeroed() }
}

/// The `struct v4l2_mbus_framefmt` for `f`, with the colorimetry vimc
/// reports (sRGB, the rest default) and progressive field.
pub(crate) fn mbus_fmt(f: Fmt, out: &mut sys::v4l2_mbus_framefmt) {
    out.width = f.width;
    out.height = f.height;
    out.code = f.code;
    out.field = sys::v4l2_field_V4L2_FIELD_NONE;
    out.colorspace = sys::v4l2_colorspace_V4L2_COLORSPACE_SRGB;
    // SAFETY: `__bindgen_anon_1` is the ycbcr_enc/hsv_enc union; writing
    // the u16 member is always valid.
    unsafe { *out.__bindgen_anon_1.ycbcr_enc.as_mut() = 0 };
    out.quantization = 0;
    out.xfer_func = 0;
    out.flags = 0;
}

/// `Fmt` of a `struct v4l2_mbus_framefmt`.
pub(crate) fn fmt_of(m: &sys::v4l2_mbus_framefmt) -> Fmt {
    Fmt {
        width: m.width,
        height: m.height,
        code: m.code,
    }
}

/// The format of `pad` in `state`, if the pad exists.
///
/// # Safety
///
/// `state` is a sub-device state the core passed to a pad op (locked).
pub(crate) unsafe fn state_fmt<'a>(
    state: *mut sys::v4l2_subdev_state,
    pad: u32,
) -> Option<&'a mut sys::v4l2_mbus_framefmt> {
    // SAFETY: per the function's contract; NULL for a bad pad.
    unsafe { sys::__v4l2_subdev_state_get_format(state, pad, 0).as_mut() }
}

/// Whether a pad op is on the active state (as opposed to try).
pub(crate) fn is_active(which: u32) -> bool {
    which == sys::v4l2_subdev_format_whence_V4L2_SUBDEV_FORMAT_ACTIVE
}

/// Links `src`'s pad `src_pad` to `sink`'s pad `sink_pad`, enabled and
/// immutable.
pub(crate) fn link(
    src: *mut sys::media_entity,
    src_pad: u16,
    sink: *mut sys::media_entity,
    sink_pad: u16,
) -> Result {
    // SAFETY: both entities are registered with the same media device.
    to_result(unsafe {
        sys::media_create_pad_link(
            src,
            src_pad,
            sink,
            sink_pad,
            sys::MEDIA_LNK_FL_ENABLED | sys::MEDIA_LNK_FL_IMMUTABLE,
        )
    })
}

/// Runs `f` on the sub-device's active state with its lock held (what
/// `v4l2_subdev_lock_and_get_active_state` does, a static inline); `None`
/// if the sub-device has no active state.
///
/// # Safety
///
/// `sd` is a registered, finalized sub-device, and the caller holds no
/// state lock of it.
pub(crate) unsafe fn with_active_state<R>(
    sd: *mut sys::v4l2_subdev,
    f: impl FnOnce(*mut sys::v4l2_subdev_state) -> R,
) -> Option<R> {
    // SAFETY: per the contract; the state and its lock live as long as
    // the sub-device is finalized.
    unsafe {
        let state = (*sd).active_state;
        if state.is_null() {
            return None;
        }
        let lock = (*state).lock;
        kernel::bindings::mutex_lock(lock);
        let r = f(state);
        kernel::bindings::mutex_unlock(lock);
        Some(r)
    }
}

/// Answers `enum_mbus_code` with `pick(pad, index)`: -EINVAL past the end.
///
/// # Safety
///
/// `code` is the request the V4L2 core passed, valid for the call.
pub(crate) unsafe fn answer_code(
    code: *mut sys::v4l2_subdev_mbus_code_enum,
    pick: impl Fn(u32, usize) -> Option<u32>,
) -> i32 {
    // SAFETY: the caller passes the core's valid request.
    let code = unsafe { &mut *code };
    match pick(code.pad, code.index as usize) {
        Some(c) => {
            code.code = c;
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// Answers `enum_frame_size`: one continuous range (the clamp limits) for
/// each code that `known(pad, code)` accepts, -EINVAL otherwise.
///
/// # Safety
///
/// `fse` is the request the V4L2 core passed, valid for the call.
pub(crate) unsafe fn answer_size(
    fse: *mut sys::v4l2_subdev_frame_size_enum,
    known: impl Fn(u32, u32) -> bool,
) -> i32 {
    // SAFETY: the caller passes the core's valid request.
    let fse = unsafe { &mut *fse };
    if fse.index != 0 || !known(fse.pad, fse.code) {
        return EINVAL.to_errno();
    }
    fse.min_width = super::formats::MIN_WIDTH;
    fse.max_width = super::formats::MAX_WIDTH;
    fse.min_height = super::formats::MIN_HEIGHT;
    fse.max_height = super::formats::MAX_HEIGHT;
    0
}
