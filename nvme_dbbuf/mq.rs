// SPDX-License-Identifier: GPL-2.0

//! A local blk-mq layer, shaped like `kernel::block::mq`, for what 7.3's
//! lacks: typed per-request data with an owner's part, request accessors,
//! `timeout`, `map_queues` (default/read/poll maps) and `poll`, hardware
//! context data, and a tag-to-request lookup for completion queues.
//!
//! The layer is `mq*.rs` and `data_map.rs`: the only files of the driver
//! that touch `bindings::request`, `blk_mq_*` or `gendisk`.  A driver
//! implements [`Operations`]; the callbacks blk-mq makes are
//! `mq_vtable.rs`'s, which turn raw pointers into the references below.
//!
//! Ownership of a request follows blk-mq's: `queue_rq` owns it until it
//! starts it ([`Pending`]), the device (in flight) until the one call that
//! claims its completion ([`Request::try_complete`]), then the `complete`
//! callback ([`Completing`]), which ends or requeues it.

use kernel::{bindings, prelude::*};

pub(crate) use crate::mq_disk::{Disk, DiskParams};
pub(crate) use crate::mq_request::{Completing, HwTags, Pending, Request, Started};
pub(crate) use crate::mq_tag_set::{TagSet, TagSetParams};

/// A block layer status (`blk_status_t`) a request ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) bindings::blk_status_t);

impl Status {
    pub(crate) const OK: Self = Self(0);
    pub(crate) const NOTSUPP: Self = Self(1);
    pub(crate) const RESOURCE: Self = Self(9);
    pub(crate) const IOERR: Self = Self(10);
}

/// What a timed-out request needs from blk-mq next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutReturn {
    /// The driver handed it back (completed, requeued or failed).
    Done,
    /// Still the driver's: time it again.
    ResetTimer,
}

/// A request's operation, as far as this layer tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
    Other,
}

impl Op {
    pub(crate) fn from_opf(opf: bindings::blk_opf_t) -> Self {
        match opf & ((1 << bindings::REQ_OP_BITS) - 1) {
            bindings::req_op_REQ_OP_READ => Self::Read,
            bindings::req_op_REQ_OP_WRITE => Self::Write,
            bindings::req_op_REQ_OP_FLUSH => Self::Flush,
            bindings::req_op_REQ_OP_DISCARD => Self::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Self::WriteZeroes,
            _ => Self::Other,
        }
    }
}

/// The kinds of hardware queue map (`enum hctx_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapType {
    Default,
    Read,
    Poll,
}

/// How a map's CPUs are spread over its hardware queues.
pub(crate) enum Spread<'a> {
    /// Following the interrupt vectors' affinity of a device, the map's
    /// first queue on vector `first_vector`.
    Irq {
        dev: &'a kernel::device::Device<kernel::device::Bound>,
        first_vector: u32,
    },
    /// Evenly, with no regard to interrupts (poll queues).
    Plain,
}

/// The queue maps `map_queues` fills: each map's hardware queues follow
/// the previous map's.
///
/// # Invariants
///
/// `maps` are a tag set's maps, in `map_queues`.
pub(crate) struct QueueMaps<'a> {
    maps: &'a mut [bindings::blk_mq_queue_map],
    next_offset: u32,
}

/// A blk-mq driver: its tag set's data and callbacks.
///
/// Every callback runs with the tag set alive; the data it is given is the
/// tag set's own ([`TagSet::new`]).
pub(crate) trait Operations: Sized + 'static {
    /// What every callback reaches: the tag set's `driver_data`, which the
    /// tag set owns.
    type SetData<'a>: Send + Sync + 'a;
    /// One hardware context's data, borrowed from the set's.
    type HwData<'a>: Sync + 'a;
    /// One request queue's (disk's) data, owned by its [`Disk`].
    type QueueData: Send + Sync;
    /// Per-request data any path may touch (atomics, in practice).
    type RequestData: Send + Sync;
    /// Per-request data only the request's owner touches.
    type OwnedData: Send;

    /// Each request's data, before its first use.
    fn new_request_data() -> (Self::RequestData, Self::OwnedData);

    /// The hardware context `index`'s data.
    fn hw_data<'a, 'b>(set: &'a Self::SetData<'b>, index: u32) -> Option<&'a Self::HwData<'b>>;

    /// Where hardware queue `index` keeps its tags, for completions.
    fn hw_tags<'a>(set: &'a Self::SetData<'_>, index: u32) -> Option<&'a HwTags<Self>>;

    /// Issues `rq` ([`Pending::start`]), or hands it back unstarted with
    /// the status it fails with.
    fn queue_rq<'r>(
        hw: &Self::HwData<'_>,
        queue: &Self::QueueData,
        set: &Self::SetData<'_>,
        rq: Pending<'r, Self>,
        last: bool,
    ) -> Result<Started<'r, Self>, (Pending<'r, Self>, Status)>;

    /// Rings the doorbell for requests queued without `last`.
    fn commit_rqs(hw: &Self::HwData<'_>);

    /// Ends or requeues a request whose completion was claimed.
    fn complete(
        set: &Self::SetData<'_>,
        hw: &Self::HwData<'_>,
        queue: &Self::QueueData,
        rq: Completing<'_, Self>,
    );

    /// A request took longer than the tag set's timeout.
    fn timeout(set: &Self::SetData<'_>, hw: &Self::HwData<'_>, rq: &Request<Self>)
        -> TimeoutReturn;

    /// Fills the default, read and poll maps.
    fn map_queues(set: &Self::SetData<'_>, maps: &mut QueueMaps<'_>);

    /// Reaps a poll queue; how many completions it found.
    fn poll(hw: &Self::HwData<'_>) -> u32;
}

impl<'a> QueueMaps<'a> {
    /// # Safety
    ///
    /// `maps` are a tag set's maps, which `map_queues` may fill.
    pub(crate) unsafe fn new(maps: &'a mut [bindings::blk_mq_queue_map]) -> Self {
        Self {
            maps,
            next_offset: 0,
        }
    }

    /// Gives map `ty` `nr` hardware queues after the previous map's,
    /// spread as `spread` says.
    pub(crate) fn set(&mut self, ty: MapType, nr: u32, spread: Spread<'_>) {
        let idx = (match ty {
            MapType::Default => bindings::hctx_type_HCTX_TYPE_DEFAULT,
            MapType::Read => bindings::hctx_type_HCTX_TYPE_READ,
            MapType::Poll => bindings::hctx_type_HCTX_TYPE_POLL,
        }) as usize;
        let Some(map) = self.maps.get_mut(idx) else {
            return;
        };
        map.nr_queues = nr;
        map.queue_offset = self.next_offset;
        self.next_offset += nr;
        if nr == 0 {
            return;
        }
        match spread {
            // SAFETY: `map` is one of the set's maps, which blk-mq lets
            // `map_queues` fill (invariant); `dev` is a bound device.
            Spread::Irq { dev, first_vector } => unsafe {
                bindings::blk_mq_map_hw_queues(map, dev_raw(dev), first_vector)
            },
            // SAFETY: as above.
            Spread::Plain => unsafe { bindings::blk_mq_map_queues(map) },
        }
    }
}

/// The raw `struct device` behind a bound device reference.
pub(crate) fn dev_raw(
    dev: &kernel::device::Device<kernel::device::Bound>,
) -> *mut bindings::device {
    // `device::Device` is `repr(transparent)` over `Opaque<bindings::device>`.
    core::ptr::from_ref(dev).cast_mut().cast()
}
