// SPDX-License-Identifier: GPL-2.0

//! A V4L2 sub-device with its media entity, pads and controls, owning the
//! entity's data: the one place that registers, unregisters and reaches
//! into `struct v4l2_subdev`.  Each entity implements `PadOps`
//! (`pad_ops.rs`), whose tables this installs.
//!
//! Formats live in the sub-device state the V4L2 core keeps (active and
//! try alike, locked by the core around every pad op), so the entities keep
//! no format copies of their own.

use super::formats::Fmt;
use super::media::{set_str, sys, MediaDevice};
use super::pad_ops::{Ctrl, PadOps, State, Tables};
use core::ops::Deref;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    error::to_result,
    prelude::*,
    sync::{Arc, LockClassKey},
    types::Opaque,
};

/// An ops table in a `static`: the C structures hold raw pointers, which
/// are not `Sync`, but the tables are never written after compile time.
#[repr(transparent)]
pub(crate) struct OpsTable<T>(pub(crate) T);
// SAFETY: read-only after initialisation; shared only as `*const`.
unsafe impl<T> Sync for OpsTable<T> {}

/// A registered sub-device's initialised control handler, for a video node
/// to inherit its controls (`VideoOps::inherited`); holding it keeps the
/// sub-device, and so the controls, alive.
///
/// # Invariants
///
/// `0.handler()` is an initialised control handler that lives as long as
/// `0` (only `Subdev::controls` makes one).
pub(crate) struct Controls(Arc<dyn HasControls>);

impl Controls {
    pub(crate) fn raw(&self) -> *mut sys::v4l2_ctrl_handler {
        self.0.handler()
    }
}

/// Type erasure for `Controls` (sub-devices of any entity type).
pub(crate) trait HasControls: Send + Sync {
    fn handler(&self) -> *mut sys::v4l2_ctrl_handler;
}

impl<T: PadOps<N>, const N: usize> HasControls for Subdev<T, N> {
    fn handler(&self) -> *mut sys::v4l2_ctrl_handler {
        self.hdl.get()
    }
}

/// `struct v4l2_subdev`, its pads and its control handler, pinned, with
/// the entity `T` they belong to.
///
/// # Invariants
///
/// Once `register` succeeded, `dev_priv` points to `self` and the ops are
/// `Tables<T, N>`'s, until `drop` unregisters the sub-device; `data` is
/// dropped after that (fields drop after `PinnedDrop`).
#[pin_data(PinnedDrop)]
pub(crate) struct Subdev<T, const N: usize> {
    #[pin]
    sd: Opaque<sys::v4l2_subdev>,
    #[pin]
    pads: Opaque<[sys::media_pad; N]>,
    #[pin]
    hdl: Opaque<sys::v4l2_ctrl_handler>,
    /// Whether `hdl` holds `T::CONTROLS` (set once `add_controls` succeeded).
    ctrls_ready: AtomicBool,
    #[pin]
    data: T,
}

// SAFETY: the V4L2 core serialises access to the sub-device and the
// control handler (state lock, graph mutex, handler lock); the Rust side
// only passes pointers.  `T` is `Send + Sync` (`PadOps`).
unsafe impl<T: PadOps<N>, const N: usize> Send for Subdev<T, N> {}
// SAFETY: as above.
unsafe impl<T: PadOps<N>, const N: usize> Sync for Subdev<T, N> {}

impl<T, const N: usize> Deref for Subdev<T, N> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: PadOps<N>, const N: usize> Subdev<T, N> {
    /// Zeroed, not yet registered, around the entity `data`.
    pub(crate) fn new(data: impl PinInit<T>) -> impl PinInit<Self> {
        pin_init!(Self {
            sd <- pin_init::init_zeroed(),
            pads <- pin_init::init_zeroed(),
            // Zero is "not initialised", which `v4l2_ctrl_handler_free`
            // accepts.
            hdl <- pin_init::init_zeroed(),
            ctrls_ready: AtomicBool::new(false),
            data <- data,
        })
    }

    /// The raw sub-device.
    fn raw(&self) -> *mut sys::v4l2_subdev {
        self.sd.get()
    }

