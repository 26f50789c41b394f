#!/usr/bin/env bash
# Issue 10 item 4: a key revoked for keyCompromise is never certified again.
# Revoke a peer for keyCompromise, rotate the CA, `issue --force` with the
# same key: the signer refuses that item (under any CA on record) and issues
# the others; a key revoked for another reason is not refused.
. "$(dirname "$0")/lib.sh"
need sqlite3

make_token
make_pki
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"

F=$T/fmc
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
"$SRC/scripts/make-fmc-tree.sh" --root "$F" --fmc-uuid "$CA_ID" --peers 3 >/dev/null
A=$(ls "$F/var/sf/peers" | sed -n 1p) B=$(ls "$F/var/sf/peers" | sed -n 2p) C=$(ls "$F/var/sf/peers" | sed -n 3p)
expect_rc 0 as ops-admin issue --ca "$CA_ID" --root "$F"
pa=$F/var/sf/peers/$A/certs_pushed pc=$F/var/sf/peers/$C/certs_pushed
serial=$(openssl x509 -in "$pa/sftunnel-cert.pem" -noout -serial | cut -d= -f2)
spki=$(openssl x509 -in "$pa/sftunnel-cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason keyCompromise
serialc=$(openssl x509 -in "$pc/sftunnel-cert.pem" -noout -serial | cut -d= -f2)
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$serialc" --reason superseded
expect_rc 0 as ops-admin ca rotate --ca "$CA_ID"
# sftca issue itself gives a new key to a peer whose certificate on disk the
# CRL revokes; the signer's refusal is for a key whose revoked certificate is
# gone (replaced, lost): remove A's and C's certificates, keep their keys.
rm "$pa/sftunnel-cert.pem" "$pc/sftunnel-cert.pem"
before=$(sha256sum <"$pa/sftunnel-key.pem")
beforec=$(sha256sum <"$pc/sftunnel-key.pem")

set +e
OUT=$(as fmc-east issue --ca "$CA_ID" --root "$F" --force 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "issue --force with a compromised key succeeded: $OUT"
assert_contains "$OUT" "key revoked for keyCompromise: SPKI SHA-256 $spki \(serial $serial, CA $CA_ID\); make a new key" "the item names key, serial, CA and the fix"
assert_eq "$(sha256sum <"$pa/sftunnel-key.pem")" "$before" "A's key untouched"
[ ! -e "$pa/sftunnel-cert.pem" ] || fail "a certificate was written for A's compromised key"
as ops-admin ca cert --ca "$CA_ID" > "$T/g2.pem"
assert_eq "$(openssl verify -CAfile "$T/g2.pem" "$F/var/sf/peers/$B/certs_pushed/sftunnel-cert.pem" 2>&1)" \
	"$F/var/sf/peers/$B/certs_pushed/sftunnel-cert.pem: OK" "B re-certified by generation 2"
assert_eq "$(openssl verify -CAfile "$T/g2.pem" "$pc/sftunnel-cert.pem" 2>&1)" "$pc/sftunnel-cert.pem: OK" \
	"C (revoked as superseded) re-certified"
assert_eq "$(sha256sum <"$pc/sftunnel-key.pem")" "$beforec" "C kept its key (superseded is no reason to refuse it)"
assert_file_contains "$T/signer.log" "refused a certificate for peer $A to cn=fmc-east \(ipv4:127.0.0.1:[0-9]+\): its key was revoked for keyCompromise" "refusal logged with who asked"
assert_eq "$(sqlite3 "$T/state/ledger.db" "SELECT count(*) FROM certificates WHERE spki_sha256='$spki' AND state <> 'revoked'")" 0 \
	"no certificate for the compromised key besides the revoked one"
ok "issue --force after keyCompromise + rotate: A's item refused with its SPKI, serial and CA; B and C issued"

# Under any CA on record, also over the raw RPC.
CA2=6bf1143a-8a2e-11ef-92d8-fd927e807d77
sed -i "s/^fmc-east = .*/fmc-east = issuer/" "$T/signer.conf"
stop_signer
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA2"
openssl req -new -key "$pa/sftunnel-key.pem" -subj "/CN=ignored" -outform DER -out "$T/a.csr"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/n.key" -subj "/CN=ignored" -outform DER -out "$T/n.csr" 2>/dev/null
expect_rc 0 probe fmc-east issue "$CA2" "$T/out" "$A=$T/a.csr" "$A=$T/n.csr"
assert_contains "$OUT" "ITEM 0 FAILED_PRECONDITION - key revoked for keyCompromise: SPKI SHA-256 $spki" "refused under another CA"
assert_contains "$OUT" "ITEM 1 OK" "a new key for the same peer is issued"
ok "the compromised key is refused under another CA too; a new key is issued"
