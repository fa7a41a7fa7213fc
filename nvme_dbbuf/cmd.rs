// SPDX-License-Identifier: GPL-2.0

//! NVMe submission and completion queue entries and the commands this driver
//! sends (NVMe Base Specification 2.0, sections 4.2, 4.6, 5; NVM Command Set
//! Specification 1.0, section 3).
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//! Entries are little-endian on the wire, and their fields are typed so
//! ([`Le32`], [`Le64`]): the encoders produce the wire form on any host.

use super::le::{Le32, Le64};

/// Bytes in a submission queue entry (CC.IOSQES = 6).
pub const SQE_SIZE: usize = 64;
/// Bytes in a completion queue entry (CC.IOCQES = 4).
pub const CQE_SIZE: usize = 16;

/// Admin command opcodes.
pub mod admin {
    /// Delete I/O Submission Queue.
    pub const DELETE_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_SQ: u8 = 0x01;
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Delete I/O Completion Queue.
    pub const DELETE_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0a;
    /// Doorbell Buffer Config (NVMe 1.3).
    pub const DBBUF_CONFIG: u8 = 0x7c;
}

/// NVM command set I/O opcodes.
pub mod io {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DSM: u8 = 0x09;
}

/// Identify CNS values.
pub mod cns {
    /// Identify Namespace.
    pub const NAMESPACE: u8 = 0x00;
    /// Identify Controller.
    pub const CONTROLLER: u8 = 0x01;
    /// Active Namespace ID list.
    pub const ACTIVE_NS_LIST: u8 = 0x02;
}

/// Feature identifiers.
pub mod feat {
    /// Number of Queues.
    pub const NUM_QUEUES: u8 = 0x07;
}

/// A submission queue entry, in wire (little-endian) layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    CONFIG_RUST,
    derive(::kernel::prelude::FromBytes, ::kernel::prelude::IntoBytes)
)]
pub struct Sqe {
    /// CDW0: opcode (7:0), fused (9:8), PSDT (15:14), command identifier (31:16).
    pub cdw0: Le32,
    /// Namespace identifier.
    pub nsid: Le32,
    /// CDW2, CDW3.
    pub cdw2: [Le32; 2],
    /// Metadata pointer.
    pub mptr: Le64,
    /// PRP entry 1.
    pub prp1: Le64,
    /// PRP entry 2.
    pub prp2: Le64,
    /// CDW10 to CDW15.
    pub cdw: [Le32; 6],
}

const _: () = assert!(core::mem::size_of::<Sqe>() == SQE_SIZE);

impl Sqe {
    /// An entry with `opcode` and nothing else set.
    pub const fn new(opcode: u8) -> Self {
        Self {
            cdw0: Le32::new(opcode as u32),
            nsid: Le32::ZERO,
            cdw2: [Le32::ZERO; 2],
            mptr: Le64::ZERO,
            prp1: Le64::ZERO,
            prp2: Le64::ZERO,
            cdw: [Le32::ZERO; 6],
        }
    }

    /// The opcode.
    pub const fn opcode(&self) -> u8 {
        self.cdw0.get() as u8
    }

    /// The command identifier.
    pub const fn cid(&self) -> u16 {
        (self.cdw0.get() >> 16) as u16
    }

    /// Sets the command identifier.
    pub const fn with_cid(mut self, cid: u16) -> Self {
        self.cdw0 = Le32::new((self.cdw0.get() & 0xffff) | ((cid as u32) << 16));
        self
    }

    /// Sets the namespace identifier.
    pub const fn with_nsid(mut self, nsid: u32) -> Self {
        self.nsid = Le32::new(nsid);
        self
    }

    /// Sets the two PRP entries.
    pub const fn with_prps(mut self, prp1: u64, prp2: u64) -> Self {
        self.prp1 = Le64::new(prp1);
        self.prp2 = Le64::new(prp2);
        self
    }

    /// Sets CDW2 and CDW3 (command specific; passthrough only).
    pub const fn with_cdw2_3(mut self, cdw2: u32, cdw3: u32) -> Self {
        self.cdw2 = [Le32::new(cdw2), Le32::new(cdw3)];
        self
    }

    /// Sets command dword `N` (10..=15; another `N` does not build).
    pub const fn with_cdw<const N: usize>(mut self, value: u32) -> Self {
        const { assert!(N >= 10 && N <= 15) };
        self.cdw[N - 10] = Le32::new(value);
        self
    }

    /// Sets command dwords 10 to 15.
    pub const fn with_cdw10_15(mut self, values: [u32; 6]) -> Self {
        let [a, b, c, d, e, f] = values;
        self.cdw = [
            Le32::new(a),
            Le32::new(b),
            Le32::new(c),
            Le32::new(d),
            Le32::new(e),
            Le32::new(f),
        ];
        self
    }

    /// Command dword `N` (10..=15), in host order.
    pub const fn cdw<const N: usize>(&self) -> u32 {
        const { assert!(N >= 10 && N <= 15) };
        self.cdw[N - 10].get()
    }
}

