# A real WARN from our module (guest side): vimc_debayer's test knob raises
# it; the trace is saved for tests/vm/decode_oops.host, which decodes it on
# the host, with tools/decode-oops and by hand (the nm + addr2line recipe
# of Documentation/debugging.rst): addr2line over the module's or the
# kernel's debug information takes minutes under TCG.
src=$REPO/vimc_debayer.rs
want_line=$(grep -n 'warn_on!(.*); // decode-oops test target' "$src" | cut -d: -f1)
[ -n "$want_line" ] || fail "WARN target not found in $src"
insmod_ours vimc_debayer
mark
expect_splat_begin
echo 1 >/sys/kernel/debug/vimc_debayer/inject_warn
wait_dmesg "end trace" 30 || fail "no complete WARN trace after writing inject_warn"
dmesg_since >"$REPO/build/vm/warn-trace.txt"
expect_splat_end
sed -n '/cut here/,/end trace/p' "$REPO/build/vm/warn-trace.txt" | head -n 40
grep -q 'RIP: [0-9a-f]*:[^ ]*+0x[0-9a-f]*/0x[0-9a-f]* \[vimc_debayer\]' "$REPO/build/vm/warn-trace.txt" ||
	fail "no RIP frame in vimc_debayer"
rmmod vimc_debayer
