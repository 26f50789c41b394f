# shellcheck shell=bash
# Host-side helpers shared by start-devices.sh, stop-devices.sh,
# device-ctl.sh and selftest.sh. Sourced, never run.
#
# Inside a device's mount namespace the device directory is always visible
# at $NS_DEV (bound there by ns-init.sh), so everything that runs inside the
# device uses that fixed path and never the host path of the state dir.

# shellcheck disable=SC2034 # used by the scripts that source this file
DEVICES_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
NS_DEV=/run/sftca-device
STATE_MARKER=.sftca-devices
SSHD=${SSHD:-/usr/sbin/sshd}
SFTP_SERVER=${SFTP_SERVER:-/usr/lib/openssh/sftp-server}
# Processes started for a device get this environment and nothing of the
# caller's (a sanitizer LD_PRELOAD or OPENSSL_CONF must not leak in).
DEVICE_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)

PROG=${PROG:-${0##*/}}
die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }
warn() { echo "$PROG: warning: $*" >&2; }

require_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (mount namespaces, bind mounts and sshd need it)"
}

# require_tools CMD...: fail naming every missing command at once.
require_tools() {
	local missing=() c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	[ ${#missing[@]} -eq 0 ] ||
		die "missing commands: ${missing[*]} (Debian: openssh-server openssh-client openssl util-linux iproute2 procps perl-base)"
}

require_device_tools() {
	require_tools openssl ssh-keygen unshare nsenter setsid setpriv flock mountpoint ss ps perl sha256sum
	[ -x "$SSHD" ] || die "$SSHD not found: install openssh-server"
	[ -x "$SFTP_SERVER" ] || die "$SFTP_SERVER not found: install openssh-server"
}

utc_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# check_state_dir DIR: DIR must have been made by start-devices.sh.
check_state_dir() {
	[ -d "$1" ] || die "state directory $1 does not exist"
	[ -e "$1/$STATE_MARKER" ] || die "$1 is not a device state directory (no $STATE_MARKER); was it made by start-devices.sh?"
}

# state_devices DIR: device directories of a state dir, sorted by name.
state_devices() {
	local d
	for d in "$1"/*/device.env; do
		[ -e "$d" ] && echo "${d%/device.env}"
	done
	return 0
}

# device_dir STATE NAME: the directory of one device, or die.
device_dir() {
	local dev=$1/$2
	[ -e "$dev/device.env" ] || die "no device named \"$2\" in $1 (devices: $(state_devices "$1" | xargs -rn1 basename | xargs))"
	echo "$dev"
}

# load_device DEV: NAME IP SSH_PORT TUNNEL_PORT UUID SHELL_KIND FMC_UUID ADMIN_USER ...
load_device() {
	# shellcheck disable=SC1091
	. "$1/device.env"
}

# Fingerprint of a device: the inode of its varsf directory. A process
# belongs to the device exactly when its /var/sf is that directory, which
# holds for every process started in the device's namespace (sshd, its
# sessions, the tunnel) and for nothing else, even after a crash left stale
# pid files behind.
device_key() { stat -c '%d:%i' "$1/varsf" 2>/dev/null; }

# scan_namespaces: "DEV:INO PID" for every process that has a /var/sf.
scan_namespaces() {
	local paths=(/proc/[0-9]*/root/var/sf)
	[ -e "${paths[0]}" ] || return 0
	stat -L -c '%d:%i %n' "${paths[@]}" 2>/dev/null |
		sed -n 's#^\([0-9]*:[0-9]*\) /proc/\([0-9]*\)/root/var/sf$#\1 \2#p' || true
}

# device_pids DEV...: pids of every process belonging to those devices.
# Two stat calls in all, however many devices and processes.
device_pids() {
	local keys=() paths=() d
	for d in "$@"; do paths+=("$d/varsf"); done
	[ ${#paths[@]} -gt 0 ] || return 0
	mapfile -t keys < <(stat -c '%d:%i' "${paths[@]}" 2>/dev/null || true)
	[ ${#keys[@]} -gt 0 ] || return 0
	scan_namespaces | awk -v keys="${keys[*]}" -v self=$$ '
		BEGIN { n = split(keys, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		($1 in want) && $2 != self { print $2 }'
}

# stop_devices DEV...: end every process of those devices; idempotent.
# TERM first (CONT too, so a frozen device can act on it), KILL after 3 s.
# The processes are looked up again on every round, so a session forked
# while sshd was going down is caught as well.
stop_devices() {
	local pids d sig=TERM term_until=$((SECONDS + 3)) kill_until=$((SECONDS + 6))
	while :; do
		mapfile -t pids < <(device_pids "$@")
		[ ${#pids[@]} -eq 0 ] && break
		[ $SECONDS -ge "$term_until" ] && sig=KILL
		if [ $SECONDS -ge "$kill_until" ]; then
			warn "processes survived SIGKILL: ${pids[*]}"
			return 1
		fi
		kill -"$sig" "${pids[@]}" 2>/dev/null || true
		[ $sig = TERM ] && { kill -CONT "${pids[@]}" 2>/dev/null || true; }
		sleep 0.05
	done
	for d in "$@"; do
		rm -f "$d/run/holder.pid" "$d/run/sshd.pid" "$d/run/sftunnel.pid" "$d/run/ready"
	done
}

# holder_pid DEV: pid of the live namespace holder of DEV (verified), or fail.
holder_pid() {
	local pid key
	pid=$(cat "$1/run/holder.pid" 2>/dev/null) || return 1
	key=$(device_key "$1") || return 1
	[ "$(stat -L -c '%d:%i' "/proc/$pid/root/var/sf" 2>/dev/null)" = "$key" ] || return 1
	echo "$pid"
}

# in_device DEV CMD...: run CMD as root inside the device's namespaces.
in_device() {
	local dev=$1 pid
	shift
	pid=$(holder_pid "$dev") || die "device $(basename "$dev") is not running"
	"${DEVICE_ENV[@]}" nsenter -t "$pid" -m -u -- "$@"
}

# listeners: "ADDR:PORT" of every listening TCP socket (IPv6 in brackets).
listeners() { ss -Hltn | awk '{ print $4 }'; }

# port_conflict IP PORT < listeners: prints the listener that stops a bind
# to IP:PORT (the exact address, or a wildcard on that port).
port_conflict() {
	awk -v ip="$1" -v port="$2" '
		$0 == ip ":" port || $0 == "0.0.0.0:" port || $0 == "*:" port || $0 == "[::]:" port { print; exit }'
}

# start_holder DEV: start the namespace holder in the background.
start_holder() {
	local dev=$1
	rm -f "$dev/run/ready" "$dev/run/holder.pid"
	# In a subshell, so it is not a job of the caller (whose "wait" would
	# otherwise wait for it forever).
	("${DEVICE_ENV[@]}" setsid unshare -m -u --propagation private -- \
		bash "$dev/lib/ns-init.sh" "$dev" </dev/null >>"$dev/log/holder.log" 2>&1 &)
}

# wait_files TIMEOUT FILE...: wait until every FILE exists.
wait_files() {
	local deadline=$((SECONDS + $1)) f missing
	shift
	while :; do
		missing=
		for f in "$@"; do
			[ -e "$f" ] || { missing=$f; break; }
		done
		[ -z "$missing" ] && return 0
		[ $SECONDS -ge $deadline ] && { echo "$missing"; return 1; }
		sleep 0.05
	done
}

# start_sshd DEV: start (or restart) the device's sshd in its namespace.
start_sshd() {
	local dev=$1 pid
	pid=$(holder_pid "$dev") || die "device $(basename "$dev"): namespace holder is not running"
	rm -f "$dev/run/sshd.pid"
	("${DEVICE_ENV[@]}" setsid nsenter -t "$pid" -m -u -- \
		"$SSHD" -D -e -f "$NS_DEV/sshd_config" </dev/null >>"$dev/log/sshd.log" 2>&1 &)
}

# sshd_pid DEV: pid of the device's listening sshd, verified.
sshd_pid() {
	local pid
	pid=$(cat "$1/run/sshd.pid" 2>/dev/null) || return 1
	[ "$(stat -L -c '%d:%i' "/proc/$pid/root/var/sf" 2>/dev/null)" = "$(device_key "$1")" ] || return 1
	grep -qa -- "-f" "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

# wait_listening TIMEOUT ADDR:PORT...: wait until all are listening; on
# timeout print the ones that are not.
wait_listening() {
	local deadline=$((SECONDS + $1)) a missing
	shift
	while :; do
		missing=()
		local now
		now=$(listeners)
		for a in "$@"; do
			grep -qxF -- "$a" <<<"$now" || missing+=("$a")
		done
		[ ${#missing[@]} -eq 0 ] && return 0
		if [ $SECONDS -ge $deadline ]; then
			echo "${missing[*]}"
			return 1
		fi
		sleep 0.05
	done
}

# known_hosts_lines DEV: OpenSSH known_hosts lines for the device's current
# host keys ([ip]:port notation when the port is not 22).
known_hosts_lines() {
	local dev=$1 host f
	load_device "$dev"
	if [ "$SSH_PORT" = 22 ]; then host=$IP; else host="[$IP]:$SSH_PORT"; fi
	for f in "$dev"/ssh/ssh_host_*_key.pub; do
		[ -e "$f" ] || continue
		awk -v h="$host" '{ print h, $1, $2 }' "$f"
	done
}

# csv_field VALUE: RFC 4180 quoting when the value needs it.
csv_field() {
	case $1 in
	*[,\"]* | *$'\r'*) printf '"%s"' "${1//\"/\"\"}" ;;
	*) printf '%s' "$1" ;;
	esac
}

# tail_logs DEV: the end of a device's logs, to explain a failure.
tail_logs() {
	local f
	for f in "$1"/log/*.log; do
		[ -s "$f" ] || continue
		echo "----- $f (last 15 lines)" >&2
		tail -n 15 "$f" >&2
	done
}
