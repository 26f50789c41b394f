#!/usr/bin/env bash
# Issue 14: several signers on one PostgreSQL ledger. A real PostgreSQL
# (started here, stopped at the end), signers A and B sharing one SoftHSM2
# token directory and one database, each with its own state directory.
# - the schema is created on an empty database; a newer one is refused;
# - a rotation on A followed at once by an issuance on B: B signs with the
#   new generation;
# - CRLs fetched alternately from A and B have strictly increasing numbers;
# - a signer killed with serials reserved: its pending rows are abandoned by
#   the other signer only after its lease expired;
# - the database restarted: calls fail cleanly, then work again without a
#   signer restart;
# - migrate-ledger copies a SQLite ledger into an empty database, all of it,
#   and refuses a database that holds a ledger.
. "$(dirname "$0")/lib.sh"
need openssl

start_pg
make_token
make_pki
LEASE=4

# conf NAME: signer NAME's configuration (own state dir and unix socket).
conf() {
	local name=$1
	write_conf "$T/$name.conf"
	sed -i "s|^state_dir = .*|state_dir = $T/state-$name|; s|unix:$T/run/signer.sock|unix:$T/run/$name.sock|" "$T/$name.conf"
	sed -i "/^\[ledger\]/a lease_seconds = $LEASE" "$T/$name.conf"
}
# on NAME CMD...: the CLI as CN against signer NAME (its TCP port).
on() { local name=$1 cn=$2; shift 2; PORT=${PORTS[$name]} as "$cn" "$@"; }
declare -A PORTS
# crlnum FILE: the CRL number in decimal (openssl prints it as 0x…).
crlnum() { local n; n=$(openssl crl -in "$1" -noout -crlnumber | cut -d= -f2); echo $((n)); }

# --- refusals at start: each names what is wrong, nothing is written ----------
# refused NAME PATTERN WHAT: signer with config NAME.conf must not start.
refused() {
	local rc
	set +e
	"$SIGNER" --config "$T/$1.conf" --allow-root > "$T/$1.out" 2>&1
	rc=$?
	set -e
	[ "$rc" -ne 0 ] || fail "$3: the signer started"
	assert_contains "$(cat "$T/$1.out")" "$2" "$3"
}
conf x
sed -i "s|^url = postgresql://sftca@|url = postgresql://sftca:hunter2@|" "$T/x.conf"
refused x "\[ledger\] url carries a password: put it in password_file" "a password in the url"
assert_not_contains "$(cat "$T/x.out")" "hunter2" "the password is not echoed"
conf x
cp "$PG_PWFILE" "$T/open.pw" && chmod 0644 "$T/open.pw"
sed -i "s|^password_file = .*|password_file = $T/open.pw|" "$T/x.conf"
refused x "password_file $T/open.pw: group or others may read it" "a password file others may read"
conf x
(umask 077 && echo wrong > "$T/wrong.pw")
sed -i "s|^password_file = .*|password_file = $T/wrong.pw|" "$T/x.conf"
refused x "cannot connect: .*password authentication failed" "a wrong password"
conf x
sed -i "/^url = /d" "$T/x.conf"
refused x "\[ledger\] password_file and lease_seconds need url" "password_file without url"
assert_eq "$(psql_q "SELECT to_regclass('meta') IS NULL")" t "no refused signer wrote to the database"
ok "refused at start: a password in the url, a readable password file, a wrong password, password_file without url"

conf a
conf b
start_signer "$T/a.conf" a
PORTS[a]=$PORT
assert_eq "$(psql_q "SELECT value FROM meta WHERE key = 'schema_version'")" 2 "schema created on the empty database"
assert_file_contains "$T/a.log" "schema version 2 created" "the signer says it created the schema"
start_signer "$T/b.conf" b
PORTS[b]=$PORT
assert_eq "$(psql_q "SELECT count(*) FROM signers WHERE stopped_at IS NULL")" 2 "both signers hold a lease"
ok "schema created by the first signer; both signers registered"

