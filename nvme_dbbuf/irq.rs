// SPDX-License-Identifier: GPL-2.0

//! Interrupt vectors, spread over the CPUs, and one handler per queue (the
//! admin queue's on vector 0).
//!
//! The 7.3 `pci::IrqVectorRegistration` cannot ask for affinity spreading
//! (`PCI_IRQ_AFFINITY`), which blk-mq needs to map each CPU to the queue whose
//! vector fires on it, and its handlers borrow the registration, which does
//! not fit queues that live as long as the driver data.  So this file wraps
//! the three C calls itself.

use core::ffi::c_void;

use kernel::{bindings, device::Bound, pci, prelude::*, sync::Arc};

use crate::cmd::Cqe;
use crate::pci_ext::pci_raw;
use crate::queue::Queue;

/// Allocated interrupt vectors; freed on drop.
///
/// # Invariants
///
/// `pdev` has `count` vectors allocated by `pci_alloc_irq_vectors_affinity`.
pub(crate) struct IrqVectors<'bound> {
    pdev: &'bound pci::Device<Bound>,
    count: u32,
    pin_based: bool,
}

impl<'bound> IrqVectors<'bound> {
    /// Allocates vector 0 for the admin queue and up to `max_io` more for
    /// the I/O queues, spread over the CPUs (MSI-X, then MSI, then one
    /// shared INTx line for everything).
    pub(crate) fn alloc(pdev: &'bound pci::Device<Bound>, max_io: u32) -> Result<Self> {
        // SAFETY: `irq_affinity` is plain data; all zeroes means "no pre or
        // post vectors, one set".
        let mut affd: bindings::irq_affinity = unsafe { core::mem::zeroed() };
        // The admin queue's vector is not spread.
        affd.pre_vectors = 1;
        // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device; `affd` is
        // valid for the duration of the call.
        let ret = unsafe {
            bindings::pci_alloc_irq_vectors_affinity(
                pci_raw(pdev),
                1,
                max_io.saturating_add(1),
                bindings::PCI_IRQ_ALL_TYPES | bindings::PCI_IRQ_AFFINITY,
                &mut affd,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        let raw = pci_raw(pdev);
        // SAFETY: `raw` is a valid PCI device; the allocation above set these
        // bits, which stay as they are until the vectors are freed.
        let (msi, msix) = unsafe {
            (
                bindings::pci_dev::msi_enabled_raw(raw),
                bindings::pci_dev::msix_enabled_raw(raw),
            )
        };
        Ok(Self {
            pdev,
            count: ret as u32,
            pin_based: msi == 0 && msix == 0,
        })
    }

    /// Whether the vectors are the legacy INTx pin (level-triggered, and
    /// deasserted by the controller only on a CQ head doorbell write).
    pub(crate) fn pin_based(&self) -> bool {
        self.pin_based
    }

    /// Number of vectors.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Vector of the first I/O queue: 1, or 0 when everything shares one.
    pub(crate) fn io_offset(&self) -> u32 {
        u32::from(self.count > 1)
    }

    /// How many of `granted` I/O queues get a vector (all share vector 0
    /// when there is only one: then a single I/O queue).
    pub(crate) fn io_queues(&self, granted: u32) -> u32 {
        if self.count > 1 {
            granted.min(self.count - 1)
        } else {
            granted.min(1)
        }
    }

    /// Linux IRQ number of vector `index`.
    fn irq(&self, index: u32) -> Result<u32> {
        if index >= self.count {
            return Err(EINVAL);
        }
        // SAFETY: the device is valid and has `count` vectors (invariant).
        let irq = unsafe { bindings::pci_irq_vector(pci_raw(self.pdev), index) };
        u32::try_from(irq).map_err(|_| Error::from_errno(irq))
    }
}

impl Drop for IrqVectors<'_> {
    fn drop(&mut self) {
        // SAFETY: the vectors were allocated by `alloc` (invariant) and every
        // handler was freed first (each `QueueIrq` holds the vectors).
        unsafe { bindings::pci_free_irq_vectors(pci_raw(self.pdev)) };
    }
}

/// What the interrupt handler does with each completion of its queue.
pub(crate) trait Completer {
    /// Called for every new completion entry, in interrupt context.
    fn complete(queue: &Queue<'_>, cqe: &Cqe);
}

/// An interrupt handler reaping one queue; on a shared line (INTx, or the
/// one vector of a single-vector MSI) one of several.  Not under `Devres`
/// (the driver keeps these in fields of its data): one leaked would leave
/// its handler registered past unbind.
///
/// # Invariants
///
/// `request_irq(irq, .., cookie)` succeeded with `irq` one of `vectors`
/// and `cookie` the address of `queue`; this value keeps both alive until
/// `drop` has freed the handler.
pub(crate) struct QueueIrq<'bound> {
    irq: u32,
    queue: Arc<Queue<'bound>>,
    _vectors: Arc<IrqVectors<'bound>>,
}

impl<'bound> QueueIrq<'bound> {
    /// Registers the handler of `queue` on vector `index`.
    pub(crate) fn new<C: Completer>(
        vectors: &Arc<IrqVectors<'bound>>,
        index: u32,
        queue: Arc<Queue<'bound>>,
    ) -> Result<Self> {
        let irq = vectors.irq(index)?;
        let cookie = Arc::as_ptr(&queue).cast::<c_void>();
        // SAFETY: `handler::<C>` matches `irq_handler_t`; the name is static;
        // `cookie` points to the `Queue` the returned value keeps alive until
        // it frees the handler, and is only read through shared references.
        kernel::error::to_result(unsafe {
            bindings::request_irq(
                irq,
                Some(handler::<C>),
                bindings::IRQF_SHARED as kernel::ffi::c_ulong,
                c"nvme_dbbuf".as_char_ptr(),
                cookie.cast_mut(),
            )
        })?;
        Ok(Self {
            irq,
            queue,
            _vectors: vectors.clone(),
        })
    }

    /// Waits for a running handler of this vector to return.
    pub(crate) fn synchronize(&self) {
        // SAFETY: `irq` is registered (type invariant).
        unsafe { bindings::synchronize_irq(self.irq) };
    }
}

impl Drop for QueueIrq<'_> {
    fn drop(&mut self) {
        let cookie = Arc::as_ptr(&self.queue).cast::<c_void>();
        // SAFETY: registered in `new` with this cookie (invariant); free_irq
        // waits for a running handler to finish, before `queue` drops.
        unsafe { bindings::free_irq(self.irq, cookie.cast_mut()) };
    }
}

/// # Safety
///
/// Only called by the IRQ core with the cookie given to `request_irq`.
unsafe extern "C" fn handler<C: Completer>(
    _irq: i32,
    cookie: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: the cookie is the `Queue` registered in `QueueIrq::new`, kept
    // alive by it until `free_irq` returns.
    let queue = unsafe { &*cookie.cast::<Queue<'_>>() };
    if queue.hooks().take_lost_irq() {
        return bindings::irqreturn::IRQ_HANDLED;
    }
    let reaped = queue.reap(|cqe| C::complete(queue, cqe));
    if reaped.count > 0 {
        bindings::irqreturn::IRQ_HANDLED
    } else {
        bindings::irqreturn::IRQ_NONE
    }
}

/// Posts admin completions for the command waiting in `Ctrl::admin_cmd`.
pub(crate) struct AdminCompleter;

impl Completer for AdminCompleter {
    fn complete(queue: &Queue<'_>, cqe: &Cqe) {
        queue.post(cqe);
    }
}
