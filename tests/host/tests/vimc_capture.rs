//! The capture node's pixel formats: enumeration, the code -> memory layout
//! map link validation uses, and format clamping.

use rfl_host_tests::vimc::formats::*;
use rfl_host_tests::vimc::pixfmt::*;

#[test]
fn enumerates_rgb_then_every_bayer_layout_once() {
    let all: Vec<u32> = (0..).map_while(capture_fourcc).collect();
    assert_eq!(all.len(), 2 + BAYER_MAPS.len() + 8);
    assert_eq!(&all[..2], &[fourcc::RGB24, fourcc::BGR24]);
    // vimc's order for what vimc has; the 32-bit layouts come last.
    for (m, f) in BAYER_MAPS.iter().zip(&all[2..]) {
        assert_eq!(m.fourcc, *f);
    }
    for (i, f) in all.iter().enumerate() {
        assert!(!all[..i].contains(f), "fourcc {f:#x} listed twice");
        assert!(fourcc_bpp(*f).is_some());
    }
}

#[test]
fn every_pipeline_code_has_a_capture_layout() {
    for m in BAYER_MAPS.iter() {
        assert_eq!(fourcc_of_code(m.code), Some(m.fourcc));
        assert_eq!(fourcc_bpp(m.fourcc), Some(m.bpp));
    }
    for m in RGB_MAPS.iter().filter(|m| m.bpp == 3) {
        let f = fourcc_of_code(m.code).unwrap();
        assert!(f == fourcc::RGB24 || f == fourcc::BGR24);
        // Red first in memory means RGB24.
        assert_eq!(f == fourcc::RGB24, m.offset[0] == 0, "code {:#x}", m.code);
    }
    assert_eq!(fourcc_of_code(0x2008), None); // YUYV8_2X8: not ours
}

#[test]
fn capture_format_clamps_like_vimc() {
    assert_eq!(
        adjust_capture(fourcc::BGR24, 640, 480),
        (fourcc::BGR24, 640, 480, 1920, 921600)
    );
    // Unknown layout -> RGB24; sizes clamp and round down to even.
    assert_eq!(
        adjust_capture(0x5659_5559, 1, 99999),
        (fourcc::RGB24, 16, 2160, 48, 48 * 2160)
    );
    assert_eq!(
        adjust_capture(fourcc::SBGGR10, 641, 481),
        (fourcc::SBGGR10, 640, 480, 1280, 1280 * 480)
    );
    assert_eq!(
        adjust_capture(fourcc::SRGGB8, 9999, 17),
        (fourcc::SRGGB8, 4096, 16, 4096, 4096 * 16)
    );
}

#[test]
fn the_32_bit_code_fits_every_32_bit_layout_and_only_those() {
    let argb = code::ARGB8888_1X32;
    assert_eq!(fourcc_of_code(argb), Some(fourcc::ARGB32)); // vimc's map
    assert_eq!(bytes_per_pixel(argb), Some(4));
    let all: Vec<u32> = (0..).map_while(capture_fourcc).collect();
    let fits: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&f| code_fits(argb, f))
        .collect();
    assert_eq!(fits.len(), 8);
    for f in &fits {
        assert_eq!(fourcc_bpp(*f), Some(4));
        assert_eq!(rgb_code_of_fourcc(*f), Some(argb));
    }
    // A 24-bit code fits its one layout.
    assert!(code_fits(code::BGR888_1X24, fourcc::BGR24));
    assert!(!code_fits(code::BGR888_1X24, fourcc::RGB24));
    assert!(!code_fits(code::RGB888_1X24, fourcc::XRGB32));
    assert_eq!(rgb_code_of_fourcc(fourcc::SBGGR8), None);
}

/// Bytes (R, G, B, filler) in memory order for each layout, from the
/// V4L2 documentation's tables (pixfmt-rgb.rst).
#[test]
fn widening_puts_each_colour_where_v4l2_says() {
    let rgb = [10u8, 20, 30, 11, 21, 31];
    let want: [(u32, [u8; 4]); 8] = [
        (fourcc::ABGR32, [30, 20, 10, 0xff]),
        (fourcc::XBGR32, [30, 20, 10, 0xff]),
        (fourcc::BGRA32, [0xff, 30, 20, 10]),
        (fourcc::BGRX32, [0xff, 30, 20, 10]),
        (fourcc::RGBA32, [10, 20, 30, 0xff]),
        (fourcc::RGBX32, [10, 20, 30, 0xff]),
        (fourcc::ARGB32, [0xff, 10, 20, 30]),
        (fourcc::XRGB32, [0xff, 10, 20, 30]),
    ];
    for (f, px) in want {
        let l = rgb32_layout(f).unwrap();
        let mut out = [0u8; 8];
        widen_rgb32(&rgb, &mut out, l);
        assert_eq!(&out[..4], &px, "{f:#x}");
        assert_eq!(
            out[4..]
                .iter()
                .filter(|&&b| b == 11 || b == 21 || b == 31)
                .count(),
            3
        );
        // A short output stops at whole pixels.
        let mut short = [0u8; 6];
        widen_rgb32(&rgb, &mut short, l);
        assert_eq!(&short[..4], &px);
        assert_eq!(&short[4..], &[0, 0]);
    }
}

#[test]
fn video_centric_offers_what_each_node_can_deliver() {
    let rgb: Vec<u32> = (0..).map_while(|i| centric_fourcc(true, i)).collect();
    assert_eq!(rgb.len(), 10);
    assert_eq!(&rgb[..2], &[fourcc::RGB24, fourcc::BGR24]);
    assert!(rgb.iter().all(|&f| rgb_code_of_fourcc(f).is_some()));
    let raw: Vec<u32> = (0..).map_while(|i| centric_fourcc(false, i)).collect();
    assert_eq!(raw, BAYER_MAPS.iter().map(|m| m.fourcc).collect::<Vec<_>>());
    // What the node cannot deliver becomes its first layout.
    assert_eq!(
        adjust_centric(true, fourcc::SBGGR8, 640, 480).0,
        fourcc::RGB24
    );
    assert_eq!(
        adjust_centric(false, fourcc::RGB24, 640, 480).0,
        fourcc::SRGGB8
    );
    assert_eq!(
        adjust_centric(true, fourcc::XBGR32, 3841, 2161),
        (fourcc::XBGR32, 3840, 2160, 3840 * 4, 3840 * 4 * 2160)
    );
    assert_eq!(
        adjust_centric(false, fourcc::SGRBG12, 20, 20),
        (fourcc::SGRBG12, 20, 20, 40, 800)
    );
}
