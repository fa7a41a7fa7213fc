// SPDX-License-Identifier: GPL-2.0

//! Interrupt vectors, spread over the CPUs, and one handler per I/O queue.
//!
//! The 7.3 `pci::IrqVectorRegistration` cannot ask for affinity spreading
//! (`PCI_IRQ_AFFINITY`), which blk-mq needs to map each CPU to the queue whose
//! vector fires on it, and its handlers borrow the registration, which does
//! not fit queues that live as long as the driver data.  So this file wraps
//! the three C calls itself.

use core::ffi::c_void;

use kernel::{bindings, device::Bound, pci, prelude::*};

use crate::cmd::Cqe;
use crate::queue::Queue;

/// The raw `struct pci_dev` behind `pdev`.
pub(crate) fn pci_raw(pdev: &pci::Device<Bound>) -> *mut bindings::pci_dev {
    // `pci::Device` is `repr(transparent)` over `Opaque<bindings::pci_dev>`,
    // so the reference is a pointer to the C structure.
    core::ptr::from_ref(pdev).cast_mut().cast()
}

/// Allocated interrupt vectors; freed on drop.
///
/// # Invariants
///
/// `pdev` has `count` vectors allocated by `pci_alloc_irq_vectors_affinity`.
pub(crate) struct IrqVectors<'bound> {
    pdev: &'bound pci::Device<Bound>,
    count: u32,
}

impl<'bound> IrqVectors<'bound> {
    /// Allocates between 1 and `max` vectors (MSI-X, then MSI, then INTx),
    /// spread over the CPUs.
    pub(crate) fn alloc(pdev: &'bound pci::Device<Bound>, max: u32) -> Result<Self> {
        // SAFETY: `irq_affinity` is plain data; all zeroes means "no pre or
        // post vectors, one set".
        let mut affd: bindings::irq_affinity = unsafe { core::mem::zeroed() };
        // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device; `affd` is
        // valid for the duration of the call.
        let ret = unsafe {
            bindings::pci_alloc_irq_vectors_affinity(
                pci_raw(pdev),
                1,
                max,
                bindings::PCI_IRQ_ALL_TYPES | bindings::PCI_IRQ_AFFINITY,
                &mut affd,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(Self {
            pdev,
            count: ret as u32,
        })
    }

    /// Number of vectors.
    pub(crate) fn count(&self) -> u32 {
        self.count
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
        // handler was freed first (`QueueIrq`s are dropped before this).
        unsafe { bindings::pci_free_irq_vectors(pci_raw(self.pdev)) };
    }
}

/// What the interrupt handler does with each completion of its queue.
pub(crate) trait Completer {
    /// Called for every new completion entry, in interrupt context.
    fn complete(queue: &Queue, cqe: &Cqe);
}

/// An interrupt handler reaping one I/O queue.
///
/// # Invariants
///
/// `request_irq(irq, .., queue)` succeeded; `queue` stays valid until `drop`
/// frees the handler (the queue is owned by the driver data and dropped
/// after every `QueueIrq`).
pub(crate) struct QueueIrq {
    irq: u32,
    queue: *const Queue,
}

// SAFETY: the handle only frees the handler; `Queue` is `Sync`.
unsafe impl Send for QueueIrq {}
// SAFETY: as above.
unsafe impl Sync for QueueIrq {}

impl QueueIrq {
    /// Registers the handler of `queue` on vector `index`.
    ///
    /// # Safety
    ///
    /// `queue` must outlive the returned value.
    pub(crate) unsafe fn new<C: Completer>(
        vectors: &IrqVectors<'_>,
        index: u32,
        queue: &Queue,
    ) -> Result<Self> {
        let irq = vectors.irq(index)?;
        let cookie = core::ptr::from_ref(queue);
        // SAFETY: `handler::<C>` matches `irq_handler_t`; the name is static;
        // `cookie` points to a `Queue` that outlives the registration (caller
        // guarantee), and is only read through shared references.
        kernel::error::to_result(unsafe {
            bindings::request_irq(
                irq,
                Some(handler::<C>),
                0,
                c"nvme_dbbuf".as_char_ptr(),
                cookie.cast_mut().cast::<c_void>(),
            )
        })?;
        Ok(Self { irq, queue: cookie })
    }
}

impl QueueIrq {
    /// Waits for a running handler of this vector to return.
    pub(crate) fn synchronize(&self) {
        // SAFETY: `irq` is registered (type invariant).
        unsafe { bindings::synchronize_irq(self.irq) };
    }
}

impl Drop for QueueIrq {
    fn drop(&mut self) {
        // SAFETY: registered in `new` with this cookie (invariant); free_irq
        // waits for a running handler to finish.
        unsafe { bindings::free_irq(self.irq, self.queue.cast_mut().cast::<c_void>()) };
    }
}

/// # Safety
///
/// Only called by the IRQ core with the cookie given to `request_irq`.
unsafe extern "C" fn handler<C: Completer>(
    _irq: i32,
    cookie: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: the cookie is the `Queue` registered in `QueueIrq::new`, alive
    // until `free_irq` returns.
    let queue = unsafe { &*cookie.cast::<Queue>() };
    let reaped = queue.reap(|cqe| C::complete(queue, cqe));
    if reaped.count > 0 {
        bindings::irqreturn::IRQ_HANDLED
    } else {
        bindings::irqreturn::IRQ_NONE
    }
}
