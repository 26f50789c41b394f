#!/usr/bin/env bash
# sftca benchmarks: every figure measured in this run, on this machine,
# as the median of REPS repetitions, printed in one table with the ratios.
#
# usage: tests/perf/run.sh [--count N] [--reps R] [--sessions N] [SECTION...]
#   sections (default: all, in this order):
#     sign    raw token RSA-2048 signatures/s through libp11 (1 session, N sessions)
#             and sftca end to end over gRPC with mutual TLS (sessions = 1 and N),
#             COUNT certificates from pre-generated CSRs
#     vendor  the vendor-script way: one `openssl x509 -req` process per certificate,
#             CA key in the same token through the pkcs11 engine, 200 certificates
#     cfssl   cfssl 1.2 `serve` with its key on disk, /api/v1/cfssl/sign over
#             keep-alive connections (installs golang-cfssl if missing)
#     fleet   `sftca issue` on a tree of COUNT peers with existing keys
#     push    `sftca push` to 100 simulated devices, --jobs 1 vs --jobs 16
#     rss     signer peak RSS after 10k and after 100k issuances
#     pg      (2) with the ledger on PostgreSQL ([ledger] url): one signer, then two
#             signers sharing the token and the database, beside the SQLite ledger
#             (not in the default list until the PostgreSQL ledger is built)
# env: SFTCA_BUILD (default ./build), KEEP=1 keeps the work directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$here/../.." && pwd)
BUILD=${SFTCA_BUILD:-$SRC/build}
MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
COUNT=10000 REPS=3 NSESS=$(nproc)
sections=()
while [ $# -gt 0 ]; do
	case $1 in
	--count) COUNT=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--sessions) NSESS=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) sections+=("$1"); shift ;;
	esac
