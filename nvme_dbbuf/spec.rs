// SPDX-License-Identifier: GPL-2.0

//! What NVMe register fields mean (NVMe Base Specification 2.0, section 3.1.4).
//!
//! `core`-only: compiled into the module and, verbatim, into the host test crate.

use core::fmt;

/// Offset of the first doorbell register in BAR0.
pub const DOORBELL_BASE: usize = 0x1000;

/// Controller version, as read from VS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u8,
    /// Tertiary version.
    pub tertiary: u8,
}

impl Version {
    /// NVMe 1.3 introduced Doorbell Buffer Config.
    pub const V1_3: Self = Self::new(1, 3, 0);

    /// Builds a version from VS's three fields.
    pub const fn new(major: u16, minor: u8, tertiary: u8) -> Self {
        Self {
            major,
            minor,
            tertiary,
        }
    }

    /// Splits a raw VS value.
    pub const fn from_raw(vs: u32) -> Self {
        Self::new((vs >> 16) as u16, (vs >> 8) as u8, vs as u8)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.tertiary)
    }
}

/// Number of entries a queue may have, from the zero-based CAP.MQES.
pub const fn max_queue_entries(mqes: u16) -> u32 {
    mqes as u32 + 1
}

/// Milliseconds to wait for CSTS.RDY to follow CC.EN, from CAP.TO (500 ms units).
///
/// A zero CAP.TO is out of spec; treat it as the smallest unit rather than
/// not waiting at all.
pub const fn ready_timeout_ms(to: u8) -> u32 {
    if to == 0 {
        500
    } else {
        to as u32 * 500
    }
}

/// Bytes between consecutive doorbell registers, from CAP.DSTRD (4 bits).
pub const fn doorbell_stride(dstrd: u8) -> usize {
    4usize << (dstrd & 0xf)
}

/// BAR0 offset of submission queue `qid`'s tail doorbell.
pub const fn sq_tail_doorbell(qid: u16, dstrd: u8) -> usize {
    DOORBELL_BASE + (2 * qid as usize) * doorbell_stride(dstrd)
}

/// BAR0 offset of completion queue `qid`'s head doorbell.
pub const fn cq_head_doorbell(qid: u16, dstrd: u8) -> usize {
    DOORBELL_BASE + (2 * qid as usize + 1) * doorbell_stride(dstrd)
}

/// Memory page size in bytes for an MPS / MPSMIN / MPSMAX value (4 bits).
pub const fn page_size(mps: u8) -> usize {
    1usize << (12 + (mps & 0xf))
}

/// Whether CAP.CSS advertises the NVM command set (bit 0).
pub const fn supports_nvm_command_set(css: u8) -> bool {
    css & 1 != 0
}
