#!/usr/bin/env bash
# Issue 4: the CA lifecycle without downtime. Import a field-style legacy
# InternalCA (v1, serial 0) with leaves it signed; renew it with the same
# key (old leaves keep verifying); rotate another CA with an overlap in which
# old and new leaves trust each other, then finalize; revoke and publish a
# CRL; refuse all of it to an issuer; recover an already expired CA.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool

make_token
make_pki
write_conf "$T/signer.conf"
signer_cmd() { "$SIGNER" --config "$T/signer.conf" "$@"; }

# --- import a legacy InternalCA ------------------------------------------
FMC=$T/fmc
L=$T/legacy
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 3 --legacy-ca "$L" >/dev/null
assert_contains "$(openssl x509 -in "$L/cacert.pem" -noout -text)" "Version: 1 \(0x0\)" "fixture CA is v1"
assert_eq "$(openssl x509 -in "$L/cacert.pem" -noout -serial)" "serial=00" "fixture CA has serial 0"
old_leaves=("$FMC"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem)
mkdir -p "$T/oldleaves"
for f in "${old_leaves[@]}"; do cp "$f" "$T/oldleaves/$(basename "$(dirname "$(dirname "$f")")").pem"; done

openssl genpkey -algorithm RSA -out "$T/other.key" 2>/dev/null
chmod 600 "$T/other.key"
expect_rc 1 signer_cmd import-ca --ca "$CA_ID" --cert "$L/cacert.pem" --key "$T/other.key"
assert_contains "$OUT" "private key does not belong to the certificate" "mismatched key refused"
leaf1=${old_leaves[0]}
expect_rc 1 signer_cmd import-ca --ca "$CA_ID" --cert "$leaf1" --key "$(dirname "$leaf1")/sftunnel-key.pem"
assert_contains "$OUT" "not self-signed, so it is not an InternalCA" "a leaf is refused as CA"
chmod 644 "$L/cakey.pem"
expect_rc 1 signer_cmd import-ca --ca "$CA_ID" --cert "$L/cacert.pem" --key "$L/cakey.pem"
assert_contains "$OUT" "must not be accessible by group or others" "world-readable CA key refused"
chmod 600 "$L/cakey.pem"
expect_rc 0 signer_cmd import-ca --ca "$CA_ID" --cert "$L/cacert.pem" --key "$L/cakey.pem"
assert_contains "$OUT" "imported into token 'sftca' as generation 1" "import"
assert_contains "$OUT" "custody shared" "import defaults to shared custody"
assert_contains "$OUT" "leave /etc/sf/ca_root/cakey.pem on the FMC" "shared: the FMC keeps its copy"
expect_rc 1 signer_cmd import-ca --ca "$CA_ID" --cert "$L/cacert.pem" --key "$L/cakey.pem"
assert_contains "$OUT" "already exists" "importing the same id again refused"
ok "import-ca: legacy v1/serial-0 CA imported; wrong key, non-CA, readable key file and existing id refused"

objs=$(p11_login --list-objects --type privkey)
label=$(grep -o "label: *sftca/$CA_ID/[^ ]*" <<<"$objs" | head -1 | sed 's/label: *//')
access=$(grep -A6 "label: *$label" <<<"$objs" | grep "Access:")
assert_contains "$access" "sensitive" "imported key is sensitive"
assert_not_contains "$access" "(^|, )extractable" "imported key is not extractable"
echo "    imported key: $access"
ok "the imported key is sensitive and not extractable"

start_signer "$T/signer.conf"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "1 +active +rsa:2048 +v1 .*00 +\(imported\)" "status shows the imported v1 generation"
assert_contains "$OUT" "custody: shared \(the FMC keeps its copy" "status shows the default custody"
assert_not_contains "$OUT" "still up stay up|FMC first" "no expiry rules for a CA with years left"

expect_rc 1 as ops-admin ca rotate --ca "$CA_ID"
assert_contains "$OUT" "legacy v1 certificate" "rotating away from a v1 CA needs a renewal first"
ok "rotate from a legacy v1 CA refused with guidance (renew first)"

