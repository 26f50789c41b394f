#!/usr/bin/env bash
# Issue 13 item 2: custody that keeps FMC registrations working. The FMC
# signs each device registration with its own copy of the InternalCA key.
# An import is 'shared' by default (the FMC keeps that copy), 'exclusive'
# on request; an admin changes it (ledger + audit, others refused); rotate
# is refused under shared without --force. verify and issue name foreign
# leaves (no generation of ours signed them) with the fixing command, and
# issue does not replace a cacert.pem holding a CA the signer does not
# know (the vendor's tool regenerated it) without --force.
. "$(dirname "$0")/lib.sh"
need sqlite3

make_token
make_pki
write_conf "$T/signer.conf" "[audit]
coalesce_seconds = 0"
signer_cmd() { "$SIGNER" --config "$T/signer.conf" "$@"; }
CA_S=$CA_ID                                  # imported, shared (the default)
CA_X=0e6f4f5c-9a4b-11ef-8d2b-3b1f5c2e7a10    # imported, exclusive
CA_N=6bf1143a-8a2e-11ef-92d8-fd927e807d77    # created by sftca
AUDIT=$T/state/audit.log

# mkca DIR CN: a v3 InternalCA made with OpenSSL, key 0600.
mkca() {
	mkdir -p "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/cakey.pem" -out "$1/cacert.pem" \
		-subj "/O=Cisco Systems, Inc/CN=$2" -days 3650 \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
	chmod 600 "$1/cakey.pem"
}
# mkleaf CAKEY CACERT DIR CN: DIR/sftunnel-{cert,key}.pem signed as the FMC
# signs a registration (a key already in DIR is kept).
mkleaf() {
	mkdir -p "$3"
	[ -f "$3/sftunnel-key.pem" ] || { openssl genpkey -algorithm RSA -out "$3/sftunnel-key.pem" 2>/dev/null; chmod 600 "$3/sftunnel-key.pem"; }
	openssl req -new -key "$3/sftunnel-key.pem" -subj "/CN=$4" -out "$3/req.csr" 2>/dev/null
	openssl x509 -req -in "$3/req.csr" -CA "$2" -CAkey "$1" -set_serial "0x$(openssl rand -hex 8)" \
		-days 365 -out "$3/sftunnel-cert.pem" 2>/dev/null
	rm -f "$3/req.csr"
}
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'; }
keyfp() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
ledger() { sqlite3 "$T/state/ledger.db" "$1"; }

