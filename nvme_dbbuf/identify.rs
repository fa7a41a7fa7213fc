// SPDX-License-Identifier: GPL-2.0

//! The fields this driver reads from Identify data structures (NVMe Base
//! Specification 2.0, figures 275 and 276 for controller and namespace;
//! NVM Command Set Specification 1.0, figure 97).
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.

/// Size of every Identify data structure.
pub const IDENTIFY_SIZE: usize = 4096;

fn le16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off + 2) {
        Some(&[a, c]) => u16::from_le_bytes([a, c]),
        _ => 0,
    }
}

fn le32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}

fn byte(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

/// Optional Admin Command Support bit: Doorbell Buffer Config.
pub const OACS_DBBUF: u16 = 1 << 8;
/// Optional NVM Command Support bit: Dataset Management.
pub const ONCS_DSM: u16 = 1 << 2;
/// Optional NVM Command Support bit: Write Zeroes.
pub const ONCS_WRITE_ZEROES: u16 = 1 << 3;

/// Identify Controller, the parts we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdCtrl {
    /// PCI vendor id.
    pub vid: u16,
    /// Serial number, ASCII, space padded.
    pub sn: [u8; 20],
    /// Model number, ASCII, space padded.
    pub mn: [u8; 40],
    /// Firmware revision.
    pub fr: [u8; 8],
    /// Maximum Data Transfer Size, log2 in units of CAP.MPSMIN pages; 0 = no limit.
    pub mdts: u8,
    /// Controller id.
    pub cntlid: u16,
    /// Optional Admin Command Support.
    pub oacs: u16,
    /// Number of Namespaces (highest valid NSID).
    pub nn: u32,
    /// Optional NVM Command Support.
    pub oncs: u16,
    /// Volatile Write Cache present (bit 0).
    pub vwc: u8,
}

fn copy<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    // Element by element: `copy_from_slice`'s length-mismatch panic path
    // is one objtool misreads as falling through.
    if let Some(src) = b.get(off..off + N) {
        for (d, s) in out.iter_mut().zip(src) {
            *d = *s;
        }
    }
    out
}

impl IdCtrl {
    /// Parses an Identify Controller data structure.
    pub fn parse(b: &[u8]) -> Self {
        Self {
            vid: le16(b, 0),
            sn: copy(b, 4),
            mn: copy(b, 24),
            fr: copy(b, 64),
            mdts: byte(b, 77),
            cntlid: le16(b, 78),
            oacs: le16(b, 256),
            nn: le32(b, 516),
            oncs: le16(b, 520),
            vwc: byte(b, 525),
        }
    }

    /// Whether Doorbell Buffer Config is supported.
    pub const fn has_dbbuf(&self) -> bool {
        self.oacs & OACS_DBBUF != 0
    }

    /// Whether a volatile write cache is present (so FLUSH means something).
    /// ONCS bit 3: Write Zeroes.
    pub const fn has_write_zeroes(&self) -> bool {
        self.oncs & (1 << 3) != 0
    }

    /// ONCS bit 2: Dataset Management (deallocate = discard).
    pub const fn has_dsm(&self) -> bool {
        self.oncs & (1 << 2) != 0
    }

    pub const fn has_vwc(&self) -> bool {
        self.vwc & 1 != 0
    }

    /// Largest transfer in bytes for a minimum page of `min_page` bytes
    /// (`None`: the controller sets no limit).
    pub const fn max_transfer(&self, min_page: u64) -> Option<u64> {
        if self.mdts == 0 || self.mdts >= 32 {
            None
        } else {
            Some(min_page << self.mdts)
        }
    }
}

/// Trims ASCII space padding (and NULs) from an Identify string field.
pub fn trim(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && matches!(s.get(end - 1), Some(b' ' | 0)) {
        end -= 1;
    }
    s.get(..end).unwrap_or(&[])
}

/// Identify Namespace (NVM command set), the parts we use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdNs {
    /// Namespace size in logical blocks.
    pub nsze: u64,
    /// Namespace capacity in logical blocks.
    pub ncap: u64,
    /// Formatted LBA size: index of the LBA format in use.
    pub flba_index: u8,
    /// log2 of the logical block size of the format in use.
    pub lbads: u8,
    /// Metadata bytes per block of the format in use.
    pub ms: u16,
}

impl IdNs {
    /// Parses an Identify Namespace data structure.
    pub fn parse(b: &[u8]) -> Self {
        let flbas = byte(b, 26);
        let nlbaf = byte(b, 25);
        // FLBAS bits 3:0 plus, with more than 16 formats, bits 6:5 as the high part.
        let mut index = flbas & 0xf;
        if nlbaf >= 16 {
            index |= ((flbas >> 5) & 0x3) << 4;
        }
        let lbaf = le32(b, 128 + 4 * index as usize);
        Self {
            nsze: le64(b, 0),
            ncap: le64(b, 8),
            flba_index: index,
            lbads: (lbaf >> 16) as u8,
            ms: lbaf as u16,
        }
    }

    /// Logical block size in bytes, if the format is one Linux can use
    /// (512 B to 4 KiB: no larger than a page) and carries no
    /// metadata, which this driver does not handle.
    pub const fn block_size(&self) -> Option<u32> {
        if self.lbads >= 9 && self.lbads <= 12 && self.ms == 0 {
            Some(1 << self.lbads)
        } else {
            None
        }
    }

    /// Capacity in 512-byte sectors; 0 when it does not fit in 64 bits.
    pub const fn capacity_sectors(&self) -> u64 {
        if self.lbads < 9 || self.lbads - 9 >= 64 {
            return 0;
        }
        let shift = (self.lbads - 9) as u32;
        if self.nsze.leading_zeros() < shift {
            0
        } else {
            self.nsze << shift
        }
    }
}

/// Namespace ids from an Active Namespace ID list (CNS 02h): increasing,
/// ended by the first zero.
pub fn active_nsids(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4)
        .map(|c| match c {
            &[a, d, e, f] => u32::from_le_bytes([a, d, e, f]),
            _ => 0,
        })
        .take_while(|&id| id != 0)
}
