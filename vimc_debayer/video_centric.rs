// SPDX-License-Identifier: GPL-2.0

//! Video-centric mode (`video_centric=1`): a plain V4L2 application sets
//! the capture node's format and the pipeline behind it follows, with no
//! media-ctl step.  The RGB node's `S_FMT` sets the sensor to the frame
//! size (keeping its Bayer order), the debayer's source to the code of the
//! pixel format, and the scaler to 1:1 (full crop); the raw node's sets the
//! sensor's size and Bayer order, and the rest follows at 1:1.  The other
//! node's format follows too, unless it holds buffers (then `EBUSY`, and
//! nothing changes).  Both nodes share one lock in this mode, so the check
//! and the change are one step.  Sub-device nodes stay writable (controls,
//! tweaks); a format set there that the node's does not match fails
//! stream on with `EPIPE`, as in the media-controller mode, until the
//! next `S_FMT` on the node sets the pipeline up again.

use super::capture::Node;
use super::formats::{self, Fmt};
use super::pixfmt;
use super::streamer::{Path, Sources};
use super::video::{Locked, PixFmt};
use super::video_ops::VideoOps;
use super::{debayer, scaler, sensor};
use kernel::prelude::*;

/// Sets `node`'s format to `fourcc` `w`x`h` (adjusted as `TRY_FMT` does)
/// and configures the pipeline for it; the format set.  Called with the
/// nodes' shared lock held.
pub(crate) fn set_format(
    node: &Node,
    held: &Locked<'_>,
    fourcc: u32,
    w: u32,
    h: u32,
) -> Result<PixFmt> {
    let new = PixFmt::adjust_centric(node.path, fourcc, w, h);
    if node.busy(held) {
        return Err(EBUSY);
    }
    let (bayer, rgb) = codes_for(node, &new)?;
    let size = (new.width, new.height);
    // What the other node's format becomes: its layout at the new size
    // (the raw node's layout is the sensor's order).
    let other = node
        .peers()
        .iter()
        .find(|p| p.path != node.path)
        .ok_or(EINVAL)?;
    let other_now = other.format();
    let other_new = match other.path {
        Path::Raw => PixFmt::adjust_centric(
            Path::Raw,
            pixfmt::fourcc_of_code(bayer).ok_or(EINVAL)?,
            size.0,
            size.1,
        ),
        Path::Rgb => PixFmt::adjust_centric(Path::Rgb, other_now.pixelformat, size.0, size.1),
    };
    if other_new != other_now && other.busy(held) {
        crate::dyndbg::ddbg!("video-centric: the other node holds buffers\n");
        return Err(EBUSY);
    }
    let sensor_fmt = Fmt {
        width: size.0,
        height: size.1,
        code: bayer,
    };
    configure(&node.sources, sensor_fmt, rgb)?;
    node.set(new);
    other.set(other_new);
    crate::dyndbg::ddbg!(
        "video-centric: sensor {}x{} {:#x}, debayer source {:#x}\n",
        size.0,
        size.1,
        bayer,
        rgb
    );
    Ok(new)
}

/// The sensor's Bayer code and the debayer's source code that give `new`
/// on `node`: one follows `new`, the other stays what it is.
fn codes_for(node: &Node, new: &PixFmt) -> Result<(u32, u32)> {
    let (sen, deb, _) = node.sources.get();
    let sensor_now = sen.active(sensor::SRC).ok_or(EINVAL)?.code;
    let rgb_now = deb.active(debayer::SRC).ok_or(EINVAL)?.code;
    Ok(match node.path {
        Path::Rgb => (
            sensor_now,
            pixfmt::rgb_code_of_fourcc(new.pixelformat).ok_or(EINVAL)?,
        ),
        Path::Raw => (
            formats::BAYER_MAPS
                .iter()
                .find(|m| m.fourcc == new.pixelformat)
                .ok_or(EINVAL)?
                .code,
            rgb_now,
        ),
    })
}

/// Sensor -> debayer -> scaler at 1:1 for a `sensor` frame and the debayer
/// source code `rgb`.  The first step refuses (`EBUSY`) while a stream
/// runs, before anything changed; none of the later ones can refuse then,
/// since stream on waits for the same lock as the caller.
fn configure(s: &Sources, sensor: Fmt, rgb: u32) -> Result {
    let (sen, deb, sca) = s.get();
    let sensor = sen.set_active(sensor::SRC, sensor)?;
    deb.set_active(debayer::SINK, sensor)?;
    let src = deb.set_active(
        debayer::SRC,
        Fmt {
            code: rgb,
            ..sensor
        },
    )?;
    // A new scaler sink resets its crop and source to the whole frame.
    sca.set_active(scaler::SINK, src)?;
    Ok(())
}
