//! The debayer against a plain reference: the S x S window mean, clipped at
//! the edges, written the obvious way (in-tree vimc's loop), for all 12
//! Bayer codes, every window 1..=25, odd and even sizes down to 1x1.

use rfl_host_tests::vimc::debayer_core::*;
use rfl_host_tests::vimc::formats::*;
use rfl_host_tests::vimc::pixfmt::*;

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 20) as u32
        })
        .collect()
}

/// Stores samples as the sink code lays them out in memory.
fn pack(samples: &[u32], m: &BayerMap) -> Vec<u8> {
    let mask = (1u32 << m.bits) - 1;
    let mut v = Vec::new();
    for &s in samples {
        let s = s & mask;
        if m.bpp == 1 {
            v.push(s as u8);
        } else {
            v.extend_from_slice(&(s as u16).to_le_bytes());
        }
    }
    v
}

/// The reference: for each pixel, walk the clipped window, sum and count
/// per colour, divide; 10/12-bit means are scaled to 8 bits.
fn reference(samples: &[u32], w: usize, h: usize, s: usize, m: &BayerMap, o: &RgbMap) -> Vec<u8> {
    let mask = (1u32 << m.bits) - 1;
    let seek = s / 2;
    let mut out = vec![0u8; w * h * 3];
    for lin in 0..h {
        for col in 0..w {
            let mut rgb = [0u32; 3];
            let mut n = [0u32; 3];
            let mut wlin = lin.saturating_sub(seek);
            while wlin < lin + seek + 1 && wlin < h {
                let mut wcol = col.saturating_sub(seek);
                while wcol < col + seek + 1 && wcol < w {
                    let c = m.order[wlin % 2][wcol % 2] as usize;
                    rgb[c] += samples[wlin * w + wcol] & mask;
                    n[c] += 1;
                    wcol += 1;
                }
                wlin += 1;
            }
            for c in 0..3 {
                let mean = if n[c] > 0 { rgb[c] / n[c] } else { 0 };
                out[(lin * w + col) * 3 + o.offset[c]] = (mean >> (m.bits - 8)) as u8;
            }
        }
    }
    out
}

fn convert(
    bytes: &[u8],
    w: usize,
    h: usize,
    s: usize,
    m: &BayerMap,
    o: &RgbMap,
) -> Result<Vec<u8>, DebayerError> {
    let d = Debayer {
        width: w,
        height: h,
        window: s,
        sink: m,
        source: o,
    };
    // Pre-filled so that a byte the debayer forgets to write shows.
    let mut out = vec![0xa5u8; d.out_len()];
    let mut scratch = vec![0xdead_beef_dead_beefu64; scratch_len(w)];
    d.run(bytes, &mut out, &mut scratch)?;
    Ok(out)
}

const SIZES: [(usize, usize); 14] = [
    (1, 1),
    (1, 2),
    (2, 1),
    (1, 7),
    (7, 1),
    (2, 2),
    (3, 3),
    (4, 3),
    (5, 8),
    (16, 16),
    (17, 9),
    (13, 30),
    (31, 12),
    (40, 27),
];

