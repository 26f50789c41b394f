#!/usr/bin/env bash
# Issue 13 item 5: an FMC HA pair, each FMC with its own InternalCA in one
# signer. Each tree holds a directory for the other FMC, with what the other
# FMC's CA signed (and that CA's certificate); renewing a tree with its own
# --ca must leave that directory alone, or the link between the two FMCs
# breaks. The README's HA procedure, run as written: primary first, then
# secondary, each with its own --ca.
. "$(dirname "$0")/lib.sh"

PRI=$CA_ID
SEC=5e1d2f3a-6b7c-4d8e-9f01-23456789abcd
PRIM=$T/primary
SECT=$T/secondary
L=$T/legacy

make_token
make_pki
write_conf "$T/signer.conf"
sed -i "s/^fmc-east = issuer:.*/fmc-east = issuer:$PRI,$SEC/" "$T/signer.conf"
signer_cmd() { "$SIGNER" --config "$T/signer.conf" "$@"; }

# The primary as the field has it: a legacy InternalCA whose key is a file.
"$SRC/scripts/make-fmc-tree.sh" --root "$PRIM" --fmc-uuid "$PRI" --peers 2 --legacy-ca "$L" >/dev/null
# The secondary manages the same FTDs (their pairs still the primary's CA's).
"$SRC/scripts/make-fmc-tree.sh" --root "$SECT" --fmc-uuid "$SEC" --peers 0 >/dev/null
cp -a "$PRIM"/var/sf/peers/. "$SECT/var/sf/peers/"
ftds=$(ls "$PRIM/var/sf/peers")

# The secondary's directory for the primary: the primary's CA and the pair it
# signed for the secondary (CN = the secondary's UUID), made with the file key.
HA_S=$SECT/var/sf/peers/$PRI
mkdir -p "$HA_S"
cp "$L/cacert.pem" "$HA_S/cacert.pem"
printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
	> "$T/leaf.ext"
openssl req -new -newkey rsa:2048 -nodes -keyout "$HA_S/sftunnel-key.pem" -out "$T/s.csr" \
	-subj "/O=Cisco Systems, Inc/CN=$SEC/OU=Intrusion Management System" 2>/dev/null
openssl x509 -req -in "$T/s.csr" -CA "$L/cacert.pem" -CAkey "$L/cakey.pem" -set_serial 4242 -days 3650 \
	-extfile "$T/leaf.ext" -out "$HA_S/sftunnel-cert.pem" 2>/dev/null
chmod 600 "$HA_S/sftunnel-key.pem"

# The primary's directory for the secondary: the secondary's CA (made in the
# token) and the pair it signed for the primary (CN = the primary's UUID).
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$SEC"
as auditor-1 ca cert --ca "$SEC" > "$T/sec-ca.pem"
mkdir -p "$T/scratch/etc/sf/ca_root" "$T/scratch/var/sf/peers/$PRI/certs_pushed"
expect_rc 0 as fmc-east issue --ca "$SEC" --root "$T/scratch" --peer "$PRI"
HA_P=$PRIM/var/sf/peers/$SEC
mkdir -p "$HA_P"
cp "$T/sec-ca.pem" "$HA_P/cacert.pem"
cp -p "$T/scratch/var/sf/peers/$PRI/certs_pushed/sftunnel-"{cert,key}.pem "$HA_P/"
stop_signer
assert_eq "$(openssl verify -CAfile "$T/sec-ca.pem" "$HA_P/sftunnel-cert.pem" 2>&1)" \
	"$HA_P/sftunnel-cert.pem: OK" "fixture: the primary's HA pair is the secondary CA's"
assert_eq "$(openssl verify -CAfile "$L/cacert.pem" "$HA_S/sftunnel-cert.pem" 2>&1)" \
	"$HA_S/sftunnel-cert.pem: OK" "fixture: the secondary's HA pair is the primary CA's"

# Both CAs in one token: the primary imported from its file.
expect_rc 0 signer_cmd import-ca --ca "$PRI" --cert "$L/cacert.pem" --key "$L/cakey.pem"
start_signer "$T/signer.conf"

# sha256 of every file under a directory, sorted: "left alone" means equal.
tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
ha_p_before=$(tree_sums "$HA_P")
ha_s_before=$(tree_sums "$HA_S")

