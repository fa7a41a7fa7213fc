# vimc_debayer registers its device with a device-managed pipeline, and
# rmmod releases it through devres.
insmod_ours vimc_debayer
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 5 || fail "no 'pipeline ready' line"
[ -d /sys/bus/faux/devices/vimc_debayer ] || fail "faux device vimc_debayer not registered"
rmmod vimc_debayer
dmesg_since | grep -q "faux_driver vimc_debayer: pipeline released" || fail "devres did not release the pipeline"
[ ! -e /sys/bus/faux/devices/vimc_debayer ] || fail "faux device still present after rmmod"
