//! The admin passthrough ABI against the byte offsets of
//! include/uapi/linux/nvme_ioctl.h, and the accept/refuse rules.

use rfl_host_tests::nvme_le::Le64;
use rfl_host_tests::nvme_passthru::*;
use rfl_host_tests::nvme_prp::build;

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

#[test]
fn ioctl_numbers_match_the_uapi_header() {
    // The values nvme-cli's libnvme issues (strace of `nvme id-ctrl`).
    assert_eq!(NVME_IOCTL_ADMIN_CMD, 0xc048_4e41);
    assert_eq!(NVME_IOCTL_ADMIN64_CMD, 0xc050_4e47);
    assert_eq!(RESULT_OFFSET + 4, CMD_SIZE);
    assert_eq!(RESULT64_OFFSET + 8, CMD64_SIZE);
}

#[test]
fn decode_reads_every_field_at_its_offset() {
    let mut b = vec![0u8; CMD64_SIZE];
    b[0] = 0x06;
    b[1] = 0x40;
    put(&mut b, 2, &0xeeeeu16.to_ne_bytes()); // rsvd1: ignored
    put(&mut b, 4, &0x1122_3344u32.to_ne_bytes());
    put(&mut b, 8, &2u32.to_ne_bytes());
    put(&mut b, 12, &3u32.to_ne_bytes());
    put(&mut b, 16, &0xaaaa_bbbb_cccc_ddddu64.to_ne_bytes());
    put(&mut b, 24, &0x7fff_1234_5000u64.to_ne_bytes());
    put(&mut b, 32, &16u32.to_ne_bytes());
    put(&mut b, 36, &4096u32.to_ne_bytes());
    for i in 0..6u32 {
        put(&mut b, 40 + 4 * i as usize, &(10 + i).to_ne_bytes());
    }
    put(&mut b, 64, &1000u32.to_ne_bytes());
    put(&mut b, 68, &0xffff_ffffu32.to_ne_bytes()); // result: output only
    let c = PassthruCmd::decode(&b).unwrap();
    assert_eq!(
        c,
        PassthruCmd {
            opcode: 0x06,
            flags: 0x40,
            nsid: 0x1122_3344,
            cdw2: 2,
            cdw3: 3,
            metadata: 0xaaaa_bbbb_cccc_dddd,
            addr: 0x7fff_1234_5000,
            metadata_len: 16,
            data_len: 4096,
            cdw10_15: [10, 11, 12, 13, 14, 15],
            timeout_ms: 1000,
        }
    );
    // The 32-bit form decodes the same from its 72 bytes.
    assert_eq!(PassthruCmd::decode(&b[..CMD_SIZE]), Some(c));
    assert_eq!(PassthruCmd::decode(&b[..CMD_SIZE - 1]), None);
}

fn identify() -> PassthruCmd {
    PassthruCmd {
        opcode: 0x06,
        addr: 0x1000,
        data_len: 4096,
        cdw10_15: [1, 0, 0, 0, 0, 0],
        ..Default::default()
    }
}

