//! The scaler against vimc's mapping written out per pixel, for up- and
//! down-scaling with crops; Bayer scaling against the colour pattern; pad
//! format and crop clamping.

use rfl_host_tests::vimc::formats::*;
use rfl_host_tests::vimc::pixfmt::*;
use rfl_host_tests::vimc::scaler_core::*;

fn frame(w: usize, h: usize, bpp: usize) -> Vec<u8> {
    (0..w * h * bpp).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn scale(sc: &Scaler, src: &[u8]) -> Result<Vec<u8>, ScaleError> {
    let mut out = vec![0x5au8; sc.out_len()];
    let mut scratch = vec![0u32; scratch_len(sc.out_w)];
    sc.run(src, &mut out, &mut scratch)?;
    Ok(out)
}

/// vimc_scaler_fill_src_frame, one pixel at a time.
fn reference(sc: &Scaler, src: &[u8]) -> Vec<u8> {
    let r = sc.crop;
    let mut out = Vec::new();
    for y in 0..sc.out_h {
        let sy = y * r.height as usize / sc.out_h + r.top as usize;
        for x in 0..sc.out_w {
            let sx = x * r.width as usize / sc.out_w + r.left as usize;
            let i = (sy * sc.sink_w + sx) * sc.bpp;
            out.extend_from_slice(&src[i..i + sc.bpp]);
        }
    }
    out
}

fn rect(left: u32, top: u32, width: u32, height: u32) -> Rect {
    Rect {
        left,
        top,
        width,
        height,
    }
}

#[test]
fn rgb_up_and_down_scaling_match_vimc() {
    let (sw, sh) = (40, 30);
    let src = frame(sw, sh, 4);
    let crops = [
        rect(0, 0, 40, 30),
        rect(3, 5, 17, 11),
        rect(39, 29, 1, 1),
        rect(0, 0, 16, 16),
        rect(10, 2, 30, 28),
    ];
    let outs = [
        (40, 30),
        (16, 16),
        (80, 60),
        (123, 7),
        (1, 1),
        (7, 123),
        (20, 15),
    ];
    let mut n = 0;
    for c in crops {
        for (ow, oh) in outs {
            for bpp in [1, 2, 3, 4] {
                let src = &src[..sw * sh * bpp];
                let sc = Scaler {
                    sink_w: sw,
                    sink_h: sh,
                    crop: c,
                    out_w: ow,
                    out_h: oh,
                    bpp,
                    bayer: false,
                };
                assert_eq!(
                    scale(&sc, src).unwrap(),
                    reference(&sc, src),
                    "{c:?} -> {ow}x{oh} bpp {bpp}"
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 5 * 7 * 4);
}

#[test]
fn identity_is_a_copy_of_the_crop() {
    let src = frame(32, 20, 3);
    let sc = Scaler {
        sink_w: 32,
        sink_h: 20,
        crop: rect(32 - 16, 4, 16, 16),
        out_w: 16,
        out_h: 16,
        bpp: 3,
        bayer: false,
    };
    let out = scale(&sc, &src).unwrap();
    for y in 0..16 {
        let s = ((y + 4) * 32 + 16) * 3;
        assert_eq!(&out[y * 48..(y + 1) * 48], &src[s..s + 48]);
    }
}

#[test]
fn bayer_scaling_keeps_the_colour_pattern() {
    // Each sample encodes its colour (low 2 bits) and position, so the test
    // can tell which sample landed where.
    for m in &BAYER_MAPS {
        let (sw, sh) = (36usize, 24usize);
        let mut src = Vec::new();
        for y in 0..sh {
            for x in 0..sw {
                let v = ((x + y * sw) as u16) << 2 | m.color_at(y, x) as u16;
                if m.bpp == 1 {
                    src.push(v as u8);
                } else {
                    src.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        for c in [rect(0, 0, 36, 24), rect(4, 2, 20, 16), rect(34, 22, 2, 2)] {
            for (ow, oh) in [(36, 24), (72, 48), (18, 12), (2, 2), (50, 10), (10, 50)] {
                let sc = Scaler {
                    sink_w: sw,
                    sink_h: sh,
                    crop: c,
                    out_w: ow,
                    out_h: oh,
                    bpp: m.bpp,
                    bayer: true,
                };
                let out = scale(&sc, &src).unwrap();
                for y in 0..oh {
                    for x in 0..ow {
                        let i = (y * ow + x) * m.bpp;
                        let v = if m.bpp == 1 {
                            out[i] as u16
                        } else {
                            u16::from_le_bytes([out[i], out[i + 1]])
                        };
                        // The crop starts on a cell, so position (y, x) of the
                        // output has the colour the order gives it.
                        assert_eq!(
                            v & 3,
                            m.color_at(y, x) as u16,
                            "{:#x} {c:?} -> {ow}x{oh} at {x},{y}",
                            m.code
                        );
                        if m.bpp == 2 {
                            // Whole cells: the sample is from the mapped cell,
                            // same position inside it.
                            let pos = (v >> 2) as usize;
                            let (sx, sy) = (pos % sw, pos / sw);
                            let cx =
                                (x / 2) * (c.width as usize / 2) / (ow / 2) + c.left as usize / 2;
                            let cy =
                                (y / 2) * (c.height as usize / 2) / (oh / 2) + c.top as usize / 2;
                            assert_eq!((sx, sy), (2 * cx + x % 2, 2 * cy + y % 2));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn plain_nearest_neighbour_would_break_bayer() {
    // Why cells: vimc's per-pixel mapping, on a 3:2 downscale, puts samples
    // of the wrong colour at some positions.
    let m = bayer_map(code::SRGGB8_1X8).unwrap();
    let (sw, sh) = (36, 24);
    let src: Vec<u8> = (0..sh)
        .flat_map(|y| (0..sw).map(move |x| m.color_at(y, x) as u8))
        .collect();
    let sc = Scaler {
        sink_w: sw,
        sink_h: sh,
        crop: rect(0, 0, 36, 24),
        out_w: 24,
        out_h: 16,
        bpp: 1,
        bayer: false,
    };
    let out = scale(&sc, &src).unwrap();
    let wrong = (0..16)
        .flat_map(|y| (0..24).map(move |x| (x, y)))
        .filter(|&(x, y)| out[y * 24 + x] != m.color_at(y, x) as u8)
        .count();
    assert!(wrong > 0);
    let sc = Scaler { bayer: true, ..sc };
    let out = scale(&sc, &src).unwrap();
    assert!((0..16).all(|y| (0..24).all(|x| out[y * 24 + x] == m.color_at(y, x) as u8)));
}

#[test]
fn bad_geometry_is_refused() {
    let src = frame(20, 20, 3);
    let ok = Scaler {
        sink_w: 20,
        sink_h: 20,
        crop: rect(0, 0, 20, 20),
        out_w: 20,
        out_h: 20,
        bpp: 3,
        bayer: false,
    };
    assert!(scale(&ok, &src).is_ok());
    for bad in [
        Scaler {
            crop: rect(1, 0, 20, 20),
            ..ok
        },
        Scaler {
            crop: rect(0, 0, 0, 20),
            ..ok
        },
        Scaler { out_w: 0, ..ok },
        Scaler {
            bayer: true,
            crop: rect(1, 0, 18, 20),
            bpp: 1,
            ..ok
        },
        Scaler {
            bayer: true,
            out_w: 21,
            bpp: 1,
            ..ok
        },
    ] {
        assert_eq!(scale(&bad, &src), Err(ScaleError::Geometry), "{bad:?}");
    }
    assert_eq!(scale(&ok, &src[..src.len() - 1]), Err(ScaleError::Short));
}

#[test]
fn sizes_clamp_like_vimc() {
    assert_eq!(clamp_size(0, 0), (16, 16));
    assert_eq!(clamp_size(17, 33), (16, 32));
    assert_eq!(clamp_size(641, 481), (640, 480));
    assert_eq!(clamp_size(u32::MAX, u32::MAX), (4096, 2160));
    for w in 0..5000 {
        let (cw, _) = clamp_size(w, 100);
        assert!(cw % 2 == 0 && (MIN_WIDTH..=MAX_WIDTH).contains(&cw) && (w < MIN_WIDTH || cw <= w));
    }
}

#[test]
fn crops_clamp_inside_the_sink() {
    assert_eq!(
        clamp_crop(rect(0, 0, 5, 5), 640, 480, false),
        rect(0, 0, 16, 16)
    );
    assert_eq!(
        clamp_crop(rect(700, 500, 100, 100), 640, 480, false),
        rect(540, 380, 100, 100)
    );
    assert_eq!(
        clamp_crop(rect(3, 3, 1000, 1000), 640, 480, false),
        rect(0, 0, 640, 480)
    );
    assert_eq!(
        clamp_crop(rect(3, 5, 101, 99), 640, 480, true),
        rect(2, 4, 100, 98)
    );
    // Exhaustive over a small sink: always inside, at least the minimum,
    // even for Bayer.
    for bayer in [false, true] {
        for l in 0..40 {
            for wd in 0..40 {
                let r = clamp_crop(rect(l, l / 2, wd, 40 - wd), 32, 24, bayer);
                assert!(r.left + r.width <= 32 && r.top + r.height <= 24, "{r:?}");
                assert!(
                    r.width >= 16 - u32::from(bayer) && r.height >= 16 - u32::from(bayer),
                    "{r:?}"
                );
                if bayer {
                    assert_eq!((r.left | r.top | r.width | r.height) & 1, 0, "{r:?}");
                }
            }
        }
    }
}

#[test]
fn window_control_accepts_odd_1_to_25() {
    let ok: Vec<u32> = (0..40).filter(|&s| window_valid(s)).collect();
    assert_eq!(ok, (1..=25).step_by(2).collect::<Vec<_>>());
    assert!(window_valid(WINDOW_DEFAULT));
}

#[test]
fn pad_formats_negotiate_like_vimc() {
    let f = |width, height, code| Fmt {
        width,
        height,
        code,
    };
    // Unsupported codes fall back; sizes clamp; Bayer codes pass.
    assert_eq!(
        adjust_bayer(f(1, 99999, 0x2008)),
        f(16, 2160, code::SRGGB8_1X8)
    );
    assert_eq!(
        adjust_bayer(f(1921, 1081, code::SGBRG12_1X12)),
        f(1920, 1080, code::SGBRG12_1X12)
    );
    assert_eq!(
        adjust_bayer(f(640, 480, code::RGB888_1X24)).code,
        DEFAULT_BAYER.code
    );
    // Debayer source follows the sink's size; only RGB codes are taken.
    let sink = f(320, 240, code::SBGGR8_1X8);
    assert_eq!(
        adjust_debayer_source(code::BGR888_1X24, code::RGB888_1X24, sink),
        f(320, 240, code::BGR888_1X24)
    );
    assert_eq!(
        adjust_debayer_source(code::SBGGR8_1X8, code::RGB888_1X24, sink),
        f(320, 240, code::RGB888_1X24)
    );
    // Scaler: Bayer and RGB both accepted on the sink; the source keeps the
    // sink's code whatever is asked.
    assert_eq!(
        adjust_scaler_sink(f(100, 100, code::SGRBG10_1X10)).code,
        code::SGRBG10_1X10
    );
    assert_eq!(adjust_scaler_sink(f(100, 100, 0)).code, DEFAULT_RGB);
    assert_eq!(
        adjust_scaler_source(f(5000, 7, code::BGR888_1X24), sink),
        f(4096, 16, code::SBGGR8_1X8)
    );
    // Enumeration: every RGB then every Bayer code, once, then the end.
    let codes: Vec<u32> = (0..).map_while(scaler_code).collect();
    assert_eq!(codes.len(), RGB_MAPS.len() + BAYER_MAPS.len());
    assert!(codes.iter().all(|&c| bytes_per_pixel(c).is_some()));
}
