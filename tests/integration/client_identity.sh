#!/usr/bin/env bash
# Issue 10 item 6: a client's identity is more than a CN string. A
# certificate whose CN holds an embedded NUL ("ops-admin\0x" read as
# "ops-admin") or whose subject has two CNs is refused; [authz] entries may
# be pinned to a certificate's SHA-256 or its key's (SPKI) SHA-256; and a
# client_crl, reread on SIGHUP, shuts out a stolen operator certificate
# while the CN keeps its role.
. "$(dirname "$0")/lib.sh"

make_token
make_pki
P=$T/pki LOG=$T/signer.log

# cert NAME SUBJECT [KEY]: $P/NAME.{crt,key} from the service CA; a new
# P-256 key unless KEY (a key file to reuse) is given.
cert() {
	local name=$1 subj=$2 key=${3:-}
	if [ -n "$key" ]; then
		cp "$key" "$P/$name.key"
		openssl req -new -key "$P/$name.key" -out "$T/$name.csr" -subj "$subj" 2>/dev/null
	else
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/$name.key" \
			-out "$T/$name.csr" -subj "$subj" 2>/dev/null
	fi
	openssl x509 -req -in "$T/$name.csr" -CA "$P/service-ca.crt" -CAkey "$P/service-ca.key" \
		-CAcreateserial -days 30 -out "$P/$name.crt" 2>/dev/null
}
cert_sha256() { openssl x509 -in "$P/$1.crt" -outform der | sha256sum | cut -d' ' -f1; }
spki_sha256() { openssl x509 -in "$P/$1.crt" -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1; }

# An embedded NUL: "ops-adminZx" signed, the Z made a NUL, then signed again
# by the service CA (openssl x509 re-signs only a self-signed input).
cert nul "/CN=ops-adminZx"
openssl x509 -in "$P/nul.crt" -outform der -out "$T/nul0.der"
python3 -c "import sys; d = open(sys.argv[1], 'rb').read(); assert d.count(b'ops-adminZx') == 1; open(sys.argv[2], 'wb').write(d.replace(b'ops-adminZx', b'ops-admin\x00x'))" "$T/nul0.der" "$T/nul1.der"
openssl x509 -inform der -in "$T/nul1.der" -key "$P/nul.key" -out "$T/nul-self.pem" 2>/dev/null
openssl x509 -in "$T/nul-self.pem" -CA "$P/service-ca.crt" -CAkey "$P/service-ca.key" -out "$P/nul.crt" 2>/dev/null
assert_eq "$(openssl x509 -in "$P/nul.crt" -noout -subject)" 'subject=CN = ops-admin\00x' "NUL certificate"
openssl verify -CAfile "$P/service-ca.crt" "$P/nul.crt" >/dev/null
cert twocn "/CN=ops-admin/CN=stranger"
cert pinned "/CN=pinned-op"
cert pinned-other "/CN=pinned-op"
cert keyed-a "/CN=keyed"
cert keyed-b "/CN=keyed" "$P/keyed-a.key"
cert keyed-other "/CN=keyed"
cert stolen "/CN=ops-admin"

write_conf "$T/signer.conf"
cat >>"$T/signer.conf" <<CONF
cert-sha256/$(cert_sha256 pinned) = admin
spki-sha256/$(spki_sha256 keyed-a | tr a-f A-F) = auditor
CONF
start_signer "$T/signer.conf"

# --- the CN ------------------------------------------------------------------------------
for c in nul twocn; do
	l0=$(wc -l <"$LOG")
	rpc "$c" GetStatus
	assert_eq "$STATUS" UNAUTHENTICATED "$c: GetStatus ($OUT)"
	expect_rc 1 probe "$c" health
	assert_contains "$OUT" "^UNAUTHENTICATED " "$c: health"
done
assert_contains "$(grep 'embedded NUL' "$LOG")" 'refused /sftca.v1.Signer/GetStatus for cn=ops-admin\\x00x \(ipv4:127\.0\.0\.1:[0-9]+\): client certificate CN has an embedded NUL' "NUL refusal logged"
assert_contains "$(grep 'more than one CN' "$LOG")" 'refused /sftca.v1.Signer/GetStatus for cn=ops-admin \(ipv4:127\.0\.0\.1:[0-9]+\): client certificate has more than one CN' "two-CN refusal logged"
assert_contains "$(cat "$T/state/audit.log")" '"identity":"cn=ops-admin\\\\x00x".*"reason":"client certificate CN has an embedded NUL"' "NUL refusal audited"
ok "CN \"ops-admin\\0x\" and a subject with two CNs: UNAUTHENTICATED on every call (health too), logged and audited"