#[test]
fn every_code_window_and_size_matches_reference() {
    let mut cases = 0;
    for (mi, m) in BAYER_MAPS.iter().enumerate() {
        for s in (1..=25).step_by(2) {
            for (si, &(w, h)) in SIZES.iter().enumerate() {
                let o = &RGB_MAPS[(mi + si + s) % RGB_MAPS.len()];
                let samples = noise((mi * 1000 + s * 37 + si) as u64, w * h);
                let got = convert(&pack(&samples, m), w, h, s, m, o).unwrap();
                let want = reference(&samples, w, h, s, m, o);
                assert!(
                    got == want,
                    "code {:#x} window {s} size {w}x{h} out {:#x}",
                    m.code,
                    o.code
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 12 * 13 * SIZES.len());
}

#[test]
fn extreme_values_do_not_overflow() {
    // All samples at full scale, the largest window, a frame taller and
    // wider than it: every mean must be full scale (255 after scaling).
    for m in &BAYER_MAPS {
        let (w, h) = (60, 41);
        let samples = vec![(1u32 << m.bits) - 1; w * h];
        let got = convert(&pack(&samples, m), w, h, 25, m, &RGB_MAPS[3]).unwrap();
        assert!(got.iter().all(|&b| b == 255), "code {:#x}", m.code);
    }
}

#[test]
fn window_one_keeps_only_the_sample_colour() {
    let m = bayer_map(code::SRGGB8_1X8).unwrap();
    let o = rgb_map(code::RGB888_1X24).unwrap();
    let samples: Vec<u32> = (0..16).map(|i| 10 + i).collect();
    let got = convert(&pack(&samples, m), 4, 4, 1, m, o).unwrap();
    // (0,0) is red, (0,1) green, (1,1) blue.
    assert_eq!(&got[0..3], &[10, 0, 0]);
    assert_eq!(&got[3..6], &[0, 11, 0]);
    assert_eq!(&got[15..18], &[0, 0, 15]);
}

#[test]
fn bgr_output_swaps_red_and_blue() {
    let m = bayer_map(code::SBGGR8_1X8).unwrap();
    let samples = noise(7, 20 * 10);
    let rgb = convert(
        &pack(&samples, m),
        20,
        10,
        5,
        m,
        rgb_map(code::RGB888_1X24).unwrap(),
    )
    .unwrap();
    let bgr = convert(
        &pack(&samples, m),
        20,
        10,
        5,
        m,
        rgb_map(code::BGR888_1X24).unwrap(),
    )
    .unwrap();
    for (a, b) in rgb.chunks(3).zip(bgr.chunks(3)) {
        assert_eq!([a[0], a[1], a[2]], [b[2], b[1], b[0]]);
    }
}

/// In-tree vimc's sensor (v4l2-tpg) stores a 10/12-bit Bayer sample as its
/// 8-bit value shifted up; scaling the mean back down gives exactly the
/// 8-bit result.  This is the documented difference from vimc (which keeps
/// the mean's low byte) and why the VM oracle compares 10/12-bit output of
/// ours with 8-bit output of vimc.
#[test]
fn high_depth_of_shifted_8bit_equals_8bit() {
    for hi in BAYER_MAPS.iter().filter(|m| m.bits > 8) {
        let lo = BAYER_MAPS
            .iter()
            .find(|m| m.bits == 8 && m.order == hi.order)
            .unwrap();
        let (w, h) = (22, 18);
        let samples = noise(hi.code as u64, w * h)
            .iter()
            .map(|v| v & 0xff)
            .collect::<Vec<_>>();
        let shifted: Vec<u32> = samples.iter().map(|v| v << (hi.bits - 8)).collect();
        for s in [1, 3, 11, 25] {
            let o = &RGB_MAPS[0];
            let a = convert(&pack(&samples, lo), w, h, s, lo, o).unwrap();
            let b = convert(&pack(&shifted, hi), w, h, s, hi, o).unwrap();
            assert!(a == b, "{:#x} vs {:#x} window {s}", lo.code, hi.code);
        }
    }
}

#[test]
fn bad_input_is_refused() {
    let m = &BAYER_MAPS[0];
    let o = &RGB_MAPS[0];
    let bytes = vec![0u8; 64];
    for s in [0, 2, 4, 26, 27] {
        assert_eq!(
            convert(&bytes, 8, 8, s, m, o),
            Err(DebayerError::Window),
            "window {s}"
        );
    }
    assert_eq!(convert(&bytes, 8, 9, 3, m, o), Err(DebayerError::Short));
    assert_eq!(convert(&bytes, 0, 8, 3, m, o), Err(DebayerError::Empty));
    let d = Debayer {
        width: 8,
        height: 8,
        window: 3,
        sink: m,
        source: o,
    };
    let mut out = vec![0u8; d.out_len() - 1];
    assert_eq!(
        d.run(&bytes, &mut out, &mut [0; 8]),
        Err(DebayerError::Short)
    );
    let mut out = vec![0u8; d.out_len()];
    assert_eq!(
        d.run(&bytes, &mut out, &mut [0; 7]),
        Err(DebayerError::Short)
    );
    // A table row that is not a Bayer pattern is refused, not guessed at.
    let bad = BayerMap {
        order: [[Color::Red, Color::Green], [Color::Red, Color::Blue]],
        ..*m
    };
    let d = Debayer { sink: &bad, ..d };
    assert_eq!(
        d.run(&bytes, &mut out, &mut [0; 8]),
        Err(DebayerError::Pattern)
    );
    // A byte order the output loop is not compiled for is refused.
    let gbr = RgbMap {
        offset: [1, 0, 2],
        ..*o
    };
    let d = Debayer {
        sink: m,
        source: &gbr,
        ..d
    };
    assert_eq!(
        d.run(&bytes, &mut out, &mut [0; 8]),
        Err(DebayerError::Layout)
    );
}

#[test]
fn parity_counts_match_counting() {
    for lo in 0..20 {
        for hi in lo..40 {
            let even = (lo..=hi).filter(|v| v % 2 == 0).count() as u32;
            assert_eq!(
                parity_counts(lo, hi),
                [even, (hi - lo + 1) as u32 - even],
                "{lo}..={hi}"
            );
        }
    }
}

#[test]
fn table_rows_are_consistent() {
    // One row per code; each 2x2 cell has one red, two greens, one blue, the
    // greens on a diagonal; bpp follows the depth.
    for (i, m) in BAYER_MAPS.iter().enumerate() {
        assert_eq!(BAYER_MAPS.iter().filter(|n| n.code == m.code).count(), 1);
        let cells: Vec<Color> = m.order.iter().flatten().copied().collect();
        assert_eq!(
            cells.iter().filter(|&&c| c == Color::Red).count(),
            1,
            "row {i}"
        );
        assert_eq!(
            cells.iter().filter(|&&c| c == Color::Blue).count(),
            1,
            "row {i}"
        );
        assert_eq!(
            m.order[0][0] == Color::Green,
            m.order[1][1] == Color::Green,
            "row {i}"
        );
        assert_eq!(m.bpp, if m.bits == 8 { 1 } else { 2 });
        assert_eq!(bytes_per_pixel(m.code), Some(m.bpp));
    }
    // Every order appears at every depth.
    for bits in [8, 10, 12] {
        let mut orders: Vec<_> = BAYER_MAPS
            .iter()
            .filter(|m| m.bits == bits)
            .map(|m| m.order)
            .collect();
        orders.dedup();
        assert_eq!(orders.len(), 4);
    }
    for o in &RGB_MAPS {
        let mut offs = o.offset;
        offs.sort();
        assert_eq!(offs, [0, 1, 2]);
        assert_eq!(bytes_per_pixel(o.code), Some(o.bpp));
        // Only the 32-bit code is widened after the debayer.
        assert_eq!(o.bpp == 4, o.code == code::ARGB8888_1X32);
    }
    // vimc's ten debayer source codes first, in its order.
    assert_eq!(RGB_MAPS[9].code, code::RGB888_1X32_PADHI);
    assert_eq!(bytes_per_pixel(0x2008), None);
}
