# A real WARN from our module (guest side): vimc_debayer's test knob raises
# it; the trace is saved for tests/vm/decode_oops.host, which decodes it on
# the host (addr2line over a 200 MB vmlinux takes minutes under TCG).  The
# by-hand nm + addr2line recipe of Documentation/debugging.rst runs here.
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
# By hand: the RIP frame's symbol offset from nm, plus the frame offset, through addr2line.
rip=$(grep -o 'RIP: [0-9a-f]*:[^ ]*+0x[0-9a-f]*/0x[0-9a-f]* \[vimc_debayer\]' "$REPO/build/vm/warn-trace.txt" | head -n1)
[ -n "$rip" ] || fail "no RIP frame in vimc_debayer"
sym=$(sed 's/RIP: [0-9a-f]*:\([^+]*\)+.*/\1/' <<<"$rip")
off=$(sed 's/.*+\(0x[0-9a-f]*\)\/.*/\1/' <<<"$rip")
base=$(nm "$REPO/vimc_debayer.ko" | awk -v s="$sym" '$3 == s {print $1}')
[ -n "$base" ] || fail "nm: no $sym in vimc_debayer.ko"
where=$(addr2line -f -i -C -j .text -e "$REPO/vimc_debayer.ko" "$(printf '0x%x' $((0x$base + off)))")
log "by hand: nm $sym = 0x$base, + $off -> $(echo $where)"
grep -q "vimc_debayer.rs:$want_line\$" <<<"$where" || fail "addr2line by hand gave '$where', want vimc_debayer.rs:$want_line"
rmmod vimc_debayer
