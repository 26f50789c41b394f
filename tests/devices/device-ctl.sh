#!/bin/bash
# Inspect one simulated device and switch its faults on and off.
set -euo pipefail
PROG=device-ctl.sh
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
	cat <<EOF
Usage: $PROG STATE NAME COMMAND [ARGS]

STATE is a directory made by start-devices.sh, NAME a device in it (ftd-01).

Inspect:
  status                 running or not, pids, shell, faults that are on
  files                  the peer directory /var/sf/peers/<FMC-UUID>/: mode,
                         size, sha256 and, for certificates, subject, serial
                         and notAfter
  untouched              exit 0 when the unrelated files (LL-caCert.pem,
                         sftunnel.json, peer_flags.json, sync2/) are unchanged
  restarts               how many "pmtool restartbyid sftunnel" succeeded
  fired                  how many times a cut-transfer fault fired
  known-hosts            known_hosts line(s) for the current host key(s)
  dir                    the device directory
  run CMD [ARG...]       run CMD as root inside the device (its namespace)

Faults (each stays until switched off; stop/start keeps them):
  stop | start           the device is down (every process ends: connection
                         refused, no tunnel) / up again (tunnel restarted)
  freeze | thaw          SIGSTOP / SIGCONT every process of the device: TCP
                         connects but nothing answers (timeouts)
  readonly on|off        /var/sf/peers/<FMC-UUID> becomes a read-only mount
                         inside the device: even root gets EROFS
  rekey-host             new host key(s) and an sshd restart (sessions stay);
                         prints the new known_hosts line(s)
  cut-transfer --after-bytes N | --at-write K | --marker TEXT [--once] [--stall]
  cut-transfer off       drop the SSH connection mid-upload, without an SSH
                         disconnect: on a direct device after N bytes of the
                         client's SFTP or exec (cat >f, scp -O) input, or at
                         its K-th SSH_FXP_WRITE (what came before is written
                         to disk first); on an ftd device after N bytes of
                         typed input or at the first input line containing
                         TEXT (that line is not run). --once switches it
                         off once it has fired. --stall (direct devices):
                         keep the connection up but answer nothing more.
  hostile drip|osc|off   a device that attacks its client: drip (ftd devices)
                         answers sftca's next framed command with its end
                         marker, then one digit every 2 s for ever; osc:
                         "pmtool restartbyid sftunnel" prints terminal
                         control sequences (OSC title and clipboard, CSI,
                         C1, BEL) and exits 1
  pmtool-fail on|off     "pmtool restartbyid sftunnel" fails with exit 1 and
                         leaves the tunnel as it was
  password FILE          new password for the login account (first line)

Identity (what the device says it is):
  version [--model TEXT] [--uuid UUID] | version default
                         what the ftd CLI's "show version" prints as Model
                         and UUID (default: an FTD model and the device's
                         own UUID)
  fmc [UUID]             the device is an FMC: show version's Model is
                         "Secure Firewall Management Center for VMware ..."
                         and its UUID is UUID (default: its own)
  fmc-tree FMC_ROOT      the device becomes the FMC itself: it is stopped,
                         given FMC_ROOT/etc/sf/ as its own /etc/sf and
                         FMC_ROOT/var/sf/peers/ as its /var/sf/peers/ (copies,
                         modes and owners kept), "show version" prints a
                         Management Center model and the FMC UUID, pmtool
                         records restarts (with the sha256 of the cacert.pem
                         it found) instead of running a tunnel; then started
  identity-file PATH [UUID|-]
                         write an identity file at PATH inside the device:
                         "UUID : <uuid>" (default: its own UUID); "-" reads
                         the file's content from stdin
EOF
}

