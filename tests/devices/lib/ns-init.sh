#!/bin/bash
# Namespace holder of one simulated device. Started by start_holder (lib/
# common.sh) as `unshare -m -u --propagation private bash ns-init.sh DEV`:
# builds the device's private view of the filesystem, then sleeps so that the
# namespace outlives restarts of the device's sshd (which enters it with
# nsenter) and of its tunnel.
#
# Private to the device: /run (with the device dir at /run/sftca-device),
# /var/sf, /var/log, /var/tmp, /tmp, /home, /root, /usr/local/sbin (pmtool),
# /etc/passwd, /etc/shadow, /etc/group, the hostname, and on an FMC
# stand-in /etc/sf. It also boots the
# tunnel (pmtool boot).
set -euo pipefail

DEV=$1
NS_DEV=/run/sftca-device
# shellcheck disable=SC1091
. "$DEV/device.env"

hostname "$NAME"

# bind_dir SRC DST: DST must be a directory that exists in this view.
bind_dir() { mount --bind "$1" "$2"; }

# shadow_dir DIR KEEP_OUT...: cover DIR with a tmpfs that shows every entry
# of the original again, as a symlink into a bind mount of the original,
# except the names in KEEP_OUT, which the caller fills with private ones.
# Lets the device have /var/sf without creating /var/sf on the host, in a
# handful of commands (starting 100 devices forks each of these 100 times).
shadow_dir() {
	local dir=$1 orig
	shift
	orig=$NS_DEV/ns/${dir//\//_}
	mkdir -p "$orig"
	mount --bind "$dir" "$orig"
	mount -t tmpfs -o mode=0755,size=4m "sftca-${dir//\//_}" "$dir"
	shopt -s nullglob dotglob
	ln -s "$orig"/* "$dir"/
	shopt -u nullglob dotglob
	[ $# -eq 0 ] || (cd "$dir" && rm -f -- "$@")
}

# The device dir first, at a fixed path: it usually lives under /tmp, which
# is covered further down.
mount -t tmpfs -o mode=0755,size=16m sftca-run /run
mkdir -p /run/sshd "$NS_DEV"
mkdir -m 1777 /run/lock
bind_dir "$DEV" "$NS_DEV"

shadow_dir /var sf log tmp
mkdir /var/sf /var/log
mkdir -m 1777 /var/tmp
bind_dir "$NS_DEV/varsf" /var/sf
bind_dir "$NS_DEV/varlog" /var/log
bind_dir "$NS_DEV/vartmp" /var/tmp

if [ -d /usr/local/sbin ]; then
	bind_dir "$NS_DEV/bin" /usr/local/sbin
else
	shadow_dir /usr/local sbin
	mkdir /usr/local/sbin
	bind_dir "$NS_DEV/bin" /usr/local/sbin
fi
[ -d /home ] && bind_dir "$NS_DEV/home" /home
[ -d /root ] && bind_dir "$NS_DEV/root" /root
# A device made an FMC (device-ctl.sh ... fmc-tree) has its own /etc/sf:
# bound over the host's when there is one, else /etc is shadowed as /var is.
if [ -d "$NS_DEV/etcsf" ]; then
	if [ -d /etc/sf ]; then
		bind_dir "$NS_DEV/etcsf" /etc/sf
	else
		shadow_dir /etc sf
		mkdir /etc/sf
		bind_dir "$NS_DEV/etcsf" /etc/sf
	fi
fi
for f in passwd shadow group; do
	mount --bind "$NS_DEV/etc/$f" "/etc/$f"
done
bind_dir "$NS_DEV/tmp" /tmp

# Boot: sftunnel comes up with the device when its files are there.
# In a subshell, so that it is not left as a zombie child of "sleep".
("$NS_DEV/lib/pmtool" boot >>"$NS_DEV/log/boot.log" 2>&1 &)

echo $$ >"$NS_DEV/run/holder.pid"
: >"$NS_DEV/run/ready"
exec sleep infinity