    /// Its control handler, once it has its controls.
    pub(crate) fn controls(self: &Arc<Self>) -> Option<Controls> {
        let ready = self.ctrls_ready.load(Ordering::Acquire);
        ready.then(|| Controls(self.clone()))
    }

    /// Creates `T::CONTROLS` (after vimc's class control), their private
    /// pointer `self`; nothing if there are none.
    fn add_controls(self: Pin<&Self>) -> Result {
        if T::CONTROLS.is_empty() {
            return Ok(());
        }
        let hdl = self.hdl.get();
        let this = core::ptr::from_ref(self.get_ref()).cast_mut().cast();
        // SAFETY: `hdl` is zeroed and pinned in `self`, which outlives it
        // (`drop` frees it); the configs are copied for the call; the lock
        // class key is static.
        unsafe {
            to_result(sys::v4l2_ctrl_handler_init_class(
                hdl,
                T::CONTROLS.len() as u32 + 1,
                // One class for every entity's handler lock (never nested),
                // so one name too: lockdep warns on a key with two names.
                kernel::static_lock_class!().as_ptr(),
                c"vimc_debayer controls".as_char_ptr(),
            ))?;
            sys::v4l2_ctrl_new_custom(hdl, &CTRL_CLASS.0, core::ptr::null_mut());
            for c in T::CONTROLS {
                let ctrl = match c {
                    Ctrl::Std(id, min, max, step, def) => sys::v4l2_ctrl_new_std(
                        hdl,
                        Tables::<T, N>::ctrl(),
                        *id,
                        *min,
                        *max,
                        *step,
                        *def,
                    ),
                    Ctrl::Custom(cfg) => {
                        let cfg = sys::v4l2_ctrl_config {
                            ops: Tables::<T, N>::ctrl(),
                            ..cfg.0
                        };
                        sys::v4l2_ctrl_new_custom(hdl, &cfg, this)
                    }
                };
                if let Some(ctrl) = ctrl.as_mut() {
                    ctrl.priv_ = this;
                }
            }
            to_result((*hdl).error)?;
        }
        self.ctrls_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Creates the controls, initialises the sub-device and registers it
    /// with `media`'s V4L2 device.  `key` is the entity's own lock class
    /// for its state lock (lockdep sees source and sink states locked
    /// together in link validation).
    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
        key: Pin<&'static LockClassKey>,
    ) -> Result {
        self.add_controls()?;
        let sd = self.raw();
        let pads = self.pads.get().cast::<sys::media_pad>();
        let this = core::ptr::from_ref(self.get_ref()).cast_mut().cast();
        // SAFETY: `sd` and `pads` are zeroed, pinned and ours; the ops
        // tables are `'static`; `self` outlives the registration (the
        // invariants).  On failure each step is undone below.
        unsafe {
            sys::v4l2_subdev_init(sd, Tables::<T, N>::ops());
            (*sd).internal_ops = Tables::<T, N>::internal();
            (*sd).entity.function = T::FUNCTION;
            (*sd).entity.ops = &ENTITY_OPS.0;
            (*sd).dev_priv = this;
            (*sd).flags |= sys::V4L2_SUBDEV_FL_HAS_DEVNODE;
            if !T::CONTROLS.is_empty() {
                (*sd).ctrl_handler = self.hdl.get();
                (*sd).flags |= sys::V4L2_SUBDEV_FL_HAS_EVENTS;
            }
            set_str(&mut (*sd).name, T::NAME);
            for (i, &f) in T::PAD_FLAGS.iter().enumerate() {
                (*pads.add(i)).flags = f as kernel::ffi::c_ulong;
            }
        }
        // SAFETY: `sd` is initialised; `pads` has `N` entries; the lock
        // class key is a static as lockdep requires.
        unsafe {
            to_result(sys::media_entity_pads_init(
                &raw mut (*sd).entity,
                N as u16,
                pads,
            ))?;
            to_result(sys::__v4l2_subdev_init_finalize(
                sd,
                T::NAME.as_char_ptr(),
                key.as_ptr(),
            ))?;
        }
        self.attach(media, module)
    }