# --- renew: same key, same subject -----------------------------------------
for verb in renew rotate finalize; do
	expect_rc 1 as fmc-east ca "$verb" --ca "$CA_ID"
	assert_contains "$OUT" "PERMISSION_DENIED" "issuer may not $verb"
done
expect_rc 0 as ops-admin ca renew --ca "$CA_ID" --out "$T/renewed.pem"
assert_contains "$OUT" "generation 2" "renew makes generation 2"
assert_contains "$(openssl x509 -in "$T/renewed.pem" -noout -text)" "Version: 3" "renewed CA is v3"
assert_eq "$(openssl x509 -in "$T/renewed.pem" -noout -pubkey)" "$(openssl x509 -in "$L/cacert.pem" -noout -pubkey)" "same key"
assert_eq "$(openssl x509 -in "$T/renewed.pem" -noout -subject)" "$(openssl x509 -in "$L/cacert.pem" -noout -subject)" "same subject"
for f in "$T"/oldleaves/*.pem; do
	assert_eq "$(openssl verify -CAfile "$T/renewed.pem" "$f" 2>&1)" "$f: OK" "old leaf verifies against the renewed CA alone"
done
# The old leaves verify against the renewed CA, but carry no authority key
# identifier: issue replaces them (no --force needed) so a later rotation's
# overlap cannot break them.
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self
assert_contains "$OUT" "4 issued \(0 with new keys\), 0 current" "leaves without an AKI are not current under a v3 CA"
for f in "$FMC"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem; do
	assert_contains "$(openssl x509 -in "$f" -noout -ext authorityKeyIdentifier)" "[0-9A-F]{2}:" "reissued leaf names the CA key"
done
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self
assert_contains "$OUT" "0 issued \(0 with new keys\), 4 current" "rerun: nothing to replace"
assert_not_contains "$OUT" "still up stay up|FMC first" "issue: no expiry rules with years left"
J=$(as fmc-east --json issue --ca "$CA_ID" --root "$FMC" --self)
assert_eq "$(jq -r 'has("expiry_rules")' <<<"$J")" false "issue --json: no expiry_rules with years left"
for f in "$FMC"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem; do
	assert_eq "$(openssl verify -CAfile "$T/renewed.pem" "$f" 2>&1)" "$f: OK" "new leaf vs renewed CA"
	assert_eq "$(openssl verify -CAfile "$L/cacert.pem" "$f" 2>&1)" "$f: OK" "new leaf vs the old v1 CA"
done
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "1 +retired +rsa:2048 +v1" "generation 1 retired"
assert_contains "$OUT" "2 +active +rsa:2048 +v3" "generation 2 active"
ok "renew: same key and subject; the 3 old leaves verify against the renewed CA; new leaves verify against both"
expect_rc 1 as ops-admin ca rotate --ca "$CA_ID"
assert_contains "$OUT" "generation 1 \(the same key\) was a legacy v1 certificate.*\(0 on record still in use; the vendor's" "rotate after a v1 renewal still needs the operator's word"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "2 +active" "refused rotation changed nothing"
ok "rotate of a key that signed as a legacy v1 CA: refused (the vendor's leaves are not on record) until --force"

# --- rotate with overlap, then finalize --------------------------------------
CA2=6bf1143a-8a2e-11ef-92d8-fd927e807d77
F2=$T/fmc2
expect_rc 0 as ops-admin ca create --ca "$CA2"
"$SRC/scripts/make-fmc-tree.sh" --root "$F2" --fmc-uuid "$CA2" --peers 2 >/dev/null
A=$(ls "$F2/var/sf/peers" | sed -n 1p) B=$(ls "$F2/var/sf/peers" | sed -n 2p)
expect_rc 0 as ops-admin issue --ca "$CA2" --root "$F2"
cp "$F2/etc/sf/ca_root/cacert.pem" "$T/bundle-g1.pem"
expect_rc 0 as ops-admin ca rotate --ca "$CA2"
assert_contains "$OUT" "generation 2" "rotation makes generation 2"
as ops-admin ca cert --ca "$CA2" --bundle > "$T/bundle-overlap.pem"
assert_eq "$(grep -c BEGIN "$T/bundle-overlap.pem")" "2" "overlap bundle holds both generations"
as ops-admin ca cert --ca "$CA2" > "$T/g2.pem"
assert_eq "$(openssl x509 -in "$T/bundle-overlap.pem" -noout -fingerprint)" "$(openssl x509 -in "$T/g2.pem" -noout -fingerprint)" "active generation first"
expect_rc 0 as ops-admin issue --ca "$CA2" --root "$F2" --peer "$B" --force
PA=$F2/var/sf/peers/$A/certs_pushed PB=$F2/var/sf/peers/$B/certs_pushed
assert_eq "$(openssl verify -CAfile "$T/g2.pem" "$PB/sftunnel-cert.pem" 2>&1)" "$PB/sftunnel-cert.pem: OK" "B is a generation-2 leaf"
expect_rc 2 openssl verify -CAfile "$T/g2.pem" "$PA/sftunnel-cert.pem"
tls_handshake "$PA/sftunnel-cert.pem" "$PA/sftunnel-key.pem" "$PB/sftunnel-cert.pem" "$PB/sftunnel-key.pem" \
	"$T/bundle-overlap.pem" || fail "gen1 server / gen2 client in the overlap: $OUT"
tls_handshake "$PB/sftunnel-cert.pem" "$PB/sftunnel-key.pem" "$PA/sftunnel-cert.pem" "$PA/sftunnel-key.pem" \
	"$T/bundle-overlap.pem" || fail "gen2 server / gen1 client in the overlap: $OUT"
ok "rotate: during the overlap, generation-1 and generation-2 leaves complete mutual TLS both ways"

expect_rc 1 as ops-admin ca finalize --ca "$CA2"
assert_contains "$OUT" "1 peers still hold only an unexpired, unrevoked leaf of the retiring generation" "finalize counts peers left on gen 1 (B was reissued)"
expect_rc 0 as ops-admin ca finalize --ca "$CA2" --force
assert_contains "$OUT" "1 generation retired; 1 live leaves" "forced finalize"
as ops-admin ca cert --ca "$CA2" --bundle > "$T/bundle-final.pem"
assert_eq "$(grep -c BEGIN "$T/bundle-final.pem")" "1" "bundle holds the active generation only"
if tls_handshake "$PA/sftunnel-cert.pem" "$PA/sftunnel-key.pem" "$PB/sftunnel-cert.pem" "$PB/sftunnel-key.pem" \
	"$T/bundle-final.pem" "$T/bundle-overlap.pem"; then
	fail "a generation-1 leaf was accepted after finalize"
fi
assert_contains "$OUT" "unable to get local issuer certificate|certificate verify failed" "gen1 leaf rejected"
ok "finalize: refused while a live gen-1 leaf is on record, forced; then a gen-1 leaf is rejected by a peer trusting only the new bundle"

# --- renew, then rotate: the renewed-away generation's leaves still count ---
CA4=0e0c5a86-8f6f-11ef-b1b7-6f1e0c9a3d21
F4=$T/fmc4
expect_rc 0 as ops-admin ca create --ca "$CA4"
"$SRC/scripts/make-fmc-tree.sh" --root "$F4" --fmc-uuid "$CA4" --peers 2 >/dev/null
expect_rc 0 as ops-admin issue --ca "$CA4" --root "$F4"
expect_rc 0 as ops-admin ca renew --ca "$CA4"
expect_rc 0 as ops-admin issue --ca "$CA4" --root "$F4"
assert_contains "$OUT" "0 issued \(0 with new keys\), 2 current" "renewal leaves the leaves current"
expect_rc 0 as ops-admin ca rotate --ca "$CA4"
assert_contains "$OUT" "generation 3" "rotation after a renewal makes generation 3"
expect_rc 1 as ops-admin ca finalize --ca "$CA4"
assert_contains "$OUT" "2 peers still hold only an unexpired, unrevoked leaf of the retiring generation" "generation-1 leaves counted by their key"
as ops-admin ca cert --ca "$CA4" --bundle > "$T/bundle4.pem"
assert_eq "$(grep -c BEGIN "$T/bundle4.pem")" "2" "the refused finalize kept the old key in the bundle"
expect_rc 0 as ops-admin issue --ca "$CA4" --root "$F4"
assert_contains "$OUT" "2 issued" "issue replaces the old key's leaves during the overlap"
expect_rc 0 as ops-admin ca finalize --ca "$CA4"
assert_contains "$OUT" "1 generation retired; 0 live leaves" "finalize once every peer moved"
ok "renew then rotate: finalize counts leaves of the retiring key's earlier generation too, and passes once they are reissued"

# --- revoke and CRL ------------------------------------------------------------
peers=($(ls "$FMC/var/sf/peers"))
V=$FMC/var/sf/peers/${peers[0]}/certs_pushed/sftunnel-cert.pem
N=$FMC/var/sf/peers/${peers[1]}/certs_pushed/sftunnel-cert.pem
serial=$(openssl x509 -in "$V" -noout -serial | cut -d= -f2)
expect_rc 1 as fmc-east revoke --ca "$CA_ID" --serial "$serial"
assert_contains "$OUT" "PERMISSION_DENIED" "issuer may not revoke"
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$(tr 'A-F' 'a-f' <<<"$serial")" --reason keyCompromise
assert_contains "$OUT" "serial $serial .* revoked .*reason keyCompromise" "revoke"
expect_rc 1 as ops-admin revoke --ca "$CA_ID" --serial "$serial"
assert_contains "$OUT" "FAILED_PRECONDITION.*not in state issued" "revoking twice"
expect_rc 1 as ops-admin revoke --ca "$CA_ID" --serial 0123456789ABCDEF
assert_contains "$OUT" "NOT_FOUND.*never issued serial 0123456789ABCDEF" "unknown serial"
expect_rc 1 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason becauseISaidSo
assert_contains "$OUT" "reason 'becauseISaidSo' unknown" "unknown reason"
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$T/crl.pem"
assert_contains "$OUT" "1 revoked" "CRL lists one"
crltext=$(openssl crl -in "$T/crl.pem" -noout -text)
assert_contains "$crltext" "Version 2" "CRL v2"
assert_contains "$crltext" "X509v3 CRL Number" "CRL number"
assert_contains "$crltext" "Serial Number: $serial" "revoked serial listed"
assert_contains "$crltext" "Key Compromise" "reason code"
assert_contains "$crltext" "Next Update" "next update"
assert_contains "$(openssl crl -in "$T/crl.pem" -CAfile "$T/renewed.pem" -noout 2>&1)" "verify OK" "CRL signature verifies with the CA key"
expect_rc 2 openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/renewed.pem" "$V"
assert_contains "$OUT" "certificate revoked" "revoked leaf rejected"
assert_eq "$(openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/renewed.pem" "$N" 2>&1)" "$N: OK" "neighbour accepted"
n1=$(openssl crl -in "$T/crl.pem" -noout -crlnumber | cut -d= -f2)
as ops-admin crl --ca "$CA_ID" --out "$T/crl2.pem" --days 30 >/dev/null
n2=$(openssl crl -in "$T/crl2.pem" -noout -crlnumber | cut -d= -f2)
[ $((16#$n2)) -gt $((16#$n1)) ] || fail "CRL number did not increase ($n1 -> $n2)"
cp "$T/crl2.pem" "$FMC/etc/sf/ca_root/crl.pem"
expect_rc 1 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --peer "${peers[0]}"
assert_contains "$OUT" "revoked by the CRL" "verify reports the revoked leaf"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC"
assert_contains "$(openssl crl -in "$FMC/etc/sf/ca_root/crl.pem" -noout -text)" "Serial Number: $serial" "issue writes the CRL sftunnel.conf names"
# No CRL time bomb (issue 13): the CRL issue writes lasts until the CA's
# notAfter, and the one it replaced is kept.
assert_eq "$(openssl crl -in "$FMC/etc/sf/ca_root/crl.pem" -noout -nextupdate | cut -d= -f2)" \
	"$(openssl x509 -in "$T/renewed.pem" -noout -enddate | cut -d= -f2)" "the FMC's crl.pem: nextUpdate is the CA's notAfter"
kept=$(ls "$FMC"/etc/sf/ca_root/crl.pem.backup.* 2>/dev/null | head -1 || true)
[ -n "$kept" ] && cmp -s "$kept" "$T/crl2.pem" || fail "issue kept no backup of the crl.pem it replaced: $(ls "$FMC/etc/sf/ca_root")"
assert_contains "$OUT" "${peers[0]}  issued .*new key" "issue gives the revoked peer a new key"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --peer "${peers[0]}"
ok "revoke + CRL: token-signed CRL v2 with number, reason and update times; openssl -crl_check rejects the revoked leaf, accepts its neighbour"

# --- the ledger as JSON ---------------------------------------------------------
# --format json (and --json, the same) is one JSON array of the rows the CSV
# lists, field for field; the revocation above is in it.
as auditor-1 ledger --ca "$CA_ID" --format csv > "$T/ledger.csv"
as auditor-1 ledger --ca "$CA_ID" --format json > "$T/ledger.json"
as auditor-1 --json ledger --ca "$CA_ID" > "$T/ledger-global.json"
as auditor-1 ledger --ca "$CA_ID" --state revoked --format json > "$T/ledger-revoked.json"
as auditor-1 ledger --ca "$CA2" --peer "$CA_ID" --format json > "$T/ledger-empty.json"
python3 - "$T" "$CA_ID" "$serial" <<'PY' || fail "ledger --format json: $(head -c 600 "$T/ledger.json")"
import csv, json, re, sys
t, ca, revoked = sys.argv[1:4]
rows = json.load(open(t + "/ledger.json"))
table = list(csv.DictReader(open(t + "/ledger.csv", newline="")))
assert isinstance(rows, list) and len(rows) >= 5, f"{len(rows)} rows"
assert rows == [dict(r, generation=int(r["generation"])) for r in table], "JSON rows differ from the CSV rows"
iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
for r in rows:
    assert list(r) == list(table[0]), f"fields {list(r)}"
    assert r["ca_id"] == ca and r["state"] in ("issued", "revoked", "abandoned", "pending"), r
    assert re.fullmatch(r"[0-9A-F]+", r["serial"]) and re.fullmatch(r"[0-9a-f]{64}", r["cert_sha256"]), r
    assert iso.match(r["not_after"]) and iso.match(r["issued_at"]), r
rev = [r for r in rows if r["serial"] == revoked]
assert len(rev) == 1 and rev[0]["state"] == "revoked", rev
assert rev[0]["revocation_reason"] == "keyCompromise" and iso.match(rev[0]["revoked_at"]), rev
assert rev[0]["generation"] == 2, rev
assert all(r["revoked_at"] == "" for r in rows if r["serial"] != revoked)
assert json.load(open(t + "/ledger-global.json")) == rows, "--json differs from --format json"
assert json.load(open(t + "/ledger-revoked.json")) == rev, "--state revoked"
assert json.load(open(t + "/ledger-empty.json")) == [], "no rows: an empty array"
PY
ok "ledger --format json / --json: one array, the CSV's rows and fields, the revocation with its reason and time; a filter with no rows gives []"

# --- rotate --force after the v1 renewal ------------------------------------------
# The operator's word: the key that signed as v1 (generation 1, renewed as 2)
# is rotated away; generation 2 retires with an overlap like any other.
expect_rc 0 as ops-admin ca rotate --ca "$CA_ID" --force --out "$T/g3.pem"
assert_contains "$OUT" "generation 3" "forced rotation after a v1 renewal makes generation 3"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "1 +retired +rsa:2048 +v1" "generation 1 stays retired"
assert_contains "$OUT" "2 +retiring +rsa:2048 +v3" "the renewed generation retires"
assert_contains "$OUT" "3 +active +rsa:2048 +v3" "generation 3 active"
[ "$(openssl x509 -in "$T/g3.pem" -noout -pubkey)" != "$(openssl x509 -in "$T/renewed.pem" -noout -pubkey)" ] ||
	fail "generation 3 kept the old key"
as ops-admin ca cert --ca "$CA_ID" --bundle > "$T/bundle-forced.pem"
assert_eq "$(grep -c BEGIN "$T/bundle-forced.pem")" "2" "the overlap bundle holds generations 3 and 2"
assert_eq "$(openssl x509 -in "$T/bundle-forced.pem" -noout -fingerprint)" "$(openssl x509 -in "$T/g3.pem" -noout -fingerprint)" "active generation first"
assert_eq "$(openssl verify -CAfile "$T/bundle-forced.pem" "$N" 2>&1)" "$N: OK" "a generation-2 leaf verifies against the overlap bundle"
grep -qF '"event":"ca.rotate","identity":"cn=ops-admin","ca":"'"$CA_ID"'","result":"ok","detail":{"generation":3,' "$T/state/audit.log" ||
	fail "no ca.rotate audit line for generation 3 of $CA_ID"
ok "rotate --force after a v1 renewal: generation 3 with a new key, the renewed generation retiring in the overlap bundle"

# --- an expired CA -------------------------------------------------------------
CA3=c8d5d5c6-87c9-11ef-a993-b9831565bc4e
F3=$T/fmc3
"$SRC/scripts/make-fmc-tree.sh" --root "$F3" --fmc-uuid "$CA3" --peers 2 --legacy-ca "$T/legacy3" \
	--ca-start 20150101000000Z --ca-end 20250101000000Z >/dev/null
stop_signer
expect_rc 0 signer_cmd import-ca --ca "$CA3" --cert "$T/legacy3/cacert.pem" --key "$T/legacy3/cakey.pem"
start_signer "$T/signer.conf"
assert_file_contains "$T/signer.log" "CRITICAL: CA $CA3 expired [0-9]+ days ago" "signer log says CRITICAL"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "CRITICAL: CA $CA3 expired [0-9]+ days ago" "status reports CRITICAL"
assert_contains "$OUT" "Tunnels that are still up stay up until they reconnect" "status: the seed's rules for an expired CA"
assert_contains "$OUT" "FMC first, then the devices" "status: FMC first"
assert_contains "$OUT" "An FMC upgrade is acceptable only when every device is already down" "status: upgrade rule"
J=$(as auditor-1 --json status)
assert_eq "$(jq -r '.expiry_rules | length' <<<"$J")" 3 "status --json: expiry_rules field"
expect_rc 2 "$SFTCA" check "$F3/etc/sf/ca_root/cacert.pem"
expect_rc 1 as ops-admin issue --ca "$CA3" --root "$F3"
assert_contains "$OUT" "expired: renew it first" "no leaf from an expired CA"
assert_contains "$OUT" "Tunnels that are still up stay up until they reconnect" "issue: the rules for an expired CA"
assert_contains "$OUT" "An FMC upgrade is acceptable only when every device is already down" "issue: upgrade rule"
expect_rc 0 as ops-admin ca renew --ca "$CA3"
expect_rc 0 as auditor-1 status
assert_not_contains "$OUT" "CRITICAL" "renewal cleared the alarm"
assert_not_contains "$OUT" "still up stay up|FMC first" "status: no rules once renewed for years"
expect_rc 0 as ops-admin issue --ca "$CA3" --root "$F3" --self
expect_rc 0 "$SFTCA" check "$F3/etc/sf/ca_root/cacert.pem" "$F3/var/sf/peers"
expect_rc 0 as auditor-1 verify --ca "$CA3" --root "$F3"
ok "expired CA: CRITICAL in status, log and check; issuance refused; renew fixes it and the tree is renewed"

# --- the seed's rules within 30 days: status, issue (text and JSON) ----------
CA6=9b0e2d64-a1c2-11ef-b7e4-4f2d8c1a7e30
F6=$T/fmc6
"$SRC/scripts/make-fmc-tree.sh" --root "$F6" --fmc-uuid "$CA6" --peers 1 >/dev/null
expect_rc 0 as ops-admin ca create --ca "$CA6" --days 20
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "CRITICAL: CA $CA6 expires in (19|20) days" "status: CRITICAL at 20 days"
assert_contains "$OUT" "Tunnels that are still up stay up until they reconnect" "status: rules at 20 days"
J=$(as auditor-1 --json status 2>/dev/null)
assert_eq "$(jq -r '.expiry_rules[1]' <<<"$J" | grep -c "FMC first")" 1 "status --json: rules at 20 days"
expect_rc 0 as ops-admin issue --ca "$CA6" --root "$F6"
assert_contains "$OUT" "1 issued" "issue under a CA with 20 days"
assert_contains "$OUT" "Tunnels that are still up stay up until they reconnect" "issue: rules at 20 days"
set +e
J=$(as ops-admin --json issue --ca "$CA6" --root "$F6" 2>"$T/issue6.err")
set -e
assert_eq "$(jq -r '.expiry_rules | length' <<<"$J")" 3 "issue --json: expiry_rules field at 20 days"
assert_not_contains "$(cat "$T/issue6.err")" "still up stay up" "issue --json keeps the rules in the document"
ok "expiry rules: status and issue show the seed's rules at 20 days and expired, not with years left; --json as a field"

# --- leaves whose AKI names the CA by issuer and serial (issue 13 item 6) ---
# OpenSSL adds authorityCertIssuer + authorityCertSerialNumber with
# "keyid,issuer"; such a leaf names the old CA's serial and never chains to
# the renewed CA (same key, new serial). A v3 CA made the way the field's
# tools make leaves, imported, leaves signed outside the token, then renewed.
CA5=5e1c7a2e-9f3b-11ef-8d1c-2b6a4f0e9d55
F5=$T/fmc5
X=$T/aki
mkdir -p "$X"
"$SRC/scripts/make-fmc-tree.sh" --root "$F5" --fmc-uuid "$CA5" --peers 3 >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$X/cakey.pem" -out "$X/cacert.pem" -days 3650 \
	-set_serial 0x1234 -subj "/title=InternalCA/OU=Intrusion Management System/CN=$CA5/O=Cisco Systems, Inc" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-addext subjectKeyIdentifier=hash 2>/dev/null
chmod 600 "$X/cakey.pem"
mkdir -p "$F5/etc/sf/ca_root"
cp "$X/cacert.pem" "$F5/etc/sf/ca_root/cacert.pem"
# aki_leaf DIR CACERT AKI: sign DIR's key as its UUID's leaf with that AKI.
aki_leaf() {
	local d=$1 cacert=$2 aki=$3 uuid
	uuid=$(basename "$(dirname "$d")")
	printf '%s\n' basicConstraints=CA:FALSE subjectAltName=DNS:localhost \
		extendedKeyUsage=serverAuth,clientAuth subjectKeyIdentifier=hash \
		"authorityKeyIdentifier=$aki" > "$X/ext.cnf"
	openssl req -new -key "$d/sftunnel-key.pem" -subj "/OU=Intrusion Management System/CN=$uuid/O=Cisco Systems, Inc" \
		-out "$X/leaf.csr"
	openssl x509 -req -in "$X/leaf.csr" -CA "$cacert" -CAkey "$X/cakey.pem" -set_serial "0x$RANDOM$RANDOM" \
		-days 1000 -extfile "$X/ext.cnf" -out "$d/sftunnel-cert.pem" 2>/dev/null
}
pdirs=("$F5"/var/sf/peers/*/certs_pushed)
aki_leaf "${pdirs[0]}" "$X/cacert.pem" keyid,issuer:always
aki_leaf "${pdirs[1]}" "$X/cacert.pem" keyid,issuer:always
aki_leaf "${pdirs[2]}" "$X/cacert.pem" keyid
u0=$(basename "$(dirname "${pdirs[0]}")") u1=$(basename "$(dirname "${pdirs[1]}")") u2=$(basename "$(dirname "${pdirs[2]}")")
assert_contains "$(openssl x509 -in "${pdirs[0]}/sftunnel-cert.pem" -noout -ext authorityKeyIdentifier)" "serial:12:34" "fixture leaf names the CA serial"
stop_signer
expect_rc 0 signer_cmd import-ca --ca "$CA5" --cert "$X/cacert.pem" --key "$X/cakey.pem"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin issue --ca "$CA5" --root "$F5"
assert_contains "$OUT" "0 issued \(0 with new keys\), 3 current" "before renewal every fixture leaf is current"
for d in "${pdirs[@]}"; do cp "$d/sftunnel-cert.pem" "$X/$(basename "$(dirname "$d")").old.pem"; done
expect_rc 0 as ops-admin ca renew --ca "$CA5" --out "$X/renewed.pem"
new_serial=$(openssl x509 -in "$X/renewed.pem" -noout -serial | cut -d= -f2)
[ "$new_serial" != 1234 ] || fail "renewal kept the serial: the test proves nothing"
for u in "$u0" "$u1"; do
	assert_contains "$(openssl verify -CAfile "$X/renewed.pem" "$X/$u.old.pem" 2>&1)" "unable to get local issuer" "leaf naming serial 1234 does not chain to the renewed CA"