case ${1:-} in -h | --help) usage; exit 0 ;; esac
[ $# -ge 3 ] || usage_error "STATE, NAME and COMMAND are required"
STATE=$1 NAME_ARG=$2 CMD=$3
shift 3
check_state_dir "$STATE"
DEV=$(device_dir "$STATE" "$NAME_ARG")
load_device "$DEV"
PEER_NS=/var/sf/peers/$FMC_UUID
PEER_HOST=$DEV/varsf/peers/$FMC_UUID
FAULTS=$DEV/faults

need_args() { [ $# -eq "$N_WANTED" ] || usage_error "$CMD: wrong number of arguments"; }
on_off() {
	[ $# -eq 1 ] && { [ "$1" = on ] || [ "$1" = off ]; } || usage_error "$CMD takes on or off"
}
running() { holder_pid "$DEV" >/dev/null; }
require_running() { running || die "$NAME is not running (device-ctl.sh $STATE $NAME start)"; }

# set_readonly: (re)apply the read-only bind mount inside the namespace.
set_readonly() {
	in_device "$DEV" sh -c "mountpoint -q '$PEER_NS' || mount --bind '$PEER_NS' '$PEER_NS'; mount -o remount,bind,ro '$PEER_NS'"
}

wait_port_free() {
	for _ in $(seq 100); do
		listeners | grep -qxF "$IP:$SSH_PORT" || return 0
		sleep 0.05
	done
	die "$IP:$SSH_PORT is still in use"
}

restart_sshd() {
	local pid
	if pid=$(sshd_pid "$DEV"); then
		kill -TERM "$pid"
		wait_port_free
	fi
	start_sshd "$DEV"
	wait_listening 10 "$IP:$SSH_PORT" >/dev/null || { tail_logs "$DEV"; die "sshd of $NAME did not come back"; }
}

start_device() {
	local busy missing
	if running && sshd_pid "$DEV" >/dev/null; then
		echo "$NAME is already running"
		return 0
	fi
	stop_devices "$DEV"
	for port in "$SSH_PORT" "$TUNNEL_PORT"; do
		busy=$(listeners | port_conflict "$IP" "$port")
		[ -z "$busy" ] || die "$IP:$port is in use (a socket listens on $busy)"
	done
	start_holder "$DEV"
	missing=$(wait_files 20 "$DEV/run/ready") || { tail_logs "$DEV"; stop_devices "$DEV"; die "namespace of $NAME did not come up"; }
	[ -e "$FAULTS/readonly" ] && set_readonly
	start_sshd "$DEV"
	wait_listening 10 "$IP:$SSH_PORT" >/dev/null || { tail_logs "$DEV"; stop_devices "$DEV"; die "sshd of $NAME did not start"; }
	# The holder boots the tunnel; say so when it did not come up.
	if [ -e "$PEER_HOST/sftunnel-cert.pem" ] && ! wait_listening 10 "$IP:$TUNNEL_PORT" >/dev/null; then
		warn "sftunnel of $NAME did not start (see $DEV/log/boot.log and $DEV/log/sftunnel.log)"
	fi
	if [ -e "$FAULTS/frozen" ]; then
		mapfile -t pids < <(device_pids "$DEV")
		kill -STOP "${pids[@]}"
	fi
	echo "$NAME started"
}

cert_info() {
	openssl x509 -in "$1" -noout -subject -serial -enddate -nameopt compat 2>/dev/null | paste -sd' ' -
}

show_files() {
	local f rel
	echo "$PEER_NS/ on $NAME ($PEER_HOST):"
	(cd "$PEER_HOST" && find . -mindepth 1 | LC_ALL=C sort) | while read -r rel; do
		f=$PEER_HOST/${rel#./}
		if [ -d "$f" ]; then
			printf '%s %8s %-16s %s/\n' "$(stat -c %A "$f")" - - "${rel#./}"
			continue
		fi
		printf '%s %8s %.16s %s' "$(stat -c %A "$f")" "$(stat -c %s "$f")" "$(sha256sum <"$f")" "${rel#./}"
		if grep -q 'BEGIN CERTIFICATE' "$f" 2>/dev/null; then
			printf '  [%s]' "$(cert_info "$f")"
		fi
		echo
	done
}

case $CMD in
status)
	N_WANTED=0 need_args "$@"
	if running; then
		echo "$NAME running: holder $(holder_pid "$DEV"), sshd $(sshd_pid "$DEV" || echo none) on $IP:$SSH_PORT, $(in_device "$DEV" "$NS_DEV/lib/pmtool" status)"
	else
		echo "$NAME stopped"
	fi
	echo "shell $SHELL_KIND, uuid $UUID, tunnel $IP:$TUNNEL_PORT"
	on=$(cd "$FAULTS" && ls) || true
	echo "faults on: ${on:-none}" | paste -sd' ' -
	[ -e "$FAULTS/cut-transfer" ] && sed 's/^/  cut-transfer /' "$FAULTS/cut-transfer"
	exit 0 ;;
files)
	N_WANTED=0 need_args "$@"
	show_files ;;
untouched)
	N_WANTED=0 need_args "$@"
	(cd "$PEER_HOST" && sha256sum --quiet -c "$DEV/unrelated.sha256") ;;
restarts)
	N_WANTED=0 need_args "$@"
	grep -c ' restartbyid sftunnel ok ' "$DEV/pmtool.log" || true ;;
fired)
	N_WANTED=0 need_args "$@"
	grep -c ' cut-transfer fired: ' "$DEV/faults.log" 2>/dev/null || true ;;
known-hosts)
	N_WANTED=0 need_args "$@"
	known_hosts_lines "$DEV" ;;
