// SPDX-License-Identifier: GPL-2.0

//! NVMe PCI host driver whose queues implement Doorbell Buffer Config.
//!
//! Emulated NVMe controllers trap every MMIO doorbell write.  NVMe 1.3's
//! Doorbell Buffer Config command (opcode 0x7C) lets the host publish doorbell
//! values in memory (Shadow Doorbell buffer) and ring MMIO only when the
//! controller's EventIdx buffer says it must.  See
//! Documentation/nvme-dbbuf.rst.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::{
    debugfs::{Dir, Scope},
    device::{
        Bound,
        Core, //
    },
    dma::{Coherent, Device as _, DmaMask},
    driver,
    io::Io,
    new_mutex,
    pci,
    prelude::*,
    str::BStr,
    sync::{Arc, Mutex}, //
};

#[path = "nvme_dbbuf/blk.rs"]
mod blk;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/cmd.rs"]
mod cmd;
#[path = "nvme_dbbuf/controller.rs"]
mod controller;
#[path = "nvme_dbbuf/ctrl.rs"]
mod ctrl;
#[path = "nvme_dbbuf/dbbuf.rs"]
mod dbbuf;
#[path = "nvme_dbbuf/debugfs.rs"]
mod debugfs;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/eventidx.rs"]
mod eventidx;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/identify.rs"]
mod identify;
#[path = "nvme_dbbuf/irq.rs"]
mod irq;
#[path = "nvme_dbbuf/namespace.rs"]
mod namespace;
#[path = "nvme_dbbuf/passthru.rs"]
mod passthru;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/passthru_cmd.rs"]
mod passthru_cmd;
#[path = "nvme_dbbuf/pci_ext.rs"]
mod pci_ext;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/prp.rs"]
mod prp;
#[path = "nvme_dbbuf/queue.rs"]
mod queue;
#[path = "nvme_dbbuf/regs.rs"]
mod regs;
#[path = "nvme_dbbuf/reset_work.rs"]
mod reset_work;
#[allow(dead_code, unreachable_pub)]
#[path = "nvme_dbbuf/spec.rs"]
mod spec;
// `pub` for the host tests, which include the file as a crate module.
#[expect(unreachable_pub)]
#[path = "nvme_dbbuf/state.rs"]
mod state;

// Shared with the host tests; not every item is used by every module.
#[path = "common/dyndbg.rs"]
mod dyndbg;
#[allow(dead_code, unreachable_pub)]
#[path = "common/dyndbg_core.rs"]
mod dyndbg_core;
include!(env!("RFL_DYNDBG_FUNCS"));

use blk::{BlkShared, Disk, IoCompleter, TagSet};
use ctrl::Ctrl;
use dbbuf::DbBuf;
use dyndbg::{ddbg, dev_ddbg};
use identify::{IdCtrl, IDENTIFY_SIZE};
use irq::{AdminCompleter, IrqVectors, QueueIrq};
use namespace::DiskPlan;
use queue::Queue;
use reset_work::ResetWork;
use state::{CtrlState, State};

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

/// The driver data: the controller, and its character device and debugfs
/// directory, which go first (they point at the controller).  `unbind`
/// shuts the hardware down before any of it is dropped.
struct DriverData<'bound> {
    _chardev: Pin<KBox<passthru::CharDev>>,
    _debugfs: Option<Pin<KBox<Scope<debugfs::Control>>>>,
    dev: KBox<NvmeDev<'bound>>,
}

/// Per-controller state, alive while the driver is bound.
///
/// The hardware is shut down by [`NvmeDev::teardown`] (from `unbind`):
/// disks deleted, I/O queues deleted, controller shut down.  What is left
/// is freed in field order: interrupts (`Drop`), tag set, vectors, queues;
/// the queues and the controller share the BAR mapping and the doorbell
/// buffers by reference count, so neither goes while a queue could use it.
pub(crate) struct NvmeDev<'bound> {
    /// Added after the controller has its final address (the timeout
    /// handler needs it for the partition scan's I/O).
    disks: Pin<KBox<Mutex<KVec<Disk>>>>,
    irqs: KVec<QueueIrq>,
    /// The admin queue's interrupt (vector 0), freed after the shutdown.
    admin_irq: Option<QueueIrq>,
    tagset: Option<TagSet>,
    vectors: Option<IrqVectors<'bound>>,
    shared: KBox<BlkShared<'bound>>,
    /// Reset requested by a completion with a bad command id; shared with
    /// the queues that queue it.
    reset_work: Arc<ResetWork<'bound>>,
    /// Who may submit, reset or tear down (`state.rs`).
    pub(crate) state: State,
    /// The hardware shutdown of [`Self::teardown`] is done.
    stopped: AtomicBool,
    /// Shadow Doorbell / EventIdx buffers, if the controller supports the
    /// command (allocated once, reused after every reset).
    dbbuf: Option<Arc<DbBuf>>,
    /// Whether the I/O queues currently use shadow doorbells.
    dbbuf_on: AtomicBool,
    resets: AtomicU32,
    /// Serialises resets and mode switches.
    reset_lock: Pin<KBox<Mutex<()>>>,
    pub(crate) instance: u32,
    ctrl: Ctrl<'bound>,
}

