/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The media, V4L2 and videobuf2 API vimc_debayer binds (the 7.3 kernel crate
 * has none), and set_freezable() for its streaming thread.  tools/media-bindgen turns it into Rust at build time with the
 * kernel's own bindgen parameters.
 */
#include <linux/freezer.h>
#include <media/media-device.h>
#include <media/media-entity.h>
#include <media/v4l2-ctrls.h>
#include <media/v4l2-device.h>
#include <media/v4l2-event.h>
#include <media/v4l2-ioctl.h>
#include <media/v4l2-subdev.h>
#include <media/videobuf2-v4l2.h>
#include <media/videobuf2-vmalloc.h>
#include <media/tpg/v4l2-tpg.h>
