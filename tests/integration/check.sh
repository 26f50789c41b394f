#!/usr/bin/env bash
# sftca check: offline expiry of certificate files and trees, monitoring exit
# codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), JSON and Prometheus output,
# and days that match `openssl x509 -enddate` with the vendor's arithmetic.
. "$(dirname "$0")/lib.sh"
need jq timeout mkfifo

P=$T/pki
mkdir -p "$P"
cd "$T"

# A CA like the FMC's InternalCA, and leaves with chosen validity.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 3650 \
	-subj "/title=InternalCA/OU=Intrusion Management System/CN=$CA_ID/O=Cisco Systems, Inc." 2>/dev/null
leaf() { # leaf NAME DAYS [SUBJECT]
	openssl req -new -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" \
		-subj "${3:-/OU=Intrusion Management System/CN=$1/O=Cisco Systems, Inc.}" 2>/dev/null
	openssl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -set_serial "$RANDOM" \
		-days "$2" -out "$P/$1.pem" 2>/dev/null
}
leaf ok 400
leaf warn 60
leaf crit 10
# Already expired: only `openssl ca` takes an end date in the past.
cat > "$T/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $T/index.txt
new_certs_dir = $T
serial = $T/serial
policy = p
default_md = sha256
default_crl_days = 30
crlnumber = $T/crlnumber
[p]
commonName = supplied
CNF
: > "$T/index.txt"; echo 1000 > "$T/serial"; echo 4A > "$T/crlnumber"
openssl req -new -newkey rsa:2048 -nodes -keyout "$P/expired.key" -out "$P/expired.csr" \
	-subj "/CN=expired-peer" 2>/dev/null
openssl ca -batch -config "$T/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" \
	-startdate 20200101000000Z -enddate 20210101000000Z -in "$P/expired.csr" -out "$P/expired.pem" 2>/dev/null
openssl x509 -in "$P/expired.pem" -out "$P/expired.pem" # drop the text dump openssl ca adds
openssl ca -gencrl -config "$T/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -out "$P/crl.pem" 2>/dev/null
# CRLs judged by nextUpdate: 400 days (OK), 60 (WARNING), 10 (CRITICAL).
for d in 400 60 10; do
	openssl ca -gencrl -config "$T/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -crldays "$d" -out "$P/crl$d.pem" 2>/dev/null
done

# The vendor's one-liner, for one certificate at time NOW: days left, or
# minus the days since expiry.
vendor_days() {
	local end secs now=$2
	end=$(openssl x509 -enddate -noout -in "$1" | cut -d= -f2)
	secs=$(date -d "$end" +%s)
	if [ "$secs" -le "$now" ]; then
		echo $(( -((now - secs) / (24*60*60)) ))
	else
		echo $(( (secs - now) / (24*60*60) ))
	fi
}
# json_days JSON PATH INDEX
json_days() { jq -r --arg p "$2" --argjson i "$3" '.results[] | select(.path == $p and .index == $i) | .days_left' <<<"$1"; }

# ---- single files: exit code per state, days as the vendor computes them
expect_rc 0 "$SFTCA" check "$P/ok.pem"
assert_contains "$OUT" "^OK: 1 certificate in 1 file" "summary line first"
assert_contains "$OUT" "ok.pem\[0\]  notAfter .*, (399|400) days left" "days left"
expect_rc 1 "$SFTCA" check "$P/warn.pem"
assert_contains "$OUT" "^WARNING" "60 days is WARNING"
expect_rc 2 "$SFTCA" check "$P/crit.pem"
assert_contains "$OUT" "^CRITICAL" "10 days is CRITICAL"
expect_rc 2 "$SFTCA" check "$P/expired.pem"
assert_contains "$OUT" "expired [0-9]+ days ago" "expired wording"
ok "one file: exit 0 OK, 1 WARNING, 2 CRITICAL (expiring), 2 CRITICAL (expired)"

