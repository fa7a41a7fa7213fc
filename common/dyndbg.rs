// SPDX-License-Identifier: GPL-2.0

//! Dynamic debug for Rust call sites.
//!
//! The 7.3 `kernel` crate's `pr_debug!`/`dev_dbg!` do not take part in
//! dynamic debug.  [`ddbg!`] and [`dev_ddbg!`] do: each call site emits a
//! `struct _ddebug` into the `__dyndbg` section, exactly as C's
//! `DEFINE_DYNAMIC_DEBUG_METADATA` does (module, function, file, line,
//! format, default class, default flags, static key), so
//! `/sys/kernel/debug/dynamic_debug/control` lists and drives it.  Formatting
//! goes through `%pA`.  A disabled site is one patched-out jump when the kernel
//! has `CONFIG_JUMP_LABEL`, else a test of the flags byte.
//!
//! The crate root must provide `__LOG_PREFIX` (the `module!` macro does),
//! `mod dyndbg_core` and the generated `DYNDBG_FUNCS` table (see
//! `tools/dyndbg-funcs`).

use core::{cell::UnsafeCell, ffi::CStr, fmt};
use kernel::{bindings, device::Device, str::CStrExt};

use crate::dyndbg_core::{pack_bits, CLASS_DEFAULT, FLAG_INCL_STACK, FLAG_PRINT};

/// One call site's `struct _ddebug`.
///
/// The dynamic debug core writes `flags` and the static key at run time, so
/// the descriptor lives in an `UnsafeCell` (and hence in a writable section).
#[repr(transparent)]
pub(crate) struct Descriptor(UnsafeCell<bindings::_ddebug>);

// SAFETY: the dynamic debug core changes a descriptor only under its own
// mutex; this side only reads the flags byte, and a stale read merely prints
// or skips one message.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// Builds a descriptor; all strings must end in a NUL.
    pub(crate) const fn new(
        modname: &'static [u8],
        function: &'static CStr,
        filename: &'static str,
        format: &'static str,
        line: u32,
    ) -> Self {
        Self(UnsafeCell::new(bindings::_ddebug {
            modname: modname.as_ptr().cast(),
            function: function.to_bytes_with_nul().as_ptr(),
            filename: filename.as_ptr().cast(),
            format: format.as_ptr().cast(),
            // `_DPRINTK_FLAGS_DEFAULT` is 0 without `DEBUG`; the static key
            // starts false (all zero) as `STATIC_KEY_FALSE_INIT` does.
            _bitfield_1: bindings::__BindgenBitfieldUnit::new(pack_bits(line, CLASS_DEFAULT, 0)),
            ..pin_init::zeroed()
        }))
    }

    fn raw(&self) -> *mut bindings::_ddebug {
        self.0.get()
    }

    /// The call site's current flags byte.
    pub(crate) fn flags(&self) -> u8 {
        // SAFETY: `raw()` points to this live static; the dynamic debug core
        // writes the byte under its mutex, a racing read sees the old or the
        // new value.
        unsafe { (*self.raw()).flags() as u8 }
    }

    /// Whether the site prints, when the kernel has no static keys.
    #[cfg_attr(CONFIG_JUMP_LABEL, allow(dead_code))]
    pub(crate) fn enabled_slow(&self) -> bool {
        self.flags() & FLAG_PRINT != 0
    }

    fn after_print(&self) {
        if self.flags() & FLAG_INCL_STACK != 0 {
            // SAFETY: `dump_stack` has no preconditions.
            unsafe { bindings::dump_stack() };
        }
    }

    /// Prints `args` as `module: message` through `__dynamic_pr_debug`.
    pub(crate) fn print(&self, args: fmt::Arguments<'_>) {
        // SAFETY: the descriptor is a registered `__dyndbg` entry; the format
        // takes a C string (the NUL-terminated `__LOG_PREFIX`) and a
        // `fmt::Arguments` for `%pA`, both alive for the call.
        unsafe {
            bindings::__dynamic_pr_debug(
                self.raw(),
                c"%s: %pA".as_char_ptr(),
                crate::__LOG_PREFIX.as_ptr(),
                core::ptr::from_ref(&args).cast::<core::ffi::c_void>(),
            )
        };
        self.after_print();
    }

    /// Prints `args` prefixed with the device's driver and name, through
    /// `__dynamic_dev_dbg`.
    pub(crate) fn dev_print<Ctx: kernel::device::DeviceContext>(
        &self,
        dev: &Device<Ctx>,
        args: fmt::Arguments<'_>,
    ) {
        // `Device` is a transparent wrapper of `struct device`; the kernel
        // crate keeps its own `as_raw` private.
        let raw = core::ptr::from_ref(dev).cast::<bindings::device>();
        // SAFETY: as for `print`; `raw` is a live device for the call.
        unsafe {
            bindings::__dynamic_dev_dbg(
                self.raw(),
                raw,
                c"%pA".as_char_ptr(),
                core::ptr::from_ref(&args).cast::<core::ffi::c_void>(),
            )
        };
        self.after_print();
    }
}

/// Declares the call site's descriptor and evaluates to whether it is on.
#[doc(hidden)]
macro_rules! __ddbg_site {
    ($fmt:literal) => {{
        // `used(compiler)`, not `used`: plain `#[used]` marks the section
        // SHF_GNU_RETAIN, the same bit as the module loader's
        // SHF_RO_AFTER_INIT, and dynamic debug could then not write the
        // flags and static key (seen as an oops in tests/vm/dyndbg.sh).
        #[link_section = "__dyndbg"]
        #[used(compiler)]
        static __DDEBUG: $crate::dyndbg::Descriptor = $crate::dyndbg::Descriptor::new(
            $crate::__LOG_PREFIX,
            match $crate::dyndbg_core::func_name($crate::DYNDBG_FUNCS, file!(), line!()) {
                Some(name) => name,
                None => c"<unknown>",
            },
            concat!(file!(), "\0"),
            concat!($fmt, "\0"),
            line!(),
        );
        #[cfg(CONFIG_JUMP_LABEL)]
        // SAFETY: `__DDEBUG` is a `_ddebug` in `__dyndbg` (behind a transparent
        // cell) whose `key` is a real static key: the module loader registers
        // the jump entry against it and dynamic debug flips it.
        let on = unsafe {
            ::kernel::arch_static_branch! { __DDEBUG, ::kernel::bindings::_ddebug, key, false }
        };
        #[cfg(not(CONFIG_JUMP_LABEL))]
        let on = __DDEBUG.enabled_slow();
        (on, &__DDEBUG)
    }};
}
pub(crate) use __ddbg_site;

/// `pr_debug` with dynamic debug: `ddbg!("queue {} ready\n", qid)`.
macro_rules! ddbg {
    ($fmt:literal $($arg:tt)*) => {{
        let (on, site) = $crate::dyndbg::__ddbg_site!($fmt);
        if on {
            site.print(format_args!($fmt $($arg)*));
        }
    }};
}
pub(crate) use ddbg;

/// `dev_dbg` with dynamic debug: `dev_ddbg!(dev, "queue {} ready\n", qid)`.
macro_rules! dev_ddbg {
    ($dev:expr, $fmt:literal $($arg:tt)*) => {{
        let (on, site) = $crate::dyndbg::__ddbg_site!($fmt);
        if on {
            site.dev_print($dev.as_ref(), format_args!($fmt $($arg)*));
        }
    }};
}
pub(crate) use dev_ddbg;