dir)
	N_WANTED=0 need_args "$@"
	echo "$DEV" ;;
run)
	[ $# -ge 1 ] || usage_error "run needs a command"
	require_running
	in_device "$DEV" "$@" ;;
stop)
	N_WANTED=0 need_args "$@"
	stop_devices "$DEV"
	# "stopped" must mean refused: a listener left on the device's address
	# (one the namespace scan did not find) is named, ended and waited for.
	for port in "$SSH_PORT" "$TUNNEL_PORT"; do
		mapfile -t left < <(ss -Hltnp "src $IP:$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
		[ ${#left[@]} -eq 0 ] && continue
		warn "$NAME: $IP:$port still listening after stop (pids ${left[*]}: $(ps -o pid=,args= -p "${left[@]}" | paste -sd';' -)); killing them"
		kill -KILL "${left[@]}" 2>/dev/null || true
	done
	wait_port_free
	echo "$NAME stopped" ;;
start)
	N_WANTED=0 need_args "$@"
	require_root
	start_device ;;
freeze | thaw)
	N_WANTED=0 need_args "$@"
	require_running
	mapfile -t pids < <(device_pids "$DEV")
	if [ "$CMD" = freeze ]; then
		: >"$FAULTS/frozen"
		kill -STOP "${pids[@]}"
	else
		rm -f "$FAULTS/frozen"
		kill -CONT "${pids[@]}"
	fi
	if [ "$CMD" = freeze ]; then echo "$NAME frozen"; else echo "$NAME thawed"; fi ;;
readonly)
	on_off "$@"
	require_running
	if [ "$1" = on ]; then
		: >"$FAULTS/readonly"
		set_readonly
	else
		rm -f "$FAULTS/readonly"
		in_device "$DEV" sh -c "while mountpoint -q '$PEER_NS'; do umount '$PEER_NS'; done"
	fi
	echo "$NAME readonly $1" ;;
rekey-host)
	N_WANTED=0 need_args "$@"
	require_running
	for pub in "$DEV"/ssh/ssh_host_*_key.pub; do
		key=${pub%.pub}
		type=${key##*/ssh_host_}
		type=${type%_key}
		rm -f "$key" "$pub"
		ssh-keygen -q -t "$type" -N '' -C "root@$NAME" -f "$key"
	done
	restart_sshd
	known_hosts_lines "$DEV" ;;
cut-transfer)
	[ $# -ge 1 ] || usage_error "cut-transfer needs --after-bytes N, --at-write K, --marker TEXT or off"
	if [ "$1" = off ]; then
		N_WANTED=1 need_args "$@"
		rm -f "$FAULTS/cut-transfer"
		echo "$NAME cut-transfer off"
		exit 0
	fi
	mode='' value='' once=0 stall=0
	while [ $# -gt 0 ]; do
		case $1 in
		--after-bytes | --at-write | --marker)
			[ $# -ge 2 ] || usage_error "$1 needs a value"
			[ -z "$mode" ] || usage_error "give only one of --after-bytes, --at-write, --marker"
			case $1 in --after-bytes) mode='bytes' ;; --at-write) mode='write' ;; --marker) mode='marker' ;; esac
			value=$2
			shift 2 ;;
		--once) once=1; shift ;;
		--stall) stall=1; shift ;;
		*) usage_error "cut-transfer: unknown argument \"$1\"" ;;
		esac
	done
	[ -n "$mode" ] || usage_error "cut-transfer needs --after-bytes N, --at-write K or --marker TEXT"
	if [ "$mode" = marker ]; then
		[ -n "$value" ] && [[ $value != *$'\n'* ]] || usage_error "--marker must be one non-empty line"
	else
		[[ $value =~ ^[0-9]+$ ]] && [ "$value" -ge 1 ] || usage_error "--after-bytes/--at-write need a positive number, not \"$value\""
	fi
	[ "$stall" = 0 ] || [ "$SHELL_KIND" = direct ] ||
		usage_error "--stall is for direct devices (SFTP and exec); $NAME is an ftd device"
	[ "$mode" != write ] || [ "$SHELL_KIND" = direct ] ||
		usage_error "--at-write counts SFTP write requests: $NAME is an ftd device without SFTP (use --after-bytes or --marker)"
	{
		echo "mode=$mode"
		if [ "$mode" = marker ]; then echo "marker=$value"; else echo "count=$value"; fi
		echo "once=$once"
		echo "stall=$stall"
	} >"$FAULTS/.cut-transfer.tmp"
	mv "$FAULTS/.cut-transfer.tmp" "$FAULTS/cut-transfer"
	echo "$NAME cut-transfer on ($mode $value$([ $once = 1 ] && echo ', once')$([ $stall = 1 ] && echo ', stall'))" ;;
