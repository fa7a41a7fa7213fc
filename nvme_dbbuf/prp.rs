// SPDX-License-Identifier: GPL-2.0

//! Physical Region Page (PRP) construction (NVMe Base Specification 2.0,
//! section 4.1.1).
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//!
//! A data transfer is described by PRP1 (may carry a page offset), PRP2, and,
//! when more than two pages are touched, a PRP list that PRP2 points to.  The
//! driver sets the block layer's virt boundary to the controller page size, so
//! every DMA segment but the first starts on a page boundary and every one but
//! the last ends on one; anything else is refused here rather than described
//! wrongly.

use super::le::Le64;

/// Why a request could not be described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrpError {
    /// A segment other than the first starts inside a page, or one other than
    /// the last ends inside one (the virt boundary was not honoured).
    Gap,
    /// More pages than the one PRP list page holds.
    TooLong,
    /// A zero-length segment, or no segment at all.
    Empty,
}

/// What goes into the command: PRP1, PRP2 and how many list entries were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prps {
    /// PRP entry 1.
    pub prp1: u64,
    /// PRP entry 2: zero, the second page, or the list's bus address.
    pub prp2: u64,
    /// Entries written to the list (0 when no list is used).
    pub list_len: usize,
}

/// Describes `segs` (bus address, length) for a controller with `page`-byte
/// pages (a power of two).  Entries after the second page go to `list`
/// (in wire order, as the controller reads them), whose bus address is
/// `list_dma`; `list` is one page, so no list chaining is needed: callers cap
/// the transfer size so that the pages fit.
pub fn build<I>(segs: I, page: u64, list: &mut [Le64], list_dma: u64) -> Result<Prps, PrpError>
where
    I: IntoIterator<Item = (u64, u32)>,
{
    let mask = page - 1;
    let mut first: Option<u64> = None;
    let mut after = After { second: None, n: 0 };
    let mut prev_end_aligned = true;
    for (count, (addr, len)) in segs.into_iter().enumerate() {
        if len == 0 {
            return Err(PrpError::Empty);
        }
        if !prev_end_aligned {
            return Err(PrpError::Gap);
        }
        if count > 0 && addr & mask != 0 {
            return Err(PrpError::Gap);
        }
        let end = addr + u64::from(len);
        prev_end_aligned = end & mask == 0;

        // Page-aligned addresses of every page this segment touches.
        let mut p = addr & !mask;
        while p < end {
            if first.is_none() {
                first = Some(addr);
            } else {
                after.push(p, list)?;
            }
            p += page;
        }
    }
    Ok(after.prps(first.ok_or(PrpError::Empty)?, list_dma))
}

/// The page-aligned entries after PRP1, in order.  The first of them is
/// only known to be "PRP2 itself" once we see whether a third follows.
struct After {
    second: Option<u64>,
    n: usize,
}

impl After {
    /// Adds page `p`: PRP2 while it is the only one, list entries after.
    fn push(&mut self, p: u64, list: &mut [Le64]) -> Result<(), PrpError> {
        match self.n {
            0 => self.second = Some(p),
            1 => {
                // A third page: PRP2 becomes the list; the second page moves
                // into its first slot.
                *list.get_mut(0).ok_or(PrpError::TooLong)? = Le64::new(self.second.unwrap_or(0));
                *list.get_mut(1).ok_or(PrpError::TooLong)? = Le64::new(p);
            }
            n => *list.get_mut(n).ok_or(PrpError::TooLong)? = Le64::new(p),
        }
        self.n += 1;
        Ok(())
    }

    fn prps(&self, prp1: u64, list_dma: u64) -> Prps {
        match self.n {
            0 => Prps {
                prp1,
                prp2: 0,
                list_len: 0,
            },
            1 => Prps {
                prp1,
                prp2: self.second.unwrap_or(0),
                list_len: 0,
            },
            n => Prps {
                prp1,
                prp2: list_dma,
                list_len: n,
            },
        }
    }
}

/// Whether `bytes` starting at bus address `first` need a PRP list: they
/// touch more than two pages (with segments meeting at page boundaries, as
/// [`build`] requires, the pages touched follow from these two alone).
pub const fn needs_list(first: u64, bytes: u32, page: u64) -> bool {
    (first & (page - 1)) + bytes as u64 > 2 * page
}

/// Largest transfer, in bytes, that one `list_entries`-entry PRP list can
/// describe for any alignment of the first segment: PRP1 covers at least one
/// byte of the first page and the list the rest.
pub const fn max_transfer(page: u64, list_entries: u64) -> u64 {
    page * list_entries
}
