// SPDX-License-Identifier: GPL-2.0

//! A misc device whose open files reach data of their registration, which
//! later kernels give as `MiscDevice::RegistrationData`: 7.3's `open` gets
//! only the registration.  Also the capability check its ioctls need.

use core::marker::PhantomData;

use kernel::{
    bindings,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// The file operations of a [`Registration`]; its open files share `Self`.
pub(crate) trait MiscOps: Send + Sync + 'static {
    /// An ioctl on an open file.
    fn ioctl(this: ArcBorrow<'_, Self>, file: &File, cmd: u32, arg: usize) -> Result<isize>;
}

/// A registered misc device whose open files each hold a reference to
/// `data`.
///
/// # Invariants
///
/// Every `MiscDeviceRegistration<Adapter<T>>` is the `reg` field of a
/// `Registration<T>`: `Adapter` is private to this file, and
/// [`Registration::register`] is the only place that registers one.
#[pin_data]
pub(crate) struct Registration<T: MiscOps> {
    data: Arc<T>,
    #[pin]
    reg: MiscDeviceRegistration<Adapter<T>>,
}

impl<T: MiscOps> Registration<T> {
    /// Registers the device; `data` is in place before the node can be
    /// opened.
    pub(crate) fn register(opts: MiscDeviceOptions, data: Arc<T>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            data,
            reg <- MiscDeviceRegistration::register(opts),
        })
    }
}

struct Adapter<T>(PhantomData<T>);

#[vtable]
impl<T: MiscOps> MiscDevice for Adapter<T> {
    type Ptr = Arc<T>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<T>> {
        let reg = core::ptr::from_ref(misc).cast_mut();
        // SAFETY: `misc` is the `reg` field of a live `Registration<T>`
        // (type invariant): open runs while it is registered.
        let r = unsafe { &*kernel::container_of!(reg, Registration<T>, reg) };
        Ok(r.data.clone())
    }

    fn ioctl(this: ArcBorrow<'_, T>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        T::ioctl(this, file, cmd, arg)
    }
}

/// Whether the calling task has `CAP_SYS_ADMIN` (audited, as `capable()`).
pub(crate) fn caller_is_admin() -> bool {
    // SAFETY: a plain check of the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
