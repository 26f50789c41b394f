#!/usr/bin/env bash
# Issue 6/7: the signer under concurrent load, meant to run with a
# ThreadSanitizer build (ctest registers it as tsan_it_concurrency, and as
# it_concurrency for the ordinary build): many
# IssueBatch calls in flight over more handler threads than token sessions,
# status and listing calls beside them, a CA rotation and finalize in the
# middle, and the token lost and recovered while signing. Passes when every
# call is answered, the ledger is intact and no data race has an access in
# sftca's own code (tests/sanitizers/tsan-own-races.py says why only those).
. "$(dirname "$0")/lib.sh"
need sqlite3
SHIM=$BUILD/lib/p11shim.so
[ -x "$CBUILD/bin/bench_issue" ] || skip "bench_issue not built"

make_token
make_pki
export SFTCA_SHIM_MODULE=$MODULE SFTCA_SHIM_CONTROL=$T/shim.rules SFTCA_SHIM_LOG=$T/shim.log
: > "$SFTCA_SHIM_CONTROL"
SESSIONS=2 MODULE=$SHIM write_conf "$T/signer.conf" "[limits]
workers = 6
max_calls = 64"
# exitcode=0: the judge below decides which reports count.
export TSAN_OPTIONS="halt_on_error=0 exitcode=0 second_deadlock_stack=1 history_size=4 suppressions=$SRC/tests/sanitizers/tsan.supp ${TSAN_OPTIONS:-}"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID" --key-type ec:p256

load() { # N BATCH CONCURRENCY
	"$CBUILD/bin/bench_issue" "127.0.0.1:$PORT" "$T/pki/fmc-east.crt" "$T/pki/fmc-east.key" \
		"$T/pki/service-ca.crt" "$CA_ID" "$1" "$2" "$3" 8
}
load 1500 50 8 >"$T/load1.out" 2>&1 &
l1=$!
for _ in $(seq 20); do as auditor-1 status >/dev/null; as auditor-1 ledger --ca "$CA_ID" >/dev/null; done &
s1=$!
sleep 0.5
expect_rc 0 as ops-admin ca rotate --ca "$CA_ID"
wait "$l1" || fail "load during a rotation: $(cat "$T/load1.out")"
wait "$s1"
expect_rc 0 as ops-admin ca finalize --ca "$CA_ID" --force
ok "1500 certificates in 8 concurrent streams across a rotation, with status and ledger reads beside them"

# The token goes away for a moment while 8 streams sign; the client's
# retries are the caller's business: here only the signer's correctness
# counts (no crash, no race, no hang, every call answered).
load 1500 50 8 >"$T/load2.out" 2>&1 &
l2=$!
sleep 0.3
echo 'C_Sign CKR_DEVICE_ERROR 3' > "$SFTCA_SHIM_CONTROL"
sleep 1
: > "$SFTCA_SHIM_CONTROL"
wait "$l2" || true
for _ in $(seq 100); do [ "$(probe ops-admin health)" = "SERVING" ] && break; sleep 0.1; done
assert_eq "$(probe ops-admin health)" "SERVING" "serving after the token came back"
ok "token lost and recovered under 8 concurrent streams: every call answered, serving again"

stop_signer
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "intact" "ledger intact"
judge=$(python3 "$SRC/tests/sanitizers/tsan-own-races.py" "$T/signer.log" sftca-signer p11shim.so) ||
	fail "$judge"
ok "ledger intact; no data race in sftca's own code (${judge%%$'\n'*})"
