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

use blk::{BlkShared, Disk, IoCompleter, Limits, Ns, TagSet, TimeoutAction};
use ctrl::Ctrl;
use dbbuf::DbBuf;
use dyndbg::{ddbg, dev_ddbg};
use identify::{IdCtrl, IdNs, IDENTIFY_SIZE};
use irq::{AdminCompleter, IrqVectors, QueueIrq};
use queue::{DbPath, Inject, Queue};
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

/// What probe found out about the namespaces, for [`NvmeDev::add_disks`].
struct DiskPlan {
    nsids: KVec<u32>,
    max_transfer: u64,
    write_cache: bool,
    write_zeroes: bool,
    discard: bool,
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
        // Vector 0 for the admin queue, one per CPU for the I/O queues;
        // the admin interrupt first, so a shared INTx line never sees our
        // completions unhandled.
        let cpus = kernel::cpu::nr_cpu_ids().clamp(1, 64);
        let vectors = self.vectors.insert(IrqVectors::alloc(pdev, cpus)?);
        // SAFETY: the admin queue is owned by `self.ctrl`, dropped after
        // `self.admin_irq` (field order).
        self.admin_irq =
            Some(unsafe { QueueIrq::new::<AdminCompleter>(vectors, 0, &self.ctrl.admin)? });
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
        let want = u16::try_from(cpus)?;
        let dw0 = self.ctrl.admin_ok(cmd::set_num_queues(want, want))?;
        let (sqs, cqs) = cmd::granted_queues(dw0);
        let vectors = self.vectors.as_ref().ok_or(EINVAL)?;
        let nr = vectors.io_queues(sqs.min(cqs).min(u32::from(want)));
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
        if id.has_dbbuf() {
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

    /// One disk per usable namespace of `plan`.  Their partition scans do
    /// I/O, so the controller is at its final address by now.
    fn add_disks(&self, plan: DiskPlan) -> Result {
        let pdev = self.ctrl.pdev;
        let tagset = self.tagset.as_ref().ok_or(EINVAL)?;
        let buf = Coherent::<u8>::zeroed_slice(pdev.as_ref(), IDENTIFY_SIZE, GFP_KERNEL)?;
        for nsid in plan.nsids {
            self.ctrl
                .admin_ok(cmd::identify(cmd::cns::NAMESPACE, nsid, buf.dma_address()))?;
            // SAFETY: the controller finished writing (command completed) and
            // nothing else uses `buf`.
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
            core::fmt::Write::write_fmt(&mut w, format_args!("rnvme{}n{}", self.instance, nsid))?;
            let name = name.get(..w.bytes_written()).ok_or(EINVAL)?;
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
                    max_transfer: plan.max_transfer,
                    write_cache: plan.write_cache,
                    write_zeroes: plan.write_zeroes,
                    discard: plan.discard,
                },
                name,
                ns.capacity_sectors(),
            )?;
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

impl<'bound> NvmeDev<'bound> {
    pub(crate) fn dbbuf_on(&self) -> bool {
        self.dbbuf_on.load(Ordering::Relaxed)
    }

    pub(crate) fn resets(&self) -> u32 {
        self.resets.load(Ordering::Relaxed)
    }

    pub(crate) fn io_queues(&self) -> impl Iterator<Item = &Queue<'bound>> {
        self.shared.queues.iter().map(|q| &**q)
    }

    /// Doorbell Buffer Config on a freshly enabled controller, before any
    /// I/O queue exists.  Returns whether shadow doorbells are on.
    ///
    /// The spec ends the buffers' lifetime at every controller reset, and a
    /// controller that saw the command once may still hold stale EventIdx
    /// values in them; so both are zeroed and the command re-issued each
    /// time, never assumed to survive.
    fn configure_dbbuf(&self, want: bool) -> bool {
        let pdev = self.ctrl.pdev;
        // Until the command succeeds the controller knows no buffers.
        self.ctrl.admin.set_paths(DbPath::Mmio, DbPath::Mmio);
        let Some(db) = self.dbbuf.as_ref() else {
            dev_ddbg!(
                pdev,
                "dbbuf: controller lacks Doorbell Buffer Config (OACS bit 8)\n"
            );
            dev_info!(
                pdev,
                "Doorbell Buffer Config not supported: MMIO doorbells\n"
            );
            return false;
        };
        if !want {
            dev_ddbg!(
                pdev,
                "dbbuf: off by request (module parameter or debugfs)\n"
            );
            dev_info!(pdev, "shadow doorbells off by request: MMIO doorbells\n");
            return false;
        }
        let last = u16::try_from(self.shared.queues.len()).unwrap_or(u16::MAX);
        if db.max_qid().is_none_or(|m| m < last) {
            dev_info!(
                pdev,
                "{} I/O queues do not fit the doorbell buffers at this stride: MMIO doorbells\n",
                last
            );
            return false;
        }
        let stale = db.nonzero_words().unwrap_or(0);
        if let Err(e) = db.zero() {
            dev_warn!(
                pdev,
                "dbbuf: cannot zero the buffers ({:?}): MMIO doorbells\n",
                e
            );
            return false;
        }
        dev_ddbg!(
            pdev,
            "dbbuf: zeroed shadow doorbell and EventIdx buffers ({} non-zero words before)\n",
            stale
        );
        let (shadow, ei) = (db.shadow_dma(), db.eventidx_dma());
        match self.ctrl.admin_ok(cmd::dbbuf_config(shadow, ei)) {
            Ok(_) => {
                if let (Some(sq), Some(cq)) = (db.sq(0), db.cq(0)) {
                    self.ctrl
                        .admin
                        .set_paths(DbPath::ShadowAndMmio(sq), DbPath::ShadowAndMmio(cq));
                }
                dev_info!(
                    pdev,
                    "shadow doorbells on: Doorbell Buffer Config shadow {:#x} eventidx {:#x}\n",
                    shadow,
                    ei
                );
                true
            }
            Err(e) => {
                dev_ddbg!(pdev, "dbbuf: command failed: {:?}\n", e);
                dev_info!(
                    pdev,
                    "Doorbell Buffer Config failed ({:?}): MMIO doorbells\n",
                    e
                );
                false
            }
        }
    }

    /// Configures doorbell buffers, then creates every I/O queue pair on the
    /// controller with the doorbell path to match.  Returns whether shadow
    /// doorbells are on.
    fn start_io_queues(&self, want_dbbuf: bool) -> Result<bool> {
        let on = self.configure_dbbuf(want_dbbuf);
        for (i, q) in self.shared.queues.iter().enumerate() {
            let qid = q.qid;
            let vector = u16::try_from(self.shared.irq_offset + u32::try_from(i)?)?;
            let slots = self
                .dbbuf
                .as_ref()
                .and_then(|db| Some((db.sq(qid)?, db.cq(qid)?)));
            match slots {
                Some((sq, cq)) if on => q.set_paths(DbPath::Shadow(sq), DbPath::Shadow(cq)),
                _ => q.set_paths(DbPath::Mmio, DbPath::Mmio),
            }
            self.ctrl
                .admin_ok(cmd::create_cq(qid, q.depth, q.cq_dma(), vector))?;
            if let Err(e) = self
                .ctrl
                .admin_ok(cmd::create_sq(qid, q.depth, q.sq_dma(), qid))
            {
                let _ = self.ctrl.admin_ok(cmd::delete_cq(qid));
                return Err(e);
            }
        }
        dev_ddbg!(
            self.ctrl.pdev,
            "dbbuf: {} I/O queue(s) created with {} doorbells\n",
            self.shared.queues.len(),
            if on { "shadow" } else { "MMIO" }
        );
        Ok(on)
    }

    /// Controller reset: stops dispatch, disables the controller (which
    /// forgets its queues and the doorbell buffers), takes back every
    /// command still in flight for requeueing, enables the controller and
    /// rebuilds the queues, with shadow doorbells if `dbbuf` says so (`None`:
    /// as before), then lets the requeued commands run again.  If the
    /// controller does not come back the queues fail requests from then on.
    pub(crate) fn reset(&self, dbbuf: Option<bool>) -> Result {
        let _guard = self.reset_lock.lock();
        self.reset_locked(dbbuf)
    }

    pub(crate) fn reset_locked(&self, dbbuf: Option<bool>) -> Result {
        let pdev = self.ctrl.pdev;
        if let Err(now) = self.state.change(CtrlState::Resetting) {
            // Only unbind refuses (under this lock nothing else is
            // Resetting): what a timeout wanted reset fails instead.
            dev_ddbg!(pdev, "reset refused: controller {:?}\n", now);
            self.fail_all_locked();
            return Err(EBUSY);
        }
        let want = dbbuf.unwrap_or_else(|| self.dbbuf_on());
        dev_ddbg!(
            pdev,
            "reset: quiescing, then dbbuf {}\n",
            if want { "on" } else { "off" }
        );
        if let Some(t) = &self.tagset {
            t.quiesce();
        }
        // A controller that will not stop has its DMA cut by `disable`
        // before the commands it owned are taken back; `reinit` tries the
        // disable once more, and if the controller does not come back the
        // queues are marked dead.
        let _ = self.ctrl.disable();
        for irq in &self.irqs {
            irq.synchronize();
        }
        // Completions posted before the disable are still good.
        for q in self.io_queues() {
            q.reap(|cqe| <blk::IoCompleter as irq::Completer>::complete(q, cqe));
        }
        let cancelled = self.tagset.as_ref().map_or(0, |t| t.cancel_inflight());
        dev_ddbg!(pdev, "reset: {} command(s) in flight requeued\n", cancelled);
        let r = self.reinit(want);
        match r {
            Ok(on) => {
                // Unless unbind began meanwhile (then it stays Deleting).
                let _ = self.state.change(CtrlState::Live);
                self.dbbuf_on.store(on, Ordering::Relaxed);
                self.resets.fetch_add(1, Ordering::Relaxed);
                for q in self.io_queues() {
                    q.set_dead(false);
                    q.inject(Inject::None);
                }
                dev_info!(
                    pdev,
                    "controller reset done, {} doorbells, {} command(s) requeued\n",
                    if on { "shadow" } else { "MMIO" },
                    cancelled
                );
            }
            Err(e) => {
                let _ = self.state.change(CtrlState::Dead);
                dev_err!(pdev, "controller reset failed ({:?}): failing I/O\n", e);
                self.dbbuf_on.store(false, Ordering::Relaxed);
                for q in self.io_queues() {
                    q.set_dead(true);
                }
            }
        }
        if let Some(t) = &self.tagset {
            t.unquiesce();
        }
        r.map(|_| ())
    }

    /// An I/O command timed out (and reaping its queue did not find it).
    /// The first time, ask the controller to abort it and wait another
    /// timeout period; the second time, reset the controller, which
    /// requeues it (or fails it, out of retries).
    pub(crate) fn io_timeout(&self, qid: u16, cid: u16, first: bool) -> TimeoutAction {
        let pdev = self.ctrl.pdev;
        // A reset already running (a switch, or another timeout) takes this
        // request back; holding the lock also keeps a reset from re-enabling
        // the controller under an Abort still waiting for its completion.
        let Some(_guard) = self.reset_lock.try_lock() else {
            return TimeoutAction::Later;
        };
        // Being unbound, or dead after a failed reset: nothing will complete
        // it, and nothing may reset the controller now; fail what is left.
        if !self.state.get().takes_commands() {
            self.fail_all_locked();
            return TimeoutAction::Done;
        }
        // A controller that is gone or has stopped cannot abort anything:
        // reset at once (the queues are failed if it does not come back).
        if let Some(csts) = self.ctrl.down() {
            dev_warn!(
                pdev,
                "I/O command {:#x} on queue {} timed out, controller down (CSTS {:#x}): resetting\n",
                cid,
                qid,
                csts
            );
            let _ = self.reset_locked(None);
            return TimeoutAction::Done;
        }
        if first {
            dev_warn!(
                pdev,
                "I/O command {:#x} on queue {} timed out, sending Abort\n",
                cid,
                qid
            );
            match self.ctrl.admin_cmd(cmd::abort(qid, cid)) {
                // Dword 0 bit 0 clear: the command was aborted; its
                // completion (with an abort status) is on its way.
                Ok(r) => dev_ddbg!(
                    pdev,
                    "abort of {:#x}: status {:#x}, {}\n",
                    cid,
                    r.status.0,
                    if r.dw0 & 1 == 0 {
                        "aborted"
                    } else {
                        "not aborted"
                    }
                ),
                Err(e) => {
                    dev_warn!(pdev, "Abort failed ({:?}): resetting\n", e);
                    let _ = self.reset_locked(None);
                    return TimeoutAction::Done;
                }
            }
            return TimeoutAction::AbortSent;
        }
        dev_warn!(
            pdev,
            "I/O command {:#x} on queue {} timed out after Abort: resetting\n",
            cid,
            qid
        );
        let _ = self.reset_locked(None);
        TimeoutAction::Done
    }

    /// The device is gone (surprise removal): fail the commands in flight,
    /// and every later one, at once.
    fn fail_all(&self) {
        let _guard = self.reset_lock.lock();
        self.fail_all_locked();
    }

    fn fail_all_locked(&self) {
        for q in self.io_queues() {
            q.set_dead(true);
        }
        if let Some(t) = &self.tagset {
            t.quiesce();
        }
        for irq in &self.irqs {
            irq.synchronize();
        }
        let n = self.tagset.as_ref().map_or(0, |t| t.cancel_inflight());
        if let Some(t) = &self.tagset {
            t.unquiesce();
        }
        dev_warn!(
            self.ctrl.pdev,
            "controller {:?}: {} command(s) failed\n",
            self.state.get(),
            n
        );
    }

    /// The reset work's body: a completion named no request in flight.
    fn reset_after_bad_completion(&self) {
        let _guard = self.reset_lock.lock();
        if !self.state.get().takes_commands() {
            return;
        }
        dev_warn!(
            self.ctrl.pdev,
            "resetting the controller after a completion with a bad command id\n"
        );
        let _ = self.reset_locked(None);
    }

    /// Test hook (debugfs `inject`): `what` happens to the next completion
    /// (or interrupt) on every I/O queue.
    pub(crate) fn inject(&self, what: Inject) {
        for q in self.io_queues() {
            q.inject(what);
        }
    }

    /// Test hook: the next controller disable finds CSTS.RDY stuck at 1.
    pub(crate) fn inject_stuck_rdy(&self) {
        self.ctrl.fake_stuck_rdy.store(true, Ordering::Relaxed);
    }

    /// Test hook: the next admin completion is lost.
    pub(crate) fn inject_lost_admin(&self) {
        self.ctrl.fake_lost_admin.store(true, Ordering::Relaxed);
    }

    fn reinit(&self, want_dbbuf: bool) -> Result<bool> {
        self.ctrl.disable()?;
        for q in self.io_queues() {
            q.reset();
        }
        self.ctrl.enable()?;
        // The queue count is a feature the reset cleared: ask for the
        // queues we already have.
        let have16 = u16::try_from(self.shared.queues.len())?;
        let (sqs, cqs) =
            cmd::granted_queues(self.ctrl.admin_ok(cmd::set_num_queues(have16, have16))?);
        let have = u32::from(have16);
        if sqs.min(cqs) < have {
            dev_err!(
                self.ctrl.pdev,
                "after reset the controller grants {} I/O queues, {} needed\n",
                sqs.min(cqs),
                have
            );
            return Err(ENODEV);
        }
        self.start_io_queues(want_dbbuf)
    }
}

impl NvmeDev<'_> {
    /// Ordered hardware shutdown, run by `unbind` while the device is still
    /// bound (and by `drop` for a probe that failed before there was one):
    /// no reset any more, the disks deleted (a controller that is gone has
    /// its commands failed first, so that takes seconds, not a timeout per
    /// request), then the I/O queues deleted and the controller shut down,
    /// so it stops touching our memory before anything is freed.  Runs
    /// once; a second call only finds the disks gone.
    fn teardown(&self) {
        // A running reset ends, a queued one does nothing, a timeout fails
        // what is in flight.
        let _ = self.state.change(CtrlState::Deleting);
        drop(self.reset_lock.lock());
        // Gone from the bus, or its registers say it is not running (CSTS
        // all-ones, CFS, or RDY clear: decoding off reads 0 under QEMU).
        let gone = !pci_ext::is_present(self.ctrl.pdev) || self.ctrl.down().is_some();
        if gone {
            self.fail_all();
        }
        // del_gendisk flushes and waits for outstanding I/O.
        drop(core::mem::take(&mut *self.disks.lock()));
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        // Interrupts are still registered: the deletions complete through
        // the admin queue like any command.  SQ before its CQ.
        for q in self.shared.queues.iter().rev() {
            let _ = self.ctrl.admin_ok(cmd::delete_sq(q.qid));
            let _ = self.ctrl.admin_ok(cmd::delete_cq(q.qid));
        }
        self.ctrl.shutdown();
        self.ctrl.admin.set_paths(DbPath::Mmio, DbPath::Mmio);
    }
}

impl Drop for NvmeDev<'_> {
    fn drop(&mut self) {
        self.teardown();
        // No interrupt, so nothing queues the reset work any more; then wait
        // for one that is running (it finds the controller Deleting).
        self.irqs.clear();
        self.admin_irq = None;
        self.reset_work.cancel_sync();
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
        // Unless a reset during the partition scan got there first.
        let _ = dev.state.change(CtrlState::Live);
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
