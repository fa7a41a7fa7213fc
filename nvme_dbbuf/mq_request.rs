// SPDX-License-Identifier: GPL-2.0

//! A blk-mq request of a [`crate::mq::TagSet`]: read-only accessors for
//! anyone holding it, the owner's views ([`Pending`] in `queue_rq`,
//! [`Completing`] in `complete`), the one-completion claim, and the
//! per-hardware-queue tag lookup ([`HwTags`]).

use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    ops::Deref,
    sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, Ordering},
};

use kernel::{bindings, types::Opaque};

use crate::mq::{Op, Operations, Status};

/// `RQF_DONTPREP` and `REQ_FAILFAST_*` (macros with casts).
const RQF_DONTPREP: bindings::req_flags_t = 1 << bindings::rqf_flags___RQF_DONTPREP;
const REQ_FAILFAST: bindings::blk_opf_t = (1 << bindings::req_flag_bits___REQ_FAILFAST_DEV)
    | (1 << bindings::req_flag_bits___REQ_FAILFAST_TRANSPORT)
    | (1 << bindings::req_flag_bits___REQ_FAILFAST_DRIVER);

/// A request's driver data (the blk-mq PDU): the layer's completion claim,
/// the driver's shared part and its owner's part.
///
/// # Invariants
///
/// `owned` is only reached through [`Pending`] or [`Completing`], which
/// exist only while their callback owns the request.
#[repr(C)]
pub(crate) struct Pdu<T: Operations> {
    /// Set by [`Pending::start`], cleared by the one [`Request::claim`].
    claimable: AtomicBool,
    data: T::RequestData,
    owned: UnsafeCell<T::OwnedData>,
}

impl<T: Operations> Pdu<T> {
    pub(crate) fn new() -> Self {
        let (data, owned) = T::new_request_data();
        Self {
            claimable: AtomicBool::new(false),
            data,
            owned: UnsafeCell::new(owned),
        }
    }
}

/// A request of a tag set of `T`.
///
/// # Invariants
///
/// Wraps a `struct request` of a live tag set built by
/// [`crate::mq::TagSet::new`] for `T`, whose PDU is a [`Pdu<T>`]
/// initialised by `init_request`.
#[repr(transparent)]
pub(crate) struct Request<T: Operations>(Opaque<bindings::request>, PhantomData<T>);

impl<T: Operations> Request<T> {
    /// # Safety
    ///
    /// `ptr` is a request of a live tag set built for `T`, alive for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::request) -> &'a Self {
        // SAFETY: `repr(transparent)` over the C struct; caller guarantee.
        unsafe { &*ptr.cast::<Self>() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::request {
        self.0.get()
    }

    fn pdu(&self) -> &Pdu<T> {
        // SAFETY: the PDU is a `Pdu<T>` (type invariant); shared access
        // only to its `Sync` parts and the `UnsafeCell`.
        unsafe { &*bindings::blk_mq_rq_to_pdu(self.as_raw()).cast::<Pdu<T>>() }
    }

    /// The driver's shared per-request data.
    pub(crate) fn data(&self) -> &T::RequestData {
        &self.pdu().data
    }

    /// The owner's per-request data.
    ///
    /// # Safety
    ///
    /// The caller owns the request (`queue_rq` before starting it, or
    /// `complete`) and holds no other reference to this data.
    #[allow(clippy::mut_from_ref)]
    unsafe fn owned_mut(&self) -> &mut T::OwnedData {
        // SAFETY: exclusive by the caller's ownership (type invariant of
        // `Pdu`: only the owner touches `owned`).
        unsafe { &mut *self.pdu().owned.get() }
    }

    /// The request's tag in its hardware queue.
    pub(crate) fn tag(&self) -> u32 {
        // SAFETY: a live request (invariant); the tag is set while it is
        // allocated, which it is while anyone holds it.
        unsafe { (*self.as_raw()).tag as u32 }
    }

    pub(crate) fn op(&self) -> Op {
        // SAFETY: as above; `cmd_flags` is fixed while it is issued.
        Op::from_opf(unsafe { (*self.as_raw()).cmd_flags })
    }

    /// First sector (512 bytes) of the request.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: as above.
        unsafe { (*self.as_raw()).__sector }
    }