/// Identify (`cns`) with its 4 KiB result at `buf`.
pub const fn identify(cns: u8, nsid: u32, buf: u64) -> Sqe {
    Sqe::new(admin::IDENTIFY)
        .with_nsid(nsid)
        .with_prps(buf, 0)
        .with_cdw::<10>(cns as u32)
}

/// Set Features, Number of Queues: ask for `sqs` and `cqs` I/O queues (1-based counts).
pub const fn set_num_queues(sqs: u16, cqs: u16) -> Sqe {
    Sqe::new(admin::SET_FEATURES)
        .with_cdw::<10>(feat::NUM_QUEUES as u32)
        .with_cdw::<11>((sqs.saturating_sub(1) as u32) | ((cqs.saturating_sub(1) as u32) << 16))
}

/// The (submission, completion) queue counts a Number of Queues completion
/// grants (its DW0, 0-based fields), as 1-based counts.
pub const fn granted_queues(dw0: u32) -> (u32, u32) {
    ((dw0 & 0xffff) + 1, (dw0 >> 16) + 1)
}

/// Create I/O Completion Queue `qid` of `entries` entries at `base`,
/// physically contiguous, interrupts on vector `vector`, or none (a polled
/// queue).
pub const fn create_cq(qid: u16, entries: u16, base: u64, vector: Option<u16>) -> Sqe {
    // PC (bit 0) = physically contiguous, IEN (bit 1) = interrupts enabled.
    let flags = match vector {
        Some(v) => 0b11 | ((v as u32) << 16),
        None => 0b01,
    };
    Sqe::new(admin::CREATE_CQ)
        .with_prps(base, 0)
        .with_cdw::<10>((qid as u32) | ((entries.saturating_sub(1) as u32) << 16))
        .with_cdw::<11>(flags)
}

/// Create I/O Submission Queue `qid` of `entries` entries at `base`,
/// physically contiguous, completing to `cqid`.
pub const fn create_sq(qid: u16, entries: u16, base: u64, cqid: u16) -> Sqe {
    Sqe::new(admin::CREATE_SQ)
        .with_prps(base, 0)
        .with_cdw::<10>((qid as u32) | ((entries.saturating_sub(1) as u32) << 16))
        // PC (bit 0) = physically contiguous, QPRIO (2:1) = 0.
        .with_cdw::<11>(0b1 | ((cqid as u32) << 16))
}

/// Delete I/O Submission Queue `qid`.
pub const fn delete_sq(qid: u16) -> Sqe {
    Sqe::new(admin::DELETE_SQ).with_cdw::<10>(qid as u32)
}

/// Delete I/O Completion Queue `qid`.
pub const fn delete_cq(qid: u16) -> Sqe {
    Sqe::new(admin::DELETE_CQ).with_cdw::<10>(qid as u32)
}

/// Abort command `cid` on submission queue `sqid`.
pub const fn abort(sqid: u16, cid: u16) -> Sqe {
    Sqe::new(admin::ABORT).with_cdw::<10>((sqid as u32) | ((cid as u32) << 16))
}

/// Doorbell Buffer Config: PRP1 = Shadow Doorbell buffer, PRP2 = EventIdx
/// buffer (both page aligned, NVMe 2.0 section 5.8).
pub const fn dbbuf_config(shadow: u64, eventidx: u64) -> Sqe {
    Sqe::new(admin::DBBUF_CONFIG).with_prps(shadow, eventidx)
}

/// Read or Write of `blocks` logical blocks (1-based) from `slba`.
pub const fn rw(write: bool, nsid: u32, slba: u64, blocks: u16, fua: bool) -> Sqe {
    Sqe::new(if write { io::WRITE } else { io::READ })
        .with_nsid(nsid)
        .with_cdw::<10>(slba as u32)
        .with_cdw::<11>((slba >> 32) as u32)
        .with_cdw::<12>((blocks.saturating_sub(1) as u32) | if fua { 1 << 30 } else { 0 })
}

/// Flush the volatile write cache of namespace `nsid`.
pub const fn flush(nsid: u32) -> Sqe {
    Sqe::new(io::FLUSH).with_nsid(nsid)
}

/// Write Zeroes of `blocks` logical blocks (1-based) from `slba`.
pub const fn write_zeroes(nsid: u32, slba: u64, blocks: u16) -> Sqe {
    Sqe::new(io::WRITE_ZEROES)
        .with_nsid(nsid)
        .with_cdw::<10>(slba as u32)
        .with_cdw::<11>((slba >> 32) as u32)
        .with_cdw::<12>(blocks.saturating_sub(1) as u32)
}

/// Dataset Management, deallocate, of `ranges` (1-based) ranges listed at `buf`.
pub const fn discard(nsid: u32, ranges: u8, buf: u64) -> Sqe {
    Sqe::new(io::DSM)
        .with_nsid(nsid)
        .with_prps(buf, 0)
        .with_cdw::<10>(ranges.saturating_sub(1) as u32)
        // AD: attribute deallocate.
        .with_cdw::<11>(1 << 2)
}

