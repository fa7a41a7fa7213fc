//! `need_event` against a model that walks the ring, and the shadow slot
//! layout against the doorbell register layout.

use rfl_host_tests::nvme_eventidx::*;
use rfl_host_tests::nvme_spec::{cq_head_doorbell, sq_tail_doorbell, DOORBELL_BASE};

/// The definition: walking from `old` to `new` one entry at a time on a ring
/// of `depth` entries, did the index pass through `event_idx`?
fn model(depth: u32, event_idx: u32, new: u32, old: u32) -> bool {
    let mut i = old;
    while i != new {
        if i == event_idx {
            return true;
        }
        i = (i + 1) % depth;
    }
    false
}

#[test]
fn need_event_matches_ring_walk_for_all_small_queues() {
    let mut checked = 0u64;
    for depth in 2..=66u32 {
        for ei in 0..depth {
            for new in 0..depth {
                for old in 0..depth {
                    let want = model(depth, ei, new, old);
                    let got = need_event(ei as u16, new as u16, old as u16);
                    assert_eq!(got, want, "depth {depth} ei {ei} new {new} old {old}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 4_000_000);
}

#[test]
fn need_event_exhaustive_for_one_event_idx_at_full_u16_range() {
    // The queue sizes the driver uses (up to 2^16) wrap like u16 itself
    // at 65536: check every (new, old) pair for a few event indices.
    for ei in [0u16, 1, 255, 256, 32767, 65534, 65535] {
        for new in 0..=u16::MAX {
            for old in (0..=u16::MAX).step_by(251) {
                let span = new.wrapping_sub(old);
                let want = ei.wrapping_sub(old) < span;
                assert_eq!(
                    need_event(ei, new, old),
                    want,
                    "ei {ei} new {new} old {old}"
                );
            }
        }
    }
}

/// xorshift64*, to keep the tests dependency-free and reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u16(&mut self) -> u16 {
        (self.next() >> 48) as u16
    }
}

#[test]
fn need_event_properties_u16() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2_000_000 {
        let (ei, new, old) = (r.u16(), r.u16(), r.u16());
        let e = need_event(ei, new, old);
        // No movement never needs a ring.
        assert!(!need_event(ei, old, old));
        // Stepping by one rings exactly when the controller waits at `old`.
        assert_eq!(need_event(ei, old.wrapping_add(1), old), ei == old);
        // Splitting an update in two: the whole update needs a ring iff one
        // of the halves does (the ring points partition the walk).
        let span = new.wrapping_sub(old);
        if span > 0 {
            let mid = old.wrapping_add((u32::from(r.u16()) % (u32::from(span) + 1)) as u16);
            assert_eq!(
                e,
                need_event(ei, mid, old) || need_event(ei, new, mid),
                "ei {ei} old {old} mid {mid} new {new}"
            );
        }
        // Translation invariance: only differences matter.
        let k = r.u16();
        assert_eq!(
            e,
            need_event(ei.wrapping_add(k), new.wrapping_add(k), old.wrapping_add(k))
        );
    }
}

#[test]
fn event_idx_out_of_range() {
    // An EventIdx at or past the queue size names no entry.  Updates that
    // wrap past the end of the ring then always ring (safe); updates that do
    // not wrap never do, as for any index outside the entries they passed.
    let depth = 256u16;
    for ei in [depth, depth + 1, 0x8000, 0xffff] {
        for old in 0..depth {
            for new in 0..depth {
                let wraps = new < old;
                assert_eq!(
                    need_event(ei, new, old),
                    wraps,
                    "ei {ei} old {old} new {new}"
                );
            }
        }
    }
}

#[test]
fn slots_mirror_doorbell_registers() {
    for dstrd in 0..=15u8 {
        for qid in [0u16, 1, 2, 7, 63, 511] {
            assert_eq!(
                sq_slot(qid, dstrd) * 4,
                sq_tail_doorbell(qid, dstrd) - DOORBELL_BASE
            );
            assert_eq!(
                cq_slot(qid, dstrd) * 4,
                cq_head_doorbell(qid, dstrd) - DOORBELL_BASE
            );
        }
    }
    // QEMU hard-codes qid << 3 (stride 4 bytes).
    assert_eq!(sq_slot(5, 0) * 4, 5 << 3);
    assert_eq!(cq_slot(5, 0) * 4, (5 << 3) + 4);
}

#[test]
fn max_qid_is_the_last_pair_that_fits() {
    for dstrd in 0..=15u8 {
        for bytes in [0usize, 4, 8, 64, 4096, 8192, 65536] {
            match max_qid(bytes, dstrd) {
                None => assert!(cq_slot(0, dstrd) * 4 >= bytes, "{bytes} {dstrd}"),
                Some(q) => {
                    assert!(cq_slot(q, dstrd) * 4 < bytes, "{bytes} {dstrd} {q}");
                    if q < u16::MAX {
                        assert!(cq_slot(q + 1, dstrd) * 4 >= bytes, "{bytes} {dstrd} {q}");
                    }
                }
            }
        }
    }
    assert_eq!(max_qid(4096, 0), Some(511));
}