    /// Registers the finalized sub-device with `media`'s V4L2 device.
    fn attach(&self, media: &MediaDevice, module: &'static ThisModule) -> Result {
        let sd = self.raw();
        // Registered with no owner module: the core would otherwise take a
        // module reference that only unregistering drops, and unregistering
        // runs from our module exit, so rmmod could never succeed.  (The
        // core skips that reference when the owner is the V4L2 device's
        // driver's owner; our device's driver is the built-in faux driver.)
        // Then the owner, for the device node registered later: an open
        // `/dev/v4l-subdevN` pins the module through its cdev, so rmmod
        // cannot free the entity under an open file.  `owner_v4l2_dev`
        // tells the release path not to drop a reference never taken.
        // `media` is registered and outlives its sub-devices (the
        // pipeline drops them first); `sd` is finalized, and cleaned up if
        // not registered; once registered no node exists yet, so nothing
        // reads the owner fields concurrently.
        // SAFETY: as the comment above says.
        unsafe {
            let ret = sys::__v4l2_device_register_subdev(media.v4l2(), sd, core::ptr::null_mut());
            if let Err(e) = to_result(ret) {
                sys::v4l2_subdev_cleanup(sd);
                return Err(e);
            }
            (*sd).owner = module.as_ptr().cast();
            (*sd).owner_v4l2_dev = true;
        }
        Ok(())
    }

    /// Runs `f` on the active state, locked; `None` before `register`.
    pub(crate) fn with_active<R>(&self, f: impl FnOnce(&mut State<'_>) -> R) -> Option<R> {
        // SAFETY: the active state exists once finalized (else `None`);
        // the caller holds no state lock of this sub-device; the state is
        // locked while `f` runs.
        unsafe { with_active_state(self.raw(), |st| f(&mut State::from_raw(st))) }
    }

    /// The active format of `pad`.
    pub(crate) fn active(&self, pad: u32) -> Option<Fmt> {
        self.with_active(|st| st.fmt(pad)).flatten()
    }

    /// Sets the active format of `pad` through the entity's own `set_fmt`,
    /// as `VIDIOC_SUBDEV_S_FMT` would; the format the entity chose.  For
    /// configuring the pipeline from a video node (video-centric mode).
    pub(crate) fn set_active(&self, pad: u32, f: Fmt) -> Result<Fmt> {
        self.with_active(|st| self.data.set_fmt(st, true, pad, f))
            .ok_or(EINVAL)?
    }
}

#[pinned_drop]
impl<T, const N: usize> PinnedDrop for Subdev<T, N> {
    fn drop(self: Pin<&mut Self>) {
        // After the unregistration (a no-op if the V4L2 device's did it,
        // or it never was registered: `v4l2_dev` NULL) no ioctl reaches
        // the sub-device or its controls: cleanup frees the active state if
        // allocated, then the handler goes (zeroed or initialised, both
        // accepted), then, after this function, the entity's data.
        // SAFETY: as said.
        unsafe {
            sys::v4l2_device_unregister_subdev(self.sd.get());
            sys::v4l2_subdev_cleanup(self.sd.get());
            sys::v4l2_ctrl_handler_free(self.hdl.get());
        }
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
    ..pin_init::zeroed()
});

static ENTITY_OPS: OpsTable<sys::media_entity_operations> =
    OpsTable(sys::media_entity_operations {
        link_validate: Some(sys::v4l2_subdev_link_validate),
        ..pin_init::zeroed()
    });

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

/// An object with a media entity embedded, for links.
///
/// # Safety
///
/// `media_entity` returns the entity embedded in `self`, valid as long as
/// `self` is.
pub(crate) unsafe trait Entity {
    fn media_entity(&self) -> *mut sys::media_entity;
}

// SAFETY: the entity is a field of the sub-device, embedded in `self`.
unsafe impl<T, const N: usize> Entity for Subdev<T, N> {
    fn media_entity(&self) -> *mut sys::media_entity {
        let offset = core::mem::offset_of!(sys::v4l2_subdev, entity);
        self.sd.get().wrapping_byte_add(offset).cast()
    }
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
