// SPDX-License-Identifier: GPL-2.0

//! The driver data: one controller, pin-initialised in place in the
//! allocation the driver core keeps for the binding, then brought up.
//!
//! The struct is complete and at its final address before the first
//! command.  The tag set is a field of it, made by the bring-up, dropped
//! after [`PinnedDrop`] has shut the hardware down and freed the
//! interrupts (each of which owns its queue); the tag set's timeout
//! handler, the reset work, the debugfs directory and the character
//! device reach the controller through the lease of the [`Lending`] that
//! owns it.  What the bring-up creates is set once ([`SetOnce`]); a
//! bring-up that fails is torn down like an unbind, then dropped.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::{
    debugfs::Scope,
    device::Bound,
    dma::Coherent,
    io::Io,
    new_mutex, pci,
    prelude::*,
    str::BStr,
    sync::{Arc, Mutex, SetOnce},
    types::ForLt,
};

use crate::blk::{self, BlkShared, Disk, IoSet, TagSet};
use crate::ctrl::{self, Ctrl};
use crate::dbbuf::DbBuf;
use crate::dyndbg::dev_ddbg;
use crate::identify::{self, IdCtrl, IDENTIFY_SIZE};
use crate::irq::{AdminCompleter, IrqVectors, QueueIrq};
use crate::lease::{Lease, Lending};
use crate::namespace::DiskPlan;
use crate::pool::{DmaPool, SgPool};
use crate::queue::Queue;
use crate::reset_work::OwnedResetWork;
use crate::state::{CtrlState, State};
use crate::{cmd, debugfs, module_parameters, passthru, regs, spec};

/// I/O queue entries, capped by CAP.MQES.
const IO_QUEUE_DEPTH: u32 = 256;
/// Most poll queues (`poll_queues` is capped to it).
const MAX_POLL_QUEUES: u32 = 16;
// A command id is a 4-bit generation and a 12-bit tag (`blk.rs`).
const _: () = assert!(IO_QUEUE_DEPTH <= 4096);
/// Namespaces per controller this driver exposes.
const MAX_NAMESPACES: usize = 16;
/// One Dataset Management range (`cmd::DsmRange`).
const DSM_RANGE_BYTES: usize = core::mem::size_of::<cmd::DsmRange>();
const _: () = assert!(DSM_RANGE_BYTES == 16);

/// Controller instance numbers in use (`rnvme<C>`), at most 64 controllers.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// A controller instance number, given back on drop.
pub(crate) struct Instance(u32);

impl Instance {
    fn get() -> Result<Self> {
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
                Ok(_) => return Ok(Self(free)),
                Err(now) => cur = now,
            }
        }
    }

    pub(crate) fn get_num(&self) -> u32 {
        self.0
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        INSTANCES.fetch_and(!(1u64 << self.0), Ordering::AcqRel);
    }
}

/// Per-controller state, alive while the driver is bound.
///
/// [`NvmeDev::teardown`] (from `unbind` or a failed bring-up, else from
/// `drop`) shuts the hardware down: disks deleted, I/O queues deleted,
/// controller shut down.  It also revokes the controller's lease (the
/// timeout handler, the reset work, debugfs, the character device).  The fields then go in declaration order, which is the
/// order the kernel objects must be freed in: interrupts, reset work, tag
/// set, vectors, queues.
#[pin_data(PinnedDrop)]
pub(crate) struct NvmeDev<'bound> {
    /// The lease [`Lending`] holds on this controller, given to the reset
    /// work, the tag set (for timeouts), debugfs and the character device;
    /// revoked by `teardown` once the disks are gone (and by `Lending`
    /// itself, before this struct drops).
    lease: SetOnce<Arc<Lease<DevLt>>>,
    chardev: SetOnce<Pin<KBox<passthru::CharDev>>>,
    /// Taken out and dropped by `teardown`, which must not hold the reset
    /// lock then (a file's callback may be waiting for it).
    #[pin]
    debugfs: Mutex<Option<Pin<KBox<Scope<debugfs::Control>>>>>,
    #[pin]
    pub(crate) disks: Mutex<KVec<Disk<'bound>>>,
    pub(crate) irqs: SetOnce<KVec<QueueIrq<'bound>>>,
    /// The admin queue's interrupt (vector 0), freed after the shutdown.
    admin_irq: SetOnce<QueueIrq<'bound>>,
    /// Reset requested by a completion with a bad command id; shared with
    /// the queues that queue it, reaching this controller through its
    /// lease.  Cancelled when dropped: after the interrupts, before the tag
    /// set it uses.
    pub(crate) reset_work: OwnedResetWork,
    /// Freed after the interrupts and the reset work; it owns what its
    /// callbacks read (`shared`, the lease).
    pub(crate) tagset: SetOnce<Arc<TagSet<'bound>>>,
    pub(crate) vectors: SetOnce<Arc<IrqVectors<'bound>>>,
    pub(crate) shared: SetOnce<Arc<BlkShared<'bound>>>,
    /// Who may submit, reset or tear down (`state.rs`).
    pub(crate) state: State,
    /// The hardware shutdown of [`Self::teardown`] is done.
    pub(crate) stopped: AtomicBool,
    /// Shadow Doorbell / EventIdx buffers, if the controller supports the
    /// command (allocated once, reused after every reset).
    pub(crate) dbbuf: SetOnce<Arc<DbBuf>>,
    /// Whether the I/O queues currently use shadow doorbells.
    pub(crate) dbbuf_on: AtomicBool,
    pub(crate) resets: AtomicU32,
    /// Serialises resets and mode switches.
    #[pin]
    pub(crate) reset_lock: Mutex<()>,
    instance: Instance,
    pub(crate) ctrl: Ctrl<'bound>,
}

