// SPDX-License-Identifier: GPL-2.0

//! The streaming thread: at the frame interval, the sensor's test pattern
//! (drawn again only when the sensor's controls change, or every frame
//! for noise) goes
//! through the debayer and the scaler into the next queued capture buffer
//! (or, for the raw capture node, straight into it), like vimc's streamer.
//! The pipeline's formats are read once at stream on (they cannot change
//! while streaming); the window size is read per frame.  Each stage's time
//! is recorded in `Timings` (debugfs `timing`).

use super::capture::Capture;
use super::debayer::{self, Debayer};
use super::debayer_core;
use super::formats::{self, BayerMap, Fmt, RgbMap};
use super::media::sys;
use super::scaler::Scaler;
use super::scaler_core;
use super::sensor::{self, Sensor};
use super::subdev;
use super::timing::{FrameTime, Timings};
use super::tpg;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
};

/// Frame interval: 30 frames per second, vimc's default.
const INTERVAL_JIFFIES: kernel::ffi::c_long = (bindings::HZ / 30) as kernel::ffi::c_long;

/// The entities upstream of the capture node.  They are boxed in the graph
/// and outlive the capture node, which is dropped first.
#[derive(Clone, Copy)]
pub(crate) struct Sources {
    pub(crate) sensor: *const Sensor,
    pub(crate) debayer: *const Debayer,
    pub(crate) scaler: *const Scaler,
}

// SAFETY: the pointees are `Sync` and outlive every user (see above).
unsafe impl Send for Sources {}
// SAFETY: as above.
unsafe impl Sync for Sources {}

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
    scaled: KVVec<u8>,
    deb_scratch: KVVec<u64>,
    scale_scratch: KVVec<u32>,
}

/// What the thread works on; owned by `Streamer`, used only by the thread
/// while it runs.
struct Ctx {
    capture: *const Capture,
    sensor: *const Sensor,
    debayer: *const Debayer,
    timings: Arc<Timings>,
    width: usize,
    height: usize,
    sink: &'static BayerMap,
    /// The sensor's frame, and the change count of its controls it was
    /// drawn at.
    bayer: KVVec<u8>,
    drawn: u32,
    /// `None` on the raw path, which takes the sensor's frame as it is.
    stages: Option<RgbStages>,
}

/// A running stream: the thread and its context.  Dropping it stops the
/// thread, then frees what the thread used.
pub(crate) struct Streamer {
    task: *mut bindings::task_struct,
    /// Owned here, used by the thread alone; freed after it stops.
    _ctx: KBox<Ctx>,
    sources: Sources,
}

// SAFETY: the task pointer is only passed to `kthread_stop`; the context is
// used by the thread alone until that returns.
unsafe impl Send for Streamer {}

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
    // SAFETY: see `Sources`.
    let c = unsafe { &(*s.sensor).streams.0 };
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

/// The active format of `pad` of the sub-device `sd`.
fn active_fmt(sd: *mut sys::v4l2_subdev, pad: u32) -> Option<Fmt> {
    // SAFETY: `sd` is a registered, finalized sub-device of the graph.
    unsafe {
        subdev::with_active_state(sd, |st| {
            subdev::state_fmt(st, pad).map(|m| subdev::fmt_of(m))
        })
    }
    .flatten()
}

impl Streamer {
    /// Reads the pipeline's formats (validated equal across links by the
    /// media core just before), fixes them, and starts the thread.
    pub(crate) fn start(
        capture: &Capture,
        sources: &Sources,
        path: Path,
        timings: &Arc<Timings>,
    ) -> Result<Self> {
        // Fix the formats first, so that none changes between reading it
        // and the thread using it.
        set_streaming(sources, true);
        let r = Self::start_fixed(capture, sources, path, timings);
        if r.is_err() {
            set_streaming(sources, false);
        }
        r
    }

