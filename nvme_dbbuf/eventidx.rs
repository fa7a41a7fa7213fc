// SPDX-License-Identifier: GPL-2.0

//! Shadow doorbell / EventIdx arithmetic (NVMe 2.0 section 5.8, Doorbell
//! Buffer Config).  `core` only: the module and the host tests compile this
//! file verbatim.

/// Whether the host must ring the MMIO doorbell after moving a doorbell
/// value from `old` to `new`, given the controller's `event_idx`.
///
/// The controller writes into EventIdx the value at which it wants an MMIO
/// write: it has stopped polling the shadow slot and will not look again
/// until the doorbell register is written.  The host owes it a ring iff this
/// update stepped over that value, i.e. `event_idx` is one of `old`,
/// `old + 1`, ..., `new - 1`.  In wrap-around arithmetic that is
/// `(new - event_idx - 1) mod 2^16 < (new - old) mod 2^16`, the same test as
/// virtio's `vring_need_event`.
///
/// Queue indices wrap at the queue size, not at 2^16; the u16 test is still
/// exact for every `event_idx` below the queue size (host tests prove it by
/// brute force), and an `event_idx` the controller wrote out of range makes
/// the host ring, which is always safe.
pub const fn need_event(event_idx: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event_idx).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Index, in 32-bit words, of submission queue `qid`'s slot in the Shadow
/// Doorbell and EventIdx buffers.  The buffers mirror the doorbell registers'
/// layout, stride included.
pub const fn sq_slot(qid: u16, dstrd: u8) -> usize {
    (2 * qid as usize) << (dstrd & 0xf)
}

/// Index, in 32-bit words, of completion queue `qid`'s slot.
pub const fn cq_slot(qid: u16, dstrd: u8) -> usize {
    (2 * qid as usize + 1) << (dstrd & 0xf)
}

/// Highest queue id whose two slots fit into a buffer of `bytes` bytes.
///
/// The command takes one memory page per buffer (PRP1, PRP2, no lists), so
/// queues beyond this id cannot use shadow doorbells.
pub const fn max_qid(bytes: usize, dstrd: u8) -> Option<u16> {
    let words = bytes / 4;
    // cq_slot(q) < words  <=>  (2q + 1) << s < words.
    let pairs = (words >> (dstrd & 0xf)) / 2;
    if pairs == 0 {
        None
    } else if pairs - 1 > u16::MAX as usize {
        Some(u16::MAX)
    } else {
        Some((pairs - 1) as u16)
    }
}