# ---- the seed's expired-CA rules: shown at <= 30 days and once expired, not at 60 or 400
RULE1="do not reboot or upgrade the *FMC or any FTD"
for c in crit expired; do
	expect_rc 2 "$SFTCA" check "$P/$c.pem"
	assert_contains "$OUT" "Tunnels that are still up stay up until they reconnect" "rules at $c"
	assert_contains "$(tr '\n' ' ' <<<"$OUT" | tr -s ' ')" "$RULE1" "no reboot/upgrade rule at $c"
	assert_contains "$OUT" "FMC first, then the devices" "order rule at $c"
	assert_contains "$OUT" "An FMC upgrade is acceptable only when every device is already down" "upgrade rule at $c"
	set +e
	J=$("$SFTCA" check --json "$P/$c.pem" 2>"$T/check.err")
	set -e
	assert_eq "$(jq -r '.expiry_rules | length' <<<"$J")" 3 "JSON expiry_rules at $c"
	assert_contains "$(jq -r '.expiry_rules[0]' <<<"$J")" "still up stay up" "JSON rule text at $c"
	assert_not_contains "$(cat "$T/check.err")" "still up" "JSON mode keeps the rules in the document"
done
for c in ok warn; do
	expect_rc "$([ $c = ok ] && echo 0 || echo 1)" "$SFTCA" check "$P/$c.pem"
	assert_not_contains "$OUT" "still up|FMC first" "no rules at $c"
	J=$("$SFTCA" check --json "$P/$c.pem" || true)
	assert_eq "$(jq -r 'has("expiry_rules")' <<<"$J")" false "no JSON rules at $c"
done
ok "expiry rules: check prints them (stderr, JSON field) at 10 days and expired, not at 60 or 400"

set +e
J=$("$SFTCA" check --json "$P/ok.pem" "$P/warn.pem" "$P/crit.pem" "$P/expired.pem" "$P/ca.pem")
rc=$?
set -e
assert_eq "$rc" 2 "exit code of a mixed set"
assert_eq "$(jq -r .state <<<"$J")" CRITICAL "JSON state"
assert_eq "$(jq -r .exit_code <<<"$J")" 2 "JSON exit_code"
assert_eq "$(jq -c .counts <<<"$J")" '{"OK":2,"WARNING":1,"CRITICAL":2,"UNKNOWN":0}' "JSON counts"
NOW=$(jq -r .now <<<"$J")
for c in ok warn crit expired ca; do
	want=$(vendor_days "$P/$c.pem" "$NOW")
	got=$(json_days "$J" "$P/$c.pem" 0)
	assert_eq "$got" "$want" "days of $c.pem (vendor arithmetic at now=$NOW)"
done
[ "$(json_days "$J" "$P/expired.pem" 0)" -lt -365 ] || fail "expired.pem should be over a year gone"
assert_eq "$(jq -r --arg p "$P/expired.pem" '.results[] | select(.path == $p) | .expired' <<<"$J")" true "expired flag"
assert_eq "$(jq -r --arg p "$P/expired.pem" '.results[] | select(.path == $p) | .not_after' <<<"$J")" \
	"2021-01-01T00:00:00Z" "notAfter in JSON"
assert_eq "$(jq -r --arg p "$P/warn.pem" '.results[] | select(.path == $p) | .subject' <<<"$J")" \
	"OU=Intrusion Management System, CN=warn, O=Cisco Systems\\, Inc." "subject in JSON"
ok "JSON: state, counts, and days equal to openssl -enddate + the vendor's arithmetic"

