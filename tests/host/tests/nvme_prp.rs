//! PRP construction against a model: the bytes the controller would transfer,
//! walking PRP1/PRP2/list as the spec says, must be exactly the segments'
//! bytes, in order, for every layout the virt boundary allows.

use rfl_host_tests::nvme_le::Le64;
use rfl_host_tests::nvme_prp::*;

const PAGE: u64 = 4096;
const LIST_DMA: u64 = 0xdead_0000;

/// The byte ranges a controller reads for a transfer of `total` bytes.
fn walk(p: &Prps, list: &[Le64], total: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut left = total;
    let first = (PAGE - (p.prp1 % PAGE)).min(left);
    out.push((p.prp1, first));
    left -= first;
    let entries: Vec<u64> = if left == 0 {
        vec![]
    } else if left <= PAGE {
        assert_eq!(p.list_len, 0, "two pages need no list");
        vec![p.prp2]
    } else {
        assert_eq!(p.prp2, LIST_DMA);
        list[..p.list_len].iter().map(|e| e.get()).collect()
    };
    for e in entries {
        assert_eq!(e % PAGE, 0, "entries after PRP1 are page aligned");
        let n = left.min(PAGE);
        out.push((e, n));
        left -= n;
    }
    assert_eq!(left, 0, "PRPs cover the whole transfer");
    out
}

/// Splits ranges into per-page pieces so two descriptions can be compared.
fn bytes(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    for &(a, n) in ranges {
        let mut a = a;
        let end = a + n;
        while a < end {
            let e = ((a / PAGE) + 1) * PAGE;
            let e = e.min(end);
            v.push((a, e - a));
            a = e;
        }
    }
    v
}

fn check(segs: &[(u64, u32)]) {
    let mut list = [Le64::ZERO; 512];
    let p = build(segs.iter().copied(), PAGE, &mut list, LIST_DMA).unwrap();
    let total: u64 = segs.iter().map(|s| s.1 as u64).sum();
    let want: Vec<(u64, u64)> = segs.iter().map(|&(a, n)| (a, n as u64)).collect();
    assert_eq!(
        bytes(&walk(&p, &list, total)),
        bytes(&want),
        "{segs:?} -> {p:?}"
    );
    // The driver takes a list block only when `needs_list` says so: it must
    // agree with what `build` does, and `build` must then need no list.
    let need = needs_list(segs[0].0, total as u32, PAGE);
    assert_eq!(need, p.list_len > 0, "{segs:?}: needs_list {need}, {p:?}");
    assert_eq!(
        build(segs.iter().copied(), PAGE, &mut [], 0).is_ok(),
        !need,
        "{segs:?}"
    );
}

#[test]
fn single_segments_all_offsets_and_lengths() {
    for off in [0u64, 8, 512, 4088, 4095] {
        for len in [
            1u32,
            8,
            512,
            4096 - off as u32,
            4096,
            4097,
            8192,
            12288 + 7,
            65536,
            1 << 20,
        ] {
            if off % 8 != 0 && off != 4095 {
                continue;
            }
            check(&[(0x10_0000 + off, len)]);
        }
    }
}

#[test]
fn multi_segment_layouts() {
    // Pseudo-random layouts that honour the virt boundary.
    let mut seed = 0x1234_5678u64;
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for _ in 0..20_000 {
        let n = 1 + rnd(8) as usize;
        let mut segs = Vec::new();
        for i in 0..n {
            let base = (1 + rnd(1 << 20)) * PAGE;
            let off = if i == 0 { rnd(PAGE / 512) * 512 } else { 0 };
            let pages = 1 + rnd(6);
            let mut len = pages * PAGE - off;
            if i == n - 1 {
                // Trim the tail, keeping at least one sector.
                len -= (rnd(PAGE / 512) * 512).min(len - 512);
            }
            segs.push((base + off, len as u32));
        }
        check(&segs);
    }
}

#[test]
fn refuses_what_it_cannot_describe() {
    let mut list = [Le64::ZERO; 4];
    // Second segment starts mid-page.
    assert_eq!(
        build([(0x1000, 4096), (0x5200, 512)], PAGE, &mut list, LIST_DMA),
        Err(PrpError::Gap)
    );
    // First segment ends mid-page but another follows.
    assert_eq!(
        build([(0x1000, 512), (0x5000, 512)], PAGE, &mut list, LIST_DMA),
        Err(PrpError::Gap)
    );
    // Too many pages for the list.
    assert_eq!(
        build([(0x1000, 6 * 4096)], PAGE, &mut list, LIST_DMA),
        Err(PrpError::TooLong)
    );
    assert_eq!(
        build([(0x1000, 5 * 4096)], PAGE, &mut list, LIST_DMA).map(|p| p.list_len),
        Ok(4)
    );
    assert_eq!(build([], PAGE, &mut list, LIST_DMA), Err(PrpError::Empty));
    assert_eq!(
        build([(0x1000, 0)], PAGE, &mut list, LIST_DMA),
        Err(PrpError::Empty)
    );
}

#[test]
fn max_transfer_always_fits() {
    let entries = 8u64;
    let max = max_transfer(PAGE, entries);
    for off in (0..PAGE).step_by(512) {
        let mut list = [Le64::ZERO; 8];
        assert!(
            build(
                [(0x4000 + off, (max - 0) as u32)],
                PAGE,
                &mut list,
                LIST_DMA
            )
            .is_ok(),
            "offset {off}"
        );
    }
}