    /// Bytes of data left to transfer.
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: as above.
        unsafe { (*self.as_raw()).__data_len }
    }

    pub(crate) fn nr_phys_segments(&self) -> u16 {
        // SAFETY: as above.
        unsafe { (*self.as_raw()).nr_phys_segments }
    }

    /// Whether the submitter asked for no retries (`REQ_FAILFAST_*`).
    pub(crate) fn failfast(&self) -> bool {
        // SAFETY: as above.
        unsafe { (*self.as_raw()).cmd_flags & REQ_FAILFAST != 0 }
    }

    /// Index of the hardware queue the request was issued on.
    pub(crate) fn hw_queue_num(&self) -> u32 {
        // SAFETY: as above; an allocated request has its hardware context.
        unsafe { (*(*self.as_raw()).mq_hctx).queue_num }
    }

    /// The DMA device of the request's tag set ([`TagSetParams`]), bound as
    /// long as the tag set.
    ///
    /// [`TagSetParams`]: crate::mq::TagSetParams
    pub(crate) fn dma_dev(&self) -> *mut bindings::device {
        // SAFETY: an allocated request's queue belongs to its tag set,
        // which `TagSet::new` allocated behind a `SetHead`.
        unsafe { crate::mq_tag_set::SetHead::dma_dev_of((*(*self.as_raw()).q).tag_set) }
    }

    /// Whether blk-mq has the request in flight (started, not completed);
    /// what the driver wrote before [`Pending::start`] is visible after a
    /// `true`.
    pub(crate) fn is_in_flight(&self) -> bool {
        // SAFETY: as above; C writes the state concurrently, so it is read
        // through a raw pointer.
        let state = unsafe { core::ptr::addr_of!((*self.as_raw()).state).read_volatile() };
        fence(Ordering::Acquire);
        state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT
    }

    /// Whether fault injection (`fail_io_timeout`) wants this completion
    /// dropped, as C drivers ask `blk_should_fake_timeout()`.
    #[cfg(CONFIG_FAIL_IO_TIMEOUT)]
    pub(crate) fn should_fake_timeout(&self) -> bool {
        // SAFETY: a live request of a live queue (invariant); `queue_flags`
        // is a plain bitmap word.
        unsafe {
            let q = (*self.as_raw()).q;
            let flags = core::ptr::read_volatile(&(*q).queue_flags);
            flags & (1 << bindings::QUEUE_FLAG_FAIL_IO) != 0
                && bindings::__blk_should_fake_timeout(q)
        }
    }

    /// As above, without `CONFIG_FAIL_IO_TIMEOUT`: never.
    #[cfg(not(CONFIG_FAIL_IO_TIMEOUT))]
    pub(crate) fn should_fake_timeout(&self) -> bool {
        false
    }

    /// Claims the request's completion: `Some` once per [`Pending::start`],
    /// for the first caller only; dropping the claim completes the
    /// request (`blk_mq_complete_request`, then `complete` runs).
    pub(crate) fn claim(&self) -> Option<Claim<'_, T>> {
        self.pdu()
            .claimable
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| Claim { rq: self })
    }
}

/// The right to complete a started request, from [`Request::claim`]; the
/// request completes when it is dropped.
pub(crate) struct Claim<'a, T: Operations> {
    rq: &'a Request<T>,
}

impl<T: Operations> Deref for Claim<'_, T> {
    type Target = Request<T>;
    fn deref(&self) -> &Request<T> {
        self.rq
    }
}

impl<T: Operations> Drop for Claim<'_, T> {
    fn drop(&mut self) {
        // SAFETY: started and claimed once since (`claim`): this is its one
        // completion.
        unsafe { bindings::blk_mq_complete_request(self.rq.as_raw()) };
    }
}

/// A request `queue_rq` owns: not started yet.
pub(crate) struct Pending<'a, T: Operations> {
    rq: &'a Request<T>,
}

