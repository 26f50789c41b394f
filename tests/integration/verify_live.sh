#!/usr/bin/env bash
# sftca verify --live: real TLS 1.2 handshakes with openssl s_server
# "devices" on 127.0.0.2-4 presenting peer identities the signer issued;
# then a foreign CA, a wrong UUID, a device that distrusts the FMC, a closed
# port, a silent port, a row without UUID; exit codes and JSON.
. "$(dirname "$0")/lib.sh"
need ss jq python3

signer_with_ca
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 3 >/dev/null
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self
stop_signer # verify needs no signer
BUNDLE=$FMC/etc/sf/ca_root/cacert.pem
mapfile -t PEERS < <(ls "$FMC/var/sf/peers")
[ "${#PEERS[@]}" -eq 3 ] || fail "expected 3 peers, got ${#PEERS[@]}"
pair() { echo "$FMC/var/sf/peers/$1/certs_pushed/sftunnel-$2.pem"; }

# s_server reads commands from stdin: give it a FIFO it holds open itself,
# so it never sees end-of-file and never gets input.
mkfifo "$T/quiet.fifo"

# start_device NAME ADDR PORT CERT KEY CAFILE: an sftunnel stand-in that
# requires a client certificate chaining to CAFILE and keeps serving.
start_device() {
	local name=$1 addr=$2 port=$3 cert=$4 key=$5 cafile=$6 pid
	openssl s_server -accept "$addr:$port" -cert "$cert" -key "$key" -CAfile "$cafile" \
		-Verify 1 -verify_return_error -tls1_2 -quiet <>"$T/quiet.fifo" >"$T/$name.log" 2>&1 &
	pid=$!
	echo "$pid" > "$T/pids/$name"
	for _ in $(seq 100); do
		[ -n "$(ss -Hltn "sport = :$port")" ] && return 0
		kill -0 "$pid" 2>/dev/null || fail "s_server $name exited: $(cat "$T/$name.log")"
		sleep 0.1
	done
	fail "s_server $name is not listening on $addr:$port"
}

P1=$(free_port) P2=$(free_port) P3=$(free_port)
start_device dev-a 127.0.0.2 "$P1" "$(pair "${PEERS[0]}" cert)" "$(pair "${PEERS[0]}" key)" "$BUNDLE"
start_device dev-b 127.0.0.3 "$P2" "$(pair "${PEERS[1]}" cert)" "$(pair "${PEERS[1]}" key)" "$BUNDLE"
start_device dev-c 127.0.0.4 "$P3" "$(pair "${PEERS[2]}" cert)" "$(pair "${PEERS[2]}" key)" "$BUNDLE"

CSV=$T/devices.csv
(umask 077; cat > "$CSV" <<CSV
device_name,ip,admin_username,admin_password,uuid,tunnel_port
dev-a,127.0.0.2,admin,"pa,ss""word",${PEERS[0]},$P1
dev-b,127.0.0.3,admin,x,${PEERS[1]},$P2
dev-c,127.0.0.4,admin,x,${PEERS[2]},$P3
CSV
)
verify() { "$SFTCA" verify --ca "$CA_ID" --root "$FMC" "$@"; }

expect_rc 0 verify --live --devices "$CSV"
assert_contains "$OUT" "0 bad" "the offline checks still run first"
for i in 0 1 2; do
	addr=$(sed -n "$((i + 2))p" "$CSV" | cut -d, -f2)
	port=$(sed -n "$((i + 2))p" "$CSV" | awk -F, '{print $NF}')
	assert_contains "$OUT" "^dev-[abc] $addr:$port ${PEERS[$i]}  OK  \(TLSv1\.2, [A-Z0-9-]+, peer cert notAfter 20[0-9]{2}-" "device $i OK"
done
assert_contains "$OUT" "^live: 3 devices, 3 OK, 0 FAILED$" "summary"
[ "$(grep -n "0 bad" <<<"$OUT" | cut -d: -f1)" -lt "$(grep -n "^dev-a" <<<"$OUT" | cut -d: -f1)" ] ||
	fail "device lines must follow the offline lines: $OUT"
assert_not_contains "$OUT" "holds passwords" "a 0600 devices.csv draws no warning"
ok "three devices: TLS 1.2 handshakes verified both ways, CN = UUID, exit 0"

expect_rc 0 verify --live --devices "$CSV" --json
jq -e '.bad == 0 and .live.failed == 0 and .live.ok == 3 and (.live.devices | length) == 3' <<<"$OUT" >/dev/null ||
	fail "JSON summary: $OUT"
