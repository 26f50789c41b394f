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
DB=$T/state/ledger.db
issued() { sqlite3 "$DB" "PRAGMA busy_timeout=5000; SELECT COUNT(*) FROM certificates WHERE state='$1'" | tail -1; }
issued_at_least() { [ "$(issued issued)" -ge "$1" ]; }
running() { kill -0 "$1" 2>/dev/null; }
serving() { [ "$(probe ops-admin health)" = SERVING ]; }
logged_in_again() { [ "$(grep -c '^C_Login ' "$SFTCA_SHIM_LOG")" -gt "$logins_before" ]; }

# 4000: enough that the unsanitized signer is still busy when the rotation returns.
load 4000 50 8 >"$T/load1.out" 2>&1 &
l1=$!
for _ in $(seq 20); do as auditor-1 status >/dev/null; as auditor-1 ledger --ca "$CA_ID" >/dev/null; done &
s1=$!
# The rotation must land inside the load: after its first batches, before its end.
wait_until 120 "first certificates of the load" issued_at_least 100
expect_rc 0 as ops-admin ca rotate --ca "$CA_ID"
running "$l1" || fail "the load ended before the rotation did: the test proves no overlap (raise the load)"
wait "$l1" || fail "load during a rotation: $(cat "$T/load1.out")"
wait "$s1"
gens=$(sqlite3 "$DB" "SELECT COUNT(DISTINCT generation) FROM certificates WHERE state='issued'")
assert_eq "$gens" "2" "certificates of the one load signed by both generations"
expect_rc 0 as ops-admin ca finalize --ca "$CA_ID" --force
ok "4000 certificates in 8 concurrent streams across a rotation (signed by both generations), with status and ledger reads beside them"

# The token goes away for a moment while 8 streams sign; the client's
# retries are the caller's business: here only the signer's correctness
# counts (no crash, no race, no hang, every call answered).
logins_before=$(grep -c '^C_Login ' "$SFTCA_SHIM_LOG" || true)
before=$(issued issued)
load 1500 50 8 >"$T/load2.out" 2>&1 &
l2=$!
wait_until 120 "first certificates of the second load" issued_at_least $((before + 100))
# A CA key's signatures only: the audit key's checkpoints fail the token
# as well, but outside any batch, and under load they can take all three.
echo "C_Sign CKR_DEVICE_ERROR 3 0 sftca/$CA_ID/" > "$SFTCA_SHIM_CONTROL"
running "$l2" || fail "the load ended before the token fault: the test proves no overlap"
wait_until 60 "the signer noticing the token loss" grep -q "token 'sftca' lost" "$T/signer.log"
wait_until 60 "the token coming back (a new C_Login)" logged_in_again
: > "$SFTCA_SHIM_CONTROL"
# The client gives up on the items the lost token failed: that is the
# caller's business. Every call must be answered (the load ends) either way.
set +e
wait "$l2"
set -e
wait_until 30 "serving after the token came back" serving
abandoned=$(issued abandoned)
[ "$abandoned" -ge 1 ] || fail "no row abandoned: the token fault did not land inside a batch"
ok "token lost under 8 concurrent streams ($abandoned items abandoned mid-batch), recovered with a new login, every call answered, serving again"

stop_signer
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "intact" "ledger intact"
judge=$(python3 "$SRC/tests/sanitizers/tsan-own-races.py" "$T/signer.log" sftca-signer p11shim.so) ||
	fail "$judge"
ok "ledger intact; no data race in sftca's own code (${judge%%$'\n'*})"
