// SPDX-License-Identifier: GPL-2.0

//! Video capture nodes: a `struct video_device` with its vb2 queue
//! (vmalloc memory; mmap, userptr and dmabuf), media entity and pad, the
//! buffers userspace queued and the streaming thread, around the node's
//! data `T: VideoOps` (`video_ops.rs` has the trait and the C tables).
//! With `video_ops.rs`, the only place that reaches into a video device or
//! a vb2 queue.  Nodes come in sets (`VideoNodes`) that share one media
//! pipeline and, if asked, one lock, and reach each other (`peers`).

use super::kthread::Ticker;
use super::media::{set_str, sys, MediaDevice};
use super::subdev::{Controls, Entity, CTRL_CLASS};
pub(crate) use super::video_ops::PixFmt;
use super::video_ops::{Tables, VideoOps};
use buf::{BufList, QueuedBuf, BUF_STRUCT_SIZE};
use core::marker::PhantomData;
use core::ops::Deref;
use stream::Job;

#[path = "video_buf.rs"]
mod buf;
#[path = "video_stream.rs"]
mod stream;
pub(crate) use buf::Frame;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use kernel::{
    bindings,
    error::to_result,
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, LockClassKey, Mutex, SpinLock},
    types::Opaque,
};

/// Registration progress, for `PinnedDrop` to undo exactly what was done.
const STAGE_NONE: u8 = 0;
const STAGE_QUEUE: u8 = 1;
const STAGE_REGISTERED: u8 = 2;

/// What the nodes of a set share: their media pipeline (the media core
/// refuses a pad already in another pipeline, so that the nodes may
/// stream at once) and the lock used by all of them if they share one.
#[pin_data(PinnedDrop)]
struct Shared {
    #[pin]
    pipe: Opaque<sys::media_pipeline>,
    #[pin]
    lock: Opaque<bindings::mutex>,
}

/// A `struct mutex` for `vdev->lock`/`q->lock`, initialised in place.
/// `key` is the lock's class, of this name only (lockdep warns about a
/// key with two names).
fn new_raw_mutex(
    name: &'static CStr,
    key: Pin<&'static LockClassKey>,
) -> impl PinInit<Opaque<bindings::mutex>> {
    Opaque::ffi_init(move |p: *mut bindings::mutex| {
        // SAFETY: `p` is pinned and valid for writes; the class key is
        // static.
        unsafe { bindings::__mutex_init(p, name.as_char_ptr(), key.as_ptr()) }
    })
}

#[pinned_drop]
impl PinnedDrop for Shared {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: initialised in `new_raw_mutex`; every node holding the
        // `Arc` to it is gone.
        unsafe { bindings::mutex_destroy(self.lock.get()) };
    }
}

/// One capture node and its data `T`.
///
/// # Invariants
///
/// Each node is element `index` of the `[VideoNode<T>; count]` of a
/// `VideoNodes` (`new` is private); once registered, `queue.drv_priv`
/// points to `self` and the tables are `Tables<T>`'s, until `drop`
/// unregisters the node; `data` is dropped after that.
#[pin_data(PinnedDrop)]
pub(crate) struct VideoNode<T: VideoOps> {
    #[pin]
    vdev: Opaque<sys::video_device>,
    #[pin]
    queue: Opaque<sys::vb2_queue>,
    #[pin]
    pad: Opaque<sys::media_pad>,
    /// The node's own lock, unless the set shares one.
    #[pin]
    lock: Opaque<bindings::mutex>,
    /// Per node, not static: `owner` is our module, so an open node pins it.
    #[pin]
    fops: Opaque<sys::v4l2_file_operations>,
    /// The controls inherited from other entities (`T::inherited`), if
    /// any; zeroed otherwise.
    #[pin]
    hdl: Opaque<sys::v4l2_ctrl_handler>,
    /// What keeps the inherited controls alive; dropped after `hdl` is
    /// freed (fields drop after `PinnedDrop`).
    #[pin]
    kept: Mutex<KVec<Controls>>,
    #[pin]
    queued: SpinLock<BufList>,
    /// The streaming thread while streaming (set and taken under the lock).
    #[pin]
    stream: Mutex<Option<Ticker<Job<T>>>>,
    sequence: AtomicU32,
    shared: Arc<Shared>,
    shared_lock: bool,
    index: usize,
    count: usize,
    stage: AtomicU8,
    /// Whether `register` ran (once only).
    claimed: AtomicBool,
    #[pin]
    data: T,
}

