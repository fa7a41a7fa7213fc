// SPDX-License-Identifier: GPL-2.0

//! The video nodes: "Capture" on the scaler's source pad and "Raw Capture 0"
//! on the sensor's, as in vimc: the pixel formats of the pipeline's codes,
//! the check at stream on that a node's format is its upstream pad's, and
//! the stream (`streamer.rs`).  The video device, its vb2 queue and the
//! stream thread are the layer's (`video.rs`).

use super::formats;
use super::pixfmt;
use super::streamer::{self, Path, Sources, Stream};
use super::subdev::Controls;
use super::timing::Timings;
use super::video::{Locked, PixFmt, VideoNode, VideoNodes};
use super::video_centric;
use super::video_ops::VideoOps;
use kernel::{
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

/// A capture node's data.
#[pin_data]
pub(crate) struct Capture {
    /// The capture format; changed (under the node's lock) only while the
    /// queue holds no buffers.  Its own lock because the other node's
    /// stream on reads it too (link validation runs over the whole graph).
    #[pin]
    fmt: SpinLock<PixFmt>,
    pub(crate) sources: Sources,
    pub(crate) path: Path,
    pub(crate) timings: Arc<Timings>,
    /// Video-centric mode (module parameter, read at load): `S_FMT`
    /// configures the pipeline, and both nodes share one lock.
    pub(crate) centric: bool,
}

pub(crate) type Node = VideoNode<Capture>;

/// The two nodes, registered in this order (`/dev/video0` is the RGB
/// node, as in vimc); a format set on one may change the other's in
/// video-centric mode.
pub(crate) type Nodes = VideoNodes<Capture, 2>;

/// The raw node's index in `Nodes` (the RGB node's is 0).
const RAW: usize = 1;

/// Both nodes, not yet registered.
pub(crate) fn nodes(
    sources: &Sources,
    timings: &Arc<Timings>,
    centric: bool,
) -> Result<impl PinInit<Nodes, Error>> {
    let (sources, timings) = (sources.clone(), timings.clone());
    let node = move |i| {
        let path = if i == RAW { Path::Raw } else { Path::Rgb };
        Capture::new(path, sources.clone(), timings.clone(), centric)
    };
    Nodes::new(node, centric)
}

impl PixFmt {
    /// The pixel format `fourcc`/`w`x`h` clamped as vimc's nodes accept it.
    pub(crate) fn adjust(fourcc: u32, w: u32, h: u32) -> Self {
        Self::of(pixfmt::adjust_capture(fourcc, w, h))
    }

    /// As the `path` node accepts it in video-centric mode.
    pub(crate) fn adjust_centric(path: Path, fourcc: u32, w: u32, h: u32) -> Self {
        Self::of(pixfmt::adjust_centric(path == Path::Rgb, fourcc, w, h))
    }

    fn of(
        (pixelformat, width, height, bytesperline, sizeimage): (u32, u32, u32, u32, u32),
    ) -> Self {
        Self {
            pixelformat,
            width,
            height,
            bytesperline,
            sizeimage,
        }
    }
}

impl Capture {
    fn new(
        path: Path,
        sources: Sources,
        timings: Arc<Timings>,
        centric: bool,
    ) -> impl PinInit<Self, Error> {
        // The default format is what the upstream pad's default produces
        // (the scaler's default is 1:1), so that the default pipeline streams.
        let code = match path {
            Path::Rgb => formats::DEFAULT_RGB,
            Path::Raw => formats::DEFAULT_BAYER.code,
        };
        let fmt = PixFmt::adjust(
            pixfmt::fourcc_of_code(code).unwrap_or(0),
            formats::DEFAULT_BAYER.width,
            formats::DEFAULT_BAYER.height,
        );
        try_pin_init!(Self {
            fmt <- new_spinlock!(fmt, "vimc_debayer capture format"),
            sources,
            path,
            timings,
            centric,
        }? Error)
    }

    /// Sets the format (the caller holds the node's lock).
    pub(crate) fn set(&self, f: PixFmt) {
        *self.fmt.lock() = f;
    }
}

impl VideoOps for Capture {
    type Stream = Stream;
    const DRIVER: &'static CStr = c"vimc_debayer";
    const BUS_INFO: &'static CStr = c"platform:vimc_debayer";
    const THREAD: &'static CStr = c"vimc_debayer-streamer";
    const INTERVAL: kernel::ffi::c_long = streamer::INTERVAL_JIFFIES;
    const SIZES: [u32; 4] = [
        formats::MIN_WIDTH,
        formats::MAX_WIDTH,
        formats::MIN_HEIGHT,
        formats::MAX_HEIGHT,
    ];

    fn name(&self) -> &'static CStr {
        match self.path {
            Path::Rgb => c"Capture",
            Path::Raw => c"Raw Capture 0",
        }
    }

    /// Media-controller-centric (vimc's behaviour) unless video-centric.
    fn io_mc(&self) -> bool {
        !self.centric
    }

    fn format(&self) -> PixFmt {
        *self.fmt.lock()
    }

    fn try_format(&self, fourcc: u32, w: u32, h: u32) -> PixFmt {
        if self.centric {
            PixFmt::adjust_centric(self.path, fourcc, w, h)
        } else {
            PixFmt::adjust(fourcc, w, h)
        }
    }

    fn set_format(node: &Node, held: &Locked<'_>, fourcc: u32, w: u32, h: u32) -> Result<PixFmt> {
        if node.centric {
            return video_centric::set_format(node, held, fourcc, w, h);
        }
        let new = PixFmt::adjust(fourcc, w, h);
        node.set(new);
        Ok(new)
    }

    fn enum_format(&self, index: usize, mbus: u32) -> Option<u32> {
        if self.centric {
            pixfmt::centric_fourcc(self.path == Path::Rgb, index)
        } else if mbus != 0 {
            (0..)
                .map_while(pixfmt::capture_fourcc)
                .filter(|&p| pixfmt::code_fits(mbus, p))
                .nth(index)
        } else {
            pixfmt::capture_fourcc(index)
        }
    }

    fn knows(&self, fourcc: u32) -> bool {
        pixfmt::fourcc_bpp(fourcc).is_some()
    }

    fn accepts(&self, src: &formats::Fmt) -> bool {
        let fmt = self.format();
        src.width == fmt.width
            && src.height == fmt.height
            && pixfmt::code_fits(src.code, fmt.pixelformat)
    }

    /// In video-centric mode the controls of the entities upstream (the
    /// sensor's and the debayer's; the scaler has none).
    fn inherited(&self) -> impl Iterator<Item = Controls> {
        let s = &self.sources;
        let all = [
            s.sensor.controls(),
            s.debayer.controls(),
            s.scaler.controls(),
        ];
        all.into_iter().flatten().filter(|_| self.centric)
    }

    fn start(node: &Node) -> Result<Stream> {
        Stream::start(node)
    }

    fn tick(stream: &mut Stream, node: &Node) {
        stream.frame(node);
    }
}
