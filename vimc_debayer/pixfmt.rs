// SPDX-License-Identifier: GPL-2.0

//! The capture nodes' pixel formats (memory layouts): which fourcc a media
//! bus code is captured as, the 32-bit RGB layouts, what each mode
//! enumerates, and format clamping.
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.

use super::formats::{bayer_map, clamp_size, code, rgb_map, BAYER_MAPS};

/// `V4L2_PIX_FMT_*` fourccs the capture nodes use.
pub mod fourcc {
    const fn f(s: &[u8; 4]) -> u32 {
        (s[0] as u32) | (s[1] as u32) << 8 | (s[2] as u32) << 16 | (s[3] as u32) << 24
    }
    pub const RGB24: u32 = f(b"RGB3");
    pub const BGR24: u32 = f(b"BGR3");
    // 32-bit RGB, named by the V4L2 macros; the comment is the byte
    // order in memory.
    pub const ABGR32: u32 = f(b"AR24"); // B G R A
    pub const XBGR32: u32 = f(b"XR24"); // B G R X
    pub const BGRA32: u32 = f(b"RA24"); // A B G R
    pub const BGRX32: u32 = f(b"RX24"); // X B G R
    pub const RGBA32: u32 = f(b"AB24"); // R G B A
    pub const RGBX32: u32 = f(b"XB24"); // R G B X
    pub const ARGB32: u32 = f(b"BA24"); // A R G B
    pub const XRGB32: u32 = f(b"BX24"); // X R G B
    pub const SBGGR8: u32 = f(b"BA81");
    pub const SGBRG8: u32 = f(b"GBRG");
    pub const SGRBG8: u32 = f(b"GRBG");
    pub const SRGGB8: u32 = f(b"RGGB");
    pub const SBGGR10: u32 = f(b"BG10");
    pub const SGBRG10: u32 = f(b"GB10");
    pub const SGRBG10: u32 = f(b"BA10");
    pub const SRGGB10: u32 = f(b"RG10");
    pub const SBGGR12: u32 = f(b"BG12");
    pub const SGBRG12: u32 = f(b"GB12");
    pub const SGRBG12: u32 = f(b"BA12");
    pub const SRGGB12: u32 = f(b"RG12");
}

/// A 32-bit RGB memory layout: byte offsets of red, green and blue in the
/// pixel, and of the fourth byte (alpha, written opaque, or padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb32 {
    pub fourcc: u32,
    pub offset: [usize; 3],
    pub filler: usize,
}

const fn rgb32(fourcc: u32, offset: [usize; 3], filler: usize) -> Rgb32 {
    Rgb32 {
        fourcc,
        offset,
        filler,
    }
}

/// Every 32-bit layout the capture node offers for `ARGB8888_1X32`.
pub const RGB32_LAYOUTS: [Rgb32; 8] = [
    rgb32(fourcc::XBGR32, [2, 1, 0], 3),
    rgb32(fourcc::ABGR32, [2, 1, 0], 3),
    rgb32(fourcc::XRGB32, [1, 2, 3], 0),
    rgb32(fourcc::ARGB32, [1, 2, 3], 0),
    rgb32(fourcc::RGBX32, [0, 1, 2], 3),
    rgb32(fourcc::RGBA32, [0, 1, 2], 3),
    rgb32(fourcc::BGRX32, [3, 2, 1], 0),
    rgb32(fourcc::BGRA32, [3, 2, 1], 0),
];

/// The 32-bit layout of a fourcc.
pub fn rgb32_layout(fourcc: u32) -> Option<&'static Rgb32> {
    RGB32_LAYOUTS.iter().find(|l| l.fourcc == fourcc)
}

/// Widens `rgb` (3-byte pixels, red first) into `out` in `layout`, the
/// fourth byte 0xff (opaque alpha; padding may hold anything).  Stops at
/// the shorter of the two.
pub fn widen_rgb32(rgb: &[u8], out: &mut [u8], layout: &Rgb32) {
    let [r, g, b] = layout.offset;
    for (s, d) in rgb.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        if let (Some(&sr), Some(&sg), Some(&sb)) = (s.first(), s.get(1), s.get(2)) {
            if let Some(x) = d.get_mut(r) {
                *x = sr;
            }
            if let Some(x) = d.get_mut(g) {
                *x = sg;
            }
            if let Some(x) = d.get_mut(b) {
                *x = sb;
            }
            if let Some(x) = d.get_mut(layout.filler) {
                *x = 0xff;
            }
        }
    }
}