/// Proof that the caller holds the lock of a node (`VideoNode::locked`),
/// for `'a`: what `busy` needs.
pub(crate) struct Locked<'a> {
    lock: *mut bindings::mutex,
    _held: PhantomData<&'a ()>,
}

// SAFETY: the C structures are used under the node's lock (ioctls, vb2
// ops) or the spinlock (queued buffers); the rest is atomics, immutable,
// or `T`, which is `Send + Sync`.
unsafe impl<T: VideoOps> Send for VideoNode<T> {}
// SAFETY: as above.
unsafe impl<T: VideoOps> Sync for VideoNode<T> {}

// SAFETY: the entity is a field of the video device, embedded in `self`.
unsafe impl<T: VideoOps> Entity for VideoNode<T> {
    fn media_entity(&self) -> *mut sys::media_entity {
        let offset = core::mem::offset_of!(sys::video_device, entity);
        self.vdev.get().wrapping_byte_add(offset).cast()
    }
}

impl<T: VideoOps> Deref for VideoNode<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

/// A set of `N` nodes sharing a pipeline (and a lock if asked), in one
/// allocation; registered in index order.
#[pin_data]
pub(crate) struct VideoNodes<T: VideoOps, const N: usize> {
    #[pin]
    nodes: [VideoNode<T>; N],
}

impl<T: VideoOps, const N: usize> VideoNodes<T, N> {
    /// Node `i` around `data(i)`; all of them under one lock if
    /// `shared_lock`.
    pub(crate) fn new<I, F>(data: F, shared_lock: bool) -> Result<impl PinInit<Self, Error>>
    where
        I: PinInit<T, Error>,
        F: FnMut(usize) -> I,
    {
        let shared = Arc::pin_init(
            pin_init!(Shared {
                pipe <- pin_init::init_zeroed(),
                lock <- new_raw_mutex(c"vimc_debayer video shared", kernel::static_lock_class!()),
            }),
            GFP_KERNEL,
        )?;
        let mut data = data;
        Ok(try_pin_init!(Self {
            nodes <- pin_init::pin_init_array_from_fn(|i| VideoNode::new(
                i,
                N,
                shared.clone(),
                shared_lock,
                data(i)
            )),
        }? Error))
    }

    pub(crate) fn nodes(&self) -> &[VideoNode<T>; N] {
        &self.nodes
    }

    /// Registers `/dev/videoN` for each node, in index order.
    pub(crate) fn register(
        self: Pin<&Self>,
        media: &MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        for n in self.nodes.iter() {
            // SAFETY: the array is structurally pinned, so are its elements.
            unsafe { Pin::new_unchecked(n) }.register(media, module)?;
        }
        Ok(())
    }
}

impl<T: VideoOps> VideoNode<T> {
    fn new(
        index: usize,
        count: usize,
        shared: Arc<Shared>,
        shared_lock: bool,
        data: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            vdev <- pin_init::init_zeroed(),
            queue <- pin_init::init_zeroed(),
            pad <- pin_init::init_zeroed(),
            lock <- new_raw_mutex(c"vimc_debayer video", kernel::static_lock_class!()),
            fops <- pin_init::init_zeroed(),
            hdl <- pin_init::init_zeroed(),
            kept <- new_mutex!(KVec::new()),
            queued <- new_spinlock!(BufList::new()),
            stream <- new_mutex!(None),
            sequence: AtomicU32::new(0),
            shared,
            shared_lock,
            index,
            count,
            stage: AtomicU8::new(STAGE_NONE),
            claimed: AtomicBool::new(false),
            data <- data,
        }? Error)
    }

    /// Every node of the set, this one included, in index order.
    pub(crate) fn peers(&self) -> &[VideoNode<T>] {
        let first = core::ptr::from_ref(self).wrapping_sub(self.index);
        // SAFETY: by the invariants `self` is element `index` of an array
        // of `count` nodes, borrowed as long as `self` is.
        unsafe { core::slice::from_raw_parts(first, self.count) }
    }

    /// The lock of the node: its own, or the set's.
    fn lock_ptr(&self) -> *mut bindings::mutex {
        if self.shared_lock {
            self.shared.lock.get()
        } else {
            self.lock.get()
        }
    }

    /// Takes the oldest queued buffer, if any.
    pub(crate) fn next_buffer(&self) -> Option<Frame<'_>> {
        self.queued.lock().as_mut().pop().map(Frame::new)
    }

    /// Completes `frame` with `payload` bytes and the node's next sequence
    /// number; in error unless `ok`.
    pub(crate) fn complete(&self, frame: Frame<'_>, payload: usize, ok: bool) {
        if let Some(buf) = frame.take() {
            let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
            buf.done(payload, sequence, ok);
        }
    }

    /// The proof that the caller holds the node's lock.
    ///
    /// # Safety
    ///
    /// The caller holds the node's lock (`vdev->lock`) while the result
    /// lives: an ioctl of this node.
    pub(crate) unsafe fn locked(&self) -> Locked<'_> {
        Locked {
            lock: self.lock_ptr(),
            _held: PhantomData,
        }
    }

    /// Whether buffers are allocated (`vb2_is_busy`, a static inline), as
    /// far as `held` shows: a node whose lock the caller does not hold
    /// counts as busy.
    pub(crate) fn busy(&self, held: &Locked<'_>) -> bool {
        if held.lock != self.lock_ptr() {
            return true;
        }
        // SAFETY: the bitmap is NULL or `max_num_buffers` bits, changed
        // only under the node's lock, which the caller holds (`held`).
        unsafe {
            let q = self.queue.get();
            !(*q).bufs_bitmap.is_null()
                && bindings::__bitmap_weight((*q).bufs_bitmap, (*q).max_num_buffers) > 0
        }
    }
}

