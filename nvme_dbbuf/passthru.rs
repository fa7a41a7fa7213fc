// SPDX-License-Identifier: GPL-2.0

//! `/dev/rnvme<C>`: the controller character device with the admin
//! passthrough ioctls nvme-cli uses (`NVME_IOCTL_ADMIN_CMD`,
//! `NVME_IOCTL_ADMIN64_CMD`), so `nvme id-ctrl /dev/rnvme0` works.
//!
//! The node can outlive the binding (an open file across unbind), so an
//! open file holds a [`Link`], not the controller: unbind empties the link,
//! waiting for a running ioctl, and later ioctls fail with `ENODEV`.

use kernel::{
    bindings,
    dma::Coherent,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
    uaccess::{UserPtr, UserSlice},
};

use crate::cmd::Sqe;
use crate::ctrl::ADMIN_TIMEOUT_MS;
use crate::passthru_cmd::{self as abi, Dir, PassthruCmd, Refusal};
use crate::prp;
use crate::NvmeDev;

/// A controller pointer an open file may use while it is set.
///
/// # Invariants
///
/// When `Some`, points to a bound controller [`NvmeDev`], whose field the
/// character device is; it is cleared (under the mutex) before the
/// controller is freed.  The one lifetime erasure left: an open file's data
/// must be `'static` (`ForeignOwnable for Arc<T: 'static>`), and can outlive
/// the binding; this mutex is what revokes it.
struct DevPtr(Option<core::ptr::NonNull<NvmeDev<'static>>>);

// SAFETY: `NvmeDev` is only used through `&`, and all of it reachable that
// way is `Sync` (see `debugfs::Control`).
unsafe impl Send for DevPtr {}

/// Shared by the character device and every open file.
#[pin_data]
pub(crate) struct Link {
    #[pin]
    dev: Mutex<DevPtr>,
}

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
#[pin_data(PinnedDrop)]
pub(crate) struct CharDev {
    link: Arc<Link>,
    #[pin]
    reg: MiscDeviceRegistration<Passthru>,
}

impl CharDev {
    /// Registers `/dev/rnvme<instance>` for `dev`.
    ///
    /// # Safety
    ///
    /// `dev` must stay at its address and alive until the returned value is
    /// dropped (open files reach it through a pointer the drop clears): it
    /// is to be a field of `dev`.
    pub(crate) unsafe fn new(dev: &NvmeDev<'_>) -> Result<Pin<KBox<Self>>> {
        let ptr = core::ptr::NonNull::from(dev).cast();
        let link = Arc::pin_init(
            pin_init!(Link {
                dev <- new_mutex!(DevPtr(Some(ptr)), "nvme_dbbuf:passthru"),
            }),
            GFP_KERNEL,
        )?;
        let opts = MiscDeviceOptions {
            name: name(dev.instance())?,
        };
        // `link` is initialised before `reg`: an open racing the
        // registration finds it.
        KBox::try_pin_init(
            try_pin_init!(Self {
                link,
                reg <- MiscDeviceRegistration::register(opts),
            }),
            GFP_KERNEL,
        )
    }
}

impl CharDev {
    /// Open files let go of the controller: waits for a running ioctl,
    /// later ones get `ENODEV`.
    pub(crate) fn revoke(&self) {
        self.link.dev.lock().0 = None;
    }
}

#[pinned_drop]
impl PinnedDrop for CharDev {
    fn drop(self: Pin<&mut Self>) {
        // Waits for a running ioctl; the registration goes next.
        self.link.dev.lock().0 = None;
    }
}

/// An open `/dev/rnvme<C>`.
pub(crate) struct Passthru;

#[vtable]
impl MiscDevice for Passthru {
    type Ptr = Arc<Link>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Link>> {
        let reg = core::ptr::from_ref(misc).cast_mut();
        // SAFETY: every `MiscDeviceRegistration<Passthru>` is the `reg`
        // field of a `CharDev`, alive while its device can be opened.
        let cd = unsafe { &*kernel::container_of!(reg, CharDev, reg) };
        Ok(cd.link.clone())
    }

    fn ioctl(link: ArcBorrow<'_, Link>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let (size, result_at) = match cmd {
            abi::NVME_IOCTL_ADMIN_CMD => (abi::CMD_SIZE, abi::RESULT_OFFSET),
            abi::NVME_IOCTL_ADMIN64_CMD => (abi::CMD64_SIZE, abi::RESULT64_OFFSET),
            _ => return Err(ENOTTY),
        };
        // Like the in-tree driver: raw admin commands are for the admin.
        // SAFETY: plain capability check of the calling task.
        if !unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) } {
            return Err(EACCES);
        }
        let mut raw = [0u8; abi::CMD64_SIZE];
        let raw = raw.get_mut(..size).ok_or(EINVAL)?;
        UserSlice::new(UserPtr::from_addr(arg), size)
            .reader()
            .read_slice(raw)?;
        let c = PassthruCmd::decode(raw).ok_or(EINVAL)?;
        let guard = link.dev.lock();
        let Some(dev) = guard.0 else {
            return Err(ENODEV);
        };
        // SAFETY: set, so the controller is alive until we unlock (`DevPtr`
        // invariant).
        let dev = unsafe { dev.as_ref() };
        let (status, dw0) = run(dev, &c)?;
        drop(guard);
        let at = UserPtr::from_addr(arg).wrapping_byte_add(result_at);
        let mut w = UserSlice::new(at, size - result_at).writer();
        if size == abi::CMD64_SIZE {
            w.write(&u64::from(dw0))?;
        } else {
            w.write(&dw0)?;
        }
        // Like the in-tree driver: the NVMe status (without the phase bit)
        // as a positive return value, 0 on success.
        Ok(isize::from(status as i16 & 0x7fff))
    }
}

