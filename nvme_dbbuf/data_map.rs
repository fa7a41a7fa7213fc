// SPDX-License-Identifier: GPL-2.0

//! A request's data as the controller sees it: DMA-mapped (its one segment
//! directly, any other through a scatterlist from the pool) and described
//! by PRPs (past two pages, a list block from the pool), all given back at
//! completion.  Part of the blk-mq layer (`mq.rs`), on the DMA API.

use kernel::{bindings, prelude::*};

use crate::blk::{BlkShared, MAX_SEGS, PAGE};
use crate::mq::{Operations, Status};
use crate::mq_request::PendingRef;
use crate::pool::{PoolBlock, SgList};
use crate::prp::{self, PrpError, Prps};

const BLK_STS_IOERR: bindings::blk_status_t = Status::IOERR.0;
const BLK_STS_RESOURCE: bindings::blk_status_t = Status::RESOURCE.0;

/// How a request's data is DMA-mapped.
#[derive(Clone, Copy)]
enum DataMap {
    /// No data, or already unmapped.
    None,
    /// `sg[..nents]` of [`DataMapping::sg`], through dma_map_sg, which
    /// made `mapped` bus segments of them.
    Sg { nents: i32, mapped: u32 },
    /// Its one segment, through dma_map_page (no scatterlist).
    Single { dma: bindings::dma_addr_t, len: u32 },
}

/// What one use of a request holds for its data, from `queue_rq` to its
/// completion (the owner's part of the request's driver data).
///
/// # Invariants
///
/// While `map` is not `None`, the data is mapped for `dev`, the tag set's
/// DMA device, bound as long as the tag set (`TagSet<'a, _>` lives in the
/// device's `'a`).
pub(crate) struct DataMapping {
    dev: *mut bindings::device,
    /// Taken from [`BlkShared::sgs`] for a request of several segments.
    sg: Option<SgList>,
    /// Taken from [`BlkShared::lists`] for a request touching more than
    /// two pages (its PRP list), or from [`BlkShared::ranges`] for a
    /// discard (its range).
    list: Option<PoolBlock>,
    /// How the data is mapped, for the unmap.
    map: DataMap,
    write: bool,
}

// SAFETY: `dev` is only a handle for the DMA API, which may be called from
// any context; the rest is owned data.
unsafe impl Send for DataMapping {}

fn dma_dir(write: bool) -> bindings::dma_data_direction {
    if write {
        bindings::dma_data_direction::DMA_TO_DEVICE
    } else {
        bindings::dma_data_direction::DMA_FROM_DEVICE
    }
}

impl DataMapping {
    pub(crate) const fn new() -> Self {
        Self {
            dev: core::ptr::null_mut(),
            sg: None,
            list: None,
            map: DataMap::None,
            write: false,
        }
    }

    /// Maps pending request `rq`'s data for its tag set's DMA device and
    /// describes it with PRPs; on failure nothing stays mapped or held.
    pub(crate) fn map_rw<T: Operations>(
        &mut self,
        shared: &BlkShared<'_>,
        rq: PendingRef<'_, T>,
        write: bool,
    ) -> Result<Prps, Status> {
        let (bytes, nsegs) = (rq.bytes(), rq.nr_phys_segments());
        if nsegs == 0 || usize::from(nsegs) > MAX_SEGS || !matches!(self.map, DataMap::None) {
            return Err(Status::IOERR);
        }
        self.write = write;
        self.dev = rq.dma_dev();
        // SAFETY: a pending request (`PendingRef`) with `1 <= nsegs <=
        // MAX_SEGS` segments, nothing mapped; `self.dev` is bound.
        let first = unsafe { self.map_data(shared, rq.as_raw(), bytes, nsegs) }.map_err(Status)?;
        if prp::needs_list(first, bytes, PAGE) {
            match shared.lists.alloc() {
                Some(b) => self.list = Some(b),
                None => {
                    // Mapped just above, not yet seen by the device.
                    self.release(shared);
                    return Err(Status::RESOURCE);
                }
            }
        }
        // SAFETY: `map_data` mapped the request's data.
        match unsafe { self.describe() } {
            Ok(p) => Ok(p),
            Err(e) => {
                pr_err!("nvme_dbbuf: cannot describe request with PRPs: {:?}\n", e);
                // As above.
                self.release(shared);
                Err(Status::IOERR)
            }
        }
    }

