// SPDX-License-Identifier: GPL-2.0

//! NVMe controller registers (NVMe Base Specification 2.0, section 3.1.4).
//!
//! Layout only: what the fields mean lives in the host-tested `spec.rs`.

use kernel::io::register;

register! {
    /// Controller Capabilities.
    pub(crate) CAP(u64) @ 0x00 {
        /// Memory Page Size Maximum: 2 ^ (12 + MPSMAX).
        55:52 mpsmax;
        /// Memory Page Size Minimum: 2 ^ (12 + MPSMIN).
        51:48 mpsmin;
        /// Boot Partition Support.
        45:45 bps;
        /// Command Sets Supported; bit 0 is the NVM command set.
        44:37 css;
        /// NVM Subsystem Reset Supported.
        36:36 nssrs;
        /// Doorbell Stride: doorbells are 2 ^ (2 + DSTRD) bytes apart.
        35:32 dstrd;
        /// Timeout for CSTS.RDY transitions, in 500 ms units.
        31:24 to;
        /// Arbitration Mechanism Supported.
        18:17 ams;
        /// Contiguous Queues Required.
        16:16 cqr;
        /// Maximum Queue Entries Supported, zero-based.
        15:0 mqes;
    }

    /// Version.
    pub(crate) VS(u32) @ 0x08 {
        31:16 mjr;
        15:8 mnr;
        7:0 ter;
    }

    /// Controller Configuration.
    pub(crate) CC(u32) @ 0x14 {
        /// I/O Completion Queue Entry Size, log2.
        23:20 iocqes;
        /// I/O Submission Queue Entry Size, log2.
        19:16 iosqes;
        /// Shutdown Notification.
        15:14 shn;
        /// Arbitration Mechanism Selected.
        13:11 ams;
        /// Memory Page Size: 2 ^ (12 + MPS).
        10:7 mps;
        /// I/O Command Set Selected.
        6:4 css;
        /// Enable.
        0:0 en;
    }

    /// Controller Status.
    pub(crate) CSTS(u32) @ 0x1c {
        /// Shutdown Status.
        3:2 shst;
        /// Controller Fatal Status.
        1:1 cfs;
        /// Ready.
        0:0 rdy;
    }

    /// Admin Queue Attributes (both sizes zero-based).
    pub(crate) AQA(u32) @ 0x24 {
        27:16 acqs;
        11:0 asqs;
    }

    /// Admin Submission Queue Base Address.
    pub(crate) ASQ(u64) @ 0x28 {
        63:0 base;
    }

    /// Admin Completion Queue Base Address.
    pub(crate) ACQ(u64) @ 0x30 {
        63:0 base;
    }
}

/// Size of the controller register block; doorbells start here.
pub(crate) const END: usize = 0x1000;
