//! The capture node's pixel formats: enumeration, the code -> memory layout
//! map link validation uses, and format clamping.

use rfl_host_tests::vimc::formats::*;

#[test]
fn enumerates_rgb_then_every_bayer_layout_once() {
    let all: Vec<u32> = (0..).map_while(capture_fourcc).collect();
    assert_eq!(all.len(), 2 + BAYER_MAPS.len());
    assert_eq!(&all[..2], &[fourcc::RGB24, fourcc::BGR24]);
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
    for m in RGB_MAPS.iter() {
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
