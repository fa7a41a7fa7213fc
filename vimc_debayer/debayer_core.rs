// SPDX-License-Identifier: GPL-2.0

//! The debayer: every output pixel's red, green and blue are the means of the
//! samples of that colour in the S x S window centred on it (S odd), the
//! window clipped at the frame edges — the algorithm of in-tree vimc's
//! debayer, computed in O(1) per pixel instead of O(S²).
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//!
//! How: in a Bayer pattern red sits at one (row parity, column parity)
//! class, blue at the opposite one, green at the other two; the table row
//! says where red is, which is the only place the order appears.  Call rows
//! of red's parity "red rows".  For each output row the code keeps, per
//! column, the sum of the window's samples on red rows and on the other
//! rows, packed into one `u64` (updated by adding the row entering the
//! window and subtracting the one leaving it), then slides a window along
//! the row over those column sums, keeping two packed accumulators: columns
//! of red's parity (red | green) and of the other parity (green | blue).
//! Each colour's sample count is a product of row and column counts, and the
//! division by it is a multiplication by a reciprocal that is exact for
//! every sum that can occur.

use super::formats::{BayerMap, Color, RgbMap};

/// Why a frame was not converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebayerError {
    /// Window size even, zero, or larger than the control allows.
    Window,
    /// A buffer is shorter than the geometry needs.
    Short,
    /// Zero width or height.
    Empty,
    /// The table row is not a Bayer pattern (red and blue on one diagonal,
    /// green on the other).
    Pattern,
    /// The source layout is neither red, green, blue nor blue, green, red.
    Layout,
}

/// Geometry and formats of one conversion.
#[derive(Clone, Copy, Debug)]
pub struct Debayer<'a> {
    pub width: usize,
    pub height: usize,
    pub window: usize,
    pub sink: &'a BayerMap,
    pub source: &'a RgbMap,
}

/// `u64`s of scratch `Debayer::run` needs: one packed column sum per column.
pub const fn scratch_len(width: usize) -> usize {
    width
}

/// The samples of a row stored with `B` bytes per sample (1, or 2
/// little-endian).  A constant, and chunks of a constant size
/// (`as_chunks`, not `chunks_exact`, whose size the kernel build leaves a
/// run-time value tested per sample), so that each frame's loops are
/// compiled for its sample size without a branch per sample; an iterator,
/// so that the column loops below run without a bounds check per sample.
#[inline(always)]
fn samples<const B: usize>(row: &[u8]) -> impl Iterator<Item = u64> + '_ {
    row.as_chunks::<B>().0.iter().map(|s| {
        let lo = s.first().map_or(0, |&v| u64::from(v));
        if B == 1 {
            lo
        } else {
            lo | s.get(1).map_or(0, |&v| u64::from(v)) << 8
        }
    })
}

/// Scales a mean of `bits`-bit samples to the 8-bit output.
#[inline(always)]
fn to_u8(mean: u32, bits: u32) -> u8 {
    // Means are at most 2^bits - 1, so the shifted value fits.
    (mean >> (bits - 8)) as u8
}

/// Exact division by reciprocal: `div(sum, recip(n)) == sum / n` for every
/// `sum < 2^22` and `1 <= n <= 2^10` (a 25 x 25 window of 12-bit samples
/// stays below both).  With m = ceil(2^42 / n) = (2^42 + e) / n, e < n, the
/// product overshoots sum / n by sum * e / (n * 2^42) < 1 / n, which never
/// reaches the next integer.  `recip(0)` is 0, so a colour absent from the
/// window (window 1) comes out 0, as in vimc.
#[inline(always)]
const fn recip(n: u32) -> u64 {
    if n == 0 {
        0
    } else {
        (1u64 << 42).div_ceil(n as u64)
    }
}

#[inline(always)]
const fn div(sum: u64, rec: u64) -> u32 {
    ((sum * rec) >> 42) as u32
}

const LO: u64 = 0xffff_ffff;

/// Writes one output pixel from the packed accumulators `a` (red | green)
/// and `b` (green | blue), given each colour's reciprocal count; `SWAP`:
/// blue first (BGR), else red first (RGB), the only two byte orders of the
/// source codes.  Spelled out per colour (no loop): this runs once per pixel.
#[inline(always)]
fn emit<const SWAP: bool>(px: &mut [u8], a: u64, b: u64, rec: &[u64; 3], bits: u32) {
    let [rr, rg, rb] = *rec;
    let red = to_u8(div(a & LO, rr), bits);
    let green = to_u8(div((a >> 32) + (b & LO), rg), bits);
    let blue = to_u8(div(b >> 32, rb), bits);
    if let [p0, p1, p2, ..] = px {
        (*p0, *p1, *p2) = if SWAP {
            (blue, green, red)
        } else {
            (red, green, blue)
        };
    }
}

/// Where red is: (row parity, column parity), after checking that the row
/// is a Bayer pattern.
fn red_class(map: &BayerMap) -> Result<(usize, usize), DebayerError> {
    for (pr, qr) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        if map.color_at(pr, qr) == Color::Red {
            let ok = map.color_at(pr ^ 1, qr ^ 1) == Color::Blue
                && map.color_at(pr, qr ^ 1) == Color::Green
                && map.color_at(pr ^ 1, qr) == Color::Green;
            return if ok {
                Ok((pr, qr))
            } else {
                Err(DebayerError::Pattern)
            };
        }
    }
    Err(DebayerError::Pattern)
}

