// SPDX-License-Identifier: GPL-2.0

//! A sub-device's pad operations and controls as a trait: an entity
//! implements `PadOps` in safe Rust over `State`, and `Tables` generates
//! the C operation tables for it (one skeleton for sensor, debayer and
//! scaler).  With `subdev.rs`, the only place that reaches into a
//! sub-device's state or its requests.

use super::formats::{self, Fmt, Rect};
use super::media::sys;
use super::subdev::{OpsTable, Subdev};
use core::marker::PhantomData;
use kernel::prelude::*;

/// A sub-device state (active or try) the core passed to a pad op, or the
/// layer locked: the pads' formats and the crop rectangles.
///
/// # Invariants
///
/// `ptr` is a valid state of a sub-device with `N` pads, locked by its
/// owner for `'a`, and reached through nothing else meanwhile.
pub(crate) struct State<'a> {
    ptr: *mut sys::v4l2_subdev_state,
    _locked: PhantomData<&'a mut sys::v4l2_subdev_state>,
}

impl State<'_> {
    /// # Safety
    ///
    /// `ptr` satisfies the type invariants for the returned lifetime.
    pub(crate) unsafe fn from_raw(ptr: *mut sys::v4l2_subdev_state) -> Self {
        Self {
            ptr,
            _locked: PhantomData,
        }
    }

    /// The format of `pad`.
    pub(crate) fn fmt(&self, pad: u32) -> Option<Fmt> {
        self.get(sys::__v4l2_subdev_state_get_format, pad)
            .map(super::subdev::fmt_of)
    }

    /// Sets the format of `pad`.
    pub(crate) fn set_fmt(&mut self, pad: u32, f: Fmt) -> Result {
        let m = self.get_mut(sys::__v4l2_subdev_state_get_format, pad);
        super::subdev::mbus_fmt(f, m.ok_or(EINVAL)?);
        Ok(())
    }

    /// The crop rectangle of `pad`.
    pub(crate) fn crop(&self, pad: u32) -> Option<Rect> {
        self.get(sys::__v4l2_subdev_state_get_crop, pad)
            .map(rect_of)
    }

    /// Sets the crop rectangle of `pad`.
    pub(crate) fn set_crop(&mut self, pad: u32, r: Rect) -> Result {
        let out = self.get_mut(sys::__v4l2_subdev_state_get_crop, pad);
        set_rect(r, out.ok_or(EINVAL)?);
        Ok(())
    }

    /// `pad`'s entry (stream 0) of the state's table `get` reads.
    fn get<R>(&self, get: Getter<R>, pad: u32) -> Option<&R> {
        // SAFETY: by the invariants; `get` is one of the core's state
        // accessors (private to this type), NULL for a pad not there.
        unsafe { get(self.ptr, pad, 0).as_ref() }
    }

    /// As `get`, to change the entry.
    fn get_mut<R>(&mut self, get: Getter<R>, pad: u32) -> Option<&mut R> {
        // SAFETY: as `get`; `&mut self` is the only way to the state.
        unsafe { get(self.ptr, pad, 0).as_mut() }
    }
}

/// A sub-device state accessor of the V4L2 core (format, crop).
type Getter<R> = unsafe extern "C" fn(*mut sys::v4l2_subdev_state, u32, u32) -> *mut R;

fn rect_of(r: &sys::v4l2_rect) -> Rect {
    Rect {
        left: r.left.max(0) as u32,
        top: r.top.max(0) as u32,
        width: r.width,
        height: r.height,
    }
}

fn set_rect(r: Rect, out: &mut sys::v4l2_rect) {
    out.left = i32::try_from(r.left).unwrap_or(i32::MAX);
    out.top = i32::try_from(r.top).unwrap_or(i32::MAX);
    out.width = r.width;
    out.height = r.height;
}

/// A control an entity offers; the layer adds vimc's class control
/// first.
pub(crate) enum Ctrl {
    /// A standard control: id, minimum, maximum, step, default.
    Std(u32, i64, i64, u64, i64),
    /// A driver control; its `ops` are replaced by the layer's.
    Custom(&'static OpsTable<sys::v4l2_ctrl_config>),
}

/// An entity: its pads, their formats, and its controls.
pub(crate) trait PadOps<const N: usize>: Send + Sync + Sized + 'static {
    /// Entity name.
    const NAME: &'static CStr;
    /// `MEDIA_ENT_F_*`.
    const FUNCTION: u32;
    /// `MEDIA_PAD_FL_*` of each pad.
    const PAD_FLAGS: [u32; N];
    /// Its controls (none: no control handler).
    const CONTROLS: &'static [Ctrl] = &[];
    /// Whether it has crop rectangles (the selection API).
    const SELECTION: bool = false;

