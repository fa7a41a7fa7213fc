// SPDX-License-Identifier: GPL-2.0

//! `/dev/rnvme<C>`: the controller character device with the admin
//! passthrough ioctls nvme-cli uses (`NVME_IOCTL_ADMIN_CMD`,
//! `NVME_IOCTL_ADMIN64_CMD`), so `nvme id-ctrl /dev/rnvme0` works.
//!
//! The node can outlive the binding (an open file across unbind), so an
//! open file holds a [`Link`], the controller's lease, not the controller:
//! unbind revokes it, waiting for a running ioctl, and later ioctls fail
//! with `ENODEV`.

use kernel::{
    device::{Bound, Device},
    dma::{Coherent, CoherentBox},
    fs::File,
    io::Io,
    miscdevice::MiscDeviceOptions,
    prelude::*,
    sync::{Arc, ArcBorrow},
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

use crate::cmd::{Sqe, Status};
use crate::ctrl::ADMIN_TIMEOUT_MS;
use crate::le::Le64;
use crate::lease::Lease;
use crate::misc::{self, MiscOps};
use crate::nvme_dev::DevLt;
use crate::passthru_cmd::{self as abi, Dir, PassthruCmd, Plan, Refusal};
use crate::prp;
use crate::NvmeDev;

/// The controller, lent to the character device and every open file.
type Link = Lease<DevLt>;

/// Names for `misc_register`, which keeps the pointer: one per instance.
const NAMES: [[u8; 9]; 64] = {
    let mut t = [[0u8; 9]; 64];
    let mut i = 0;
    while i < 64 {
        let n = b"rnvme";
        let mut j = 0;
        while j < 5 {
            t[i][j] = n[j];
            j += 1;
        }
        if i < 10 {
            t[i][5] = b'0' + i as u8;
        } else {
            t[i][5] = b'0' + (i / 10) as u8;
            t[i][6] = b'0' + (i % 10) as u8;
        }
        i += 1;
    }
    t
};
static NAME_TABLE: [[u8; 9]; 64] = NAMES;

fn name(instance: u32) -> Result<&'static CStr> {
    let raw = NAME_TABLE.get(instance as usize).ok_or(EINVAL)?;
    let len = raw.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    CStr::from_bytes_with_nul(raw.get(..=len).ok_or(EINVAL)?).map_err(|_| EINVAL)
}

/// The registered character device of one controller.
pub(crate) type CharDev = misc::Registration<Link>;

/// Registers `/dev/rnvme<instance>`, whose open files reach the controller
/// through `link`.
pub(crate) fn register(instance: u32, link: Arc<Link>) -> Result<Pin<KBox<CharDev>>> {
    let opts = MiscDeviceOptions {
        name: name(instance)?,
    };
    KBox::try_pin_init(CharDev::register(opts, link), GFP_KERNEL)
}

impl MiscOps for Link {
    fn ioctl(link: ArcBorrow<'_, Link>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let (size, result_at) = match cmd {
            abi::NVME_IOCTL_ADMIN_CMD => (abi::CMD_SIZE, abi::RESULT_OFFSET),
            abi::NVME_IOCTL_ADMIN64_CMD => (abi::CMD64_SIZE, abi::RESULT64_OFFSET),
            _ => return Err(ENOTTY),
        };
        // Like the in-tree driver: raw admin commands are for the admin.
        if !misc::caller_is_admin() {
            return Err(EACCES);
        }
        let mut raw = [0u8; abi::CMD64_SIZE];
        let raw = raw.get_mut(..size).ok_or(EINVAL)?;
        UserSlice::new(UserPtr::from_addr(arg), size)
            .reader()
            .read_slice(raw)?;
        let c = PassthruCmd::decode(raw).ok_or(EINVAL)?;
        let plan = abi::plan(&c).map_err(|r| match r {
            Refusal::Invalid => EINVAL,
            Refusal::NotPermitted => EPERM,
        })?;
        let len = plan.len as usize;
        let user = || UserSlice::new(UserPtr::from_addr(c.addr as usize), len);
        // The data goes through a kernel buffer, copied from the caller
        // before the controller is borrowed and back after: a user copy
        // (which can block on a page fault for as long as userspace
        // likes) never holds up unbind.  It is at least one page: PRP1 names
        // it even without data, so a command that transfers anyway writes
        // there, not to bus address 0.
        let mut data = KVVec::from_elem(0u8, abi::buffer_len(plan.len), GFP_KERNEL)?;
        if plan.dir != Dir::None {
            // The data to send, or, for a read, what the caller's buffer
            // holds: a bad pointer faults before the command runs, as with
            // the in-tree driver (which maps the user pages first).
            user()
                .reader()
                .read_slice(data.get_mut(..len).ok_or(EINVAL)?)?;
        }
        let (status, dw0) = link.with(|dev| run(dev, &c, plan, &mut data))??;
        if plan.dir == Dir::FromDevice && status.is_success() {
            // Written back only after the command succeeded.
            user()
                .writer()
                .write_slice(data.get(..len).ok_or(EINVAL)?)?;
        }
        let at = UserPtr::from_addr(arg).wrapping_byte_add(result_at);
        let mut w = UserSlice::new(at, size - result_at).writer();
        if size == abi::CMD64_SIZE {
            w.write(&u64::from(dw0))?;
        } else {
            w.write(&dw0)?;
        }
        // Like the in-tree driver: the NVMe status (without the phase bit)
        // as a positive return value, 0 on success.
        Ok(isize::from(status.0 as i16 & 0x7fff))
    }
}

