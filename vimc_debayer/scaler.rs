// SPDX-License-Identifier: GPL-2.0

//! The scaler entity: sink crop (selection) and source size, for RGB and
//! Bayer codes.  The resampling itself is `scaler_core`.

use super::formats::{self, Fmt, Rect};
use super::media::sys;
use super::pad_ops::{PadOps, State};
use super::streamer::Streams;
use super::subdev::Subdev;
use kernel::prelude::*;

pub(crate) const SINK: u32 = 0;
pub(crate) const SRC: u32 = 1;

pub(crate) struct Scaler {
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

impl Scaler {
    pub(crate) fn new(streams: Streams) -> Self {
        Self { streams }
    }
}

fn full(f: Fmt) -> Rect {
    Rect {
        left: 0,
        top: 0,
        width: f.width,
        height: f.height,
    }
}

impl Subdev<Scaler, 2> {
    /// Active sink format, source format and crop, read under the state
    /// lock (for the streamer).
    pub(crate) fn active_config(&self) -> Option<(Fmt, Fmt, Rect)> {
        self.with_active(|st| Some((st.fmt(SINK)?, st.fmt(SRC)?, st.crop(SINK)?)))
            .flatten()
    }
}

impl PadOps<2> for Scaler {
    const NAME: &'static CStr = c"Scaler";
    const FUNCTION: u32 = sys::MEDIA_ENT_F_PROC_VIDEO_SCALER;
    const PAD_FLAGS: [u32; 2] = [sys::MEDIA_PAD_FL_SINK, sys::MEDIA_PAD_FL_SOURCE];
    const SELECTION: bool = true;

    fn init_state(state: &mut State<'_>) {
        let f = Fmt {
            code: formats::DEFAULT_RGB,
            ..formats::DEFAULT_BAYER
        };
        let _ = state.set_fmt(SINK, f);
        let _ = state.set_fmt(SRC, f);
        let _ = state.set_crop(SINK, full(f));
    }

    fn enum_code(_pad: u32, index: usize) -> Option<u32> {
        formats::scaler_code(index)
    }

    fn knows_code(_pad: u32, code: u32) -> bool {
        formats::bytes_per_pixel(code).is_some()
    }

    fn set_fmt(&self, state: &mut State<'_>, active: bool, pad: u32, req: Fmt) -> Result<Fmt> {
        if active && self.streams.any() {
            return Err(EBUSY);
        }
        let sink = state.fmt(SINK).ok_or(EINVAL)?;
        if pad == SINK {
            // A new sink format resets the crop and the source to it, as
            // vimc.
            let new = formats::adjust_scaler_sink(req);
            state.set_fmt(SINK, new)?;
            state.set_crop(SINK, full(new))?;
            state.set_fmt(SRC, new)?;
            Ok(new)
        } else {
            let new = formats::adjust_scaler_source(req, sink);
            state.set_fmt(SRC, new)?;
            Ok(new)
        }
    }

    fn get_selection(state: &State<'_>, pad: u32, target: u32) -> Result<Rect> {
        if pad != SINK {
            return Err(EINVAL);
        }
        match target {
            sys::V4L2_SEL_TGT_CROP => state.crop(SINK).ok_or(EINVAL),
            sys::V4L2_SEL_TGT_CROP_BOUNDS => state.fmt(SINK).map(full).ok_or(EINVAL),
            _ => Err(EINVAL),
        }
    }

    fn set_selection(
        &self,
        state: &mut State<'_>,
        active: bool,
        pad: u32,
        target: u32,
        r: Rect,
    ) -> Result<Rect> {
        if pad != SINK || target != sys::V4L2_SEL_TGT_CROP {
            return Err(EINVAL);
        }
        if active && self.streams.any() {
            return Err(EBUSY);
        }
        let s = state.fmt(SINK).ok_or(EINVAL)?;
        let bayer = formats::bayer_map(s.code).is_some();
        let r = formats::clamp_crop(r, s.width, s.height, bayer);
        state.set_crop(SINK, r)?;
        Ok(r)
    }
}