done
assert_eq "$(openssl verify -CAfile "$X/renewed.pem" "$X/$u2.old.pem" 2>&1)" "$X/$u2.old.pem: OK" "keyid-only leaf chains to the renewed CA"
# A leaf naming the renewed CA's serial is fine.
aki_leaf "${pdirs[2]}" "$X/renewed.pem" keyid,issuer:always
assert_contains "$(openssl x509 -in "${pdirs[2]}/sftunnel-cert.pem" -noout -ext authorityKeyIdentifier)" "serial:" "leaf naming the new serial"
cp "${pdirs[2]}/sftunnel-cert.pem" "$X/$u2.new.pem"
expect_rc 0 as ops-admin ca cert --ca "$CA5" --out "$F5/etc/sf/ca_root/cacert.pem"
expect_rc 1 as auditor-1 verify --ca "$CA5" --root "$F5"
for u in "$u0" "$u1"; do
	assert_contains "$OUT" "$u  BAD  authority key identifier names issuer serial 1234, the CA is serial $new_serial: will not chain" "verify names the leaf naming the old serial"
done
assert_contains "$OUT" "$u2  OK" "a leaf naming the CA's own serial is fine"
expect_rc 0 as ops-admin issue --ca "$CA5" --root "$F5"
assert_contains "$OUT" "2 issued \(0 with new keys\), 1 current" "issue reissues exactly the leaves naming the old serial"
cmp -s "${pdirs[2]}/sftunnel-cert.pem" "$X/$u2.new.pem" || fail "issue replaced the leaf that names the CA's serial"
for d in "${pdirs[@]}"; do
	assert_eq "$(openssl verify -CAfile "$X/renewed.pem" "$d/sftunnel-cert.pem" 2>&1)" "$d/sftunnel-cert.pem: OK" "reissued leaf chains to the renewed CA"
done
expect_rc 0 as auditor-1 verify --ca "$CA5" --root "$F5"
ok "AKI naming issuer+serial: after renew such leaves fail to chain (openssl), verify names them, issue reissues them; a leaf naming the current serial stays"

for ev in ca.import ca.renew ca.rotate ca.finalize ca.create revoke; do
	grep -q "\"event\":\"$ev\"" "$T/state/audit.log" || fail "no $ev line in the audit log"
done
grep -q '"event":"ca.renew","identity":"cn=ops-admin"' "$T/state/audit.log" || fail "renew audit line lacks identity"
expect_rc 0 "$SIGNER" verify-audit "$T/state/audit.log"
ok "every CA change and revocation is one audit line with the caller's identity; chain intact"