/// Runs one accepted command; returns its status and dword 0.
fn run(dev: &NvmeDev<'_>, c: &PassthruCmd) -> Result<(u16, u32)> {
    let plan = abi::plan(c).map_err(|r| match r {
        Refusal::Invalid => EINVAL,
        Refusal::NotPermitted => EPERM,
    })?;
    let pdev = dev.ctrl.pdev.as_ref();
    let len = plan.len as usize;
    let pages = abi::pages(plan.len) as usize;
    let user = || UserSlice::new(UserPtr::from_addr(c.addr as usize), len);
    // At least one page: PRP1 names it even without data, so a command
    // that transfers anyway (Identify with no buffer) writes there, not to
    // bus address 0.
    let buf = Coherent::<u8>::zeroed_slice(pdev, pages.max(1) * abi::PAGE as usize, GFP_KERNEL)?;
    // Past two pages PRP2 points to a list of the pages after the first.
    let list = if pages > 2 {
        Some(Coherent::<u64>::zeroed_slice(pdev, pages - 1, GFP_KERNEL)?)
    } else {
        None
    };
    let base = buf.dma_address();
    if plan.dir != Dir::None {
        // The data to send, or, for a read, what the caller's buffer holds:
        // a bad pointer faults before the command runs, as with the in-tree
        // driver (which maps the user pages first), and the buffer is
        // written back only after the command succeeded.
        // SAFETY: the controller has not been given `buf` yet.
        let dst = unsafe { buf.as_mut() }.get_mut(..len).ok_or(EINVAL)?;
        user().reader().read_slice(dst)?;
    }
    // The PRP builder of the I/O path, for one contiguous segment.
    let (prp1, prp2) = if plan.len == 0 {
        (base, 0)
    } else {
        let (entries, list_dma): (&mut [u64], u64) = match &list {
            // SAFETY: not given to the controller yet.
            Some(l) => (unsafe { l.as_mut() }, l.dma_address()),
            None => (&mut [], 0),
        };
        let p = prp::build([(base, plan.len)], abi::PAGE, entries, list_dma).map_err(|_| EINVAL)?;
        (p.prp1, p.prp2)
    };
    let mut sqe = Sqe::new(c.opcode).with_nsid(c.nsid).with_prps(prp1, prp2);
    sqe.cdw2 = [c.cdw2.to_le(), c.cdw3.to_le()];
    for (n, v) in (10..).zip(c.cdw10_15) {
        sqe = sqe.with_cdw(n, v);
    }
    // At most the driver's own admin timeout.  The command holds the reset
    // lock; an I/O timeout that finds it held interrupts the command, whose
    // reset below then takes the timed-out request back.
    let timeout_ms = (c.timeout_ms != 0).then_some(i64::from(c.timeout_ms).min(ADMIN_TIMEOUT_MS));
    // No reset may disable the controller under the command.
    let r = {
        let _reset = dev.reset_lock.lock();
        if !dev.state.get().takes_commands() {
            return Err(ENODEV);
        }
        match dev.ctrl.admin_cmd_timeout(sqe, timeout_ms, true) {
            Ok(r) => r,
            Err(e) => {
                // A command that did not complete (or was interrupted:
                // `EINTR`, as in-tree for a cancelled passthrough) left the
                // controller stopped (`admin_cmd`): bring it back before
                // anyone else waits on it.  `buf` is freed only after that
                // stop.
                dev.reset_or_fail();
                return Err(e);
            }
        }
    };
    if plan.dir == Dir::FromDevice && r.status.is_success() {
        user().writer().write_dma(&buf, 0, len)?;
    }
    Ok((r.status.0, r.dw0))
}