# --- a rotation on A, at once an issuance on B --------------------------------
F=$T/fmc
expect_rc 0 on a ops-admin ca create --ca "$CA_ID"
"$SRC/scripts/make-fmc-tree.sh" --root "$F" --fmc-uuid "$CA_ID" --peers 6 >/dev/null
expect_rc 0 on b ops-admin issue --ca "$CA_ID" --root "$F" --force
expect_rc 0 on a ops-admin ca rotate --ca "$CA_ID"
expect_rc 0 on b fmc-east issue --ca "$CA_ID" --root "$F"
on a ops-admin ca cert --ca "$CA_ID" > "$T/g2.pem"
assert_contains "$(openssl x509 -in "$T/g2.pem" -noout -text)" "Serial Number" "generation 2 certificate"
for p in "$F"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem; do
	assert_eq "$(openssl verify -CAfile "$T/g2.pem" "$p" 2>&1)" "$p: OK" "B's leaf verifies against A's new generation alone"
done
assert_eq "$(psql_q "SELECT count(DISTINCT generation) FROM certificates WHERE requester = 'cn=fmc-east'")" 1 "B's batch used one generation"
assert_eq "$(psql_q "SELECT DISTINCT generation FROM certificates WHERE requester = 'cn=fmc-east'")" 2 "and it is generation 2"
assert_file_contains "$T/b.log" "CAs reloaded from the ledger" "B took over A's change"
ok "rotation on A, issuance on B right after: B signed with generation 2"

# --- CRL numbers across signers ---------------------------------------------
last=0
for i in 1 2 3 4 5 6; do
	s=$([ $((i % 2)) -eq 1 ] && echo a || echo b)
	expect_rc 0 on "$s" fmc-east crl --ca "$CA_ID" --out "$T/crl-$i.pem"
	n=$(crlnum "$T/crl-$i.pem")
	[ "$n" -gt "$last" ] || fail "CRL $i from signer $s has number $n, not above $last"
	last=$n
done
# A revocation on B: A's next CRL (from its cache otherwise) lists it.
serial=$(openssl x509 -in "$(ls "$F"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem | head -1)" -noout -serial | cut -d= -f2)
expect_rc 0 on b ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason superseded
expect_rc 0 on a fmc-east crl --ca "$CA_ID" --out "$T/crl-r.pem"
assert_contains "$(openssl crl -in "$T/crl-r.pem" -noout -text)" "$serial" "A's CRL lists B's revocation"
n=$(crlnum "$T/crl-r.pem")
[ "$n" -gt "$last" ] || fail "CRL after the revocation has number $n, not above $last"
ok "CRLs fetched alternately from A and B: numbers strictly increase; a revocation on B is in A's next CRL"

# --- a finalize on A: B never signs with the retired generation ---------------
expect_rc 0 on a ops-admin ca finalize --ca "$CA_ID" --force
expect_rc 0 on b ops-admin status
assert_contains "$OUT" "  1 +retired" "B sees generation 1 retired by A"
expect_rc 0 on b fmc-east issue --ca "$CA_ID" --root "$F" --force
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE generation = 1 AND issued_at >= (SELECT state_changed_at FROM ca_generations WHERE ca_id = '$CA_ID' AND generation = 1)")" 0 \
	"nothing signed with generation 1 after A retired it"
ok "finalize on A: B shows generation 1 retired and issues with generation 2 only"