/// Capture node pixel formats: the two 24-bit RGB memory layouts, every
/// Bayer layout (the scaler passes Bayer through), then the 32-bit RGB
/// layouts.
pub fn capture_fourcc(index: usize) -> Option<u32> {
    rgb_fourccs(index).or_else(|| {
        let i = index.checked_sub(2)?;
        match BAYER_MAPS.get(i) {
            Some(m) => Some(m.fourcc),
            None => RGB32_LAYOUTS
                .get(i.checked_sub(BAYER_MAPS.len())?)
                .map(|l| l.fourcc),
        }
    })
}

/// What video-centric mode offers on a node: RGB24, BGR24 and the 32-bit
/// layouts on the RGB node (after the debayer), the Bayer layouts on the
/// raw node (straight from the sensor).
pub fn centric_fourcc(rgb_node: bool, index: usize) -> Option<u32> {
    if rgb_node {
        rgb_fourccs(index).or_else(|| RGB32_LAYOUTS.get(index.checked_sub(2)?).map(|l| l.fourcc))
    } else {
        BAYER_MAPS.get(index).map(|m| m.fourcc)
    }
}

fn rgb_fourccs(index: usize) -> Option<u32> {
    match index {
        0 => Some(fourcc::RGB24),
        1 => Some(fourcc::BGR24),
        _ => None,
    }
}

/// The debayer source code that produces an RGB capture layout.
pub fn rgb_code_of_fourcc(f: u32) -> Option<u32> {
    if f == fourcc::RGB24 {
        Some(code::RGB888_1X24)
    } else if f == fourcc::BGR24 {
        Some(code::BGR888_1X24)
    } else if rgb32_layout(f).is_some() {
        Some(code::ARGB8888_1X32)
    } else {
        None
    }
}

/// Whether frames of the media bus code `code` can be captured as `f`:
/// its default layout, or any 32-bit layout for the 32-bit code.
pub fn code_fits(code: u32, f: u32) -> bool {
    fourcc_of_code(code) == Some(f) || (code == code::ARGB8888_1X32 && rgb32_layout(f).is_some())
}

/// The memory layout a media bus code is captured as.
pub fn fourcc_of_code(code: u32) -> Option<u32> {
    match (bayer_map(code), rgb_map(code)) {
        (Some(b), _) => Some(b.fourcc),
        (None, Some(r)) => Some(r.fourcc),
        (None, None) => None,
    }
}

/// Bytes per pixel of a capture pixel format.
pub fn fourcc_bpp(fourcc: u32) -> Option<usize> {
    if fourcc == fourcc::RGB24 || fourcc == fourcc::BGR24 {
        return Some(3);
    }
    if rgb32_layout(fourcc).is_some() {
        return Some(4);
    }
    BAYER_MAPS
        .iter()
        .find(|m| m.fourcc == fourcc)
        .map(|m| m.bpp)
}

/// A capture format after clamping, as vimc's capture node does: unknown
/// pixel formats become `RGB24`, sizes clamp and round down to even, and
/// the line is packed.  Returns (fourcc, width, height, bytesperline,
/// sizeimage).
pub fn adjust_capture(fourcc: u32, width: u32, height: u32) -> (u32, u32, u32, u32, u32) {
    let (f, bpp) = match fourcc_bpp(fourcc) {
        Some(b) => (fourcc, b as u32),
        None => (fourcc::RGB24, 3),
    };
    let (w, h) = clamp_size(width, height);
    (f, w, h, w * bpp, w * bpp * h)
}

/// A capture format in video-centric mode: the node's own layouts only
/// (anything else becomes the first: RGB24, or the sensor's default Bayer
/// layout on the raw node), sizes as `adjust_capture`.
pub fn adjust_centric(
    rgb_node: bool,
    f: u32,
    width: u32,
    height: u32,
) -> (u32, u32, u32, u32, u32) {
    let offered = (0..)
        .map_while(|i| centric_fourcc(rgb_node, i))
        .any(|o| o == f);
    let f = match (offered, rgb_node) {
        (true, _) => f,
        (false, true) => fourcc::RGB24,
        (false, false) => DEFAULT_BAYER_FOURCC,
    };
    adjust_capture(f, width, height)
}

/// The sensor's default code as a capture layout.
pub const DEFAULT_BAYER_FOURCC: u32 = fourcc::SRGGB8;
