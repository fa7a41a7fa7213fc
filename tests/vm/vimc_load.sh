# vimc_debayer registers its device with a device-managed pipeline that
# owns a media device; rmmod releases both through devres.
insmod_ours vimc_debayer
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
[ -d /sys/bus/faux/devices/vimc_debayer ] || fail "faux device vimc_debayer not registered"
# The media device, as media-ctl sees it: ours by driver name, model and
# bus info (set by the driver, not derived).
mdev=$(media_of vimc_debayer) || fail "no media device with driver vimc_debayer ($(ls /dev/media* 2>&1))"
info=$(media-ctl -d "$mdev" -p)
echo "$info" | sed -n '1,/^$/p'
echo "$info" | grep -q "^model *vimc_debayer$" || fail "model not vimc_debayer"
echo "$info" | grep -q "^bus info *platform:vimc_debayer$" || fail "bus info not platform:vimc_debayer"
rmmod vimc_debayer
dmesg_since | grep -q "faux_driver vimc_debayer: pipeline released" || fail "devres did not release the pipeline"
[ ! -e /sys/bus/faux/devices/vimc_debayer ] || fail "faux device still present after rmmod"
[ ! -e "$mdev" ] || ! media-ctl -d "$mdev" -p 2>/dev/null | grep -q "^driver *vimc_debayer$" ||
	fail "$mdev still there after rmmod"