# --- a run across A and B; A killed with kill -9 in the middle ----------------
F2=$T/fmc2
"$SRC/scripts/make-fmc-tree.sh" --root "$F2" --fmc-uuid "$CA_ID" --peers 2000 --key-pool 16 >/dev/null
peers2=$(ls "$F2/var/sf/peers" | wc -l)
issued0=$(psql_q "SELECT count(*) FROM certificates WHERE state = 'issued'")
pid_a=$(cat "$T/pids/a")
"$SFTCA" --signer "127.0.0.1:${PORTS[a]},127.0.0.1:${PORTS[b]}" --tls-cert "$T/pki/ops-admin.crt" \
	--tls-key "$T/pki/ops-admin.key" --tls-ca "$T/pki/service-ca.crt" \
	issue --ca "$CA_ID" --root "$F2" --force > "$T/run2.out" 2>&1 &
run=$!
under_way() { [ "$(psql_q "SELECT count(*) FROM certificates WHERE state = 'issued'")" -ge $((issued0 + 300)) ]; }
wait_until 120 "the run under way on A" under_way
kill -9 "$pid_a"
rm -f "$T/pids/a"
inst_a=$(psql_q "SELECT instance_id FROM signers WHERE pid = $pid_a AND stopped_at IS NULL")
set +e
wait "$run"
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "the run did not survive A's death (exit $rc): $(tail -5 "$T/run2.out")"
assert_file_contains "$T/run2.out" "signer 127.0.0.1:${PORTS[a]}: .*switching to 127.0.0.1:${PORTS[b]}" "the client says it moved to B"
assert_file_contains "$T/run2.out" "^$peers2 issued \(0 with new keys\), 0 current, 0 failed" "every peer issued"
# Each certificate on disk is on record, issued, exactly once; the serials
# are unique; what A signed and never delivered is on record too (issued or
# abandoned), never as a second certificate on disk.
# (One process for 2000 files: the DER of each PEM, hashed.)
python3 - "$F2"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem <<'PY' | sort > "$T/disk.sha"
import base64, hashlib, sys
for path in sys.argv[1:]:
    pem = open(path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    print(hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest())
PY
assert_eq "$(sort -u "$T/disk.sha" | wc -l)" "$peers2" "one distinct certificate per peer on disk"
psql_q "SELECT cert_sha256 FROM certificates WHERE state = 'issued' AND cert_sha256 IS NOT NULL" | sort > "$T/ledger.sha"
assert_eq "$(comm -23 "$T/disk.sha" "$T/ledger.sha" | wc -l)" 0 "every certificate on disk is on record as issued"
assert_eq "$(sort "$T/ledger.sha" | uniq -d | wc -l)" 0 "no certificate recorded twice"
assert_eq "$(psql_q "SELECT count(*) - count(DISTINCT serial) FROM certificates")" 0 "no serial twice"
# A's reserved rows: pending until its lease ran out, then abandoned.
a_settled() { [ "$(psql_q "SELECT count(*) FROM certificates WHERE instance_id = '$inst_a' AND state = 'pending'")" = 0 ]; }
wait_until 30 "A's pending rows settled" a_settled
assert_eq "$(psql_q "SELECT count(*) FROM certificates c JOIN signers s USING (instance_id) WHERE s.instance_id = '$inst_a' AND c.state = 'abandoned' AND s.lease_until > extract(epoch from clock_timestamp())::bigint")" 0 \
	"A's rows were abandoned only once its lease had run out"
start_signer "$T/a.conf" a
PORTS[a]=$PORT
ok "$peers2 peers across A and B, A killed -9 mid-run: the run completes on B; every certificate on disk on record once, no serial twice"

# --- a signer dies with serials reserved -----------------------------------
LEASE=8 conf c
SFTCA_FAILPOINTS=issue.reserved=kill start_signer "$T/c.conf" c
PORTS[c]=$PORT
pid_c=$(cat "$T/pids/c")
inst_c=$(psql_q "SELECT instance_id FROM signers WHERE pid = $pid_c AND stopped_at IS NULL")
# The client retries a dead signer for a while: it runs on in the background.
on c ops-admin issue --ca "$CA_ID" --root "$F" --force >/dev/null 2>&1 &
client=$!
c_dead() { ! kill -0 "$pid_c" 2>/dev/null; }
wait_until 20 "signer C killed by its failpoint" c_dead
rm -f "$T/pids/c"
died=$(date +%s)
pending=$(psql_q "SELECT count(*) FROM certificates WHERE instance_id = '$inst_c' AND state = 'pending'")
[ "$pending" -gt 0 ] || fail "C died with no pending rows on record: $(psql_q "SELECT instance_id, state, count(*) FROM certificates GROUP BY 1, 2") / $(psql_q "SELECT * FROM signers") / C is $inst_c"
lease_c=$(psql_q "SELECT lease_until FROM signers WHERE instance_id = '$inst_c'")
# Within C's lease (8 s; renewed every 2 s): nobody takes its rows yet.
sleep 1
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE instance_id = '$inst_c' AND state = 'pending'")" "$pending" \
	"C's rows stay pending while its lease runs"
c_settled() { [ "$(psql_q "SELECT count(*) FROM certificates WHERE instance_id = '$inst_c' AND state = 'pending'")" = 0 ]; }
wait_until 30 "C's pending rows abandoned" c_settled
abandoned_at=$(psql_q "SELECT extract(epoch from clock_timestamp())::bigint")
[ "$abandoned_at" -gt "$lease_c" ] || fail "C's rows were abandoned at $abandoned_at, before its lease ended at $lease_c"
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE instance_id = '$inst_c' AND state = 'abandoned'")" "$pending" "every pending row of C is abandoned"
cat "$T/a.log" "$T/b.log" > "$T/ab.log"
assert_file_contains "$T/ab.log" "$pending serials left pending by a signer whose lease expired are now abandoned" "a live signer says so"
wait "$client" || true
ok "C killed with $pending serials reserved: pending through its lease, abandoned after it ($((abandoned_at - died)) s after its death)"

# --- a serial already on record: drawn again, nothing signed twice ----------
conf e
SFTCA_FAILPOINTS=issue.serial_collision=error start_signer "$T/e.conf" e
PORTS[e]=$PORT
F4=$T/fmc4
"$SRC/scripts/make-fmc-tree.sh" --root "$F4" --fmc-uuid "$CA_ID" --peers 4 --key-pool 2 >/dev/null
rows0=$(psql_q "SELECT count(*) FROM certificates")
expect_rc 0 on e ops-admin issue --ca "$CA_ID" --root "$F4" --force
n=$(grep -oE '^[0-9]+ issued' <<<"$OUT" | cut -d' ' -f1)
[ "${n:-0}" -ge 4 ] || fail "the batch with a colliding serial was not issued: $OUT"
assert_file_contains "$T/e.log" "a serial of the batch is already on record: drawing new serials \(attempt 2 of 4\)" "the collision is logged"
assert_eq "$(psql_q "SELECT count(*) FROM certificates") " "$((rows0 + n)) " "one row per certificate: the colliding reservation left nothing"
stop_signer e
ok "a serial collision at reservation: new serials drawn, $n certificates issued, one row each"

# --- the database restarted ---------------------------------------------------
pg_stop
set +e
OUT=$(on a ops-admin issue --ca "$CA_ID" --root "$F" --force --timeout 20 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an issue with the database down succeeded: $OUT"
assert_contains "$OUT" "ledger|UNAVAILABLE|unavailable" "the failure names the ledger"
assert_file_contains "$T/a.log" "the database cannot be reached|cannot be read|ledger" "A logs the database outage"
pg_start
expect_rc 0 on a ops-admin issue --ca "$CA_ID" --root "$F" --force
expect_rc 0 on b fmc-east issue --ca "$CA_ID" --root "$F" --force
kill -0 "$(cat "$T/pids/a")" && kill -0 "$(cat "$T/pids/b")" || fail "a signer died with the database"
ok "database stopped: issue fails naming the ledger; started again: both signers issue without a restart"

# Under load: a restart while B issues in a loop; afterwards nothing is
# pending for a live signer and every issued row carries its certificate.
(for _ in $(seq 8); do on b fmc-east issue --ca "$CA_ID" --root "$F" --force >/dev/null 2>&1 || true; done) &
loader=$!
sleep 1
pg_restart
wait "$loader" || true
expect_rc 0 on b fmc-east issue --ca "$CA_ID" --root "$F" --force
assert_eq "$(psql_q "SELECT count(*) FROM certificates c JOIN signers s USING (instance_id) WHERE c.state = 'pending' AND s.stopped_at IS NULL AND s.lease_until >= extract(epoch from clock_timestamp())::bigint")" 0 "no live signer left rows pending"
assert_eq "$(psql_q "SELECT count(*) FROM certificates WHERE state = 'issued' AND (cert_der IS NULL OR cert_sha256 IS NULL)")" 0 "every issued row holds its certificate"
conf chk
mkdir -m 0700 "$T/state-chk"
expect_rc 0 "$SIGNER" --config "$T/chk.conf" check-ledger
assert_contains "$OUT" "ledger $PG_URL: intact \(0 problems; 0 pending rows marked abandoned now\)" "check-ledger on PostgreSQL, beside live signers"
ok "database restarted under load: the signers go on; the ledger is whole (check-ledger: intact)"

# --- a newer schema is refused -----------------------------------------------
psql_q "UPDATE meta SET value = '99' WHERE key = 'schema_version'" >/dev/null
conf d
refused d "schema version 99; this signer knows up to 2: refusing to touch it" "a newer schema (the refusal names both versions)"
psql_q "UPDATE meta SET value = '2' WHERE key = 'schema_version'" >/dev/null
ok "a ledger with a newer schema is refused"

# --- TLS to the database, as the url asks -----------------------------------
# tls_conf NAME QUERY: signer NAME with "?QUERY" appended to the url.
tls_conf() { conf "$1"; sed -i "s|^url = .*|url = $PG_URL?${2//&/\\&}|" "$T/$1.conf"; }
tls_conf t1 "sslmode=require"
refused t1 "cannot connect: .*server does not support SSL" "sslmode=require against a server without TLS"
mkdir -p "$T/pgtls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pg test CA" \
	-keyout "$T/pgtls/ca.key" -out "$T/pgtls/ca.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other CA" \
	-keyout "$T/pgtls/other.key" -out "$T/pgtls/other.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$T/pgtls/server.key" -out "$T/pgtls/server.csr" 2>/dev/null
openssl x509 -req -in "$T/pgtls/server.csr" -CA "$T/pgtls/ca.crt" -CAkey "$T/pgtls/ca.key" -days 2 \
	-extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$T/pgtls/server.crt" 2>/dev/null
install -m 0600 -o "$PG_OS_USER" "$T/pgtls/server.crt" "$T/pgtls/server.key" "$PG_DIR/pg/data/"
pg_as "$PG_BIN/psql" -X -q -h "$PG_DIR/pg/sock" -p "$PG_PORT" -U postgres -d postgres \
	-c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
tls_ready() { pg_as "$PG_BIN/psql" -X -qtA -h "$PG_DIR/pg/sock" -p "$PG_PORT" -U postgres -d postgres -c "SHOW ssl" | grep -qx on; }
wait_until 10 "TLS on in the test cluster" tls_ready
tls_conf t2 "sslmode=verify-full&sslrootcert=$T/pgtls/other.crt"
refused t2 "cannot connect: .*certificate verify failed" "a server certificate from another CA"
tls_conf t3 "sslmode=verify-full&sslrootcert=$T/pgtls/ca.crt"
start_signer "$T/t3.conf" t3
PORTS[t3]=$PORT
expect_rc 0 on t3 ops-admin issue --ca "$CA_ID" --root "$F" --force
stop_signer t3
ok "TLS to the database as the url asks: refused without it on the server, refused with a server certificate of another CA, verified and used with the right one"

# --- migrate-ledger: SQLite into an empty database -------------------------------
stop_signer a
stop_signer b
LEDGER_URL= write_conf "$T/s.conf"
sed -i "s|^state_dir = .*|state_dir = $T/state-s|; s|unix:$T/run/signer.sock|unix:$T/run/s.sock|" "$T/s.conf"
start_signer "$T/s.conf" s
PORTS[s]=$PORT
CA3=0b6e2a6e-8a2e-11ef-92d8-fd927e807d77
F3=$T/fmc3
expect_rc 0 on s ops-admin ca create --ca "$CA3"
"$SRC/scripts/make-fmc-tree.sh" --root "$F3" --fmc-uuid "$CA3" --peers 5 >/dev/null
expect_rc 0 on s ops-admin issue --ca "$CA3" --root "$F3" --force
cert3=$(ls "$F3"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem | head -1)
serial3=$(openssl x509 -in "$cert3" -noout -serial | cut -d= -f2)
expect_rc 0 on s ops-admin revoke --ca "$CA3" --serial "$serial3" --reason keyCompromise
expect_rc 0 on s ops-admin crl --ca "$CA3" --out "$T/crl3.pem"
on s ops-admin ledger --ca "$CA3" --format csv | sort > "$T/before.csv"
stop_signer s
pg_as "$PG_BIN/psql" -X -q -h "$PG_DIR/pg/sock" -p "$PG_PORT" -U postgres -d postgres \
	-c "CREATE DATABASE sftca2 OWNER sftca" >/dev/null
URL2=postgresql://sftca@127.0.0.1:$PG_PORT/sftca2
sed "s|^state_dir = .*|state_dir = $T/state-s|; s|unix:$T/run/signer.sock|unix:$T/run/s.sock|" "$T/s.conf" > "$T/m.conf"
printf '[ledger]\nurl = %s\npassword_file = %s\n' "$URL2" "$PG_PWFILE" >> "$T/m.conf"
expect_rc 0 "$SIGNER" --config "$T/m.conf" migrate-ledger
assert_contains "$OUT" "copied into $URL2: 1 CA generations, 1 custody changes, 5 certificates, 1 CRL numbers" "the copy is counted"
start_signer "$T/m.conf" m
PORTS[m]=$PORT
on m ops-admin ledger --ca "$CA3" --format csv | sort > "$T/after.csv"
assert_eq "$(diff "$T/before.csv" "$T/after.csv" && echo same)" same "every row the same after the move"
expect_rc 0 on m ops-admin crl --ca "$CA3" --out "$T/crl3b.pem"
assert_eq "$(crlnum "$T/crl3b.pem")" "$(($(crlnum "$T/crl3.pem") + 1))" "CRL numbering goes on from the SQLite ledger's"
assert_contains "$(openssl crl -in "$T/crl3b.pem" -noout -text)" "$serial3" "the revocation came along"
# The compromised key came along: its certificate gone, re-certifying it is refused.
rm "$cert3"
set +e
OUT=$(on m ops-admin issue --ca "$CA3" --root "$F3" --force 2>&1)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a key revoked for keyCompromise was certified again after the move: $OUT"
assert_contains "$OUT" "key revoked for keyCompromise: SPKI SHA-256 [0-9a-f]{64} \(serial $serial3, CA $CA3\)" "the refusal names the serial and CA"
[ ! -e "$cert3" ] || fail "a certificate was written for the compromised key"
stop_signer m
expect_rc 1 "$SIGNER" --config "$T/m.conf" migrate-ledger
assert_contains "$OUT" "already holds .* CA generations and certificates: copying into it would mix two ledgers" "a second copy is refused"
ok "migrate-ledger: SQLite ledger copied whole (rows, revocation, CRL number, the compromised key refused); a non-empty database refused"
