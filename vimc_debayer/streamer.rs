// SPDX-License-Identifier: GPL-2.0

//! The streaming thread: at the frame interval, the sensor's test pattern
//! (the kernel's v4l2-tpg, set up as in-tree vimc's sensor sets it up, and
//! generated once at stream on because it does not change) goes
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
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
    types::Opaque,
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
    debayer: *const Debayer,
    timings: Arc<Timings>,
    width: usize,
    height: usize,
    sink: &'static BayerMap,
    /// The sensor's frame.
    bayer: KVVec<u8>,
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

    /// Whether any stream runs (active formats are then fixed).
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
                let deb_src = active_fmt(deb.sd.raw(), debayer::SRC).ok_or(EINVAL)?;
                let (sc_sink, sc_src, crop) = sca.active_config().ok_or(EINVAL)?;
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
        // Link validation ran only if this stream started the pipeline;
        // the other node's may be running already, so check our end here.
        if !capture.accepts(&upstream) {
            crate::dyndbg::ddbg!("stream on: capture format does not match {:?}\n", upstream);
            return Err(EPIPE);
        }
        // The pattern does not move (no on-screen text, no motion), so the
        // sensor frame is generated once per stream, not once per frame.
        let mut bayer = KVVec::from_elem(0u8, w * h * sink.bpp, GFP_KERNEL)?;
        let tpg = KBox::pin_init(
            Opaque::ffi_init(|p: *mut sys::tpg_data| {
                // SAFETY: valid for writes; `tpg_init` fills it.
                unsafe { p.write_bytes(0, 1) }
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `tpg` is ours; `bayer` holds a whole frame at the bytes per
        // line `setup_tpg` sets; `tpg_free` accepts a tpg whose allocation
        // failed part-way (its line pointers start NULL).
        let ret = timed(&timings.sensor, || unsafe {
            sys::tpg_init(tpg.get(), w as u32, h as u32);
            let ret = sys::tpg_alloc(tpg.get(), formats::MAX_WIDTH);
            if ret == 0 {
                setup_tpg(tpg.get(), sink, w as u32, h as u32);
                sys::tpg_fill_plane_buffer(tpg.get(), 0, 0, bayer.as_mut_ptr());
            }
            sys::tpg_free(tpg.get());
            ret
        });
        kernel::error::to_result(ret)?;
        let ctx = KBox::new(
            Ctx {
                capture,
                debayer: sources.debayer,
                timings: timings.clone(),
                width: w,
                height: h,
                sink,
                bayer,
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

/// What vimc's sensor does with a format (`vimc_sensor_tpg_s_format`): the
/// tpg's static inline setters, redone here.
///
/// # Safety
///
/// `t` is an initialised, allocated tpg no one else uses.
unsafe fn setup_tpg(t: *mut sys::tpg_data, m: &BayerMap, w: u32, h: u32) {
    // SAFETY: per the contract.
    let t = unsafe {
        sys::tpg_reset_source(t, w, h, sys::v4l2_field_V4L2_FIELD_NONE);
        // The fourcc first, so the line layout below is the Bayer one
        // (vimc reaches the same state on its second format set).
        sys::tpg_s_fourcc(t, m.fourcc);
        &mut *t
    };
    // tpg_s_bytesperline(tpg, 0, w * bpp)
    let bpl = w * m.bpp as u32;
    let planes = if t.interleaved { 1 } else { t.planes as usize };
    for p in 0..planes.min(t.bytesperline.len()) {
        let tw = t.twopixelsize.get(p).copied().unwrap_or(1);
        let t0 = t.twopixelsize[0].max(1);
        let hd = u32::from(t.hdownsampling.get(p).copied().unwrap_or(1).max(1));
        if let Some(b) = t.bytesperline.get_mut(p) {
            *b = bpl * tw / t0 / hd;
        }
    }
    if t.interleaved {
        t.bytesperline[1] = t.bytesperline[0];
    }
    t.buf_height = h;
    t.field = sys::v4l2_field_V4L2_FIELD_NONE;
    t.field_alternate = false;
    let colorimetry = [
        (&mut t.colorspace, sys::v4l2_colorspace_V4L2_COLORSPACE_SRGB),
        (&mut t.ycbcr_enc, 0),
        (&mut t.quantization, 0),
        (&mut t.xfer_func, 0),
    ];
    let mut changed = false;
    for (field, v) in colorimetry {
        if *field != v {
            *field = v;
            changed = true;
        }
    }
    if changed {
        t.recalc_colors = true;
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
    /// One frame through the pipeline into the next queued buffer.
    fn frame(&mut self) {
        // SAFETY: the capture node outlives the stream.
        let capture = unsafe { &*self.capture };
        let Some(buf) = capture.next_buffer() else {
            return; // no buffer queued: this frame is dropped, as in vimc
        };
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

/// The thread: one frame per interval until told to stop.
///
/// # Safety
///
/// Started by `Streamer::start` with its `Ctx`.
unsafe extern "C" fn thread(data: *mut c_void) -> i32 {
    // SAFETY: `data` is the `Ctx` the `Streamer` owns, which waits for this
    // thread in `kthread_stop` before touching it.
    let ctx = unsafe { &mut *data.cast::<Ctx>() };
    // SAFETY: plain calls on the current kthread.
    while !unsafe { bindings::kthread_should_stop() } {
        ctx.frame();
        // SAFETY: as above; `kthread_stop` wakes us early.
        unsafe { bindings::schedule_timeout_uninterruptible(INTERVAL_JIFFIES) };
    }
    0
}
