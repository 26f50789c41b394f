#!/usr/bin/env bash
# Issue 2: the TCP listener admits only clients whose certificate chains to
# client_ca; the CN maps to a role; every refusal is logged with identity.
. "$(dirname "$0")/lib.sh"

make_token
make_pki
make_pki "$T/other" ops-admin
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID"

expect_rc 1 probe "" health
assert_contains "$OUT" "UNAVAILABLE" "no client certificate"
ok "no client certificate: handshake refused, no handler reached"

expect_rc 1 "$PROBE" --signer "127.0.0.1:$PORT" --tls-ca "$T/pki/service-ca.crt" \
	--tls-cert "$T/other/ops-admin.crt" --tls-key "$T/other/ops-admin.key" health
assert_contains "$OUT" "UNAVAILABLE" "certificate from another CA"
ok "certificate from another CA (same CN): refused"

# An expired client certificate from the right CA.
make_expired_cert expired ops-admin
expect_rc 1 probe expired health
assert_contains "$OUT" "UNAVAILABLE" "expired client certificate"
ok "expired client certificate (CN of an admin): refused"

expect_rc 1 as stranger status
assert_contains "$OUT" "PERMISSION_DENIED" "unknown CN"
assert_file_contains "$T/signer.log" "refused /sftca.v1.Signer/GetStatus for cn=stranger" "refusal logged with identity"
ok "unknown CN: PERMISSION_DENIED, logged with its identity"

expect_rc 1 as fmc-east ca create --ca 6bf1143a-8a2e-11ef-92d8-fd927e807d77
assert_contains "$OUT" "PERMISSION_DENIED" "issuer calling an admin RPC"
assert_file_contains "$T/signer.log" "refused /sftca.v1.Signer/CreateCA for cn=fmc-east" "issuer refusal logged"
grep -q '"event":"refused","identity":"cn=fmc-east"' "$T/state/audit.log" || fail "refusal not in the audit log"
ok "issuer calling CreateCA: PERMISSION_DENIED, in the log and the audit log"

expect_rc 0 as auditor-1 status
expect_rc 0 as fmc-east status
expect_rc 1 as auditor-1 ca renew --ca "$CA_ID"
assert_contains "$OUT" "PERMISSION_DENIED" "auditor calling an admin RPC"
ok "auditor and issuer may read status; neither may change a CA"