    fn start_fixed(
        capture: &Capture,
        sources: &Sources,
        path: Path,
        timings: &Arc<Timings>,
    ) -> Result<Self> {
        // SAFETY: see `Sources`.
        let (sen, deb, sca) = unsafe { (&*sources.sensor, &*sources.debayer, &*sources.scaler) };
        let sensor_fmt = active_fmt(sen.sd.raw(), sensor::SRC).ok_or(EINVAL)?;
        let sink = formats::bayer_map(sensor_fmt.code).ok_or(EINVAL)?;
        let (w, h) = (sensor_fmt.width as usize, sensor_fmt.height as usize);
        // `upstream` is the format the node gets.
        let (stages, upstream) = match path {
            Path::Raw => (None, sensor_fmt),
            Path::Rgb => {
                let deb_sink = active_fmt(deb.sd.raw(), debayer::SINK).ok_or(EINVAL)?;
                let deb_src = active_fmt(deb.sd.raw(), debayer::SRC).ok_or(EINVAL)?;
                let (sc_sink, sc_src, crop) = sca.active_config().ok_or(EINVAL)?;
                // Link validation ran before the formats were fixed; a
                // `set_fmt` between the two would pass unseen, so the links
                // are checked again on what was read after fixing them.
                if deb_sink != sensor_fmt || sc_sink != deb_src {
                    crate::dyndbg::ddbg!("stream on: a format changed during link validation\n");
                    return Err(EPIPE);
                }
                let stages = RgbStages::new(w, h, deb_src, sc_sink, sc_src, crop)?;
                crate::dyndbg::ddbg!(
                    "stream on: debayer {:#x} -> {:#x}, scaler {}x{} -> {}x{}\n",
                    sensor_fmt.code,
                    deb_src.code,
                    sc_sink.width,
                    sc_sink.height,
                    sc_src.width,
                    sc_src.height
                );
                (Some(stages), sc_src)
            }
        };
        // Link validation ran only if this stream started the pipeline
        // (the other node's may be running already), and before the
        // formats were fixed: check our end here.
        if !capture.accepts(&upstream) {
            crate::dyndbg::ddbg!("stream on: capture format does not match {:?}\n", upstream);
            return Err(EPIPE);
        }
        // The pattern does not move (no on-screen text, no motion), so the
        // sensor frame is drawn at stream on and again only when the
        // sensor's controls change (or for noise), not every frame.
        let mut bayer = KVVec::from_elem(0u8, w * h * sink.bpp, GFP_KERNEL)?;
        let (look, drawn) = sen.look();
        timed(&timings.sensor, || tpg::draw(sink, w, h, &look, &mut bayer))?;
        let ctx = KBox::new(
            Ctx {
                capture,
                sensor: sources.sensor,
                debayer: sources.debayer,
                timings: timings.clone(),
                width: w,
                height: h,
                sink,
                bayer,
                drawn,
                stages,
            },
            GFP_KERNEL,
        )?;
        crate::dyndbg::ddbg!(
            "stream on: sensor {:#x} {}x{}, {} node\n",
            sensor_fmt.code,
            w,
            h,
            if path == Path::Raw { "raw" } else { "RGB" }
        );
        let data = core::ptr::from_ref(&*ctx).cast_mut().cast();
        // SAFETY: `data` stays valid until `kthread_stop` in `Drop`
        // returns; the name has no format directives.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(thread),
                data,
                bindings::NUMA_NO_NODE,
                c"vimc_debayer-streamer".as_char_ptr(),
            )
        };
        let task = kernel::error::from_err_ptr(task)?;
        // SAFETY: a new kthread waiting for its first wake-up.
        unsafe { bindings::wake_up_process(task) };
        Ok(Self {
            task,
            _ctx: ctx,
            sources: *sources,
        })
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        // SAFETY: the thread runs until told to stop and never exits on its
        // own, so the task is alive; after this the context is ours again.
        // (-EINTR when it never ran is fine.)
        unsafe { bindings::kthread_stop(self.task) };
        set_streaming(&self.sources, false);
        crate::dyndbg::ddbg!("stream off\n");
    }
}

impl RgbStages {
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
        let (rgb, scratch) = (&mut self.rgb, &mut self.deb_scratch);
        timed(&t.debayer, || d.run(bayer, rgb, scratch)).ok()?;
        let (scale, rgb, scaled, scratch) = (
            &self.scale,
            &self.rgb,
            &mut self.scaled,
            &mut self.scale_scratch,
        );
        timed(&t.scaler, || scale.run(rgb, scaled, scratch)).ok()?;
        Some(&self.scaled)
    }
}