# ---- thresholds at the boundary: crit.pem has 10 days minus the seconds
# since it was made, so it is within 10 days but not within 9.
expect_rc 2 "$SFTCA" check --warn-days 10 --crit-days 10 "$P/crit.pem"
expect_rc 1 "$SFTCA" check --warn-days 10 --crit-days 9 "$P/crit.pem"
expect_rc 0 "$SFTCA" check --warn-days 9 --crit-days 9 "$P/crit.pem"
expect_rc 0 "$SFTCA" check --warn-days 0 --crit-days 0 "$P/crit.pem"
expect_rc 2 "$SFTCA" check --warn-days 0 --crit-days 0 "$P/expired.pem"
ok "thresholds: within N days means notAfter <= now + N*86400"

# ---- usage errors exit 3 (UNKNOWN), never 2 (CRITICAL)
expect_rc 3 "$SFTCA" check --crit-days 100 "$P/ok.pem"
assert_contains "$OUT" "crit-days 100 is more than --warn-days 90" "crit > warn"
expect_rc 3 "$SFTCA" check --warn-days 20 "$P/ok.pem" # default crit 30 > 20
expect_rc 3 "$SFTCA" check --warn-days -1 "$P/ok.pem"
expect_rc 3 "$SFTCA" check --warn-days 12abc "$P/ok.pem"
assert_contains "$OUT" "expected a whole number" "non-numeric days"
expect_rc 3 "$SFTCA" check --crit-days "" "$P/ok.pem"
expect_rc 3 "$SFTCA" check --json --prometheus "$P/ok.pem"
expect_rc 3 "$SFTCA" check
expect_rc 3 "$SFTCA" check --no-such-option "$P/ok.pem"
expect_rc 0 "$SFTCA" check --help
assert_contains "$OUT" "Usage errors also exit 3" "help explains the exit codes"
expect_rc 1 "$SFTCA" --json check "$P/warn.pem" # global --json before the command
jq -e '.state == "WARNING"' <<<"$OUT" >/dev/null || fail "global --json: $OUT"
ok "usage errors: exit 3; --help: exit 0"

# ---- UNKNOWN: missing, not a certificate, damaged, empty
expect_rc 3 "$SFTCA" check "$T/no/such/file.pem"
assert_contains "$OUT" "UNKNOWN +$T/no/such/file.pem +No such file" "missing path"
expect_rc 3 "$SFTCA" check "$P/ok.key"
assert_contains "$OUT" "PEM PRIVATE KEY block but no certificate" "a key named explicitly"
mkfifo "$T/fifo.pem"
expect_rc 3 timeout 10 "$SFTCA" check "$T/fifo.pem"
assert_contains "$OUT" "not a regular file" "a FIFO is not opened for reading"
printf 'garbage\n' > "$T/garbage.crt"
expect_rc 3 "$SFTCA" check "$T/garbage.crt"
assert_contains "$OUT" "neither PEM nor DER" "garbage"
# A bundle whose second block is damaged: the others still count, and the
# damaged one is UNKNOWN with its index.
{ cat "$P/ok.pem"; sed '3s/^..../!!!!/' "$P/ca.pem"; cat "$P/warn.pem"; } > "$T/damaged.pem"
expect_rc 1 "$SFTCA" check "$T/damaged.pem"
assert_contains "$OUT" "UNKNOWN +$T/damaged.pem\[1\] +certificate block 1 is damaged" "damaged block"
assert_contains "$OUT" "WARNING +$T/damaged.pem\[2\]" "block after the damaged one"
# Severity order OK < UNKNOWN < WARNING < CRITICAL.
{ cat "$P/ok.pem"; sed '3s/^..../!!!!/' "$P/ca.pem"; } > "$T/damaged-ok.pem"
expect_rc 3 "$SFTCA" check "$T/damaged-ok.pem"
expect_rc 2 "$SFTCA" check "$T/damaged-ok.pem" "$P/crit.pem"
ok "UNKNOWN: missing path, key, FIFO, garbage, damaged block; OK < UNKNOWN < WARNING < CRITICAL"

