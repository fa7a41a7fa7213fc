//! CAP / VS field semantics, checked against the spec's definitions and the
//! values QEMU's emulated controller reports.

use rfl_host_tests::nvme_spec::*;

#[test]
fn version_splits_vs() {
    // QEMU 7.2's NVMe controller reports VS = 0x00010400.
    assert_eq!(Version::from_raw(0x0001_0400), Version::new(1, 4, 0));
    assert_eq!(Version::from_raw(0x0002_0100), Version::new(2, 1, 0));
    assert_eq!(
        Version::from_raw(0xffff_ffff),
        Version::new(0xffff, 0xff, 0xff)
    );
    assert_eq!(Version::from_raw(0x0001_0203).to_string(), "1.2.3");
}

#[test]
fn version_orders_for_feature_checks() {
    assert!(Version::new(1, 4, 0) >= Version::V1_3);
    assert!(Version::new(1, 2, 1) < Version::V1_3);
    assert!(Version::new(2, 0, 0) > Version::new(1, 255, 255));
}

#[test]
fn queue_entries_are_zero_based() {
    assert_eq!(max_queue_entries(0), 1);
    assert_eq!(max_queue_entries(0x7ff), 2048);
    assert_eq!(max_queue_entries(u16::MAX), 65536);
}

#[test]
fn ready_timeout_in_500ms_units() {
    assert_eq!(ready_timeout_ms(1), 500);
    assert_eq!(ready_timeout_ms(0x0f), 7500);
    assert_eq!(ready_timeout_ms(0xff), 127_500);
    // Out of spec, but must still wait rather than spin zero times.
    assert_eq!(ready_timeout_ms(0), 500);
}

#[test]
fn doorbell_offsets_follow_stride() {
    // DSTRD = 0: SQ0 tail 0x1000, CQ0 head 0x1004, SQ1 tail 0x1008 ...
    assert_eq!(sq_tail_doorbell(0, 0), 0x1000);
    assert_eq!(cq_head_doorbell(0, 0), 0x1004);
    assert_eq!(sq_tail_doorbell(1, 0), 0x1008);
    assert_eq!(cq_head_doorbell(1, 0), 0x100c);
    // Spec formula: 1000h + ((2y) * (4 << CAP.DSTRD)) and 1000h + ((2y + 1) * (4 << CAP.DSTRD)).
    for dstrd in 0..=15u8 {
        for qid in [0u16, 1, 7, 64, 1023] {
            let stride = 4usize << dstrd;
            assert_eq!(
                sq_tail_doorbell(qid, dstrd),
                0x1000 + 2 * qid as usize * stride
            );
            assert_eq!(
                cq_head_doorbell(qid, dstrd),
                0x1000 + (2 * qid as usize + 1) * stride
            );
        }
    }
    // Only the low 4 bits are the field.
    assert_eq!(doorbell_stride(0x10), 4);
}

#[test]
fn page_sizes() {
    assert_eq!(page_size(0), 4096);
    assert_eq!(page_size(4), 65536);
    assert_eq!(page_size(15), 1 << 27);
}

#[test]
fn nvm_command_set_bit() {
    assert!(supports_nvm_command_set(0x01));
    assert!(supports_nvm_command_set(0xc1));
    assert!(!supports_nvm_command_set(0x40));
}
