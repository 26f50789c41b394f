#!/bin/bash
# End-to-end self-test of the simulated FTD devices, using only OpenSSH's
# ssh/sftp clients and openssl against them. Exit 0 on success, 1 on
# failure, 77 when something it needs is missing (ctest: skipped).
# KEEP_TEST_DIR=1 keeps the temporary directory.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
LIB=$HERE/lib
START=$HERE/start-devices.sh
STOP=$HERE/stop-devices.sh
CTL=$HERE/device-ctl.sh

case ${1:-} in
-h | --help)
	cat <<EOF
Usage: ${0##*/}

Starts simulated devices on random 127.x.y.z addresses, checks isolation,
both shell flavours, the sftunnel endpoint and every fault, then stops them
and checks that nothing is left running. Needs root, openssh-server,
openssh-client, openssl, util-linux, iproute2, procps and perl.
EOF
	exit 0 ;;
esac

. "$(dirname "$0")/../skip.sh"
[ "$(id -u)" -eq 0 ] || skip "must run as root"
for c in ssh sftp ssh-keygen openssl unshare nsenter setsid setpriv flock mountpoint ss ps pgrep perl sha256sum; do
	command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
done
[ -x /usr/sbin/sshd ] || skip "/usr/sbin/sshd is not installed (openssh-server)"
[ -x /usr/lib/openssh/sftp-server ] || skip "/usr/lib/openssh/sftp-server is not installed (openssh-server)"

# shellcheck source=lib/common.sh
PROG=selftest.sh . "$LIB/common.sh"

T=$(mktemp -d /tmp/sftca-devices-selftest.XXXXXX)
STATES=()
T0=$SECONDS
CHECKS=0
cleanup() {
	local rc=$? s
	trap - ERR
	for s in "${STATES[@]}"; do
		"$STOP" --state "$s" >/dev/null 2>&1 || echo "selftest: could not stop $s" >&2
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for s in "${STATES[@]}"; do
			for d in "$s"/ftd-*; do [ -d "$d" ] && tail_logs "$d"; done
		done
		echo "selftest: FAILED (test directory: $T$([ -n "${KEEP_TEST_DIR:-}" ] || echo ', removed'))" >&2
	fi
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
trap '[[ $- == *e* ]] && echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { CHECKS=$((CHECKS + 1)); echo "ok $CHECKS - $*"; }
# expect_rc RC CMD...: run CMD, output in OUT, exit code must be RC ("!0": any failure).
expect_rc() {
	local want=$1 got
	shift
	set +e
	OUT=$("$@" 2>&1)
	got=$?
	set -e
	if [ "$want" = '!0' ]; then
		[ "$got" -ne 0 ] || fail "wanted a failure from: $* :: $OUT"
	else
		[ "$got" -eq "$want" ] || fail "exit $got (wanted $want) from: $* :: $OUT"
	fi
}
assert_contains() { grep -qE -- "$2" <<<"$1" || fail "$3: /$2/ not in: $1"; }
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }

# Addresses nobody uses: 127.A.B.2-4 for the first run, .12-.13 for the second.
pick_ips() {
	local a b busy
	busy=$(listeners)
	for _ in $(seq 50); do
		a=$((100 + RANDOM % 100)) b=$((RANDOM % 250))
		if ! grep -qE "^127\.$a\.$b\.[0-9]+:" <<<"$busy"; then
			echo "127.$a.$b"
			return 0
		fi
	done
	fail "no free 127.x.y.0/24 found"
}
NET=$(pick_ips)
IP1=$NET.2 IP2=$NET.3 IP3=$NET.4
FMC=$(cat /proc/sys/kernel/random/uuid)
S=$T/state
STATES+=("$S")

host_sums() { sha256sum /etc/passwd /etc/shadow /etc/group; }
HOST_SUMS=$(host_sums)
HOST_VARSF=$([ -e /var/sf ] && echo present || echo absent)

# --- start --------------------------------------------------------------------
echo "# starting 3 devices (mixed shells) on $IP1..$IP3"
t=$SECONDS
"$START" --state "$S" --count 3 --fmc-uuid "$FMC" --shell mixed --first-ip "$IP1" >"$T/start.out"
ok "start-devices.sh started 3 devices in $((SECONDS - t)) s"
# shellcheck disable=SC1091
. "$S/devices.env"
PW=$SFTCA_DEVICES_PASSWORD_FILE
D1=$S/ftd-01 D2=$S/ftd-02 D3=$S/ftd-03
PEER=/var/sf/peers/$FMC

assert_eq "$(head -n1 "$S/devices.csv")" "device_name,ip,admin_username,admin_password,uuid,port,shell,tunnel_port" "csv header"
assert_eq "$(stat -c %a "$S/devices.csv")" 600 "devices.csv mode"
assert_eq "$(sed 1d "$S/devices.csv" | cut -d, -f1,2,3,6,7,8 | paste -sd' ')" \
	"ftd-01,$IP1,admin,22,direct,8305 ftd-02,$IP2,admin,22,ftd,8305 ftd-03,$IP3,admin,22,direct,8305" "csv rows"
assert_eq "$(sed 1d "$S/devices.csv" | cut -d, -f4 | sort -u)" "$(head -n1 "$PW")" "csv password"
U1=$(sed -n 2p "$S/devices.csv" | cut -d, -f5)
assert_eq "$(awk '{ print $1, $2 }' "$S/known_hosts" | paste -sd' ')" \
	"$IP1 ssh-ed25519 $IP2 ssh-ed25519 $IP3 ssh-ed25519" "known_hosts"
ok "devices.csv (0600, header, 3 rows), known_hosts and devices.env written"

# As the field has them: every file of an FTD's peer directory 0644
# root:root, the key included; a direct device's key 0600.
files_attrs() { (cd "$1/varsf/peers/$FMC" && stat -c '%n=%a %U:%G' cacert.pem sftunnel-cert.pem sftunnel-key.pem | paste -sd' '); }
assert_eq "$(files_attrs "$D2")" "cacert.pem=644 root:root sftunnel-cert.pem=644 root:root sftunnel-key.pem=644 root:root" "ftd-02 (ftd): modes and owners"
assert_eq "$(files_attrs "$D1")" "cacert.pem=644 root:root sftunnel-cert.pem=644 root:root sftunnel-key.pem=600 root:root" "ftd-01 (direct): modes and owners"
ok "peer files: 0644 root:root on the ftd device (key included), key 0600 on the direct one"

# ssh takes the first value it gets for an option: the known_hosts file is
# chosen through KH, never by adding another -o.
KH=$S/known_hosts
SSH_COMMON=(-F /dev/null -o StrictHostKeyChecking=yes -o LogLevel=ERROR)
ssh_key() { ssh "${SSH_COMMON[@]}" -o UserKnownHostsFile="$KH" -o ConnectTimeout="${CT:-5}" -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile="$SFTCA_DEVICES_IDENTITY" "$@"; }
# ssh_pw PASSWORD_FILE ARGS...: password authentication, the password from a file.
ssh_pw() {
	local pwf=$1
	shift
	SSH_ASKPASS=$LIB/askpass SSH_ASKPASS_REQUIRE=force SFTCA_ASKPASS_FILE=$pwf \
		ssh "${SSH_COMMON[@]}" -o UserKnownHostsFile="$KH" -o ConnectTimeout="${CT:-5}" -o PubkeyAuthentication=no -o PreferredAuthentications=password \
		-o NumberOfPasswordPrompts=1 "$@" </dev/null
}
sftp_pw() {
	SSH_ASKPASS=$LIB/askpass SSH_ASKPASS_REQUIRE=force SFTCA_ASKPASS_FILE=$PW \
		sftp "${SSH_COMMON[@]}" -o UserKnownHostsFile="$KH" -o ConnectTimeout="${CT:-5}" -o PubkeyAuthentication=no -o PreferredAuthentications=password \
		-o NumberOfPasswordPrompts=1 "$@"
}
sftp_key() { sftp "${SSH_COMMON[@]}" -o UserKnownHostsFile="$KH" -o ConnectTimeout="${CT:-5}" -o IdentitiesOnly=yes -o IdentityFile="$SFTCA_DEVICES_IDENTITY" "$@"; }
# chat HOST SCRIPT: drive an interactive session (password login, terminal).
chat() {
	: >"$T/chat.log"
	SSH_ASKPASS=$LIB/askpass SSH_ASKPASS_REQUIRE=force SFTCA_ASKPASS_FILE=$PW \
		perl "$LIB/chat.pl" --timeout 15 --log "$T/chat.log" "$2" -- \
		ssh -tt "${SSH_COMMON[@]}" -o UserKnownHostsFile="$KH" -o ConnectTimeout="${CT:-5}" -o PubkeyAuthentication=no -o PreferredAuthentications=password \
		-o NumberOfPasswordPrompts=1 "admin@$1"
}

# --- isolation -----------------------------------------------------------------
expect_rc 0 ssh_pw "$PW" "admin@$IP1" "id -u; hostname; echo one >$PEER/isolation.txt; echo tmp1 >/tmp/isolation.txt"
assert_eq "$OUT" "$(printf '0\nftd-01')" "id and hostname on ftd-01"
[ -e "$D1/varsf/peers/$FMC/isolation.txt" ] || fail "file written on ftd-01 is not in its varsf"
[ ! -e "$D3/varsf/peers/$FMC/isolation.txt" ] || fail "file written on ftd-01 shows up on ftd-03"
expect_rc 0 ssh_key "admin@$IP3" "test ! -e $PEER/isolation.txt && test ! -e /tmp/isolation.txt && hostname"
assert_eq "$OUT" ftd-03 "hostname on ftd-03"
[ ! -e /tmp/isolation.txt ] || fail "a device's /tmp is the host's"
assert_eq "$(host_sums)" "$HOST_SUMS" "host /etc/passwd, shadow, group"
assert_eq "$([ -e /var/sf ] && echo present || echo absent)" "$HOST_VARSF" "host /var/sf"
ok "each device has its own /var/sf, /tmp, hostname and accounts; the host's are untouched"

# --- direct device -------------------------------------------------------------
expect_rc 0 ssh_key "admin@$IP1" "pmtool status"
assert_contains "$OUT" "sftunnel \(normal\) - Running [0-9]+" "pmtool in PATH"
head -c 70000 /dev/urandom >"$T/blob"
expect_rc 0 sftp_pw "admin@$IP1" <<<"put $T/blob $PEER/blob"
cmp -s "$T/blob" "$D1/varsf/peers/$FMC/blob" || fail "sftp upload (password) differs: $OUT"
expect_rc 0 sftp_key -b - "admin@$IP1" <<<"rm $PEER/blob"
[ ! -e "$D1/varsf/peers/$FMC/blob" ] || fail "sftp rm (key) did not remove the file"
echo not-the-password >"$T/wrong"
expect_rc 255 ssh_pw "$T/wrong" "admin@$IP1" true
assert_contains "$OUT" "Permission denied" "wrong password"
ok "direct device: exec and SFTP with password and with key; wrong password refused"

# --- ftd device ----------------------------------------------------------------
expect_rc '!0' ssh_pw "$PW" "admin@$IP2" "id"
assert_contains "$OUT" "Command execution is not available" "ftd exec"
expect_rc '!0' sftp_pw "admin@$IP2" <<<"ls"
assert_contains "$OUT" "subsystem request failed" "ftd sftp"
expect_rc '!0' ssh_key "admin@$IP2" "id"
ok "ftd device refuses exec requests and SFTP"

cat >"$T/ftd.chat" <<EOF
expect \n> \$
send show version
expect UUID +: $(sed -n 3p "$S/devices.csv" | cut -d, -f5)
expect \n> \$
send touch /tmp/x
expect % Invalid input detected
expect \n> \$
send expert
expect admin@ftd-02:~\\\$ \$
send id -u; touch $PEER/unpriv
expect Permission denied
expect admin@ftd-02:~\\\$ \$
send sudo su
expect Password: \$
sendfile $T/wrong
expect Sorry, try again.
expect Password: \$
sendfile $PW
expect root@ftd-02:/home/admin# \$
send id -u; cd $PEER
expect \n0\r?\n
expect root@ftd-02:$PEER# \$
send cat >heredoc.txt <<'XEOF'
expect > \$
send first line
send second line
send XEOF
expect # \$
send wc -l <heredoc.txt; pmtool restartbyid sftunnel && echo restart=ok
expect \n2\r?\n
expect restart=ok
expect # \$
send exit
expect admin@ftd-02:~\\\$ \$
send sudo su
expect root@ftd-02:/home/admin# \$
send exit
expect admin@ftd-02:~\\\$ \$
send exit
expect \n> \$
send exit
eof
EOF
chat "$IP2" "$T/ftd.chat" || fail "ftd interactive session (transcript: $T/chat.log)"
assert_eq "$(cat "$D2/varsf/peers/$FMC/heredoc.txt")" "$(printf 'first line\nsecond line')" "heredoc as root"
[ ! -e "$D2/varsf/peers/$FMC/unpriv" ] || fail "expert mode (not root) could write the peer directory"
! grep -qF "$(head -n1 "$PW")" "$T/chat.log" || fail "the password was echoed"
assert_eq "$("$CTL" "$S" ftd-02 restarts)" 1 "restart through the ftd root shell"
# Like a real FTD, the root shell keeps its history, heredoc lines included.
grep -qx "second line" "$D2/root/.bash_history" || fail "root's .bash_history lacks the heredoc: $(cat "$D2/root/.bash_history" 2>&1)"
ok "ftd device: > / expert / sudo su (wrong, then right password) / root heredoc / pmtool / exit levels; root's history kept in /root/.bash_history"

cat >"$T/ftd3.chat" <<EOF
expect \n> \$
send expert
expect \\\$ \$
send sudo -i
expect Password: \$
sendfile $T/wrong
expect Password: \$
sendfile $T/wrong
expect Password: \$
sendfile $T/wrong
expect sudo: 3 incorrect password attempts
expect admin@ftd-02:~\\\$ \$
send id -u
expect 65534
expect \\\$ \$
send exit
expect > \$
send exit
eof
EOF
chat "$IP2" "$T/ftd3.chat" || fail "ftd three wrong passwords (transcript: $T/chat.log)"
ok "ftd device: three wrong sudo passwords leave the session unprivileged"

# What a device says it is: an FMC's show version, an identity file.
OTHER=0a0b0c0d-0000-4000-8000-00000000f3c0
"$CTL" "$S" ftd-02 fmc "$OTHER" >/dev/null
cat >"$T/fmc.chat" <<EOF
expect \n> \$
send show version
expect Model +: Secure Firewall Management Center for VMware
expect UUID +: $OTHER
expect \n> \$
send exit
eof
EOF
chat "$IP2" "$T/fmc.chat" || fail "ftd device as an FMC (transcript: $T/chat.log)"
"$CTL" "$S" ftd-02 version default >/dev/null
[ ! -e "$D2/version" ] || fail "version default left $D2/version"
"$CTL" "$S" ftd-01 identity-file /var/sf/sftca-identity >/dev/null
assert_eq "$(cat "$D1/varsf/sftca-identity")" "UUID                      : $(sed -n 2p "$S/devices.csv" | cut -d, -f5)" "identity file"
printf 'x\n' | "$CTL" "$S" ftd-01 identity-file /var/sf/sftca-identity - >/dev/null
assert_eq "$(cat "$D1/varsf/sftca-identity")" "x" "identity file from stdin"
rm -f "$D1/varsf/sftca-identity"
ok "identity: fmc makes show version print a Management Center model and the given UUID (version default undoes it); identity-file writes the device's UUID in show version's format, or stdin"

# --- sftunnel ------------------------------------------------------------------
# tls DEVICE_IP [s_client options]: one TLS 1.2 handshake; output in OUT.
tls() {
	local ip=$1
	shift
	expect_rc "$TLS_WANT" openssl s_client -connect "$ip:8305" -tls1_2 -CAfile "$SFTCA_DEVICES_CA_CERT" \
		-verify_return_error -brief "$@" </dev/null
}
FMC_ID=(-cert "$SFTCA_DEVICES_FMC_CERT" -key "$SFTCA_DEVICES_FMC_KEY")
TLS_WANT=0
for ip in "$IP1" "$IP2" "$IP3"; do
	tls "$ip" "${FMC_ID[@]}"
	assert_contains "$OUT" "Protocol version: TLSv1.2" "tunnel $ip protocol"
	assert_contains "$OUT" "Verification: OK" "tunnel $ip verification"
done
assert_contains "$OUT" "CN = $(sed -n 4p "$S/devices.csv" | cut -d, -f5)" "tunnel presents the device certificate"
TLS_WANT='!0'
tls "$IP1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue-key.pem" \
	-out "$T/rogue-cert.pem" -subj "/CN=$FMC" -days 2 2>/dev/null
tls "$IP1" -cert "$T/rogue-cert.pem" -key "$T/rogue-key.pem"
expect_rc '!0' openssl s_client -connect "$IP1:8305" -tls1_3 "${FMC_ID[@]}" -CAfile "$SFTCA_DEVICES_CA_CERT" -brief </dev/null
ok "sftunnel: TLS 1.2 with a client certificate from the device's cacert.pem; refused without one, with a foreign one, and over TLS 1.3"

# A restart picks up new files.
P1=$(cat "$D1/run/sftunnel.pid")
openssl genrsa -out "$T/new-key.pem" 2048 2>/dev/null
openssl req -new -key "$T/new-key.pem" -subj "/OU=Intrusion Management System/CN=$U1/O=Cisco Systems, Inc." |
	openssl x509 -req -CA "$SFTCA_DEVICES_CA_CERT" -CAkey "$SFTCA_DEVICES_CA_KEY" -set_serial 0x77 -days 30 \
		-extfile "$S/pki/peer-ext.cnf" -out "$T/new-cert.pem" 2>/dev/null
expect_rc 0 sftp_key -b - "admin@$IP1" <<EOF
put $T/new-cert.pem $PEER/sftunnel-cert.pem
put $T/new-key.pem $PEER/sftunnel-key.pem
EOF
expect_rc 0 ssh_key "admin@$IP1" "pmtool restartbyid sftunnel"
[ "$(cat "$D1/run/sftunnel.pid")" != "$P1" ] || fail "restartbyid kept the old server"
assert_eq "$("$CTL" "$S" ftd-01 restarts)" 1 "restart count on ftd-01"
SERIAL=$(openssl s_client -connect "$IP1:8305" -tls1_2 "${FMC_ID[@]}" -CAfile "$SFTCA_DEVICES_CA_CERT" </dev/null 2>/dev/null |
	openssl x509 -noout -serial)
assert_eq "$SERIAL" "serial=77" "certificate served after the restart"
assert_eq "$("$CTL" "$S" ftd-03 restarts)" 0 "no restart on ftd-03"
ok "pmtool restartbyid sftunnel restarts the endpoint with the new files and is counted in pmtool.log"

# --- faults --------------------------------------------------------------------
"$CTL" "$S" ftd-01 readonly on >/dev/null
expect_rc '!0' ssh_key "admin@$IP1" "touch $PEER/ro-test"
assert_contains "$OUT" "Read-only file system" "readonly touch"
expect_rc '!0' ssh_key "admin@$IP1" "mv $PEER/cacert.pem $PEER/cacert.pem.backup"
expect_rc 0 ssh_key "admin@$IP1" "touch /var/sf/outside-peer-dir && rm /var/sf/outside-peer-dir"
"$CTL" "$S" ftd-01 readonly off >/dev/null
expect_rc 0 ssh_key "admin@$IP1" "touch $PEER/ro-test && rm $PEER/ro-test"
ok "fault readonly: root gets EROFS in the peer directory only, until switched off"

head -c 65536 /dev/urandom >"$T/blob64"
"$CTL" "$S" ftd-01 cut-transfer --at-write 3 >/dev/null
expect_rc '!0' sftp_key -B 4096 -b - "admin@$IP1" <<<"put $T/blob64 $PEER/partial"
assert_eq "$(stat -c %s "$D1/varsf/peers/$FMC/partial")" 8192 "bytes on disk before the 3rd write"
assert_eq "$("$CTL" "$S" ftd-01 fired)" 1 "fired count"
"$CTL" "$S" ftd-01 cut-transfer --after-bytes 3000 --once >/dev/null
expect_rc '!0' sftp_key -b - "admin@$IP1" <<<"put $T/blob64 $PEER/partial2"
assert_eq "$("$CTL" "$S" ftd-01 fired)" 2 "fired count"
[ ! -e "$D1/faults/cut-transfer" ] || fail "--once did not switch the fault off"
"$CTL" "$S" ftd-01 cut-transfer --after-bytes 10000 --once >/dev/null
expect_rc '!0' ssh_key "admin@$IP1" "cat >$PEER/partial3" <"$T/blob64"
assert_eq "$(stat -c %s "$D1/varsf/peers/$FMC/partial3")" 10000 "bytes on disk after a cut exec upload"
assert_eq "$("$CTL" "$S" ftd-01 fired)" 3 "fired count"
expect_rc 0 sftp_key -b - "admin@$IP1" <<<"put $T/blob64 $PEER/whole"
cmp -s "$T/blob64" "$D1/varsf/peers/$FMC/whole" || fail "upload after the fault is off"
expect_rc 0 ssh_key "admin@$IP1" "rm -f $PEER/partial $PEER/partial2 $PEER/partial3 $PEER/whole"
ok "fault cut-transfer (direct): connection dropped at the 3rd SFTP write (8 KiB on disk), after 3000 SFTP bytes, after 10000 bytes of an exec 'cat >file'; --once"

"$CTL" "$S" ftd-02 cut-transfer --marker MARK-4711 >/dev/null
cat >"$T/cut.chat" <<EOF
expect \n> \$
send expert
expect \\\$ \$
send sudo su
expect Password: \$
sendfile $PW
expect # \$
send cat >$PEER/cut.txt <<'XEOF'
expect > \$
send data before the marker
send data MARK-4711 and after
eof
EOF
chat "$IP2" "$T/cut.chat" || fail "ftd cut-transfer (transcript: $T/chat.log)"
[ ! -e "$D2/varsf/peers/$FMC/cut.txt" ] || fail "the interrupted heredoc was written"
assert_eq "$("$CTL" "$S" ftd-02 fired)" 1 "fired count on ftd-02"
"$CTL" "$S" ftd-02 cut-transfer off >/dev/null
ok "fault cut-transfer (ftd): connection dropped at the marker line; the half-sent heredoc never ran"

ORIG_KH=$(known_hosts_lines "$D3")
NEW_KH=$("$CTL" "$S" ftd-03 rekey-host)
[ "$NEW_KH" != "$ORIG_KH" ] || fail "rekey-host kept the host key"
expect_rc 255 ssh_key "admin@$IP3" true
assert_contains "$OUT" "Host key verification failed" "changed host key"
{ grep -v "^$IP3 " "$S/known_hosts"; echo "$NEW_KH"; } >"$T/known_hosts.new"
KH=$T/known_hosts.new
expect_rc 0 ssh_key "admin@$IP3" true
ok "fault rekey-host: the old known_hosts entry fails verification, the new one works"

"$CTL" "$S" ftd-03 stop >/dev/null
expect_rc 255 ssh_key "admin@$IP3" true
assert_contains "$OUT" "Connection refused" "stopped device"
TLS_WANT='!0'
tls "$IP3" "${FMC_ID[@]}"
[ -z "$(device_pids "$D3")" ] || fail "processes of a stopped device: $(device_pids "$D3")"
"$CTL" "$S" ftd-03 start >/dev/null
expect_rc 0 ssh_key "admin@$IP3" "test -e $PEER/cacert.pem"
TLS_WANT=0
tls "$IP3" "${FMC_ID[@]}"
assert_eq "$(grep -c ' boot sftunnel ok ' "$D3/pmtool.log")" 2 "tunnel booted again"
ok "fault stop/start: refused while down, nothing left running; back with its files and tunnel"

"$CTL" "$S" ftd-01 freeze >/dev/null
CT=2 expect_rc 255 ssh_key "admin@$IP1" true
assert_contains "$OUT" "timed out" "frozen device"
"$CTL" "$S" ftd-01 thaw >/dev/null
expect_rc 0 ssh_key "admin@$IP1" true
ok "fault freeze/thaw: connections time out while frozen"

P1=$(cat "$D1/run/sftunnel.pid")
"$CTL" "$S" ftd-01 pmtool-fail on >/dev/null
expect_rc 1 ssh_key "admin@$IP1" "pmtool restartbyid sftunnel"
assert_eq "$(cat "$D1/run/sftunnel.pid")" "$P1" "tunnel untouched by a failed restart"
"$CTL" "$S" ftd-01 pmtool-fail off >/dev/null
assert_eq "$("$CTL" "$S" ftd-01 restarts)" 1 "failed restarts are not counted"
ok "fault pmtool-fail: restartbyid exits 1 and leaves the tunnel alone"

printf 'n3w,pass"word\n' >"$T/newpw"
"$CTL" "$S" ftd-03 password "$T/newpw" >/dev/null
expect_rc 255 ssh_pw "$PW" "admin@$IP3" true
expect_rc 0 ssh_pw "$T/newpw" "admin@$IP3" true
ok "password: the old password is refused, the new one works"

expect_rc 0 "$CTL" "$S" ftd-02 files
assert_contains "$OUT" "cacert.pem +\[subject=/title=InternalCA/OU=Intrusion Management System/CN=$FMC" "files"
assert_contains "$OUT" "sync2/policy.rev" "files"
for n in ftd-01 ftd-02 ftd-03; do "$CTL" "$S" "$n" untouched; done
echo tampered >>"$D3/varsf/peers/$FMC/peer_flags.json"
expect_rc 1 "$CTL" "$S" ftd-03 untouched
ok "files lists the peer directory; untouched notices a changed unrelated file"

# --- re-run after a crash, seeded from an FMC tree, other ports -----------------
# The re-run recreates the state dir: keep the FMC identity and CA.
cp "$SFTCA_DEVICES_FMC_CERT" "$T/fmc-cert.pem"
cp "$SFTCA_DEVICES_FMC_KEY" "$T/fmc-key.pem"
cp "$SFTCA_DEVICES_CA_CERT" "$T/cacert.pem"
FMC_ID=(-cert "$T/fmc-cert.pem" -key "$T/fmc-key.pem")
FMC_ROOT=$T/fmc
mkdir -p "$FMC_ROOT/etc/sf/ca_root"
cp "$T/cacert.pem" "$FMC_ROOT/etc/sf/ca_root/cacert.pem"
UUIDS=$(sed 1d "$S/devices.csv" | cut -d, -f5)
for n in 1 2 3; do
	u=$(sed -n "$((n + 1))p" "$S/devices.csv" | cut -d, -f5)
	mkdir -p "$FMC_ROOT/var/sf/peers/$u/certs_pushed"
	cp "$S/pki/ftd-0$n-cert.pem" "$FMC_ROOT/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem"
	cp "$S/pki/ftd-0$n-key.pem" "$FMC_ROOT/var/sf/peers/$u/certs_pushed/sftunnel-key.pem"
done
mkdir -p "$FMC_ROOT/var/sf/peers/not-a-uuid"
kill -KILL "$(cat "$D1/run/holder.pid")" "$(cat "$D2/run/sshd.pid")"
SEEDED=$(LC_ALL=C sort <<<"$UUIDS" | head -n 2)
"$START" --state "$S" --count 2 --fmc-uuid "$FMC" --shell ftd --first-ip "$NET.12" \
	--ssh-port 2222 --tunnel-port 18305 --seed-from "$FMC_ROOT" --host-key-types ed25519,rsa >"$T/start2.out"
for ip in "$IP1" "$IP2" "$IP3"; do
	! listeners | grep -qE "^$ip:" || fail "$ip still listens after the re-run"
done
[ -z "$(pgrep -f "s_server -accept $NET\.[234]:")" ] || fail "old tunnels survived the re-run"
assert_eq "$(sed 1d "$S/devices.csv" | cut -d, -f5 | paste -sd' ')" "$(paste -sd' ' <<<"$SEEDED")" "seeded UUIDs"
assert_eq "$(sed 1d "$S/devices.csv" | cut -d, -f2,6,7,8 | paste -sd' ')" \
	"$NET.12,2222,ftd,18305 $NET.13,2222,ftd,18305" "csv after the re-run"
assert_eq "$(awk '{ print $1 }' "$S/known_hosts" | sort -u | paste -sd' ')" "[$NET.12]:2222 [$NET.13]:2222" "known_hosts ports"
assert_eq "$(wc -l <"$S/known_hosts")" 4 "two host keys per device"
u=$(head -n1 <<<"$SEEDED")
cmp -s "$FMC_ROOT/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem" "$S/ftd-01/varsf/peers/$FMC/sftunnel-cert.pem" ||
	fail "seeded certificate"
cmp -s "$FMC_ROOT/etc/sf/ca_root/cacert.pem" "$S/ftd-02/varsf/peers/$FMC/cacert.pem" || fail "seeded cacert.pem"
expect_rc 0 openssl s_client -connect "$NET.13:18305" -tls1_2 "${FMC_ID[@]}" -CAfile "$T/cacert.pem" \
	-verify_return_error -brief </dev/null
cat >"$T/port.chat" <<EOF
expect \n> \$
send exit
eof
EOF
KH=$S/known_hosts
SSH_COMMON+=(-p 2222)
chat "$NET.12" "$T/port.chat" || fail "login on port 2222 (transcript: $T/chat.log)"
ok "re-run on a crashed state dir: old devices gone; seeded from an FMC tree; ports 2222/18305; ed25519+rsa host keys"

# --- refusals ------------------------------------------------------------------
S2=$T/state2
STATES+=("$S2")
expect_rc 1 "$START" --state "$S2" --count 1 --fmc-uuid "$FMC" --first-ip "$NET.13" --ssh-port 2222
assert_contains "$OUT" "$NET.13:2222 is in use" "address in use"
expect_rc 1 setpriv --reuid=65534 --regid=65534 --clear-groups "$START" --state "$T/nobody" --count 1 --fmc-uuid "$FMC"
assert_contains "$OUT" "must run as root" "not root"
expect_rc 2 "$START" --state "$S2" --count 0 --fmc-uuid "$FMC"
expect_rc 2 "$START" --state "$S2" --count 1 --fmc-uuid "$FMC" --first-ip 10.0.0.2
expect_rc 1 "$START" --state "$T/fmc" --count 1 --fmc-uuid "$FMC"
assert_contains "$OUT" "not a device state directory" "foreign directory"
expect_rc 1 "$START" --state "$S2" --count 4 --fmc-uuid "$FMC" --seed-from "$FMC_ROOT" --first-ip "$NET.20"
assert_contains "$OUT" "4 devices wanted but var/sf/peers/ has 3" "seed too small"
ok "refused: address in use, not root, bad arguments, a foreign directory, too few seeded peers"

# --- stop ----------------------------------------------------------------------
expect_rc 0 "$STOP" --state "$S"
[ -z "$(device_pids "$S"/ftd-*)" ] || fail "device processes left: $(device_pids "$S"/ftd-*)"
[ -z "$(pgrep -f "s_server -accept $NET\.")" ] || fail "tunnel left running: $(pgrep -af "s_server -accept $NET\.")"
! listeners | grep -qE "^$NET\." || fail "something still listens on $NET.*"
expect_rc 0 "$STOP" --state "$S"
assert_eq "$(host_sums)" "$HOST_SUMS" "host /etc/passwd, shadow, group"
ok "stop-devices.sh: no process and no listener left; running it again is fine"

echo "selftest: all $CHECKS checks passed in $((SECONDS - T0)) s"
