// SPDX-License-Identifier: GPL-2.0

//! VIMC-style virtual media pipeline: Bayer sensor, pixel-map-table debayer,
//! scaler and capture.  See Documentation/vimc-debayer.rst.

use kernel::{
    debugfs::{Dir, File},
    device::{Bound, Device},
    devres,
    faux,
    prelude::*,
    sync::{aref::ARef, Arc, UniqueArc},
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

// The pipeline's pure maths: pixel-map table and format clamping, debayer,
// scaler; host-tested in tests/host (which use more of them than the
// module does, hence dead_code).
#[path = "vimc_debayer/capture.rs"]
mod capture;
#[path = "vimc_debayer/debayer.rs"]
mod debayer;
#[allow(dead_code, unreachable_pub)]
#[path = "vimc_debayer/debayer_core.rs"]
mod debayer_core;
#[allow(dead_code, unreachable_pub)]
#[path = "vimc_debayer/formats.rs"]
mod formats;
#[path = "vimc_debayer/kthread.rs"]
mod kthread;
#[path = "vimc_debayer/media.rs"]
mod media;
#[path = "vimc_debayer/pad_ops.rs"]
mod pad_ops;
#[allow(dead_code, unreachable_pub)]
#[path = "vimc_debayer/pixfmt.rs"]
mod pixfmt;
#[path = "vimc_debayer/scaler.rs"]
mod scaler;
#[allow(dead_code, unreachable_pub)]
#[path = "vimc_debayer/scaler_core.rs"]
mod scaler_core;
#[path = "vimc_debayer/sensor.rs"]
mod sensor;
#[path = "vimc_debayer/streamer.rs"]
mod streamer;
#[path = "vimc_debayer/subdev.rs"]
mod subdev;
#[allow(dead_code, unreachable_pub)]
#[path = "vimc_debayer/timing.rs"]
mod timing;
#[path = "vimc_debayer/tpg.rs"]
mod tpg;
#[path = "vimc_debayer/video.rs"]
mod video;
#[path = "vimc_debayer/video_centric.rs"]
mod video_centric;
#[path = "vimc_debayer/video_ops.rs"]
mod video_ops;

use subdev::Subdev;
use timing::Timings;

/// Pipeline state owned by the faux device; released by devres at unbind.
#[pin_data(PinnedDrop)]
struct Pipeline {
    dev: ARef<Device>,
    _media: media::Registration,
    _debugfs: Dir,
    /// Per-entity frame processing times; write anything to zero them.
    #[pin]
    _timing: File<Arc<Timings>>,
    /// Test-only: writing to it raises a WARN at a known line, so that
    /// tools/decode-oops is tested on a real trace.
    #[pin]
    _inject_warn: File<()>,
}

impl Pipeline {
    fn new<'a>(
        dev: &'a Device<Bound>,
        module: &'static ThisModule,
    ) -> Result<impl PinInit<Self, Error> + 'a> {
        let timings = Arc::new(Timings::new(), GFP_KERNEL)?;
        let media = media::Registration::new(dev, c"vimc_debayer", module, |media| {
            Graph::new(media, module, &timings)
        })?;
        dev_ddbg!(dev, "media graph registered\n");
        let dir = Dir::new(c"vimc_debayer");
        Ok(try_pin_init!(Self {
            _media: media,
            _timing <- dir.read_write_callback_file(c"timing", timings, &timing_show, &timing_reset),
            _inject_warn <- dir.write_callback_file(c"inject_warn", (), &inject_warn),
            _debugfs: dir,
            dev: dev.into(),
        }))
    }
}

/// The media graph: Sensor A -> Debayer A -> Scaler -> Capture, and
/// Sensor A -> Raw Capture 0, links enabled; owned by the media device.
///
/// Each entity is pinned in its allocation before the C side learns its
/// address.  Fields drop in declaration order: the capture nodes first
/// (their references to the sub-devices with them), then the sub-devices.
struct Graph {
    /// Dropped first: the nodes hold the entities too (`Sources`).
    nodes: Pin<KBox<capture::Nodes>>,
    sources: streamer::Sources,
}

/// A registered sub-device, shared with the capture nodes.
fn subdev<T: pad_ops::PadOps<N>, const N: usize>(
    data: impl PinInit<T>,
    media: &media::MediaDevice,
    module: &'static ThisModule,
    key: Pin<&'static kernel::sync::LockClassKey>,
) -> Result<Arc<Subdev<T, N>>> {
    let sd = UniqueArc::pin_init(Subdev::new(data), GFP_KERNEL)?;
    sd.as_ref().register(media, module, key)?;
    Ok(sd.into())
}

impl Graph {
    /// The sub-devices, registered with `media`'s V4L2 device (no device
    /// node yet), and the capture nodes, not registered.
    fn new(
        media: &media::MediaDevice,
        module: &'static ThisModule,
        timings: &Arc<Timings>,
    ) -> Result<KBox<Self>> {
        let streams = streamer::Streams::new()?;
        let sensor = sensor::Sensor::new(streams.clone());
        let debayer = debayer::Debayer::new(streams.clone());
        let scaler = scaler::Scaler::new(streams);
        let sources = streamer::Sources {
            sensor: subdev(sensor, media, module, kernel::static_lock_class!())?,
            debayer: subdev(debayer, media, module, kernel::static_lock_class!())?,
            scaler: subdev(scaler, media, module, kernel::static_lock_class!())?,
        };
        let centric = *module_parameters::video_centric.value_ref();
        let nodes = KBox::pin_init(capture::nodes(&sources, timings, centric)?, GFP_KERNEL)?;
        Ok(KBox::new(Self { nodes, sources }, GFP_KERNEL)?)
    }
}

impl media::MediaGraph for Graph {
    fn register(
        self: Pin<&Self>,
        media: &media::MediaDevice,
        module: &'static ThisModule,
    ) -> Result {
        self.nodes.as_ref().register(media, module)?;
        let [rgb, raw] = self.nodes.nodes();
        let (sensor, debayer, scaler) = self.sources.get();
        let links: [(&dyn subdev::Entity, u32, &dyn subdev::Entity, u32); 4] = [
            (sensor, sensor::SRC, debayer, debayer::SINK),
            (debayer, debayer::SRC, scaler, scaler::SINK),
            (scaler, scaler::SRC, rgb, 0),
            (sensor, sensor::SRC, raw, 0),
        ];
        for (src, src_pad, sink, sink_pad) in links {
            media.link(src, src_pad as u16, sink, sink_pad as u16)?;
        }
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Pipeline {
    fn drop(self: Pin<&mut Self>) {
        dev_info!(self.dev, "pipeline released\n");
    }
}

fn timing_show(t: &Arc<Timings>, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    core::fmt::Display::fmt(&**t, f)
}

fn timing_reset(t: &Arc<Timings>, input: &mut UserSliceReader) -> Result {
    input.skip(input.len())?;
    t.reset();
    Ok(())
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
    fn init(module: &'static ThisModule) -> Result<Self> {
        ddbg!("registering the faux device\n");
        let reg = faux::Registration::new(c"vimc_debayer", None)?;
        let fdev: &faux::Device<Bound> = reg.as_ref();
        let dev: &Device<Bound> = fdev.as_ref();
        dev_ddbg!(dev, "allocating the pipeline state\n");
        devres::register(dev, Pipeline::new(dev, module)?, GFP_KERNEL)?;
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
    params: {
        video_centric: bool {
            default: false,
            description: "Capture nodes configure the pipeline: S_FMT sets sensor, debayer and scaler (no media-ctl step needed)",
        },
    },
}
