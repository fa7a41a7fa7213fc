// SPDX-License-Identifier: GPL-2.0

//! The streaming thread: at the frame interval, the sensor's test pattern
//! (drawn again only when the sensor's controls change, or every frame
//! for noise) goes
//! through the debayer and the scaler into the next queued capture buffer
//! (or, for the raw capture node, straight into it), like vimc's streamer.
//! The pipeline's formats are read once at stream on (they cannot change
//! while streaming); the window size is read per frame.  Each stage's time
//! is recorded in `Timings` (debugfs `timing`).

use super::capture::{Capture, Node};
use super::debayer::{self, Debayer};
use super::debayer_core;
use super::formats::{self, BayerMap, Fmt, RgbMap};
use super::pixfmt::{self, Rgb32};
use super::scaler::Scaler;
use super::scaler_core;
use super::sensor::{self, Sensor};
use super::subdev::Subdev;
use super::timing::{FrameTime, Timings};
use super::tpg;
use super::video_ops::VideoOps;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
};

/// Frame interval: 30 frames per second, vimc's default.
pub(crate) const INTERVAL_JIFFIES: kernel::ffi::c_long = (bindings::HZ / 30) as kernel::ffi::c_long;

/// The entities upstream of the capture nodes, shared with the graph:
/// each goes (unregistered) when its last holder drops it, which is the
/// graph, after the capture nodes.
#[derive(Clone)]
pub(crate) struct Sources {
    pub(crate) sensor: Arc<Subdev<Sensor, 1>>,
    pub(crate) debayer: Arc<Subdev<Debayer, 2>>,
    pub(crate) scaler: Arc<Subdev<Scaler, 2>>,
}

impl Sources {
    /// The entities.
    pub(crate) fn get(&self) -> (&Subdev<Sensor, 1>, &Subdev<Debayer, 2>, &Subdev<Scaler, 2>) {
        (&self.sensor, &self.debayer, &self.scaler)
    }
}

/// Which node a stream feeds, and so which entities it goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Sensor -> raw capture node: Bayer frames as the sensor makes them.
    Raw,
    /// Sensor -> debayer -> scaler -> capture node.
    Rgb,
}

/// The debayer and scaler stages of an RGB stream, with their buffers.
struct RgbStages {
    source: &'static RgbMap,
    scale: scaler_core::Scaler,
    rgb: KVVec<u8>,
    /// For the 32-bit code: the node's layout and the widened frame.
    wide: Option<(&'static Rgb32, KVVec<u8>)>,
    scaled: KVVec<u8>,
    deb_scratch: KVVec<u64>,
    scale_scratch: KVVec<u32>,
}

/// A running stream: what the stream thread works on (it alone, while
/// it runs; the node drops the stream after stopping the thread), counted
/// in the pipeline's streams until dropped.
pub(crate) struct Stream {
    /// The entities the stream goes through, counted in.
    counted: Counted,
    timings: Arc<Timings>,
    width: usize,
    height: usize,
    sink: &'static BayerMap,
    /// The sensor's pattern generator, its frame, and the change count of
    /// its controls it was drawn at.
    tpg: tpg::Tpg,
    bayer: KVVec<u8>,
    drawn: u32,
    /// `None` on the raw path, which takes the sensor's frame as it is.
    stages: Option<RgbStages>,
}

/// A stream counted in `Streams` until dropped.
struct Counted(Sources);

impl Counted {
    fn new(s: &Sources) -> Self {
        set_streaming(s, true);
        Self(s.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        set_streaming(&self.0, false);
        crate::dyndbg::ddbg!("stream off\n");
    }
}

/// How many streams run in the media device's one pipeline; every entity
/// holds it and refuses active format changes while it is not zero.  One
/// count for all: the raw and the RGB node share the pipeline, whose links
/// the media core validates only when the first of them starts, so a raw
/// stream fixes the debayer and scaler too, and an RGB stream started
/// later finds them as validated.
#[derive(Clone)]
pub(crate) struct Streams(Arc<AtomicU32>);

impl Streams {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(Arc::new(AtomicU32::new(0), GFP_KERNEL)?))
    }

    /// Whether any stream runs (active formats are then fixed).  Read
    /// under the entity's state lock by `set_fmt`; a stream start counts
    /// itself in before it takes the same locks to read the formats, so
    /// either it sees the new format or `set_fmt` sees the stream.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::Relaxed) != 0
    }
}