    /// Default formats (and crops) of a new state.
    fn init_state(state: &mut State<'_>);
    /// The `index`th media bus code of `pad`.
    fn enum_code(pad: u32, index: usize) -> Option<u32>;
    /// Whether `pad` takes `code` (at the sizes `formats::clamp_size` allows).
    fn knows_code(pad: u32, code: u32) -> bool;
    /// Sets `pad`'s format in `state` from `req` (`active`: the active
    /// state, not a try one); what was set.
    fn set_fmt(&self, state: &mut State<'_>, active: bool, pad: u32, req: Fmt) -> Result<Fmt>;
    /// The selection rectangle `target` of `pad`.
    fn get_selection(_state: &State<'_>, _pad: u32, _target: u32) -> Result<Rect> {
        Err(EINVAL)
    }
    /// Sets the selection rectangle `target` of `pad`; what was set.
    fn set_selection(
        &self,
        _state: &mut State<'_>,
        _active: bool,
        _pad: u32,
        _target: u32,
        _r: Rect,
    ) -> Result<Rect> {
        Err(EINVAL)
    }
    /// A control changed (the core checked its range).
    fn s_ctrl(&self, _id: u32, _val: i32) -> Result {
        Err(EINVAL)
    }
}

/// The C operation tables of `T`.
pub(crate) struct Tables<T, const N: usize>(PhantomData<T>);

impl<T: PadOps<N>, const N: usize> Tables<T, N> {
    const PAD: OpsTable<sys::v4l2_subdev_pad_ops> = OpsTable(sys::v4l2_subdev_pad_ops {
        enum_mbus_code: Some(enum_mbus_code::<T, N>),
        enum_frame_size: Some(enum_frame_size::<T, N>),
        get_fmt: Some(sys::v4l2_subdev_get_fmt),
        set_fmt: Some(set_fmt::<T, N>),
        get_selection: if T::SELECTION {
            Some(get_selection::<T, N>)
        } else {
            None
        },
        set_selection: if T::SELECTION {
            Some(set_selection::<T, N>)
        } else {
            None
        },
        ..pin_init::zeroed()
    });
    const CORE: OpsTable<sys::v4l2_subdev_core_ops> = OpsTable(sys::v4l2_subdev_core_ops {
        log_status: Some(sys::v4l2_ctrl_subdev_log_status),
        subscribe_event: Some(sys::v4l2_ctrl_subdev_subscribe_event),
        unsubscribe_event: Some(sys::v4l2_event_subdev_unsubscribe),
        ..pin_init::zeroed()
    });
    const OPS: OpsTable<sys::v4l2_subdev_ops> = OpsTable(sys::v4l2_subdev_ops {
        core: if T::CONTROLS.is_empty() {
            core::ptr::null()
        } else {
            &Self::CORE.0
        },
        pad: &Self::PAD.0,
        ..pin_init::zeroed()
    });
    const INTERNAL: OpsTable<sys::v4l2_subdev_internal_ops> =
        OpsTable(sys::v4l2_subdev_internal_ops {
            init_state: Some(init_state::<T, N>),
            ..pin_init::zeroed()
        });
    const CTRL: OpsTable<sys::v4l2_ctrl_ops> = OpsTable(sys::v4l2_ctrl_ops {
        s_ctrl: Some(s_ctrl::<T, N>),
        ..pin_init::zeroed()
    });

    pub(crate) const fn ops() -> &'static sys::v4l2_subdev_ops {
        &Self::OPS.0
    }

    pub(crate) const fn internal() -> &'static sys::v4l2_subdev_internal_ops {
        &Self::INTERNAL.0
    }

    pub(crate) const fn ctrl() -> &'static sys::v4l2_ctrl_ops {
        &Self::CTRL.0
    }
}

/// # Safety
///
/// `sd` is the sub-device of a registered `Subdev<T, N>` (the only place
/// that installs `Tables<T, N>`).
unsafe fn owner<'a, T: PadOps<N>, const N: usize>(sd: *mut sys::v4l2_subdev) -> &'a T {
    // SAFETY: `dev_priv` is the `Subdev<T, N>` (set by `register`), which
    // outlives its registration.
    unsafe { &*(*sd).dev_priv.cast::<Subdev<T, N>>() }
}

/// # Safety
///
/// Called by the V4L2 core with a valid, locked state of our sub-device.
unsafe extern "C" fn init_state<T: PadOps<N>, const N: usize>(
    _sd: *mut sys::v4l2_subdev,
    state: *mut sys::v4l2_subdev_state,
) -> i32 {
    // SAFETY: the core holds the state locked for the call.
    T::init_state(&mut unsafe { State::from_raw(state) });
    0
}

