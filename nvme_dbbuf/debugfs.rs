// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/nvme_dbbuf/rnvme<C>/`: the doorbell mode switch, a
//! reset trigger, and per-queue doorbell statistics.
//!
//! - `dbbuf`: read `on` or `off`; write `0`/`1` (`off`/`on`) to quiesce,
//!   reset the controller and come back in that mode.
//! - `reset`: write anything for a controller reset in the same mode.
//! - `stats`: read one line per I/O queue (the last column counts the
//!   completions polled, on a poll queue); write anything to zero them.
//! - `summary`: read one line for the controller.
//! - `memory`: read the I/O memory: requests and the bytes of driver data
//!   each carries, then per pool (PRP lists, scatterlists, discard ranges)
//!   blocks taken and given back in total, and allocations that failed.
//! - `inject` (with `CONFIG_FAULT_INJECTION_DEBUG_FS`): test hook; write `bad_cid` and the next completion on each
//!   I/O queue is handled as if it carried a stale command id (the driver
//!   drops it and resets the controller, which requeues the command); write
//!   `dup_cid` and it is handled twice, as if posted twice (the second is
//!   stale: dropped, and the controller reset); `lost_irq` and the next
//!   interrupt of each I/O queue is ignored (the timeout handler reaps it);
//!   `none` disarms those.  `stuck_rdy`: the next controller disable
//!   reports CSTS.RDY stuck at 1; `lost_admin`: the next admin completion
//!   is lost.

use core::fmt;

use kernel::{
    debugfs::{Dir, Scope},
    prelude::*,
    str::CString,
    sync::Arc,
    uaccess::UserSliceReader,
};

use crate::fault::{self, Inject};
use crate::lease::Lease;
use crate::nvme_dev::DevLt;
use crate::NvmeDev;

kernel::sync::global_lock! {
    // SAFETY: initialised by module init, before the driver is registered.
    /// The module's `nvme_dbbuf` directory, from module init to module exit.
    /// A controller's directory holds its own reference to it.
    pub(crate) unsafe(uninit) static ROOT: Mutex<Option<Dir>> = None;
}

/// The module's hold on [`ROOT`]: made with it, and dropping it drops the
/// root (directories of controllers still bound keep it until they go).
pub(crate) struct RootDir(());

impl RootDir {
    pub(crate) fn new() -> Self {
        *ROOT.lock() = Some(Dir::new(c"nvme_dbbuf"));
        Self(())
    }
}

impl Drop for RootDir {
    fn drop(&mut self) {
        drop(ROOT.lock().take());
    }
}

/// What each file of a controller's directory reaches: the controller's
/// lease.  A callback finding it revoked fails with `ENODEV`.
pub(crate) type Control = Arc<Lease<DevLt>>;

/// Creates the directory of controller `instance`, whose files reach the
/// controller through `lease`; `None` without debugfs.
pub(crate) fn create(instance: u32, lease: Control) -> Result<Option<Pin<KBox<Scope<Control>>>>> {
    let Some(root) = ROOT.lock().clone() else {
        return Ok(None);
    };
    let name = CString::try_from_fmt(fmt!("rnvme{}", instance))?;
    let scope = KBox::pin_init(
        root.scope(lease, &name, |ctl, dir| {
            dir.read_write_callback_file(c"dbbuf", ctl, &dbbuf_show, &dbbuf_store);
            dir.write_only_callback_file(c"reset", ctl, &reset_store);
            dir.read_write_callback_file(c"stats", ctl, &stats_show, &stats_clear);
            dir.read_callback_file(c"summary", ctl, &summary_show);
            dir.read_callback_file(c"memory", ctl, &memory_show);
            if fault::HOOKS {
                dir.write_only_callback_file(c"inject", ctl, &inject_store);
            }
        }),
        GFP_KERNEL,
    )?;
    Ok(Some(scope))
}

/// Reads a short user write as trimmed bytes.
fn read_word<'a>(r: &mut UserSliceReader, buf: &'a mut [u8; 16]) -> Result<&'a [u8]> {
    let n = r.len();
    let dst = buf.get_mut(..n).ok_or(EINVAL)?;
    r.read_slice(dst)?;
    Ok(dst.trim_ascii())
}