# A peer directory named for one of the signer's CAs is an HA peer even
# without the CA's certificate in it.
cp -a "$PRIM" "$T/bare"
rm "$T/bare/var/sf/peers/$SEC/cacert.pem"
expect_rc 0 as fmc-east issue --ca "$PRI" --root "$T/bare" --dry-run
assert_contains "$OUT" "peers/$SEC: an FMC HA peer \(its UUID is a CA this signer holds\): left to its own CA \(sftca issue --ca $SEC" \
	"HA peer recognised by the signer's CA list"
ok "a peer directory named for a CA the signer holds is an HA peer's"

# --- primary first --------------------------------------------------------
expect_rc 0 as ops-admin ca renew --ca "$PRI"
expect_rc 0 as fmc-east issue --ca "$PRI" --root "$PRIM" --self
assert_contains "$OUT" "peers/$SEC: an FMC HA peer \(its UUID is a CA this signer holds\): left to its own CA" \
	"primary: HA peer named"
assert_contains "$OUT" "3 issued" "primary: the two FTDs and the FMC itself reissued"
assert_not_contains "$OUT" "$SEC: (issued|current|FAILED)" "primary: the HA peer is no target"
assert_eq "$(tree_sums "$HA_P")" "$ha_p_before" "primary's HA directory left alone"
for u in $ftds; do
	c=$PRIM/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem
	assert_eq "$(openssl verify -CAfile "$PRIM/etc/sf/ca_root/cacert.pem" "$c" 2>&1)" "$c: OK" "primary: $u chains"
done
assert_eq "$(openssl verify -CAfile "$T/sec-ca.pem" "$HA_P/sftunnel-cert.pem" 2>&1)" \
	"$HA_P/sftunnel-cert.pem: OK" "primary's HA pair still the secondary CA's"
expect_rc 0 "$SFTCA" verify --ca "$PRI" --root "$PRIM"
# Offline, verify knows the HA peer by the CA certificate in its directory.
assert_contains "$OUT" "peers/$SEC: an FMC HA peer \(its cacert.pem is the InternalCA of FMC $SEC\): left to its own CA" \
	"verify passes over the HA peer, naming it"
expect_rc 1 as fmc-east issue --ca "$PRI" --root "$PRIM" --peer "$SEC" --force
assert_contains "$OUT" "--peer $SEC is an FMC HA peer \(.*\): it is renewed with its own CA, sftca issue --ca $SEC on that FMC's tree; nothing done" \
	"naming the HA peer is refused"
assert_eq "$(tree_sums "$HA_P")" "$ha_p_before" "refused: nothing written"
ok "primary: FTDs and FMC renewed with the primary's CA; the secondary's directory left to its own CA"

# --- then the secondary ---------------------------------------------------
expect_rc 0 as fmc-east issue --ca "$SEC" --root "$SECT" --self
assert_contains "$OUT" "peers/$PRI: an FMC HA peer \(its UUID is a CA this signer holds\): left to its own CA" \
	"secondary: HA peer named"
assert_contains "$OUT" "3 issued" "secondary: the FTDs' pairs become the secondary CA's, and its own"
assert_eq "$(tree_sums "$HA_S")" "$ha_s_before" "secondary's HA directory left alone"
for u in $ftds; do
	c=$SECT/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem
	assert_eq "$(openssl verify -CAfile "$SECT/etc/sf/ca_root/cacert.pem" "$c" 2>&1)" "$c: OK" "secondary: $u chains"
	assert_eq "$(openssl x509 -in "$c" -noout -issuer -nameopt RFC2253 | grep -o "CN=[^,]*")" "CN=$SEC" \
		"secondary: $u signed by the secondary's CA"
done
c=$SECT/etc/sf/keys/sftunnel-cert.pem
assert_eq "$(openssl verify -CAfile "$SECT/etc/sf/ca_root/cacert.pem" "$c" 2>&1)" "$c: OK" "secondary's own identity"
# With a signer named, verify asks it too.
expect_rc 0 as fmc-east verify --ca "$SEC" --root "$SECT"
assert_contains "$OUT" "peers/$PRI: an FMC HA peer \(its UUID is a CA this signer holds\): left to its own CA" \
	"verify with a signer: the HA peer by the signer's CA list"
# The link between the two: each FMC's identity is trusted by what the other
# holds for it.
assert_eq "$(openssl verify -CAfile "$HA_S/cacert.pem" "$PRIM/etc/sf/keys/sftunnel-cert.pem" 2>&1)" \
	"$PRIM/etc/sf/keys/sftunnel-cert.pem: OK" "the primary's renewed identity chains to the CA the secondary holds for it"
ok "secondary: renewed with its own CA; the primary's directory left alone; each FMC still trusts the other"
