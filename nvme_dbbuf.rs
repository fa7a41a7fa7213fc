// SPDX-License-Identifier: GPL-2.0

//! NVMe PCI host driver whose queues implement Doorbell Buffer Config.
//!
//! Emulated NVMe controllers trap every MMIO doorbell write.  NVMe 1.3's
//! Doorbell Buffer Config command (opcode 0x7C) lets the host publish doorbell
//! values in memory (Shadow Doorbell buffer) and ring MMIO only when the
//! controller's EventIdx buffer says it must.  See
//! Documentation/nvme-dbbuf.rst.

use core::sync::atomic::{AtomicU64, Ordering};

use kernel::{
    device::{
        Bound,
        Core, //
    },
    dma::{Coherent, Device as _, DmaMask},
    io::Io,
    pci,
    prelude::*,
    str::BStr, //
};

#[path = "nvme_dbbuf/blk.rs"]
mod blk;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/cmd.rs"]
mod cmd;
#[path = "nvme_dbbuf/ctrl.rs"]
mod ctrl;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/identify.rs"]
mod identify;
#[path = "nvme_dbbuf/irq.rs"]
mod irq;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/prp.rs"]
mod prp;
#[path = "nvme_dbbuf/queue.rs"]
mod queue;
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

use blk::{BlkShared, Disk, IoCompleter, Limits, Ns, TagSet};
use ctrl::Ctrl;
use dyndbg::{ddbg, dev_ddbg};
use identify::{IdCtrl, IdNs, IDENTIFY_SIZE};
use irq::{IrqVectors, QueueIrq};
use queue::Queue;

/// PCI class code of an NVMe controller: mass storage, non-volatile memory, NVM Express.
const NVME_CLASS: u32 = 0x01_08_02;
/// I/O queue entries, capped by CAP.MQES.
const IO_QUEUE_DEPTH: u32 = 256;
/// Namespaces per controller this driver exposes.
const MAX_NAMESPACES: usize = 16;

/// Controller instance numbers in use (`rnvme<C>`), at most 64 controllers.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

fn instance_get() -> Result<u32> {
    let mut cur = INSTANCES.load(Ordering::Relaxed);
    loop {
        let free = (!cur).trailing_zeros();
        if free >= 64 {
            return Err(EBUSY);
        }
        match INSTANCES.compare_exchange(
            cur,
            cur | (1 << free),
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(free),
            Err(now) => cur = now,
        }
    }
}

fn instance_put(n: u32) {
    INSTANCES.fetch_and(!(1u64 << n), Ordering::AcqRel);
}

/// Per-controller state, alive while the driver is bound.
///
/// Field order is teardown order: disks (waits for I/O), interrupts, tag
/// set, vectors, queues, then the controller and its BAR.  `Drop` deletes
/// the I/O queues and shuts the controller down after the disks are gone.
struct NvmeDev<'bound> {
    disks: KVec<Disk>,
    irqs: KVec<QueueIrq>,
    tagset: Option<TagSet>,
    vectors: Option<IrqVectors<'bound>>,
    shared: KBox<BlkShared>,
    instance: u32,
    ctrl: Ctrl<'bound>,
}

impl<'bound> NvmeDev<'bound> {
    fn start(pdev: &'bound pci::Device<Bound>, bar: ctrl::Bar0<'bound>) -> Result<Self> {
        let ctrl = Ctrl::new(pdev, bar)?;
        let cap = ctrl.cap;
        let vs = ctrl.bar.read(regs::VS);
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

        let instance = instance_get()?;
        let mut dev = NvmeDev {
            disks: KVec::new(),
            irqs: KVec::new(),
            tagset: None,
            vectors: None,
            shared: KBox::new(
                BlkShared {
                    dev: blk::dev_raw(pdev.as_ref()),
                    queues: KVec::new(),
                },
                GFP_KERNEL,
            )?,
            instance,
            ctrl,
        };
        dev.ctrl.disable()?;
        dev.ctrl.enable()?;
        dev_ddbg!(
            pdev,
            "controller enabled, admin queue {} entries\n",
            dev.ctrl.admin.depth
        );
        dev.setup(version)?;
        Ok(dev)
    }