/// One Dataset Management range (16 bytes, little-endian).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DsmRange {
    /// Context attributes.
    pub cattr: Le32,
    /// Length in logical blocks.
    pub nlb: Le32,
    /// Starting LBA.
    pub slba: Le64,
}

impl DsmRange {
    /// A range of `nlb` blocks from `slba`.
    pub const fn new(slba: u64, nlb: u32) -> Self {
        Self {
            cattr: Le32::ZERO,
            nlb: Le32::new(nlb),
            slba: Le64::new(slba),
        }
    }

    /// The range as two little-endian 64-bit words (the same 16 bytes),
    /// for a buffer of them.
    pub const fn words(self) -> [Le64; 2] {
        let low = self.cattr.get() as u64 | (self.nlb.get() as u64) << 32;
        [Le64::new(low), self.slba]
    }
}

/// A completion queue entry, in wire (little-endian) layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    CONFIG_RUST,
    derive(::kernel::prelude::FromBytes, ::kernel::prelude::IntoBytes)
)]
pub struct Cqe {
    /// Command specific result.
    pub dw0: Le32,
    /// Reserved / command specific.
    pub dw1: Le32,
    /// SQ head pointer (15:0) and SQ identifier (31:16).
    pub dw2: Le32,
    /// Command identifier (15:0), phase tag (16), status (31:17).
    pub dw3: Le32,
}

const _: () = assert!(core::mem::size_of::<Cqe>() == CQE_SIZE);

impl Cqe {
    /// Builds an entry (the controller's side; used by tests).
    pub const fn new(dw0: u32, sqhd: u16, sqid: u16, cid: u16, phase: bool, status: u16) -> Self {
        Self {
            dw0: Le32::new(dw0),
            dw1: Le32::ZERO,
            dw2: Le32::new((sqhd as u32) | ((sqid as u32) << 16)),
            dw3: Le32::new(
                (cid as u32) | ((phase as u32) << 16) | (((status & 0x7fff) as u32) << 17),
            ),
        }
    }

    /// Command specific result, DW0.
    pub const fn result(&self) -> u32 {
        self.dw0.get()
    }

    /// Where the controller's SQ head now is.
    pub const fn sq_head(&self) -> u16 {
        self.dw2.get() as u16
    }

    /// Which submission queue the command came from.
    pub const fn sq_id(&self) -> u16 {
        (self.dw2.get() >> 16) as u16
    }

    /// The command identifier.
    pub const fn cid(&self) -> u16 {
        self.dw3.get() as u16
    }

    /// The phase tag.
    pub const fn phase(&self) -> bool {
        Self::phase_of_dw3(self.dw3)
    }

    /// The phase tag from DW3 alone, so that a poller can test it before
    /// reading the rest of the entry.
    pub const fn phase_of_dw3(dw3: Le32) -> bool {
        dw3.get() & (1 << 16) != 0
    }

    /// The 15-bit status field (SC 7:0, SCT 10:8, CRD 12:11, M 13, DNR 14).
    pub const fn status(&self) -> Status {
        Status((self.dw3.get() >> 17) as u16)
    }
}

/// A completion's status field, without the phase tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    /// Successful completion.
    pub const SUCCESS: Self = Self(0);

    /// Status Code.
    pub const fn code(self) -> u8 {
        self.0 as u8
    }

    /// Status Code Type.
    pub const fn code_type(self) -> u8 {
        ((self.0 >> 8) & 0x7) as u8
    }

    /// Do Not Retry.
    pub const fn dnr(self) -> bool {
        self.0 & (1 << 14) != 0
    }

    /// Whether the command succeeded.
    pub const fn is_success(self) -> bool {
        self.code() == 0 && self.code_type() == 0
    }

    /// Generic status: Invalid Command Opcode (what a controller without DBBC answers).
    pub const fn is_invalid_opcode(self) -> bool {
        self.code_type() == 0 && self.code() == 0x01
    }

    /// Generic status: Command Abort Requested.
    pub const fn is_abort_requested(self) -> bool {
        self.code_type() == 0 && self.code() == 0x07
    }
}

/// What becomes of an I/O command that ended, as the in-tree driver's
/// `nvme_decide_disposition` decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// End the request with the command's status.
    Complete,
    /// Requeue it: it runs again, with one retry more counted.
    Retry,
}

/// The disposition of an I/O command that ended with `status`, or that a
/// controller reset took back (`None`).  Failures are retried while the
/// request has retries left (`retries < max_retries`), unless the controller
/// said Do Not Retry or the request may not be retried (`noretry`:
/// `REQ_FAILFAST_*`, or the controller is gone).
pub const fn disposition(
    status: Option<Status>,
    noretry: bool,
    retries: u8,
    max_retries: u8,
) -> Disposition {
    match status {
        Some(s) if s.is_success() || s.dnr() => Disposition::Complete,
        _ if noretry || retries >= max_retries => Disposition::Complete,
        _ => Disposition::Retry,
    }
}
