// SPDX-License-Identifier: GPL-2.0

//! The media device and its V4L2 device: registration on probe,
//! unregistration when devres releases the pipeline.
//!
//! The 7.3 kernel crate has no media or V4L2 abstractions; `sys` is
//! generated at build time from `media_helper.h` by `tools/media-bindgen`,
//! and this file keeps the unsafe calls into it small and commented.

use super::subdev::Entity;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    device::{Bound, Device},
    error::to_result,
    prelude::*,
    sync::SetOnce,
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
    #[allow(unused_imports)]
    use pin_init::MaybeZeroable;
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

/// What a media device owns besides itself: the entities, their device
/// nodes and the links.  Built with the media device (its sub-devices
/// registered with the V4L2 device, no device node yet), then registered;
/// dropped when the last reference to the V4L2 device goes.  Unregistering
/// is the layer's (`Registration`): every video device and sub-device
/// registered with the media device, whatever the graph did.
pub(crate) trait MediaGraph: Send + Sync {
    /// Registers the device nodes the entities have and links them.
    fn register(self: Pin<&Self>, media: &MediaDevice, module: &'static ThisModule) -> Result;
}

/// A `struct media_device` with its registered `struct v4l2_device`, and
/// the graph they own.  Made and freed only through `Registration`.
///
/// # Invariants
///
/// Once `new` succeeded, the memory belongs to the V4L2 device's reference
/// count: it is freed by `release`, never moved before.
#[pin_data]
pub(crate) struct MediaDevice {
    /// Dropped first: the entities go before the media device's state.
    graph: SetOnce<Pin<KBox<dyn MediaGraph>>>,
    #[pin]
    v4l2: Opaque<sys::v4l2_device>,
    #[pin]
    mdev: MdevState,
    /// Whether `publish` ran.
    published: AtomicBool,
}

/// The media device's own state; cleaned up when dropped, after the graph.
#[pin_data(PinnedDrop)]
struct MdevState {
    #[pin]
    raw: Opaque<sys::media_device>,
}

#[pinned_drop]
impl PinnedDrop for MdevState {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: initialised by `MediaDevice::new` (a `MdevState` exists
        // only then), unregistered by `Registration::drop`.
        unsafe { sys::media_device_cleanup(self.raw.get()) };
    }
}

// SAFETY: the C structures are only touched through the media core's own
// locking (graph mutex, devnode registration) once registered; the graph is
// `Send + Sync`.
unsafe impl Send for MediaDevice {}
// SAFETY: as above; `&MediaDevice` gives no unsynchronised access.
unsafe impl Sync for MediaDevice {}

impl MediaDevice {
    /// Initialises the media device `model` and registers a V4L2 device
    /// under `dev`, whose release frees `Self`.  `/dev/mediaN` appears only
    /// in `publish`, once the whole graph is built.
    fn new<'a>(dev: &'a Device<Bound>, model: &'a CStr) -> impl PinInit<Self, Error> + 'a {
        let raw_dev: *mut kernel::bindings::device = core::ptr::from_ref(dev).cast_mut().cast();
        // The two structures are set up in one closure so that a failure
        // part-way can undo what was done, in reverse.  In the closure,
        // `this` is valid for writes (pin-init slot); `mdev` and `v4l2` are
        // plain C data for which all-zero is the documented starting state,
        // exclusively ours until registered; the other fields need no drop;
        // `raw_dev` is a live bound device.  On success every field is
        // initialised (C-initialised `Opaque`s); on error nothing needs
        // dropping (undone in the closure).
        // SAFETY: as the comment above says.
        unsafe {
            pin_init::pin_init_from_closure(move |this: *mut Self| -> Result {
                let mdev = Opaque::cast_into(core::ptr::addr_of!((*this).mdev.raw));
                let v4l2 = Opaque::cast_into(core::ptr::addr_of!((*this).v4l2));
                mdev.write_bytes(0, 1);
                v4l2.write_bytes(0, 1);
                core::ptr::addr_of_mut!((*this).published).write(AtomicBool::new(false));
                core::ptr::addr_of_mut!((*this).graph).write(SetOnce::new());
                (*mdev).dev = raw_dev;
                set_str(&mut (*mdev).model, model);
                set_str(&mut (*mdev).driver_name, c"vimc_debayer");
                set_str(&mut (*mdev).bus_info, c"platform:vimc_debayer");
                sys::media_device_init(mdev);
                (*v4l2).mdev = mdev;
                (*v4l2).release = Some(release);
                if let Err(e) = to_result(sys::v4l2_device_register(raw_dev, v4l2)) {
                    sys::media_device_cleanup(mdev);
                    return Err(e);
                }
                Ok(())
            })
        }
    }