# --- an FMC tree whose CA key the FMC holds (etc/sf/ca_root/cakey.pem) ------
F=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$F" --fmc-uuid "$CA_S" --peers 2 >/dev/null
mkca "$F/etc/sf/ca_root" "$CA_S"
for d in "$F"/var/sf/peers/*/certs_pushed; do
	mkleaf "$F/etc/sf/ca_root/cakey.pem" "$F/etc/sf/ca_root/cacert.pem" "$d" "$(basename "$(dirname "$d")")"
done
mkleaf "$F/etc/sf/ca_root/cakey.pem" "$F/etc/sf/ca_root/cacert.pem" "$F/etc/sf/keys" "$CA_S"
cp "$F/etc/sf/ca_root/cakey.pem" "$T/import-s.key"   # the copy taken off the FMC
mkca "$T/cax" "$CA_X"

# --- import: default shared, --custody exclusive, a bad word refused ---------
expect_rc 2 signer_cmd import-ca --ca "$CA_S" --cert "$F/etc/sf/ca_root/cacert.pem" --key "$T/import-s.key" --custody both
assert_contains "$OUT" "--custody 'both': shared or exclusive" "an unknown custody refused"
expect_rc 0 signer_cmd import-ca --help
assert_contains "$OUT" "--custody shared \(the default\): the FMC keeps its copy" "help says the default and why"
expect_rc 0 signer_cmd import-ca --ca "$CA_S" --cert "$F/etc/sf/ca_root/cacert.pem" --key "$T/import-s.key"
assert_contains "$OUT" "custody shared" "import without --custody is shared"
assert_contains "$OUT" "leave /etc/sf/ca_root/cakey.pem on the FMC" "shared: the FMC's copy stays"
assert_not_contains "$OUT" "shred -u /etc" "shared: no advice to destroy the FMC's copy"
expect_rc 0 signer_cmd import-ca --ca "$CA_X" --cert "$T/cax/cacert.pem" --key "$T/cax/cakey.pem" --custody exclusive
assert_contains "$OUT" "custody exclusive" "import --custody exclusive"
assert_contains "$OUT" "FMC's /etc/sf/ca_root/cakey.pem with every backup" "exclusive: destroy the FMC's copy"
assert_contains "$(grep '"event":"ca.import"' "$AUDIT" | grep "$CA_S")" '"custody":"shared"' "import audited with shared"
assert_contains "$(grep '"event":"ca.import"' "$AUDIT" | grep "$CA_X")" '"custody":"exclusive"' "import audited with exclusive"
assert_eq "$(ledger "SELECT ca_id || ' ' || custody FROM ca_custody ORDER BY ca_id")" "$CA_X exclusive
$CA_S shared" "custody in the ledger"
ok "import-ca: shared by default, exclusive on request, both audited and in the ledger; a bad word refused"

start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_N"
expect_rc 0 as auditor-1 status
assert_contains "$OUT" "CA $CA_S .*
  custody: shared \(the FMC keeps its copy" "status: the imported CA is shared"
assert_contains "$(grep -A1 "^CA $CA_X" <<<"$OUT")" "custody: exclusive" "status: exclusive import"
assert_contains "$(grep -A1 "^CA $CA_N" <<<"$OUT")" "custody: exclusive \(the token holds the only copy" "status: a created CA is exclusive"
expect_rc 0 as auditor-1 --json status
assert_eq "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(c["custody"] for c in sorted(d["cas"], key=lambda c: c["ca_id"])))' <<<"$OUT")" "exclusive exclusive shared" "status --json custody"
ok "status shows each CA's custody (text and JSON)"

# --- rotate under shared: refused with the reason, --force later ---------------
expect_rc 1 as ops-admin ca rotate --ca "$CA_S"
assert_contains "$OUT" "FAILED_PRECONDITION: CA $CA_S is in shared custody: the FMC keeps its copy of the key and would keep signing device registrations with the old key" "rotate refused under shared"
assert_eq "$(ledger "SELECT count(*) FROM ca_generations WHERE ca_id='$CA_S'")" 1 "refused rotate added nothing"
ok "rotate of a shared CA refused, saying the FMC would keep signing registrations with the old key"

# --- changing custody: admin only, recorded ------------------------------------
for who in auditor-1 fmc-east; do
	n0=$(wc -l <"$T/signer.log")
	expect_rc 1 as "$who" ca custody --ca "$CA_X" shared
	assert_contains "$OUT" "PERMISSION_DENIED" "$who may not change custody"
	assert_contains "$(tail -n +"$((n0 + 1))" "$T/signer.log")" "refused /sftca.v1.Signer/SetCustody for cn=$who" "refusal logged with who asked"
	assert_contains "$(tail -1 "$AUDIT")" "\"event\":\"refused\",\"identity\":\"cn=$who\".*SetCustody" "refusal audited"
done
assert_eq "$(ledger "SELECT custody FROM ca_custody WHERE ca_id='$CA_X' ORDER BY rowid DESC LIMIT 1")" exclusive "refusals changed nothing"
expect_rc 2 as ops-admin ca custody --ca "$CA_X" both
assert_contains "$OUT" "say shared or exclusive" "a bad custody word"
expect_rc 0 as ops-admin ca custody --ca "$CA_X" shared
assert_contains "$OUT" "CA $CA_X custody: exclusive -> shared" "admin changes custody"
assert_eq "$(ledger "SELECT custody || ' ' || changed_by FROM ca_custody WHERE ca_id='$CA_X' ORDER BY rowid DESC LIMIT 1")" "shared cn=ops-admin" "change in the ledger with who"
assert_contains "$(grep '"event":"ca.custody"' "$AUDIT" | tail -1)" "\"identity\":\"cn=ops-admin\",\"ca\":\"$CA_X\",\"result\":\"ok\",\"detail\":\\{\"previous\":\"exclusive\",\"custody\":\"shared\",\"changed\":true" "change audited"
expect_rc 0 as ops-admin ca custody --ca "$CA_X" shared
assert_contains "$OUT" "already shared: nothing changed" "same custody again"
assert_eq "$(ledger "SELECT count(*) FROM ca_custody WHERE ca_id='$CA_X'")" 2 "no ledger row for no change"
expect_rc 0 as ops-admin ca custody --ca "$CA_X" exclusive
expect_rc 1 as ops-admin ca custody --ca a5f3c1de-9a4b-11ef-8d2b-3b1f5c2e7a10 shared
assert_contains "$OUT" "NOT_FOUND: no CA a5f3c1de" "unknown CA"
ok "custody: admin only (refusals logged with who and audited), every change in the ledger and the audit log"

# --- leaves the FMC signed with the shared key are ours ------------------------
expect_rc 0 as auditor-1 verify --ca "$CA_S" --root "$F"
assert_not_contains "$OUT" "foreign leaf" "registrations signed by the shared key are not foreign"
ok "shared: the FMC's registrations, signed by the same key, verify and are not foreign"

# --- foreign leaves: an unknown CA's, and the vendor's regenerated CA's --------
U_A=aaaaaaaa-1111-4111-8111-111111111111 U_B=bbbbbbbb-2222-4222-8222-222222222222
mkca "$T/rogue" "Unknown CA"
mkleaf "$T/rogue/cakey.pem" "$T/rogue/cacert.pem" "$F/var/sf/peers/$U_A/certs_pushed" "$U_A"
# The vendor's generate_certs.pl: a new CA key and certificate where the FMC
# keeps them, then a registration signed with it.
mkca "$F/etc/sf/ca_root" "$CA_S"
mkleaf "$F/etc/sf/ca_root/cakey.pem" "$F/etc/sf/ca_root/cacert.pem" "$F/var/sf/peers/$U_B/certs_pushed" "$U_B"
expect_rc 1 as auditor-1 verify --ca "$CA_S" --root "$F"
for u in $U_A $U_B; do
	assert_contains "$OUT" "foreign leaf: $F/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem \(subject CN=$u, issuer .*CN=[^)]*\): no generation of CA $CA_S that the signer holds signed it.*fix: sftca issue --ca $CA_S --root $F --peer $u --force" "verify names foreign leaf $u with the fix"
done
assert_contains "$OUT" "issuer O=Cisco Systems..? Inc, CN=Unknown CA\\)" "the unknown CA named as issuer"
assert_contains "$OUT" "2 foreign leaves" "verify counts them"
expect_rc 1 "$SFTCA" verify --ca "$CA_S" --root "$F"
assert_contains "$OUT" "foreign leaves not judged: no signer named" "offline verify says it could not judge"
expect_rc 1 as auditor-1 --json verify --ca "$CA_S" --root "$F"
assert_eq "$(python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["foreign"], d["foreign_judged"], sorted((p["uuid"], p["ok"], p["foreign"]["fix"].endswith("--peer " + p["uuid"] + " --force")) for p in d["peers"] if p.get("foreign")))' <<<"$OUT")" \
	"2 True [('$U_A', False, True), ('$U_B', False, True)]" "verify --json: each foreign leaf with its fix"
ok "verify names both foreign leaves (path, subject, issuer) with the sftca issue command that replaces them (text and JSON)"

# --- issue: an unknown cacert.pem is not replaced without --force --------------
before=$(sha256sum <"$F/etc/sf/ca_root/cacert.pem")
expect_rc 1 as fmc-east issue --ca "$CA_S" --root "$F"
assert_contains "$OUT" "$F/etc/sf/ca_root/cacert.pem holds a CA the signer does not know: subject O=Cisco Systems\\\\, Inc, CN=$CA_S, serial $(openssl x509 -in "$F/etc/sf/ca_root/cacert.pem" -noout -serial | cut -d= -f2), SHA-256 $(fp "$F/etc/sf/ca_root/cacert.pem"), key SHA-256 $(keyfp "$F/etc/sf/ca_root/cacert.pem")" "issue says what it found"
assert_contains "$OUT" "rerun with --force" "issue says how to go on"
for u in $U_A $U_B; do
	assert_contains "$OUT" "foreign leaf: $F/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem .*fix: sftca issue --ca $CA_S --root $F --peer $u --force" "issue names foreign leaf $u"
done
assert_eq "$(sha256sum <"$F/etc/sf/ca_root/cacert.pem")" "$before" "cacert.pem untouched"
[ -z "$(find "$F" -name '*.backup*')" ] || fail "a refused issue wrote backups: $(find "$F" -name '*.backup*')"
expect_rc 0 as fmc-east --json issue --ca "$CA_S" --root "$F" --dry-run
assert_eq "$(python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["summary"]["foreign"], sorted(f["path"].split("/")[-3] for f in d["foreign"]), "does not know" in d["unknown_bundle"])' <<<"$OUT")" \
	"2 ['$U_A', '$U_B'] True" "issue --dry-run --json: foreign leaves and the unknown bundle"
assert_eq "$(sha256sum <"$F/etc/sf/ca_root/cacert.pem")" "$before" "the dry run left cacert.pem alone"
cp "$F/etc/sf/ca_root/cacert.pem" "$T/vendor-ca.pem"
expect_rc 0 as fmc-east issue --ca "$CA_S" --root "$F" --force
assert_contains "$OUT" "replaced \(--force\), the old file kept as a backup" "--force replaces it"
assert_contains "$OUT" "2 foreign leaves \(named above\) replaced" "issue replaced the foreign leaves"
cmp -s "$(ls "$F"/etc/sf/ca_root/cacert.pem.backup.* | head -1)" "$T/vendor-ca.pem" || fail "the vendor's cacert.pem is not kept as a backup"
for u in $U_A $U_B; do
	assert_eq "$(openssl verify -CAfile "$F/etc/sf/ca_root/cacert.pem" "$F/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem" 2>&1)" \
		"$F/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem: OK" "$u now chains to the signer's bundle"
done
expect_rc 0 as auditor-1 verify --ca "$CA_S" --root "$F"
assert_not_contains "$OUT" "foreign leaf" "no foreign leaf left"
ok "issue: an unknown cacert.pem described and kept without --force; with --force replaced (backup kept) and the foreign leaves reissued"

# --- a new registration under exclusive custody: sftca issue --peer ---------------
expect_rc 0 as ops-admin ca custody --ca "$CA_S" exclusive
U_N=cccccccc-3333-4333-8333-333333333333
mkdir -p "$F/var/sf/peers/$U_N/certs_pushed"
expect_rc 0 as fmc-east issue --ca "$CA_S" --root "$F" --peer "$U_N"
assert_contains "$OUT" "1 issued" "the new peer certified"
assert_eq "$(openssl verify -CAfile "$F/etc/sf/ca_root/cacert.pem" "$F/var/sf/peers/$U_N/certs_pushed/sftunnel-cert.pem" 2>&1)" \
	"$F/var/sf/peers/$U_N/certs_pushed/sftunnel-cert.pem: OK" "new registration chains"
ok "exclusive: a new registration is certified with sftca issue --peer NEW-UUID"

# --- rotate: allowed under exclusive; under shared only with --force ------------
expect_rc 0 as ops-admin ca custody --ca "$CA_S" shared
expect_rc 0 as ops-admin ca rotate --ca "$CA_S" --force
assert_contains "$OUT" "generation 2" "rotate --force under shared"
assert_contains "$(grep '"event":"ca.rotate"' "$AUDIT" | tail -1)" "\"ca\":\"$CA_S\",\"result\":\"ok\"" "forced rotate audited"
expect_rc 0 as ops-admin ca rotate --ca "$CA_N"
ok "rotate: --force overrides shared custody; an exclusive CA rotates without it"

# --- custody survives a restart ----------------------------------------------------
stop_signer
start_signer "$T/signer.conf"
expect_rc 0 as auditor-1 status
assert_contains "$(grep -A1 "^CA $CA_S" <<<"$OUT")" "custody: shared" "shared after restart"
assert_contains "$(grep -A1 "^CA $CA_X" <<<"$OUT")" "custody: exclusive" "exclusive after restart"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
ok "custody survives a restart; audit chain intact"
