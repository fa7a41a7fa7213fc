// SPDX-License-Identifier: GPL-2.0

//! The media device and its V4L2 device: registration on probe,
//! unregistration when devres releases the pipeline.
//!
//! The 7.3 kernel crate has no media or V4L2 abstractions; `sys` is
//! generated at build time from `media_helper.h` by `tools/media-bindgen`,
//! and this file keeps the unsafe calls into it small and commented.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    device::{Bound, Device},
    error::to_result,
    prelude::*,
    types::Opaque,
};

/// Generated bindings (see the Makefile's `media_bindgen` rule).  Types the
/// kernel crate already binds come from `kernel::bindings`.
#[allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::as_underscore,
    clippy::cast_lossless
)]
pub(crate) mod sys {
    #[allow(unused_imports)]
    use kernel::bindings::*;
    #[allow(unused_imports)]
    use kernel::ffi;
    include!(env!("RFL_MEDIA_BINDINGS"));
}

/// Copies `s` into a fixed C string field (of `char` or `__u8`), always
/// NUL-terminated (the field is zeroed; `s` is cut to leave room).
pub(crate) fn set_str<C: FromByte>(field: &mut [C], s: &CStr) {
    let room = field.len().saturating_sub(1);
    for (d, &c) in field.iter_mut().zip(s.to_bytes().iter().take(room)) {
        *d = C::from_byte(c);
    }
}

/// The element types of C string fields.
pub(crate) trait FromByte: Copy {
    fn from_byte(b: u8) -> Self;
}

impl FromByte for u8 {
    fn from_byte(b: u8) -> Self {
        b
    }
}

impl FromByte for i8 {
    fn from_byte(b: u8) -> Self {
        b as i8
    }
}

/// A `struct media_device` (published by `register`) with its registered
/// `struct v4l2_device`.
///
/// Both are embedded (pinned); `PinnedDrop` unregisters them before the
/// memory goes.
#[pin_data(PinnedDrop)]
pub(crate) struct MediaDevice {
    #[pin]
    mdev: Opaque<sys::media_device>,
    #[pin]
    v4l2: Opaque<sys::v4l2_device>,
    /// Whether `register` ran.
    registered: AtomicBool,
}

// SAFETY: the C structures are only touched through the media core's own
// locking (graph mutex, devnode registration) once registered.
unsafe impl Send for MediaDevice {}
// SAFETY: as above; `&MediaDevice` gives no unsynchronised access.
unsafe impl Sync for MediaDevice {}

impl MediaDevice {
    /// Initialises the media device `model` and registers a V4L2 device
    /// under `dev`.  `/dev/mediaN` appears only in `register`, once the
    /// caller has built the whole graph.
    pub(crate) fn new<'a>(
        dev: &'a Device<Bound>,
        model: &'a CStr,
    ) -> impl PinInit<Self, Error> + 'a {
        let raw_dev: *mut kernel::bindings::device = core::ptr::from_ref(dev).cast_mut().cast();
        // The two structures are set up in one closure so that a failure
        // part-way can undo what was done, in reverse.
        let init = move |this: *mut Self| -> Result {
            // SAFETY: `this` is valid for writes (pin-init slot); `mdev`
            // and `v4l2` are plain C data for which all-zero is the
            // documented starting state; `registered` needs no drop.
            let (mdev, v4l2) = unsafe {
                let mdev = Opaque::cast_into(core::ptr::addr_of!((*this).mdev));
                let v4l2 = Opaque::cast_into(core::ptr::addr_of!((*this).v4l2));
                mdev.write_bytes(0, 1);
                v4l2.write_bytes(0, 1);
                core::ptr::addr_of_mut!((*this).registered).write(AtomicBool::new(false));
                (mdev, v4l2)
            };
            // SAFETY: `mdev` is zeroed and exclusively ours until registered.
            unsafe {
                (*mdev).dev = raw_dev;
                set_str(&mut (*mdev).model, model);
                set_str(&mut (*mdev).driver_name, c"vimc_debayer");
                set_str(&mut (*mdev).bus_info, c"platform:vimc_debayer");
                sys::media_device_init(mdev);
                (*v4l2).mdev = mdev;
            }
            // SAFETY: `raw_dev` is a live bound device; `v4l2` is zeroed
            // and pinned inside `Self`.
            if let Err(e) = to_result(unsafe { sys::v4l2_device_register(raw_dev, v4l2) }) {
                // SAFETY: initialised above, not registered.
                unsafe { sys::media_device_cleanup(mdev) };
                return Err(e);
            }
            Ok(())
        };
        // SAFETY: on success every field is initialised (C-initialised
        // `Opaque`s); on error nothing needs dropping (undone above).
        unsafe { pin_init::pin_init_from_closure(init) }
    }

    /// The raw media device, for entity registration.
    pub(crate) fn mdev(&self) -> *mut sys::media_device {
        self.mdev.get()
    }

    /// Publishes the finished graph: `/dev/v4l-subdevN` for every
    /// registered sub-device, then `/dev/mediaN`, so that nothing opening
    /// the media device can see entities, links or interfaces missing.
    /// Once only (`EBUSY` after).  On failure the media device is not
    /// published; the nodes made so far go when the caller drops the
    /// entities, which are not refcounted: a file opened on one in that
    /// window would outlive it (vimc frees its entities from the V4L2
    /// device's release instead).
    pub(crate) fn register(&self, module: &'static ThisModule) -> Result {
        if self.registered.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // SAFETY: the V4L2 device is registered; nodes are removed when
        // their sub-devices are unregistered.
        to_result(unsafe { sys::__v4l2_device_register_subdev_nodes(self.v4l2(), false) })?;
        // SAFETY: `mdev` is initialised and not registered (the flag
        // above); `module` outlives the device (the module owns the
        // registration).
        to_result(unsafe { sys::__media_device_register(self.mdev(), module.as_ptr().cast()) })
    }

    /// The raw V4L2 device, for subdev and video node registration.
    pub(crate) fn v4l2(&self) -> *mut sys::v4l2_device {
        self.v4l2.get()
    }
}

#[pinned_drop]
impl PinnedDrop for MediaDevice {
    fn drop(self: Pin<&mut Self>) {
        // Reverse order of registration, then the media device's internal
        // state.
        // SAFETY: the V4L2 device was registered by `new` (a `MediaDevice`
        // exists only if it succeeded); unregistering a media device that
        // `register` never registered is a no-op.
        unsafe {
            sys::media_device_unregister(self.mdev());
            sys::v4l2_device_unregister(self.v4l2());
            sys::media_device_cleanup(self.mdev());
        }
    }
}