    /// The raw media device, for entity registration.
    pub(crate) fn mdev(&self) -> *mut sys::media_device {
        self.mdev.raw.get()
    }

    /// The raw V4L2 device, for subdev and video node registration.
    pub(crate) fn v4l2(&self) -> *mut sys::v4l2_device {
        self.v4l2.get()
    }

    /// Links `src`'s pad `src_pad` to `sink`'s `sink_pad`, enabled and
    /// immutable; both must be registered with this media device (`EINVAL`
    /// otherwise, as for a pad not there).
    pub(crate) fn link(
        &self,
        src: &dyn Entity,
        src_pad: u16,
        sink: &dyn Entity,
        sink_pad: u16,
    ) -> Result {
        let (src, sink, mdev) = (src.media_entity(), sink.media_entity(), self.mdev());
        // SAFETY: both are live entities (`Entity`); entities join and
        // leave the media device under its graph mutex, held here, and so
        // does the link; the core checks the pad numbers.
        unsafe {
            let lock = &raw mut (*mdev).graph_mutex;
            kernel::bindings::mutex_lock(lock);
            let ret = if (*src).graph_obj.mdev != mdev || (*sink).graph_obj.mdev != mdev {
                Err(EINVAL)
            } else {
                to_result(sys::media_create_pad_link(
                    src,
                    src_pad,
                    sink,
                    sink_pad,
                    sys::MEDIA_LNK_FL_ENABLED | sys::MEDIA_LNK_FL_IMMUTABLE,
                ))
            };
            kernel::bindings::mutex_unlock(lock);
            ret
        }
    }

    /// Unregisters every video device registered with the media device
    /// (`vb2_video_unregister_device`: streaming stops, the buffers go, no
    /// ioctl after), a few at a time: the release of a node unregistered
    /// with no file open takes the graph mutex.
    fn unregister_videos(&self) {
        let mdev = self.mdev();
        loop {
            let mut found = [core::ptr::null_mut::<sys::video_device>(); 8];
            let mut n = 0;
            // `mdev` is initialised; its entity list is walked under
            // its graph mutex; an entity of type `VIDEO_DEVICE` is embedded
            // in a `struct video_device`, alive until its release, which a
            // registered one has not had.  Ours have a vb2 queue.
            // SAFETY: as the comment above says.
            unsafe {
                let lock = &raw mut (*mdev).graph_mutex;
                kernel::bindings::mutex_lock(lock);
                let head = &raw mut (*mdev).entities;
                let mut p = (*head).next;
                while p != head && n < found.len() {
                    let gobj = kernel::container_of!(p, sys::media_gobj, list);
                    let ent = kernel::container_of!(gobj, sys::media_entity, graph_obj);
                    let vdev = kernel::container_of!(ent, sys::video_device, entity);
                    let registered = 1 << sys::v4l2_video_device_flags_V4L2_FL_REGISTERED;
                    if (*ent).obj_type == sys::media_entity_type_MEDIA_ENTITY_TYPE_VIDEO_DEVICE
                        && (*vdev).flags & registered != 0
                    {
                        if let Some(slot) = found.get_mut(n) {
                            *slot = vdev;
                        }
                        n += 1;
                    }
                    p = (*p).next;
                }
                kernel::bindings::mutex_unlock(lock);
                for &vdev in found.iter().take(n) {
                    sys::vb2_video_unregister_device(vdev);
                }
            }
            if n < found.len() {
                return;
            }
        }
    }