/// A coherent copy of `data`.  Not `CoherentBox::from_slice`: its
/// `copy_from_slice` panic path (unreachable, the lengths are equal) is one
/// objtool misreads as falling through to the next function.
fn filled<T: Copy + AsBytes + FromBytes>(
    pdev: &Device<Bound>,
    data: &[T],
) -> Result<Coherent<[T]>> {
    let mut b = CoherentBox::<[T]>::zeroed_slice(pdev, data.len(), GFP_KERNEL)?;
    for (d, s) in b.iter_mut().zip(data) {
        *d = *s;
    }
    Ok(b.into())
}

/// Runs one accepted command on `data` (the buffer given to the
/// controller, read back into `data` after success); returns its status
/// and dword 0.
fn run(dev: &NvmeDev<'_>, c: &PassthruCmd, plan: Plan, data: &mut [u8]) -> Result<(Status, u32)> {
    let pdev = dev.ctrl.pdev.as_ref();
    let buf: Coherent<[u8]> = filled(pdev, data)?;
    // The PRP builder of the I/O path, for one contiguous segment; past two
    // pages PRP2 points to a list of the pages after the first.
    let mut entries = KVec::from_elem(Le64::ZERO, abi::pages(plan.len) as usize, GFP_KERNEL)?;
    let mut list: Option<Coherent<[Le64]>> = None;
    let (prp1, prp2) = if plan.len == 0 {
        (buf.dma_address(), 0)
    } else {
        let p = prp::build([(buf.dma_address(), plan.len)], abi::PAGE, &mut entries, 0)
            .map_err(|_| EINVAL)?;
        if p.list_len == 0 {
            (p.prp1, p.prp2)
        } else {
            let used = entries.get(..p.list_len).ok_or(EINVAL)?;
            let l = list.insert(filled(pdev, used)?);
            (p.prp1, l.dma_address())
        }
    };
    let sqe = Sqe::new(c.opcode)
        .with_nsid(c.nsid)
        .with_prps(prp1, prp2)
        .with_cdw2_3(c.cdw2, c.cdw3)
        .with_cdw10_15(c.cdw10_15);
    // At most the driver's own admin timeout.  The command holds the reset
    // lock; an I/O timeout that finds it held interrupts the command, whose
    // reset below then takes the timed-out request back.
    let timeout_ms = (c.timeout_ms != 0).then_some(i64::from(c.timeout_ms).min(ADMIN_TIMEOUT_MS));
    let _under_way = dev.ctrl.passthrough();
    // No reset may disable the controller under the command.
    let _reset = dev.reset_lock.lock();
    dev.ctrl.passthrough_locked();
    if !dev.state.get().takes_commands() {
        return Err(ENODEV);
    }
    let r = dev.ctrl.admin_cmd_timeout(sqe, timeout_ms, true);
    // A command that did not complete (or was interrupted: `EINTR`, as
    // in-tree for a cancelled passthrough) left the controller stopped
    // (`admin_cmd`): bring it back before anyone else waits on it.  `buf`
    // is freed only after that stop.  An I/O timeout that came after the
    // command stopped waiting wants the same.
    if r.is_err() || dev.ctrl.take_recovery_wanted() {
        dev.reset_or_fail();
    }
    let r = r?;
    // The command completed: the controller is done with `buf` and `list`,
    // freed here while the controller is still lent to us.
    if plan.dir == Dir::FromDevice && r.status.is_success() {
        (&buf).copy_to_slice(data);
    }
    drop(list);
    Ok((r.status, r.dw0))
}
