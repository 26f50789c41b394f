#!/usr/bin/env bash
# sftca verify, offline: every way a peer's pair can be bad (issue 11,
# "Missing tests"), each in its own peer of one FMC tree made with
# openssl, asserted by its verdict text, its JSON verdict and the exit code.
. "$(dirname "$0")/lib.sh"
need python3

FMC=$T/fmc L=$T/legacy
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 7 --legacy-ca "$L" >/dev/null
mapfile -t P < <(ls "$FMC/var/sf/peers")
pair() { echo "$FMC/var/sf/peers/$1/certs_pushed"; }
# leaf_for KEY CN OUT [openssl x509 -req args]: a leaf like the tree's.
leaf_for() {
	local key=$1 cn=$2 out=$3
	shift 3
	openssl req -new -key "$key" -subj "/OU=Intrusion Management System/CN=$cn/O=Cisco Systems, Inc." \
		-out "$T/leaf.csr" 2>/dev/null
	openssl x509 -req -in "$T/leaf.csr" -sha256 -days 365 -extfile "$L/leaf.ext" -out "$out" "$@" 2>/dev/null
}
expect_rc 0 "$SFTCA" verify --ca "$CA_ID" --root "$FMC"
assert_contains "$OUT" "^0 bad$" "the fresh tree is good"

# P0 stays good. P1: CN of another peer.
leaf_for "$(pair "${P[1]}")/sftunnel-key.pem" "${P[0]}" "$(pair "${P[1]}")/sftunnel-cert.pem" \
	-CA "$L/cacert.pem" -CAkey "$L/cakey.pem" -set_serial 101
# P2: its own CN, but from a CA the bundle does not hold.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other-ca.key" -out "$T/other-ca.pem" -days 365 \
	-subj "/CN=$CA_ID" 2>/dev/null
leaf_for "$(pair "${P[2]}")/sftunnel-key.pem" "${P[2]}" "$(pair "${P[2]}")/sftunnel-cert.pem" \
	-CA "$T/other-ca.pem" -CAkey "$T/other-ca.key" -set_serial 102
# P3: expired in 2021 (openssl ca backdates; the CA is valid since today,
# so the chain check fails as well).
openssl req -new -key "$(pair "${P[3]}")/sftunnel-key.pem" \
	-subj "/OU=Intrusion Management System/CN=${P[3]}/O=Cisco Systems, Inc." -out "$T/p3.csr" 2>/dev/null
printf '[x]\n' > "$T/x.ext"; cat "$L/leaf.ext" >> "$T/x.ext"
openssl ca -batch -config "$L/ca.cnf" -cert "$L/cacert.pem" -keyfile "$L/cakey.pem" -in "$T/p3.csr" \
	-out "$(pair "${P[3]}")/sftunnel-cert.pem" -notext -startdate 20200101000000Z -enddate 20210101000000Z \
	-extfile "$T/x.ext" -extensions x 2>/dev/null
# P4: a key that is not the certificate's.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$(pair "${P[4]}")/sftunnel-key.pem" 2>/dev/null
# P5: revoked by a CRL the tree's CA signed.
openssl ca -config "$L/ca.cnf" -cert "$L/cacert.pem" -keyfile "$L/cakey.pem" \
	-revoke "$(pair "${P[5]}")/sftunnel-cert.pem" 2>/dev/null
openssl ca -config "$L/ca.cnf" -cert "$L/cacert.pem" -keyfile "$L/cakey.pem" -gencrl -crldays 30 \
	-out "$FMC/etc/sf/ca_root/crl.pem" 2>/dev/null
serial5=$(openssl x509 -in "$(pair "${P[5]}")/sftunnel-cert.pem" -noout -serial | cut -d= -f2)
assert_contains "$(openssl crl -in "$FMC/etc/sf/ca_root/crl.pem" -noout -text)" "Serial Number: 0*$serial5" "the CRL lists P5"
# P6: no certificate at all.
rm "$(pair "${P[6]}")/sftunnel-cert.pem"