impl Ctx {
    /// Draws the sensor's frame again if its controls changed since it was
    /// drawn, or if its pattern changes every frame (noise), as vimc's
    /// sensor does each frame.  If drawing fails the old frame stays.
    fn redraw(&mut self) {
        // SAFETY: see `Sources`.
        let (look, n) = unsafe { (*self.sensor).look() };
        if n == self.drawn && look.is_static() {
            return;
        }
        let (m, w, h, bayer) = (self.sink, self.width, self.height, &mut self.bayer);
        if timed(&self.timings.sensor, || tpg::draw(m, w, h, &look, bayer)).is_ok() {
            self.drawn = n;
        }
    }

    /// One frame through the pipeline into the next queued buffer.
    fn frame(&mut self) {
        // SAFETY: the capture node outlives the stream.
        let capture = unsafe { &*self.capture };
        let buf = capture.next_buffer();
        // One line per tick when enabled: shows when the thread runs
        // (tests/vm/vimc_lifecycle.sh checks it stops while frozen).
        crate::dyndbg::ddbg!("frame tick, buffer {}\n", buf.is_some());
        let Some(buf) = buf else {
            return; // no buffer queued: this frame is dropped, as in vimc
        };
        self.redraw();
        let (out, copy_time) = match &mut self.stages {
            None => (Some(&self.bayer[..]), &self.timings.raw_capture),
            Some(stages) => {
                // SAFETY: see `Sources`.
                let window = unsafe { (*self.debayer).window.load(Ordering::Relaxed) } as usize;
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
        let ok = out.is_some();
        let out = out.unwrap_or(&[]);
        let fmt = capture.format();
        let vb = buf.0;
        // SAFETY: a buffer vb2 queued to us; `buf_prepare` checked that
        // plane 0 holds `sizeimage` bytes, which is `out.len()` (link
        // validation made the capture format the upstream pad's).
        unsafe {
            let vaddr = sys::vb2_plane_vaddr(vb, 0).cast::<u8>();
            let len = (fmt.sizeimage as usize).min(out.len());
            if ok && !vaddr.is_null() {
                timed(copy_time, || {
                    core::ptr::copy_nonoverlapping(out.as_ptr(), vaddr, len)
                });
            }
            (*vb).timestamp = bindings::ktime_get() as u64;
            let vbuf = vb.cast::<sys::vb2_v4l2_buffer>(); // vb2_buf is its first member
            (*vbuf).sequence = capture.sequence.fetch_add(1, Ordering::Relaxed);
            (*vbuf).field = sys::v4l2_field_V4L2_FIELD_NONE;
            if (*vb).num_planes > 0 {
                (*vb).planes[0].bytesused = len as u32; // vb2_set_plane_payload
            }
            let state = if ok && !vaddr.is_null() {
                sys::vb2_buffer_state_VB2_BUF_STATE_DONE
            } else {
                sys::vb2_buffer_state_VB2_BUF_STATE_ERROR
            };
            sys::vb2_buffer_done(vb, state);
        }
    }
}

/// The thread: one frame per interval until told to stop.  Freezable, as
/// vimc's streamer is: while the system suspends it makes no frames.
///
/// # Safety
///
/// Started by `Streamer::start` with its `Ctx`.
unsafe extern "C" fn thread(data: *mut c_void) -> i32 {
    // SAFETY: `data` is the `Ctx` the `Streamer` owns, which waits for this
    // thread in `kthread_stop` before touching it.
    let ctx = unsafe { &mut *data.cast::<Ctx>() };
    // Without the freezer, `set_freezable` is a static inline no-op.
    // SAFETY: plain calls on the current kthread; the freezer parks it in
    // `kthread_freezable_should_stop`, between frames.
    #[cfg(CONFIG_FREEZER)]
    unsafe {
        sys::set_freezable()
    };
    // SAFETY: as above; a NULL `was_frozen` is allowed.
    while !unsafe { bindings::kthread_freezable_should_stop(core::ptr::null_mut()) } {
        ctx.frame();
        // SAFETY: as above; `kthread_stop` and the freezer wake us early.
        unsafe { bindings::schedule_timeout_interruptible(INTERVAL_JIFFIES) };
    }
    0
}
