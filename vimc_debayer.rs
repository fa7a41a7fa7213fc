// SPDX-License-Identifier: GPL-2.0

//! VIMC-style virtual media pipeline: Bayer sensor, pixel-map-table debayer,
//! scaler and capture.  See Documentation/vimc-debayer.rst.

use kernel::{
    debugfs::{Dir, File},
    device::{Bound, Device},
    devres,
    faux,
    prelude::*,
    sync::aref::ARef,
    uaccess::UserSliceReader, //
};

// Shared with the host tests; not every item is used by every module.
#[path = "common/dyndbg.rs"]
mod dyndbg;
#[allow(dead_code, unreachable_pub)]
#[path = "common/dyndbg_core.rs"]
mod dyndbg_core;
include!(env!("RFL_DYNDBG_FUNCS"));

use dyndbg::{ddbg, dev_ddbg};

/// Pipeline state owned by the faux device; released by devres at unbind.
#[pin_data(PinnedDrop)]
struct Pipeline {
    dev: ARef<Device>,
    _debugfs: Dir,
    /// Test-only: writing to it raises a WARN at a known line, so that
    /// tools/decode-oops is tested on a real trace.
    #[pin]
    _inject_warn: File<()>,
}

impl Pipeline {
    fn new(dev: &Device<Bound>) -> impl PinInit<Self, Error> + '_ {
        let dir = Dir::new(c"vimc_debayer");
        try_pin_init!(Self {
            _inject_warn <- dir.write_callback_file(c"inject_warn", (), &inject_warn),
            _debugfs: dir,
            dev: dev.into(),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for Pipeline {
    fn drop(self: Pin<&mut Self>) {
        dev_info!(self.dev, "pipeline released\n");
    }
}

fn inject_warn(_: &(), input: &mut UserSliceReader) -> Result {
    ddbg!("inject_warn written\n");
    input.skip(input.len())?;
    raise_test_warning();
    Ok(())
}

// Out of line, and with a condition the compiler cannot fold, so that the
// WARN's trap instruction has a line-table row of its own.
#[inline(never)]
fn raise_test_warning() {
    kernel::warn_on!(core::hint::black_box(true)); // decode-oops test target
}

struct VimcDebayer {
    // Dropping the registration unbinds the faux device, which releases the
    // device-managed `Pipeline`.
    _reg: faux::Registration,
}

impl kernel::Module for VimcDebayer {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        ddbg!("registering the faux device\n");
        let reg = faux::Registration::new(c"vimc_debayer", None)?;
        let fdev: &faux::Device<Bound> = reg.as_ref();
        let dev: &Device<Bound> = fdev.as_ref();
        dev_ddbg!(dev, "allocating the pipeline state\n");
        devres::register(dev, Pipeline::new(dev), GFP_KERNEL)?;
        dev_info!(dev, "pipeline ready\n");
        Ok(Self { _reg: reg })
    }
}

module! {
    type: VimcDebayer,
    name: "vimc_debayer",
    authors: ["rfl-bench developers"],
    description: "VIMC-style media pipeline with a pixel-map-table debayer and a Bayer-aware scaler",
    license: "GPL",
}
