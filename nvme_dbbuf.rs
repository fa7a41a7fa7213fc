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
    sync::Mutex, //
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

// Shared with the host tests; not every item is used by every module.
#[path = "common/dyndbg.rs"]
mod dyndbg;
#[allow(dead_code, unreachable_pub)]
#[path = "common/dyndbg_core.rs"]
mod dyndbg_core;
include!(env!("RFL_DYNDBG_FUNCS"));

use blk::{BlkShared, Disk, IoCompleter, Limits, Ns, TagSet};
use ctrl::Ctrl;
use dbbuf::DbBuf;
use dyndbg::{ddbg, dev_ddbg};
use identify::{IdCtrl, IdNs, IDENTIFY_SIZE};
use irq::{IrqVectors, QueueIrq};
use queue::{DbPath, Inject, Queue};
use reset_work::ResetWork;

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
/// directory, which go first (they point at the controller).
struct DriverData<'bound> {
    _chardev: Pin<KBox<passthru::CharDev>>,
    _debugfs: Option<Pin<KBox<Scope<debugfs::Control>>>>,
    _dev: KBox<NvmeDev<'bound>>,
}

/// Per-controller state, alive while the driver is bound.
///
/// Field order is teardown order: disks (waits for I/O), interrupts, tag
/// set, vectors, queues, the doorbell buffers, then the controller and its
/// BAR.  `Drop` deletes the I/O queues and shuts the controller down after
/// the disks are gone.
pub(crate) struct NvmeDev<'bound> {
    disks: KVec<Disk>,
    irqs: KVec<QueueIrq>,
    tagset: Option<TagSet>,
    vectors: Option<IrqVectors<'bound>>,
    shared: KBox<BlkShared>,
    /// Reset requested by a completion with a bad command id; outlives the
    /// queues that queue it.
    reset_work: Pin<KBox<ResetWork>>,
    /// Set at unbind: a queued bad-completion reset no longer runs.
    dying: AtomicBool,
    /// Shadow Doorbell / EventIdx buffers, if the controller supports the
    /// command (allocated once, reused after every reset).
    dbbuf: Option<DbBuf>,
    /// Whether the I/O queues currently use shadow doorbells.
    dbbuf_on: AtomicBool,
    resets: AtomicU32,
    /// Serialises resets and mode switches.
    reset_lock: Pin<KBox<Mutex<()>>>,
    pub(crate) instance: u32,
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
                    owner: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
                },
                GFP_KERNEL,
            )?,
            reset_work: KBox::pin_init(ResetWork::new(), GFP_KERNEL)?,
            dying: AtomicBool::new(false),
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
        let nvec = vectors.count();
        let depth = u16::try_from(IO_QUEUE_DEPTH.min(self.ctrl.max_entries)).unwrap_or(2);
        for i in 0..nr {
            let qid = u16::try_from(i + 1)?;
            let q = KBox::pin_init(
                Queue::new(pdev.as_ref(), qid, depth, self.ctrl.doorbells(qid)?)?,
                GFP_KERNEL,
            )?;
            q.set_reset_work(&self.reset_work);
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
        let vectors = self.vectors.insert(vectors);
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
            nvec
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
                    write_zeroes: id.has_write_zeroes(),
                    discard: id.has_dsm(),
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

impl NvmeDev<'_> {
    pub(crate) fn dbbuf_on(&self) -> bool {
        self.dbbuf_on.load(Ordering::Relaxed)
    }

    pub(crate) fn resets(&self) -> u32 {
        self.resets.load(Ordering::Relaxed)
    }

    pub(crate) fn io_queues(&self) -> impl Iterator<Item = &Queue> {
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
        let stale = db.nonzero_words();
        db.zero();
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
            let slots = self
                .dbbuf
                .as_ref()
                .and_then(|db| Some((db.sq(qid)?, db.cq(qid)?)));
            match slots {
                Some((sq, cq)) if on => q.set_paths(DbPath::Shadow(sq), DbPath::Shadow(cq)),
                _ => q.set_paths(DbPath::Mmio, DbPath::Mmio),
            }
            self.ctrl
                .admin_ok(cmd::create_cq(qid, q.depth, q.cq_dma(), u16::try_from(i)?))?;
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

    fn reset_locked(&self, dbbuf: Option<bool>) -> Result {
        let pdev = self.ctrl.pdev;
        let want = dbbuf.unwrap_or_else(|| self.dbbuf_on());
        dev_ddbg!(
            pdev,
            "reset: quiescing, then dbbuf {}\n",
            if want { "on" } else { "off" }
        );
        if let Some(t) = &self.tagset {
            t.quiesce();
        }
        // A controller that will not stop is reset anyway: enable() below
        // fails and the queues are marked dead.
        let disabled = self.ctrl.disable();
        for irq in &self.irqs {
            irq.synchronize();
        }
        // Completions posted before the disable are still good.
        for q in self.io_queues() {
            q.reap(|cqe| <blk::IoCompleter as irq::Completer>::complete(q, cqe));
        }
        let cancelled = self.tagset.as_ref().map_or(0, |t| t.cancel_inflight());
        dev_ddbg!(pdev, "reset: {} command(s) in flight requeued\n", cancelled);
        let r = disabled.and_then(|()| self.reinit(want));
        match r {
            Ok(on) => {
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

    /// An I/O command timed out.  The first time, ask the controller to
    /// abort it and wait another timeout period; the second time, reset the
    /// controller, which requeues it.  Returns true if the request was
    /// handed back (the reset ran), false to re-arm its timer.
    pub(crate) fn io_timeout(&self, qid: u16, cid: u16, first: bool) -> bool {
        let pdev = self.ctrl.pdev;
        // A reset already running (a switch, or another timeout) takes this
        // request back; holding the lock also keeps a reset from re-enabling
        // the controller under an Abort still waiting for its completion.
        let Some(_guard) = self.reset_lock.try_lock() else {
            return false;
        };
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
            return true;
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
                    return true;
                }
            }
            return false;
        }
        dev_warn!(
            pdev,
            "I/O command {:#x} on queue {} timed out after Abort: resetting\n",
            cid,
            qid
        );
        let _ = self.reset_locked(None);
        true
    }

    /// The reset work's body: a completion named no request in flight.
    fn reset_after_bad_completion(&self) {
        let _guard = self.reset_lock.lock();
        if self.dying.load(Ordering::Relaxed) {
            return;
        }
        dev_warn!(
            self.ctrl.pdev,
            "resetting the controller after a completion with a bad command id\n"
        );
        let _ = self.reset_locked(None);
    }

    /// Test hook (debugfs `inject`): `what` happens to the next completion
    /// on every I/O queue.
    pub(crate) fn inject(&self, what: Inject) {
        for q in self.io_queues() {
            q.inject(what);
        }
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

impl Drop for NvmeDev<'_> {
    fn drop(&mut self) {
        // A bad-completion reset queued from now on does nothing.
        self.dying.store(true, Ordering::Relaxed);
        drop(self.reset_lock.lock());
        // Disks first: del_gendisk flushes and waits for outstanding I/O.
        self.disks.clear();
        // No interrupt, so nothing queues the reset work any more; then wait
        // for one that is running.
        self.irqs.clear();
        self.reset_work.cancel_sync();
        // Then tell the controller we are done: delete the I/O queues (SQ
        // before its CQ) and shut down, so it stops touching our memory
        // before the rings are freed.
        for q in self.shared.queues.iter().rev() {
            let _ = self.ctrl.admin_ok(cmd::delete_sq(q.qid));
            let _ = self.ctrl.admin_ok(cmd::delete_cq(q.qid));
        }
        self.ctrl.shutdown();
        // The admin queue outlives the doorbell buffers (field order).
        self.ctrl.admin.set_paths(DbPath::Mmio, DbPath::Mmio);
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
        let dev = KBox::new(NvmeDev::start(pdev, bar)?, GFP_KERNEL)?;
        // From here on the timeout handler can find the controller (boxed:
        // the address is stable; the tag set goes before it).
        dev.shared.owner.store(
            core::ptr::from_ref::<NvmeDev<'_>>(&dev).cast_mut().cast(),
            Ordering::Release,
        );
        dev.reset_work.set_owner(&dev);
        let debugfs = debugfs::create(&dev)?;
        let chardev = passthru::CharDev::new(&dev)?;
        Ok(DriverData {
            _chardev: chardev,
            _debugfs: debugfs,
            _dev: dev,
        })
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
    },
}