# ---- DER and duplicates
openssl x509 -in "$P/ok.pem" -outform DER -out "$T/ok.der"
expect_rc 0 "$SFTCA" check "$T/ok.der"
assert_contains "$OUT" "ok.der\[0\]" "DER certificate"
expect_rc 0 "$SFTCA" check --json "$P/ok.pem" "$P/ok.pem"
assert_eq "$(jq '.results | length' <<<"$OUT")" 1 "a file named twice is checked once"
ok "DER certificates; a file named twice counts once"

# ---- a tree shaped like an FMC
R=$T/fmc
PEER1=6bf1143a-8a2e-11ef-92d8-fd927e807d77
PEER2=0e5b7ba0-8a2f-11ef-9a13-8f2ab8f5a0c1
mkdir -p "$R/etc/sf/ca_root" "$R/etc/sf/keys" "$R/var/sf/peers/$PEER1/certs_pushed" "$R/var/sf/peers/$PEER2"
cp "$P/ca.pem" "$R/etc/sf/ca_root/cacert.pem"
cp "$P/crl400.pem" "$R/etc/sf/ca_root/crl.pem"
cp "$P/ok.pem" "$R/etc/sf/keys/sftunnel-cert.pem"
cp "$P/ok.key" "$R/etc/sf/keys/sftunnel-key.pem"
cp "$P/warn.pem" "$R/var/sf/peers/$PEER1/certs_pushed/sftunnel-cert.pem"
cp "$P/warn.key" "$R/var/sf/peers/$PEER1/certs_pushed/sftunnel-key.pem"
echo '{"peer":"x"}' > "$R/var/sf/peers/$PEER1/sftunnel.json"
echo 1 > "$R/var/sf/peers/$PEER1/sftunnel-heartbeat"
cat "$P/ok.pem" "$P/ca.pem" > "$R/var/sf/peers/$PEER2/sftunnel-cert.pem"
cp "$P/expired.pem" "$R/var/sf/peers/$PEER2/sftunnel-cert.pem.backup.20200101T000000Z"
cp "$P/expired.pem" "$R/var/sf/peers/$PEER2/sftunnel-cert.pem.backup"
# Certificates found by content, whatever the name.
{ echo "# pinned by hand"; cat "$P/ok.pem"; } > "$R/var/sf/peers/$PEER2/pinned"
# sftca's own temporary file mid-write is not looked at.
echo "-----BEGIN CERTIFICATE-----" > "$R/var/sf/peers/$PEER2/.sftunnel-cert.pem.sftca-tmp.123"
# Symbolic-link loops and a FIFO must not hang the walk.
ln -s .. "$R/var/sf/peers/loop"
ln -s "$R" "$R/etc/sf/root-again"
mkfifo "$R/var/sf/peers/$PEER1/queue.pem"

set +e
J=$(timeout 60 "$SFTCA" check --json "$R")
rc=$?
set -e
assert_eq "$rc" 1 "exit code of the tree (worst: WARNING)"
assert_eq "$(jq -r '.results | map(.path | sub("^'"$R"'/"; "")) | join(" ")' <<<"$J")" \
	"etc/sf/ca_root/cacert.pem etc/sf/ca_root/crl.pem etc/sf/keys/sftunnel-cert.pem var/sf/peers/$PEER2/pinned var/sf/peers/$PEER2/sftunnel-cert.pem var/sf/peers/$PEER2/sftunnel-cert.pem var/sf/peers/$PEER1/certs_pushed/sftunnel-cert.pem" \
	"files checked, in order (keys, JSON, FIFO, backups, temp files left out; each once)"
assert_eq "$(jq -r '[.results[] | select(.kind == "crl") | .path] | join(" ")' <<<"$J")" "$R/etc/sf/ca_root/crl.pem" "the CRL sftunnel.conf names is judged"
assert_eq "$(jq -r .skipped_backups <<<"$J")" 2 "backups skipped"
assert_eq "$(jq -r .files <<<"$J")" 6 "files with certificates or CRLs"
assert_eq "$(jq -r --arg p "$R/var/sf/peers/$PEER2/sftunnel-cert.pem" '[.results[] | select(.path == $p) | .index] | join(",")' <<<"$J")" \
	"0,1" "both certificates of the bundle"
