// SPDX-License-Identifier: GPL-2.0

//! The debayer entity: a Bayer sink pad, an RGB source pad and the
//! "Debayer Mean Window Size" control.  The conversion itself is
//! `debayer_core`, driven by the pixel-map table row of the sink code.

use super::formats::{self, Fmt, BAYER_MAPS, RGB_MAPS};
use super::media::sys;
use super::pad_ops::{self, Ctrl, PadOps, State};
use super::streamer::Streams;
use super::subdev::{self, OpsTable};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;

pub(crate) const SINK: u32 = 0;
pub(crate) const SRC: u32 = 1;

/// vimc's window control id.
const CID_MEAN_WIN_SIZE: u32 = subdev::CID_VIMC_BASE + 1;

// The control framework clamps to min..max and rounds to the step, so an
// even request becomes the next odd size; the window can never be even.
#[allow(clippy::disallowed_methods)]
static CTRL_WINDOW: OpsTable<sys::v4l2_ctrl_config> = OpsTable(sys::v4l2_ctrl_config {
    id: CID_MEAN_WIN_SIZE,
    name: c"Debayer Mean Window Size".as_ptr().cast(),
    type_: sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_INTEGER,
    min: formats::WINDOW_MIN as i64,
    max: formats::WINDOW_MAX as i64,
    step: 2,
    def: formats::WINDOW_DEFAULT as i64,
    ..pad_ops::ctrl_config()
});

pub(crate) struct Debayer {
    /// Current window size (the control's value).
    pub(crate) window: AtomicU32,
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

impl Debayer {
    pub(crate) fn new(streams: Streams) -> Self {
        Self {
            window: AtomicU32::new(formats::WINDOW_DEFAULT),
            streams,
        }
    }
}

impl PadOps<2> for Debayer {
    const NAME: &'static CStr = c"Debayer A";
    const FUNCTION: u32 = sys::MEDIA_ENT_F_PROC_VIDEO_PIXEL_ENC_CONV;
    const PAD_FLAGS: [u32; 2] = [sys::MEDIA_PAD_FL_SINK, sys::MEDIA_PAD_FL_SOURCE];
    const CONTROLS: &'static [Ctrl] = &[Ctrl::Custom(&CTRL_WINDOW)];

    fn init_state(state: &mut State<'_>) {
        let sink = formats::DEFAULT_BAYER;
        let _ = state.set_fmt(SINK, sink);
        let _ = state.set_fmt(
            SRC,
            Fmt {
                code: formats::DEFAULT_RGB,
                ..sink
            },
        );
    }

    fn enum_code(pad: u32, index: usize) -> Option<u32> {
        if pad == SINK {
            BAYER_MAPS.get(index).map(|m| m.code)
        } else {
            RGB_MAPS.get(index).map(|m| m.code)
        }
    }

    fn knows_code(pad: u32, code: u32) -> bool {
        if pad == SINK {
            formats::bayer_map(code).is_some()
        } else {
            formats::rgb_map(code).is_some()
        }
    }

    fn set_fmt(&self, state: &mut State<'_>, active: bool, pad: u32, req: Fmt) -> Result<Fmt> {
        if active && self.streams.any() {
            return Err(EBUSY);
        }
        let (Some(sink), Some(src)) = (state.fmt(SINK), state.fmt(SRC)) else {
            return Err(EINVAL);
        };
        if pad == SINK {
            // The sink takes a table code and a clamped size; the source
            // follows its size and keeps its RGB code.
            let new = formats::adjust_bayer(req);
            crate::dyndbg::ddbg!(
                "debayer: sink {}x{} {:#x} -> {}x{} {:#x}\n",
                req.width,
                req.height,
                req.code,
                new.width,
                new.height,
                new.code
            );
            state.set_fmt(SINK, new)?;
            state.set_fmt(SRC, formats::adjust_debayer_source(src.code, src.code, new))?;
            Ok(new)
        } else {
            let new = formats::adjust_debayer_source(req.code, src.code, sink);
            crate::dyndbg::ddbg!("debayer: source code {:#x} -> {:#x}\n", req.code, new.code);
            state.set_fmt(SRC, new)?;
            Ok(new)
        }
    }

    fn s_ctrl(&self, id: u32, val: i32) -> Result {
        let val = u32::try_from(val).map_err(|_| ERANGE)?;
        if id != CID_MEAN_WIN_SIZE {
            return Err(EINVAL);
        }
        if !formats::window_valid(val) {
            return Err(ERANGE);
        }
        self.window.store(val, Ordering::Relaxed);
        crate::dyndbg::ddbg!("debayer: mean window size {}\n", val);
        Ok(())
    }
}
