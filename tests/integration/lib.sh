# Shared helpers for integration tests: a real SoftHSM2 token in a temp
# dir, a development PKI, the real sftca-signer process and the real CLI.
# Every process a test starts is stopped by the EXIT trap, pass or fail.
# -E: the ERR trap below also names a failure inside a function, which
# would otherwise end the test silently.
set -Eeuo pipefail

SRC=${SFTCA_SRC:?SFTCA_SRC must point at the source tree}
BUILD=${SFTCA_BUILD:?SFTCA_BUILD must point at the build tree}
# SFTCA_CLIENT_BUILD: take the client-side binaries from another tree (the
# TSan test runs a TSan signer against ordinary clients).
CBUILD=${SFTCA_CLIENT_BUILD:-$BUILD}
SFTCA=$CBUILD/bin/sftca
SIGNER=$BUILD/bin/sftca-signer
PROBE=$CBUILD/bin/rpcprobe
MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
CA_ID=cdb123c8-4347-11ef-aca1-f3aa241412a1

. "$SRC/tests/skip.sh"
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }
# SSHD: the system's sshd by its absolute path (root's PATH may lack /usr/sbin).
SSHD=/usr/sbin/sshd
[ -r "$MODULE" ] || skip "SoftHSM2 module $MODULE missing"
need openssl

T=$(mktemp -d /tmp/sftca-it.XXXXXX)
mkdir -p "$T/run" "$T/pids"
export SFTCA_TEST_DIR=$T

# on_exit CMD: run CMD (a simple command) first when the test ends.
CLEANUP_HOOKS=()
on_exit() { CLEANUP_HOOKS+=("$*"); }