NOW=$(jq -r .now <<<"$J")
assert_eq "$(json_days "$J" "$R/var/sf/peers/$PEER2/sftunnel-cert.pem" 1)" "$(vendor_days "$P/ca.pem" "$NOW")" "days of a bundle's second certificate"
ok "FMC tree: bundles, content detection, the CRL judged, keys/JSON skipped, loops and FIFOs do not hang"

# No CRL time bomb (issue 13): crl.pem's nextUpdate has the certificates'
# thresholds and exit codes, in every format.
expect_rc 0 "$SFTCA" check "$P/crl400.pem"
assert_contains "$OUT" "^OK: 0 certificates and 1 CRL in 1 file" "a CRL with 400 days left: OK"
expect_rc 1 "$SFTCA" check "$P/crl60.pem"
assert_contains "$OUT" "WARNING +$P/crl60.pem\[0\]  nextUpdate [-0-9]+ [0-9:]+ UTC, (59|60) days left  CRL of .*CN=$CA_ID" "60 days: WARNING, named as a CRL"
expect_rc 2 "$SFTCA" check "$P/crl10.pem"
next=$(date -d "$(openssl crl -in "$P/crl10.pem" -noout -nextupdate | cut -d= -f2)" +%s)
J=$("$SFTCA" check --json "$P/crl10.pem" || true)
assert_eq "$(jq -r '.results[0] | [.kind, .state, .next_update_unix // .not_after_unix, .serial] | join(" ")' <<<"$J")" \
	"crl CRITICAL $next $(openssl crl -in "$P/crl10.pem" -noout -crlnumber | sed 's/^crlNumber=0x//')" "JSON: kind, state, nextUpdate, CRL number"
M=$("$SFTCA" check --prometheus "$P/crl10.pem" "$P/ok.pem" || true)
grep -qE "^sftca_crl_next_update_seconds\{path=\"$P/crl10.pem\",issuer=\"[^\"]*CN=$CA_ID[^\"]*\",index=\"0\"\} $next$" <<<"$M" ||
	fail "Prometheus: no sftca_crl_next_update_seconds sample: $M"
grep -qE "^sftca_crl_expiry_state\{path=\"$P/crl10.pem\",issuer=\"[^\"]*CN=$CA_ID[^\"]*\",index=\"0\"\} 2$" <<<"$M" ||
	fail "Prometheus: no CRITICAL sftca_crl_expiry_state: $M"
assert_not_contains "$(grep '^sftca_cert_' <<<"$M")" "crl10" "the CRL is not among the certificates' series"
ok "CRLs: nextUpdate judged with the certificate thresholds (OK / WARNING / CRITICAL and exit 0/1/2), named as CRLs, JSON kind and CRL number, Prometheus sftca_crl_* series"

expect_rc 2 timeout 60 "$SFTCA" check --include-backups "$R"
assert_contains "$OUT" "CRITICAL +$R/var/sf/peers/$PEER2/sftunnel-cert.pem.backup\[0\]" "vendor-style backup"
assert_contains "$OUT" "sftunnel-cert.pem.backup.20200101T000000Z\[0\]" "sftca-style backup"
expect_rc 2 "$SFTCA" check "$R/var/sf/peers/$PEER2/sftunnel-cert.pem.backup"
ok "backups: skipped in walks, checked with --include-backups or when named"

