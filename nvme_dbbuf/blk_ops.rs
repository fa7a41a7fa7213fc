// SPDX-License-Identifier: GPL-2.0

//! The driver's blk-mq operations (`mq::Operations`) and the completion
//! path from a completion entry to its request (`IoCompleter`).

use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::blk::{IoSet, Ns};
use crate::cmd::{self, Cqe};
use crate::fault::{self, Inject};
use crate::irq::Completer;
use crate::mq::{
    self, Completing, HwTags, MapType, Op, Pending, QueueMaps, Request, Spread, Started, Status,
    TimeoutReturn,
};
use crate::queue::Queue;
use crate::request::{
    build_discard, build_rw, build_write_zeroes, in_flight_at, next_use, Iod, Owned, ABORT_SENT,
    GENERATION,
};

/// The driver's blk-mq operations: the tag set's data is what the I/O
/// queues share and the controller's lease, each hardware context an I/O
/// queue, each request queue a namespace.
pub(crate) struct NvmeOps;

impl mq::Operations for NvmeOps {
    type SetData<'a> = IoSet<'a>;
    type HwData<'a> = Queue<'a>;
    type QueueData = Ns;
    type RequestData = Iod;
    type OwnedData = Owned;

    fn new_request_data() -> (Iod, Owned) {
        Iod::new()
    }

    fn hw_data<'a, 'b>(set: &'a Self::SetData<'b>, index: u32) -> Option<&'a Self::HwData<'b>> {
        set.shared.queues.get(index as usize).map(|q| &**q)
    }

    fn hw_tags<'a>(set: &'a IoSet<'_>, index: u32) -> Option<&'a HwTags<Self>> {
        Self::hw_data(set, index).map(|q| &q.tags)
    }