cleanup() {
	local rc=$?
	for h in "${CLEANUP_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1 || true; done
	for f in "$T"/pids/*; do
		[ -e "$f" ] || continue
		local pid
		pid=$(cat "$f")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for log in "$T"/*.log; do
			[ -e "$log" ] || continue
			echo "----- $log (last 40 lines)" >&2
			tail -n 40 "$log" >&2
		done
	fi
	[ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
# set -e stops a test at the first failing command: say which one.
trap '[[ $- == *e* ]] && echo "FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR

fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_until SECONDS WHAT CMD...: poll CMD every 0.05 s until it succeeds;
# fail naming WHAT after SECONDS. For events, instead of sleeping.
wait_until() {
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	fail "$what: not seen within $secs s"
}
ok() { echo "ok - $*"; }
assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
assert_contains() { grep -qE -- "$2" <<<"$1" || fail "$3: '$2' not found in: $1"; }
assert_not_contains() { ! grep -qE -- "$2" <<<"$1" || fail "$3: '$2' unexpectedly in: $1"; }
assert_file_contains() { grep -qE -- "$2" "$1" || fail "$3: '$2' not in $1"; }
# expect_rc RC CMD... : run CMD, capture output in $OUT, check its exit code.
expect_rc() {
	local want=$1; shift
	set +e
	OUT=$("$@" 2>&1)
	local got=$?
	set -e
	[ "$got" -eq "$want" ] || fail "exit $got (wanted $want) from: $* :: $OUT"
}

# rpc WHO METHOD [FIELD=VALUE...]: rpcprobe's rpc as WHO; sets OUT and
# STATUS (its first word).
rpc() {
	local who=$1
	shift
	set +e
	OUT=$(probe "$who" rpc "$@" 2>&1 </dev/null)
	set -e
	STATUS=${OUT%%[ $'\n']*}
}

# log_since N PATTERN: lines of $LOG after line N, once PATTERN shows up
# among them (or after 5 s).
log_since() {
	local from=$1 pattern=$2 out
	for _ in $(seq 50); do
		out=$(tail -n +"$((from + 1))" "$LOG")
		grep -qE -- "$pattern" <<<"$out" && break
		sleep 0.1
	done
	echo "$out"
}

# make_token [LABEL]: token under $T/hsm, PIN files 0600; exports SOFTHSM2_CONF.
make_token() {
	SFTCA_SIGNER_BIN=$SIGNER SOFTHSM_MODULE=$MODULE "$SRC/hsm-config/init-token.sh" "$T/hsm" "${1:-sftca}" >/dev/null
	export SOFTHSM2_CONF=$T/hsm/softhsm2.conf
}

# make_pki [DIR [CN...]]: service CA, signer and client certificates.
make_pki() {
	local dir=${1:-$T/pki}
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] || set -- ops-admin fmc-east auditor-1 stranger
	"$SRC/hsm-config/dev-pki.sh" "$dir" "$@" >/dev/null
}

# make_expired_cert NAME CN: $T/pki/NAME.{crt,key}, a client certificate for
# CN from the right service CA, valid only in 2020.
make_expired_cert() {
	local name=$1 cn=$2 d=$T/expired-ca
	mkdir -p "$d"
	cat > "$d/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $d/index.txt
new_certs_dir = $d
serial = $d/serial
policy = p
default_md = sha256
[p]
commonName = supplied
CNF
	: > "$d/index.txt"; echo 1000 > "$d/serial"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pki/$name.key" \
		-out "$d/$name.csr" -subj "/CN=$cn" 2>/dev/null
	openssl ca -batch -config "$d/ca.cnf" -cert "$T/pki/service-ca.crt" -keyfile "$T/pki/service-ca.key" \
		-startdate 20200101000000Z -enddate 20210101000000Z -in "$d/$name.csr" -out "$T/pki/$name.crt" 2>/dev/null
}

# write_conf FILE [EXTRA-LINES]: a signer config for this test directory.
# The ledger: with LEDGER_URL (default: PG_URL once this test ran start_pg;
# never a PG_URL from the caller's environment) non-empty, a [ledger]
# section with that url and password_file = LEDGER_PWFILE (default
# PG_PWFILE); LEDGER_URL= (empty) keeps SQLite in state_dir after start_pg.
write_conf() {
	local file=$1 extra=${2:-} url=${LEDGER_URL-${PG_STARTED:+$PG_URL}} ledger=
	[ -z "$url" ] || ledger="[ledger]
url = $url
password_file = ${LEDGER_PWFILE:-${PG_PWFILE:?write_conf: a ledger url needs LEDGER_PWFILE or start_pg}}"
	cat > "$file" <<CONF
[signer]
listen = unix:$T/run/signer.sock
listen = 127.0.0.1:0
state_dir = $T/state
tls_cert = $T/pki/signer.crt
tls_key = $T/pki/signer.key
client_ca = $T/pki/service-ca.crt
sessions = ${SESSIONS:-2}
$extra
$ledger
[pkcs11]
module = $MODULE
token_label = ${TOKEN_LABEL:-sftca}
pin_file = ${PIN_FILE:-$T/hsm/user.pin}
[authz]
ops-admin = admin
fmc-east = issuer:$CA_ID
auditor-1 = auditor
CONF
}

# start_signer CONF [NAME]: run in the background, wait until it serves;
# sets PORT (the TLS port it bound) and SIGNER_PID.
start_signer() {
	local conf=$1 name=${2:-signer}
	local log=$T/$name.log before new
	# The log exists before the background job opens it: reading it first
	# must not fail (the shell's child may not have run yet).
	touch "$log"
	before=$(wc -l <"$log")
	"$SIGNER" --config "$conf" --allow-root >>"$log" 2>&1 &
	SIGNER_PID=$!
	echo "$SIGNER_PID" > "$T/pids/$name"
	for _ in $(seq 200); do
		new=$(tail -n +"$((before + 1))" "$log" 2>/dev/null)
		if grep -q "serving (" <<<"$new"; then
			PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' <<<"$new" | tail -1 | cut -d: -f2)
			return 0
		fi
		kill -0 "$SIGNER_PID" 2>/dev/null || fail "signer exited during start: $(tail -5 "$log")"
		sleep 0.1
	done
	fail "signer did not start within 20 s"
}

# stop_signer [NAME]: SIGTERM, wait, and require a clean exit.
stop_signer() {
	local name=${1:-signer} pid rc
	pid=$(cat "$T/pids/$name")
	kill -TERM "$pid"
	set +e
	wait "$pid"
	rc=$?
	set -e
	rm -f "$T/pids/$name"
	[ "$rc" -eq 0 ] || fail "signer exited $rc on SIGTERM"
}

tls() { echo --signer "127.0.0.1:$PORT" --tls-cert "$T/pki/$1.crt" --tls-key "$T/pki/$1.key" --tls-ca "$T/pki/service-ca.crt"; }
# as ROLE-CN sftca ARGS... : the CLI over mutual TLS as that client.
as() { local cn=$1; shift; "$SFTCA" $(tls "$cn") "$@"; }
# local_sftca ARGS... : the CLI over the unix socket (unix_role).
local_sftca() { "$SFTCA" --signer "unix:$T/run/signer.sock" "$@"; }
probe() { local cn=$1; shift; "$PROBE" --signer "127.0.0.1:$PORT" --tls-ca "$T/pki/service-ca.crt" \
	${cn:+--tls-cert "$T/pki/$cn.crt" --tls-key "$T/pki/$cn.key"} "$@"; }

# p11 ARGS...: pkcs11-tool on the test token. Logging in needs the PIN on
# pkcs11-tool's command line (it has no PIN-file option); this is a
# throwaway token made for this test, never a real one.
p11() { pkcs11-tool --module "$MODULE" --token-label "${TOKEN_LABEL:-sftca}" "$@"; }
p11_login() { p11 --login --pin "$(cat "$T/hsm/user.pin")" "$@"; }

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	fail "no free port"
}

# free_net: a 127.A.B prefix nothing listens on, for one test's simulated
# devices: tests run in parallel and sftunnel's port is fixed. (The devices'
# self-test picks A from 100-199, this from 1-99.)
free_net() {
	local a b busy
	busy=$(ss -Htln 2>/dev/null | awk '{print $4}')
	for _ in $(seq 50); do
		a=$((1 + RANDOM % 99)) b=$((RANDOM % 250))
		grep -qE "^127\.$a\.$b\.[0-9]+:" <<<"$busy" || { echo "127.$a.$b"; return 0; }
	done
	fail "no free 127.x.y.0/24 found"
}

# tls_handshake SERVER_CERT SERVER_KEY CLIENT_CERT CLIENT_KEY BUNDLE [SERVER_BUNDLE]:
# a TLS 1.2 mutual handshake between openssl s_server and s_client, the
# independent judge of what sftunnel would accept. Sets OUT; returns 0 when
# both sides verified the other.
tls_handshake() {
	local scert=$1 skey=$2 ccert=$3 ckey=$4 cbundle=$5 sbundle=${6:-$5} port pid rc
	port=$(free_port)
	openssl s_server -accept "127.0.0.1:$port" -cert "$scert" -key "$skey" -CAfile "$sbundle" \
		-Verify 2 -verify_return_error -tls1_2 -naccept 1 -quiet >"$T/s_server.out" 2>&1 &
	pid=$!
	echo "$pid" > "$T/pids/s_server.$port"
	for _ in $(seq 50); do [ -n "$(ss -Hltn "sport = :$port")" ] && break; sleep 0.1; done
	set +e
	OUT=$(echo ping | timeout 10 openssl s_client -connect "127.0.0.1:$port" -cert "$ccert" -key "$ckey" \
		-CAfile "$cbundle" -verify_return_error -tls1_2 -servername localhost 2>&1)
	rc=$?
	wait "$pid"
	local src=$?
	set -e
	rm -f "$T/pids/s_server.$port"
	OUT="$OUT
$(cat "$T/s_server.out")"
	[ "$rc" -eq 0 ] && [ "$src" -eq 0 ] && grep -q "Verify return code: 0 (ok)" <<<"$OUT"
}

# signer_with_ca [EXTRA-CONF-LINES]: a token, the PKI, the signer serving
# $T/signer.conf, and the CA $CA_ID created.
signer_with_ca() {
	make_token
	make_pki
	write_conf "$T/signer.conf" "${1:-}"
	start_signer "$T/signer.conf"
	expect_rc 0 as ops-admin ca create --ca "$CA_ID"
}

# Simulated FTDs (tests/devices), stopped when the test ends.
DEV=$SRC/tests/devices
D=$T/devices
ctl() { "$DEV/device-ctl.sh" "$D" "$@"; }
stop_devices() { "$DEV/stop-devices.sh" --state "$D" >/dev/null 2>&1 || true; }
# start_fmc_devices FMC N [SHELL]: N devices seeded from the FMC tree, each on
# its own loopback address (sftunnel's port is fixed); sets SSH_PORT, NET,
# CSV (devices.csv) and KH (known_hosts). DEVICES_SSH_PORT: that port
# instead of a free one (22 for a vendor devices.csv, which has no port
# column: only in a network namespace of the test's own, see in_own_netns).
start_fmc_devices() {
	need unshare nsenter perl ss
	[ -x "$SSHD" ] || skip "$SSHD is not installed (openssh-server)"
	on_exit stop_devices
	SSH_PORT=${DEVICES_SSH_PORT:-$(free_port)}
	NET=$(free_net)
	"$DEV/start-devices.sh" --state "$D" --count "$2" --fmc-uuid "$CA_ID" --shell "${3:-mixed}" \
		--first-ip "$NET.10" --ssh-port "$SSH_PORT" --seed-from "$1" >"$T/devices.out" 2>&1 ||
		fail "devices did not start: $(tail -5 "$T/devices.out")"
	CSV=$D/devices.csv
	KH=$D/known_hosts
}

# PostgreSQL for the ledger (tests/pg.sh): start_pg starts a cluster of this
# test's own as an unprivileged user (postgres, else the system user
# sftca-pgtest, created if missing), in a directory of its own beside $T
# (the server's user cannot enter $T), log in $T/postgres.log, stopped and
# removed when the test ends, pass or fail. Exports PG_PORT, PG_URL
# (postgresql://sftca@127.0.0.1:PORT/sftca), PG_PWFILE ($T/ledger.pw, 0600),
# PG_DIR; write_conf then adds the [ledger] section. Then: psql_q SQL (as
# sftca over TCP with the password), pg_stop [immediate], pg_start,
# pg_restart. Once per test (the exit hook removes one cluster).
. "$SRC/tests/pg.sh"
# Set by the test, after this file: not inherited from the caller.
PG_STARTED=
unset LEDGER_URL LEDGER_PWFILE
start_pg() {
	local why dir
	[ -z "$PG_STARTED" ] || fail "start_pg: this test already has its PostgreSQL ($PG_URL)"
	PG_STARTED=1
	why=$(pg_missing)
	[ -z "$why" ] || skip "$why"
	need ss
	dir=$(mktemp -d /tmp/sftca-pg.XXXXXX)
	PG_DIR=$dir
	on_exit pg_teardown
	pg_setup "$dir" "$T/postgres.log" "$T/ledger.pw" || fail "PostgreSQL did not start (log: $T/postgres.log)"
}
