#!/usr/bin/env bash
# Issue 3: batch issuance through the real signer and token, renewing an
# FMC tree in place; hostile CSRs; reruns; rekey; the ledger; and kill -9 of
# the signer in the middle of a 2000-item batch.
. "$(dirname "$0")/lib.sh"
need sqlite3 ss

make_token
make_pki
write_conf "$T/signer.conf" "[limits]
max_batch = 2000"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
as auditor-1 ca cert --ca "$CA_ID" > "$T/ca.pem"

FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 50 >/dev/null
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self
assert_contains "$OUT" "51 issued \(0 with new keys\), 0 current, 0 failed" "50 peers + FMC issued"
ok "issue for 50 peers and the FMC itself (keys re-certified, none moved)"

BUNDLE=$FMC/etc/sf/ca_root/cacert.pem
assert_eq "$(openssl x509 -in "$BUNDLE" -noout -fingerprint)" "$(openssl x509 -in "$T/ca.pem" -noout -fingerprint)" "bundle is the CA"
ca_end=$(date -d "$(openssl x509 -in "$T/ca.pem" -noout -enddate | cut -d= -f2)" +%s)
ca_subj=$(openssl x509 -in "$T/ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
serials=()
for dir in "$FMC"/var/sf/peers/*/certs_pushed "$FMC/etc/sf/keys"; do
	cert=$dir/sftunnel-cert.pem
	if [ "$dir" = "$FMC/etc/sf/keys" ]; then uuid=$CA_ID; else uuid=$(basename "$(dirname "$dir")"); fi
	assert_eq "$(openssl verify -CAfile "$BUNDLE" "$cert" 2>&1)" "$cert: OK" "openssl verify $uuid"
	text=$(openssl x509 -in "$cert" -noout -text)
	assert_contains "$text" "Version: 3 \(0x2\)" "v3"
	assert_eq "$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253)" \
		"subject=O=Cisco Systems\\, Inc,CN=$uuid,OU=Intrusion Management System" "subject of $uuid"
	assert_eq "$(openssl x509 -in "$cert" -noout -issuer -nameopt RFC2253)" "issuer=$ca_subj" "issuer"
	exts=$(grep -o "X509v3 [A-Za-z ]*:" <<<"$text" | tr '\n' '|')
	assert_eq "$exts" "X509v3 extensions:|X509v3 Basic Constraints:|X509v3 Subject Alternative Name:|X509v3 Extended Key Usage:|X509v3 Subject Key Identifier:|X509v3 Authority Key Identifier:|" "exactly the profile's extensions"
	assert_contains "$(openssl x509 -in "$cert" -noout -ext basicConstraints)" "CA:FALSE" "CA:FALSE"
	assert_not_contains "$(openssl x509 -in "$cert" -noout -ext basicConstraints)" "critical" "basicConstraints not critical"
	assert_eq "$(openssl x509 -in "$cert" -noout -ext subjectAltName | tail -1 | tr -d ' ')" "DNS:localhost" "SAN"
	assert_eq "$(openssl x509 -in "$cert" -noout -ext extendedKeyUsage | tail -1 | sed 's/^ *//')" \
		"TLS Web Server Authentication, TLS Web Client Authentication" "EKU"
	assert_contains "$text" "Signature Algorithm: sha256WithRSAEncryption" "sha256WithRSA"
	end=$(date -d "$(openssl x509 -in "$cert" -noout -enddate | cut -d= -f2)" +%s)
	[ "$end" -le "$ca_end" ] || fail "$uuid outlives its CA"
	key_pub=$(openssl pkey -in "$dir/sftunnel-key.pem" -pubout)
	assert_eq "$(openssl x509 -in "$cert" -noout -pubkey)" "$key_pub" "cert holds the existing key"
	serial=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
	[ ${#serial} -le 32 ] && [[ $serial =~ ^[0-9A-F]+$ ]] || fail "serial $serial is not <= 128 bits"
	serials+=("$serial")
done
[ "$(printf '%s\n' "${serials[@]}" | sort -u | wc -l)" -eq 51 ] || fail "serials not unique"
ok "every certificate: openssl verify OK; subject, issuer, exactly the profile's extensions, notAfter <= CA, 128-bit serial"

peer=$(ls "$FMC/var/sf/peers" | head -1)
P=$FMC/var/sf/peers/$peer/certs_pushed
tls_handshake "$P/sftunnel-cert.pem" "$P/sftunnel-key.pem" "$FMC/etc/sf/keys/sftunnel-cert.pem" \
	"$FMC/etc/sf/keys/sftunnel-key.pem" "$BUNDLE" || fail "mutual TLS 1.2 handshake FMC<->peer: $OUT"
ok "openssl s_server -Verify / s_client: mutual TLS 1.2 between the FMC identity and a peer identity"

# Hostile CSRs in one batch with good ones.
H=$T/hostile
mkdir -p "$H/out"
key=$P/sftunnel-key.pem
csr() { openssl req -new -key "$1" -subj "/CN=whatever/O=Evil" -outform DER -out "$2" "${@:3}" 2>/dev/null; }
csr "$key" "$H/good.der"
csr "$key" "$H/ca.der" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=keyCertSign"
csr "$key" "$H/san.der" -addext "subjectAltName=DNS:evil.example.com,IP:10.0.0.1"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$H/small.key" 2>/dev/null
csr "$H/small.key" "$H/small.der"
cp "$H/good.der" "$H/badsig.der"
off=$(($(stat -c %s "$H/badsig.der") - 10)) # inside the signature
byte=$(od -An -tu1 -j "$off" -N1 "$H/badsig.der" | tr -d ' ')
printf "\\x$(printf %02x $((byte ^ 1)))" | dd of="$H/badsig.der" bs=1 seek="$off" conv=notrunc 2>/dev/null
! cmp -s "$H/good.der" "$H/badsig.der" || fail "signature byte not flipped"
head -c 300 /dev/urandom > "$H/garbage.der"
U1=11111111-2222-4333-8444-555555555555 U2=22222222-2222-4333-8444-555555555555
expect_rc 0 probe fmc-east issue "$CA_ID" "$H/out" "$U1=$H/good.der" "$U2=$H/ca.der" \
	"$U1=$H/san.der" "$U1=$H/small.der" "$U1=$H/badsig.der" "$U1=$H/garbage.der" \
	"NOT-A-UUID=$H/good.der" "11111111-2222-4333-8444-55555555555A=$H/good.der" "$U2=$H/good.der"
item() { grep "^ITEM $1 " <<<"$OUT"; }
assert_contains "$(item 0)" "ITEM 0 OK [0-9A-F]+" "good CSR issued"
assert_contains "$(item 1)" "ITEM 1 OK" "CA:TRUE CSR neutralised, not refused"
assert_contains "$(item 2)" "ITEM 2 OK" "extra-SAN CSR neutralised"
assert_contains "$(item 3)" "INVALID_ARGUMENT .*RSA key of 1024 bits refused" "1024-bit RSA refused"
assert_contains "$(item 4)" "INVALID_ARGUMENT .*signature does not verify" "bad signature refused"
assert_contains "$(item 5)" "INVALID_ARGUMENT .*not a DER PKCS#10" "garbage refused"
assert_contains "$(item 6)" "INVALID_ARGUMENT .*not a canonical lowercase UUID" "bad UUID refused"
assert_contains "$(item 7)" "INVALID_ARGUMENT .*not a canonical lowercase UUID" "uppercase UUID refused"
assert_contains "$(item 8)" "ITEM 8 OK" "batch-mate after the bad ones issued"
for i in 1 2; do
	c=$H/out/$i.pem
	assert_contains "$(openssl x509 -in "$c" -noout -ext basicConstraints)" "CA:FALSE" "item $i has CA:FALSE"
	assert_eq "$(openssl x509 -in "$c" -noout -ext subjectAltName | tail -1 | tr -d ' ')" "DNS:localhost" "item $i SAN"
	assert_not_contains "$(openssl x509 -in "$c" -noout -text)" "Key Usage: critical|Certificate Sign|evil|Evil|10.0.0.1" "nothing from the CSR"
	assert_eq "$(openssl verify -CAfile "$T/ca.pem" -purpose sslclient "$c" 2>&1)" "$c: OK" "item $i verifies as a client"
done
# The CA:TRUE request's certificate cannot sign: a certificate it "issues"
# does not verify through it.
openssl req -new -key "$H/small.key" -subj "/CN=victim" -out "$H/victim.csr" 2>/dev/null
openssl x509 -req -in "$H/victim.csr" -CA "$H/out/1.pem" -CAkey "$key" -set_serial 9 -days 1 \
	-out "$H/victim.pem" 2>/dev/null
expect_rc 2 openssl verify -CAfile "$T/ca.pem" -untrusted "$H/out/1.pem" "$H/victim.pem"
assert_contains "$OUT" "invalid CA certificate|not a CA|invalid non-CA" "a leaf is no CA"
assert_contains "$(openssl x509 -in "$H/out/1.pem" -noout -subject)" "CN = $U2" "subject from the UUID, not the CSR"
ok "hostile CSRs: CA:TRUE and extra SANs neutralised, 1024-bit/bad signature/garbage/bad UUIDs refused per item, batch-mates issued"

# Rerun: nothing new. (etc/sf/sftca.lock, the run lock, records who ran last.)
rows_before=$(as auditor-1 ledger --ca "$CA_ID" --format csv | wc -l)
tree_sums() { find "$FMC" -type f ! -path "$FMC/etc/sf/sftca.lock" -exec sha256sum {} + | sort; }
sums_before=$(tree_sums)
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self
assert_contains "$OUT" "0 issued \(0 with new keys\), 51 current, 0 failed" "rerun issues nothing"
assert_eq "$(tree_sums)" "$sums_before" "rerun changed no file"
assert_eq "$(as auditor-1 ledger --ca "$CA_ID" --format csv | wc -l)" "$rows_before" "rerun added no ledger row"
ok "rerun: no certificate issued, no file touched"

# --rekey on two peers.
p1=$(ls "$FMC/var/sf/peers" | sed -n 2p) p2=$(ls "$FMC/var/sf/peers" | sed -n 3p)
D1=$FMC/var/sf/peers/$p1/certs_pushed
cp "$D1/sftunnel-key.pem" "$T/old.key"
cp "$D1/sftunnel-cert.pem" "$T/old.crt"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$p1" --peer "$p2" --rekey
assert_contains "$OUT" "2 issued \(2 with new keys\)" "rekey issued two with new keys"
! cmp -s "$D1/sftunnel-key.pem" "$T/old.key" || fail "key unchanged after --rekey"
cmp "$D1"/sftunnel-key.pem.backup.* "$T/old.key" || fail "key backup differs from the old key"
cmp "$D1"/sftunnel-cert.pem.backup.* "$T/old.crt" || fail "cert backup differs from the old cert"
assert_eq "$(stat -c %a "$D1/sftunnel-key.pem")" "600" "new key mode"
assert_eq "$(stat -c %a "$D1"/sftunnel-key.pem.backup.*)" "600" "key backup mode"
assert_eq "$(openssl x509 -in "$D1/sftunnel-cert.pem" -noout -pubkey)" "$(openssl pkey -in "$D1/sftunnel-key.pem" -pubout)" "new pair matches"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC"
ok "--rekey: new keys, old key and cert kept byte for byte as NAME.backup.<stamp>, mode 0600"

# Files stay as the tree had them (issue 12): a replaced file keeps its mode
# and owner, a new one takes its sibling's, 0644/0600 only with nothing to
# follow.
p3=$(ls "$FMC/var/sf/peers" | sed -n 4p) p4=$(ls "$FMC/var/sf/peers" | sed -n 5p)
D3=$FMC/var/sf/peers/$p3/certs_pushed D4=$FMC/var/sf/peers/$p4/certs_pushed CR=$FMC/etc/sf/ca_root
attrs() { stat -c '%a %U:%G' "$@" | paste -sd ' '; }
chown daemon:daemon "$D3/sftunnel-cert.pem" "$BUNDLE"
chmod 0640 "$D3/sftunnel-cert.pem" "$BUNDLE"
chmod 0644 "$D3/sftunnel-key.pem"
echo >>"$BUNDLE" # no longer the CA's bundle: rewritten
rm "$CR/crl.pem" # new: follows the bundle
chown bin:bin "$D4/sftunnel-cert.pem"
chmod 0640 "$D4/sftunnel-cert.pem"
rm "$D4/sftunnel-key.pem" # new: follows the certificate
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$p3" --peer "$p4" --force
assert_contains "$OUT" "2 issued \(1 with new keys\)" "--force on two peers, one without a key"
assert_contains "$OUT" "trust bundle written" "the bundle rewritten"
assert_eq "$(attrs "$D3/sftunnel-cert.pem" "$D3/sftunnel-key.pem")" "640 daemon:daemon 644 root:root" "--force: $p3's certificate and key as they were"
assert_eq "$(attrs "$BUNDLE" "$CR/crl.pem")" "640 daemon:daemon 640 daemon:daemon" "bundle as it was, the new CRL as the bundle"
assert_eq "$(attrs "$D4/sftunnel-cert.pem" "$D4/sftunnel-key.pem")" "640 bin:bin 640 bin:bin" "$p4: the new key as its certificate"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$p3" --rekey
assert_contains "$OUT" "1 issued \(1 with new keys\)" "--rekey"
assert_eq "$(attrs "$D3/sftunnel-cert.pem" "$D3/sftunnel-key.pem")" "640 daemon:daemon 644 root:root" "--rekey: $p3's certificate and key as they were"
rm "$D4/sftunnel-cert.pem" "$D4/sftunnel-key.pem"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$p4"
assert_eq "$(attrs "$D4/sftunnel-cert.pem" "$D4/sftunnel-key.pem")" "644 root:root 600 root:root" "nothing to follow: certificate 0644, key 0600"
chown root:root "$BUNDLE" "$CR/crl.pem"
chmod 0644 "$BUNDLE" "$CR/crl.pem"
ok "modes and owners on the FMC tree: kept through --force and --rekey (certificate 0640 daemon's, key 0644, bundle 0640); a new key or CRL takes its sibling's; 0644/0600 only with nothing to follow"

# The ledger matches what is on disk.
as auditor-1 ledger --ca "$CA_ID" --format csv > "$T/ledger.csv"
head -1 "$T/ledger.csv" | grep -q '^"serial","ca_id","generation","peer_uuid","state","not_before","not_after","issued_at"' ||
	fail "CSV header: $(head -1 "$T/ledger.csv")"
[ "$(tail -n +2 "$T/ledger.csv" | cut -d, -f1 | sort | uniq -d | wc -l)" -eq 0 ] || fail "duplicate serial in the ledger"
for dir in "$FMC"/var/sf/peers/*/certs_pushed "$FMC/etc/sf/keys"; do
	cert=$dir/sftunnel-cert.pem
	serial=$(openssl x509 -in "$cert" -noout -serial | cut -d= -f2)
	sha=$(openssl x509 -in "$cert" -outform DER | sha256sum | cut -d' ' -f1)
	row=$(grep "^\"$serial\"," "$T/ledger.csv") || fail "serial $serial not in the ledger"
	assert_contains "$row" "\"issued\"" "ledger state of $serial"
	assert_contains "$row" "\"$sha\"" "ledger hash of $serial"
done
ok "ledger: every certificate on disk is recorded as issued with its SHA-256; serials unique"

# A run the signer refuses as a whole (an issuer for another CA): every peer
# is reported, the chunk prepared while the refusal came in too.
CA_Y=6bf1143a-8a2e-11ef-92d8-fd927e807d77
expect_rc 0 as ops-admin ca create --ca "$CA_Y"
FMCY=$T/fmcy
"$SRC/scripts/make-fmc-tree.sh" --root "$FMCY" --fmc-uuid "$CA_Y" --peers 600 --key-pool 8 >/dev/null
sums_before=$(find "$FMCY/var" -type f -exec sha256sum {} + | sort)
expect_rc 1 as fmc-east issue --ca "$CA_Y" --root "$FMCY" --batch 100
assert_contains "$OUT" "0 issued \(0 with new keys\), 0 current, 600 failed" "every peer of a refused run reported"
assert_eq "$(grep -cE "^[0-9a-f-]{36}  FAILED " <<<"$OUT")" "600" "one line per peer"
assert_eq "$(grep -cE "^[0-9a-f-]{36}  FAILED +(not attempted: the signer refused the run|not issued: PERMISSION_DENIED)" <<<"$OUT")" "600" "each says why"
assert_eq "$(find "$FMCY/var" -type f -exec sha256sum {} + | sort)" "$sums_before" "a refused run changed no peer's file"
ok "a run refused by the signer (issuer for another CA): all 600 peers reported as failed, no peer's file touched"

# kill -9 of the signer in the middle of a 2000-item batch.
FMC2=$T/fmc2
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC2" --fmc-uuid "$CA_ID" --peers 2000 --key-pool 16 >/dev/null
as fmc-east issue --ca "$CA_ID" --root "$FMC2" --batch 2000 --retries 0 >"$T/run1.out" 2>&1 &
client=$!
db=$T/state/ledger.db
for _ in $(seq 1200); do
	n=$(sqlite3 "$db" "SELECT COUNT(*) FROM certificates WHERE state='pending'" 2>/dev/null || echo 0)
	[ "$n" -gt 0 ] && break
	sleep 0.02
done
[ "$n" -gt 0 ] || fail "never saw the batch in flight"
kill -9 "$SIGNER_PID"
wait "$SIGNER_PID" 2>/dev/null || true
rm -f "$T/pids/signer"
set +e; wait "$client"; crc=$?; set -e
[ "$crc" -eq 1 ] || fail "client exit $crc after the signer died"
pending=$(sqlite3 "$db" "SELECT COUNT(*) FROM certificates WHERE state='pending'")
[ "$pending" -gt 0 ] || fail "no pending rows left by the crash"
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "intact \(0 problems; $pending pending rows marked abandoned now\)" "ledger integrity after kill -9"
start_signer "$T/signer.conf"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC2" --batch 500
assert_contains "$OUT" ", 0 failed" "rerun completes"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC2"
as auditor-1 ledger --ca "$CA_ID" --format csv > "$T/ledger2.csv"
[ "$(tail -n +2 "$T/ledger2.csv" | cut -d, -f1 | sort | uniq -d | wc -l)" -eq 0 ] || fail "duplicate serial after the crash"
assert_eq "$(grep -c '"pending"' "$T/ledger2.csv" || true)" "0" "no pending rows after restart"
assert_eq "$(grep -c '"abandoned"' "$T/ledger2.csv")" "$pending" "crashed serials abandoned, never reused"
ok "kill -9 mid-batch ($pending serials in flight): ledger intact, pending became abandoned, rerun finished all 2000 peers, no serial twice"
