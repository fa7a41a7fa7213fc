// SPDX-License-Identifier: GPL-2.0

//! Little-endian integers, the byte order of every value the controller
//! reads or writes in memory (the C driver's `__le32`/`__le64`).
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.
//! A value of these types is in wire order on any host; the only way in or
//! out is [`Le32::new`] and [`Le32::get`] (and their siblings), so a
//! host-order value cannot reach the device by mistake.  In the module they
//! derive the kernel's `FromBytes`/`IntoBytes`, which the volatile
//! `copy_read`/`copy_write` of DMA memory take.

macro_rules! le_type {
    ($(#[$doc:meta])* $name:ident, $ty:ty) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Default, PartialEq, Eq)]
        #[cfg_attr(CONFIG_RUST, derive(::kernel::prelude::FromBytes, ::kernel::prelude::IntoBytes))]
        pub struct $name($ty);

        impl $name {
            /// Zero, the same in either byte order.
            pub const ZERO: Self = Self(0);

            /// `v` (host order) in wire order.
            pub const fn new(v: $ty) -> Self {
                Self(v.to_le())
            }

            /// The value in host order.
            pub const fn get(self) -> $ty {
                <$ty>::from_le(self.0)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:#x}", self.get())
            }
        }
    };
}

le_type!(
    /// A little-endian `u32`.
    Le32,
    u32
);
le_type!(
    /// A little-endian `u64`.
    Le64,
    u64
);