    fn setup(&mut self, version: spec::Version) -> Result {
        let pdev = self.ctrl.pdev;
        let buf = Coherent::<u8>::zeroed_slice(pdev.as_ref(), IDENTIFY_SIZE, GFP_KERNEL)?;
        self.ctrl
            .admin_ok(cmd::identify(cmd::cns::CONTROLLER, 0, buf.dma_address()))?;
        // SAFETY: the controller finished writing (command completed) and
        // nothing else uses `buf`.
        let id = IdCtrl::parse(unsafe { buf.as_ref() });
        dev_info!(
            pdev,
            "rnvme{}: {} {} firmware {}, {} namespace(s), OACS {:#06x}{}\n",
            self.instance,
            BStr::from_bytes(identify::trim(&id.mn)),
            BStr::from_bytes(identify::trim(&id.sn)),
            BStr::from_bytes(identify::trim(&id.fr)),
            id.nn,
            id.oacs,
            if id.has_dbbuf() {
                " (Doorbell Buffer Config)"
            } else {
                ""
            }
        );

        // I/O queues: one per CPU, as many as the controller and the
        // interrupt vectors allow.
        // SAFETY: `nr_cpu_ids` is set once during boot.
        let cpus = unsafe { kernel::bindings::nr_cpu_ids };
        let want = u16::try_from(cpus.clamp(1, 64)).unwrap_or(1);
        let dw0 = self.ctrl.admin_ok(cmd::set_num_queues(want, want))?;
        let (sqs, cqs) = cmd::granted_queues(dw0);
        let granted = sqs.min(cqs).min(u32::from(want));
        let vectors = IrqVectors::alloc(pdev, granted)?;
        let nr = vectors.count().min(granted);
        let vectors = self.vectors.insert(vectors);
        let depth = u16::try_from(IO_QUEUE_DEPTH.min(self.ctrl.max_entries)).unwrap_or(2);
        for i in 0..nr {
            let qid = u16::try_from(i + 1)?;
            let q = KBox::pin_init(
                Queue::new(pdev.as_ref(), qid, depth, self.ctrl.doorbells(qid)?)?,
                GFP_KERNEL,
            )?;
            self.ctrl
                .admin_ok(cmd::create_cq(qid, depth, q.cq_dma(), u16::try_from(i)?))?;
            if let Err(e) = self
                .ctrl
                .admin_ok(cmd::create_sq(qid, depth, q.sq_dma(), qid))
            {
                let _ = self.ctrl.admin_ok(cmd::delete_cq(qid));
                return Err(e);
            }
            self.shared.queues.push(q, GFP_KERNEL)?;
        }
        for (i, q) in self.shared.queues.iter().enumerate() {
            // SAFETY: the queue is boxed in `self.shared`, dropped after
            // `self.irqs` (field order).
            let irq = unsafe { QueueIrq::new::<IoCompleter>(vectors, u32::try_from(i)?, q)? };
            self.irqs.push(irq, GFP_KERNEL)?;
        }
        dev_ddbg!(
            pdev,
            "{} I/O queue(s) of {} entries on {} vector(s)\n",
            nr,
            depth,
            vectors.count()
        );

        // SAFETY: `self.shared` outlives the tag set and the disks (field order).
        let tagset = self
            .tagset
            .insert(unsafe { TagSet::new(&self.shared, u32::from(depth) - 1)? });

        // Namespaces: the active list (NVMe 1.1+), else 1..=NN.
        let mut nsids = KVec::new();
        if version >= spec::Version::new(1, 1, 0)
            && self
                .ctrl
                .admin_ok(cmd::identify(
                    cmd::cns::ACTIVE_NS_LIST,
                    0,
                    buf.dma_address(),
                ))
                .is_ok()
        {
            // SAFETY: as above, the command completed.
            for id in identify::active_nsids(unsafe { buf.as_ref() }).take(MAX_NAMESPACES) {
                nsids.push(id, GFP_KERNEL)?;
            }
        } else {
            for id in 1..=id.nn.min(MAX_NAMESPACES as u32) {
                nsids.push(id, GFP_KERNEL)?;
            }
        }
        let max_transfer = id
            .max_transfer(blk::PAGE)
            .map_or(blk::MAX_TRANSFER, |m| m.min(blk::MAX_TRANSFER));
        for nsid in nsids {
            self.ctrl
                .admin_ok(cmd::identify(cmd::cns::NAMESPACE, nsid, buf.dma_address()))?;
            // SAFETY: as above.
            let ns = IdNs::parse(unsafe { buf.as_ref() });
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
            let _ = core::fmt::Write::write_fmt(
                &mut w,
                format_args!("rnvme{}n{}", self.instance, nsid),
            );
            let len = w.bytes_written();
            let disk = Disk::new(
                tagset,
                blk::dev_raw(pdev.as_ref()),
                Ns {
                    dev: blk::dev_raw(pdev.as_ref()),
                    nsid,
                    lba_shift: ns.lbads,
                },
                &Limits {
                    block_size: bs,
                    max_transfer,
                    write_cache: id.has_vwc(),
                },
                name.get(..len).unwrap_or(&[]),
                ns.capacity_sectors(),
            )?;
            dev_info!(
                pdev,
                "{}: {} sectors of 512 B, block size {}, max transfer {} KiB\n",
                BStr::from_bytes(name.get(..len).unwrap_or(&[])),
                ns.capacity_sectors(),
                bs,
                max_transfer / 1024
            );
            self.disks.push(disk, GFP_KERNEL)?;
        }
        Ok(())
    }
}

impl Drop for NvmeDev<'_> {
    fn drop(&mut self) {
        // Disks first: del_gendisk flushes and waits for outstanding I/O.
        self.disks.clear();
        // Then tell the controller we are done: delete the I/O queues (SQ
        // before its CQ) and shut down, so it stops touching our memory
        // before the rings are freed.
        for q in self.shared.queues.iter().rev() {
            let _ = self.ctrl.admin_ok(cmd::delete_sq(q.qid));
            let _ = self.ctrl.admin_ok(cmd::delete_cq(q.qid));
        }
        self.ctrl.shutdown();
        instance_put(self.instance);
        dev_info!(self.ctrl.pdev, "unbound\n");
    }
}

struct NvmeDbbufDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <NvmeDbbufDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_class(NVME_CLASS, 0xff_ff_ff), ())]
);

impl pci::Driver for NvmeDbbufDriver {
    type IdInfo = ();
    type Data<'bound> = NvmeDev<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        ddbg!("probing {:?}\n", pdev.pci_class());
        pdev.enable_device_mem()?;
        pdev.set_master();
        // SAFETY: no DMA allocation or mapping exists yet for this device.
        unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<64>())? };

        let bar = pdev.iomap_region_sized::<{ regs::END }>(0, c"nvme_dbbuf")?;
        NvmeDev::start(pdev, bar)
    }
}

kernel::module_pci_driver! {
    type: NvmeDbbufDriver,
    name: "nvme_dbbuf",
    authors: ["rfl-bench developers"],
    description: "NVMe PCI host driver with Doorbell Buffer Config (shadow doorbells + EventIdx)",
    license: "GPL",
}
