//! The dynamic-debug pieces that run off-kernel: the `_ddebug` bitfield
//! word, the file/line → function lookup, and the table generator.

use rfl_host_tests::dyndbg_core::*;
use std::ffi::CStr;
use std::process::Command;

/// Reference: C bitfield allocation on little-endian x86-64 (lineno:18,
/// class_id:6, flags:8, least significant bits first).
fn reference_bits(lineno: u32, class: u8, flags: u8) -> u32 {
    let mut w = 0u32;
    for b in 0..18 {
        w |= ((lineno >> b) & 1) << b;
    }
    for b in 0..6 {
        w |= (((class as u32) >> b) & 1) << (18 + b);
    }
    for b in 0..8 {
        w |= (((flags as u32) >> b) & 1) << (24 + b);
    }
    w
}

#[test]
fn bitfield_word_matches_c_layout() {
    for lineno in [0u32, 1, 2, 1000, 65535, 131071, LINENO_MAX] {
        for class in [0u8, 1, 17, CLASS_DEFAULT] {
            for flags in [0u8, FLAG_PRINT, 0x7f, 0xff] {
                let bytes = pack_bits(lineno, class, flags);
                assert_eq!(
                    u32::from_le_bytes(bytes),
                    reference_bits(lineno, class, flags)
                );
                assert_eq!(flags_of(bytes), flags);
            }
        }
    }
    // Lines beyond the 18-bit field saturate instead of bleeding into class_id.
    assert_eq!(pack_bits(LINENO_MAX + 5, 0, 0), pack_bits(LINENO_MAX, 0, 0));
    assert_eq!(CLASS_DEFAULT, 63);
}

#[test]
fn path_matching() {
    assert!(path_matches(
        "/work/main/nvme_dbbuf/queue.rs",
        "nvme_dbbuf/queue.rs"
    ));
    assert!(path_matches("nvme_dbbuf/queue.rs", "nvme_dbbuf/queue.rs"));
    assert!(path_matches("./nvme_dbbuf.rs", "nvme_dbbuf.rs"));
    assert!(!path_matches("/x/my_nvme_dbbuf.rs", "nvme_dbbuf.rs"));
    assert!(!path_matches("queue.rs", "nvme_dbbuf/queue.rs"));
}

const TABLE: &[FuncRange] = &[
    FuncRange::new("a.rs", 10, 40, c"outer"),
    FuncRange::new("a.rs", 20, 25, c"inner"),
    FuncRange::new("b/a.rs", 10, 40, c"other_file"),
];

#[test]
fn innermost_function_wins() {
    assert_eq!(func_name(TABLE, "/src/a.rs", 15), Some(c"outer"));
    assert_eq!(func_name(TABLE, "/src/a.rs", 20), Some(c"inner"));
    assert_eq!(func_name(TABLE, "/src/a.rs", 25), Some(c"inner"));
    assert_eq!(func_name(TABLE, "/src/a.rs", 26), Some(c"outer"));
    assert_eq!(func_name(TABLE, "/src/b/a.rs", 22), Some(c"other_file"));
    assert_eq!(func_name(TABLE, "/src/a.rs", 41), None);
    assert_eq!(func_name(TABLE, "/src/c.rs", 15), None);
    // Usable in a const, as the call-site statics need.
    const N: Option<&CStr> = func_name(TABLE, "x/a.rs", 22);
    assert_eq!(N, Some(c"inner"));
}

fn generate(fixture: &str) -> Vec<(String, u32, u32, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = Command::new(format!("{root}/tools/dyndbg-funcs"))
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg(format!("{}/{fixture}", env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("run tools/dyndbg-funcs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("crate::dyndbg_core::FuncRange::new("))
        .map(|l| {
            let l = l.trim_end_matches("),");
            let parts: Vec<&str> = l.split(", ").collect();
            (
                parts[0].trim_matches('"').to_string(),
                parts[1].parse().unwrap(),
                parts[2].parse().unwrap(),
                parts[3]
                    .trim_start_matches("c\"")
                    .trim_end_matches('"')
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn generator_pairs_functions_with_bodies() {
    let mut got = generate("fixtures/funcs_sample.rs.in");
    got.sort_by_key(|r| r.1);
    let f = "fixtures/funcs_sample.rs.in".to_string();
    let want = vec![
        (f.clone(), 2, 9, "top".to_string()),
        (f.clone(), 13, 15, "with_default".to_string()),
        (f.clone(), 19, 25, "declared_only".to_string()),
        (f.clone(), 21, 23, "nested".to_string()),
        (f.clone(), 28, 35, "multi_line".to_string()),
    ];
    assert_eq!(got, want);
}

#[test]
fn generator_covers_module_sources() {
    // Every fn in the real module sources gets a range; spot-check one.
    let got = generate("../../nvme_dbbuf/spec.rs");
    assert!(got.iter().any(|r| r.3 == "ready_timeout_ms" && r.1 < r.2));
    assert!(got.len() >= 8);
}