impl<'a, T: Operations> Pending<'a, T> {
    /// # Safety
    ///
    /// `rq` was handed to `queue_rq`, which has not started it.
    pub(crate) unsafe fn new(rq: &'a Request<T>) -> Self {
        Self { rq }
    }

    /// The owner's per-request data.
    pub(crate) fn owned(&mut self) -> &mut T::OwnedData {
        // SAFETY: `queue_rq` owns the request; `&mut self` keeps this the
        // only reference.
        unsafe { self.rq.owned_mut() }
    }

    /// The request (as proof that it is pending) and the owner's data, at
    /// once: to map its data into the owner's part.
    pub(crate) fn split(&mut self) -> (PendingRef<'_, T>, &mut T::OwnedData) {
        // SAFETY: as in `owned`.
        let owned = unsafe { self.rq.owned_mut() };
        (PendingRef { rq: self.rq }, owned)
    }

    /// Whether this is the request's first dispatch (not a requeue);
    /// marks it dispatched (`RQF_DONTPREP`, kept across requeues).
    pub(crate) fn first_dispatch(&mut self) -> bool {
        // SAFETY: not started: nothing else writes its flags.
        unsafe {
            let flags = &mut (*self.rq.as_raw()).rq_flags;
            let first = *flags & RQF_DONTPREP == 0;
            *flags |= RQF_DONTPREP;
            first
        }
    }

    /// Hands the request to the device: in flight, and claimable once.
    /// What was written before is visible to whoever sees it in flight.
    pub(crate) fn start(self) -> Started<'a, T> {
        self.rq.pdu().claimable.store(true, Ordering::Relaxed);
        fence(Ordering::Release);
        // SAFETY: `queue_rq` owns the request and has not started it.
        unsafe { bindings::blk_mq_start_request(self.rq.as_raw()) };
        Started { _rq: self.rq }
    }
}

/// Proof that `queue_rq` started its request: what it returns on success,
/// so that a started request is never also failed.
pub(crate) struct Started<'a, T: Operations> {
    _rq: &'a Request<T>,
}

impl<T: Operations> Deref for Pending<'_, T> {
    type Target = Request<T>;
    fn deref(&self) -> &Request<T> {
        self.rq
    }
}

/// A pending request ([`Pending::split`]), shared: its data may be mapped.
pub(crate) struct PendingRef<'a, T: Operations> {
    rq: &'a Request<T>,
}

impl<T: Operations> Clone for PendingRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Operations> Copy for PendingRef<'_, T> {}

impl<T: Operations> Deref for PendingRef<'_, T> {
    type Target = Request<T>;
    fn deref(&self) -> &Request<T> {
        self.rq
    }
}

/// A request whose completion was claimed, in the `complete` callback: it
/// must end or be requeued; dropped otherwise, it ends with an I/O error.
pub(crate) struct Completing<'a, T: Operations> {
    rq: &'a Request<T>,
}

impl<'a, T: Operations> Completing<'a, T> {
    /// # Safety
    ///
    /// `rq` was handed to the `complete` callback.
    pub(crate) unsafe fn new(rq: &'a Request<T>) -> Self {
        Self { rq }
    }

    /// The owner's per-request data.
    pub(crate) fn owned(&mut self) -> &mut T::OwnedData {
        // SAFETY: `complete` owns the request; `&mut self` keeps this the
        // only reference.
        unsafe { self.rq.owned_mut() }
    }

    /// Ends the request with `status`.
    pub(crate) fn end(self, status: Status) {
        let rq = self.rq.as_raw();
        core::mem::forget(self);
        // SAFETY: completed once, owned by this callback.
        unsafe { bindings::blk_mq_end_request(rq, status.0) };
    }

    /// Sends the request again (once the queues run: a quiesced queue
    /// holds the kick off).
    pub(crate) fn requeue(self) {
        let rq = self.rq.as_raw();
        core::mem::forget(self);
        // SAFETY: as above.
        unsafe { bindings::blk_mq_requeue_request(rq, true) };
    }
}

impl<T: Operations> Deref for Completing<'_, T> {
    type Target = Request<T>;
    fn deref(&self) -> &Request<T> {
        self.rq
    }
}

