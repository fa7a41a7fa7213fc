// SPDX-License-Identifier: GPL-2.0

//! A revocable borrow of a lifetime-parameterised object, for code that can
//! outlive the borrow: debugfs file callbacks, the open files of a
//! character device, whose data the kernel crate wants `'static`, a work
//! item, and a blk-mq tag set the object owns.
//!
//! Shaped like `kernel::devres::DevresLt`: the object's type is a [`ForLt`]
//! family, its lifetime is erased inside this type only, and users reach it
//! through a closure generic over the lifetime ([`Lease::with`]), so no
//! reference with the erased lifetime escapes.  Users run concurrently;
//! [`Lease::revoke`] waits for the ones running now, later ones get
//! `ENODEV`.
//!
//! A lease is only made by [`Lending`], which owns the lent object and
//! revokes the lease before the object drops: handing the lease out is then
//! safe, wherever it goes.

use core::{ops::Deref, ptr::NonNull};

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    types::ForLt,
};

/// The lent object while the lease holds, and how many use it now.
struct Lent<F: ForLt> {
    obj: Option<NonNull<F::Of<'static>>>,
    users: usize,
}

// SAFETY: the pointer only ever yields shared references (`Lease::with`),
// which may be used from any thread when the object is `Sync`.
unsafe impl<F: ForLt> Send for Lent<F> where for<'a> F::Of<'a>: Sync {}

/// A `'static` handle to an object of type `F::Of<'x>` lent for `'x`.
///
/// # Invariants
///
/// While `lent.obj` is `Some(p)` or `lent.users` is not 0, `p` points to a
/// live object of type `F::Of<'x>` for the lifetime `'x` it was lent with:
/// the lender calls [`Lease::revoke`], which waits for `users` to reach 0,
/// before `'x` ends.
#[pin_data]
pub(crate) struct Lease<F: ForLt>
where
    for<'a> F::Of<'a>: Sync,
{
    #[pin]
    lent: Mutex<Lent<F>>,
    /// Notified when the last user leaves.
    #[pin]
    idle: CondVar,
}

impl<F: ForLt> Lease<F>
where
    for<'a> F::Of<'a>: Sync,
{
    /// Lends the object at `obj` until [`Self::revoke`].
    ///
    /// # Safety
    ///
    /// The object must be alive at `obj`, and stay there, from the first
    /// [`Self::with`] until [`Self::revoke`] has returned.
    unsafe fn new<'x>(obj: NonNull<F::Of<'x>>) -> impl PinInit<Self> {
        // Lifetimes do not change layout: `F::Of<'x>` and `F::Of<'static>`
        // are the same type to the machine.
        let p = obj.cast::<F::Of<'static>>();
        pin_init!(Self {
            lent <- new_mutex!(Lent { obj: Some(p), users: 0 }, "nvme_dbbuf:lease"),
            idle <- new_condvar!("nvme_dbbuf:lease_idle"),
        })
    }

    /// Runs `f` on the object, or fails with `ENODEV` once revoked.  A
    /// revocation waits for `f`.
    pub(crate) fn with<R>(&self, f: impl for<'a> FnOnce(&F::Of<'a>) -> R) -> Result<R> {
        let p = {
            let mut lent = self.lent.lock();
            let p = lent.obj.ok_or(ENODEV)?;
            lent.users = lent.users.saturating_add(1);
            p
        };
        // SAFETY: still lent, so alive, and the lender cannot end the loan
        // while `users` counts this call (type invariant).  `f` is generic
        // over the lifetime, so nothing tied to `'static` leaves it.
        let r = f(unsafe { p.as_ref() });
        let mut lent = self.lent.lock();
        lent.users = lent.users.saturating_sub(1);
        if lent.users == 0 {
            self.idle.notify_all();
        }
        Ok(r)
    }

    /// Ends the loan: waits for the running [`Self::with`] calls.
    pub(crate) fn revoke(&self) {
        let mut lent = self.lent.lock();
        lent.obj = None;
        while lent.users > 0 {
            self.idle.wait(&mut lent);
        }
    }
}

/// An object lending itself: `obj`, pinned in place, with a [`Lease`] on it
/// that this type revokes before `obj` drops.
///
/// # Invariants
///
/// `lease` lends `obj` at its pinned address; [`PinnedDrop`] revokes it
/// before the fields drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Lending<'x, F: ForLt>
where
    for<'a> F::Of<'a>: Sync,
{
    lease: Arc<Lease<F>>,
    #[pin]
    obj: F::Of<'x>,
}

impl<'x, F: ForLt + 'x> Lending<'x, F>
where
    for<'a> F::Of<'a>: Sync,
{
    /// Initialises the object in place, then runs `then` on it and its
    /// lease (to give the lease to what can outlive the borrow); a `then`
    /// that fails drops the object again, lease revoked first.
    pub(crate) fn new(
        obj: impl PinInit<F::Of<'x>, Error> + 'x,
        then: impl FnOnce(&F::Of<'x>, &Arc<Lease<F>>) -> Result + 'x,
    ) -> impl PinInit<Self, Error> + 'x {
        try_pin_init!(&this in Self {
            lease: {
                // SAFETY: `obj` of the allocation `this` points to, pinned and initialised
                // next; no one has the lease before `then`, and `drop` revokes it first.
                let obj = unsafe { NonNull::new_unchecked(&raw mut (*this.as_ptr()).obj) };
                // SAFETY: as just said (type invariant).
                Arc::pin_init(unsafe { Lease::new(obj) }, GFP_KERNEL)?
            },
            obj <- obj,
        })
        .pin_chain(|this| then(&this.obj, &this.lease))
    }
}

impl<'x, F: ForLt> Deref for Lending<'x, F>
where
    for<'a> F::Of<'a>: Sync,
{
    type Target = F::Of<'x>;

    fn deref(&self) -> &F::Of<'x> {
        &self.obj
    }
}

#[pinned_drop]
impl<F: ForLt> PinnedDrop for Lending<'_, F>
where
    for<'a> F::Of<'a>: Sync,
{
    fn drop(self: Pin<&mut Self>) {
        self.lease.revoke();
    }
}
