// SPDX-License-Identifier: GPL-2.0

//! The sensor's test pattern: the kernel's v4l2-tpg, set up as in-tree
//! vimc's sensor sets it up (`vimc_sensor_tpg_s_format` and its control
//! handler), drawn into a Bayer frame.

use super::formats::{self, BayerMap};
use super::media::sys;
use kernel::{prelude::*, types::Opaque};

/// What vimc's sensor controls set on the tpg.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Look {
    /// `enum tpg_pattern`.
    pub(crate) pattern: u32,
    pub(crate) hflip: bool,
    pub(crate) vflip: bool,
    pub(crate) brightness: u8,
    pub(crate) contrast: u8,
    pub(crate) hue: i16,
    pub(crate) saturation: u8,
}

impl Look {
    /// The controls' defaults (vimc's).
    pub(crate) const DEFAULT: Look = Look {
        pattern: 0,
        hflip: false,
        vflip: false,
        brightness: 128,
        contrast: 128,
        hue: 0,
        saturation: 128,
    };

    /// Whether the pattern is the same every frame (all but noise).
    pub(crate) fn is_static(&self) -> bool {
        self.pattern != sys::tpg_pattern_TPG_PAT_NOISE
    }
}

/// A v4l2-tpg set up for one Bayer frame format, kept for a stream (as
/// vimc's sensor keeps one): drawing allocates nothing.
///
/// # Invariants
///
/// `t` is initialised and allocated (`tpg_init`, `tpg_alloc` for
/// `MAX_WIDTH`) and set up for `w` x `h` of `m`, used only through `&mut
/// self`, and freed once, in `drop`.
pub(crate) struct Tpg {
    t: Pin<KBox<Opaque<sys::tpg_data>>>,
    m: &'static BayerMap,
    w: u32,
    h: u32,
}

// SAFETY: the tpg is plain memory owned by `self`, used by whoever holds
// `&mut self` (the streaming thread).
unsafe impl Send for Tpg {}

impl Tpg {
    /// A tpg for `w` x `h` frames of the Bayer code `m`.
    pub(crate) fn new(m: &'static BayerMap, w: usize, h: usize) -> Result<Self> {
        let (w, h) = (
            u32::try_from(w).map_err(|_| EINVAL)?,
            u32::try_from(h).map_err(|_| EINVAL)?,
        );
        // The tpg's line buffers are allocated for `MAX_WIDTH`, and its
        // noise wants at least 2 pixels: only the sizes the sensor allows.
        if !(formats::MIN_WIDTH..=formats::MAX_WIDTH).contains(&w)
            || !(formats::MIN_HEIGHT..=formats::MAX_HEIGHT).contains(&h)
        {
            return Err(EINVAL);
        }
        let t: Pin<KBox<Opaque<sys::tpg_data>>> =
            KBox::pin_init(pin_init::init_zeroed(), GFP_KERNEL)?;
        // SAFETY: `t` is ours and zeroed; `w` fits the lines `tpg_alloc`
        // makes (checked above); `tpg_free` accepts a tpg whose allocation
        // failed part-way (its line pointers start NULL).
        unsafe {
            sys::tpg_init(t.get(), w, h);
            let ret = sys::tpg_alloc(t.get(), formats::MAX_WIDTH);
            if ret != 0 {
                sys::tpg_free(t.get());
                return Err(Error::from_errno(ret));
            }
            // As vimc's sensor does with a format
            // (`vimc_sensor_tpg_s_format`): the fourcc first, so the line
            // layout is the Bayer one (vimc reaches the same state on its
            // second format set).
            sys::tpg_reset_source(t.get(), w, h, sys::v4l2_field_V4L2_FIELD_NONE);
            sys::tpg_s_fourcc(t.get(), m.fourcc);
            set_layout(&mut *t.get(), m, w, h);
        }
        Ok(Self { t, m, w, h })
    }

    /// Draws `look` into `out`, a whole frame.
    pub(crate) fn draw(&mut self, look: &Look, out: &mut [u8]) -> Result {
        if out.len() < self.w as usize * self.h as usize * self.m.bpp {
            return Err(EINVAL);
        }
        // SAFETY: by the invariants the tpg is ours, no other reference to
        // it exists; `out` holds a whole frame at the bytes per line `new`
        // set (checked above).
        unsafe {
            let t = self.t.get();
            if apply(&mut *t, look) {
                sys::tpg_update_mv_step(t);
                (*t).recalc_lines = true;
            }
            sys::tpg_fill_plane_buffer(t, 0, 0, out.as_mut_ptr());
        }
        Ok(())
    }
}

impl Drop for Tpg {
    fn drop(&mut self) {
        // SAFETY: allocated by `new` (the invariants), freed only here.
        unsafe { sys::tpg_free(self.t.get()) };
    }
}

/// vimc's control handler on the tpg: the static inline setters
/// `tpg_s_pattern`, `_hflip`, `_vflip`, `_brightness`, `_contrast`, `_hue`
/// and `_saturation`, redone here; whether the horizontal flip changed
/// (then the caller updates the tpg's steps, as `tpg_s_hflip` does).
fn apply(tp: &mut sys::tpg_data, look: &Look) -> bool {
    tp.pattern = look.pattern;
    tp.brightness = look.brightness;
    tp.contrast = look.contrast;
    tp.saturation = look.saturation;
    tp.hue = look.hue.clamp(-128, 128);
    tp.recalc_colors = true;
    tp.vflip = look.vflip;
    let changed = tp.hflip != look.hflip;
    tp.hflip = look.hflip;
    changed
}

/// The rest of what vimc's sensor does with a format: the tpg's static
/// inline setters for line layout and colorimetry, redone here.
fn set_layout(t: &mut sys::tpg_data, m: &BayerMap, w: u32, h: u32) {
    // tpg_s_bytesperline(tpg, 0, w * bpp)
    let bpl = w * m.bpp as u32;
    let planes = if t.interleaved { 1 } else { t.planes as usize };
    for p in 0..planes.min(t.bytesperline.len()) {
        let tw = t.twopixelsize.get(p).copied().unwrap_or(1);
        let t0 = t.twopixelsize[0].max(1);
        let hd = u32::from(t.hdownsampling.get(p).copied().unwrap_or(1).max(1));
        if let Some(b) = t.bytesperline.get_mut(p) {
            *b = bpl * tw / t0 / hd;
        }
    }
    if t.interleaved {
        t.bytesperline[1] = t.bytesperline[0];
    }
    t.buf_height = h;
    t.field = sys::v4l2_field_V4L2_FIELD_NONE;
    t.field_alternate = false;
    let colorimetry = [
        (&mut t.colorspace, sys::v4l2_colorspace_V4L2_COLORSPACE_SRGB),
        (&mut t.ycbcr_enc, 0),
        (&mut t.quantization, 0),
        (&mut t.xfer_func, 0),
    ];
    let mut changed = false;
    for (field, v) in colorimetry {
        if *field != v {
            *field = v;
            changed = true;
        }
    }
    if changed {
        t.recalc_colors = true;
    }
}
