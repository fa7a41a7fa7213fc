// SPDX-License-Identifier: GPL-2.0

//! The buffers of a capture node's vb2 queue while they are ours: queued
//! by userspace, filled by the stream thread, given back to vb2.  A
//! submodule of `video.rs`: only the node hands out or returns buffers.

use super::super::media::sys;
use core::{marker::PhantomData, mem::offset_of, pin::Pin};
use kernel::{bindings, prelude::*, types::Opaque};

/// Our vb2 buffer: vb2's own, then the link that queues it to us, as
/// vimc's `vimc_capture_buffer`.  vb2 allocates it (`buf_struct_size`,
/// zeroed); Rust never constructs one.
#[repr(C)]
pub(super) struct Buffer {
    vb: sys::vb2_v4l2_buffer,
    link: bindings::list_head,
}

/// `buf_struct_size` of our queues.
pub(super) const BUF_STRUCT_SIZE: usize = core::mem::size_of::<Buffer>();

/// A buffer vb2 gave us and we have not returned yet.
///
/// # Invariants
///
/// `0` is the `vb2_buf` of a [`Buffer`] of one of our queues (its first
/// member, at offset 0), queued to us (`buf_queue`) and not returned yet;
/// one `QueuedBuf` per buffer, consumed by returning it or by
/// [`BufList::push`].
pub(super) struct QueuedBuf(*mut sys::vb2_buffer);
// SAFETY: the buffer belongs to us until `vb2_buffer_done`, which may be
// called from any context.
unsafe impl Send for QueuedBuf {}

impl QueuedBuf {
    /// # Safety
    ///
    /// `vb` is a buffer vb2 just queued to us (`buf_queue`).
    pub(super) unsafe fn new(vb: *mut sys::vb2_buffer) -> Self {
        Self(vb)
    }

    /// Copies `src` into plane 0, as much as fits; the bytes copied, or
    /// `None` if the plane has no kernel mapping.
    fn fill(&mut self, src: &[u8]) -> Option<usize> {
        let vb = self.0;
        // SAFETY: by the invariants the buffer and its planes are ours;
        // the copy stays within plane 0's length.
        unsafe {
            let vaddr = sys::vb2_plane_vaddr(vb, 0).cast::<u8>();
            if vaddr.is_null() || (*vb).num_planes == 0 {
                return None;
            }
            let len = src.len().min((*vb).planes[0].length as usize);
            core::ptr::copy_nonoverlapping(src.as_ptr(), vaddr, len);
            Some(len)
        }
    }

    /// Completes the buffer: `payload` bytes, `sequence`, a monotonic
    /// timestamp, progressive; done if `ok`, else in error.
    pub(super) fn done(self, payload: usize, sequence: u32, ok: bool) {
        let vb = self.0;
        // SAFETY: by the invariants; `vb2_buf` is the first member of the
        // `vb2_v4l2_buffer` (`buf_struct_size`); returned once, here.
        unsafe {
            (*vb).timestamp = bindings::ktime_get() as u64;
            let vbuf = vb.cast::<sys::vb2_v4l2_buffer>();
            (*vbuf).sequence = sequence;
            (*vbuf).field = sys::v4l2_field_V4L2_FIELD_NONE;
            if (*vb).num_planes > 0 {
                (*vb).planes[0].bytesused = payload as u32; // vb2_set_plane_payload
            }
        }
        let state = if ok {
            sys::vb2_buffer_state_VB2_BUF_STATE_DONE
        } else {
            sys::vb2_buffer_state_VB2_BUF_STATE_ERROR
        };
        self.give_back(state);
    }

    /// Gives the buffer back in `state`.
    pub(super) fn give_back(self, state: sys::vb2_buffer_state) {
        // SAFETY: by the invariants; returned once, here.
        unsafe { sys::vb2_buffer_done(self.0, state) };
    }
}

/// The oldest queued buffer, for the stream to fill, borrowed from its
/// node for `'a`: it cannot outlive the borrow (so not the stream tick),
/// and one dropped without `VideoNode::complete` goes back to vb2 in
/// error.
pub(crate) struct Frame<'a> {
    buf: Option<QueuedBuf>,
    _node: PhantomData<&'a ()>,
}

impl Frame<'_> {
    pub(super) fn new(buf: QueuedBuf) -> Self {
        Self {
            buf: Some(buf),
            _node: PhantomData,
        }
    }

    /// Copies `src` into plane 0, as much as fits; the bytes copied, or
    /// `None` if the plane has no kernel mapping.
    pub(crate) fn fill(&mut self, src: &[u8]) -> Option<usize> {
        self.buf.as_mut()?.fill(src)
    }

    /// The buffer, to be returned by the node.
    pub(super) fn take(mut self) -> Option<QueuedBuf> {
        self.buf.take()
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            b.give_back(sys::vb2_buffer_state_VB2_BUF_STATE_ERROR);
        }
    }
}

/// The queued buffers, oldest first, linked through their own
/// [`Buffer`]'s `link`, as vimc's list: `buf_queue` (atomic context)
/// never allocates and cannot fail.  Used under its node's spinlock.
///
/// # Invariants
///
/// `head` is at a pinned address, all zeroes until the first push (an
/// empty list, set up then) or an initialised list head; every entry is
/// the `link` of a [`Buffer`] whose [`QueuedBuf`] was pushed and not
/// popped.
#[pin_data]
pub(super) struct BufList {
    #[pin]
    head: Opaque<bindings::list_head>,
}

// SAFETY: the entries are buffers owned as `QueuedBuf`s, which are `Send`;
// the list moves between contexts only under its node's spinlock.
unsafe impl Send for BufList {}

impl BufList {
    pub(super) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            head: Opaque::zeroed(),
        })
    }

    /// Appends `b`.
    pub(super) fn push(self: Pin<&mut Self>, b: QueuedBuf) {
        let (buf, head) = (b.0.cast::<Buffer>(), self.head.get());
        // SAFETY: `b` owns its `Buffer` (its invariants), whose link is in
        // no list; the head is ours, pinned and zeroed or initialised, and
        // `&mut` excludes every other user of the list.
        unsafe {
            if (*head).next.is_null() {
                bindings::INIT_LIST_HEAD(head);
            }
            bindings::list_add_tail(&raw mut (*buf).link, head);
        }
    }

    /// Takes the oldest buffer out.
    pub(super) fn pop(self: Pin<&mut Self>) -> Option<QueuedBuf> {
        let head = self.head.get();
        // The head is zeroed or initialised (invariant) and `&mut` excludes
        // other users; a first entry other than the head is the link of a
        // pushed `Buffer` (invariant), unlinked here (`list_del`), whose
        // `vb2_buffer` is at offset 0.
        // SAFETY: as the comment above says.
        unsafe {
            let first = (*head).next;
            if first.is_null() || first == head {
                return None;
            }
            (*(*first).next).prev = head;
            (*head).next = (*first).next;
            let buf = first.byte_sub(offset_of!(Buffer, link));
            Some(QueuedBuf(buf.cast()))
        }
    }
}