#[test]
fn what_nvme_cli_sends_is_accepted() {
    // id-ctrl, id-ns, smart-log (Get Log Page 0x02, 512 bytes).
    assert_eq!(
        plan(&identify()),
        Ok(Plan {
            dir: Dir::FromDevice,
            len: 4096
        })
    );
    let smart = PassthruCmd {
        opcode: 0x02,
        nsid: 0xffff_ffff,
        data_len: 512,
        addr: 8,
        ..Default::default()
    };
    assert_eq!(
        plan(&smart),
        Ok(Plan {
            dir: Dir::FromDevice,
            len: 512
        })
    );
    // Set Features (0x09, here Timestamp): host to controller only if it
    // carries data.
    let setf = PassthruCmd {
        opcode: 0x09,
        cdw10_15: [0x0e, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    assert_eq!(
        plan(&setf),
        Ok(Plan {
            dir: Dir::None,
            len: 0
        })
    );
    let fw = PassthruCmd {
        opcode: 0x11,
        data_len: 8192,
        addr: 8,
        ..Default::default()
    };
    assert_eq!(
        plan(&fw),
        Ok(Plan {
            dir: Dir::ToDevice,
            len: 8192
        })
    );
}

#[test]
fn bad_input_is_refused() {
    let ok = identify();
    for bad in [
        PassthruCmd { flags: 1, ..ok },
        PassthruCmd { flags: 0x40, ..ok }, // SGL
        PassthruCmd {
            metadata: 0x2000,
            ..ok
        },
        PassthruCmd {
            metadata_len: 4,
            ..ok
        },
        PassthruCmd {
            data_len: MAX_DATA_LEN + 1,
            ..ok
        },
        PassthruCmd {
            data_len: u32::MAX,
            ..ok
        },
    ] {
        assert_eq!(plan(&bad), Err(Refusal::Invalid), "{bad:?}");
    }
    assert!(plan(&PassthruCmd {
        data_len: MAX_DATA_LEN,
        ..ok
    })
    .is_ok());
    // Only the allowlist passes; every other opcode, vendor-specific ones
    // included, is refused.
    let mut allowed = 0;
    for op in 0..=255u8 {
        let got = plan(&PassthruCmd { opcode: op, ..ok });
        if ALLOWED_OPCODES.contains(&op) {
            assert!(got.is_ok(), "{op:#x}");
            allowed += 1;
        } else {
            assert_eq!(got, Err(Refusal::NotPermitted), "{op:#x}");
        }
    }
    assert_eq!(allowed, ALLOWED_OPCODES.len());
    for op in [
        0x00, 0x01, 0x04, 0x05, 0x08, 0x0c, 0x0d, 0x10, 0x15, 0x1c, 0x7c, 0x80, 0x81, 0x84, 0xc0,
        0xff,
    ] {
        assert!(!ALLOWED_OPCODES.contains(&op), "{op:#x} must be refused");
    }
}

#[test]
fn set_features_is_checked_per_feature() {
    let sf = |fid: u32| PassthruCmd {
        opcode: SET_FEATURES,
        cdw10_15: [fid | 0x8000_0000, 0, 0, 0, 0, 0],
        ..PassthruCmd::default()
    };
    // Host Memory Buffer, Number of Queues, Interrupt Coalescing, Vector
    // Configuration, Volatile Write Cache: refused, saved (SV bit 31) or not.
    for fid in [0x0d, 0x07, 0x08, 0x09, 0x06, 0x01, 0x0b, 0xc0] {
        assert_eq!(plan(&sf(fid)), Err(Refusal::NotPermitted), "fid {fid:#x}");
    }
    for fid in SET_FEATURES_ALLOWED {
        assert!(plan(&sf(u32::from(fid))).is_ok(), "fid {fid:#x}");
    }
}

#[test]
fn prps_cover_the_buffer_exactly() {
    // The passthrough buffer through the I/O path's PRP builder, with the
    // list `run()` allocates (pages - 1 entries past two pages).
    let base = 0x1_0000_0000u64;
    let list_dma = 0x2_0000_0000u64;
    for len in 1..=MAX_DATA_LEN {
        let n = pages(len);
        assert!(n * PAGE >= u64::from(len) && (n - 1) * PAGE < u64::from(len));
        let mut list = vec![Le64::ZERO; if n > 2 { (n - 1) as usize } else { 0 }];
        let p = build([(base, len)], PAGE, &mut list, list_dma).expect("describable");
        assert_eq!(p.prp1, base);
        // Walk the pages the controller would touch: PRP1, then PRP2 or the list.
        let mut touched = vec![p.prp1];
        match n {
            1 => assert_eq!(p.prp2, 0),
            2 => touched.push(p.prp2),
            _ => {
                assert_eq!(p.prp2, list_dma);
                assert_eq!(p.list_len, list.len(), "len {len}: the whole list, no more");
                touched.extend(list.iter().map(|e| e.get()));
                // One list page always suffices.
                assert!((n - 1) * 8 <= PAGE);
            }
        }
        let want: Vec<u64> = (0..n).map(|i| base + i * PAGE).collect();
        assert_eq!(touched, want, "len {len}");
    }
    assert_eq!(pages(0), 0);
}

/// A command whose own fields ask for more than `data_len` would have the
/// controller move data past the buffer: refused, whatever the direction.
#[test]
fn transfers_longer_than_the_buffer_are_refused() {
    // Get Log Page, SMART (512 bytes): NUMDL = 127 dwords, 0's based.
    let log = |numdl: u32, numdu: u32, data_len: u32| PassthruCmd {
        opcode: 0x02,
        nsid: 0xffff_ffff,
        addr: 8,
        data_len,
        cdw10_15: [0x02 | (numdl << 16), numdu, 0, 0, 0, 0],
        ..Default::default()
    };
    assert_eq!(transfer_len(&log(127, 0, 512)), 512);
    assert!(plan(&log(127, 0, 512)).is_ok());
    assert!(plan(&log(127, 0, 4096)).is_ok());
    assert_eq!(plan(&log(128, 0, 512)), Err(Refusal::Invalid));
    // NUMDU counts from bit 16 of the dword count.
    assert_eq!(transfer_len(&log(0, 1, 65536)), (65536 + 1) * 4);
    assert_eq!(plan(&log(0, 1, MAX_DATA_LEN)), Err(Refusal::Invalid));
    // Identify always moves 4 KiB: no buffer, or a short one, is refused.
    let id = identify();
    assert_eq!(
        plan(&PassthruCmd { data_len: 0, ..id }),
        Err(Refusal::Invalid)
    );
    assert_eq!(
        plan(&PassthruCmd {
            data_len: 4095,
            ..id
        }),
        Err(Refusal::Invalid)
    );
    // Firmware Image Download (to the controller): NUMD in CDW10.
    let fw = |numd: u32, data_len: u32| PassthruCmd {
        opcode: 0x11,
        addr: 8,
        data_len,
        cdw10_15: [numd, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    assert!(plan(&fw(2047, 8192)).is_ok());
    assert_eq!(plan(&fw(2048, 8192)), Err(Refusal::Invalid));
    // Security Receive: Allocation Length in bytes (CDW11).
    let sec = |al: u32, data_len: u32| PassthruCmd {
        opcode: 0x82,
        addr: 8,
        data_len,
        cdw10_15: [0, al, 0, 0, 0, 0],
        ..Default::default()
    };
    assert!(plan(&sec(100, 100)).is_ok());
    assert_eq!(plan(&sec(101, 100)), Err(Refusal::Invalid));
    // Get LBA Status: MNDW in CDW12; ATYPE (CDW13 31:24) and RL do not
    // count (as libnvme builds it: ATYPE 0x10, RL 1).
    let lba = PassthruCmd {
        opcode: 0x86,
        addr: 8,
        data_len: 16,
        cdw10_15: [0, 0, 3, 0x1000_0001, 0, 0],
        ..Default::default()
    };
    assert!(plan(&lba).is_ok());
    assert_eq!(
        plan(&PassthruCmd {
            cdw10_15: [0, 0, 4, 0x1000_0001, 0, 0],
            ..lba
        }),
        Err(Refusal::Invalid)
    );
    // Features move at most one page: the buffer always has one.
    assert_eq!(buffer_len(0), 4096);
    assert_eq!(buffer_len(1), 4096);
    assert_eq!(buffer_len(4097), 8192);
}

/// Get Features passes for the features the specification defines, whose
/// data fits the one page the buffer always has; vendor features (data of
/// any size) are refused like vendor opcodes.
#[test]
fn get_features_refuses_vendor_features() {
    let get = |fid: u32| PassthruCmd {
        opcode: GET_FEATURES,
        addr: 8,
        data_len: 4096,
        cdw10_15: [fid, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    for fid in [0x01, 0x03, 0x07, 0x0e, 0x7f, 0x80, 0xbf] {
        assert!(plan(&get(fid)).is_ok(), "{fid:#x}");
    }
    for fid in [0xc0, 0xc1, 0xff] {
        assert_eq!(plan(&get(fid)), Err(Refusal::NotPermitted), "{fid:#x}");
    }
}
