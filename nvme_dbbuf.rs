// SPDX-License-Identifier: GPL-2.0

//! NVMe PCI host driver whose queues implement Doorbell Buffer Config.
//!
//! Emulated NVMe controllers trap every MMIO doorbell write.  NVMe 1.3's
//! Doorbell Buffer Config command (opcode 0x7C) lets the host publish doorbell
//! values in memory (Shadow Doorbell buffer) and ring MMIO only when the
//! controller's EventIdx buffer says it must.  See
//! Documentation/nvme-dbbuf.rst.

use kernel::{
    device::Core,
    dma::{Device as _, DmaMask},
    driver, pci,
    prelude::*,
};

#[path = "nvme_dbbuf/blk.rs"]
mod blk;
#[path = "nvme_dbbuf/blk_ops.rs"]
mod blk_ops;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/cmd.rs"]
mod cmd;
#[path = "nvme_dbbuf/controller.rs"]
mod controller;
#[path = "nvme_dbbuf/ctrl.rs"]
mod ctrl;
#[path = "nvme_dbbuf/data_map.rs"]
mod data_map;
#[path = "nvme_dbbuf/dbbuf.rs"]
mod dbbuf;
#[path = "nvme_dbbuf/debugfs.rs"]
mod debugfs;
#[path = "nvme_dbbuf/doorbell.rs"]
mod doorbell;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/eventidx.rs"]
mod eventidx;
#[path = "nvme_dbbuf/fault.rs"]
mod fault;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/identify.rs"]
mod identify;
#[path = "nvme_dbbuf/irq.rs"]
mod irq;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/le.rs"]
mod le;
#[path = "nvme_dbbuf/lease.rs"]
mod lease;
#[path = "nvme_dbbuf/misc.rs"]
mod misc;
#[path = "nvme_dbbuf/mq.rs"]
mod mq;
#[path = "nvme_dbbuf/mq_disk.rs"]
mod mq_disk;
#[path = "nvme_dbbuf/mq_request.rs"]
mod mq_request;
#[path = "nvme_dbbuf/mq_tag_set.rs"]
mod mq_tag_set;
#[path = "nvme_dbbuf/mq_vtable.rs"]
mod mq_vtable;
#[path = "nvme_dbbuf/namespace.rs"]
mod namespace;
#[path = "nvme_dbbuf/nvme_dev.rs"]
mod nvme_dev;
#[path = "nvme_dbbuf/passthru.rs"]
mod passthru;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/passthru_cmd.rs"]
mod passthru_cmd;
#[path = "nvme_dbbuf/pci_ext.rs"]
mod pci_ext;
#[path = "nvme_dbbuf/pool.rs"]
mod pool;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/prp.rs"]
mod prp;
#[path = "nvme_dbbuf/queue.rs"]
mod queue;
#[path = "nvme_dbbuf/regs.rs"]
mod regs;
#[path = "nvme_dbbuf/request.rs"]
mod request;
#[path = "nvme_dbbuf/reset_work.rs"]
mod reset_work;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/spec.rs"]
mod spec;
// `pub` for the host tests, which include the file as a crate module.
#[expect(unreachable_pub)]
#[path = "nvme_dbbuf/state.rs"]
mod state;
#[path = "nvme_dbbuf/timeout.rs"]
mod timeout;
#[path = "nvme_dbbuf/wire_dma.rs"]
mod wire_dma;

// Shared with the host tests; not every item is used by every module.
#[path = "common/dyndbg.rs"]
mod dyndbg;
#[allow(dead_code, unreachable_pub)]
#[path = "common/dyndbg_core.rs"]
mod dyndbg_core;
include!(env!("RFL_DYNDBG_FUNCS"));

use dyndbg::ddbg;
use lease::Lending;
use nvme_dev::DevLt;
pub(crate) use nvme_dev::NvmeDev;

/// PCI class code of an NVMe controller: mass storage, non-volatile memory, NVM Express.
const NVME_CLASS: u32 = 0x01_08_02;

struct NvmeDbbufDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <NvmeDbbufDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_class(NVME_CLASS, 0xff_ff_ff), ())]
);

impl pci::Driver for NvmeDbbufDriver {
    type IdInfo = ();
    type Data<'bound> = Lending<'bound, DevLt>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            ddbg!("probing {:?}\n", pdev.pci_class());
            pdev.enable_device_mem()?;
            pdev.set_master();
            pci_ext::disable_intx(pdev);
            // SAFETY: no DMA allocation or mapping exists yet for this device.
            unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<64>())? };
            // PRPs describe a segment of any length, page by page; without
            // this the DMA layer assumes 64 KiB and DMA debug flags merged
            // segments.
            // SAFETY: as above, nothing is allocated or mapped yet.
            unsafe { pdev.dma_set_max_seg_size(u32::MAX) };
            let bar = pdev.iomap_region_sized::<{ regs::END }>(0, c"nvme_dbbuf")?;
            Ok(NvmeDev::new(pdev, bar))
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.teardown();
    }
}

/// The module: the driver registration and the debugfs root each
/// controller hangs its directory from, made first and dropped last.
#[pin_data]
struct NvmeDbbufModule {
    #[pin]
    driver: driver::Registration<pci::Adapter<NvmeDbbufDriver>>,
    debugfs_root: debugfs::RootDir,
}

impl kernel::InPlaceModule for NvmeDbbufModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let lose = *module_parameters::fault_lose_io.value_ref();
        if lose != 0 && !fault::HOOKS {
            pr_warn!("nvme_dbbuf: fault_lose_io ignored: no CONFIG_FAULT_INJECTION_DEBUG_FS\n");
        }
        fault::set_lose_io(lose);
        // SAFETY: module init runs once per load, before anything else of
        // the module uses the lock.
        unsafe { debugfs::ROOT.init() };
        try_pin_init!(Self {
            debugfs_root: debugfs::RootDir::new(),
            driver <- driver::Registration::new(
                <Self as kernel::ModuleMetadata>::NAME,
                module
            ),
        })
    }
}

kernel::prelude::module! {
    type: NvmeDbbufModule,
    name: "nvme_dbbuf",
    authors: ["rfl-bench developers"],
    description: "NVMe PCI host driver with Doorbell Buffer Config (shadow doorbells + EventIdx)",
    license: "GPL",
    params: {
        dbbuf: bool {
            default: true,
            description: "Use Doorbell Buffer Config (shadow doorbells + EventIdx) when the controller offers it",
        },
        max_retries: u8 {
            default: 5,
            description: "Times a failed or reset-cancelled I/O command is retried before it fails",
        },
        io_timeout: u32 {
            default: 30,
            description: "I/O command timeout in seconds (per disk: queue/io_timeout)",
        },
        poll_queues: u32 {
            default: 0,
            description: "I/O queues without interrupt, for polled I/O (io_uring IOPOLL, RWF_HIPRI); at most 16",
        },
        fault_lose_io: u32 {
            default: 0,
            description: "Test hook: lose this many I/O completions from load on, as a controller that drops them",
        },
    },
}