hostile)
	[ $# -eq 1 ] && [[ $1 =~ ^(drip|osc|off)$ ]] || usage_error "hostile takes drip, osc or off"
	[ "$1" != drip ] || [ "$SHELL_KIND" = ftd ] || usage_error "hostile drip: $NAME is a direct device (drip needs the ftd shell)"
	if [ "$1" = off ]; then rm -f "$FAULTS/hostile"; else echo "$1" >"$FAULTS/hostile"; fi
	echo "$NAME hostile $1" ;;
pmtool-fail)
	on_off "$@"
	if [ "$1" = on ]; then : >"$FAULTS/pmtool-fail"; else rm -f "$FAULTS/pmtool-fail"; fi
	echo "$NAME pmtool-fail $1" ;;
version | fmc)
	model='' uuid=''
	if [ "$CMD" = fmc ]; then
		[ $# -le 1 ] || usage_error "fmc takes at most a UUID"
		model="Secure Firewall Management Center for VMware (66) Version 7.4.1 (Build 172)"
		uuid=${1:-}
	elif [ "${1:-}" = default ]; then
		N_WANTED=1 need_args "$@"
		rm -f "$DEV/version"
		echo "$NAME version default"
		exit 0
	else
		while [ $# -gt 0 ]; do
			case $1 in
			--model) [ $# -ge 2 ] || usage_error "--model needs a value"; model=$2; shift 2 ;;
			--uuid) [ $# -ge 2 ] || usage_error "--uuid needs a value"; uuid=$2; shift 2 ;;
			*) usage_error "version: unknown argument \"$1\"" ;;
			esac
		done
	fi
	[[ $model != *$'\n'* && $uuid != *$'\n'* ]] || usage_error "one line each"
	{
		[ -z "$model" ] || echo "MODEL=$model"
		[ -z "$uuid" ] || echo "UUID=$uuid"
	} >"$DEV/.version.tmp"
	mv "$DEV/.version.tmp" "$DEV/version"
	echo "$NAME show version: model ${model:-(FTD)}, uuid ${uuid:-$UUID}" ;;
fmc-tree)
	N_WANTED=1 need_args "$@"
	require_root
	src=$1
	[ -d "$src/etc/sf/ca_root" ] && [ -d "$src/var/sf/peers" ] ||
		usage_error "fmc-tree: $src has no etc/sf/ca_root/ and var/sf/peers/ (make-fmc-tree.sh makes one)"
	stop_devices "$DEV"
	wait_port_free
	rm -rf "$DEV/etcsf" "$DEV/varsf/peers"
	mkdir -p "$DEV/etcsf" "$DEV/varsf/peers"
	cp -a "$src/etc/sf/." "$DEV/etcsf/"
	cp -a "$src/var/sf/peers/." "$DEV/varsf/peers/"
	{
		echo "MODEL=Secure Firewall Management Center for VMware (66) Version 7.4.1 (Build 172)"
		echo "UUID=$FMC_UUID"
	} >"$DEV/.version.tmp"
	mv "$DEV/.version.tmp" "$DEV/version"
	: >"$DEV/fmc-tree"
	start_device >/dev/null
	echo "$NAME is the FMC $FMC_UUID (tree from $src)" ;;
identity-file)
	[ $# -ge 1 ] && [ $# -le 2 ] || usage_error "identity-file takes PATH [UUID|-]"
	[[ $1 == /* ]] || usage_error "identity-file: PATH is absolute (inside the device)"
	require_running
	if [ "${2:-}" = - ]; then
		content=$(cat)
	else
		content="UUID                      : ${2:-$UUID}"
	fi
	printf '%s\n' "$content" | in_device "$DEV" sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1"' sh "$1"
	echo "$NAME identity file $1" ;;
password)
	N_WANTED=1 need_args "$@"
	[ -r "$1" ] || die "password file $1 is not readable"
	IFS= read -r pw <"$1" || [ -n "${pw:-}" ] || die "password file $1 is empty"
	[ -n "$pw" ] || die "password file $1: the first line is empty"
	hash=$(printf '%s\n' "$pw" | openssl passwd -6 -stdin)
	unset pw
	# Rewrite in place: the device sees this very inode through a bind mount.
	new=$(awk -F: -v OFS=: -v u="$ADMIN_USER" -v h="$hash" '$1 == u { $2 = h } { print }' "$DEV/etc/shadow")
	printf '%s\n' "$new" >"$DEV/etc/shadow"
	echo "$NAME password changed" ;;
*)
	usage_error "unknown command \"$CMD\"" ;;
esac
