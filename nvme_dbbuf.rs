// SPDX-License-Identifier: GPL-2.0

//! NVMe PCI host driver whose queues implement Doorbell Buffer Config.
//!
//! Emulated NVMe controllers trap every MMIO doorbell write.  NVMe 1.3's
//! Doorbell Buffer Config command (opcode 0x7C) lets the host publish doorbell
//! values in memory (Shadow Doorbell buffer) and ring MMIO only when the
//! controller's EventIdx buffer says it must.  See
//! Documentation/nvme-dbbuf.rst.

use kernel::{
    device::{
        Bound,
        Core, //
    },
    io::Io,
    pci,
    prelude::*, //
};

#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/cmd.rs"]
mod cmd;
#[path = "nvme_dbbuf/regs.rs"]
mod regs;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/spec.rs"]
mod spec;

// Shared with the host tests; not every item is used by every module.
#[path = "common/dyndbg.rs"]
mod dyndbg;
#[allow(dead_code, unreachable_pub)]
#[path = "common/dyndbg_core.rs"]
mod dyndbg_core;
include!(env!("RFL_DYNDBG_FUNCS"));

use dyndbg::{ddbg, dev_ddbg};

/// PCI class code of an NVMe controller: mass storage, non-volatile memory, NVM Express.
const NVME_CLASS: u32 = 0x01_08_02;

type Bar0<'bound> = pci::Bar<'bound, { regs::END }>;

/// Per-controller state, alive while the driver is bound.
struct NvmeCtrl<'bound> {
    pdev: &'bound pci::Device<Bound>,
    _bar: Bar0<'bound>,
}

struct NvmeDbbufDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <NvmeDbbufDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_class(NVME_CLASS, 0xff_ff_ff), ())]
);

impl pci::Driver for NvmeDbbufDriver {
    type IdInfo = ();
    type Data<'bound> = NvmeCtrl<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        ddbg!("probing {:?}\n", pdev.pci_class());
        pdev.enable_device_mem()?;
        pdev.set_master();

        let bar = pdev.iomap_region_sized::<{ regs::END }>(0, c"nvme_dbbuf")?;

        // 64-bit registers: the compile-time checked accessors only know the
        // BAR is 4-byte aligned, so these are alignment-checked at run time.
        let cap = bar.try_read(regs::CAP)?;
        let vs = bar.read(regs::VS);
        let version = spec::Version::new(vs.mjr().into(), vs.mnr().into(), vs.ter().into());
        let mqes: u16 = cap.mqes().into();
        dev_ddbg!(
            pdev,
            "CAP {:#018x} VS {:#010x}\n",
            cap.into_raw(),
            vs.into_raw()
        );

        dev_info!(
            pdev,
            "NVMe controller version {}.{}.{}, CAP.MQES {} ({} entries), CAP.DSTRD {} ({} bytes), CAP.TO {} ms\n",
            version.major,
            version.minor,
            version.tertiary,
            mqes,
            spec::max_queue_entries(mqes),
            u8::from(cap.dstrd()),
            spec::doorbell_stride(cap.dstrd().into()),
            spec::ready_timeout_ms(cap.to().into()),
        );

        Ok(NvmeCtrl { pdev, _bar: bar })
    }
}

impl Drop for NvmeCtrl<'_> {
    fn drop(&mut self) {
        dev_info!(self.pdev, "unbound\n");
    }
}

kernel::module_pci_driver! {
    type: NvmeDbbufDriver,
    name: "nvme_dbbuf",
    authors: ["rfl-bench developers"],
    description: "NVMe PCI host driver with Doorbell Buffer Config (shadow doorbells + EventIdx)",
    license: "GPL",
}