impl Debayer<'_> {
    /// Output frame size in bytes.
    pub const fn out_len(&self) -> usize {
        self.width * self.height * 3
    }

    /// Input frame size in bytes.
    pub const fn in_len(&self) -> usize {
        self.width * self.height * self.sink.bpp
    }

    /// Converts `frame` (Bayer, `sink` order) into `out` (`source` layout).
    /// `scratch` holds at least `scratch_len(width)` values; its contents on
    /// entry do not matter.
    pub fn run(
        &self,
        frame: &[u8],
        out: &mut [u8],
        scratch: &mut [u64],
    ) -> Result<(), DebayerError> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return Err(DebayerError::Empty);
        }
        if self.window % 2 == 0 || self.window > 25 {
            return Err(DebayerError::Window);
        }
        if frame.len() < self.in_len()
            || out.len() < self.out_len()
            || scratch.len() < scratch_len(w)
        {
            return Err(DebayerError::Short);
        }
        let red = red_class(self.sink)?;
        let cols = scratch
            .get_mut(..scratch_len(w))
            .ok_or(DebayerError::Short)?;
        let swap = match self.source.offset {
            [0, 1, 2] => false,
            [2, 1, 0] => true,
            _ => return Err(DebayerError::Layout),
        };
        match (self.sink.bpp, swap) {
            (1, false) => self.slide::<1, false>(frame, out, cols, red),
            (1, true) => self.slide::<1, true>(frame, out, cols, red),
            (_, false) => self.slide::<2, false>(frame, out, cols, red),
            (_, true) => self.slide::<2, true>(frame, out, cols, red),
        }
        Ok(())
    }

    /// `run` after its checks, for `B` bytes per sample and byte order
    /// `SWAP` (`emit`): slides the column sums down the frame, one output
    /// row per step.
    fn slide<const B: usize, const SWAP: bool>(
        &self,
        frame: &[u8],
        out: &mut [u8],
        cols: &mut [u64],
        (pr, qr): (usize, usize),
    ) {
        let (w, h) = (self.width, self.height);
        let r = self.window / 2;
        let stride = w * B;
        // A red row's samples go to the low half of a column sum, the
        // others' to the high half.
        let shift = |row: usize| 32 * (((row & 1) ^ pr) as u32);
        let line = |row: usize| frame.get(row * stride..(row + 1) * stride).unwrap_or(&[]);
        cols.fill(0);
        // The window of output row 0 is rows 0..=r.
        for row in 0..(r + 1).min(h) {
            let (src, sh) = (line(row), shift(row));
            for (c, v) in cols.iter_mut().zip(samples::<B>(src)) {
                *c += v << sh;
            }
        }
        for (y, out_row) in out.chunks_exact_mut(3 * w).take(h).enumerate() {
            if y > 0 {
                // Slide the window down: row y + r enters, row y - r - 1
                // leaves (one pass; add before subtract, so neither half
                // of a sum goes below zero or carries into the other).
                let enter = (y + r < h).then(|| (line(y + r), shift(y + r)));
                let leave = (y > r).then(|| (line(y - r - 1), shift(y - r - 1)));
                match (enter, leave) {
                    (Some((a, sa)), Some((b, sb))) => {
                        let ab = samples::<B>(a).zip(samples::<B>(b));
                        for (c, (va, vb)) in cols.iter_mut().zip(ab) {
                            *c = (*c + (va << sa)) - (vb << sb);
                        }
                    }
                    (Some((a, sa)), None) => {
                        for (c, v) in cols.iter_mut().zip(samples::<B>(a)) {
                            *c += v << sa;
                        }
                    }
                    (None, Some((b, sb))) => {
                        for (c, v) in cols.iter_mut().zip(samples::<B>(b)) {
                            *c -= v << sb;
                        }
                    }
                    (None, None) => {}
                }
            }
            // Rows in the window: red rows and the others.
            let (lo, hi) = (y.saturating_sub(r), (y + r).min(h - 1));
            let n = parity_counts(lo, hi);
            let rows = (n[pr], n[pr ^ 1]);
            self.row::<SWAP>(cols, rows, qr, out_row);
        }
    }

    /// One output row from the packed column sums.
    ///
    /// `a` accumulates columns of red's parity (low: red, high: green of
    /// the other rows), `b` the other columns (low: green of red rows,
    /// high: blue).  Away from the edges every window has the same column
    /// counts up to the parity of its first column, so the reciprocals are
    /// computed once per row for each parity; the edges take the general
    /// path, which clips the window and computes its own.
    #[inline(always)]
    fn row<const SWAP: bool>(&self, cols: &[u64], rows: (u32, u32), qr: usize, out_row: &mut [u8]) {
        let w = self.width;
        let r = self.window / 2;
        let bits = self.sink.bits;
        let col = |x: usize| cols.get(x).copied().unwrap_or(0);
        let recips = |lo: usize, hi: usize| window_recips(rows, qr, lo, hi);
        let mut a = 0u64;
        let mut b = 0u64;
        // Adds (or subtracts) column x to the accumulator of its parity.
        let step = |a: &mut u64, b: &mut u64, x: usize, add: bool| {
            let acc = if x & 1 == qr { a } else { b };
            *acc = if add { *acc + col(x) } else { *acc - col(x) };
        };
        for x in 0..(r + 1).min(w) {
            step(&mut a, &mut b, x, true);
        }
        // The general step at pixel x (window columns clipped to the row).
        let edge = |a: &mut u64, b: &mut u64, x: usize, px: &mut [u8]| {
            if x > 0 {
                if x + r < w {
                    step(a, b, x + r, true);
                }
                if x > r {
                    step(a, b, x - r - 1, false);
                }
            }
            let rec = recips(x.saturating_sub(r), (x + r).min(w - 1));
            emit::<SWAP>(px, *a, *b, &rec, bits);
        };
        // Pixels 0..m0: no column leaves yet; m0..m1: one enters and one
        // leaves, the window is whole; m1..w: columns only leave.
        let m0 = (r + 1).min(w);
        let m1 = w.saturating_sub(r).max(m0);
        if let Some(left) = out_row.get_mut(..3 * m0) {
            for (x, px) in left.chunks_exact_mut(3).enumerate() {
                edge(&mut a, &mut b, x, px);
            }
        }
        // Entering column e = x + r, leaving e - 2r - 1 (the other parity);
        // the window's first column x - r has e's parity.
        let recs = (&recips(qr, qr + 2 * r), &recips(qr ^ 1, (qr ^ 1) + 2 * r));
        let l0 = m0.saturating_sub(r + 1); // m0 - r - 1 whenever m1 > m0
        if let (Some(enter), Some(leave), Some(mid)) = (
            cols.get(m0 + r..m1 + r),
            cols.get(l0..l0 + (m1 - m0)),
            out_row.get_mut(3 * m0..3 * m1),
        ) {
            let first_other = (m0 + r) & 1 != qr;
            interior::<SWAP>(enter, leave, mid, (&mut a, &mut b), recs, first_other, bits);
        }
        if let Some(right) = out_row.get_mut(3 * m1..3 * w) {
            for (i, px) in right.chunks_exact_mut(3).enumerate() {
                edge(&mut a, &mut b, m1 + i, px);
            }
        }
    }
}

