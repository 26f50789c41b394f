#!/usr/bin/env bash
# The client's threaded paths under ThreadSanitizer (ctest: tsan_client):
# `sftca issue --jobs`, `sftca push --jobs` and `sftca verify --live --jobs`
# run from a TSan build of sftca (SFTCA_TSAN_CLIENT_BUILD) against the
# ordinary signer and simulated FTDs, successes and failures mixed so the
# threads also race on their error paths (an unreachable device, a wrong
# password, a dead sftunnel). Passes when every command does what it does
# in the ordinary build and no data race has an access in sftca's own code
# (tests/sanitizers/tsan-own-races.py says which reports count).
. "$(dirname "$0")/../integration/lib.sh"
TSAN_BUILD=${SFTCA_TSAN_CLIENT_BUILD:?SFTCA_TSAN_CLIENT_BUILD must name the TSan build tree}
SFTCA=$TSAN_BUILD/bin/sftca
[ -x "$SFTCA" ] || fail "$SFTCA is not built (cmake --build $TSAN_BUILD --target sftca)"
# A client without TSan would pass every check below while proving nothing.
ldd "$SFTCA" | grep libtsan >/dev/null || fail "$SFTCA is not built with ThreadSanitizer (-DSFTCA_TSAN=ON)"

# Each client process writes its reports to $T/tsan.PID; exitcode=0: the
# judge decides which reports count. Only the client runs under TSan.
export TSAN_OPTIONS="halt_on_error=0 exitcode=0 second_deadlock_stack=1 history_size=4 log_path=$T/tsan suppressions=$SRC/tests/sanitizers/tsan.supp ${TSAN_OPTIONS:-}"
signer_with_ca
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 8 --legacy-ca "$T/legacy" >/dev/null
start_fmc_devices "$FMC" 8
names=($(tail -n +2 "$CSV" | cut -d, -f1))

# issue: key generation, CSRs and file writes on 4 threads, 3 batches.
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self --force --jobs 4 --batch 3
assert_contains "$OUT" "9 issued" "issue of 8 peers and the FMC itself"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC"
ok "issue --jobs 4: 8 peers and the FMC renewed in 3 batches"

# push: 8 devices on 4 threads, two of them failing.
push() { "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --known-hosts "$KH" \
	--failed-push "$T/FAILED_PUSH" "$@"; }
ctl "${names[0]}" stop >/dev/null
cp "$CSV" "$T/good.csv"
sed -i "s/^${names[1]},\([^,]*\),admin,[^,]*,/${names[1]},\1,admin,not-the-password,/" "$CSV"
expect_rc 1 push --jobs 4
assert_contains "$OUT" "6 updated, 0 unchanged, 2 failed" "push with two failing devices"
assert_eq "$(wc -l < "$T/FAILED_PUSH")" "6" "three FAILED_PUSH lines per failed device"
ctl "${names[0]}" start >/dev/null
cp "$T/good.csv" "$CSV"
expect_rc 0 push --retry "$T/FAILED_PUSH" --jobs 4
assert_contains "$OUT" "2 updated, 0 unchanged, 0 failed" "retry of the two"
ok "push --jobs 4: 6 of 8 devices, two failures in FAILED_PUSH, then the retry"

# verify --live: 8 handshakes on 4 threads, one device's sftunnel down.
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --live --devices "$CSV" --jobs 4
assert_contains "$OUT" "live: 8 devices, 8 OK, 0 FAILED" "verify --live"
ctl "${names[2]}" stop >/dev/null
expect_rc 1 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --live --devices "$CSV" --jobs 4 --tls-timeout 5
assert_contains "$OUT" "live: 8 devices, 7 OK, 1 FAILED" "verify --live with a device down"
ok "verify --live --jobs 4: 8 handshakes, then 7 and one failure"

stop_signer
shopt -s nullglob
logs=("$T"/tsan.*)
if [ ${#logs[@]} -eq 0 ]; then
	ok "no ThreadSanitizer report at all"
	exit 0
fi
cat "${logs[@]}" > "$T/tsan-all.log"
judge=$(python3 "$SRC/tests/sanitizers/tsan-own-races.py" "$T/tsan-all.log" sftca) || fail "$judge"
ok "no data race in sftca's own code (${judge%%$'\n'*})"