impl<T: Operations> Drop for Completing<'_, T> {
    fn drop(&mut self) {
        // SAFETY: as in `end`.
        unsafe { bindings::blk_mq_end_request(self.rq.as_raw(), Status::IOERR.0) };
    }
}

/// A hardware queue's tags, to turn a command's tag back into its request,
/// read where the tag set keeps them at each lookup (as the in-tree
/// driver's `nvme_queue_tagset`): blk-mq frees the tags of a hardware
/// queue no CPU maps to.  Claimed by one tag set when it is allocated,
/// cleared before it is freed, released after no lookup can see it.
///
/// A request found here may be freed concurrently only if the device
/// completes a command blk-mq no longer has in flight (as in C).
///
/// # Invariants
///
/// `set` is null, or a live tag set for `T` with more than `index`
/// hardware queues; `index` changes only while `owned` is clear, which
/// happens only once no lookup can still see the last `set`.
pub(crate) struct HwTags<T: Operations> {
    set: AtomicPtr<bindings::blk_mq_tag_set>,
    index: AtomicU32,
    owned: AtomicBool,
    _t: PhantomData<T>,
}

impl<T: Operations> HwTags<T> {
    pub(crate) const fn new() -> Self {
        Self {
            set: AtomicPtr::new(core::ptr::null_mut()),
            index: AtomicU32::new(0),
            owned: AtomicBool::new(false),
            _t: PhantomData,
        }
    }

    /// Points lookups at hardware queue `index` of `set`, unless another
    /// tag set has claimed these tags (then `false`).
    ///
    /// # Safety
    ///
    /// `set` is a live tag set for `T` with more than `index` hardware
    /// queues, which, if this returns `true`, calls [`Self::clear`] before
    /// it is freed and [`Self::release`] once no lookup can see it.
    pub(crate) unsafe fn set(&self, set: *mut bindings::blk_mq_tag_set, index: u32) -> bool {
        if self
            .owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.index.store(index, Ordering::Relaxed);
        self.set.store(set, Ordering::Release);
        true
    }

    /// No new lookup finds the tag set.
    pub(crate) fn clear(&self) {
        self.set.store(core::ptr::null_mut(), Ordering::Release);
    }

    /// Another tag set may claim the tags (after [`Self::clear`] and an
    /// RCU grace period).
    pub(crate) fn release(&self) {
        self.owned.store(false, Ordering::Release);
    }

    /// Runs `f` on the request with `tag`, if the tag is valid; `None`
    /// otherwise.  The lookup and `f` run in an RCU read-side section,
    /// which the tag set's drop waits for after clearing this.
    pub(crate) fn with_request<R>(&self, tag: u16, f: impl FnOnce(&Request<T>) -> R) -> Option<R> {
        let _rcu = kernel::sync::rcu::read_lock();
        let set = self.set.load(Ordering::Acquire);
        if set.is_null() {
            return None;
        }
        let index = self.index.load(Ordering::Relaxed) as usize;
        // SAFETY: a live tag set with more than `index` queues (invariant),
        // not freed before this read-side section ends; blk-mq may free and
        // clear a queue's tags, hence volatile.
        let tags = unsafe { core::ptr::read_volatile((*set).tags.add(index)) };
        if tags.is_null() {
            return None;
        }
        // SAFETY: non-null: that queue's live tags.
        let t = unsafe { &*tags };
        if u32::from(tag) >= t.nr_tags {
            return None;
        }
        // SAFETY: `tag < nr_tags`, the length of `rqs` (blk_mq_tag_to_rq()).
        let rq = unsafe { core::ptr::read_volatile(t.rqs.add(usize::from(tag))) };
        if rq.is_null() {
            return None;
        }
        // The reference does not leave `f`.  A completion `f` starts may run
        // later elsewhere: blk-mq holds the request in flight until then,
        // and the tag set outlives its disks' I/O.
        // SAFETY: a request of the live tag set, not freed before this
        // read-side section ends.
        Some(f(unsafe { Request::from_raw(rq) }))
    }
}
