//! Identify parsing against hand-built data at the spec's byte offsets
//! (the offsets of include/linux/nvme.h's struct nvme_id_ctrl / nvme_id_ns).

use rfl_host_tests::nvme_identify::*;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

#[test]
fn controller_fields() {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    put(&mut b, 0, &0x1b36u16.to_le_bytes());
    put(&mut b, 4, b"hx0                 ");
    put(&mut b, 24, b"QEMU NVMe Ctrl                          ");
    put(&mut b, 64, b"9.2.0   ");
    b[77] = 7;
    put(&mut b, 78, &3u16.to_le_bytes());
    put(&mut b, 256, &0x0100u16.to_le_bytes());
    put(&mut b, 516, &256u32.to_le_bytes());
    put(&mut b, 520, &(ONCS_DSM | ONCS_WRITE_ZEROES).to_le_bytes());
    b[525] = 1;
    let c = IdCtrl::parse(&b);
    assert_eq!(c.vid, 0x1b36);
    assert_eq!(trim(&c.sn), b"hx0");
    assert_eq!(trim(&c.mn), b"QEMU NVMe Ctrl");
    assert_eq!(trim(&c.fr), b"9.2.0");
    assert_eq!(c.cntlid, 3);
    assert!(c.has_dbbuf());
    assert_eq!(c.nn, 256);
    assert_eq!(c.oncs, ONCS_DSM | ONCS_WRITE_ZEROES);
    assert!(c.has_vwc());
    assert_eq!(c.max_transfer(4096), Some(512 << 10));
    b[77] = 0;
    assert_eq!(IdCtrl::parse(&b).max_transfer(4096), None);
    b[256] = 0;
    b[257] = 0;
    assert!(!IdCtrl::parse(&b).has_dbbuf());
}

#[test]
fn namespace_fields() {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    put(&mut b, 0, &131072u64.to_le_bytes());
    put(&mut b, 8, &131072u64.to_le_bytes());
    b[25] = 1; // nlbaf: two formats (0-based)
    b[26] = 1; // in use: format 1
    put(&mut b, 128, &(9u32 << 16).to_le_bytes()); // 512 B
    put(&mut b, 132, &(12u32 << 16).to_le_bytes()); // 4 KiB
    let n = IdNs::parse(&b);
    assert_eq!(n.flba_index, 1);
    assert_eq!(n.block_size(), Some(4096));
    assert_eq!(n.capacity_sectors(), 131072 * 8);
    b[26] = 0;
    let n = IdNs::parse(&b);
    assert_eq!(n.block_size(), Some(512));
    assert_eq!(n.capacity_sectors(), 131072);
    // A size that does not fit in 64-bit sectors is 0 (skipped), not wrapped.
    b[26] = 1;
    put(&mut b, 0, &(1u64 << 61).to_le_bytes());
    assert_eq!(IdNs::parse(&b).capacity_sectors(), 0);
    put(&mut b, 0, &((1u64 << 61) - 1).to_le_bytes());
    assert_eq!(IdNs::parse(&b).capacity_sectors(), ((1u64 << 61) - 1) << 3);
    put(&mut b, 0, &(1u64 << 62).to_le_bytes());
    assert_eq!(IdNs::parse(&b).capacity_sectors(), 0);
    put(&mut b, 0, &131072u64.to_le_bytes());
    b[26] = 0;
    // Metadata formats are refused, not mis-sized.
    put(&mut b, 128, &((9u32 << 16) | 8).to_le_bytes());
    assert_eq!(IdNs::parse(&b).block_size(), None);
    // More than 16 formats: FLBAS bits 6:5 extend the index.
    b[25] = 20;
    b[26] = 0x21; // index 0x11 = 17
    put(&mut b, 128 + 4 * 17, &(12u32 << 16).to_le_bytes());
    assert_eq!(IdNs::parse(&b).flba_index, 17);
    assert_eq!(IdNs::parse(&b).block_size(), Some(4096));
}

#[test]
fn namespace_list() {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    for (i, id) in [1u32, 2, 7].iter().enumerate() {
        put(&mut b, 4 * i, &id.to_le_bytes());
    }
    assert_eq!(active_nsids(&b).collect::<Vec<_>>(), vec![1, 2, 7]);
    assert_eq!(active_nsids(&[0u8; 16]).count(), 0);
    let full: Vec<u8> = (1..=1024u32).flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(active_nsids(&full).count(), 1024);
}
