#!/usr/bin/env bash
# Issue 10 item 7: auditors and scoped issuers reach no further than they
# must. GetCRL by an auditor or issuer serves the signer's last CRL while it
# is fresh (no token signature, no CRL-number advance, its `days` ignored);
# an admin, a revocation or a CA change makes a new one; every CRL signing
# is audited. An issuer limited to CA X sees only X in GetCRL, ListIssued
# and GetStatus.
. "$(dirname "$0")/lib.sh"
need sqlite3

make_token
make_pki
CA2=6bf1143a-8a2e-11ef-92d8-fd927e807d77
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
expect_rc 0 as ops-admin ca create --ca "$CA2"
i=0
for ca in "$CA_ID" "$CA2"; do
	i=$((i + 1))
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$ca.key" \
		-subj "/CN=ignored" -outform DER -out "$T/$ca.csr" 2>/dev/null
	expect_rc 0 probe ops-admin rpc IssueBatch ca_id="$ca" items=peer_uuid=11111111-2222-4333-8444-55555555555$i,csr_der=@"$T/$ca.csr"
	assert_not_contains "$OUT" "INVALID" "issued under $ca"
done
crlnum() { openssl crl -in "$1" -noout -crlnumber | cut -d= -f2; }
signed() { grep -c "CRL [0-9]* of CA $CA_ID signed" "$T/signer.log" || true; }

# --- auditors get the signer's CRL, signed once --------------------------------
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$T/a1.pem"
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$T/a2.pem" --days 3650
expect_rc 0 as fmc-east crl --ca "$CA_ID" --out "$T/a3.pem"
assert_eq "$(crlnum "$T/a2.pem")" "$(crlnum "$T/a1.pem")" "CRL number not advanced by an auditor"
assert_eq "$(signed)" 1 "one signing for three auditor and issuer calls"
cmp -s "$T/a1.pem" "$T/a2.pem" || fail "the auditor got a different CRL while the first was fresh"
cmp -s "$T/a1.pem" "$T/a3.pem" || fail "the issuer got a different CRL while the first was fresh"
next=$(date -d "$(openssl crl -in "$T/a2.pem" -noout -nextupdate | cut -d= -f2)" +%s)
ca_end=$(sqlite3 "$T/state/ledger.db" "SELECT not_after FROM ca_generations WHERE ca_id='$CA_ID' AND state='active'")
# No CRL time bomb (issue 13): the signer's own CRL lasts as long as the CA.
assert_eq "$next" "$ca_end" "the signer's own CRL: nextUpdate is the CA's notAfter"
ok "auditor and issuer get the last signed CRL: one signature, number $(crlnum "$T/a1.pem"), their --days ignored, valid until the CA's notAfter"

# --- admin signs; a revocation makes the signer's CRL stale ---------------------
expect_rc 0 as ops-admin crl --ca "$CA_ID" --out "$T/adm0.pem"
assert_eq "$(date -d "$(openssl crl -in "$T/adm0.pem" -noout -nextupdate | cut -d= -f2)" +%s)" "$ca_end" "admin crl without --days: until the CA's notAfter"
expect_rc 0 as ops-admin crl --ca "$CA_ID" --out "$T/adm.pem" --days 30
next=$(date -d "$(openssl crl -in "$T/adm.pem" -noout -nextupdate | cut -d= -f2)" +%s)
[ $((next - $(date +%s))) -le $((30 * 86400)) ] && [ $((next - $(date +%s))) -gt $((29 * 86400)) ] || fail "admin --days 30 not honoured"
assert_eq "$(signed)" 3 "the admin's calls sign"
# status --root reports the tree's crl.pem with the certificate thresholds.
mkdir -p "$T/tree/etc/sf/ca_root" && cp "$T/adm.pem" "$T/tree/etc/sf/ca_root/crl.pem"
expect_rc 0 as auditor-1 status --root "$T/tree"
assert_contains "$OUT" "crl.pem  CRITICAL  nextUpdate [-0-9]+ [0-9:]+ UTC \((29|30) days left\)" "status --root: the tree's CRL, CRITICAL within 30 days"
assert_contains "$OUT" "warning: .*crl.pem: nextUpdate in (29|30) days .CRITICAL.: sftca issue --root" "status warns with the remedy"
J=$(as auditor-1 status --root "$T/tree" --json 2>/dev/null)
assert_eq "$(python3 -c 'import json,sys; c=json.load(sys.stdin)["crl"]; print(c["state"], c["days_left"] in (29, 30))' <<<"$J")" "CRITICAL True" "status --json: crl"
[ $((16#$(crlnum "$T/adm.pem"))) -gt $((16#$(crlnum "$T/a1.pem"))) ] || fail "admin CRL number did not grow"
serial=$(sqlite3 "$T/state/ledger.db" "SELECT serial FROM certificates WHERE ca_id='$CA_ID'")
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason superseded
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$T/a4.pem"
assert_eq "$(signed)" 4 "after a revocation the auditor's call gets a new signature"
assert_contains "$(openssl crl -in "$T/a4.pem" -noout -text)" "Serial Number: $serial" "the revocation is in it"
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$T/a5.pem"
assert_eq "$(signed)" 4 "and then it is served again"
expect_rc 0 as ops-admin ca rotate --ca "$CA_ID"
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$T/a6.pem"
assert_eq "$(grep -c BEGIN "$T/a6.pem")" 2 "after a rotation the CRL set covers both generations"
ok "admin signs on request; a revocation or a CA change makes the signer sign its CRL again, once"

audit=$(grep '"crl.sign"' "$T/state/audit.log")
assert_eq "$(wc -l <<<"$audit")" 5 "five CRL signings, five audit records"
assert_contains "$(sed -n 1p <<<"$audit")" '"signer".*"for":"cn=auditor-1"' "the signer's own signing audited with who asked"
assert_contains "$(sed -n 2p <<<"$audit")" '"cn=ops-admin"' "the admin's signing audited with the admin"
expect_rc 0 "$SIGNER" verify-audit "$T/state/audit.log" --head "$T/state/audit.head"
ok "every CRL signing is in the audit log, the chain intact"

# --- a scoped issuer sees only its CAs ------------------------------------------
expect_rc 1 as fmc-east crl --ca "$CA2" --out "$T/x.pem"
assert_contains "$OUT" "PERMISSION_DENIED.*may not see CA $CA2" "GetCRL of another CA refused"
[ ! -e "$T/x.pem" ] || fail "a CRL file was written"
expect_rc 1 as fmc-east ledger --ca "$CA2"
assert_contains "$OUT" "PERMISSION_DENIED" "ListIssued of another CA refused"
expect_rc 0 probe fmc-east rpc ListIssued
assert_contains "$OUT" "$CA_ID" "ListIssued without a CA lists its CA"
assert_not_contains "$OUT" "$CA2" "and nothing of the other"
expect_rc 0 as fmc-east status
assert_contains "$OUT" "$CA_ID" "GetStatus shows its CA"
assert_not_contains "$OUT" "$CA2" "and not the other"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "$CA2" "an auditor still sees every CA"
assert_file_contains "$T/signer.log" "refused .*GetCRL for cn=fmc-east" "refusal logged with who asked"
ok "an issuer limited to CA X: GetCRL/ListIssued of Y refused, ListIssued and GetStatus show only X"
stop_signer
