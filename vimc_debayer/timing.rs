// SPDX-License-Identifier: GPL-2.0

//! Per-entity frame processing times, shown in debugfs
//! (`/sys/kernel/debug/vimc_debayer/timing`).  Lock-free: the streaming
//! threads record, readers take a snapshot that may mix two frames'
//! figures, which is fine for statistics.
//!
//! `core`-only: compiled into the module and, verbatim, into the host tests.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Times of one entity's work, in nanoseconds.
#[derive(Debug, Default)]
pub struct FrameTime {
    frames: AtomicU64,
    last_ns: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
}

/// A copy of a [`FrameTime`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub frames: u64,
    pub last_ns: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}

impl Snapshot {
    /// Mean time per frame (0 before the first frame).
    pub fn avg_ns(&self) -> u64 {
        self.total_ns.checked_div(self.frames).unwrap_or(0)
    }
}

impl FrameTime {
    pub const fn new() -> Self {
        Self {
            frames: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// Records one frame that took `ns`.
    pub fn record(&self, ns: u64) {
        self.last_ns.store(ns, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            frames: self.frames.load(Ordering::Relaxed),
            last_ns: self.last_ns.load(Ordering::Relaxed),
            total_ns: self.total_ns.load(Ordering::Relaxed),
            max_ns: self.max_ns.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        self.frames.store(0, Ordering::Relaxed);
        self.last_ns.store(0, Ordering::Relaxed);
        self.total_ns.store(0, Ordering::Relaxed);
        self.max_ns.store(0, Ordering::Relaxed);
    }
}

/// The pipeline's entities, in the order the table lists them.
#[derive(Debug, Default)]
pub struct Timings {
    /// Test pattern generation (once per stream: the pattern is static).
    pub sensor: FrameTime,
    pub debayer: FrameTime,
    pub scaler: FrameTime,
    /// Copy of the scaler's output into the capture buffer.
    pub capture: FrameTime,
    /// Copy of the sensor's frame into the raw capture buffer.
    pub raw_capture: FrameTime,
}

impl Timings {
    pub const fn new() -> Self {
        Self {
            sensor: FrameTime::new(),
            debayer: FrameTime::new(),
            scaler: FrameTime::new(),
            capture: FrameTime::new(),
            raw_capture: FrameTime::new(),
        }
    }

    /// (entity name as in the media graph, its times).
    pub fn entries(&self) -> [(&'static str, &FrameTime); 5] {
        [
            ("Sensor A", &self.sensor),
            ("Debayer A", &self.debayer),
            ("Scaler", &self.scaler),
            ("Capture", &self.capture),
            ("Raw Capture 0", &self.raw_capture),
        ]
    }

    pub fn reset(&self) {
        for (_, t) in self.entries() {
            t.reset();
        }
    }
}

impl fmt::Display for Timings {
    /// One line per entity: `name: frames=N last_ns=N avg_ns=N max_ns=N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, t) in self.entries() {
            let s = t.snapshot();
            writeln!(
                f,
                "{}: frames={} last_ns={} avg_ns={} max_ns={}",
                name,
                s.frames,
                s.last_ns,
                s.avg_ns(),
                s.max_ns
            )?;
        }
        Ok(())
    }
}