    /// Publishes the finished graph: `/dev/v4l-subdevN` for every
    /// registered sub-device, then `/dev/mediaN`, so that nothing opening
    /// the media device can see entities, links or interfaces missing.
    /// Once only (`EBUSY` after).
    fn publish(&self, module: &'static ThisModule) -> Result {
        if self.published.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // the V4L2 device is registered; nodes are removed when
        // their sub-devices are unregistered.  `mdev` is initialised and
        // not registered (the flag above); `module` outlives the device
        // (the module owns the registration).
        // SAFETY: as the comment above says.
        unsafe {
            to_result(sys::__v4l2_device_register_subdev_nodes(self.v4l2(), false))?;
            to_result(sys::__media_device_register(
                self.mdev(),
                module.as_ptr().cast(),
            ))
        }
    }
}

/// A registered media device and its graph, as vimc's: unbinding
/// unregisters everything and drops the reference the registration holds;
/// the memory goes when the last one goes (`release`), so that a device
/// node still open, or opened while registration failed part-way, never
/// refers to freed entities.  (If that failure fails the module's init,
/// the kernel frees the module's code regardless; see
/// Documentation/vimc-debayer.rst.)
///
/// # Invariants
///
/// `media` is a `MediaDevice` leaked by `new`, alive while the V4L2
/// device's reference count is not zero, of which `self` owns one.
pub(crate) struct Registration {
    media: NonNull<MediaDevice>,
}

// SAFETY: `MediaDevice` is `Send + Sync`; the reference is just a count.
unsafe impl Send for Registration {}
// SAFETY: as above.
unsafe impl Sync for Registration {}

impl Registration {
    /// Makes the media device `model` under `dev`, the graph `graph` builds
    /// with it, registers the graph, then publishes `/dev/mediaN`.  On a
    /// failure what was registered is unregistered, and freed once no file
    /// refers to it.
    pub(crate) fn new<G: MediaGraph + 'static>(
        dev: &Device<Bound>,
        model: &CStr,
        module: &'static ThisModule,
        graph: impl FnOnce(&MediaDevice) -> Result<KBox<G>>,
    ) -> Result<Self> {
        let media = KBox::pin_init(MediaDevice::new(dev, model), GFP_KERNEL)?;
        // SAFETY: from here the memory is the V4L2 device's (`MediaDevice`'s
        // invariants): not moved, and freed by `release` only.
        let media = NonNull::from(KBox::leak(unsafe { Pin::into_inner_unchecked(media) }));
        // INVARIANT: `MediaDevice::new` registered the V4L2 device with one
        // reference, now ours; dropping `this` on a failure below undoes.
        let this = Self { media };
        let media = this.media();
        crate::dyndbg::ddbg!("media device initialised\n");
        let g: KBox<dyn MediaGraph> = graph(media)?;
        if !media.graph.populate(g.into()) {
            return Err(EBUSY);
        }
        if let Some(g) = media.graph.as_ref() {
            crate::dyndbg::ddbg!("media graph built, registering its nodes\n");
            g.as_ref().register(media, module)?;
        }
        media.publish(module)?;
        Ok(this)
    }

    fn media(&self) -> &MediaDevice {
        // SAFETY: by the invariants, alive as long as `self`.
        unsafe { self.media.as_ref() }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let media = self.media();
        // As vimc: the entities' nodes, then `/dev/mediaN`, then the V4L2
        // device (and with it the sub-devices); `release` may run in the
        // put.
        media.unregister_videos();
        // unregistering a media device never published is a no-op;
        // the V4L2 device was registered by `MediaDevice::new`; the
        // reference put is ours (the invariants), and `media` is not used
        // after it.
        // SAFETY: as the comment above says.
        unsafe {
            sys::media_device_unregister(media.mdev());
            sys::v4l2_device_unregister(media.v4l2());
            sys::v4l2_device_put(media.v4l2());
        }
    }
}

/// The V4L2 device's release: its last reference went (unbound, and
/// every device node closed).  Frees the graph, then the media device.
///
/// # Safety
///
/// Called by the V4L2 core, once, with the V4L2 device of a `MediaDevice`
/// leaked by `Registration::new`.
unsafe extern "C" fn release(v4l2: *mut sys::v4l2_device) {
    // SAFETY: per the contract: `v4l2` is the field of that `MediaDevice`,
    // whose box nothing else refers to now.
    drop(unsafe {
        let media = kernel::container_of!(Opaque::cast_from(v4l2).cast_mut(), MediaDevice, v4l2);
        KBox::from_raw(media)
    });
    crate::dyndbg::ddbg!("media device released\n");
}
