#!/usr/bin/env bash
# Issue 2: a CA is created inside a real SoftHSM2 token through the real
# signer and CLI; the key is sensitive and never extractable, the
# certificate verifies and carries the token's public key, and everything
# survives a restart.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool

make_token
make_pki
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"

assert_eq "$(probe ops-admin health)" "SERVING" "health over mutual TLS"
assert_eq "$("$PROBE" --signer "unix:$T/run/signer.sock" health)" "SERVING" "health over the unix socket"
ok "health reports SERVING while the token is logged in"

assert_eq "$(stat -c %a "$T/run/signer.sock")" "660" "unix socket mode"
assert_eq "$(stat -c %a "$T/state")" "700" "state dir mode"
ok "unix socket 0660, state dir 0700"

expect_rc 0 as ops-admin ca create --ca "$CA_ID"
assert_contains "$OUT" "generation 1" "create reports generation 1"
as auditor-1 ca cert --ca "$CA_ID" > "$T/ca.pem"
assert_contains "$(openssl verify -CAfile "$T/ca.pem" "$T/ca.pem")" ": OK" "openssl verify of the CA"
text=$(openssl x509 -in "$T/ca.pem" -noout -text)
assert_contains "$text" "Version: 3" "CA is v3"
assert_contains "$text" "Basic Constraints: critical" "basicConstraints critical"
assert_contains "$text" "CA:TRUE" "CA:TRUE"
assert_contains "$text" "Key Usage: critical" "keyUsage critical"
assert_contains "$text" "Certificate Sign, CRL Sign" "keyCertSign, cRLSign"
assert_contains "$text" "Subject Key Identifier" "SKI present"
assert_contains "$text" "Signature Algorithm: sha256WithRSAEncryption" "sha256WithRSA"
assert_contains "$text" "Public-Key: \(2048 bit\)" "RSA-2048"
subj=$(openssl x509 -in "$T/ca.pem" -noout -subject -nameopt RFC2253)
assert_eq "$subj" "subject=O=Cisco Systems\\, Inc,CN=$CA_ID,OU=Intrusion Management System,title=InternalCA" "CA subject"
# The field's O, byte for byte: a UTF8String of 18 bytes, no final period.
assert_contains "$(openssl asn1parse -in "$T/ca.pem" | grep -m1 -A1 organizationName | sed -n 2p)" "l= *18 prim: UTF8STRING +:Cisco Systems, Inc$" "O as the field encodes it"
days=$(( ($(date -d "$(openssl x509 -in "$T/ca.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))
[ "$days" -ge 3649 ] && [ "$days" -le 3650 ] || fail "CA validity $days days, wanted 3650"
ok "CA certificate: v3, CA:TRUE and keyUsage critical, SKI, subject per the profile, 10 years"

label=$(as ops-admin --json status | sed -n 's/.*"key_label": "\(.*\)".*/\1/p' | head -1)
[ -n "$label" ] || fail "no key label in status"
objs=$(p11_login --list-objects --type privkey)
assert_contains "$objs" "label: +$label" "private key object present"
access=$(grep -A6 "label: *$label" <<<"$objs" | grep "Access:")
assert_contains "$access" "sensitive" "key is sensitive"
assert_contains "$access" "never extractable" "key is never extractable"
assert_contains "$access" "local" "key was generated in the token"
ok "pkcs11-tool: the CA key is sensitive, never extractable, generated in the token"

p11 --read-object --type pubkey --label "$label" -o "$T/token-pub.der" >/dev/null 2>&1
token_pub=$(openssl pkey -pubin -inform DER -in "$T/token-pub.der" -outform PEM)
cert_pub=$(openssl x509 -in "$T/ca.pem" -noout -pubkey)
assert_eq "$token_pub" "$cert_pub" "certificate public key equals the token's public key"
ok "the CA certificate carries the token's public key"

expect_rc 1 as ops-admin ca create --ca "$CA_ID"
assert_contains "$OUT" "ALREADY_EXISTS" "second create refused"
ok "creating an existing CA is refused with ALREADY_EXISTS"

CA2=6bf1143a-8a2e-11ef-92d8-fd927e807d77
CA3=c8d5d5c6-87c9-11ef-a993-b9831565bc4e
expect_rc 0 local_sftca ca create --ca "$CA2" --key-type ec:p256 --days 30
expect_rc 0 local_sftca ca create --ca "$CA3" --key-type rsa:3072
for id in "$CA2" "$CA3"; do
	local_sftca ca cert --ca "$id" --out "$T/$id.pem"
	assert_contains "$(openssl verify -CAfile "$T/$id.pem" "$T/$id.pem")" ": OK" "verify $id"
done
assert_contains "$(openssl x509 -in "$T/$CA2.pem" -noout -text)" "NIST CURVE: P-256|prime256v1" "EC P-256 CA"
assert_contains "$(openssl x509 -in "$T/$CA3.pem" -noout -text)" "Public-Key: \(3072 bit\)" "RSA-3072 CA"
n=$(as auditor-1 --json status | grep -c '"ca_id"')
assert_eq "$n" "3" "three CAs side by side"
ok "several CAs (RSA-2048, EC P-256, RSA-3072) live side by side in one token"

expect_rc 0 local_sftca status
assert_contains "$OUT" "CRITICAL: CA $CA2 expires in (29|30) days" "status warns about a 30-day CA"
ok "status says CRITICAL for a CA under 30 days"

fp1=$(openssl x509 -in "$T/ca.pem" -noout -fingerprint -sha256)
stop_signer
start_signer "$T/signer.conf"
as ops-admin ca cert --ca "$CA_ID" > "$T/ca-after.pem"
assert_eq "$(openssl x509 -in "$T/ca-after.pem" -noout -fingerprint -sha256)" "$fp1" "same CA after restart"
assert_eq "$(probe ops-admin health)" "SERVING" "health after restart"
ok "after a restart the CAs are still there and the signer serves"

stop_signer
expect_rc 0 "$SIGNER" verify-audit "$T/state/audit.log"
assert_contains "$OUT" "intact" "audit chain"
ok "clean shutdown on SIGTERM; audit log chain intact"
