// SPDX-License-Identifier: GPL-2.0

//! The admin passthrough ABI nvme-cli speaks (`include/uapi/linux/nvme_ioctl.h`)
//! and what this driver accepts through it.  `core` only: the module and
//! the host tests include this file verbatim.

/// `NVME_IOCTL_ADMIN_CMD`: `_IOWR('N', 0x41, struct nvme_passthru_cmd)`.
pub const NVME_IOCTL_ADMIN_CMD: u32 = ioc_rw(0x41, CMD_SIZE);
/// `NVME_IOCTL_ADMIN64_CMD`: `_IOWR('N', 0x47, struct nvme_passthru_cmd64)`.
pub const NVME_IOCTL_ADMIN64_CMD: u32 = ioc_rw(0x47, CMD64_SIZE);

/// `sizeof(struct nvme_passthru_cmd)`.
pub const CMD_SIZE: usize = 72;
/// `sizeof(struct nvme_passthru_cmd64)`.
pub const CMD64_SIZE: usize = 80;
/// Offset of `result` in the 32-bit form (`__u32`).
pub const RESULT_OFFSET: usize = 68;
/// Offset of `result` in the 64-bit form (`__u64`, after `rsvd2`).
pub const RESULT64_OFFSET: usize = 72;

/// Largest data buffer: one PRP list page is never needed beyond this, and
/// every log and identify structure nvme-cli reads by default fits.
pub const MAX_DATA_LEN: u32 = 64 * 1024;
/// Controller page (CC.MPS = 0).
pub const PAGE: u64 = 4096;

const fn ioc_rw(nr: u32, size: usize) -> u32 {
    // _IOC(_IOC_READ | _IOC_WRITE, 'N', nr, size) on x86 and arm64.
    (3 << 30) | ((size as u32) << 16) | ((b'N' as u32) << 8) | nr
}

/// The fields of `struct nvme_passthru_cmd[64]` a command is built from
/// (both forms agree up to `timeout_ms`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassthruCmd {
    pub opcode: u8,
    pub flags: u8,
    pub nsid: u32,
    pub cdw2: u32,
    pub cdw3: u32,
    pub metadata: u64,
    pub addr: u64,
    pub metadata_len: u32,
    pub data_len: u32,
    pub cdw10_15: [u32; 6],
    pub timeout_ms: u32,
}

// The ioctl's structure is in the caller's (host) byte order, unlike what
// goes to the controller.
fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_ne_bytes)
}

impl PassthruCmd {
    /// Decodes the user's structure; `None` if it is shorter than the
    /// 32-bit form.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < CMD_SIZE {
            return None;
        }
        let mut cdw10_15 = [0u32; 6];
        for (i, w) in cdw10_15.iter_mut().enumerate() {
            *w = u32_at(b, 40 + 4 * i);
        }
        Some(Self {
            opcode: *b.first()?,
            flags: *b.get(1)?,
            nsid: u32_at(b, 4),
            cdw2: u32_at(b, 8),
            cdw3: u32_at(b, 12),
            metadata: u64_at(b, 16),
            addr: u64_at(b, 24),
            metadata_len: u32_at(b, 32),
            data_len: u32_at(b, 36),
            cdw10_15,
            timeout_ms: u32_at(b, 64),
        })
    }
}

/// Which way the data buffer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    None,
    /// Host to controller (opcode bit 0 set, as the in-tree driver reads it).
    ToDevice,
    FromDevice,
}

/// Why a command is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed for this driver: fused/SGL flags, metadata, oversized data
    /// (`-EINVAL`).
    Invalid,
    /// A command that changes state this driver owns (`-EPERM`).
    NotPermitted,
}

/// Admin opcodes accepted: they read state, or change none that this
/// driver owns.  Everything else is refused: the queue and namespace
/// commands, Abort (command ids are the driver's), Asynchronous Event
/// Request (it would occupy the admin queue until the controller has an
/// event), Doorbell Buffer Config, Firmware Commit (it may reset the
/// controller behind the driver), Format NVM, Sanitize, Security Send,
/// Virtualization Management and every vendor-specific opcode.  Set
/// Features is checked per feature ([`SET_FEATURES_ALLOWED`]).
pub const ALLOWED_OPCODES: [u8; 9] = [
    0x02, // Get Log Page
    0x06, // Identify
    0x0a, // Get Features
    0x11, // Firmware Image Download (stores an image; Commit is refused)
    0x14, // Device Self-test
    0x18, // Keep Alive
    0x1a, // Directive Receive
    0x82, // Security Receive
    0x86, // Get LBA Status
];

