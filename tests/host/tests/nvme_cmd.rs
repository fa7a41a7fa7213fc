//! Command encoding checked byte by byte against the spec's field offsets
//! (the same offsets Linux's include/linux/nvme.h structs give).

use rfl_host_tests::nvme_cmd::*;

fn bytes(s: &Sqe) -> [u8; 64] {
    // SAFETY (test): Sqe is a 64-byte repr(C) plain-data struct.
    unsafe { core::mem::transmute_copy(s) }
}
fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn common_fields() {
    let s = Sqe::new(0x42)
        .with_cid(0xbeef)
        .with_nsid(7)
        .with_prps(0x1000, 0x2000);
    let b = bytes(&s);
    assert_eq!(b[0], 0x42); // opcode
    assert_eq!(b[1], 0); // flags: PRPs, not fused
    assert_eq!(le16(&b, 2), 0xbeef); // command_id
    assert_eq!(le32(&b, 4), 7); // nsid
    assert_eq!(le64(&b, 24), 0x1000); // prp1
    assert_eq!(le64(&b, 32), 0x2000); // prp2
    assert_eq!((s.opcode(), s.cid()), (0x42, 0xbeef));
    // with_cid twice keeps the opcode and replaces the id.
    assert_eq!(s.with_cid(3).opcode(), 0x42);
    assert_eq!(s.with_cid(3).cid(), 3);
}

#[test]
fn create_cq_layout() {
    let b = bytes(&create_cq(3, 1024, 0xdead_b000, Some(5)));
    assert_eq!(b[0], 0x05);
    assert_eq!(le64(&b, 24), 0xdead_b000);
    assert_eq!(le16(&b, 40), 3); // cqid
    assert_eq!(le16(&b, 42), 1023); // qsize, 0-based
    assert_eq!(le16(&b, 44), 0b11); // NVME_QUEUE_PHYS_CONTIG | NVME_CQ_IRQ_ENABLED
    assert_eq!(le16(&b, 46), 5); // irq_vector
                                 // A polled queue: no interrupts, no vector.
    let b = bytes(&create_cq(4, 64, 0xdead_c000, None));
    assert_eq!((le16(&b, 40), le16(&b, 44), le16(&b, 46)), (4, 0b01, 0));
}

#[test]
fn create_sq_layout() {
    let b = bytes(&create_sq(3, 64, 0xcafe_0000, 3));
    assert_eq!(b[0], 0x01);
    assert_eq!(le16(&b, 40), 3); // sqid
    assert_eq!(le16(&b, 42), 63); // qsize
    assert_eq!(le16(&b, 44), 1); // NVME_QUEUE_PHYS_CONTIG, priority 0
    assert_eq!(le16(&b, 46), 3); // cqid
}

#[test]
fn delete_and_abort() {
    let b = bytes(&delete_sq(9));
    assert_eq!((b[0], le16(&b, 40)), (0x00, 9));
    let b = bytes(&delete_cq(9));
    assert_eq!((b[0], le16(&b, 40)), (0x04, 9));
    let b = bytes(&abort(2, 77));
    assert_eq!((b[0], le16(&b, 40), le16(&b, 42)), (0x08, 2, 77));
}

#[test]
fn identify_and_features() {
    let b = bytes(&identify(cns::CONTROLLER, 0, 0x8000));
    assert_eq!(
        (b[0], le32(&b, 4), le64(&b, 24), b[40]),
        (0x06, 0, 0x8000, 1)
    );
    let b = bytes(&identify(cns::NAMESPACE, 3, 0x9000));
    assert_eq!((le32(&b, 4), b[40]), (3, 0));
    let b = bytes(&set_num_queues(4, 4));
    assert_eq!((b[0], le32(&b, 40), le32(&b, 44)), (0x09, 7, 0x0003_0003));
    assert_eq!(granted_queues(0x0003_0001), (2, 4));
    assert_eq!(granted_queues(0xffff_ffff), (65536, 65536));
}

#[test]
fn doorbell_buffer_config() {
    let b = bytes(&dbbuf_config(0x1_0000_0000, 0x2_0000_1000));
    assert_eq!(b[0], 0x7c);
    assert_eq!(le64(&b, 24), 0x1_0000_0000); // PRP1: shadow doorbells
    assert_eq!(le64(&b, 32), 0x2_0000_1000); // PRP2: EventIdx
    assert!(b[40..].iter().all(|&x| x == 0));
}

