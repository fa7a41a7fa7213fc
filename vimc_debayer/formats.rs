// SPDX-License-Identifier: GPL-2.0

//! Media bus codes, the pixel-map table and pad format clamping.
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//!
//! The pixel-map table has one row per Bayer code: which colour sits at each
//! position of the 2x2 cell, and how the samples are stored.  The debayer and
//! the scaler read the row; nothing else in the pipeline knows about Bayer
//! orders, so one code path serves all of them.

use super::pixfmt::fourcc;

/// `MEDIA_BUS_FMT_*` values (include/uapi/linux/media-bus-format.h).
pub mod code {
    pub const RGB888_1X24: u32 = 0x100a;
    pub const RGB888_2X12_BE: u32 = 0x100b;
    pub const RGB888_2X12_LE: u32 = 0x100c;
    pub const ARGB8888_1X32: u32 = 0x100d;
    pub const RGB888_1X32_PADHI: u32 = 0x100f;
    pub const RGB888_1X7X4_SPWG: u32 = 0x1011;
    pub const RGB888_1X7X4_JEIDA: u32 = 0x1012;
    pub const BGR888_1X24: u32 = 0x1013;
    pub const GBR888_1X24: u32 = 0x1014;
    pub const BGR888_3X8: u32 = 0x101b;
    pub const RGB888_3X8: u32 = 0x101c;
    pub const SBGGR8_1X8: u32 = 0x3001;
    pub const SGRBG8_1X8: u32 = 0x3002;
    pub const SBGGR10_1X10: u32 = 0x3007;
    pub const SBGGR12_1X12: u32 = 0x3008;
    pub const SGRBG10_1X10: u32 = 0x300a;
    pub const SGBRG10_1X10: u32 = 0x300e;
    pub const SRGGB10_1X10: u32 = 0x300f;
    pub const SGBRG12_1X12: u32 = 0x3010;
    pub const SGRBG12_1X12: u32 = 0x3011;
    pub const SRGGB12_1X12: u32 = 0x3012;
    pub const SGBRG8_1X8: u32 = 0x3013;
    pub const SRGGB8_1X8: u32 = 0x3014;
}

/// A colour channel; also the index into an `[_; 3]` RGB triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Color {
    Red = 0,
    Green = 1,
    Blue = 2,
}

use Color::{Blue as B, Green as G, Red as R};

/// One row of the pixel-map table: a Bayer media bus code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BayerMap {
    pub code: u32,
    pub fourcc: u32,
    /// Significant bits per sample (8, 10 or 12).
    pub bits: u32,
    /// Bytes per stored sample: 1, or 2 little-endian with the sample in the
    /// low bits (`V4L2_PIX_FMT_SBGGR10` etc.).
    pub bpp: usize,
    /// Colour at (row % 2, column % 2).
    pub order: [[Color; 2]; 2],
}

impl BayerMap {
    /// Colour of the sample at (`row`, `col`).
    pub const fn color_at(&self, row: usize, col: usize) -> Color {
        self.order[row & 1][col & 1]
    }
}

const fn bayer(code: u32, fourcc: u32, bits: u32, order: [[Color; 2]; 2]) -> BayerMap {
    BayerMap {
        code,
        fourcc,
        bits,
        bpp: if bits > 8 { 2 } else { 1 },
        order,
    }
}

const BGGR: [[Color; 2]; 2] = [[B, G], [G, R]];
const GBRG: [[Color; 2]; 2] = [[G, B], [R, G]];
const GRBG: [[Color; 2]; 2] = [[G, R], [B, G]];
const RGGB: [[Color; 2]; 2] = [[R, G], [G, B]];

