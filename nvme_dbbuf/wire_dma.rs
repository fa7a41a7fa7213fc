// SPDX-License-Identifier: GPL-2.0

//! The wire types as the contents of DMA memory: `cmd.rs`'s entries and
//! `le.rs`'s integers are `core`-only (the host tests compile them), so the
//! kernel crate's `FromBytes`/`AsBytes`, which `dma::Coherent<[T]>` asks
//! of its `T`, are implemented here.  Reads and writes of that memory go
//! through the kernel crate's volatile `copy_read`/`copy_write` (`queue.rs`,
//! `dbbuf.rs`), which take the derived `FromBytes`/`IntoBytes`.

use kernel::transmute::{AsBytes, FromBytes};

use crate::cmd::{Cqe, Sqe};
use crate::le::{Le32, Le64};

// SAFETY: `repr(transparent)` over a `u32`: every bit pattern is a value,
// no padding, no interior mutability.
unsafe impl FromBytes for Le32 {}
// SAFETY: as above.
unsafe impl AsBytes for Le32 {}
// SAFETY: `repr(transparent)` over a `u64`, as above.
unsafe impl FromBytes for Le64 {}
// SAFETY: as above.
unsafe impl AsBytes for Le64 {}
// SAFETY: `repr(C)` of `Le32`/`Le64` fields without padding (asserted 64
// bytes, and the derived `IntoBytes` checks it); every bit pattern is valid.
unsafe impl FromBytes for Sqe {}
// SAFETY: as above.
unsafe impl AsBytes for Sqe {}
// SAFETY: `repr(C)` of four `Le32`s (asserted 16 bytes); every bit pattern
// is valid.
unsafe impl FromBytes for Cqe {}
// SAFETY: as above.
unsafe impl AsBytes for Cqe {}