/// Set Features.
pub const SET_FEATURES: u8 = 0x09;

/// Feature identifiers Set Features may change: power and thermal
/// management, the timestamp and the software progress marker.  Refused
/// among others: Number of Queues (0x07), Interrupt Coalescing (0x08) and
/// Vector Configuration (0x09), which the driver's queues depend on;
/// Volatile Write Cache (0x06), which the block layer was told about;
/// Host Memory Buffer (0x0d), which would have the controller DMA into host
/// memory this driver never gave it.
pub const SET_FEATURES_ALLOWED: [u8; 6] = [
    0x02, // Power Management
    0x04, // Temperature Threshold
    0x0c, // Autonomous Power State Transition
    0x0e, // Timestamp
    0x10, // Host Controlled Thermal Management
    0x80, // Software Progress Marker
];

/// Get Features.
pub const GET_FEATURES: u8 = 0x0a;

/// First vendor-specific feature identifier: Get Features refuses these,
/// whose data may be of any size.
pub const VENDOR_FEATURES: u8 = 0xc0;

/// Whether `cmd`'s opcode (and, for Get/Set Features, its feature) is
/// accepted.
pub fn permitted(cmd: &PassthruCmd) -> bool {
    let fid = cmd.cdw10_15[0] as u8;
    if cmd.opcode == SET_FEATURES {
        SET_FEATURES_ALLOWED.contains(&fid)
    } else if cmd.opcode == GET_FEATURES {
        fid < VENDOR_FEATURES
    } else {
        ALLOWED_OPCODES.contains(&cmd.opcode)
    }
}

/// What to do with an accepted command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub dir: Dir,
    pub len: u32,
}

/// Checks `cmd` against what this driver accepts.
pub fn plan(cmd: &PassthruCmd) -> Result<Plan, Refusal> {
    if cmd.flags != 0 || cmd.metadata != 0 || cmd.metadata_len != 0 {
        return Err(Refusal::Invalid);
    }
    if cmd.data_len > MAX_DATA_LEN {
        return Err(Refusal::Invalid);
    }
    if !permitted(cmd) {
        return Err(Refusal::NotPermitted);
    }
    // The controller moves what the command says, whatever `data_len`
    // says: a buffer shorter than that is a caller's mistake, which the
    // in-tree driver sends on, PRP2 zero, to bus address 0 past the first
    // page.
    if transfer_len(cmd) > u64::from(cmd.data_len) {
        return Err(Refusal::Invalid);
    }
    let dir = if cmd.data_len == 0 {
        Dir::None
    } else if cmd.opcode & 1 != 0 {
        Dir::ToDevice
    } else {
        Dir::FromDevice
    };
    Ok(Plan {
        dir,
        len: cmd.data_len,
    })
}

/// Bytes an accepted command moves by its own fields (NVMe Base
/// Specification 2.0, section 5): a count of dwords (0's based) or bytes.
/// Commands not listed move at most one page (the features
/// [`permitted`] lets through, and their data structures), which the buffer
/// always has ([`buffer_len`]).
pub fn transfer_len(cmd: &PassthruCmd) -> u64 {
    let [cdw10, cdw11, cdw12, ..] = cmd.cdw10_15;
    let dwords = |n: u64| (n + 1) * 4;
    match cmd.opcode {
        // Get Log Page: NUMDL (CDW10 31:16), NUMDU (CDW11 15:0).
        0x02 => dwords(u64::from(cdw10 >> 16) | (u64::from(cdw11 & 0xffff) << 16)),
        // Identify: one 4 KiB data structure.
        0x06 => 4096,
        // Firmware Image Download, Directive Receive: NUMD (CDW10).
        0x11 | 0x1a => dwords(u64::from(cdw10)),
        // Security Receive: Allocation Length (CDW11), bytes.
        0x82 => u64::from(cdw11),
        // Get LBA Status: MNDW (CDW12).
        0x86 => dwords(u64::from(cdw12)),
        _ => 0,
    }
}

/// Bytes of the kernel buffer given to the controller for a `len`-byte
/// transfer: whole pages, at least one.
pub fn buffer_len(len: u32) -> usize {
    (pages(len).max(1) * PAGE) as usize
}

/// Controller pages a buffer of `len` bytes at a page-aligned address spans.
pub const fn pages(len: u32) -> u64 {
    (len as u64).div_ceil(PAGE)
}