jq -e --arg u "${PEERS[1]}" --argjson p "$P2" '.live.devices[1] | .name == "dev-b" and .ip == "127.0.0.3"
	and .port == $p and .uuid == $u and .ok and .protocol == "TLSv1.2" and (.cipher | length) > 0
	and (.not_after | test("^20[0-9][0-9]-")) and .error == ""' <<<"$OUT" >/dev/null ||
	fail "JSON device entry: $OUT"
ok "--json: the offline document with a live section"

# A device whose certificate comes from another CA (same UUID as CN).
F=$T/foreign
mkdir -p "$F"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$F/ca.key" -out "$F/ca.pem" -days 30 \
	-subj "/CN=Foreign InternalCA/O=Elsewhere" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$F/leaf.key" -out "$F/leaf.csr" \
	-subj "/OU=Intrusion Management System/CN=${PEERS[1]}/O=Cisco Systems, Inc." 2>/dev/null
openssl x509 -req -in "$F/leaf.csr" -CA "$F/ca.pem" -CAkey "$F/ca.key" -set_serial 7 -days 30 \
	-out "$F/leaf.pem" 2>/dev/null
P4=$(free_port) P5=$(free_port) P6=$(free_port) CLOSED=$(free_port)
start_device foreign 127.0.0.3 "$P4" "$F/leaf.pem" "$F/leaf.key" "$BUNDLE"
# A device that does not trust this FMC (its bundle is the foreign CA).
start_device distrust 127.0.0.4 "$P5" "$(pair "${PEERS[2]}" cert)" "$(pair "${PEERS[2]}" key)" "$F/ca.pem"
# A port that accepts TCP and never answers.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(16); time.sleep(3600)' "$P6" &
echo $! > "$T/pids/silent"
for _ in $(seq 100); do [ -n "$(ss -Hltn "sport = :$P6")" ] && break; sleep 0.1; done

# UUIDs are unique in a devices.csv: rows that need no real one get fresh ones.
R1=$(</proc/sys/kernel/random/uuid) R2=$(</proc/sys/kernel/random/uuid) R3=$(</proc/sys/kernel/random/uuid)
BAD=$T/bad.csv
(umask 077; cat > "$BAD" <<CSV
device_name,ip,admin_username,admin_password,uuid,tunnel_port
dev-a,127.0.0.2,admin,x,${PEERS[0]},$P1
impostor,127.0.0.3,admin,x,${PEERS[1]},$P4
wrong-uuid,127.0.0.2,admin,x,$R1,$P1
distrusts-fmc,127.0.0.4,admin,x,${PEERS[2]},$P5
closed,127.0.0.4,admin,x,$R2,$CLOSED
silent,127.0.0.2,admin,x,$R3,$P6
no-uuid,127.0.0.3,admin,x,,$P2
CSV
)
start=$(date +%s)
expect_rc 1 verify --live --devices "$BAD" --tls-timeout 2 --jobs 4
[ $(($(date +%s) - start)) -lt 10 ] || fail "the silent device held the run longer than its timeout"
assert_contains "$OUT" "^dev-a 127\.0\.0\.2:$P1 ${PEERS[0]}  OK  " "good device among bad ones"
assert_contains "$OUT" "^impostor 127\.0\.0\.3:$P4 ${PEERS[1]}  FAILED  peer certificate does not chain to the bundle: unable to get local issuer certificate$" "foreign CA"
assert_contains "$OUT" "^wrong-uuid 127\.0\.0\.2:$P1 $R1  FAILED  CN is ${PEERS[0]}, expected $R1$" "wrong UUID"
assert_contains "$OUT" "^distrusts-fmc 127\.0\.0\.4:$P5 ${PEERS[2]}  FAILED  TLS handshake failed: .*alert" "device refuses the FMC"
assert_contains "$OUT" "^closed 127\.0\.0\.4:$CLOSED $R2  FAILED  connection refused" "closed port"
assert_contains "$OUT" "^silent 127\.0\.0\.2:$P6 $R3  FAILED  TLS handshake timed out after 2 s$" "silent port"
assert_contains "$OUT" "^no-uuid 127\.0\.0\.3:$P2 -  FAILED  no uuid for this device \(line 8\)" "row without uuid"
assert_contains "$OUT" "^live: 7 devices, 1 OK, 6 FAILED$" "summary"
assert_contains "$OUT" "0 bad" "offline part passed"
ok "foreign CA, wrong UUID, distrusting device, closed port, silent port, no UUID: each FAILED with its reason, exit 1"

