// SPDX-License-Identifier: GPL-2.0

//! The `blk_mq_ops` callbacks of the tag set (`blk.rs`), and the completion
//! path from a completion entry to its request (`IoCompleter`).

use core::{
    ffi::c_void,
    sync::atomic::{fence, Ordering},
};

use kernel::{bindings, prelude::*};

use crate::blk::{
    dev_raw, BlkShared, Ns, BLK_STS_IOERR, BLK_STS_NOTSUPP, BLK_STS_OK, REQ_FAILFAST,
};
use crate::cmd::{self, Cqe};
use crate::fault::{self, Inject};
use crate::irq::Completer;
use crate::queue::Queue;
use crate::request::{
    build_discard, build_rw, build_write_zeroes, in_flight_at, iod, next_use, should_fake_timeout,
    Iod, ABORT_SENT, GENERATION,
};
use crate::NvmeDev;

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn queue_rq(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a live hctx (driver_data set in init_hctx to a
    // queue that outlives the tag set) and request of our tag set whose
    // request_queue's queuedata is the namespace's `Ns`.
    let (queue, ns, shared, rq, last) = unsafe {
        (
            &*(*hctx).driver_data.cast::<Queue<'_>>(),
            &*(*(*hctx).queue).queuedata.cast::<Ns>(),
            shared_of((*(*(*hctx).queue).tag_set).driver_data),
            (*bd).rq,
            (*bd).last,
        )
    };
    // SAFETY: as above.
    let (op, tag) = unsafe {
        (
            (*rq).cmd_flags & ((1 << bindings::REQ_OP_BITS) - 1),
            (*rq).tag,
        )
    };
    let Some(shared) = shared.filter(|_| !queue.is_dead()) else {
        return BLK_STS_IOERR;
    };
    let sqe = match op {
        // SAFETY: `rq` is a request of our tag set on `ns`.
        bindings::req_op_REQ_OP_READ => unsafe { build_rw(ns, shared, rq, false) },
        // SAFETY: as above.
        bindings::req_op_REQ_OP_WRITE => unsafe { build_rw(ns, shared, rq, true) },
        bindings::req_op_REQ_OP_FLUSH => Ok(cmd::flush(ns.nsid)),
        // SAFETY: as above.
        bindings::req_op_REQ_OP_WRITE_ZEROES => unsafe { build_write_zeroes(ns, rq) },
        // SAFETY: as above.
        bindings::req_op_REQ_OP_DISCARD => unsafe { build_discard(ns, shared, rq) },
        _ => Err(BLK_STS_NOTSUPP),
    };
    let sqe = match sqe {
        Ok(s) => s,
        Err(sts) => {
            // Entries queued earlier in this batch still need their doorbell.
            if last {
                queue.commit();
            }
            return sts;
        }
    };
    // SAFETY: `rq` is ours, not started yet.
    let cid = unsafe { next_use(rq, tag) };
    // The generation before the IN_FLIGHT state (paired in `complete_one`).
    fence(Ordering::Release);
    // SAFETY: `rq` is a valid request about to be issued.
    unsafe { bindings::blk_mq_start_request(rq) };
    queue.submit(&sqe.with_cid(cid), last);
    BLK_STS_OK
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn commit_rqs(hctx: *mut bindings::blk_mq_hw_ctx) {
    // SAFETY: see `queue_rq`.
    let queue = unsafe { &*(*hctx).driver_data.cast::<Queue<'_>>() };
    queue.commit();
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn complete(rq: *mut bindings::request) {
    // SAFETY: `rq` is one of ours, completed by `IoCompleter` or cancelled
    // by a reset; its hctx's driver_data is its queue (`init_hctx`).
    let (ns, shared, iod, queue, flags) = unsafe {
        (
            &*(*(*rq).q).queuedata.cast::<Ns>(),
            shared_of((*(*(*rq).q).tag_set).driver_data),
            iod(rq),
            &*(*(*rq).mq_hctx).driver_data.cast::<Queue<'_>>(),
            (*rq).cmd_flags,
        )
    };
    // SAFETY: its one completion owns the request.
    let owned = unsafe { iod.owned() };
    // SAFETY: set up by `queue_rq` for `ns`'s device; completed (or
    // cancelled once the controller stopped), so the controller is done
    // with it.
    unsafe { owned.data.release(ns.dev, shared) };
    let status = (!iod.cancelled.load(Ordering::Relaxed))
        .then(|| cmd::Status(iod.status.load(Ordering::Relaxed)));
    let noretry = flags & REQ_FAILFAST != 0 || queue.is_dead();
    let max = *crate::module_parameters::max_retries.value_ref();
    if cmd::disposition(status, noretry, owned.retries, max) == cmd::Disposition::Retry {
        // Run it again; after a reset, once the queues are back (the kick
        // is held off until they are unquiesced).
        owned.retries += 1;
        // SAFETY: `rq` is ours and was in flight.
        unsafe { bindings::blk_mq_requeue_request(rq, true) };
        return;
    }
    let sts = match status {
        Some(s) if s.is_success() => BLK_STS_OK,
        Some(s) if s.is_invalid_opcode() => BLK_STS_NOTSUPP,
        _ => BLK_STS_IOERR,
    };
    // SAFETY: `rq` is in flight and completed exactly once.
    unsafe { bindings::blk_mq_end_request(rq, sts) };
}

/// The controller a tag set's `driver_data` names.
///
/// # Safety
///
/// `data` is the `driver_data` of a live [`crate::blk::TagSet`].
unsafe fn dev_of<'a>(data: *mut c_void) -> &'a NvmeDev<'a> {
    // SAFETY: a live controller (`TagSet` invariant), used through `&` only.
    unsafe { &*data.cast::<NvmeDev<'a>>() }
}

/// The queues of the controller a tag set's `driver_data` names.
///
/// # Safety
///
/// `data` is the `driver_data` of a live [`crate::blk::TagSet`]; its controller may be
/// in its `drop`, which frees the tag set before the `shared` field goes.
pub(crate) unsafe fn shared_of<'a>(data: *mut c_void) -> Option<&'a BlkShared<'a>> {
    // SAFETY: as the caller's; only the field is referenced (a request
    // completed during the controller's drop still finds `shared` there).
    unsafe { &*core::ptr::addr_of!((*data.cast::<NvmeDev<'a>>()).shared) }.as_ref()
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn init_hctx(
    hctx: *mut bindings::blk_mq_hw_ctx,
    data: *mut c_void,
    index: u32,
) -> i32 {
    // SAFETY: `data` is `set->driver_data`, live (`TagSet` invariant).
    let Some(shared) = (unsafe { shared_of(data) }) else {
        return EINVAL.to_errno();
    };
    let Some(queue) = shared.queues.get(index as usize) else {
        return EINVAL.to_errno();
    };
    // The tag set, whose tags these are, is freed after everything that
    // reaps completions: the disks (`->poll`, timeouts), the queues'
    // interrupts and the reset work (teardown and field order).
    // SAFETY: `hctx` is being initialised by blk-mq for us; see above.
    unsafe {
        (*hctx).driver_data = core::ptr::from_ref::<Queue<'_>>(queue).cast_mut().cast();
        queue.tags.set((*hctx).tags);
    }
    0
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn init_request(
    _set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx: u32,
    _node: i32,
) -> i32 {
    // SAFETY: the PDU is `cmd_size` bytes reserved for us; writing a whole
    // `Iod` initialises it.
    unsafe {
        bindings::blk_mq_rq_to_pdu(rq)
            .cast::<Iod>()
            .write(Iod::new())
    };
    0
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn map_queues(set: *mut bindings::blk_mq_tag_set) {
    // SAFETY: `set` is ours (its driver_data is live); it has `nr_maps`
    // maps, each of which blk-mq lets us fill here.
    let (shared, maps) = unsafe {
        let nr = (*set).nr_maps as usize;
        (
            shared_of((*set).driver_data),
            (*set).map.get_mut(..nr).unwrap_or(&mut []),
        )
    };
    let Some(shared) = shared else {
        return;
    };
    let counts = [shared.irq_queues(), 0, shared.polled];
    let mut offset = 0u32;
    for (ty, (map, n)) in maps.iter_mut().zip(counts).enumerate() {
        map.nr_queues = n as u32;
        map.queue_offset = offset;
        offset += n as u32;
        if n == 0 {
            continue;
        }
        // The interrupt queues follow their vectors' affinity (a plain
        // spread when the vectors carry none: MSI/INTx); the poll queues
        // have none, so they get the plain spread.
        // SAFETY: `map` is one of the set's maps, `dev` the bound device.
        unsafe {
            if ty == bindings::hctx_type_HCTX_TYPE_POLL as usize {
                bindings::blk_mq_map_queues(map);
            } else {
                bindings::blk_mq_map_hw_queues(map, dev_raw(shared.dev), shared.irq_offset);
            }
        }
    }
}

/// Reaps a poll queue for blk-mq (io_uring IOPOLL, `RWF_HIPRI`): returns
/// how many completions it found.
///
/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn poll(
    hctx: *mut bindings::blk_mq_hw_ctx,
    _iob: *mut bindings::io_comp_batch,
) -> i32 {
    // SAFETY: see `queue_rq`.
    let queue = unsafe { &*(*hctx).driver_data.cast::<Queue<'_>>() };
    if !queue.cqe_pending() {
        return 0;
    }
    let n = queue.reap(|cqe| IoCompleter::complete(queue, cqe)).count;
    queue.count_polled(n);
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// # Safety
///
/// Only called by blk-mq, as `struct blk_mq_ops` callback, for our tag set.
unsafe extern "C" fn timeout(rq: *mut bindings::request) -> bindings::blk_eh_timer_return {
    // SAFETY: `rq` is ours: its queue's tag set names our controller, its
    // hctx's driver_data is its queue (`init_hctx`).
    let (dev, queue) = unsafe {
        (
            dev_of((*(*(*rq).q).tag_set).driver_data),
            &*(*(*rq).mq_hctx).driver_data.cast::<Queue<'_>>(),
        )
    };
    // The use of the request that timed out, taken before the reap below
    // can complete it (and blk-mq send it again).
    // SAFETY: `rq` is ours; blk-mq holds a reference while it times out.
    let Some(this_use) = (unsafe { in_flight_at(rq) }) else {
        return bindings::blk_eh_timer_return_BLK_EH_DONE;
    };
    let generation = this_use & GENERATION;
    // Still in flight at that generation (not completed, or taken back by
    // a reset and sent again).
    // SAFETY: as above.
    let still_ours = || unsafe { in_flight_at(rq) }.map(|u| u & GENERATION) == Some(generation);
    // A lost interrupt looks like a timeout: reap the queue first, as the
    // in-tree driver does, and only then blame the controller.
    queue.reap(|cqe| IoCompleter::complete(queue, cqe));
    if !still_ours() {
        // SAFETY: as above.
        let tag = unsafe { (*rq).tag };
        pr_warn!(
            "nvme_dbbuf: queue {}: tag {} timed out, completion polled\n",
            queue.qid,
            tag
        );
        return bindings::blk_eh_timer_return_BLK_EH_DONE;
    }
    // SAFETY: `rq` is ours and in flight; only the atomic fields of its PDU
    // are used here: its completion may run concurrently.
    let (iod, tag, qid) = unsafe { (iod(rq), (*rq).tag, (*(*rq).mq_hctx).queue_num + 1) };
    let abort_sent = this_use & ABORT_SENT != 0;
    let cid = (u16::from(generation) << 12) | (tag as u16 & 0xfff);
    let qid = u16::try_from(qid).unwrap_or(u16::MAX);
    // Called before the Abort goes out; marks this use only (a later one
    // has another generation, without the mark).
    let mark = || {
        let _ = iod.generation.compare_exchange(
            generation,
            generation | ABORT_SENT,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    };
    match dev.io_timeout(qid, cid, !abort_sent, still_ours, mark) {
        TimeoutAction::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
        TimeoutAction::AbortSent | TimeoutAction::Later => {
            bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER
        }
    }
}

/// What the controller's timeout handling did with a request.
pub(crate) enum TimeoutAction {
    /// The request was handed back (reset, or failed): blk-mq is done.
    Done,
    /// An Abort was sent: wait one more period, then reset.
    AbortSent,
    /// Nothing done (a reset, a passthrough command or another timeout
    /// holds the controller; a reset takes the request back): wait another
    /// period.
    Later,
}

/// # Safety
///
/// Only called by `blk_mq_tagset_busy_iter` from [`crate::blk::TagSet::cancel_inflight`].
pub(crate) unsafe extern "C" fn cancel_one(rq: *mut bindings::request, data: *mut c_void) -> bool {
    // SAFETY: `rq` is a started request of our tag set.
    let state = unsafe { core::ptr::addr_of!((*rq).state).read_volatile() };
    if state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT {
        // SAFETY: as above; the controller is stopped and its completions
        // reaped (`cancel_inflight`'s precondition), so nothing else
        // completes `rq`.
        unsafe {
            iod(rq).cancelled.store(true, Ordering::Relaxed);
            bindings::blk_mq_complete_request(rq);
            *data.cast::<u32>() += 1;
        }
    }
    true
}

pub(crate) const OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
    queue_rq: Some(queue_rq),
    commit_rqs: Some(commit_rqs),
    complete: Some(complete),
    init_hctx: Some(init_hctx),
    init_request: Some(init_request),
    map_queues: Some(map_queues),
    poll: Some(poll),
    timeout: Some(timeout),
    // SAFETY: all-zero (no callback) is valid for the remaining members.
    ..unsafe { core::mem::zeroed() }
};

/// Completes I/O commands from the queue's interrupt.
pub(crate) struct IoCompleter;

impl Completer for IoCompleter {
    fn complete(queue: &Queue<'_>, cqe: &Cqe) {
        let inject = queue.hooks().take_for_completion();
        let mut cid = cqe.cid();
        if inject == Inject::BadCid {
            // A generation this tag is not at: looks like a stale completion.
            cid ^= 0x8000;
        }
        // Only after a real completion: a copy of an entry that fault
        // injection dropped would rightly be taken as the request's one.
        if complete_one(queue, cid, cqe) && inject == Inject::DupCid {
            // The same entry again, as from a controller that posts a
            // completion twice: the request has been completed (or handed
            // to its completion) already, so this must be refused as stale.
            complete_one(queue, cid, cqe);
        }
    }
}

/// Completes the request a completion entry with command id `cid` names, if
/// it is in flight at that generation; otherwise logs the entry and has the
/// controller reset.  Returns whether it completed a request.
fn complete_one(queue: &Queue<'_>, cid: u16, cqe: &Cqe) -> bool {
    let tag = cid & 0xfff;
    let generation = (cid >> 12) as u8;
    let Some(rq) = queue.tags.rq(tag) else {
        pr_err!(
            "nvme_dbbuf: queue {}: completion for invalid command id {:#x}: resetting\n",
            queue.qid,
            cid
        );
        queue.bad_completion();
        return false;
    };
    // The state first, then the generation `queue_rq` wrote before starting
    // the request: a stale entry racing with a reissue of the tag then sees
    // either not IN_FLIGHT or the new generation, never the new state with
    // the old generation.
    // SAFETY: `rq` is a request of our tag set (from its tags), alive while
    // the tag set is.
    if unsafe { in_flight_at(rq) }.map(|u| u & GENERATION) != Some(generation) {
        pr_err!(
            "nvme_dbbuf: queue {}: stale completion for command id {:#x}: resetting\n",
            queue.qid,
            cid
        );
        queue.bad_completion();
        return false;
    }
    // In flight at this entry's generation: the request is ours to
    // complete.
    // SAFETY: as above; only an atomic field of the PDU.
    unsafe { iod(rq) }
        .status
        .store(cqe.status().0, Ordering::Relaxed);
    // SAFETY: `rq` is ours, so is its queue.
    if unsafe { should_fake_timeout((*rq).q) } {
        return false;
    }
    if fault::lose_io() {
        pr_warn!(
            "nvme_dbbuf: queue {}: test hook: completion {:#x} lost\n",
            queue.qid,
            cid
        );
        return false;
    }
    // SAFETY: checked just above: in flight at this entry's generation, so
    // this is its one completion; a copy of the entry finds it COMPLETE,
    // IDLE or at a later generation.
    unsafe { bindings::blk_mq_complete_request(rq) };
    true
}
