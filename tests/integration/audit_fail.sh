#!/usr/bin/env bash
# Issue 10 item 11 (second half): an audit write that fails fails the
# operation. An IssueBatch whose audit record cannot be written releases no
# certificate (its rows are abandoned, never issued); a revocation whose
# record cannot be written is not applied. (The failpoint cuts the record in
# mid-line, as a full disk would.)
. "$(dirname "$0")/lib.sh"
need sqlite3

make_token
make_pki
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/p.key" \
	-subj "/CN=ignored" -outform DER -out "$T/p.csr" 2>/dev/null
P1=11111111-2222-4333-8444-555555555551 P2=11111111-2222-4333-8444-555555555552
expect_rc 0 probe fmc-east issue "$CA_ID" "$T/out1" "$P1=$T/p.csr"
assert_contains "$OUT" "ITEM 0 OK" "issued with a working audit log"
stop_signer
db() { sqlite3 "$T/state/ledger.db" "$1"; }

# Hit 1 is signer.start; hit 2 is the batch's record.
SFTCA_FAILPOINTS="audit.write=error@2" start_signer "$T/signer.conf"
set +e
OUT=$(probe fmc-east issue "$CA_ID" "$T/out2" "$P2=$T/p.csr" 2>&1)
set -e
assert_not_contains "$OUT" "ITEM 0 OK" "no certificate released"
assert_contains "$OUT" "audit log write failed: no certificate was released" "the caller is told why"
[ -z "$(ls "$T/out2" 2>/dev/null)" ] || fail "a certificate file was written: $(ls "$T/out2")"
assert_eq "$(db "SELECT state FROM certificates WHERE peer_uuid='$P2'")" "abandoned" "the withheld serial is abandoned, never issued"
stop_signer
ok "IssueBatch with a failing audit write: nothing released, the row abandoned"

serial=$(db "SELECT serial FROM certificates WHERE peer_uuid='$P1'")
SFTCA_FAILPOINTS="audit.write=error@2" start_signer "$T/signer.conf"
expect_rc 1 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason keyCompromise
assert_contains "$OUT" "audit log write failed: serial $serial was not revoked" "the admin is told"
assert_eq "$(db "SELECT state FROM certificates WHERE serial='$serial'")" "issued" "the revocation was not applied"
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason keyCompromise
assert_eq "$(db "SELECT state FROM certificates WHERE serial='$serial'")" "revoked" "applied once the audit log takes it"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$T/state/audit.log"
assert_eq "$(grep -c '"event":"revoke".*"result":"ok"' "$T/state/audit.log")" 1 "one revoke record with ok"
ok "Revoke with a failing audit write is not applied; the retry is, and the chain is intact"