impl<'bound> NvmeDev<'bound> {
    /// Brings the controller up with its queues and tag set, but no disks.
    fn start(
        pdev: &'bound pci::Device<Bound>,
        bar: ctrl::Bar0<'bound>,
    ) -> Result<(Self, DiskPlan)> {
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
            disks: KBox::pin_init(new_mutex!(KVec::new()), GFP_KERNEL)?,
            irqs: KVec::new(),
            admin_irq: None,
            tagset: None,
            vectors: None,
            shared: KBox::new(
                BlkShared {
                    dev: blk::dev_raw(pdev.as_ref()),
                    queues: KVec::new(),
                    owner: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
                    irq_offset: 0,
                    timeout_jiffies: u32::try_from(kernel::time::msecs_to_jiffies(
                        module_parameters::io_timeout
                            .value_ref()
                            .saturating_mul(1000),
                    ))
                    .unwrap_or(u32::MAX),
                },
                GFP_KERNEL,
            )?,
            reset_work: Arc::pin_init(ResetWork::new(), GFP_KERNEL)?,
            state: State::new(),
            stopped: AtomicBool::new(false),
            dbbuf: None,
            dbbuf_on: AtomicBool::new(false),
            resets: AtomicU32::new(0),
            reset_lock: KBox::pin_init(new_mutex!(()), GFP_KERNEL)?,
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
        let plan = dev.setup(version)?;
        Ok((dev, plan))
    }

    fn setup(&mut self, version: spec::Version) -> Result<DiskPlan> {
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

        self.setup_io_queues(id.has_dbbuf())?;
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
        Ok(DiskPlan {
            nsids,
            max_transfer: id
                .max_transfer(blk::PAGE)
                .map_or(blk::MAX_TRANSFER, |m| m.min(blk::MAX_TRANSFER)),
            write_cache: id.has_vwc(),
            write_zeroes: id.has_write_zeroes(),
            discard: id.has_dsm(),
        })
    }