/// The pixel-map table: every Bayer code the sensor, debayer sink and scaler
/// accept.  Same order as in-tree vimc's debayer, so enumeration indices agree.
pub const BAYER_MAPS: [BayerMap; 12] = [
    bayer(code::SBGGR8_1X8, fourcc::SBGGR8, 8, BGGR),
    bayer(code::SGBRG8_1X8, fourcc::SGBRG8, 8, GBRG),
    bayer(code::SGRBG8_1X8, fourcc::SGRBG8, 8, GRBG),
    bayer(code::SRGGB8_1X8, fourcc::SRGGB8, 8, RGGB),
    bayer(code::SBGGR10_1X10, fourcc::SBGGR10, 10, BGGR),
    bayer(code::SGBRG10_1X10, fourcc::SGBRG10, 10, GBRG),
    bayer(code::SGRBG10_1X10, fourcc::SGRBG10, 10, GRBG),
    bayer(code::SRGGB10_1X10, fourcc::SRGGB10, 10, RGGB),
    bayer(code::SBGGR12_1X12, fourcc::SBGGR12, 12, BGGR),
    bayer(code::SGBRG12_1X12, fourcc::SGBRG12, 12, GBRG),
    bayer(code::SGRBG12_1X12, fourcc::SGRBG12, 12, GRBG),
    bayer(code::SRGGB12_1X12, fourcc::SRGGB12, 12, RGGB),
];

/// The table row for a media bus code.
pub fn bayer_map(code: u32) -> Option<&'static BayerMap> {
    BAYER_MAPS.iter().find(|m| m.code == code)
}

/// An RGB media bus code and where each colour goes in the 3-byte pixel
/// the debayer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RgbMap {
    pub code: u32,
    /// The layout it is captured as by default.
    pub fourcc: u32,
    /// Byte offset of red, green and blue (indexed by `Color`).
    pub offset: [usize; 3],
    /// Bytes per pixel after the debayer: 3, or 4 for the 32-bit code,
    /// whose 3-byte RGB is widened to the capture node's 32-bit layout.
    pub bpp: usize,
}

const fn rgb(code: u32) -> RgbMap {
    RgbMap {
        code,
        fourcc: fourcc::RGB24,
        offset: [0, 1, 2],
        bpp: 3,
    }
}

const fn bgr(code: u32) -> RgbMap {
    RgbMap {
        code,
        fourcc: fourcc::BGR24,
        offset: [2, 1, 0],
        bpp: 3,
    }
}

/// Debayer source codes, in in-tree vimc's enumeration order, then the
/// 32-bit code vimc's capture knows (its debayer does not offer it).  As
/// in vimc, the 24-bit bus variants are all stored as `RGB24` or `BGR24`.
pub const RGB_MAPS: [RgbMap; 11] = [
    rgb(code::GBR888_1X24),
    bgr(code::BGR888_1X24),
    bgr(code::BGR888_3X8),
    rgb(code::RGB888_1X24),
    rgb(code::RGB888_2X12_BE),
    rgb(code::RGB888_2X12_LE),
    rgb(code::RGB888_3X8),
    rgb(code::RGB888_1X7X4_SPWG),
    rgb(code::RGB888_1X7X4_JEIDA),
    rgb(code::RGB888_1X32_PADHI),
    RgbMap {
        code: code::ARGB8888_1X32,
        fourcc: fourcc::ARGB32,
        offset: [0, 1, 2],
        bpp: 4,
    },
];

/// The RGB map for a media bus code.
pub fn rgb_map(code: u32) -> Option<&'static RgbMap> {
    RGB_MAPS.iter().find(|m| m.code == code)
}

/// Bytes per pixel as stored in memory, for any code of the pipeline.
pub fn bytes_per_pixel(code: u32) -> Option<usize> {
    match (bayer_map(code), rgb_map(code)) {
        (Some(b), _) => Some(b.bpp),
        (None, Some(r)) => Some(r.bpp),
        (None, None) => None,
    }
}

/// Frame size limits, as in-tree vimc.
pub const MIN_WIDTH: u32 = 16;
pub const MIN_HEIGHT: u32 = 16;
pub const MAX_WIDTH: u32 = 4096;
pub const MAX_HEIGHT: u32 = 2160;