expect_rc 1 verify --live --devices "$BAD" --tls-timeout 2 --json
jq -e '.bad == 0 and .live.ok == 1 and .live.failed == 6' <<<"$OUT" >/dev/null || fail "JSON failures: $OUT"
jq -e '[.live.devices[] | select(.ok | not) | .error] | length == 6 and all(length > 0)' <<<"$OUT" >/dev/null ||
	fail "every failed JSON entry has its error: $OUT"
jq -e '.live.devices[2].error | startswith("CN is ")' <<<"$OUT" >/dev/null || fail "JSON CN error: $OUT"
ok "--json with failures: exit 1, every failure with its error"

# The offline part failing alone also fails the run; live lines still print.
mv "$(pair "${PEERS[2]}" key)" "$T/key.aside"
expect_rc 1 verify --live --devices "$CSV"
assert_contains "$OUT" "1 bad" "offline failure"
assert_contains "$OUT" "^live: 3 devices, 3 OK, 0 FAILED$" "live part still ran"
mv "$T/key.aside" "$(pair "${PEERS[2]}" key)"
ok "an offline failure with all tunnels up still exits 1"

# A revoked device certificate fails the live check as in sftunnel, which
# checks the leaf against crl.pem; its neighbours still pass.
start_signer "$T/signer.conf"
serial=$(openssl x509 -in "$(pair "${PEERS[1]}" cert)" -noout -serial | cut -d= -f2)
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason keyCompromise
cp "$FMC/etc/sf/ca_root/crl.pem" "$T/crl.aside"
expect_rc 0 as ops-admin crl --ca "$CA_ID" --out "$FMC/etc/sf/ca_root/crl.pem"
stop_signer
expect_rc 1 verify --live --devices "$CSV"
assert_contains "$OUT" "^dev-b 127\.0\.0\.3:$P2 ${PEERS[1]}  FAILED  peer certificate refused by the CRL check: certificate revoked" "revoked device refused live"
assert_contains "$OUT" "^live: 3 devices, 2 OK, 1 FAILED$" "its neighbours pass"
cp "$T/crl.aside" "$FMC/etc/sf/ca_root/crl.pem"
expect_rc 0 verify --live --devices "$CSV"
ok "verify --live checks the device's certificate against crl.pem, as sftunnel does"

# Refusals before any handshake.
expect_rc 2 verify --live
assert_contains "$OUT" "--live and --devices FILE go together" "--live without --devices"
expect_rc 2 verify --devices "$CSV"
expect_rc 2 verify --live --devices "$CSV" --jobs 0
expect_rc 2 verify --live --devices "$CSV" --tls-timeout x
printf 'device_name,ip,admin_username,admin_password\nx,127.0.0.2,admin,Hunter2-secret,extra\n' > "$T/broken.csv"
chmod 644 "$T/broken.csv"
expect_rc 1 verify --live --devices "$T/broken.csv"
assert_contains "$OUT" "broken.csv holds passwords but is readable by group or others \(mode 0644\): chmod 600" "mode warning"
assert_contains "$OUT" "broken.csv line 2: 5 fields; the header names 4" "bad devices.csv"
assert_not_contains "$OUT" "Hunter2" "no password in messages"
expect_rc 1 verify --live --devices "$T/broken.csv" --json
jq -e '.bad == 0 and (.live.error | length) > 0' <<<"$(grep -v '^sftca: ' <<<"$OUT")" >/dev/null ||
	fail "JSON when the live checks cannot run: $OUT"
expect_rc 1 verify --live --devices "$T/missing.csv"
mv "$FMC/etc/sf/keys/sftunnel-key.pem" "$T/fmckey.aside"
expect_rc 1 verify --live --devices "$CSV"
assert_contains "$OUT" "the FMC identity .*sftunnel-cert.pem .*cannot be used" "no FMC identity"
mv "$T/fmckey.aside" "$FMC/etc/sf/keys/sftunnel-key.pem"
expect_rc 0 verify --help
assert_contains "$OUT" "--tls-timeout" "help lists the live options"
ok "usage errors exit 2; a bad devices.csv or a missing FMC identity exit 1 with the reason"

# Every device server is still up: none crashed on what it was sent.
for name in dev-a dev-b dev-c foreign distrust silent; do
	kill -0 "$(cat "$T/pids/$name")" 2>/dev/null || fail "$name died during the test"
done
ok "all device stand-ins still running (stopped by the EXIT trap)"
