// SPDX-License-Identifier: GPL-2.0

//! The sensor entity: one source pad producing any Bayer code of the
//! pixel-map table, at any size vimc allows, and vimc's sensor controls:
//! test pattern, flips, brightness, contrast, hue, saturation (drawn by
//! `tpg.rs`).

use super::formats::{self, Fmt, BAYER_MAPS};
use super::media::sys;
use super::pad_ops::{self, Ctrl, PadOps, State};
use super::streamer::Streams;
use super::subdev::{self, OpsTable};
use super::tpg::Look;
use kernel::{new_spinlock, prelude::*, sync::SpinLock};

/// Source pad.
pub(crate) const SRC: u32 = 0;

/// vimc's test pattern control id.
const CID_TEST_PATTERN: u32 = subdev::CID_VIMC_BASE;

// The menu is tpg's own list of pattern names, as vimc's.
#[allow(clippy::disallowed_methods)]
static CTRL_PATTERN: OpsTable<sys::v4l2_ctrl_config> = OpsTable(sys::v4l2_ctrl_config {
    id: CID_TEST_PATTERN,
    name: c"Test Pattern".as_ptr().cast(),
    type_: sys::v4l2_ctrl_type_V4L2_CTRL_TYPE_MENU,
    max: sys::tpg_pattern_TPG_PAT_NOISE as i64,
    qmenu: (&raw const sys::tpg_pattern_strings).cast(),
    ..pad_ops::ctrl_config()
});

#[pin_data]
pub(crate) struct Sensor {
    /// What the controls ask for, and how many times they changed (so a
    /// stream redraws its frame when they do).
    #[pin]
    look: SpinLock<(Look, u32)>,
    /// The pipeline's stream count (shared by every entity).
    pub(crate) streams: Streams,
}

impl Sensor {
    pub(crate) fn new(streams: Streams) -> impl PinInit<Self> {
        pin_init!(Self {
            look <- new_spinlock!((Look::DEFAULT, 0), "vimc_debayer sensor look"),
            streams,
        })
    }

    /// What the controls ask for now, and their change count.
    pub(crate) fn look(&self) -> (Look, u32) {
        *self.look.lock()
    }
}

impl PadOps<1> for Sensor {
    const NAME: &'static CStr = c"Sensor A";
    const FUNCTION: u32 = sys::MEDIA_ENT_F_CAM_SENSOR;
    const PAD_FLAGS: [u32; 1] = [sys::MEDIA_PAD_FL_SOURCE];
    // vimc's, in vimc's order (step 1).
    const CONTROLS: &'static [Ctrl] = &[
        Ctrl::Custom(&CTRL_PATTERN),
        Ctrl::Std(sys::V4L2_CID_VFLIP, 0, 1, 1, 0),
        Ctrl::Std(sys::V4L2_CID_HFLIP, 0, 1, 1, 0),
        Ctrl::Std(sys::V4L2_CID_BRIGHTNESS, 0, 255, 1, 128),
        Ctrl::Std(sys::V4L2_CID_CONTRAST, 0, 255, 1, 128),
        Ctrl::Std(sys::V4L2_CID_HUE, -128, 127, 1, 0),
        Ctrl::Std(sys::V4L2_CID_SATURATION, 0, 255, 1, 128),
    ];

    fn init_state(state: &mut State<'_>) {
        let _ = state.set_fmt(SRC, formats::DEFAULT_BAYER);
    }

    fn enum_code(_pad: u32, index: usize) -> Option<u32> {
        BAYER_MAPS.get(index).map(|m| m.code)
    }

    fn knows_code(_pad: u32, code: u32) -> bool {
        formats::bayer_map(code).is_some()
    }

    fn set_fmt(&self, state: &mut State<'_>, active: bool, pad: u32, req: Fmt) -> Result<Fmt> {
        if active && self.streams.any() {
            return Err(EBUSY);
        }
        let new = formats::adjust_bayer(req);
        state.set_fmt(pad, new)?;
        Ok(new)
    }

    fn s_ctrl(&self, id: u32, val: i32) -> Result {
        let mut g = self.look.lock();
        let l = &mut g.0;
        let byte = u8::try_from(val).unwrap_or(0);
        match id {
            CID_TEST_PATTERN => l.pattern = u32::try_from(val).unwrap_or(0),
            sys::V4L2_CID_HFLIP => l.hflip = val != 0,
            sys::V4L2_CID_VFLIP => l.vflip = val != 0,
            sys::V4L2_CID_BRIGHTNESS => l.brightness = byte,
            sys::V4L2_CID_CONTRAST => l.contrast = byte,
            sys::V4L2_CID_SATURATION => l.saturation = byte,
            sys::V4L2_CID_HUE => l.hue = i16::try_from(val).unwrap_or(0),
            _ => return Err(EINVAL),
        }
        g.1 = g.1.wrapping_add(1);
        drop(g);
        crate::dyndbg::ddbg!("sensor: control {:#x} = {}\n", id, val);
        Ok(())
    }
}