expect_rc 1 "$SFTCA" verify --ca "$CA_ID" --root "$FMC"
line() { grep -E "^$1  " <<<"$OUT" || fail "no line for $1 in: $OUT"; }
assert_contains "$(line "${P[0]}")" "^${P[0]}  OK   until " "P0 good"
assert_eq "$(line "${P[1]}")" "${P[1]}  BAD  CN ${P[0]} is not the directory's UUID ${P[1]}" "wrong CN"
assert_eq "$(line "${P[2]}")" "${P[2]}  BAD  does not chain to the bundle: unable to get local issuer certificate" "not chaining"
assert_contains "$(line "${P[3]}")" "^${P[3]}  BAD  does not chain to the bundle: certificate has expired; expired [0-9]+ days ago$" "expired"
assert_eq "$(line "${P[4]}")" "${P[4]}  BAD  the key does not belong to the certificate" "key mismatch"
assert_eq "$(line "${P[5]}")" "${P[5]}  BAD  revoked by the CRL" "revoked"
assert_eq "$(line "${P[6]}")" "${P[6]}  BAD  no readable certificate $(pair "${P[6]}")/sftunnel-cert.pem" "missing"
assert_contains "$OUT" "^self $CA_ID  OK   until " "the FMC identity is good"
assert_contains "$OUT" "^6 bad$" "six bad"
ok "verify: wrong CN, foreign CA, expired, key mismatch, revoked and missing each reported as such; exit 1"

# Each alone: exit 1 for the bad ones, 0 for the good one.
expect_rc 0 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[0]}"
for i in 1 2 3 4 5 6; do
	expect_rc 1 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[$i]}"
	assert_contains "$OUT" "^1 bad$" "--peer ${P[$i]} alone"
done
ok "verify --peer: exit 1 for each bad peer alone, 0 for the good one"

# JSON: the typed verdict of each.
expect_rc 1 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --json
got=$(python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["bad"] == 6, d["bad"]
for p in d["peers"]:
    print(p["uuid"], p["verdict"], "ok" if p["ok"] else "bad")
' <<<"$OUT")
want=$(printf '%s\n' "${P[0]} ok ok" "${P[1]} wrong-cn bad" "${P[2]} not-chaining bad" \
	"${P[3]} expired bad" "${P[4]} key-mismatch bad" "${P[5]} revoked bad" "${P[6]} missing bad" \
	"$CA_ID ok ok")
assert_eq "$got" "$want" "JSON verdicts"
ok "verify --json: verdict ok / wrong-cn / not-chaining / expired / key-mismatch / revoked / missing"

# Usage: the --peer limit says the limit.
args=()
for i in $(seq 4097); do args+=(--peer "${P[0]}"); done
expect_rc 2 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" "${args[@]}"
assert_contains "$OUT" "more than 4096 peers named" "the limit named"
assert_not_contains "$OUT" "canonical" "not called a bad UUID"
expect_rc 2 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[0]^^}"
assert_contains "$OUT" "is not a canonical lowercase UUID" "uppercase UUID"
ok "verify --peer: the 4,097th is refused naming the limit; a bad UUID as such"

# No CRL time bomb (issue 13): crl.pem's nextUpdate is reported with the
# check thresholds; a CRL past it is wrong (sftunnel may refuse every peer).
expect_rc 0 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[0]}"
assert_contains "$OUT" "^crl.pem  CRITICAL  nextUpdate [-0-9]+ [0-9:]+ UTC \((29|30) days left\)$" "a 30-day CRL: CRITICAL, not wrong yet"
cp "$FMC/etc/sf/ca_root/crl.pem" "$T/crl30.pem"
openssl ca -config "$L/ca.cnf" -cert "$L/cacert.pem" -keyfile "$L/cakey.pem" -gencrl \
	-crl_lastupdate 20240101000000Z -crl_nextupdate 20240201000000Z -out "$FMC/etc/sf/ca_root/crl.pem" 2>/dev/null
expect_rc 1 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[0]}"
assert_contains "$OUT" "^crl.pem  CRITICAL  nextUpdate 2024-02-01 00:00:00 UTC passed [0-9]+ days ago" "an expired CRL named"
assert_contains "$OUT" "^1 bad$" "an expired CRL is wrong"
expect_rc 1 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[0]}" --json
assert_eq "$(python3 -c 'import json,sys; c=json.load(sys.stdin)["crl"]; print(c["state"], c["expired"], c["next_update_unix"])' <<<"$OUT")" \
	"CRITICAL True $(date -d 2024-02-01T00:00:00Z +%s)" "verify --json: crl state, expired, nextUpdate"
rm "$FMC/etc/sf/ca_root/crl.pem"
expect_rc 0 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "${P[0]}"
assert_contains "$OUT" "^crl.pem  none " "no CRL: said, not wrong"
mv "$T/crl30.pem" "$FMC/etc/sf/ca_root/crl.pem"
ok "verify: crl.pem's nextUpdate with the check thresholds (30 days: CRITICAL), past it: wrong (exit 1), missing: said"
