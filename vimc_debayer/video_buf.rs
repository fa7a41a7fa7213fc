// SPDX-License-Identifier: GPL-2.0

//! The buffers of a capture node's vb2 queue while they are ours: queued
//! by userspace, filled by the stream thread, given back to vb2.  A
//! submodule of `video.rs`: only the node hands out or returns buffers.

use super::super::media::sys;
use core::marker::PhantomData;
use kernel::bindings;

/// Buffers a queue may have (vb2's default, set explicitly because the
/// queued ring holds that many).
pub(super) const MAX_BUFFERS: usize = 32;

/// A buffer vb2 gave us and we have not returned yet.
///
/// # Invariants
///
/// `0` is the `vb2_buf` of a `struct vb2_v4l2_buffer` of one of our
/// queues, queued to us (`buf_queue`) and not returned yet; one
/// `QueuedBuf` per buffer, consumed by returning it.
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

/// The queued buffers, oldest first, in place: `buf_queue` (atomic
/// context, no way to fail) never allocates, and vb2 never has more than
/// `MAX_BUFFERS` buffers.
pub(super) struct Ring {
    slots: [Option<QueuedBuf>; MAX_BUFFERS],
    head: usize,
    len: usize,
}

impl Ring {
    pub(super) const fn new() -> Self {
        Self {
            slots: [const { None }; MAX_BUFFERS],
            head: 0,
            len: 0,
        }
    }

    /// Appends `b`; gives it back if the ring is full.
    pub(super) fn push(&mut self, b: QueuedBuf) -> core::result::Result<(), QueuedBuf> {
        match self.slots.get_mut((self.head + self.len) % MAX_BUFFERS) {
            Some(slot @ None) => {
                *slot = Some(b);
                self.len += 1;
                Ok(())
            }
            _ => Err(b),
        }
    }

    pub(super) fn pop(&mut self) -> Option<QueuedBuf> {
        let b = self.slots.get_mut(self.head)?.take()?;
        self.head = (self.head + 1) % MAX_BUFFERS;
        self.len -= 1;
        Some(b)
    }
}