    /// I/O queues: one per CPU, as many as the controller grants, asked for
    /// (polled) before any vector exists so that the vectors match them:
    /// vector 0 for the admin queue, one per I/O queue.  Then the queues
    /// are created on the controller, with their handlers and the tag set.
    fn setup_io_queues(&mut self, has_dbbuf: bool) -> Result {
        let pdev = self.ctrl.pdev;
        let want = u16::try_from(kernel::cpu::nr_cpu_ids().clamp(1, 64))?;
        let (sqs, cqs) = cmd::granted_queues(self.ctrl.admin_ok(cmd::set_num_queues(want, want))?);
        let granted = sqs.min(cqs).min(u32::from(want));
        let vectors = self.vectors.insert(IrqVectors::alloc(pdev, granted)?);
        // SAFETY: the admin queue is owned by `self.ctrl`, dropped after
        // `self.admin_irq` (field order).
        self.admin_irq =
            Some(unsafe { QueueIrq::new::<AdminCompleter>(vectors, 0, &self.ctrl.admin)? });
        let nr = vectors.io_queues(granted);
        let nvec = vectors.count();
        self.shared.irq_offset = vectors.io_offset();
        let depth = u16::try_from(IO_QUEUE_DEPTH.min(self.ctrl.max_entries)).unwrap_or(2);
        for i in 0..nr {
            let qid = u16::try_from(i + 1)?;
            let q = KBox::pin_init(
                Queue::new(
                    pdev.as_ref(),
                    qid,
                    depth,
                    self.ctrl.doorbells(qid)?,
                    Some(self.reset_work.clone()),
                )?,
                GFP_KERNEL,
            )?;
            self.shared.queues.push(q, GFP_KERNEL)?;
        }
        if has_dbbuf {
            match DbBuf::new(pdev.as_ref(), self.ctrl.dstrd) {
                Ok(b) => self.dbbuf = Some(b),
                Err(e) => dev_warn!(pdev, "no memory for doorbell buffers ({:?})\n", e),
            }
        }
        let on = self.start_io_queues(*module_parameters::dbbuf.value_ref())?;
        self.dbbuf_on.store(on, Ordering::Relaxed);
        let vectors = self.vectors.as_ref().ok_or(EINVAL)?;
        for (i, q) in self.shared.queues.iter().enumerate() {
            let vector = self.shared.irq_offset + u32::try_from(i)?;
            // SAFETY: the queue is boxed in `self.shared`, dropped after
            // `self.irqs` (field order).
            let irq = unsafe { QueueIrq::new::<IoCompleter>(vectors, vector, q)? };
            self.irqs.push(irq, GFP_KERNEL)?;
        }
        dev_ddbg!(
            pdev,
            "{} I/O queue(s) of {} entries on {} vector(s)\n",
            nr,
            depth,
            nvec
        );

        // SAFETY: `self.shared` outlives the tag set and the disks (field order).
        self.tagset = Some(unsafe { TagSet::new(&self.shared, u32::from(depth) - 1)? });
        Ok(())
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
    type Data<'bound> = DriverData<'bound>;

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
        // PRPs describe a segment of any length, page by page; without this
        // the DMA layer assumes 64 KiB and DMA debug flags merged segments.
        // SAFETY: as above, nothing is allocated or mapped yet.
        unsafe { pdev.dma_set_max_seg_size(u32::MAX) };

        let bar = pdev.iomap_region_sized::<{ regs::END }>(0, c"nvme_dbbuf")?;
        let (dev, plan) = NvmeDev::start(pdev, bar)?;
        let dev = KBox::new(dev, GFP_KERNEL)?;
        // From here on the timeout handler can find the controller (boxed:
        // the address is stable; the tag set goes before it), before the
        // first I/O, which the disks' partition scans do.
        dev.shared.owner.store(
            core::ptr::from_ref::<NvmeDev<'_>>(&dev).cast_mut(),
            Ordering::Release,
        );
        // SAFETY: boxed, so at a stable address; `NvmeDev::drop` cancels the
        // work after the last interrupt is freed, before the box is.
        unsafe { dev.reset_work.set_owner(&dev) };
        dev.add_disks(plan)?;
        // Unless a reset during the partition scan got there first (or
        // is still running: it decides).
        dev.state.change_from(CtrlState::New, CtrlState::Live);
        // SAFETY: both are fields of the driver data declared before the
        // box holding `dev`, so they are dropped before it.
        let debugfs = unsafe { debugfs::create(&dev)? };
        // SAFETY: as above.
        let chardev = unsafe { passthru::CharDev::new(&dev)? };
        Ok(DriverData {
            _chardev: chardev,
            _debugfs: debugfs,
            dev,
        })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        this.dev.teardown();
    }
}

/// The module: the driver registration and the debugfs root it hangs each
/// controller's directory from.  The registration goes first, so every
/// controller is unbound before the root is removed.
#[pin_data(PinnedDrop)]
struct NvmeDbbufModule {
    #[pin]
    driver: driver::Registration<pci::Adapter<NvmeDbbufDriver>>,
    debugfs_root: KBox<Dir>,
}

impl kernel::InPlaceModule for NvmeDbbufModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        blk::LOSE_IO.store(
            *module_parameters::fault_lose_io.value_ref(),
            Ordering::Relaxed,
        );
        let root = KBox::new(Dir::new(c"nvme_dbbuf"), GFP_KERNEL);
        try_pin_init!(Self {
            debugfs_root: {
                let root = root?;
                // SAFETY: boxed, so the address is stable; `PinnedDrop`
                // clears the pointer before the box is freed, and no probe
                // runs after module exit began.
                unsafe { debugfs::set_root(&root) };
                root
            },
            driver <- driver::Registration::new(
                <Self as kernel::ModuleMetadata>::NAME,
                module
            ),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for NvmeDbbufModule {
    fn drop(self: Pin<&mut Self>) {
        // Runs before the fields are dropped: no probe can run any more
        // (module exit), and controllers still bound only drop their
        // directories, which does not read the root pointer.
        debugfs::clear_root();
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
        fault_lose_io: u32 {
            default: 0,
            description: "Test hook: lose this many I/O completions from load on, as a controller that drops them",
        },
    },
}