impl<T: VideoOps> VideoNode<T> {
    /// Sets up the entity and the queue and registers `/dev/videoN`.
    fn register(self: Pin<&Self>, media: &MediaDevice, module: &'static ThisModule) -> Result {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let vdev = self.vdev.get();
        let io_mc = if self.io_mc() { sys::V4L2_CAP_IO_MC } else { 0 };
        self.init_queue(media, module)?;
        let ctrls = self.inherit_controls()?;
        // `__video_register_device` ignores a failure to add the entity to
        // the media device: the node is then registered with no entity and
        // an interface pointer NULL or freed, which its release would pass
        // to `media_devnode_remove`.  A zeroed one is freed harmlessly.
        let spare = KBox::new(pin_init::zeroed::<sys::media_intf_devnode>(), GFP_KERNEL)?;
        // all of these are pinned fields of `self`, zeroed (the
        // queue and the handler initialised above) and not yet shared with
        // the C side; `self` outlives the registration.  What was done
        // before a failure is undone by `drop` (`stage`); a node whose
        // entity the media device lacks is unregistered here, its release
        // then freeing `spare` (kmalloc'd, as `media_devnode_remove`
        // expects) instead of the interface the core lost.
        // SAFETY: as the comment above says.
        unsafe {
            (*self.pad.get()).flags = sys::MEDIA_PAD_FL_SINK as kernel::ffi::c_ulong;
            (*vdev).entity.name = self.name().as_char_ptr();
            (*vdev).entity.function = sys::MEDIA_ENT_F_IO_V4L;
            (*vdev).entity.ops = Tables::<T>::entity();
            to_result(sys::media_entity_pads_init(
                &raw mut (*vdev).entity,
                1,
                self.pad.get(),
            ))?;
            if ctrls {
                (*vdev).ctrl_handler = self.hdl.get();
            }
            (*vdev).device_caps = sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_STREAMING | io_mc;
            (*vdev).release = Some(sys::video_device_release_empty);
            (*vdev).fops = self.fops.get();
            (*vdev).ioctl_ops = Tables::<T>::ioctl(ctrls);
            (*vdev).lock = self.lock_ptr();
            (*vdev).queue = self.queue.get();
            (*vdev).v4l2_dev = media.v4l2();
            (*vdev).vfl_dir = sys::vfl_devnode_direction_VFL_DIR_RX;
            set_str(&mut (*vdev).name, self.name());
            to_result(sys::__video_register_device(
                vdev,
                sys::vfl_devnode_type_VFL_TYPE_VIDEO,
                -1,
                1,
                module.as_ptr().cast(),
            ))?;
            self.stage.store(STAGE_REGISTERED, Ordering::Relaxed);
            if (*vdev).entity.graph_obj.mdev != media.mdev() {
                (*vdev).intf_devnode = KBox::into_raw(spare);
                sys::vb2_video_unregister_device(vdev);
                return Err(ENOMEM);
            }
        }
        Ok(())
    }

