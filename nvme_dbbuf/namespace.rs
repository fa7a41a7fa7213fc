// SPDX-License-Identifier: GPL-2.0

//! Namespaces: one disk per active namespace, added once the controller
//! is at its final address (the timeout handler needs it for the partition
//! scan's I/O).

use kernel::{dma::Coherent, prelude::*, str::BStr};

use crate::blk::{Disk, Limits, Ns};
use crate::cmd;
use crate::identify::{IdNs, IDENTIFY_SIZE};
use crate::NvmeDev;

/// What probe found out about the namespaces, for [`NvmeDev::add_disks`].
pub(crate) struct DiskPlan {
    pub(crate) nsids: KVec<u32>,
    pub(crate) max_transfer: u64,
    pub(crate) write_cache: bool,
    pub(crate) write_zeroes: bool,
    pub(crate) discard: bool,
}

impl NvmeDev<'_> {
    /// One disk per usable namespace of `plan`.  Their partition scans do
    /// I/O, so the controller is at its final address by now.
    pub(crate) fn add_disks(&self, plan: DiskPlan) -> Result {
        let pdev = self.ctrl.pdev;
        let tagset = self.tagset.as_ref().ok_or(EINVAL)?;
        let buf = Coherent::<u8>::zeroed_slice(pdev.as_ref(), IDENTIFY_SIZE, GFP_KERNEL)?;
        for nsid in plan.nsids {
            {
                // A reset (a timeout on an earlier disk's I/O) may run now:
                // not under an admin command.
                let _reset = self.reset_lock.lock();
                self.ctrl
                    .admin_ok(cmd::identify(cmd::cns::NAMESPACE, nsid, buf.dma_address()))?;
            }
            let ns = IdNs::parse(&crate::nvme_dev::read_back(&buf)?);
            let Some(bs) = ns.block_size() else {
                dev_warn!(
                    pdev,
                    "namespace {}: unsupported format (LBADS {}, metadata {}), skipped\n",
                    nsid,
                    ns.lbads,
                    ns.ms
                );
                continue;
            };
            let mut name = [0u8; 32];
            let mut w = kernel::str::Formatter::new(&mut name);
            core::fmt::Write::write_fmt(&mut w, format_args!("rnvme{}n{}", self.instance(), nsid))?;
            let name = name.get(..w.bytes_written()).ok_or(EINVAL)?;
            let lim = Limits {
                block_size: bs,
                max_transfer: plan.max_transfer,
                write_cache: plan.write_cache,
                write_zeroes: plan.write_zeroes,
                discard: plan.discard,
            };
            let (set, sectors) = (tagset, ns.capacity_sectors());
            let (data, params) = (
                Ns {
                    nsid,
                    lba_shift: ns.lbads,
                },
                lim.disk_params()?,
            );
            let disk = Disk::new(set, pdev.as_ref(), data, &params, name, sectors)?;
            dev_info!(
                pdev,
                "{}: {} sectors of 512 B, block size {}, max transfer {} KiB\n",
                BStr::from_bytes(name),
                ns.capacity_sectors(),
                bs,
                plan.max_transfer / 1024
            );
            self.disks.lock().push(disk, GFP_KERNEL)?;
        }
        Ok(())
    }
}
