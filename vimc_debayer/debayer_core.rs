// SPDX-License-Identifier: GPL-2.0

//! The debayer: every output pixel's red, green and blue are the means of the
//! samples of that colour in the S x S window centred on it (S odd), the
//! window clipped at the frame edges — the algorithm of in-tree vimc's
//! debayer, computed in O(1) per pixel instead of O(S²).
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//!
//! How: a sample's colour depends only on its (row parity, column parity)
//! class, which the pixel-map row names.  For each output row the code keeps,
//! per column, the sum of the window's samples on even rows and on odd rows
//! (updated by adding the row entering the window and subtracting the one
//! leaving it), then slides a window along the row over those column sums,
//! keeping the four class sums.  Each class's sample count is a product of
//! row and column counts.  Summing classes into colours through the table is
//! the only place the Bayer order appears.

use super::formats::{BayerMap, RgbMap};

/// Why a frame was not converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebayerError {
    /// Window size even, zero, or larger than the control allows.
    Window,
    /// A buffer is shorter than the geometry needs.
    Short,
    /// Zero width or height.
    Empty,
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

/// `u32`s of scratch `Debayer::run` needs: two column-sum rows.
pub const fn scratch_len(width: usize) -> usize {
    2 * width
}

/// Reads sample `i` of a row stored with `bpp` bytes per sample.
#[inline(always)]
fn sample(row: &[u8], bpp: usize, i: usize) -> u32 {
    if bpp == 1 {
        row.get(i).map_or(0, |&b| u32::from(b))
    } else {
        let lo = row.get(2 * i).map_or(0, |&b| u32::from(b));
        let hi = row.get(2 * i + 1).map_or(0, |&b| u32::from(b));
        lo | hi << 8
    }
}

/// Adds (or, with `sub`, subtracts) row `row` of the frame to the column
/// sums of its parity.
fn add_row(cols: &mut [u32], frame: &[u8], d: &Debayer<'_>, row: usize, sub: bool) {
    let stride = d.width * d.sink.bpp;
    let Some(src) = frame.get(row * stride..(row + 1) * stride) else {
        return;
    };
    let Some(dst) = cols.get_mut((row & 1) * d.width..((row & 1) + 1) * d.width) else {
        return;
    };
    let bpp = d.sink.bpp;
    for (i, c) in dst.iter_mut().enumerate() {
        let v = sample(src, bpp, i);
        *c = if sub {
            c.wrapping_sub(v)
        } else {
            c.wrapping_add(v)
        };
    }
}

/// Scales a mean of `bits`-bit samples to the 8-bit output.
#[inline(always)]
fn to_u8(mean: u32, bits: u32) -> u8 {
    // Means are at most 2^bits - 1, so the shifted value fits.
    (mean >> (bits - 8)) as u8
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
        scratch: &mut [u32],
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
        let r = self.window / 2;
        let cols = scratch
            .get_mut(..scratch_len(w))
            .ok_or(DebayerError::Short)?;
        cols.fill(0);
        // The window of output row 0 is rows 0..=r.
        for row in 0..(r + 1).min(h) {
            add_row(cols, frame, self, row, false);
        }
        let sel = class_masks(self.sink);
        for (y, out_row) in out.chunks_exact_mut(3 * w).take(h).enumerate() {
            if y > 0 {
                // Slide the window down: row y + r enters, row y - r - 1 leaves.
                if y + r < h {
                    add_row(cols, frame, self, y + r, false);
                }
                if y > r {
                    add_row(cols, frame, self, y - r - 1, true);
                }
            }
            let nrows = parity_counts(y.saturating_sub(r), (y + r).min(h - 1));
            let (ce, co) = cols.split_at(w);
            self.row(ce, co, nrows, &sel, out_row);
        }
        Ok(())
    }

    /// One output row from the column sums of even (`ce`) and odd (`co`)
    /// window rows.
    #[inline(always)]
    fn row(
        &self,
        ce: &[u32],
        co: &[u32],
        nrows: [u32; 2],
        sel: &[[u32; 4]; 3],
        out_row: &mut [u8],
    ) {
        let w = self.width;
        let r = self.window / 2;
        let off = self.source.offset;
        let bits = self.sink.bits;
        let col = |c: &[u32], x: usize| c.get(x).copied().unwrap_or(0);
        // s[p][q]: sum over window rows of parity p, columns of parity q.
        let mut s = [[0u32; 2]; 2];
        for x in 0..(r + 1).min(w) {
            s[0][x & 1] += col(ce, x);
            s[1][x & 1] += col(co, x);
        }
        for (x, px) in out_row.chunks_exact_mut(3).take(w).enumerate() {
            if x > 0 {
                let enter = x + r;
                if enter < w {
                    s[0][enter & 1] += col(ce, enter);
                    s[1][enter & 1] += col(co, enter);
                }
                if x > r {
                    let leave = x - r - 1;
                    s[0][leave & 1] -= col(ce, leave);
                    s[1][leave & 1] -= col(co, leave);
                }
            }
            let nc = parity_counts(x.saturating_sub(r), (x + r).min(w - 1));
            let class_sum = [s[0][0], s[0][1], s[1][0], s[1][1]];
            let class_n = [
                nrows[0] * nc[0],
                nrows[0] * nc[1],
                nrows[1] * nc[0],
                nrows[1] * nc[1],
            ];
            for (mask, &o) in sel.iter().zip(off.iter()) {
                let (mut sum, mut n) = (0, 0);
                for ((m, cs), cn) in mask.iter().zip(class_sum).zip(class_n) {
                    sum += m * cs;
                    n += m * cn;
                }
                // A window of 1 has one colour only; the others stay 0, as in vimc.
                let mean = sum.checked_div(n).unwrap_or(0);
                if let Some(b) = px.get_mut(o) {
                    *b = to_u8(mean, bits);
                }
            }
        }
    }
}

/// Per colour, which of the four (row parity, column parity) classes carry
/// it: 1 or 0, indexed `2 * p + q`.  This is where the table row is read.
fn class_masks(map: &BayerMap) -> [[u32; 4]; 3] {
    let mut sel = [[0u32; 4]; 3];
    for (c, mask) in sel.iter_mut().enumerate() {
        for (k, m) in mask.iter_mut().enumerate() {
            *m = u32::from(map.color_at(k >> 1, k & 1) as usize == c);
        }
    }
    sel
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