/// Clamps a requested frame size into the limits, rounded down to even (a
/// Bayer frame is whole 2x2 cells; vimc does the same for every code).
pub fn clamp_size(width: u32, height: u32) -> (u32, u32) {
    (
        width.clamp(MIN_WIDTH, MAX_WIDTH) & !1,
        height.clamp(MIN_HEIGHT, MAX_HEIGHT) & !1,
    )
}

/// `Debayer Mean Window Size` control limits (odd values only).
pub const WINDOW_MIN: u32 = 1;
pub const WINDOW_MAX: u32 = 25;
pub const WINDOW_DEFAULT: u32 = 3;

/// Whether the control accepts `s` as a window size.
pub const fn window_valid(s: u32) -> bool {
    s >= WINDOW_MIN && s <= WINDOW_MAX && s % 2 == 1
}

/// A rectangle in a frame (`struct v4l2_rect`, non-negative here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// Clamps a sink crop rectangle into a `sink_w` x `sink_h` frame the way
/// vimc's scaler does (`v4l2_rect_set_min_size` to the minimum frame size,
/// then `v4l2_rect_map_inside`).  For Bayer sinks every edge is also rounded
/// down to even, so the crop starts on a 2x2 cell and keeps the colour order.
pub fn clamp_crop(req: Rect, sink_w: u32, sink_h: u32, bayer: bool) -> Rect {
    let fit = |start: u32, len: u32, min: u32, bound: u32| -> (u32, u32) {
        let len = len.max(min).min(bound);
        let start = start.min(bound - len);
        if bayer {
            (start & !1, len & !1)
        } else {
            (start, len)
        }
    };
    let (left, width) = fit(req.left, req.width, MIN_WIDTH, sink_w);
    let (top, height) = fit(req.top, req.height, MIN_HEIGHT, sink_h);
    Rect {
        left,
        top,
        width,
        height,
    }
}

/// The part of a pad format the pipeline negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmt {
    pub width: u32,
    pub height: u32,
    pub code: u32,
}

/// Default format of the sensor, the debayer sink and the scaler's pads
/// before anyone sets one (vimc's size).
pub const DEFAULT_BAYER: Fmt = Fmt {
    width: 640,
    height: 480,
    code: code::SRGGB8_1X8,
};

/// Default debayer source code.
pub const DEFAULT_RGB: u32 = code::RGB888_1X24;

/// Sensor source pad and debayer sink pad: any table code (else the
/// default), size clamped.
pub fn adjust_bayer(req: Fmt) -> Fmt {
    let (width, height) = clamp_size(req.width, req.height);
    let code = if bayer_map(req.code).is_some() {
        req.code
    } else {
        DEFAULT_BAYER.code
    };
    Fmt {
        width,
        height,
        code,
    }
}

/// Debayer source pad: the sink's size; the requested RGB code if it is
/// one, else the current one.
pub fn adjust_debayer_source(req_code: u32, current_code: u32, sink: Fmt) -> Fmt {
    Fmt {
        code: if rgb_map(req_code).is_some() {
            req_code
        } else {
            current_code
        },
        ..sink
    }
}

/// Scaler sink pad: a Bayer or RGB code (else the default RGB one), size
/// clamped.
pub fn adjust_scaler_sink(req: Fmt) -> Fmt {
    let (width, height) = clamp_size(req.width, req.height);
    let code = if bytes_per_pixel(req.code).is_some() {
        req.code
    } else {
        DEFAULT_RGB
    };
    Fmt {
        width,
        height,
        code,
    }
}

/// Scaler source pad: the sink's code, any clamped size.
pub fn adjust_scaler_source(req: Fmt, sink: Fmt) -> Fmt {
    let (width, height) = clamp_size(req.width, req.height);
    Fmt {
        width,
        height,
        code: sink.code,
    }
}

/// The `index`th code a scaler pad enumerates: RGB codes, then Bayer.
pub fn scaler_code(index: usize) -> Option<u32> {
    RGB_MAPS
        .iter()
        .map(|m| m.code)
        .chain(BAYER_MAPS.iter().map(|m| m.code))
        .nth(index)
}