    fn queue_rq<'r>(
        queue: &Queue<'_>,
        ns: &Ns,
        set: &IoSet<'_>,
        mut rq: Pending<'r, Self>,
        last: bool,
    ) -> Result<Started<'r, Self>, (Pending<'r, Self>, Status)> {
        if queue.is_dead() {
            return Err((rq, Status::IOERR));
        }
        let shared = &*set.shared;
        let sqe = match rq.op() {
            Op::Read => build_rw(ns, shared, &mut rq, false),
            Op::Write => build_rw(ns, shared, &mut rq, true),
            Op::Flush => Ok(cmd::flush(ns.nsid)),
            Op::WriteZeroes => build_write_zeroes(ns, &rq),
            Op::Discard => build_discard(ns, shared, &mut rq),
            Op::Other => Err(Status::NOTSUPP),
        };
        let sqe = match sqe {
            Ok(s) => s,
            Err(sts) => {
                // Entries queued earlier in this batch still need their doorbell.
                if last {
                    queue.commit();
                }
                return Err((rq, sts));
            }
        };
        let cid = next_use(&mut rq);
        // The generation before the IN_FLIGHT state (`start` orders them,
        // `in_flight_at` reads them in the other order).
        let started = rq.start();
        queue.submit(&sqe.with_cid(cid), last);
        Ok(started)
    }

    fn commit_rqs(queue: &Queue<'_>) {
        queue.commit();
    }

    fn complete(set: &IoSet<'_>, queue: &Queue<'_>, _ns: &Ns, mut rq: Completing<'_, Self>) {
        let shared = &*set.shared;
        let cancelled = rq.data().cancelled.load(Ordering::Relaxed);
        let status = (!cancelled).then(|| cmd::Status(rq.data().status.load(Ordering::Relaxed)));
        let noretry = rq.failfast() || queue.is_dead();
        let owned = rq.owned();
        // Completed (or cancelled once the controller stopped): the
        // controller is done with the data.
        owned.data.release(shared);
        let max = *crate::module_parameters::max_retries.value_ref();
        if cmd::disposition(status, noretry, owned.retries, max) == cmd::Disposition::Retry {
            // Run it again; after a reset, once the queues are back (the kick
            // is held off until they are unquiesced).
            owned.retries += 1;
            rq.requeue();
            return;
        }
        rq.end(match status {
            Some(s) if s.is_success() => Status::OK,
            Some(s) if s.is_invalid_opcode() => Status::NOTSUPP,
            _ => Status::IOERR,
        });
    }

    fn timeout(set: &IoSet<'_>, queue: &Queue<'_>, rq: &Request<Self>) -> TimeoutReturn {
        // The use of the request that timed out, taken before the reap below
        // can complete it (and blk-mq send it again).
        let Some(this_use) = in_flight_at(rq) else {
            return TimeoutReturn::Done;
        };
        let generation = this_use & GENERATION;
        // Still in flight at that generation (not completed, or taken back by
        // a reset and sent again).
        let still_ours = || in_flight_at(rq).map(|u| u & GENERATION) == Some(generation);
        // A lost interrupt looks like a timeout: reap the queue first, as the
        // in-tree driver does, and only then blame the controller.
        queue.reap(|cqe| IoCompleter::complete(queue, cqe));
        if !still_ours() {
            pr_warn!(
                "nvme_dbbuf: queue {}: tag {} timed out, completion polled\n",
                queue.qid,
                rq.tag()
            );
            return TimeoutReturn::Done;
        }
        let abort_sent = this_use & ABORT_SENT != 0;
        let cid = (u16::from(generation) << 12) | (rq.tag() as u16 & 0xfff);
        let qid = u16::try_from(rq.hw_queue_num() + 1).unwrap_or(u16::MAX);
        // Called before the Abort goes out; marks this use only (a later one
        // has another generation, without the mark).
        let mark = || {
            let _ = rq.data().generation.compare_exchange(
                generation,
                generation | ABORT_SENT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        };
        // Revoked: the controller's teardown deleted the disks, so nothing
        // is in flight to hand back.
        let action = set
            .ctrl
            .with(|dev| dev.io_timeout(qid, cid, !abort_sent, still_ours, mark));
        match action {
            Ok(TimeoutAction::Done) => TimeoutReturn::Done,
            Ok(TimeoutAction::AbortSent | TimeoutAction::Later) | Err(_) => {
                TimeoutReturn::ResetTimer
            }
        }
    }

    fn map_queues(set: &IoSet<'_>, maps: &mut QueueMaps<'_>) {
        let shared = &set.shared;
        // The interrupt queues follow their vectors' affinity (a plain
        // spread when the vectors carry none: MSI/INTx); the poll queues
        // have none, so they get the plain spread.
        let irq = Spread::Irq {
            dev: shared.dev,
            first_vector: shared.irq_offset,
        };
        maps.set(MapType::Default, shared.irq_queues() as u32, irq);
        maps.set(MapType::Read, 0, Spread::Plain);
        maps.set(MapType::Poll, shared.polled as u32, Spread::Plain);
    }

    /// Reaps a poll queue for blk-mq (io_uring IOPOLL, `RWF_HIPRI`).
    fn poll(queue: &Queue<'_>) -> u32 {
        if !queue.cqe_pending() {
            return 0;
        }
        let n = queue.reap(|cqe| IoCompleter::complete(queue, cqe)).count;
        queue.count_polled(n);
        n
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

/// Hands a request in flight back to its completion (which requeues or
/// fails it) after a controller stopped: whether it was still to complete.
pub(crate) fn cancel(rq: &Request<NvmeOps>) -> bool {
    match rq.claim() {
        Some(claim) => {
            claim.data().cancelled.store(true, Ordering::Relaxed);
            // Dropping the claim completes the request.
            drop(claim);
            true
        }
        None => false,
    }
}

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
    let found = queue
        .tags
        .with_request(cid & 0xfff, |rq| complete_found(queue, rq, cid, cqe));
    found.unwrap_or_else(|| {
        pr_err!(
            "nvme_dbbuf: queue {}: completion for invalid command id {:#x}: resetting\n",
            queue.qid,
            cid
        );
        queue.bad_completion();
        false
    })
}

/// [`complete_one`] for the request its tag names.
fn complete_found(queue: &Queue<'_>, rq: &Request<NvmeOps>, cid: u16, cqe: &Cqe) -> bool {
    let generation = (cid >> 12) as u8;
    // The state first, then the generation `queue_rq` wrote before starting
    // the request: a stale entry racing with a reissue of the tag then sees
    // either not IN_FLIGHT or the new generation, never the new state with
    // the old generation.
    if in_flight_at(rq).map(|u| u & GENERATION) != Some(generation) {
        return stale(queue, cid);
    }
    // In flight at this entry's generation: the request is ours to
    // complete.
    rq.data().status.store(cqe.status().0, Ordering::Relaxed);
    if rq.should_fake_timeout() {
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
    // A copy of the entry finds the claim taken (or the request at a later
    // generation).
    match rq.claim() {
        Some(claim) => {
            drop(claim);
            true
        }
        None => stale(queue, cid),
    }
}

fn stale(queue: &Queue<'_>, cid: u16) -> bool {
    pr_err!(
        "nvme_dbbuf: queue {}: stale completion for command id {:#x}: resetting\n",
        queue.qid,
        cid
    );
    queue.bad_completion();
    false
}