done
[ ${#sections[@]} -gt 0 ] || sections=(sign vendor cfssl fleet push rss)
for b in sftca sftca-signer bench_raw bench_issue; do
	[ -x "$BUILD/bin/$b" ] || { echo "build first: $BUILD/bin/$b missing" >&2; exit 1; }
done

W=$(mktemp -d /tmp/sftca-perf.XXXXXX)
SIGNER_PID=
SIGNER_PIDS=()
LEDGER=
DEVICES_STATE=
. "$SRC/tests/pg.sh"
cleanup() {
	[ -n "$DEVICES_STATE" ] && "$SRC/tests/devices/stop-devices.sh" --state "$DEVICES_STATE" >/dev/null 2>&1
	for p in "${SIGNER_PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	pg_teardown
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
CA_ID=cdb123c8-4347-11ef-aca1-f3aa241412a1
ROWS=()
row() { ROWS+=("$(printf '%-58s %12s %s' "$1" "$2" "${3:-}")"); printf '  %-56s %12s %s\n' "$1" "$2" "${3:-}" >&2; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

setup_token() {
	SFTCA_SIGNER_BIN=$BUILD/bin/sftca-signer "$SRC/hsm-config/init-token.sh" "$W/hsm" sftca >/dev/null
	export SOFTHSM2_CONF=$W/hsm/softhsm2.conf
	"$SRC/hsm-config/dev-pki.sh" "$W/pki" ops-admin fmc-east >/dev/null
}

# start_signer SESSIONS [NAME]: NAME (default signer) has its own config,
# socket, log and state directory ($W/state for the default); LEDGER, when
# set, is its [ledger] section. Sets SIGNER_PID and PORT.
start_signer() {
	local name=${2:-signer} state=$W/state
	[ "$name" = signer ] || state=$W/state-$name
	cat > "$W/$name.conf" <<CONF
[signer]
listen = unix:$W/$name.sock
listen = 127.0.0.1:0
state_dir = $state
tls_cert = $W/pki/signer.crt
tls_key = $W/pki/signer.key
client_ca = $W/pki/service-ca.crt
sessions = $1
[limits]
max_calls = 256
${LEDGER:-}
[pkcs11]
module = $MODULE
token_label = sftca
pin_file = $W/hsm/user.pin
[authz]
ops-admin = admin
fmc-east = issuer
CONF
	: > "$W/$name.log"
	"$BUILD/bin/sftca-signer" --config "$W/$name.conf" --allow-root >>"$W/$name.log" 2>&1 &
	SIGNER_PID=$!
	SIGNER_PIDS+=("$SIGNER_PID")
	for _ in $(seq 100); do
		grep -q "serving (" "$W/$name.log" && break
		kill -0 "$SIGNER_PID" 2>/dev/null || break
		sleep 0.1
	done
	PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$W/$name.log" | tail -1 | cut -d: -f2) || true
	[ -n "$PORT" ] || { echo "signer $name did not start: $(tail -3 "$W/$name.log")" >&2; return 1; }
}
# stop_signer [PID]: that signer (default: the last one started).
stop_signer() {
	local pid=${1:-$SIGNER_PID} p left=()
	kill "$pid"; wait "$pid" || true
	for p in "${SIGNER_PIDS[@]}"; do [ "$p" = "$pid" ] || left+=("$p"); done
	SIGNER_PIDS=("${left[@]}")
	[ "$pid" != "$SIGNER_PID" ] || SIGNER_PID=
}

key_label() {
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" --json status |
		sed -n 's/.*"key_label": "\(.*\)".*/\1/p' | head -1
}

raw_rate() { # THREADS
	for _ in $(seq "$REPS"); do
		"$BUILD/bin/bench_raw" "$MODULE" sftca "$W/hsm/user.pin" "$LABEL" "$1" 5
	done | median
}

bench() { # PORT SESSIONS CA: one IssueBatch run of COUNT certificates, certs/s
	"$BUILD/bin/bench_issue" "127.0.0.1:$1" "$W/pki/fmc-east.crt" "$W/pki/fmc-east.key" \
		"$W/pki/service-ca.crt" "$3" "$COUNT" 500 $((2 * $2 + 2)) 32
}

e2e_rate() { # SESSIONS [NAME [CA]]
	start_signer "$1" "${2:-}"
	for _ in $(seq "$REPS"); do bench "$PORT" "$1" "${3:-$CA_ID}"; done | median
	stop_signer
}

ensure_ca() {
	[ -n "${LABEL:-}" ] && return 0
	start_signer 1
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" ca create --ca "$CA_ID" >/dev/null
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" ca cert --ca "$CA_ID" --out "$W/ca.pem" >/dev/null
	LABEL=$(key_label)
	stop_signer
}

section_sign() {
	local raw1 rawn e1 en
	ensure_ca
	raw1=$(raw_rate 1)
	row "1. raw token RSA-2048 signatures/s, libp11, 1 session" "$raw1"
	rawn=$(raw_rate "$NSESS")
	row "1. raw token RSA-2048 signatures/s, libp11, $NSESS sessions" "$rawn"
	e1=$(e2e_rate 1)
	row "2. sftca end to end certs/s (gRPC mTLS), sessions=1" "$e1" "= $(ratio "$e1" "$raw1") x raw(1)"
	en=$(e2e_rate "$NSESS")
	row "2. sftca end to end certs/s (gRPC mTLS), sessions=$NSESS" "$en" "= $(ratio "$en" "$rawn") x raw($NSESS)"
	RAW1=$raw1 RAWN=$rawn E2E=$en
}

# One CSR per certificate for the comparisons that are not sftca.
make_csrs() { # N DIR
	mkdir -p "$2"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2/key.pem" 2>/dev/null
	for i in $(seq "$1"); do
		openssl req -new -key "$2/key.pem" -subj "/CN=peer-$i" -out "$2/$i.csr" 2>/dev/null
	done
}

section_vendor() {
	local n=200 t0 t1 rate sftca_rate id
	ensure_ca
	make_csrs "$n" "$W/vendor"
	cat > "$W/vendor/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
MODULE_PATH = $MODULE
init = 0
CNF
	printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$W/vendor/ext"
	# The key by CKA_ID (sftca sets it to SHA-1 of the label), PIN from the file.
	id=$(printf '%s' "$LABEL" | sha1sum | cut -c1-40 | sed 's/../%&/g')
	t0=$(date +%s.%N)
	for i in $(seq "$n"); do
		OPENSSL_CONF=$W/vendor/openssl.cnf openssl x509 -req -in "$W/vendor/$i.csr" -CA "$W/ca.pem" \
			-engine pkcs11 -CAkeyform engine -CAkey "pkcs11:token=sftca;id=$id;type=private?pin-source=file:$W/hsm/user.pin" \
			-set_serial "$i" -days 3650 -sha256 -extfile "$W/vendor/ext" -out "$W/vendor/$i.pem" 2>>"$W/vendor/err" ||
			{ echo "vendor way failed: $(tail -2 "$W/vendor/err")" >&2; return 1; }
	done
	t1=$(date +%s.%N)
	openssl verify -CAfile "$W/ca.pem" "$W/vendor/$n.pem" >/dev/null || { echo "vendor-way certificate does not verify" >&2; return 1; }
	rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", n/(b-a)}')
	sftca_rate=${E2E:-}
	row "3. vendor way: openssl x509 -req + pkcs11 engine, per cert" "$rate" \
		"${sftca_rate:+sftca is $(ratio "$sftca_rate" "$rate") x faster}"
}

section_cfssl() {
	local port n=2000 rate
	if ! command -v cfssl >/dev/null; then
		if [ "$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-cfssl >/dev/null; fi
	fi
	command -v cfssl >/dev/null || { row "4. cfssl: not installed (golang-cfssl)" "-"; return 0; }
	mkdir -p "$W/cfssl"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/cfssl/ca-key.pem" -out "$W/cfssl/ca.pem" -days 3650 \
		-subj "/CN=cfssl CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	cat > "$W/cfssl/config.json" <<JSON
{"signing": {"default": {"expiry": "87600h", "usages": ["server auth", "client auth"]}}}
JSON
	port=$(awk 'BEGIN {srand(); print 20000 + int(rand() * 30000)}')
	cfssl serve -address 127.0.0.1 -port "$port" -ca "$W/cfssl/ca.pem" -ca-key "$W/cfssl/ca-key.pem" \
		-config "$W/cfssl/config.json" >"$W/cfssl/serve.log" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do grep -q "Now listening" "$W/cfssl/serve.log" && break; sleep 0.1; done
	make_csrs 32 "$W/cfssl/csrs"
	rate=$(for _ in $(seq "$REPS"); do
		python3 "$here/cfssl_client.py" 127.0.0.1 "$port" "$W/cfssl/csrs" "$n" $((2 * NSESS + 2))
	done | median)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	row "4. cfssl 1.2 serve, key on disk, /api/v1/cfssl/sign keep-alive" "$rate" \
		"${E2E:+sftca (key in the token) is $(ratio "$E2E" "$rate") x cfssl}"
}

section_fleet() {
	local t0 t1 wall pure
	ensure_ca
	"$SRC/scripts/make-fmc-tree.sh" --root "$W/fleet" --fmc-uuid "$CA_ID" --peers "$COUNT" --key-pool 64 >/dev/null
	start_signer "$NSESS"
	# First run gives every peer a certificate; the measured run re-certifies
	# all of them (--force): keys exist, nothing moves.
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" issue --ca "$CA_ID" --root "$W/fleet" >/dev/null
	t0=$(date +%s.%N)
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" issue --ca "$CA_ID" --root "$W/fleet" --force >/dev/null
	t1=$(date +%s.%N)
	stop_signer
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b-a}')
	pure=$(awk -v n="$COUNT" -v r="${RAWN:-$(raw_rate "$NSESS")}" 'BEGIN {printf "%.1f", n/r}')
	row "5. fleet: sftca issue --force, $COUNT peers, wall seconds" "$wall" \
		"= $(ratio "$wall" "$pure") x pure signing ($pure s); token busy $(awk -v a="$pure" -v b="$wall" 'BEGIN {printf "%d%%", 100*a/b}')"
}

section_push() {
	local d=$W/devs t1 t16
	ensure_ca
	"$SRC/scripts/make-fmc-tree.sh" --root "$W/pushfmc" --fmc-uuid "$CA_ID" --peers 100 --key-pool 8 \
		--legacy-ca "$W/legacy" >/dev/null
	"$SRC/tests/devices/start-devices.sh" --state "$d" --count 100 --fmc-uuid "$CA_ID" --shell mixed \
		--first-ip 127.0.1.2 --peer-key ec --seed-from "$W/pushfmc" >/dev/null
	DEVICES_STATE=$d
	start_signer "$NSESS"
	push_time() { # JOBS: issue --force (every file changes), then time the push
		"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" issue --ca "$CA_ID" --root "$W/pushfmc" --force >/dev/null
		local a b
		a=$(date +%s.%N)
		"$BUILD/bin/sftca" push --ca "$CA_ID" --root "$W/pushfmc" --devices "$d/devices.csv" \
			--known-hosts "$d/known_hosts" --failed-push "$W/FAILED_PUSH" --jobs "$1" >"$W/push-$1.out" ||
			{ echo "push --jobs $1 failed: $(tail -3 "$W/push-$1.out")" >&2; return 1; }
		b=$(date +%s.%N)
		awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b-a}'
	}
	t1=$(push_time 1)
	t16=$(push_time 16)
	stop_signer
	"$SRC/tests/devices/stop-devices.sh" --state "$d" >/dev/null
	DEVICES_STATE=
	row "6. push to 100 devices (50 direct, 50 ftd), --jobs 1, seconds" "$t1"
	row "6. push to 100 devices, --jobs 16, seconds" "$t16" "speed-up $(ratio "$t1" "$t16") x"
}

section_rss() {
	local pid hwm10 hwm100
	ensure_ca
	start_signer "$NSESS"
	pid=$SIGNER_PID
	issue_n() {
		"$BUILD/bin/bench_issue" "127.0.0.1:$PORT" "$W/pki/fmc-east.crt" "$W/pki/fmc-east.key" \
			"$W/pki/service-ca.crt" "$CA_ID" "$1" 1000 4 32 >/dev/null
	}
	issue_n 10000
	hwm10=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	issue_n 90000
	hwm100=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	stop_signer
	row "7. signer peak RSS after 10k issuances, MiB" "$(awk -v k="$hwm10" 'BEGIN {printf "%.1f", k/1024}')"
	row "7. signer peak RSS after 100k issuances, MiB" "$(awk -v k="$hwm100" 'BEGIN {printf "%.1f", k/1024}')" \
		"growth $(awk -v a="$hwm10" -v b="$hwm100" 'BEGIN {printf "%+.1f%%", 100*(b-a)/a}')"
}

# pg: the ledger on PostgreSQL (issue 14) beside SQLite, the measurement of
# (2) with sessions=N: SQLite in state_dir, one signer whose [ledger] url is
# a PostgreSQL of this run's own (tests/pg.sh, on 127.0.0.1 as an
# unprivileged user), and two signers at once (two state directories, the
# same token and database, each driven by its own bench_issue; the figure is
# their sum). The three run in turn within each repetition, all signers
# started once: on a shared machine the load drifts between sections by more
# than the ledger costs, so each ratio is also given per repetition. A CA of
# its own: a CA's key label is made from its id, and the token already holds
# CA_ID's from the SQLite ledger.
PG_CA_ID=0f6b9f2e-9d1a-4c1e-8f7d-2b5c3a9e4d10

section_pg() {
	local why sqlite one two r ps pa pb sport porta portb
	why=$(pg_missing)
	[ -z "$why" ] || { row "8. ledger on PostgreSQL: not run: $why" "-"; return 0; }
	ensure_ca
	pg_setup "$(mktemp -d /tmp/sftca-perf-pg.XXXXXX)" "$W/postgres.log" "$W/ledger.pw" || return 1
	LEDGER="[ledger]
url = $PG_URL
password_file = $PG_PWFILE"
	start_signer 1 pg-a
	"$BUILD/bin/sftca" --signer "unix:$W/pg-a.sock" ca create --ca "$PG_CA_ID" >/dev/null ||
		{ echo "ca create on the PostgreSQL ledger failed: $(tail -3 "$W/pg-a.log")" >&2; return 1; }
	stop_signer
	start_signer "$NSESS" pg-a; pa=$SIGNER_PID porta=$PORT
	start_signer "$NSESS" pg-b; pb=$SIGNER_PID portb=$PORT
	LEDGER=
	start_signer "$NSESS"; ps=$SIGNER_PID sport=$PORT
	for r in $(seq "$REPS"); do
		bench "$sport" "$NSESS" "$CA_ID" >"$W/sq.rate.$r"
		bench "$porta" "$NSESS" "$PG_CA_ID" >"$W/pg.rate.$r"
		bench "$porta" "$NSESS" "$PG_CA_ID" >"$W/pg-a.rate.$r" &
		bench "$portb" "$NSESS" "$PG_CA_ID" >"$W/pg-b.rate.$r"
		wait $!
		# Each must have issued all its certificates (bench_issue says so on failure).
		for f in sq pg pg-a pg-b; do
			[ -s "$W/$f.rate.$r" ] || { echo "pg section: a bench_issue run ($f) failed" >&2; return 1; }
		done
		awk '{s += $1} END {print s}' "$W/pg-a.rate.$r" "$W/pg-b.rate.$r" >"$W/two.rate.$r"
	done
	stop_signer "$ps"
	stop_signer "$pb"
	stop_signer "$pa"
	pg_teardown
	sqlite=$(cat "$W"/sq.rate.* | median)
	one=$(cat "$W"/pg.rate.* | median)
	two=$(cat "$W"/two.rate.* | median)
	# per_rep NAME: NAME's rate over SQLite's, repetition by repetition;
	# their median is the ratio printed (a ratio of the medians would pair
	# figures taken under different loads).
	per_rep() { for r in $(seq "$REPS"); do echo "$(ratio "$(cat "$W/$1.rate.$r")" "$(cat "$W/sq.rate.$r")")"; done; }
	row "8. SQLite ledger certs/s, 1 signer, sessions=$NSESS" "$sqlite"
	row "8. PostgreSQL ledger certs/s, 1 signer, sessions=$NSESS" "$one" \
		"= $(per_rep pg | median) x SQLite (per repetition: $(per_rep pg | tr '\n' ' ' | sed 's/ $//'))"
	row "8. PostgreSQL ledger certs/s, 2 signers, sessions=$NSESS each" "$two" \
		"= $(per_rep two | median) x SQLite (1 signer; per repetition: $(per_rep two | tr '\n' ' ' | sed 's/ $//')); one token, one database"
}

echo "sftca benchmarks: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $COUNT certificates, median of $REPS" >&2
setup_token
for s in "${sections[@]}"; do "section_$s"; done
echo
echo "sftca benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), median of $REPS)"
printf '%-58s %12s %s\n' "measure" "value" "ratio"
printf '%s\n' "${ROWS[@]}"
