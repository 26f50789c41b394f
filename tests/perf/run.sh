#!/usr/bin/env bash
# sftca benchmarks: every figure measured in this run, on this machine,
# as the median of REPS repetitions, printed in one table with the ratios.
#
# usage: tests/perf/run.sh [--count N] [--reps R] [--sessions N] [SECTION...]
#   sections: sign (default: all)
#     sign  raw token RSA-2048 signatures/s through libp11 (1 session, N sessions)
#           and sftca end to end over gRPC with mutual TLS (sessions = 1 and N),
#           COUNT certificates from pre-generated CSRs
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
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) sections+=("$1"); shift ;;
	esac
done
[ ${#sections[@]} -gt 0 ] || sections=(sign)
for b in sftca sftca-signer bench_raw bench_issue; do
	[ -x "$BUILD/bin/$b" ] || { echo "build first: $BUILD/bin/$b missing" >&2; exit 1; }
done

W=$(mktemp -d /tmp/sftca-perf.XXXXXX)
SIGNER_PID=
cleanup() {
	[ -n "$SIGNER_PID" ] && kill "$SIGNER_PID" 2>/dev/null && wait "$SIGNER_PID" 2>/dev/null
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

# start_signer SESSIONS
start_signer() {
	cat > "$W/signer.conf" <<CONF
[signer]
listen = unix:$W/signer.sock
listen = 127.0.0.1:0
state_dir = $W/state
tls_cert = $W/pki/signer.crt
tls_key = $W/pki/signer.key
client_ca = $W/pki/service-ca.crt
sessions = $1
[limits]
max_calls = 256
[pkcs11]
module = $MODULE
token_label = sftca
pin_file = $W/hsm/user.pin
[authz]
ops-admin = admin
fmc-east = issuer
CONF
	: > "$W/signer.log"
	"$BUILD/bin/sftca-signer" --config "$W/signer.conf" --allow-root >>"$W/signer.log" 2>&1 &
	SIGNER_PID=$!
	for _ in $(seq 100); do grep -q "serving (" "$W/signer.log" && break; sleep 0.1; done
	PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$W/signer.log" | tail -1 | cut -d: -f2)
}
stop_signer() { kill "$SIGNER_PID"; wait "$SIGNER_PID" || true; SIGNER_PID=; }

key_label() {
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" --json status |
		sed -n 's/.*"key_label": "\(.*\)".*/\1/p' | head -1
}

raw_rate() { # THREADS
	for _ in $(seq "$REPS"); do
		"$BUILD/bin/bench_raw" "$MODULE" sftca "$W/hsm/user.pin" "$LABEL" "$1" 5
	done | median
}

e2e_rate() { # SESSIONS
	start_signer "$1"
	for _ in $(seq "$REPS"); do
		"$BUILD/bin/bench_issue" "127.0.0.1:$PORT" "$W/pki/fmc-east.crt" "$W/pki/fmc-east.key" \
			"$W/pki/service-ca.crt" "$CA_ID" "$COUNT" 500 $((2 * $1 + 2)) 32
	done | median
	stop_signer
}

section_sign() {
	start_signer 1
	"$BUILD/bin/sftca" --signer "unix:$W/signer.sock" ca create --ca "$CA_ID" >/dev/null
	LABEL=$(key_label)
	stop_signer
	local raw1 rawn e1 en
	raw1=$(raw_rate 1)
	row "1. raw token RSA-2048 signatures/s, libp11, 1 session" "$raw1"
	rawn=$(raw_rate "$NSESS")
	row "1. raw token RSA-2048 signatures/s, libp11, $NSESS sessions" "$rawn"
	e1=$(e2e_rate 1)
	row "2. sftca end to end certs/s (gRPC mTLS), sessions=1" "$e1" "= $(ratio "$e1" "$raw1") x raw(1)"
	en=$(e2e_rate "$NSESS")
	row "2. sftca end to end certs/s (gRPC mTLS), sessions=$NSESS" "$en" "= $(ratio "$en" "$rawn") x raw($NSESS)"
}

echo "sftca benchmarks: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $COUNT certificates, median of $REPS" >&2
setup_token
for s in "${sections[@]}"; do "section_$s"; done
echo
echo "sftca benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), median of $REPS)"
printf '%-58s %12s %s\n' "measure" "value" "ratio"
printf '%s\n' "${ROWS[@]}"