/// A show callback finding the controller gone prints nothing.
fn show(
    ctl: &Control,
    f: &mut fmt::Formatter<'_>,
    g: impl for<'a> FnOnce(&NvmeDev<'a>, &mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    ctl.with(|dev| g(dev, f)).unwrap_or(Ok(()))
}

fn dbbuf_show(ctl: &Control, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    show(ctl, f, |dev, f| {
        writeln!(f, "{}", if dev.dbbuf_on() { "on" } else { "off" })
    })
}

fn dbbuf_store(ctl: &Control, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let on = match read_word(r, &mut buf)? {
        b"1" | b"on" | b"y" => true,
        b"0" | b"off" | b"n" => false,
        _ => return Err(EINVAL),
    };
    ctl.with(|dev| dev.reset(Some(on)))?
}

fn reset_store(ctl: &Control, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    read_word(r, &mut buf)?;
    ctl.with(|dev| dev.reset(None))?
}

fn inject_store(ctl: &Control, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let word = read_word(r, &mut buf)?;
    ctl.with(|dev| {
        match word {
            b"bad_cid" => dev.inject(Inject::BadCid),
            b"dup_cid" => dev.inject(Inject::DupCid),
            b"lost_irq" => dev.inject(Inject::LostIrq),
            b"none" => dev.inject(Inject::None),
            b"stuck_rdy" => dev.inject_stuck_rdy(),
            b"lost_admin" => dev.inject_lost_admin(),
            _ => return Err(EINVAL),
        }
        Ok(())
    })?
}

fn stats_show(ctl: &Control, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    show(ctl, f, |dev, f| {
        writeln!(
            f,
            "qid submitted reaped sq_mmio cq_mmio sq_shadow_only cq_shadow_only polled"
        )?;
        for q in dev.io_queues() {
            let [a, b, c, d, e, g, p] = q.stats.snapshot();
            writeln!(f, "{} {} {} {} {} {} {} {}", q.qid, a, b, c, d, e, g, p)?;
        }
        Ok(())
    })
}

fn stats_clear(ctl: &Control, r: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    read_word(r, &mut buf)?;
    ctl.with(|dev| {
        for q in dev.io_queues() {
            q.stats.clear();
        }
    })
}

fn summary_show(ctl: &Control, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    show(ctl, f, summary)
}

fn summary(dev: &NvmeDev<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut t = [0u64; 7];
    let mut n = 0;
    for q in dev.io_queues() {
        for (sum, v) in t.iter_mut().zip(q.stats.snapshot()) {
            *sum += v;
        }
        n += 1;
    }
    let [sub, reaped, sq_mmio, cq_mmio, sq_sh, cq_sh, _] = t;
    // MMIO doorbell writes per submitted command, in 1/10000.
    let per = (sq_mmio + cq_mmio)
        .saturating_mul(10_000)
        .checked_div(sub)
        .unwrap_or(0);
    writeln!(
        f,
        "rnvme{}: dbbuf {}, {} I/O queues, {} submitted, {} reaped, MMIO doorbells sq {} cq {}, shadow-only sq {} cq {}, MMIO doorbells per command {}.{:04}, resets {}",
        dev.instance(),
        if dev.dbbuf_on() { "on" } else { "off" },
        n,
        sub,
        reaped,
        sq_mmio,
        cq_mmio,
        sq_sh,
        cq_sh,
        per / 10_000,
        per % 10_000,
        dev.resets(),
    )
}

fn memory_show(ctl: &Control, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    show(ctl, f, |dev, f| {
        let requests: u64 = dev.io_queues().map(|q| u64::from(q.depth) - 1).sum();
        writeln!(
            f,
            "requests {} pdu_bytes {}",
            requests,
            crate::request::PDU_BYTES
        )?;
        if let Some(s) = dev.shared.as_ref() {
            let pools = [
                ("prp_lists", &s.lists.stats),
                ("sg_lists", &s.sgs.stats),
                ("dsm_ranges", &s.ranges.stats),
            ];
            for (name, st) in pools {
                let (taken, back, failed) = st.snapshot();
                writeln!(f, "{name} taken {taken} given_back {back} failed {failed}")?;
            }
        }
        Ok(())
    })
}