/// Per colour, the reciprocal of its sample count in a window of `rows`
/// (rows of red's parity, others) whose columns are lo..=hi; `qr` is red's
/// column parity.
#[inline(always)]
fn window_recips(rows: (u32, u32), qr: usize, lo: usize, hi: usize) -> [u64; 3] {
    let n = parity_counts(lo, hi);
    let (cq, co) = (n[qr], n[qr ^ 1]);
    [
        recip(rows.0 * cq),
        recip(rows.0 * co + rows.1 * cq),
        recip(rows.1 * co),
    ]
}

/// The interior of a row, where the window is whole: column sums `enter`
/// come in and `leave` go out, one each per pixel of `mid`.  `acc` is
/// (red's parity, other) as in `row`; `recs` the reciprocals when the
/// window starts on (red's parity, the other); `first_other`: the first
/// entering column is of the other parity.
#[inline(always)]
fn interior<const SWAP: bool>(
    enter: &[u64],
    leave: &[u64],
    mid: &mut [u8],
    (a, b): (&mut u64, &mut u64),
    (rec_same, rec_other): (&[u64; 3], &[u64; 3]),
    first_other: bool,
    bits: u32,
) {
    // Pixels in (same, other) pairs, so that no branch picks the
    // accumulator; a first pixel of the other parity goes alone.  (Not
    // `zip` with the chunks: its random-access length divides by the chunk
    // size, whose panic path objtool misreads.)
    let mut cols = enter.iter().zip(leave);
    let mut pxs = mid.chunks_exact_mut(3);
    if first_other {
        if let (Some(px), Some((&ce, &cl))) = (pxs.next(), cols.next()) {
            *b += ce;
            *a -= cl;
            emit::<SWAP>(px, *a, *b, rec_other, bits);
        }
    }
    while let (Some(px), Some((&ce, &cl))) = (pxs.next(), cols.next()) {
        *a += ce;
        *b -= cl;
        emit::<SWAP>(px, *a, *b, rec_same, bits);
        let (Some(px), Some((&ce, &cl))) = (pxs.next(), cols.next()) else {
            break;
        };
        *b += ce;
        *a -= cl;
        emit::<SWAP>(px, *a, *b, rec_other, bits);
    }
}

/// How many even and how many odd integers lie in `lo..=hi`.
#[inline(always)]
pub const fn parity_counts(lo: usize, hi: usize) -> [u32; 2] {
    let total = (hi - lo + 1) as u32;
    // Starting on parity p, the first of each pair is p.
    let first = total.div_ceil(2);
    let second = total / 2;
    if lo & 1 == 0 {
        [first, second]
    } else {
        [second, first]
    }
}
