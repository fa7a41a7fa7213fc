# tools/decode-oops on a real WARN from our module names the right .rs file
# and line, and resolves a vmlinux frame to the right kernel source file.
src=$REPO/vimc_debayer.rs
want_line=$(grep -n 'warn_on!(true); // decode-oops test target' "$src" | cut -d: -f1)
[ -n "$want_line" ] || fail "WARN target not found in $src"
insmod_ours vimc_debayer
mark
expect_splat_begin
echo 1 >/sys/kernel/debug/vimc_debayer/inject_warn
wait_dmesg "end trace" 10 || fail "no complete WARN trace after writing inject_warn"
dmesg_since >/tmp/warn-trace.txt
expect_splat_end
"$REPO/tools/decode-oops" --ko-dir "$REPO" /tmp/warn-trace.txt >/tmp/warn-decoded.txt
cat /tmp/warn-decoded.txt | sed -n '/WARNING/,/end trace/p' | head -n 60
# The RIP frame is in our module: decoded to vimc_debayer.rs:<line of warn_on!>.
grep -A3 'RIP: .*\[vimc_debayer\]' /tmp/warn-decoded.txt | grep -q -- "-> vimc_debayer.rs:$want_line " ||
	fail "RIP frame not decoded to vimc_debayer.rs:$want_line"
# A vmlinux frame: the write syscall path resolves into fs/read_write.c.
grep -A3 ' vfs_write+0x' /tmp/warn-decoded.txt | grep -q -- '-> .*fs/read_write.c:[0-9]' ||
	fail "vfs_write frame not decoded to fs/read_write.c"
rmmod vimc_debayer
