// SPDX-License-Identifier: GPL-2.0

//! The doorbell, the feature's one home: a queue's MMIO doorbell registers,
//! the shadow slots of Doorbell Buffer Config, the publish step that asks
//! EventIdx (`eventidx.rs`, shared with the host tests) whether the MMIO
//! write is still owed, and the counters that show what it decided.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::{
    io::Io,
    prelude::*,
    sync::{
        barrier::{mb, Full},
        Arc,
    },
};

use crate::ctrl::Bar0;
use crate::dbbuf::{DbBuf, WORDS};
use crate::eventidx;
use crate::spec;

/// A queue's two doorbell registers in BAR0.  Each queue holds a reference
/// to the mapping, so it stays mapped for as long as a queue could ring.
///
/// # Invariants
///
/// `sq` and `cq` are 4-byte aligned offsets inside the mapping.
pub(crate) struct Doorbells<'bound> {
    bar: Arc<Bar0<'bound>>,
    sq: usize,
    cq: usize,
}

impl<'bound> Doorbells<'bound> {
    /// Doorbells of queue `qid` in `bar`, whose doorbell stride is `dstrd`.
    pub(crate) fn new(bar: &Arc<Bar0<'bound>>, qid: u16, dstrd: u8) -> Result<Self> {
        let sq = spec::sq_tail_doorbell(qid, dstrd);
        let cq = spec::cq_head_doorbell(qid, dstrd);
        if cq + 4 > bar.size() {
            return Err(ENODEV);
        }
        Ok(Self {
            bar: bar.clone(),
            sq,
            cq,
        })
    }

    /// Moves the submission queue tail from `old` to `new` through `path`,
    /// writing the register only when owed; counted in `stats`.  The caller
    /// has stored the entries up to `new`.
    pub(crate) fn sq_tail(&self, path: &DbPath, new: u16, old: u16, stats: &Stats) {
        let counters = (&stats.sq_mmio, &stats.sq_shadow_only);
        self.publish(path, (new, old), self.sq, counters);
    }

    /// Moves the completion queue head from `old` to `new` as
    /// [`Self::sq_tail`] does; the caller has read the entries up to `new`.
    pub(crate) fn cq_head(&self, path: &DbPath, new: u16, old: u16, stats: &Stats) {
        let counters = (&stats.cq_mmio, &stats.cq_shadow_only);
        self.publish(path, (new, old), self.cq, counters);
    }

    fn publish(
        &self,
        path: &DbPath,
        (new, old): (u16, u16),
        register: usize,
        (mmio, shadow_only): (&AtomicU64, &AtomicU64),
    ) {
        if path.publish(new, old) {
            // writel() orders the SQ entry stores before the doorbell store
            // (the in-tree driver relies on the same).  Cannot fail: the
            // offset was checked against the BAR size in `new`.
            let _ = (&*self.bar).try_write32(new.into(), register);
            bump(mmio, 1);
        } else {
            bump(shadow_only, 1);
        }
    }
}

/// How a doorbell value reaches the controller.
pub(crate) enum DbPath {
    /// MMIO register write, every time.
    Mmio,
    /// Shadow Doorbell slot, plus MMIO only when EventIdx asks for it.
    Shadow(ShadowSlot),
    /// Shadow slot and MMIO every time: the admin queue under Doorbell
    /// Buffer Config, and the CQ heads of queues on the INTx pin (see
    /// Documentation/nvme-dbbuf.rst).
    ShadowAndMmio(ShadowSlot),
}

impl DbPath {
    /// Publishes a doorbell move from `old` to `new`; true if MMIO is owed.
    fn publish(&self, new: u16, old: u16) -> bool {
        match self {
            DbPath::Mmio => true,
            DbPath::Shadow(s) => s.publish(new, old),
            DbPath::ShadowAndMmio(s) => {
                s.store(new);
                true
            }
        }
    }
}

/// Per-queue counters for debugfs.  Updated under the queue's locks, read
/// without them; relaxed atomics because only the totals matter.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) submitted: AtomicU64,
    pub(crate) reaped: AtomicU64,
    pub(crate) sq_mmio: AtomicU64,
    pub(crate) cq_mmio: AtomicU64,
    pub(crate) sq_shadow_only: AtomicU64,
    pub(crate) cq_shadow_only: AtomicU64,
    /// Completions reaped by blk-mq's `->poll` (a poll queue's).
    pub(crate) polled: AtomicU64,
}

impl Stats {
    fn all(&self) -> [&AtomicU64; 7] {
        [
            &self.submitted,
            &self.reaped,
            &self.sq_mmio,
            &self.cq_mmio,
            &self.sq_shadow_only,
            &self.cq_shadow_only,
            &self.polled,
        ]
    }

    /// The counters in declaration order.
    pub(crate) fn snapshot(&self) -> [u64; 7] {
        self.all().map(|c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn clear(&self) {
        for c in self.all() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// One doorbell's Shadow Doorbell slot and EventIdx slot.
///
/// # Invariants
///
/// `index < WORDS`: inside both buffers.
#[derive(Clone)]
pub(crate) struct ShadowSlot {
    buf: Arc<DbBuf>,
    index: usize,
}

impl ShadowSlot {
    /// Slot `index` of `buf`, if inside it.
    pub(crate) fn new(buf: Arc<DbBuf>, index: usize) -> Option<Self> {
        (index < WORDS).then_some(Self { buf, index })
    }

    /// Publishes a doorbell value moving from `old` to `new` and says
    /// whether the MMIO doorbell must be written as well.
    ///
    /// For a submission queue the caller has stored the entries up to `new`;
    /// for a completion queue it has read the entries up to `new`.
    fn publish(&self, new: u16, old: u16) -> bool {
        // Barrier 1: the controller may be polling the shadow slot rather
        // than waiting for MMIO, so it can act on the new value as soon as it
        // sees it.  SQ: our entry stores must be visible before the new tail
        // is (it would fetch a stale entry).  CQ: our reads of the consumed
        // entries must be done before the new head is visible (it may
        // overwrite them).  A write barrier orders the first; ordering prior
        // loads against the store needs the full barrier.
        mb(Full);
        if self.buf.store_shadow(self.index, new).is_err() {
            // Cannot happen (type invariant); MMIO is always correct.
            return true;
        }
        // Barrier 2: the store of the new value must be globally visible
        // before we load EventIdx.  Otherwise we could read an old EventIdx
        // while the controller, which writes EventIdx and then re-reads the
        // shadow slot, still reads our old value: both sides conclude the
        // other will act and the doorbell is lost (the queue hangs).  Only a
        // full barrier orders a store before a later load.
        mb(Full);
        self.buf
            .load_eventidx(self.index)
            .map_or(true, |ei| eventidx::need_event(ei, new, old))
    }

    /// Publishes `new` without consulting EventIdx, for doorbells that
    /// always ring MMIO as well (the admin queue).
    fn store(&self, new: u16) {
        // Entries before the value, as in `publish`; the MMIO write that
        // follows is ordered after this store by writel() itself.
        mb(Full);
        // Cannot fail (type invariant); the MMIO write follows anyway.
        let _ = self.buf.store_shadow(self.index, new);
    }
}