# An empty sftunnel-cert.pem (the seed's '> sftunnel-cert.pem' step half
# done) and an empty directory are UNKNOWN, not silently OK.
: > "$R/var/sf/peers/$PEER1/sftunnel-cert.pem"
expect_rc 1 "$SFTCA" check "$R"
assert_contains "$OUT" "UNKNOWN +$R/var/sf/peers/$PEER1/sftunnel-cert.pem +empty file" "empty cert file"
mkdir "$T/empty"
expect_rc 3 "$SFTCA" check "$T/empty"
assert_contains "$OUT" "no certificate found in this directory" "empty directory"
expect_rc 0 "$SFTCA" check "$R/etc/sf/ca_root" "$R/etc/sf/keys"
ok "empty certificate file and empty directory: UNKNOWN"

# ---- Prometheus textfile format, with label values that need escaping
W=$T/prom
mkdir -p "$W"
cp "$P/warn.pem" "$W/we\"ird\\na"$'\n'"me.pem"
leaf quote 400 '/CN=say "hi"\\back'
cp "$P/quote.pem" "$W/quote.pem"
cp "$P/expired.pem" "$W/old.pem"
: > "$W/zz-empty.pem"
set +e
M=$("$SFTCA" check --prometheus "$W")
rc=$?
set -e
assert_eq "$rc" 2 "exit code with --prometheus"
for m in sftca_cert_not_after_seconds sftca_cert_days_left sftca_cert_expiry_state sftca_check_worst_state; do
	grep -qx "# HELP $m .*" <<<"$M" || fail "no HELP for $m"
	grep -qx "# TYPE $m gauge" <<<"$M" || fail "no TYPE for $m"
done
NOW=$(date +%s)
grep -qxF "sftca_cert_not_after_seconds{path=\"$W/old.pem\",subject=\"CN=expired-peer\",index=\"0\"} 1609459200" <<<"$M" ||
	fail "not_after of old.pem: $M"
grep -qE "^sftca_cert_days_left\{path=\"$W/old.pem\",subject=\"CN=expired-peer\",index=\"0\"\} -[0-9]+$" <<<"$M" ||
	fail "negative days_left for an expired certificate"
grep -qxF "sftca_cert_expiry_state{path=\"$W/old.pem\",subject=\"CN=expired-peer\",index=\"0\"} 2" <<<"$M" ||
	fail "state of old.pem"
# The file name holds a double quote, a backslash and a newline.
grep -qxF "sftca_cert_expiry_state{path=\"$W/we\\\"ird\\\\na\\nme.pem\",subject=\"OU=Intrusion Management System, CN=warn, O=Cisco Systems\\\\, Inc.\",index=\"0\"} 1" <<<"$M" ||
	fail "escaped path label: $M"
# The subject holds a quote and a backslash (RFC 2253 escapes them; the label escapes that).
grep -qF 'subject="CN=say \\\"hi\\\"\\\\back"' <<<"$M" || fail "escaped subject label: $(grep quote.pem <<<"$M")"
grep -qxF "sftca_cert_expiry_state{path=\"$W/zz-empty.pem\",subject=\"\",index=\"\"} 3" <<<"$M" ||
	fail "UNKNOWN file as state 3"
grep -qxF "sftca_check_worst_state 2" <<<"$M" || fail "worst state"
# Every sample line is NAME{labels} VALUE or NAME VALUE; no raw newline split a sample.
bad=$(grep -vE '^(# (HELP|TYPE) .*|sftca_[a-z_]+(\{.*\})? -?[0-9]+)$' <<<"$M" || true)
[ -z "$bad" ] || fail "malformed exposition lines: $bad"
ok "Prometheus: HELP/TYPE, all four metrics, label values escaped (\\\\, \\\", \\n)"

# --out writes the report atomically, nothing on stdout.
expect_rc 2 "$SFTCA" check --prometheus --out "$T/sftca.prom" "$W"
assert_eq "$OUT" "" "stdout with --out"
grep -qxF "sftca_check_worst_state 2" "$T/sftca.prom" || fail "--out file content"
[ -z "$(find "$T" -maxdepth 1 -name '*.sftca-tmp.*')" ] || fail "temporary file left behind"
ok "--out FILE: written atomically"