#[test]
fn read_write() {
    let b = bytes(&rw(true, 1, 0x1_2345_6789, 8, true));
    assert_eq!(b[0], 0x01);
    assert_eq!(le64(&b, 40), 0x1_2345_6789); // slba
    assert_eq!(le16(&b, 48), 7); // length, 0-based
    assert_eq!(le16(&b, 50), 1 << 14); // control: FUA
    let b = bytes(&rw(false, 1, 0, 1, false));
    assert_eq!((b[0], le16(&b, 48), le16(&b, 50)), (0x02, 0, 0));
    let b = bytes(&write_zeroes(1, 100, 16));
    assert_eq!((b[0], le64(&b, 40), le16(&b, 48)), (0x08, 100, 15));
    let b = bytes(&flush(5));
    assert_eq!((b[0], le32(&b, 4)), (0x00, 5));
    let b = bytes(&discard(1, 3, 0x4000));
    assert_eq!(
        (b[0], le32(&b, 40), le32(&b, 44), le64(&b, 24)),
        (0x09, 2, 4, 0x4000)
    );
    let r = DsmRange::new(0x10, 0x20);
    let rb: [u8; 16] = unsafe { core::mem::transmute(r) };
    assert_eq!((le32(&rb, 0), le32(&rb, 4), le64(&rb, 8)), (0, 0x20, 0x10));
    let [w0, w1] = r.words();
    let mut wb = [0u8; 16];
    wb[..8].copy_from_slice(&w0.get().to_le_bytes());
    wb[8..].copy_from_slice(&w1.get().to_le_bytes());
    assert_eq!(wb, rb);
}

#[test]
fn completion_decoding() {
    // Status 0x4002: DNR, SCT 0, SC 2 (Invalid Field).
    let c = Cqe::new(0x1234_5678, 17, 3, 0xabcd, true, 0x4002);
    let b: [u8; 16] = unsafe { core::mem::transmute(c) };
    assert_eq!(le32(&b, 0), 0x1234_5678);
    assert_eq!(le16(&b, 8), 17); // sq_head
    assert_eq!(le16(&b, 10), 3); // sq_id
    assert_eq!(le16(&b, 12), 0xabcd); // command_id
    assert_eq!(le16(&b, 14), (0x4002 << 1) | 1); // status | phase
    assert_eq!(
        (c.result(), c.sq_head(), c.sq_id(), c.cid(), c.phase()),
        (0x1234_5678, 17, 3, 0xabcd, true)
    );
    assert!(c.status().dnr());
    assert_eq!((c.status().code_type(), c.status().code()), (0, 2));
    assert!(!c.status().is_success());
    assert!(Cqe::new(0, 0, 0, 0, false, 0).status().is_success());
    assert!(Cqe::new(0, 0, 0, 0, true, 0x0001)
        .status()
        .is_invalid_opcode());
    assert!(Cqe::new(0, 0, 0, 0, true, 0x0007)
        .status()
        .is_abort_requested());
    // Every status value survives the round trip with either phase.
    for st in 0..0x8000u16 {
        for ph in [false, true] {
            let c = Cqe::new(0, 0, 0, 1, ph, st);
            assert_eq!((c.status().0, c.phase(), c.cid()), (st, ph, 1));
        }
    }
}

#[test]
fn disposition_bounds_retries() {
    use Disposition::*;
    let ok = Some(Status::SUCCESS);
    let err = Some(Status(0x0006)); // Internal Error, retryable
    let dnr = Some(Status(0x4006)); // the same with Do Not Retry
                                    // Success ends the request whatever the retry state.
    assert_eq!(disposition(ok, false, 0, 5), Complete);
    assert_eq!(disposition(ok, true, 9, 5), Complete);
    // A retryable error or a reset-cancelled command is retried max_retries
    // times, then completed.
    for st in [err, None] {
        for r in 0..5 {
            assert_eq!(disposition(st, false, r, 5), Retry, "{st:?} {r}");
        }
        assert_eq!(disposition(st, false, 5, 5), Complete);
        assert_eq!(disposition(st, false, 200, 5), Complete);
        // FAILFAST (or a dead controller) and max_retries=0: never retried.
        assert_eq!(disposition(st, true, 0, 5), Complete);
        assert_eq!(disposition(st, false, 0, 0), Complete);
    }
    // Do Not Retry is final.
    assert_eq!(disposition(dnr, false, 0, 5), Complete);
}
