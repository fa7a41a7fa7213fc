// SPDX-License-Identifier: GPL-2.0

//! The scaler: crops the sink frame and resizes the crop to the source size
//! by nearest-neighbour sampling, with in-tree vimc's mapping
//! `sink = out * crop_len / out_len + crop_start`.
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//!
//! Bayer frames (which vimc's scaler refuses) are resampled in whole 2x2
//! cells: the mapping runs on cell coordinates and each output pixel takes
//! the sample at its own position inside the chosen cell, so every output
//! pixel keeps the colour the Bayer order gives its position.

use super::formats::Rect;

/// Why a frame was not scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleError {
    /// The crop does not lie inside the sink frame, a size is zero, or (for
    /// Bayer) a crop edge or an output size is odd.
    Geometry,
    /// A buffer is shorter than the geometry needs.
    Short,
}

/// Geometry of one scaling.
#[derive(Clone, Copy, Debug)]
pub struct Scaler {
    pub sink_w: usize,
    pub sink_h: usize,
    pub crop: Rect,
    pub out_w: usize,
    pub out_h: usize,
    /// Bytes per pixel (the same on both sides).
    pub bpp: usize,
    /// Resample 2x2 cells instead of pixels.
    pub bayer: bool,
}

/// `u32`s of scratch `Scaler::run` needs: one source offset per output column.
pub const fn scratch_len(out_w: usize) -> usize {
    out_w
}

impl Scaler {
    /// Output frame size in bytes.
    pub const fn out_len(&self) -> usize {
        self.out_w * self.out_h * self.bpp
    }

    /// Input frame size in bytes.
    pub const fn in_len(&self) -> usize {
        self.sink_w * self.sink_h * self.bpp
    }

    fn check(&self) -> Result<(), ScaleError> {
        let c = &self.crop;
        let (l, t, w, h) = (
            c.left as usize,
            c.top as usize,
            c.width as usize,
            c.height as usize,
        );
        let inside = w > 0 && h > 0 && l + w <= self.sink_w && t + h <= self.sink_h;
        let sized = self.out_w > 0 && self.out_h > 0 && self.bpp > 0;
        let even = !self.bayer || (l | t | w | h | self.out_w | self.out_h) & 1 == 0;
        if inside && sized && even {
            Ok(())
        } else {
            Err(ScaleError::Geometry)
        }
    }

    /// Sink coordinate of output coordinate `o` along one axis.
    #[inline(always)]
    pub fn map(&self, o: usize, start: u32, len: u32, out_len: usize) -> usize {
        let (start, len) = (start as usize, len as usize);
        // `check` refused zero output sizes; `checked_div` keeps a panic
        // path (which objtool misreads as a fall-through) out of the code.
        if self.bayer {
            let cell = ((o / 2) * (len / 2)).checked_div(out_len / 2).unwrap_or(0);
            2 * (cell + start / 2) + (o & 1)
        } else {
            (o * len).checked_div(out_len).unwrap_or(0) + start
        }
    }

    /// Scales `frame` into `out`.  `scratch` holds at least
    /// `scratch_len(out_w)` values; its contents on entry do not matter.
    pub fn run(&self, frame: &[u8], out: &mut [u8], scratch: &mut [u32]) -> Result<(), ScaleError> {
        self.check()?;
        if frame.len() < self.in_len() || out.len() < self.out_len() {
            return Err(ScaleError::Short);
        }
        let bpp = self.bpp;
        let stride = self.sink_w * bpp;
        let c = self.crop;
        let row_len = self.out_w * bpp;
        // 1:1 without crop offset: whole rows.
        let identity = c.width as usize == self.out_w && c.height as usize == self.out_h;
        let xmap = scratch
            .get_mut(..scratch_len(self.out_w))
            .ok_or(ScaleError::Short)?;
        for (x, m) in xmap.iter_mut().enumerate() {
            // At most MAX_WIDTH * bpp: fits.
            *m = (self.map(x, c.left, c.width, self.out_w) * bpp) as u32;
        }
        for (y, out_row) in out.chunks_exact_mut(row_len).take(self.out_h).enumerate() {
            let sy = self.map(y, c.top, c.height, self.out_h);
            let Some(src_row) = frame.get(sy * stride..(sy + 1) * stride) else {
                return Err(ScaleError::Short);
            };
            if identity {
                let start = c.left as usize * bpp;
                let src = src_row
                    .get(start..start + row_len)
                    .ok_or(ScaleError::Short)?;
                out_row.copy_from_slice(src);
                continue;
            }
            // Indexed rather than chunks().zip(): zip's length arithmetic
            // divides by the chunk size, and the 7.3 objtool does not know
            // that panic (`panic_const_div_by_zero`) does not return.
            for (x, &sx) in xmap.iter().enumerate() {
                let sx = sx as usize;
                let src = src_row.get(sx..sx + bpp).ok_or(ScaleError::Short)?;
                let px = out_row
                    .get_mut(x * bpp..(x + 1) * bpp)
                    .ok_or(ScaleError::Short)?;
                px.copy_from_slice(src);
            }
        }
        Ok(())
    }
}