/// Counts a stream in (or out of) the pipeline.
fn set_streaming(s: &Sources, on: bool) {
    let c = &s.get().0.streams.0;
    if on {
        c.fetch_add(1, Ordering::Relaxed);
    } else {
        c.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Nanoseconds since `t`.
fn since(t: Instant<Monotonic>) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(0)
}

/// Runs `f`, recording its time in `ft`.
fn timed<R>(ft: &FrameTime, f: impl FnOnce() -> R) -> R {
    let t = Instant::<Monotonic>::now();
    let r = f();
    ft.record(since(t));
    r
}

impl Stream {
    /// Fixes the pipeline's formats (validated equal across links by the
    /// media core just before), reads them, and sets up the stream into
    /// `node`.
    pub(crate) fn start(node: &Node) -> Result<Self> {
        // Fix the formats first, so that none changes between reading it
        // and the thread using it; counted out again if anything fails.
        let counted = Counted::new(&node.sources);
        let (sen, _, _) = node.sources.get();
        let sensor_fmt = sen.active(sensor::SRC).ok_or(EINVAL)?;
        let sink = formats::bayer_map(sensor_fmt.code).ok_or(EINVAL)?;
        let (w, h) = (sensor_fmt.width as usize, sensor_fmt.height as usize);
        // `upstream` is the format the node gets.
        let (stages, upstream) = match node.path {
            Path::Raw => (None, sensor_fmt),
            Path::Rgb => {
                let (stages, upstream) = RgbStages::for_stream(&node.sources, sensor_fmt, node)?;
                (Some(stages), upstream)
            }
        };
        // Link validation ran only if this stream started the pipeline
        // (the other node's may be running already), and before the
        // formats were fixed: check our end here.
        if !node.accepts(&upstream) {
            crate::dyndbg::ddbg!("stream on: capture format does not match {:?}\n", upstream);
            return Err(EPIPE);
        }
        // The pattern does not move (no on-screen text, no motion), so the
        // sensor frame is drawn at stream on and again only when the
        // sensor's controls change (or for noise), not every frame.
        let mut bayer = KVVec::from_elem(0u8, w * h * sink.bpp, GFP_KERNEL)?;
        let mut tpg = tpg::Tpg::new(sink, w, h)?;
        let (look, drawn) = sen.look();
        timed(&node.timings.sensor, || tpg.draw(&look, &mut bayer))?;
        crate::dyndbg::ddbg!(
            "stream on: sensor {:#x} {}x{}, {} node\n",
            sensor_fmt.code,
            w,
            h,
            if node.path == Path::Raw { "raw" } else { "RGB" }
        );
        Ok(Self {
            counted,
            timings: node.timings.clone(),
            width: w,
            height: h,
            sink,
            tpg,
            bayer,
            drawn,
            stages,
        })
    }
}

impl RgbStages {
    /// The stages of a stream from a `sensor_fmt` frame into `capture`,
    /// and the format the node gets.  Link validation ran before the
    /// formats were fixed; a `set_fmt` between the two would pass unseen,
    /// so the links are checked again on what was read after fixing them.
    fn for_stream(sources: &Sources, sensor_fmt: Fmt, capture: &Capture) -> Result<(Self, Fmt)> {
        let (_, deb, sca) = sources.get();
        let deb_sink = deb.active(debayer::SINK).ok_or(EINVAL)?;
        let deb_src = deb.active(debayer::SRC).ok_or(EINVAL)?;
        let (sc_sink, sc_src, crop) = sca.active_config().ok_or(EINVAL)?;
        if deb_sink != sensor_fmt || sc_sink != deb_src {
            crate::dyndbg::ddbg!("stream on: a format changed during link validation\n");
            return Err(EPIPE);
        }
        let mut stages = Self::new(
            sensor_fmt.width as usize,
            sensor_fmt.height as usize,
            deb_src,
            sc_sink,
            sc_src,
            crop,
        )?;
        if stages.source.bpp == 4 {
            let layout = pixfmt::rgb32_layout(capture.format().pixelformat).ok_or(EPIPE)?;
            let len = stages.rgb.len() / 3 * 4;
            stages.wide = Some((layout, KVVec::from_elem(0u8, len, GFP_KERNEL)?));
        }
        crate::dyndbg::ddbg!(
            "stream on: debayer {:#x} -> {:#x}, scaler {}x{} -> {}x{}\n",
            sensor_fmt.code,
            deb_src.code,
            sc_sink.width,
            sc_sink.height,
            sc_src.width,
            sc_src.height
        );
        Ok((stages, sc_src))
    }

    /// The stages for a `w` x `h` sensor frame, the debayer's source format
    /// and the scaler's configuration, with their buffers.
    fn new(
        w: usize,
        h: usize,
        deb_src: Fmt,
        sc_sink: Fmt,
        sc_src: Fmt,
        crop: formats::Rect,
    ) -> Result<Self> {
        let scale = scaler_core::Scaler {
            sink_w: sc_sink.width as usize,
            sink_h: sc_sink.height as usize,
            crop,
            out_w: sc_src.width as usize,
            out_h: sc_src.height as usize,
            bpp: formats::bytes_per_pixel(sc_sink.code).ok_or(EINVAL)?,
            bayer: formats::bayer_map(sc_sink.code).is_some(),
        };
        Ok(Self {
            source: formats::rgb_map(deb_src.code).ok_or(EINVAL)?,
            scale,
            rgb: KVVec::from_elem(0u8, w * h * 3, GFP_KERNEL)?,
            wide: None,
            scaled: KVVec::from_elem(0u8, scale.out_len(), GFP_KERNEL)?,
            deb_scratch: KVVec::from_elem(0u64, debayer_core::scratch_len(w), GFP_KERNEL)?,
            scale_scratch: KVVec::from_elem(
                0u32,
                scaler_core::scratch_len(scale.out_w),
                GFP_KERNEL,
            )?,
        })
    }

    /// Debayer and scaler, each timed; the scaled frame, or `None` if
    /// either stage refused the frame.
    fn process(
        &mut self,
        bayer: &[u8],
        d: debayer_core::Debayer<'_>,
        t: &Timings,
    ) -> Option<&[u8]> {
        let (rgb, scratch, wide) = (&mut self.rgb, &mut self.deb_scratch, &mut self.wide);
        timed(&t.debayer, || {
            d.run(bayer, rgb, scratch)?;
            // The 32-bit code: the same pixels, widened to the node's
            // layout (counted as the debayer's work, whose output it is).
            if let Some((layout, out)) = wide {
                pixfmt::widen_rgb32(rgb, out, layout);
            }
            Ok::<(), debayer_core::DebayerError>(())
        })
        .ok()?;
        let input = match &self.wide {
            Some((_, out)) => &out[..],
            None => &self.rgb[..],
        };
        let (scale, scaled, scratch) = (&self.scale, &mut self.scaled, &mut self.scale_scratch);
        timed(&t.scaler, || scale.run(input, scaled, scratch)).ok()?;
        Some(&self.scaled)
    }
}

impl Stream {
    /// Draws the sensor's frame again if its controls changed since it was
    /// drawn, or if its pattern changes every frame (noise), as vimc's
    /// sensor does each frame.  If drawing fails the old frame stays.
    fn redraw(&mut self) {
        let (look, n) = self.counted.0.get().0.look();
        if n == self.drawn && look.is_static() {
            return;
        }
        let (tpg, bayer) = (&mut self.tpg, &mut self.bayer);
        if timed(&self.timings.sensor, || tpg.draw(&look, bayer)).is_ok() {
            self.drawn = n;
        }
    }

    /// One frame through the pipeline into the next queued buffer.
    pub(crate) fn frame(&mut self, capture: &Node) {
        let buf = capture.next_buffer();
        // One line per tick when enabled: shows when the thread runs
        // (tests/vm/vimc_lifecycle.sh checks it stops while frozen).
        crate::dyndbg::ddbg!("frame tick, buffer {}\n", buf.is_some());
        let Some(mut buf) = buf else {
            return; // no buffer queued: this frame is dropped, as in vimc
        };
        self.redraw();
        let (out, copy_time) = match &mut self.stages {
            None => (Some(&self.bayer[..]), &self.timings.raw_capture),
            Some(stages) => {
                let window = self.counted.0.get().1.window.load(Ordering::Relaxed) as usize;
                let d = debayer_core::Debayer {
                    width: self.width,
                    height: self.height,
                    window,
                    sink: self.sink,
                    source: stages.source,
                };
                (
                    stages.process(&self.bayer, d, &self.timings),
                    &self.timings.capture,
                )
            }
        };
        // `buf_prepare` checked that plane 0 holds `sizeimage` bytes, which
        // is `out.len()` (link validation made the capture format the
        // upstream pad's).
        let len = (capture.format().sizeimage as usize).min(out.map_or(0, <[u8]>::len));
        let copied = out.and_then(|o| timed(copy_time, || buf.fill(o.get(..len)?)));
        capture.complete(buf, copied.unwrap_or(0), copied.is_some());
    }
}
