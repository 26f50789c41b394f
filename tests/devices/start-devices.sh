#!/bin/bash
# Create and start N simulated FTD devices, each with its own sshd, mount
# namespace, /var/sf, login account and sftunnel endpoint. See README.md.
set -euo pipefail
PROG=start-devices.sh
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
	cat <<EOF
Usage: $PROG --state DIR --count N --fmc-uuid UUID [options]

Create N simulated FTD devices under DIR and start them (as root). DIR is
made if missing; a DIR left by an earlier run (even one that crashed) is
stopped and recreated; any other non-empty DIR is refused.

  --state DIR            state directory (device dirs, devices.csv, ...)
  --count N              number of devices, 1..1000 (names ftd-01, ftd-02, ...)
  --fmc-uuid UUID        the FMC whose peer directory the devices have:
                         /var/sf/peers/UUID/ on every device
  --shell KIND           direct, ftd or mixed (direct, ftd, direct, ...);
                         default direct
  --first-ip IP          address of the first device, default 127.0.0.2; the
                         next ones count up (127.0.0.0/8 only)
  --ssh-port PORT        sshd port of every device, default 22
  --tunnel-port PORT     sftunnel port of every device, default 8305
  --user NAME            login account, default admin
  --password-file FILE   its password (first line); default: a random one,
                         saved as DIR/password
  --host-key-types LIST  comma-separated host key types (ed25519, rsa,
                         ecdsa); default ed25519
  --peer-key rsa|ec      key type of the throwaway peer certificates: rsa
                         (RSA-2048, as in the field; default) or ec (P-256,
                         much faster to make for 100 devices on few cores)
  --seed-from FMC_ROOT   take the device files from an FMC tree: the first N
                         FTD UUIDs under FMC_ROOT/var/sf/peers/ (sorted), their
                         certs_pushed/sftunnel-{cert,key}.pem, and
                         FMC_ROOT/etc/sf/ca_root/cacert.pem. Without it a
                         throwaway InternalCA under DIR/pki/ issues them.
  -h, --help             this text

Writes DIR/devices.csv (0600: device_name,ip,admin_username,admin_password,
uuid,port,shell,tunnel_port with a header row), DIR/known_hosts,
DIR/devices.env (sh variables), DIR/id_ed25519 (a key the devices accept).
Stop everything with stop-devices.sh --state DIR.
EOF
}

STATE='' COUNT='' FMC_UUID='' SHELL_MODE=direct FIRST_IP=127.0.0.2 SSH_PORT=22 TUNNEL_PORT=8305
ADMIN_USER=admin PASSWORD_FILE='' HOST_KEY_TYPES=ed25519 SEED_FROM='' PEER_KEY=rsa
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--state | --count | --fmc-uuid | --shell | --first-ip | --ssh-port | --tunnel-port | \
		--user | --password-file | --host-key-types | --seed-from | --peer-key)
		[ $# -ge 2 ] || usage_error "$1 needs a value"
		case $1 in
		--state) STATE=$2 ;;
		--count) COUNT=$2 ;;
		--fmc-uuid) FMC_UUID=$2 ;;
		--shell) SHELL_MODE=$2 ;;
		--first-ip) FIRST_IP=$2 ;;
		--ssh-port) SSH_PORT=$2 ;;
		--tunnel-port) TUNNEL_PORT=$2 ;;
		--user) ADMIN_USER=$2 ;;
		--password-file) PASSWORD_FILE=$2 ;;
		--host-key-types) HOST_KEY_TYPES=$2 ;;
		--seed-from) SEED_FROM=$2 ;;
		--peer-key) PEER_KEY=$2 ;;
		esac
		shift 2 ;;
	*) usage_error "unknown argument \"$1\"" ;;
	esac
done

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
[ -n "$STATE" ] || usage_error "--state is required"
[ -n "$COUNT" ] || usage_error "--count is required"
[ -n "$FMC_UUID" ] || usage_error "--fmc-uuid is required"
[[ $COUNT =~ ^[0-9]+$ ]] && [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 1000 ] ||
	usage_error "--count \"$COUNT\" is not a number from 1 to 1000"