# --- pinned entries -------------------------------------------------------------------------
rpc pinned GetStatus
assert_eq "$STATUS" OK "pinned certificate: $OUT"
assert_contains "$OUT" "^role=admin$" "pinned certificate's role"
rpc pinned-other GetStatus
assert_eq "$OUT" "PERMISSION_DENIED cn=pinned-op is not authorized for any role" "same CN, another certificate"
rpc keyed-b GetStatus
assert_contains "$OUT" "^role=auditor$" "a new certificate for the pinned key"
rpc keyed-other GetStatus
assert_eq "$OUT" "PERMISSION_DENIED cn=keyed is not authorized for any role" "same CN, another key"
ok "cert-sha256/ entry: that certificate is admin, another with its CN is not; spki-sha256/ entry: any certificate for that key"
stop_signer

# --- client_crl ----------------------------------------------------------------------------
D=$T/cadb
mkdir -p "$D"
: >"$D/index.txt"
echo 1000 >"$D/crlnumber"
cat >"$D/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $D/index.txt
crlnumber = $D/crlnumber
default_md = sha256
default_crl_days = 30
CNF
crl() { openssl ca -config "$D/ca.cnf" -keyfile "$P/service-ca.key" -cert "$P/service-ca.crt" "$@" 2>/dev/null; }
crl -gencrl -out "$T/clients.crl"
write_conf "$T/signer.conf" "client_crl = $T/clients.crl"
start_signer "$T/signer.conf"
assert_contains "$(cat "$LOG")" "client_crl $T/clients.crl loaded: 1 CRLs, 0 client certificates revoked" "CRL loaded at start"
rpc stolen GetStatus
assert_contains "$OUT" "^role=admin$" "stolen certificate before revocation"
crl -revoke "$P/stolen.crt" >/dev/null
crl -gencrl -out "$T/clients.crl"
l0=$(wc -l <"$LOG")
kill -HUP "$SIGNER_PID"
assert_contains "$(log_since "$l0" "client certificates revoked")" "client_crl $T/clients.crl loaded: 1 CRLs, 1 client certificates revoked" "CRL reloaded on SIGHUP"
serial=$(openssl x509 -in "$P/stolen.crt" -noout -serial | cut -d= -f2)
rpc stolen GetStatus
assert_eq "$OUT" "UNAUTHENTICATED client certificate (serial $serial) is revoked by client_crl" "revoked certificate"
assert_contains "$(grep 'revoked by client_crl' "$LOG")" "refused /sftca.v1.Signer/GetStatus for cn=ops-admin \(ipv4:127\.0\.0\.1:[0-9]+\): client certificate \(serial $serial\) is revoked" "refusal logged"
rpc ops-admin GetStatus
assert_contains "$OUT" "^role=admin$" "the CN's other certificate keeps its role"
# A CRL the service CA did not sign is not taken; the one in force stays.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue.key" -out "$T/rogue.crt" \
	-subj "$(openssl x509 -in "$P/service-ca.crt" -noout -subject -nameopt compat | sed 's/^subject=//')" -days 3 2>/dev/null
openssl ca -config "$D/ca.cnf" -keyfile "$T/rogue.key" -cert "$T/rogue.crt" -gencrl -out "$T/clients.crl" 2>/dev/null
l0=$(wc -l <"$LOG")
kill -HUP "$SIGNER_PID"
newlog=$(log_since "$l0" "not \(re\)loaded")
assert_contains "$newlog" "client_crl $T/clients.crl: the CRL from .* is not signed by a certificate in client_ca" "rogue CRL refused"
assert_contains "$newlog" "client_crl $T/clients.crl not \(re\)loaded; the previous one stays in force" "the CRL in force stays"
rpc stolen GetStatus
assert_eq "$STATUS" UNAUTHENTICATED "still revoked after a bad reload"
ok "client_crl: the stolen certificate works, is revoked, SIGHUP rereads the CRL and it is refused (logged); its CN's other certificate keeps admin; a CRL not signed by client_ca is not taken"
stop_signer