    /// Makes the controls `T::inherited` names the node's too, so that an
    /// application that knows only the video node can set them there;
    /// whether there were any.
    fn inherit_controls(&self) -> Result<bool> {
        let hdl = self.hdl.get();
        let mut any = false;
        for c in self.inherited() {
            let added = c.raw();
            self.kept.lock().push(c, GFP_KERNEL)?;
            // The handler lock has a class of its own: adding locks the
            // added handler's lock, then this one's.
            // `hdl` is freed in `drop` after the node is unregistered;
            // `kept` keeps `added` alive until after that (`Controls`).
            // SAFETY: `hdl` is pinned in `self`, not yet shared; `added` is
            // an initialised handler, alive as said above.
            unsafe {
                if !any {
                    to_result(sys::v4l2_ctrl_handler_init_class(
                        hdl,
                        16,
                        kernel::static_lock_class!().as_ptr(),
                        c"vimc_debayer video controls".as_char_ptr(),
                    ))?;
                    // Controls of vimc's private class need its class
                    // control here first (the core adds only standard ones).
                    sys::v4l2_ctrl_new_custom(hdl, &CTRL_CLASS.0, core::ptr::null_mut());
                }
                to_result(sys::v4l2_ctrl_add_handler(hdl, added, None, true))?;
                to_result((*hdl).error)?;
            }
            any = true;
        }
        Ok(any)
    }

    /// Sets up the vb2 queue (vmalloc buffers, `Tables<T>`'s ops, the
    /// node's lock) and the file operations (vb2's and the core's, owned
    /// by `module`).
    fn init_queue(self: Pin<&Self>, media: &MediaDevice, module: &'static ThisModule) -> Result {
        let this = core::ptr::from_ref(self.get_ref()).cast_mut();
        let q = self.queue.get();
        // SAFETY: `q` and `fops` are pinned fields of `self`, zeroed and
        // not yet shared with the C side; `self` outlives the queue.
        unsafe {
            let f = &mut *self.fops.get();
            f.owner = module.as_ptr().cast();
            f.open = Some(sys::v4l2_fh_open);
            f.release = Some(sys::vb2_fop_release);
            f.poll = Some(sys::vb2_fop_poll);
            f.unlocked_ioctl = Some(sys::video_ioctl2);
            f.mmap = Some(sys::vb2_fop_mmap);

            (*q).type_ = sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
            (*q).io_modes = sys::vb2_io_modes_VB2_MMAP
                | sys::vb2_io_modes_VB2_USERPTR
                | sys::vb2_io_modes_VB2_DMABUF;
            (*q).drv_priv = this.cast();
            (*q).buf_struct_size = BUF_STRUCT_SIZE as u32;
            (*q).ops = Tables::<T>::queue();
            (*q).mem_ops = &raw const sys::vb2_vmalloc_memops;
            (*q).timestamp_flags = sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
            (*q).min_reqbufs_allocation = 2;
            (*q).lock = self.lock_ptr();
            (*q).dev = (*media.v4l2()).dev;
            to_result(sys::vb2_queue_init(q))?;
        }
        self.stage.store(STAGE_QUEUE, Ordering::Relaxed);
        Ok(())
    }

    /// Queues `vb` (vb2's `buf_queue`).
    ///
    /// # Safety
    ///
    /// vb2 just queued `vb`, a buffer of this node's queue, to the driver.
    pub(crate) unsafe fn queue_buf(&self, vb: *mut sys::vb2_buffer) {
        // SAFETY: per the contract.
        let b = unsafe { QueuedBuf::new(vb) };
        self.queued.lock().as_mut().push(b);
    }

    /// Returns every queued buffer to vb2 in `state`.
    ///
    /// # Safety
    ///
    /// Called from vb2's `start_streaming` (failing, `state` QUEUED) or
    /// `stop_streaming` (`state` ERROR) of this node.
    pub(crate) unsafe fn return_all(&self, state: sys::vb2_buffer_state) {
        let mut q = self.queued.lock();
        while let Some(b) = q.as_mut().pop() {
            b.give_back(state);
        }
    }
}

#[pinned_drop]
impl<T: VideoOps> PinnedDrop for VideoNode<T> {
    fn drop(self: Pin<&mut Self>) {
        // Undo in reverse what `register` did (unregistering again is a
        // no-op once the media device's `Registration` did it); no thread
        // may outlive the node (`Job`'s invariants); the handler (zeroed or
        // initialised, both accepted) and the lock last, the C side done
        // with them.
        let stage = self.stage.load(Ordering::Relaxed);
        // SAFETY: as said; `stage` tells what `register` got to, and `new`
        // initialised the lock.
        unsafe {
            match stage {
                STAGE_REGISTERED => sys::vb2_video_unregister_device(self.vdev.get()),
                STAGE_QUEUE => sys::vb2_queue_release(self.queue.get()),
                _ => {}
            }
            drop(self.stream.lock().take());
            sys::v4l2_ctrl_handler_free(self.hdl.get());
            bindings::mutex_destroy(self.lock.get());
        }
    }
}