FMC_UUID=${FMC_UUID,,}
[[ $FMC_UUID =~ $UUID_RE ]] || usage_error "--fmc-uuid \"$FMC_UUID\" is not a UUID"
case $SHELL_MODE in direct | ftd | mixed) ;; *) usage_error "--shell must be direct, ftd or mixed, not \"$SHELL_MODE\"" ;; esac
for p in "$SSH_PORT" "$TUNNEL_PORT"; do
	[[ $p =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || usage_error "port \"$p\" is not a number from 1 to 65535"
done
[ "$SSH_PORT" != "$TUNNEL_PORT" ] || usage_error "--ssh-port and --tunnel-port must differ"
[[ $ADMIN_USER =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || usage_error "--user \"$ADMIN_USER\" is not a valid user name"
[ "$ADMIN_USER" != root ] && [ "$ADMIN_USER" != sshd ] || usage_error "--user must not be root or sshd"
IFS=, read -r -a KEY_TYPES <<<"$HOST_KEY_TYPES"
case $PEER_KEY in rsa | ec) ;; *) usage_error "--peer-key must be rsa or ec, not \"$PEER_KEY\"" ;; esac
[ ${#KEY_TYPES[@]} -gt 0 ] || usage_error "--host-key-types is empty"
for t in "${KEY_TYPES[@]}"; do
	case $t in ed25519 | rsa | ecdsa) ;; *) usage_error "--host-key-types: unknown type \"$t\" (ed25519, rsa, ecdsa)" ;; esac
done

ip_to_int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
int_to_ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }
[[ $FIRST_IP =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
	[ "${BASH_REMATCH[1]}" -le 255 ] && [ "${BASH_REMATCH[2]}" -le 255 ] && [ "${BASH_REMATCH[3]}" -le 255 ] ||
	usage_error "--first-ip \"$FIRST_IP\" is not an address in 127.0.0.0/8"
FIRST_INT=$(ip_to_int "$FIRST_IP")
LAST_INT=$((FIRST_INT + COUNT - 1))
# 127.0.0.1 is the host's own loopback; 127.255.255.255 is the broadcast.
[ "$FIRST_INT" -gt "$(ip_to_int 127.0.0.1)" ] && [ "$LAST_INT" -lt "$(ip_to_int 127.255.255.255)" ] ||
	usage_error "addresses $FIRST_IP..$(int_to_ip $((LAST_INT & 0xffffffff))) must lie within 127.0.0.2..127.255.255.254"

if [ -n "$PASSWORD_FILE" ]; then
	[ -r "$PASSWORD_FILE" ] || die "--password-file $PASSWORD_FILE is not readable"
	IFS= read -r PASSWORD <"$PASSWORD_FILE" || [ -n "${PASSWORD:-}" ] || die "--password-file $PASSWORD_FILE is empty"
	PASSWORD=${PASSWORD%$'\r'}
	[ -n "$PASSWORD" ] || die "--password-file $PASSWORD_FILE: the first line is empty"
fi

# Seed: the FTD UUIDs an FMC tree has peer directories for.
SEED_UUIDS=()
if [ -n "$SEED_FROM" ]; then
	[ -d "$SEED_FROM/var/sf/peers" ] || die "--seed-from $SEED_FROM: no var/sf/peers/ directory"
	[ -r "$SEED_FROM/etc/sf/ca_root/cacert.pem" ] || die "--seed-from $SEED_FROM: etc/sf/ca_root/cacert.pem is missing"
	mapfile -t SEED_UUIDS < <(find "$SEED_FROM/var/sf/peers" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' |
		grep -iE "$UUID_RE" | LC_ALL=C sort | head -n "$COUNT")
	[ ${#SEED_UUIDS[@]} -eq "$COUNT" ] ||
		die "--seed-from $SEED_FROM: $COUNT devices wanted but var/sf/peers/ has ${#SEED_UUIDS[@]} UUID directories"
	for u in "${SEED_UUIDS[@]}"; do
		for f in sftunnel-cert.pem sftunnel-key.pem; do
			[ -r "$SEED_FROM/var/sf/peers/$u/certs_pushed/$f" ] ||
				die "--seed-from: $SEED_FROM/var/sf/peers/$u/certs_pushed/$f is missing"
		done
	done
fi

require_root
require_device_tools

# A state dir from an earlier run: stop what is left of it and start over.
if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE")" ]; then
	check_state_dir "$STATE"
	mapfile -t OLD < <(state_devices "$STATE")
	if [ ${#OLD[@]} -gt 0 ]; then
		stop_devices "${OLD[@]}" || die "could not stop the devices left in $STATE"
	fi
	find "$STATE" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
fi
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
chmod 0700 "$STATE"
: >"$STATE/$STATE_MARKER"

# Addresses: refuse before anything starts, naming the listener in the way.
LISTENERS=$(listeners)
for ((i = 0; i < COUNT; i++)); do
	ip=$(int_to_ip $((FIRST_INT + i)))
	for port in "$SSH_PORT" "$TUNNEL_PORT"; do
		busy=$(port_conflict "$ip" "$port" <<<"$LISTENERS")
		[ -z "$busy" ] || die "$ip:$port is in use (a socket listens on $busy); pick another --first-ip or port"
	done
done

T0=$SECONDS
umask 022
JOBS=$(($(nproc) * 2))
# throttle: keep at most JOBS background jobs.
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done; }

# Deterministic device UUIDs (version 4 layout): the same FMC UUID and name
# give the same device UUID on every run.
device_uuid() {
	local h
	h=$(printf 'sftca-simulated-ftd|%s|%s' "$FMC_UUID" "$1" | sha256sum)
	printf '%s-%s-4%s-%x%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" $(((0x${h:16:1} & 3) | 8)) "${h:17:3}" "${h:20:12}"
}

NAMES=() IPS=() UUIDS=() KINDS=()
for ((i = 0; i < COUNT; i++)); do
	name=$(printf 'ftd-%02d' $((i + 1)))
	NAMES+=("$name")
	IPS+=("$(int_to_ip $((FIRST_INT + i)))")
	if [ -n "$SEED_FROM" ]; then UUIDS+=("${SEED_UUIDS[$i],,}"); else UUIDS+=("$(device_uuid "$name")"); fi
	case $SHELL_MODE in
	mixed) if [ $((i % 2)) -eq 0 ]; then KINDS+=(direct); else KINDS+=(ftd); fi ;;
	*) KINDS+=("$SHELL_MODE") ;;
	esac
done

# The password: never in argv; hashed through openssl's stdin.
(
	umask 077
	if [ -n "$PASSWORD_FILE" ]; then
		printf '%s\n' "$PASSWORD" >"$STATE/password"
	else
		pw=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9')
		printf '%s\n' "${pw:0:20}" >"$STATE/password"
	fi
)
IFS= read -r PASSWORD <"$STATE/password"
PASSWORD_HASH=$(openssl passwd -6 -stdin <"$STATE/password")
ssh-keygen -q -t ed25519 -N '' -C "sftca-devices-client" -f "$STATE/id_ed25519"

# Certificates: from the FMC tree, or from a throwaway InternalCA shaped like
# the field's (X.509 v1, serial 0) issuing v3 peer certificates with exactly
# the field's extensions.
PKI=$STATE/pki
mkdir -p "$PKI"
CISCO_DN="/OU=Intrusion Management System/CN=%s/O=Cisco Systems, Inc"
cat >"$PKI/peer-ext.cnf" <<'EOF'
basicConstraints=CA:FALSE
subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=none
authorityKeyIdentifier=none
EOF
# issue_peer UUID SERIAL OUT_PREFIX: key (--peer-key) and certificate.
issue_peer() {
	(
		umask 077
		if [ "$PEER_KEY" = rsa ]; then
			openssl genrsa -out "$3-key.pem" 2048 2>/dev/null
		else
			openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$3-key.pem" 2>/dev/null
		fi
	)
	# shellcheck disable=SC2059
	openssl req -new -key "$3-key.pem" -subj "$(printf "$CISCO_DN" "$1")" 2>/dev/null |
		openssl x509 -req -CA "$PKI/cacert.pem" -CAkey "$PKI/cakey.pem" -set_serial "$2" \
			-days 3650 -sha256 -extfile "$PKI/peer-ext.cnf" -out "$3-cert.pem" 2>/dev/null
}
if [ -n "$SEED_FROM" ]; then
	cp "$SEED_FROM/etc/sf/ca_root/cacert.pem" "$PKI/cacert.pem"
	for ((i = 0; i < COUNT; i++)); do
		cp "$SEED_FROM/var/sf/peers/${SEED_UUIDS[$i]}/certs_pushed/sftunnel-cert.pem" "$PKI/${NAMES[$i]}-cert.pem"
		(umask 077 && cp "$SEED_FROM/var/sf/peers/${SEED_UUIDS[$i]}/certs_pushed/sftunnel-key.pem" "$PKI/${NAMES[$i]}-key.pem")
	done
else
	(umask 077 && openssl genrsa -out "$PKI/cakey.pem" 2048 2>/dev/null)
	# shellcheck disable=SC2059
	openssl req -new -key "$PKI/cakey.pem" -subj "/title=InternalCA$(printf "$CISCO_DN" "$FMC_UUID")" |
		openssl x509 -req -signkey "$PKI/cakey.pem" -set_serial 0 -days 3650 -sha256 -out "$PKI/cacert.pem" 2>/dev/null
	# The FMC's own sftunnel identity (serial 1), for TLS clients in tests.
	issue_peer "$FMC_UUID" 1 "$PKI/fmc-sftunnel" &
	for ((i = 0; i < COUNT; i++)); do
		throttle
		issue_peer "${UUIDS[$i]}" $((i + 2)) "$PKI/${NAMES[$i]}" &
	done
	wait
fi
# An unrelated certificate every device keeps beside the sftunnel files.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
	-subj "/CN=LL-CA/O=Cisco Systems, Inc." -days 3650 -out "$PKI/LL-caCert.pem" 2>/dev/null
for n in "${NAMES[@]}"; do
	[ -s "$PKI/$n-cert.pem" ] && [ -s "$PKI/$n-key.pem" ] || die "certificate for $n was not made"
done

HOME_BASE=/home
[ -d /home ] || HOME_BASE=$NS_DEV/home
LASTCHG=$(($(date +%s) / 86400))

# make_device INDEX: the directory of one device, ready to start.
make_device() {
	local i=$1 name=${NAMES[$1]} dev=$STATE/${NAMES[$1]} kind=${KINDS[$1]} shell peer t
	peer=$dev/varsf/peers/$FMC_UUID
	mkdir -p "$dev"/{ssh,etc,bin,lib,run,log,faults,ns,varlog,vartmp,tmp,root} \
		"$dev/home/$ADMIN_USER" "$peer/sync2"
	chmod 1777 "$dev/tmp" "$dev/vartmp"
	chmod 0700 "$dev/root"
	# sshd records logins there and complains when the files are missing.
	: >"$dev/varlog/lastlog"
	: >"$dev/varlog/wtmp"
	(umask 077 && : >"$dev/varlog/btmp")
	{
		printf 'NAME=%q\nIP=%q\nSSH_PORT=%q\nTUNNEL_PORT=%q\nUUID=%q\n' \
			"$name" "${IPS[$i]}" "$SSH_PORT" "$TUNNEL_PORT" "${UUIDS[$i]}"
		printf 'SHELL_KIND=%q\nFMC_UUID=%q\nADMIN_USER=%q\n' "$kind" "$FMC_UUID" "$ADMIN_USER"
	} >"$dev/device.env"
	cp -p "$DEVICES_LIB"/{ns-init.sh,pmtool,ftd-clish,shellrc,direct-shell,killconn,sftp-subsystem,cutfilter.pl} "$dev/lib/"
	ln -s "$NS_DEV/lib/pmtool" "$dev/bin/pmtool"

	if [ "$kind" = ftd ]; then
		shell=$NS_DEV/lib/ftd-clish
		# The expert level runs unprivileged and keeps its files at home.
		chown 65534:65534 "$dev/home/$ADMIN_USER"
	else
		shell=$NS_DEV/lib/direct-shell
	fi
	# A private account database: the host's entries (sshd needs its
	# privilege separation user) plus the device's login, uid 0 so it can
	# write /var/sf, every other account locked.
	grep -v "^$ADMIN_USER:" /etc/passwd >"$dev/etc/passwd"
	grep -q '^sshd:' "$dev/etc/passwd" || echo 'sshd:x:74:65534::/run/sshd:/usr/sbin/nologin' >>"$dev/etc/passwd"
	echo "$ADMIN_USER:x:0:0:FTD administrator:$HOME_BASE/$ADMIN_USER:$shell" >>"$dev/etc/passwd"
	cp /etc/group "$dev/etc/group"
	(
		umask 077
		awk -F: -v u="$ADMIN_USER" -v d="$LASTCHG" -v h="$PASSWORD_HASH" '
			{ print $1 ":" ($1 == u ? h : "*") ":" d ":0:99999:7:::" }' "$dev/etc/passwd" >"$dev/etc/shadow"
		cp "$STATE/id_ed25519.pub" "$dev/authorized_keys"
	)
	for t in "${KEY_TYPES[@]}"; do
		ssh-keygen -q -t "$t" -N '' -C "root@$name" -f "$dev/ssh/ssh_host_${t}_key"
	done

	{
		echo "# sshd of simulated device $name (start-devices.sh); paths are inside its namespace"
		echo "ListenAddress ${IPS[$i]}:$SSH_PORT"
		for t in "${KEY_TYPES[@]}"; do echo "HostKey $NS_DEV/ssh/ssh_host_${t}_key"; done
		cat <<EOF
PidFile $NS_DEV/run/sshd.pid
AuthorizedKeysFile $NS_DEV/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
AllowUsers $ADMIN_USER
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitEmptyPasswords no
UseDNS no
PrintMotd no
PrintLastLog no
DisableForwarding yes
PermitTunnel no
PermitUserEnvironment no
LoginGraceTime 30
MaxStartups 64:30:256
LogLevel VERBOSE
EOF
		if [ "$kind" = direct ]; then echo "Subsystem sftp $NS_DEV/lib/sftp-subsystem"; fi
	} >"$dev/sshd_config"

	# /var/sf/peers/<FMC-UUID>/ as on a managed FTD, with files a push must
	# leave alone; their checksums are kept to prove it.
	cp "$PKI/cacert.pem" "$peer/cacert.pem"
	cp "$PKI/$name-cert.pem" "$peer/sftunnel-cert.pem"
	# An FTD keeps every file there 0644 root:root, the key included (a
	# client must leave them so); a direct device's key is 0600.
	if [ "$kind" = ftd ]; then
		cp "$PKI/$name-key.pem" "$peer/sftunnel-key.pem"
		chmod 0644 "$peer/sftunnel-key.pem"
	else
		(umask 077 && cp "$PKI/$name-key.pem" "$peer/sftunnel-key.pem")
	fi
	cp "$PKI/LL-caCert.pem" "$peer/LL-caCert.pem"
	printf '{"uuid":"%s","peer_uuid":"%s","name":"%s","ip":"%s","port":%s,"role":"managed_device"}\n' \
		"${UUIDS[$i]}" "$FMC_UUID" "$name" "${IPS[$i]}" "$TUNNEL_PORT" >"$peer/sftunnel.json"
	printf '{"peer_uuid":"%s","flags":{"registered":1,"ha_peer":0,"event_channel":1}}\n' "$FMC_UUID" >"$peer/peer_flags.json"
	printf 'last_sync=%s\n' "$(utc_now)" >"$peer/sync2/sync_state"
	printf 'policy-rev=%s\n' "$((1000 + i))" >"$peer/sync2/policy.rev"
	(cd "$peer" && sha256sum LL-caCert.pem sftunnel.json peer_flags.json sync2/sync_state sync2/policy.rev) \
		>"$dev/unrelated.sha256"
}

for ((i = 0; i < COUNT; i++)); do
	throttle
	make_device "$i" &
done
wait
for n in "${NAMES[@]}"; do
	[ -s "$STATE/$n/sshd_config" ] && [ -s "$STATE/$n/unrelated.sha256" ] || die "device $n was not prepared"
done

DEVS=()
for n in "${NAMES[@]}"; do DEVS+=("$STATE/$n"); done
# From here on processes exist: any failure or interruption stops them all.
on_exit() {
	local rc=$?
	[ "$rc" -eq 0 ] && return 0
	echo "$PROG: stopping the devices started so far" >&2
	stop_devices "${DEVS[@]}" || true
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP
fail_start() {
	echo "$PROG: $*" >&2
	exit 1
}

for d in "${DEVS[@]}"; do start_holder "$d"; done
READY=()
for d in "${DEVS[@]}"; do READY+=("$d/run/ready"); done
if ! not_up=$(wait_files 30 "${READY[@]}"); then
	d=${not_up%/run/ready}
	tail_logs "$d"
	fail_start "device $(basename "$d"): its namespace did not come up"
fi

for d in "${DEVS[@]}"; do start_sshd "$d"; done
ADDRS=()
for ip in "${IPS[@]}"; do ADDRS+=("$ip:$SSH_PORT"); done
if ! not_up=$(wait_listening 30 "${ADDRS[@]}"); then
	for ((i = 0; i < COUNT; i++)); do
		case " $not_up " in *" ${IPS[$i]}:$SSH_PORT "*) tail_logs "${DEVS[$i]}"; break ;; esac
	done
	fail_start "sshd is not listening on: $not_up"
fi
wait_files 10 "${DEVS[@]/%//run/sshd.pid}" >/dev/null || fail_start "an sshd wrote no pid file"

TADDRS=()
for ip in "${IPS[@]}"; do TADDRS+=("$ip:$TUNNEL_PORT"); done
if ! not_up=$(wait_listening 20 "${TADDRS[@]}"); then
	for ((i = 0; i < COUNT; i++)); do
		case " $not_up " in *" ${IPS[$i]}:$TUNNEL_PORT "*) tail_logs "${DEVS[$i]}"; break ;; esac
	done
	fail_start "sftunnel is not listening on: $not_up"
fi

(
	umask 077
	{
		echo "device_name,ip,admin_username,admin_password,uuid,port,shell,tunnel_port"
		for ((i = 0; i < COUNT; i++)); do
			printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "${NAMES[$i]}" "${IPS[$i]}" "$ADMIN_USER" \
				"$(csv_field "$PASSWORD")" "${UUIDS[$i]}" "$SSH_PORT" "${KINDS[$i]}" "$TUNNEL_PORT"
		done
	} >"$STATE/devices.csv"
)
for d in "${DEVS[@]}"; do known_hosts_lines "$d"; done >"$STATE/known_hosts"
{
	echo "# written by start-devices.sh; source it from sh or bash"
	printf 'SFTCA_DEVICES_STATE=%q\n' "$STATE"
	printf 'SFTCA_DEVICES_COUNT=%q\n' "$COUNT"
	printf 'SFTCA_DEVICES_NAMES=%q\n' "${NAMES[*]}"
	printf 'SFTCA_DEVICES_FMC_UUID=%q\n' "$FMC_UUID"
	printf 'SFTCA_DEVICES_CSV=%q\n' "$STATE/devices.csv"
	printf 'SFTCA_DEVICES_KNOWN_HOSTS=%q\n' "$STATE/known_hosts"
	printf 'SFTCA_DEVICES_USER=%q\n' "$ADMIN_USER"
	printf 'SFTCA_DEVICES_PASSWORD_FILE=%q\n' "$STATE/password"
	printf 'SFTCA_DEVICES_IDENTITY=%q\n' "$STATE/id_ed25519"
	printf 'SFTCA_DEVICES_SSH_PORT=%q\n' "$SSH_PORT"
	printf 'SFTCA_DEVICES_TUNNEL_PORT=%q\n' "$TUNNEL_PORT"
	printf 'SFTCA_DEVICES_CA_CERT=%q\n' "$PKI/cacert.pem"
	printf 'SFTCA_DEVICES_ASKPASS=%q\n' "$DEVICES_LIB/askpass"
	printf 'SFTCA_DEVICES_CTL=%q\n' "$(dirname "$DEVICES_LIB")/device-ctl.sh"
	if [ -z "$SEED_FROM" ]; then
		printf 'SFTCA_DEVICES_CA_KEY=%q\n' "$PKI/cakey.pem"
		printf 'SFTCA_DEVICES_FMC_CERT=%q\n' "$PKI/fmc-sftunnel-cert.pem"
		printf 'SFTCA_DEVICES_FMC_KEY=%q\n' "$PKI/fmc-sftunnel-key.pem"
	fi
} >"$STATE/devices.env"

printf '%-8s %-16s %-6s %-36s %s\n' NAME SSH SHELL UUID TUNNEL
for ((i = 0; i < COUNT; i++)); do
	printf '%-8s %-16s %-6s %-36s %s\n' "${NAMES[$i]}" "${IPS[$i]}:$SSH_PORT" "${KINDS[$i]}" "${UUIDS[$i]}" \
		"${IPS[$i]}:$TUNNEL_PORT"
done
echo "started $COUNT device(s) in $((SECONDS - T0)) s; state in $STATE (devices.csv, known_hosts, devices.env)"