    /// Keeps `b` (a discard's range) until the request is released.
    pub(crate) fn hold_list(&mut self, b: PoolBlock) {
        self.list = Some(b);
    }

    /// Maps the data: its one segment directly, or through a scatterlist
    /// from the pool.  Returns the bus address of the first byte.
    ///
    /// # Safety
    ///
    /// `rq` is a pending request whose data `self.dev` can map, with
    /// `1 <= nsegs <= MAX_SEGS` physical segments of `bytes` bytes in all.
    unsafe fn map_data(
        &mut self,
        shared: &BlkShared<'_>,
        rq: *mut bindings::request,
        bytes: u32,
        nsegs: u16,
    ) -> Result<u64, bindings::blk_status_t> {
        if nsegs == 1 {
            // SAFETY: caller guarantee; one segment of `bytes` bytes.
            if let Some((dma, len)) = unsafe { map_single(self.dev, rq, bytes, self.write)? } {
                self.map = DataMap::Single { dma, len };
                return Ok(dma);
            }
        }
        let mut sg = shared.sgs.alloc().ok_or(BLK_STS_RESOURCE)?;
        // SAFETY: caller guarantee; the list has MAX_SEGS >= `nsegs` entries.
        match unsafe { map_sg(self.dev, rq, &mut sg, nsegs, self.write) } {
            Ok(n) => {
                self.map = DataMap::Sg {
                    nents: n.nents,
                    mapped: n.mapped,
                };
                // SAFETY: `n.mapped >= 1` entries were just mapped.
                let first = unsafe { (*sg.as_mut_ptr()).dma_address };
                self.sg = Some(sg);
                Ok(first)
            }
            Err(sts) => {
                shared.sgs.free(sg);
                Err(sts)
            }
        }
    }

    /// PRPs for the mapped data, with the held list block as the PRP list.
    ///
    /// # Safety
    ///
    /// The data was mapped by [`Self::map_data`].
    unsafe fn describe(&mut self) -> Result<Prps, PrpError> {
        let (entries, list_dma) = match self.list.as_mut() {
            Some(b) => {
                let dma = b.dma();
                (b.entries(), dma)
            }
            None => (&mut [][..], 0),
        };
        match (self.map, self.sg.as_mut()) {
            (DataMap::Single { dma, len }, _) => prp::build([(dma, len)], PAGE, entries, list_dma),
            (DataMap::Sg { mapped, .. }, Some(sg)) => {
                // SAFETY: caller guarantee: `mapped` entries mapped by
                // dma_map_sg, only read while `sg` is borrowed.
                let segs = unsafe { core::slice::from_raw_parts(sg.as_mut_ptr(), mapped as usize) };
                let segs = segs.iter().map(|s| (s.dma_address, s.dma_length));
                prp::build(segs, PAGE, entries, list_dma)
            }
            _ => Err(PrpError::Empty),
        }
    }

    /// Unmaps the data and gives back what was taken from the pools: once
    /// the controller is done with them (the command completed, or the
    /// controller was stopped).
    pub(crate) fn release(&mut self, shared: &BlkShared<'_>) {
        let (dir, dev) = (dma_dir(self.write), self.dev);
        match (self.map, self.sg.as_mut()) {
            // SAFETY: mapped with these entries, for `dev` (invariant).
            (DataMap::Sg { nents, .. }, Some(sg)) => unsafe {
                bindings::dma_unmap_sg_attrs(dev, sg.as_mut_ptr(), nents, dir, 0)
            },
            // SAFETY: mapped at `dma` for `len` bytes, for `dev` (invariant).
            (DataMap::Single { dma, len }, _) => unsafe {
                bindings::dma_unmap_page_attrs(dev, dma, len as usize, dir, 0)
            },
            _ => {}
        }
        self.map = DataMap::None;
        if let Some(sg) = self.sg.take() {
            shared.sgs.free(sg);
        }
        match self.list.take() {
            Some(b) if shared.ranges.owns(&b) => shared.ranges.free(b),
            Some(b) => shared.lists.free(b),
            None => {}
        }
    }
}

/// `dma_map_sg` result: entries handed in (needed again to unmap), entries
/// the mapping produced.
struct SgMapped {
    nents: i32,
    mapped: u32,
}

