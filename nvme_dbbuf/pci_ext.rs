// SPDX-License-Identifier: GPL-2.0

//! PCI device calls that 7.3's `pci::Device` offers only during probe
//! (`Core`), or not at all, needed again by resets and teardown (`Bound`).

use kernel::{bindings, device::Bound, pci};

/// The raw `struct pci_dev` behind `pdev`.
pub(crate) fn pci_raw(pdev: &pci::Device<Bound>) -> *mut bindings::pci_dev {
    // `pci::Device` is `repr(transparent)` over `Opaque<bindings::pci_dev>`,
    // so the reference is a pointer to the C structure.
    core::ptr::from_ref(pdev).cast_mut().cast()
}

/// Lets the device master the bus (DMA) again after [`clear_master`].
pub(crate) fn set_master(pdev: &pci::Device<Bound>) {
    // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device.
    unsafe { bindings::pci_set_master(pci_raw(pdev)) };
}

/// Keeps the device off its INTx pin (PCI_COMMAND Interrupt Disable) until
/// `pci_alloc_irq_vectors` picks the pin and allows it again: before any
/// handler exists, a level interrupt nobody claims fires until the polled
/// admin command reaps its completion (thousands of times under TCG).
pub(crate) fn disable_intx(pdev: &pci::Device<Bound>) {
    // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device.
    unsafe { bindings::pci_intx(pci_raw(pdev), 0) };
}

/// Stops the device's DMA: clears Bus Master Enable.  For a controller
/// that could not be disabled, before memory it may still write is freed.
pub(crate) fn clear_master(pdev: &pci::Device<Bound>) {
    // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device.
    unsafe { bindings::pci_clear_master(pci_raw(pdev)) };
}

/// Whether the device still answers on the bus (not surprise-removed).
pub(crate) fn is_present(pdev: &pci::Device<Bound>) -> bool {
    // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device.
    unsafe { bindings::pci_device_is_present(pci_raw(pdev)) }
}

/// The device's PCI Command register, read back from config space (what
/// the device itself now obeys), or `None` if the read failed.
pub(crate) fn command(pdev: &pci::Device<Bound>) -> Option<u16> {
    let mut v = 0u16;
    // SAFETY: `pci_raw(pdev)` is a valid, bound PCI device; `v` is valid
    // for the write.
    let r = unsafe {
        bindings::pci_read_config_word(pci_raw(pdev), bindings::PCI_COMMAND as i32, &mut v)
    };
    (r == 0).then_some(v)
}
