//! The wire integers hold little-endian bytes on any host, and give back
//! the host-order value.

use rfl_host_tests::nvme_le::{Le32, Le64};

#[test]
fn wire_bytes_are_little_endian() {
    let v = Le32::new(0x1122_3344);
    // SAFETY (test): `Le32` is `repr(transparent)` over a `u32`.
    let b: [u8; 4] = unsafe { core::mem::transmute(v) };
    assert_eq!(b, [0x44, 0x33, 0x22, 0x11]);
    assert_eq!(v.get(), 0x1122_3344);
    let w = Le64::new(0x0102_0304_0506_0708);
    // SAFETY (test): `Le64` is `repr(transparent)` over a `u64`.
    let b: [u8; 8] = unsafe { core::mem::transmute(w) };
    assert_eq!(b, [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(w.get(), 0x0102_0304_0506_0708);
    assert_eq!((Le32::ZERO.get(), Le64::ZERO.get()), (0, 0));
    assert_eq!(format!("{:?}", Le32::new(0xab)), "0xab");
}