/// Maps a request's data through `sg`.
///
/// # Safety
///
/// `rq` is a started-to-be request whose data `dev` can map, with
/// `1 <= nsegs <= MAX_SEGS` physical segments.
unsafe fn map_sg(
    dev: *mut bindings::device,
    rq: *mut bindings::request,
    sg: &mut SgList,
    nsegs: u16,
    write: bool,
) -> Result<SgMapped, bindings::blk_status_t> {
    let sg = sg.as_mut_ptr();
    let mut last: *mut bindings::scatterlist = core::ptr::null_mut();
    // SAFETY: `sg` has MAX_SEGS >= `nsegs` entries; only the ones this
    // request can use are initialised, and __blk_rq_map_sg fills at most
    // `nr_phys_segments`.
    let n = unsafe {
        bindings::sg_init_table(sg, u32::from(nsegs));
        bindings::__blk_rq_map_sg(rq, sg, &mut last)
    };
    if n <= 0 {
        return Err(BLK_STS_IOERR);
    }
    // SAFETY: `n` initialised entries; `dev` is our DMA device.
    let mapped = unsafe { bindings::dma_map_sg_attrs(dev, sg, n, dma_dir(write), 0) };
    if mapped == 0 {
        return Err(BLK_STS_RESOURCE);
    }
    Ok(SgMapped {
        nents: n,
        mapped: mapped as u32,
    })
}

/// Maps a one-segment request's data directly, without a scatterlist, as the
/// in-tree driver does for small I/O (`nvme_pci_setup_data_simple`).  In a
/// guest profile the scatterlist round trip was 27-38% of the samples
/// in this driver's code and its helpers; a slower submission lets the
/// controller catch up (EventIdx) between two of a burst, which costs an
/// MMIO doorbell (Documentation/nvme-dbbuf.rst, "How the 4 KiB gap closed").
/// `None` if the request's first bio_vec is not all of its data (then the
/// scatterlist path maps it).
///
/// # Safety
///
/// `rq` is a started-to-be request whose data `dev` can map, with one physical
/// segment of `bytes` bytes.
unsafe fn map_single(
    dev: *mut bindings::device,
    rq: *mut bindings::request,
    bytes: u32,
    write: bool,
) -> Result<Option<(u64, u32)>, bindings::blk_status_t> {
    // No peer device memory (P2PDMA) reaches here, whatever the kernel's
    // config: the disk does not set `BLK_FEAT_PCI_P2PDMA`, and without it
    // the block layer never lets such pages into a bio (`ITER_ALLOW_P2PDMA`
    // in `bio_iov_iter_get_pages`), so `dma_map_page` is right for every
    // single segment.
    // `req_bvec()`: the current bio_vec of the first bio, as its iterator
    // (possibly advanced by a split) sees it.  (Its special-payload case is
    // for drivers that attach one; this driver never does.)
    // SAFETY: a request with data has a bio whose iterator indexes its
    // bio_vec array.
    let (page, offset, len) = unsafe {
        let bio = (*rq).bio;
        if bio.is_null() {
            return Ok(None);
        }
        let it = (*bio).bi_iter;
        let bv = &*(*bio).bi_io_vec.add(it.bi_idx as usize);
        let done = it.bi_offset;
        (
            bv.bv_page,
            bv.bv_offset.saturating_add(done),
            it.bi_size.min(bv.bv_len.saturating_sub(done)),
        )
    };
    if len != bytes {
        return Ok(None);
    }
    let dir = dma_dir(write);
    // (A multi-page bio_vec is physically contiguous.)
    // SAFETY: `page` + `offset` .. + `len` is the request's data; `dev` is
    // our DMA device.
    let dma =
        unsafe { bindings::dma_map_page_attrs(dev, page, offset as usize, len as usize, dir, 0) };
    // `dma_mapping_error()`, an inline: DMA debug wants to be told the
    // result was checked.
    #[cfg(CONFIG_DMA_API_DEBUG)]
    // SAFETY: `dma` came from mapping on `dev`.
    unsafe {
        bindings::debug_dma_mapping_error(dev, dma)
    };
    if dma == DMA_MAPPING_ERROR {
        return Err(BLK_STS_RESOURCE);
    }
    Ok(Some((dma, len)))
}

/// `DMA_MAPPING_ERROR`, a macro bindgen does not carry.
const DMA_MAPPING_ERROR: bindings::dma_addr_t = !0;