/// Defines pad-op trampolines: `fn name(this, req: REQ) -> i32 {..}` (or
/// `fn name(this, req: REQ, mut st)` for ops that use the state) becomes the C
/// function the core calls with a `Subdev<T, N>`'s sub-device and a
/// request, giving the body the entity, the locked state and the request
/// as references.
macro_rules! pad_ops {
    ($(fn $name:ident($this:ident, $req:ident: $ty:ty $(, mut $st:ident)?) -> i32 $body:block)*) => {$(
        /// # Safety
        ///
        /// Called by the V4L2 core with the sub-device of a registered
        /// `Subdev<T, N>`, a valid request ours for the call and, for the
        /// ops that use it, the state the request is for, locked.
        unsafe extern "C" fn $name<T: PadOps<N>, const N: usize>(
            sd: *mut sys::v4l2_subdev,
            #[allow(unused_variables)] state: *mut sys::v4l2_subdev_state,
            req: *mut $ty,
        ) -> i32 {
            // SAFETY: per the function's contract (a state only where the
            // op uses one, as in-kernel callers may pass none).
            #[allow(unused_variables)]
            let ($this, $req) = unsafe { (owner::<T, N>(sd), &mut *req) };
            $(
                // SAFETY: as above; this op's state is given and locked.
                #[allow(unused_mut)]
                let mut $st = unsafe { State::from_raw(state) };
            )?
            $body
        }
    )*};
}

fn is_active(which: u32) -> bool {
    which == sys::v4l2_subdev_format_whence_V4L2_SUBDEV_FORMAT_ACTIVE
}

pad_ops! {
    fn enum_mbus_code(this, code: sys::v4l2_subdev_mbus_code_enum) -> i32 {
        match T::enum_code(code.pad, code.index as usize) {
            Some(c) => {
                code.code = c;
                0
            }
            None => EINVAL.to_errno(),
        }
    }

    fn enum_frame_size(this, fse: sys::v4l2_subdev_frame_size_enum) -> i32 {
        if fse.index != 0 || !T::knows_code(fse.pad, fse.code) {
            return EINVAL.to_errno();
        }
        fse.min_width = formats::MIN_WIDTH;
        fse.max_width = formats::MAX_WIDTH;
        fse.min_height = formats::MIN_HEIGHT;
        fse.max_height = formats::MAX_HEIGHT;
        0
    }

    fn set_fmt(this, fmt: sys::v4l2_subdev_format, mut st) -> i32 {
        let req = super::subdev::fmt_of(&fmt.format);
        match this.set_fmt(&mut st, is_active(fmt.which), fmt.pad, req) {
            Ok(new) => {
                super::subdev::mbus_fmt(new, &mut fmt.format);
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    fn get_selection(this, sel: sys::v4l2_subdev_selection, mut st) -> i32 {
        match T::get_selection(&st, sel.pad, sel.target) {
            Ok(r) => {
                set_rect(r, &mut sel.r);
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    fn set_selection(this, sel: sys::v4l2_subdev_selection, mut st) -> i32 {
        let req = rect_of(&sel.r);
        match this.set_selection(&mut st, is_active(sel.which), sel.pad, sel.target, req) {
            Ok(r) => {
                set_rect(r, &mut sel.r);
                0
            }
            Err(e) => e.to_errno(),
        }
    }
}

/// # Safety
///
/// Called by the control framework with one of the controls `register`
/// added to a `Subdev<T, N>`'s handler.
unsafe extern "C" fn s_ctrl<T: PadOps<N>, const N: usize>(ctrl: *mut sys::v4l2_ctrl) -> i32 {
    // SAFETY: `priv_` of each of our controls is its `Subdev<T, N>`
    // (never NULL), which frees the handler (and so the control) before it
    // goes.
    let (id, val, sd) = unsafe {
        (
            (*ctrl).id,
            (*ctrl).val,
            (*ctrl).priv_.cast::<Subdev<T, N>>().as_ref(),
        )
    };
    match sd.map(|s| s.s_ctrl(id, val)) {
        Some(Ok(())) => 0,
        Some(Err(e)) => e.to_errno(),
        None => EINVAL.to_errno(),
    }
}

/// An all-default control config, for an entity's custom controls (`ops`
/// is the layer's, whatever is set here).
pub(crate) const fn ctrl_config() -> sys::v4l2_ctrl_config {
    pin_init::zeroed()
}
