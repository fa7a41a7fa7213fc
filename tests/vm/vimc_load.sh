# vimc_debayer registers its device with a device-managed pipeline that
# owns a media device; rmmod releases both through devres, and the media
# device and its graph go when the V4L2 device's last reference does.
mark
insmod_ours vimc_debayer dyndbg=+p
wait_dmesg "faux_driver vimc_debayer: pipeline ready" 30 || fail "no 'pipeline ready' line"
[ -d /sys/bus/faux/devices/vimc_debayer ] || fail "faux device vimc_debayer not registered"
# The media device, as media-ctl sees it: ours by driver name, model and
# bus info (set by the driver, not derived).
mdev=$(media_of vimc_debayer) || fail "no media device with driver vimc_debayer ($(ls /dev/media* 2>&1))"
info=$(media-ctl -d "$mdev" -p)
echo "$info" | sed -n '1,/^$/p'
echo "$info" | grep -q "^model *vimc_debayer$" || fail "model not vimc_debayer"
echo "$info" | grep -q "^bus info *platform:vimc_debayer$" || fail "bus info not platform:vimc_debayer"
dmesg_since | grep -q "vimc_debayer: media device initialised" || fail "no 'media device initialised' line"
mark
rmmod vimc_debayer
dmesg_since | grep -q "faux_driver vimc_debayer: pipeline released" || fail "devres did not release the pipeline"
# After the pipeline: the registration's put was the last reference (every
# node's, taken at registration, went back when it was unregistered).
dmesg_since | sed -n '/pipeline released/,$p' | grep -q "vimc_debayer: media device released" ||
	fail "the V4L2 device's release did not run at rmmod (a reference leaked)"
[ ! -e /sys/bus/faux/devices/vimc_debayer ] || fail "faux device still present after rmmod"
[ ! -e "$mdev" ] || ! media-ctl -d "$mdev" -p 2>/dev/null | grep -q "^driver *vimc_debayer$" ||
	fail "$mdev still there after rmmod"
