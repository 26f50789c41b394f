#!/usr/bin/env bash
# Issue 11: one signer per state directory. While a signer runs, a second
# signer, check-ledger and import-ca on the same state directory are refused
# with a clear message (signer.lock), change nothing, and leave the running
# signer serving; once it stops, the same commands run.
. "$(dirname "$0")/lib.sh"

make_token
make_pki
write_conf "$T/signer.conf"
"$SRC/scripts/make-fmc-tree.sh" --root "$T/fmc" --fmc-uuid "$CA_ID" --peers 1 --legacy-ca "$T/legacy" >/dev/null
chmod 600 "$T/legacy/cakey.pem"

start_signer "$T/signer.conf"
busy="the state directory $T/state is in use by a running signer; stop it first"
sums_before=$(sha256sum "$T/state/ledger.db" "$T/state/audit.log")

# A second signer: refused before it binds anything (timeout: a second
# signer that got past the lock would serve until killed).
expect_rc 1 timeout 20 "$SIGNER" --config "$T/signer.conf" --allow-root
assert_contains "$OUT" "sftca-signer: $busy" "a second signer is refused"
assert_not_contains "$OUT" "serving \(" "the second signer never served"
ok "a second signer on the same state directory is refused: $busy"

expect_rc 1 timeout 20 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "check-ledger: $busy" "check-ledger is refused"
assert_not_contains "$OUT" "intact|DAMAGED" "check-ledger did not open the ledger"
ok "check-ledger while the signer runs is refused"

expect_rc 1 timeout 20 "$SIGNER" --config "$T/signer.conf" import-ca --ca "$CA_ID" \
	--cert "$T/legacy/cacert.pem" --key "$T/legacy/cakey.pem"
assert_contains "$OUT" "import-ca: $busy" "import-ca is refused"
assert_not_contains "$OUT" "imported into token" "nothing imported"
ok "import-ca while the signer runs is refused"

assert_eq "$(sha256sum "$T/state/ledger.db" "$T/state/audit.log")" "$sums_before" "the refused commands wrote nothing"
assert_eq "$(probe ops-admin health)" "SERVING" "the running signer still serves"
expect_rc 0 as auditor-1 status
assert_not_contains "$OUT" "$CA_ID" "no CA was imported behind the signer's back"
ok "the refusals changed neither ledger nor audit log; the running signer kept serving"

# The refusals were the lock's doing: with the signer stopped, all run.
stop_signer
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "intact" "check-ledger once the signer stopped"
expect_rc 0 "$SIGNER" --config "$T/signer.conf" import-ca --ca "$CA_ID" \
	--cert "$T/legacy/cacert.pem" --key "$T/legacy/cakey.pem"
assert_contains "$OUT" "imported into token 'sftca' as generation 1" "import-ca once the signer stopped"
start_signer "$T/signer.conf"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "$CA_ID" "the imported CA is served"
stop_signer
ok "with the signer stopped the lock is free: check-ledger and import-ca run, and a signer starts again"
