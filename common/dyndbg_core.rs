// SPDX-License-Identifier: GPL-2.0

//! Dynamic debug call-site data that does not need the kernel: the layout of
//! `struct _ddebug`'s bitfield word, its flag bits, and the (file, line) →
//! function lookup that stands in for C's `__func__`.
//!
//! `core`-only: compiled into the modules and, verbatim, into the host tests.

use core::ffi::CStr;

/// `_DPRINTK_FLAGS_PRINT`: the site prints.
pub const FLAG_PRINT: u8 = 1 << 0;
/// `_DPRINTK_FLAGS_INCL_STACK`: the site dumps the stack after printing.
pub const FLAG_INCL_STACK: u8 = 1 << 6;
/// `_DPRINTK_CLASS_DFLT`: the call site belongs to no class.
pub const CLASS_DEFAULT: u8 = (1 << 6) - 1;
/// `lineno` is an 18-bit field.
pub const LINENO_MAX: u32 = (1 << 18) - 1;

/// The `lineno:18, class_id:6, flags:8` bitfield word of `struct _ddebug`,
/// in memory order.  C allocates bitfields from the least significant bit on
/// little-endian targets and from the most significant one on big-endian.
pub const fn pack_bits(lineno: u32, class_id: u8, flags: u8) -> [u8; 4] {
    let lineno = if lineno > LINENO_MAX {
        LINENO_MAX
    } else {
        lineno
    };
    let class_id = (class_id & 0x3f) as u32;
    if cfg!(target_endian = "big") {
        ((lineno << 14) | (class_id << 8) | flags as u32).to_be_bytes()
    } else {
        (lineno | (class_id << 18) | ((flags as u32) << 24)).to_le_bytes()
    }
}

/// The `flags` byte of a bitfield word made by [`pack_bits`]: the last
/// byte in memory with either byte order.
pub const fn flags_of(bits: [u8; 4]) -> u8 {
    bits[3]
}

/// The source lines `first..=last` of `file` are the body of function `name`.
///
/// A table of these is generated from the module's sources by
/// `tools/dyndbg-funcs`, because Rust has no compile-time `__func__`.
pub struct FuncRange {
    /// Path relative to the module's source directory.
    pub file: &'static str,
    /// Line of the `fn` keyword.
    pub first: u32,
    /// Line of the closing brace.
    pub last: u32,
    /// The function's name.
    pub name: &'static CStr,
}

impl FuncRange {
    /// Builds one table row.
    pub const fn new(file: &'static str, first: u32, last: u32, name: &'static CStr) -> Self {
        Self {
            file,
            first,
            last,
            name,
        }
    }
}

/// Whether `path` (as `file!()` spells it) names the relative path `rel`:
/// equal, or ending in `/` followed by `rel`.
pub const fn path_matches(path: &str, rel: &str) -> bool {
    let p = path.as_bytes();
    let r = rel.as_bytes();
    if r.len() > p.len() {
        return false;
    }
    let off = p.len() - r.len();
    let mut i = 0;
    while i < r.len() {
        if p[off + i] != r[i] {
            return false;
        }
        i += 1;
    }
    off == 0 || p[off - 1] == b'/'
}

/// The innermost function of `table` whose body holds `line` of `file`.
///
/// When relative paths of several table files match `file` (`a.rs` and
/// `b/a.rs` both match `/src/b/a.rs`), the longest one names the file.
pub const fn func_name(table: &[FuncRange], file: &str, line: u32) -> Option<&'static CStr> {
    let mut best: Option<&'static CStr> = None;
    let mut best_len = 0;
    let mut best_first = 0;
    let mut i = 0;
    while i < table.len() {
        let r = &table[i];
        let len = r.file.len();
        if r.first <= line
            && line <= r.last
            && path_matches(file, r.file)
            && (len > best_len || (len == best_len && r.first >= best_first))
        {
            best = Some(r.name);
            best_len = len;
            best_first = r.first;
        }
        i += 1;
    }
    best
}
