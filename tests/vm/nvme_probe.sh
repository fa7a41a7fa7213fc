# nvme_dbbuf binds every emulated controller, logs the version and CAP.MQES
# the controller's own registers hold (read before our driver touches it),
# and unbinds cleanly on rmmod.
bdfs=$(nvme_bdfs)
[ -n "$bdfs" ] || fail "no NVMe controller in the guest (tools/vm --nvme N)"
declare -A want_vs want_mqes
for bdf in $bdfs; do
	[ -z "$(pci_driver "$bdf")" ] || fail "$bdf already bound to $(pci_driver "$bdf")"
	setpci -s "$bdf" COMMAND=0x02:0x02 # memory decoding, so BAR0 can be read unbound
	vs=$(bar0_read "$bdf" 0x8 4)
	cap=$(bar0_read "$bdf" 0x0 8)
	want_vs[$bdf]="$((vs >> 16)).$(((vs >> 8) & 0xff)).$((vs & 0xff))"
	want_mqes[$bdf]=$((cap & 0xffff))
	log "$bdf: BAR0 says VS ${want_vs[$bdf]}, CAP.MQES ${want_mqes[$bdf]}"
done

insmod_ours nvme_dbbuf
for bdf in $bdfs; do
	wait_dmesg "nvme_dbbuf $bdf: NVMe controller version" 30 || fail "$bdf: no probe line"
	line=$(dmesg_since | grep "nvme_dbbuf $bdf: NVMe controller version")
	log "$line"
	got_vs=$(sed -n 's/.*controller version \([0-9.]*\),.*/\1/p' <<<"$line")
	got_mqes=$(sed -n 's/.*CAP.MQES \([0-9]*\) .*/\1/p' <<<"$line")
	[ "$got_vs" = "${want_vs[$bdf]}" ] || fail "$bdf: logged version '$got_vs', controller has '${want_vs[$bdf]}'"
	[ "$got_mqes" = "${want_mqes[$bdf]}" ] || fail "$bdf: logged MQES '$got_mqes', controller has '${want_mqes[$bdf]}'"
	[ "$(pci_driver "$bdf")" = nvme_dbbuf ] || fail "$bdf: bound to '$(pci_driver "$bdf")'"
done

rmmod nvme_dbbuf
for bdf in $bdfs; do
	dmesg_since | grep -q "nvme_dbbuf $bdf: unbound" || fail "$bdf: no unbind line"
	[ -z "$(pci_driver "$bdf")" ] || fail "$bdf still bound after rmmod"
done
