# SPDX-License-Identifier: GPL-2.0
#
# Kbuild file and top-level Makefile in one.
#
#   make [KDIR=<kernel tree>] [LLVM=1]   build nvme_dbbuf.ko and vimc_debayer.ko
#   make check                           every test (host, build/lint, VM); the README's test command
#   make demo                            boot the VM: doorbell numbers and a PNG frame
#   make bench                           benchmarks into build/bench/*.json
#   make modules_install                 install into /lib/modules/<release>/updates (then modprobe)
#   make clean

ifneq ($(KERNELRELEASE),)
# ---- Kbuild part (read by the kernel's build system) -------------------------
# Out of tree there is no .config entry for us: build both as modules.
ifneq ($(KBUILD_EXTMOD),)
CONFIG_RUST_NVME_DBBUF ?= m
CONFIG_RUST_VIMC_DEBAYER ?= m
endif
obj-$(CONFIG_RUST_NVME_DBBUF) += nvme_dbbuf.o
obj-$(CONFIG_RUST_VIMC_DEBAYER) += vimc_debayer.o

# Dynamic debug wants each call site's function name; Rust has no
# compile-time __func__, so a table generated from the sources supplies it
# (tools/dyndbg-funcs, looked up by common/dyndbg_core.rs).
quiet_cmd_dyndbg_funcs = GEN     $@
      cmd_dyndbg_funcs = $(src)/tools/dyndbg-funcs $(src) $(filter %.rs,$^) > $@
define dyndbg_funcs_rule
$(obj)/$(1).o: $(obj)/$(1).dyndbg.rs
$(obj)/$(1).dyndbg.rs: $(src)/$(1).rs $(wildcard $(src)/$(1)/*.rs) $(wildcard $(src)/common/*.rs) $(src)/tools/dyndbg-funcs FORCE
	$$(call if_changed,dyndbg_funcs)
targets += $(1).dyndbg.rs
RUSTFLAGS_$(1).o += --env-set=RFL_DYNDBG_FUNCS=$(abspath $(obj))/$(1).dyndbg.rs
endef
$(eval $(call dyndbg_funcs_rule,nvme_dbbuf))
$(eval $(call dyndbg_funcs_rule,vimc_debayer))

# Media/V4L2/videobuf2 bindings for vimc_debayer (the kernel crate has none),
# generated with the kernel's bindgen parameters and this object's C flags.
quiet_cmd_media_bindgen = BINDGEN $@
      cmd_media_bindgen = BINDGEN=$(BINDGEN) $(src)/tools/media-bindgen $< $@ \
	$(objtree)/rust/bindings/bindings_generated.rs $(srctree)/rust/bindgen_parameters -- $(c_flags)
$(obj)/vimc_debayer.media.rs: $(src)/vimc_debayer/media_helper.h $(src)/tools/media-bindgen FORCE
	$(call if_changed_dep,media_bindgen)
targets += vimc_debayer.media.rs
$(obj)/vimc_debayer.o: $(obj)/vimc_debayer.media.rs
RUSTFLAGS_vimc_debayer.o += --env-set=RFL_MEDIA_BINDINGS=$(abspath $(obj))/vimc_debayer.media.rs

else
# ---- User-facing part -----------------------------------------------------------
RFL_CACHE ?= $(HOME)/.cache/rfl-bench
# Without KDIR, use the tree tools/setup built (it keeps a link to it).
KDIR ?= $(shell readlink -f $(RFL_CACHE)/tree 2>/dev/null)
LLVM ?= 1
export PATH := /usr/lib/llvm-22/bin:$(HOME)/.cargo/bin:$(PATH)

PWD := $(shell pwd)
KMAKE = $(MAKE) -C $(KDIR) M=$(PWD) LLVM=$(LLVM)

.PHONY: all modules clean modules_install check demo bench setup need-kdir

all modules: need-kdir
	$(KMAKE) modules

need-kdir:
	@test -n "$(KDIR)" -a -f "$(KDIR)/Makefile" || \
		{ echo "No kernel tree: run tools/setup, or pass KDIR=/path/to/built/linux" >&2; exit 1; }

modules_install: need-kdir
	$(KMAKE) modules_install

clean:
	@if [ -n "$(KDIR)" ] && [ -f "$(KDIR)/Makefile" ]; then $(KMAKE) clean; fi
	rm -rf build tests/host/target

setup:
	tools/setup

check:
	tests/run-all

demo:
	tools/demo

bench:
	tools/bench
endif
