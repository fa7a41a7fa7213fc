# Dynamic debug for our Rust call sites: the control file lists them with the
# right file, line, function and format, and every selector drives them.
CTRL=/sys/kernel/debug/dynamic_debug/control
bdf=$(nvme_bdfs | head -n1)
[ -n "$bdf" ] || fail "needs an NVMe controller"
# Two sites in two files: "probing" in the crate root, "CAP" in the
# controller's bring-up.
src=$REPO/nvme_dbbuf.rs src_cap=$REPO/nvme_dbbuf/nvme_dev.rs
l_probe=$(grep -n 'ddbg!("probing' "$src" | cut -d: -f1)
# A call site's line is the line of the macro's name (rustfmt may wrap it).
l_cap=$(awk '/dev_ddbg!\(/ {l = NR} /"CAP \{/ {print l; exit}' "$src_cap")
[ -n "$l_probe" ] && [ -n "$l_cap" ] || fail "call sites not found in $src and $src_cap"
# The function each site is in, by the nearest "fn NAME" above it.
fn_of() { head -n "$2" "$1" | grep -oE '\bfn [a-z_0-9]+' | tail -n1 | cut -d' ' -f2; }
f_probe=$(fn_of "$src" "$l_probe")
f_cap=$(fn_of "$src_cap" "$l_cap")
[ "$f_probe" != "$f_cap" ] || fail "test expects the two sites in different functions"

rebind() { # unbind + bind runs probe, which reaches both call sites
	pci_unbind "$bdf"
	mark
	pci_bind "$bdf" nvme_dbbuf
	wait_dmesg "nvme_dbbuf $bdf: NVMe controller version" 30 || fail "probe did not finish"
}
probe_msg() { dmesg_since | grep -q "nvme_dbbuf: probing"; }
cap_msg() { dmesg_since | grep -q "nvme_dbbuf $bdf: CAP 0x"; }
expect() { # expect <probe 0|1> <cap 0|1> <what>
	rebind
	local p=0 c=0
	probe_msg && p=1
	cap_msg && c=1
	[ "$p$c" = "$1$2" ] || { dmesg_since; fail "$3: probing=$p CAP=$c, want $1$2"; }
	log "ok: $3"
}
ctl() { echo "$1" >"$CTRL" || fail "control rejected '$1'"; }
# After a -p: no site of ours left enabled, read from the control file (the
# prints obeying the flags is what the rebinds of "+p" and "all off" show;
# a rebind per -p would only repeat "all off").
all_off() {
	local on
	on=$(grep '\[nvme_dbbuf\]' "$CTRL" | grep -v ' =_ ' || true)
	[ -z "$on" ] || { echo "$on"; fail "$1: sites still enabled"; }
	log "ok: $1"
}

insmod_ours nvme_dbbuf
# 1. The control file lists our sites correctly.
lines=$(grep '\[nvme_dbbuf\]' "$CTRL")
echo "$lines" | sed 's/^/    /'
echo "$lines" | grep -qE "nvme_dbbuf\.rs:$l_probe \[nvme_dbbuf\]$f_probe =_ \"probing \{:\?\}(\\\\n|\\\\012)\"" ||
	fail "probing site not listed as file:$l_probe [nvme_dbbuf]$f_probe =_ \"probing {:?}\\n\""
echo "$lines" | grep -qE "nvme_dev\.rs:$l_cap \[nvme_dbbuf\]$f_cap =_ \"CAP " || fail "CAP site not listed as nvme_dev.rs:$l_cap [nvme_dbbuf]$f_cap"
[ "$(grep -c '\[nvme_dbbuf\]' "$CTRL")" -ge 2 ] || fail "expected at least 2 sites"

# 2. Each selector turns a known message on and off.
expect 0 0 "all off by default"
ctl "module nvme_dbbuf +p"; expect 1 1 "module +p"
ctl "module nvme_dbbuf -p"; all_off "module -p"
ctl "file nvme_dbbuf.rs +p"; expect 1 0 "file nvme_dbbuf.rs +p"
ctl "file nvme_dbbuf.rs -p"; all_off "file nvme_dbbuf.rs -p"
ctl "file nvme_dev.rs +p"; expect 0 1 "file nvme_dev.rs +p"
ctl "file nvme_dev.rs -p"; all_off "file nvme_dev.rs -p"
ctl "file nvme_dev.rs line $l_cap +p"; expect 0 1 "file line $l_cap +p"
ctl "file nvme_dev.rs line $l_cap -p"; all_off "file line -p"
ctl "func $f_probe +p"; expect 1 0 "func $f_probe +p"
ctl "func $f_probe -p"; all_off "func $f_probe -p"
ctl "func $f_cap +p"; expect 0 1 "func $f_cap +p"
ctl "func $f_cap -p"; all_off "func $f_cap -p"
ctl 'format "CAP " +p'; expect 0 1 "format +p"
ctl 'format "CAP " -p'; all_off "format -p"

# 3. +mflt decorates the message with module, function, line and thread id.
ctl "file nvme_dev.rs line $l_cap +pmflt"
rebind
dmesg_since | grep -E "\[[0-9]+\] nvme_dbbuf:$f_cap:$l_cap: nvme_dbbuf $bdf: CAP 0x" ||
	{ dmesg_since | grep CAP; fail "+mflt prefix missing"; }
ctl "module nvme_dbbuf =_"

# 4. dyndbg= at load time.
rmmod_settled nvme_dbbuf
mark
insmod_ours nvme_dbbuf 'dyndbg=+p'
wait_dmesg "nvme_dbbuf $bdf: NVMe controller version" 30 || fail "no probe after insmod"
probe_msg && cap_msg || fail "dyndbg=+p at insmod did not enable the sites"
rmmod_settled nvme_dbbuf

# 5. With everything off, a workload prints no debug line of ours.
insmod_ours nvme_dbbuf
mark
pci_unbind "$bdf"
pci_bind "$bdf" nvme_dbbuf
insmod_ours vimc_debayer
rmmod vimc_debayer
sleep 1
dbg=$(dmesg -x | awk '/rfl-test-(mark|begin)/ {n = 0; next} {l[n++] = $0} END {for (i = 0; i < n; i++) print l[i]}' | grep -E ':debug :.*(nvme_dbbuf|vimc_debayer)' || true)
[ -z "$dbg" ] || { echo "$dbg"; fail "debug lines printed while every site is off"; }
rmmod_settled nvme_dbbuf