/// [`NvmeDev`] as a family over its lifetime, for what reaches it from
/// code that can outlive the binding (`lease.rs`).
pub(crate) type DevLt = ForLt!(NvmeDev<'_>);

impl<'bound> NvmeDev<'bound> {
    /// The controller, in place, lending itself, then brought up: queues,
    /// tag set, disks, debugfs and character device.
    pub(crate) fn new(
        pdev: &'bound pci::Device<Bound>,
        bar: ctrl::Bar0<'bound>,
    ) -> impl PinInit<Lending<'bound, DevLt>, Error> + 'bound {
        // A failed bring-up is torn down while the lease holds: the timeout
        // handler reaches the controller through it while the disks go.
        Lending::new(Self::init(pdev, bar), |dev: &Self, lease| {
            dev.bring_up(lease).inspect_err(|_| dev.teardown())
        })
    }

    fn init(
        pdev: &'bound pci::Device<Bound>,
        bar: ctrl::Bar0<'bound>,
    ) -> impl PinInit<Self, Error> + 'bound {
        try_pin_init!(Self {
            lease: SetOnce::new(),
            chardev: SetOnce::new(),
            debugfs <- new_mutex!(None),
            disks <- new_mutex!(KVec::new()),
            irqs: SetOnce::new(),
            admin_irq: SetOnce::new(),
            // The queues, which queue the work, are created by the
            // bring-up, which gives it the lease first; dropping the field
            // cancels it, after the last interrupt.
            reset_work: OwnedResetWork::new()?,
            tagset: SetOnce::new(),
            vectors: SetOnce::new(),
            shared: SetOnce::new(),
            state: State::new(),
            stopped: AtomicBool::new(false),
            dbbuf: SetOnce::new(),
            dbbuf_on: AtomicBool::new(false),
            resets: AtomicU32::new(0),
            reset_lock <- new_mutex!(()),
            instance: Instance::get()?,
            ctrl: Ctrl::new(pdev, bar)?,
        })
    }

    pub(crate) fn instance(&self) -> u32 {
        self.instance.get_num()
    }

    /// The I/O queues (none before the bring-up made them).
    pub(crate) fn io_queues(&self) -> impl Iterator<Item = &Queue<'bound>> {
        self.shared
            .as_ref()
            .map(|s| s.queues.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|q| &**q)
    }

    /// Everything holding the lease lets go of the controller (the tag
    /// set's timeout handler, the reset work, debugfs, the character
    /// device): calls running now end first, later ones find nothing; then
    /// the directory goes.
    pub(crate) fn revoke_user_access(&self) {
        if let Some(l) = self.lease.as_ref() {
            l.revoke();
        }
        let dir = self.debugfs.lock().take();
        drop(dir);
    }

    pub(crate) fn nr_io_queues(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.queues.len())
    }

    /// Enables the controller, creates the queues and the tag set, adds the
    /// disks (whose partition scans do I/O: the timeout handler finds the
    /// controller through the tag set from the first one), then the debugfs
    /// directory and the character device.
    fn bring_up(&self, lease: &Arc<Lease<DevLt>>) -> Result {
        let pdev = self.ctrl.pdev;
        self.reset_work.lend(lease);
        self.lease.populate(lease.clone());
        let version = self.log_version();
        self.ctrl.disable()?;
        self.ctrl.enable()?;
        dev_ddbg!(
            pdev,
            "controller enabled, admin queue {} entries\n",
            self.ctrl.admin.depth
        );
        let plan = self.setup(version, lease)?;
        self.add_disks(plan)?;
        // Unless a reset during the partition scan got there first (or
        // is still running: it decides).
        self.state.change_from(CtrlState::New, CtrlState::Live);
        *self.debugfs.lock() = debugfs::create(self.instance(), lease.clone())?;
        self.chardev
            .populate(passthru::register(self.instance(), lease.clone())?);
        Ok(())
    }

    fn log_version(&self) -> spec::Version {
        let (pdev, cap) = (self.ctrl.pdev, self.ctrl.cap);
        let vs = self.ctrl.bar.read(regs::VS);
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
        version
    }

    /// Identify Controller, the I/O queues, and the namespaces to add.
    fn setup(&self, version: spec::Version, lease: &Arc<Lease<DevLt>>) -> Result<DiskPlan> {
        let pdev = self.ctrl.pdev;
        let buf = Coherent::<u8>::zeroed_slice(pdev.as_ref(), IDENTIFY_SIZE, GFP_KERNEL)?;
        self.ctrl
            .admin_ok(cmd::identify(cmd::cns::CONTROLLER, 0, buf.dma_address()))?;
        let id = IdCtrl::parse(&read_back(&buf)?);
        dev_info!(
            pdev,
            "rnvme{}: {} {} firmware {}, {} namespace(s), OACS {:#06x}{}\n",
            self.instance(),
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

        self.setup_io_queues(id.has_dbbuf(), lease)?;
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
            for id in identify::active_nsids(&read_back(&buf)?).take(MAX_NAMESPACES) {
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

    /// How many I/O queues to have: (with an interrupt, polled).  One per
    /// CPU plus the `poll_queues` parameter's, asked for (the admin queue
    /// polled) before any vector exists so that the vectors match them; at
    /// least one queue keeps an interrupt, the poll queues get the rest.
    fn queue_counts(&self) -> Result<(u32, u32)> {
        let cpus = kernel::cpu::nr_cpu_ids().clamp(1, 64);
        let polls = (*module_parameters::poll_queues.value_ref()).min(MAX_POLL_QUEUES);
        let want = u16::try_from(cpus + polls)?;
        let (sqs, cqs) = cmd::granted_queues(self.ctrl.admin_ok(cmd::set_num_queues(want, want))?);
        let granted = sqs.min(cqs).min(u32::from(want));
        let polled = polls.min(granted.saturating_sub(1));
        Ok((granted - polled, polled))
    }

    /// The doorbell buffers; without them, MMIO doorbells.
    fn alloc_dbbuf(&self) {
        match DbBuf::new(self.ctrl.pdev.as_ref(), self.ctrl.dstrd) {
            Ok(b) => {
                self.dbbuf.populate(b);
            }
            Err(e) => dev_warn!(self.ctrl.pdev, "no memory for doorbell buffers ({:?})\n", e),
        }
    }

    /// `nr` I/O queues of `depth` entries, qid 1 on.
    fn alloc_io_queues(&self, nr: u32, depth: u16) -> Result<KVec<Arc<Queue<'bound>>>> {
        let mut queues = KVec::with_capacity(nr as usize, GFP_KERNEL)?;
        for i in 0..nr {
            let qid = u16::try_from(i + 1)?;
            let q = Queue::new(
                self.ctrl.pdev.as_ref(),
                qid,
                depth,
                self.ctrl.doorbells(qid)?,
                Some(self.reset_work.share()),
            )?;
            queues.push(Arc::pin_init(q, GFP_KERNEL)?, GFP_KERNEL)?;
        }
        Ok(queues)
    }

    /// I/O queues (see [`Self::queue_counts`]): vector 0 for the admin
    /// queue, one per I/O queue with an interrupt.  Then the queues are
    /// created on the controller, with their handlers and the tag set.
    fn setup_io_queues(&self, has_dbbuf: bool, lease: &Arc<Lease<DevLt>>) -> Result {
        let pdev = self.ctrl.pdev;
        let (granted, polled) = self.queue_counts()?;
        self.vectors
            .populate(Arc::new(IrqVectors::alloc(pdev, granted)?, GFP_KERNEL)?);
        let vectors = self.vectors.as_ref().ok_or(EINVAL)?;
        self.admin_irq.populate(QueueIrq::new::<AdminCompleter>(
            vectors,
            0,
            self.ctrl.admin.clone(),
        )?);
        let nr = vectors.io_queues(granted) + polled;
        let depth = u16::try_from(IO_QUEUE_DEPTH.min(self.ctrl.max_entries)).unwrap_or(2);
        let queues = self.alloc_io_queues(nr, depth)?;
        let shared = BlkShared {
            dev: pdev.as_ref(),
            queues,
            irq_offset: vectors.io_offset(),
            polled: polled as usize,
            timeout_jiffies: u32::try_from(kernel::time::msecs_to_jiffies(
                module_parameters::io_timeout
                    .value_ref()
                    .saturating_mul(1000),
            ))
            .unwrap_or(u32::MAX),
            lists: DmaPool::new(c"nvme_dbbuf prp", pdev.as_ref(), blk::PAGE as usize)?,
            ranges: DmaPool::new(c"nvme_dbbuf dsm", pdev.as_ref(), DSM_RANGE_BYTES)?,
            sgs: SgPool::new()?,
        };
        self.shared.populate(Arc::new(shared, GFP_KERNEL)?);
        let shared = self.shared.as_ref().ok_or(EINVAL)?;
        if has_dbbuf {
            self.alloc_dbbuf();
        }
        let on = self.start_io_queues(*module_parameters::dbbuf.value_ref())?;
        self.dbbuf_on.store(on, Ordering::Relaxed);
        self.request_io_irqs(vectors, shared)?;
        dev_ddbg!(
            pdev,
            "{} I/O queue(s) of {} entries, {} polled, on {} vector(s)\n",
            nr,
            depth,
            polled,
            vectors.count()
        );
        self.create_tag_set(shared, lease, depth)
    }

    /// One handler per I/O queue with an interrupt, on its vector.
    fn request_io_irqs(
        &self,
        vectors: &Arc<IrqVectors<'bound>>,
        shared: &BlkShared<'bound>,
    ) -> Result {
        let mut irqs = KVec::with_capacity(shared.irq_queues(), GFP_KERNEL)?;
        for (i, q) in shared.queues.iter().take(shared.irq_queues()).enumerate() {
            let vector = shared.irq_offset + u32::try_from(i)?;
            let irq = QueueIrq::new::<crate::blk_ops::IoCompleter>(vectors, vector, q.clone())?;
            irqs.push(irq, GFP_KERNEL)?;
        }
        self.irqs.populate(irqs);
        Ok(())
    }

    /// The tag set: one hardware context per I/O queue, `depth - 1` deep.
    fn create_tag_set(
        &self,
        shared: &Arc<BlkShared<'bound>>,
        lease: &Arc<Lease<DevLt>>,
        depth: u16,
    ) -> Result {
        let params = crate::mq::TagSetParams {
            dma_dev: shared.dev,
            nr_hw_queues: u32::try_from(shared.queues.len())?,
            depth: u32::from(depth) - 1,
            timeout_jiffies: shared.timeout_jiffies,
            poll_maps: shared.polled > 0,
        };
        let data = IoSet {
            shared: shared.clone(),
            ctrl: lease.clone(),
        };
        let set = TagSet::new(data, params)?;
        self.tagset.populate(Arc::new(set, GFP_KERNEL)?);
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for NvmeDev<'_> {
    fn drop(self: Pin<&mut Self>) {
        self.teardown();
        dev_info!(self.ctrl.pdev, "unbound\n");
        // The fields go next, in declaration order: the interrupts, then
        // the reset work (nothing queues it any more; one still queued finds
        // the lease revoked), the tag set, the vectors, the queues.
    }
}

/// A copy of what the controller wrote into `buf`, once the command that
/// wrote it completed (a timed-out command stops the controller first).
pub(crate) fn read_back(buf: &Coherent<[u8]>) -> Result<KVec<u8>> {
    let mut v = KVec::from_elem(0u8, buf.len(), GFP_KERNEL)?;
    buf.copy_to_slice(&mut v);
    Ok(v)
}
