// SPDX-License-Identifier: GPL-2.0

//! A revocable borrow of a lifetime-parameterised object, for code that can
//! outlive the borrow: debugfs file callbacks and the open files of a
//! character device, whose data the kernel crate wants `'static`.
//!
//! Shaped like `kernel::devres::DevresLt`: the object's type is a [`ForLt`]
//! family, its lifetime is erased inside this type only, and users reach it
//! through a closure generic over the lifetime ([`Lease::with`]), so no
//! reference with the erased lifetime escapes.  [`Lease::revoke`] waits for
//! the users running now; later ones get `ENODEV`.

use core::ptr::NonNull;

use kernel::{new_mutex, prelude::*, sync::Mutex, types::ForLt};

/// The lent object while the lease holds.
struct Lent<F: ForLt>(Option<NonNull<F::Of<'static>>>);

// SAFETY: the pointer only ever yields shared references (`Lease::with`),
// which may be used from any thread when the object is `Sync`.
unsafe impl<F: ForLt> Send for Lent<F> where for<'a> F::Of<'a>: Sync {}

/// A `'static` handle to an object of type `F::Of<'x>` lent for `'x`.
///
/// # Invariants
///
/// While `lent` holds `Some(p)`, `p` points to a live object of type
/// `F::Of<'x>` for the lifetime `'x` it was lent with; the lender calls
/// [`Lease::revoke`] (which takes the lock, so waits for [`Lease::with`])
/// before `'x` ends.
#[pin_data]
pub(crate) struct Lease<F: ForLt>
where
    for<'a> F::Of<'a>: Sync,
{
    #[pin]
    lent: Mutex<Lent<F>>,
}

impl<F: ForLt> Lease<F>
where
    for<'a> F::Of<'a>: Sync,
{
    /// Lends `obj` until [`Self::revoke`].
    ///
    /// # Safety
    ///
    /// `obj` must stay alive and at its address until [`Self::revoke`] has
    /// returned.
    pub(crate) unsafe fn new<'x>(obj: &F::Of<'x>) -> impl PinInit<Self> {
        // Lifetimes do not change layout: `F::Of<'x>` and `F::Of<'static>`
        // are the same type to the machine.
        let p = NonNull::from(obj).cast::<F::Of<'static>>();
        pin_init!(Self {
            lent <- new_mutex!(Lent(Some(p)), "nvme_dbbuf:lease"),
        })
    }

    /// Runs `f` on the object, or fails with `ENODEV` once revoked.  A
    /// revocation waits for `f`.
    pub(crate) fn with<R>(&self, f: impl for<'a> FnOnce(&F::Of<'a>) -> R) -> Result<R> {
        let lent = self.lent.lock();
        let p = lent.0.ok_or(ENODEV)?;
        // SAFETY: still lent, so alive, and the lender cannot end the loan
        // before this lock is released (type invariant).  `f` is generic
        // over the lifetime, so nothing tied to `'static` leaves it.
        Ok(f(unsafe { p.as_ref() }))
    }

    /// Ends the loan: waits for a running [`Self::with`].
    pub(crate) fn revoke(&self) {
        self.lent.lock().0 = None;
    }
}
