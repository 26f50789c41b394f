#!/usr/bin/env bash
# Issue 14 item 3: the client's signer address is a list of signers sharing
# one ledger; a call that cannot reach one moves on to the next (flag,
# SFTCA_SIGNER and the client config alike), answers such as
# PERMISSION_DENIED are not asked again elsewhere, bad lists are refused, and
# a signer killed between two runs is stepped over by the next run.
. "$(dirname "$0")/lib.sh"
need ss perl

signer_with_ca
DEAD=$(free_port)
LIVE=127.0.0.1:$PORT
creds() { echo --tls-cert "$T/pki/$1.crt" --tls-key "$T/pki/$1.key" --tls-ca "$T/pki/service-ca.crt"; }
# on LIST CN ARGS...: the CLI as CN with --signer LIST.
on() { local list=$1 cn=$2; shift 2; "$SFTCA" --signer "$list" $(creds "$cn") "$@"; }
switched() { echo "signer 127\.0\.0\.1:$1: UNAVAILABLE: .*; switching to $2"; }

# (a) the first address is dead: status and an issue go to the second.
expect_rc 0 on "127.0.0.1:$DEAD,$LIVE" ops-admin status
assert_contains "$OUT" "$CA_ID" "status through the second address"
assert_contains "$OUT" "warning: $(switched "$DEAD" "$LIVE")" "the switch names both addresses and why"
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 3 >/dev/null
expect_rc 0 on "127.0.0.1:$DEAD,$LIVE" fmc-east issue --ca "$CA_ID" --root "$FMC" --self
assert_contains "$OUT" "4 issued \(0 with new keys\), 0 current, 0 failed" "issue through the second address"
# GetCA, IssueBatch and GetCRL: only the first call switches, later ones stay.
[ "$(grep -c "switching to" <<<"$OUT")" -eq 1 ] || fail "one switch per run expected: $OUT"
assert_eq "$(openssl verify -CAfile "$FMC/etc/sf/ca_root/cacert.pem" "$FMC/etc/sf/keys/sftunnel-cert.pem" 2>&1)" \
	"$FMC/etc/sf/keys/sftunnel-cert.pem: OK" "the FMC's certificate verifies"
ok "--signer DEAD,LIVE: status and issue through LIVE, one warning naming both, later calls stay on LIVE"

# The live one first: nothing to switch, nothing said.
expect_rc 0 on "$LIVE,127.0.0.1:$DEAD" ops-admin status
assert_not_contains "$OUT" "switching" "no switch when the first answers"
# A TCP signer and a unix socket in one list; blanks around commas are fine.
expect_rc 0 on "127.0.0.1:$DEAD , unix:$T/run/signer.sock" ops-admin status
assert_contains "$OUT" "$(switched "$DEAD" "unix:$T/run/signer.sock")" "TCP then unix socket"
ok "the live address first: no switch; TCP and unix: addresses mixed"

# An address that accepts and then never speaks: the deadline passes with the
# channel never connected, which is an outage too.
SILENT=$(free_port)
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
	Listen => 16, ReuseAddr => 1) or die "listen: $!"; while (my $c = $s->accept) { push @k, $c }' \
	"$SILENT" >"$T/silent.log" 2>&1 &
echo $! > "$T/pids/silent"
wait_until 10 "silent listener" bash -c "[ -n \"\$(ss -Hltn 'sport = :$SILENT')\" ]"
expect_rc 0 on "127.0.0.1:$SILENT,$LIVE" ops-admin --timeout 2 status
assert_contains "$OUT" "warning: signer 127\.0\.0\.1:$SILENT: DEADLINE_EXCEEDED: .*; switching to $LIVE" \
	"a silent address is stepped over"
ok "an address that accepts but never completes the handshake: DEADLINE_EXCEEDED unconnected, switched"

# (b) the same list from SFTCA_SIGNER and from the client config.
expect_rc 0 env SFTCA_SIGNER="127.0.0.1:$DEAD,$LIVE" "$SFTCA" $(creds ops-admin) status
assert_contains "$OUT" "$CA_ID" "SFTCA_SIGNER list"
assert_contains "$OUT" "$(switched "$DEAD" "$LIVE")" "SFTCA_SIGNER list switched"
printf '[client]\nsigner = 127.0.0.1:%s,%s\ntls_cert = %s\ntls_key = %s\ntls_ca = %s\n' "$DEAD" "$LIVE" \
	"$T/pki/ops-admin.crt" "$T/pki/ops-admin.key" "$T/pki/service-ca.crt" > "$T/client.conf"
expect_rc 0 "$SFTCA" --config "$T/client.conf" status
assert_contains "$OUT" "$CA_ID" "client config list"
assert_contains "$OUT" "$(switched "$DEAD" "$LIVE")" "client config list switched"
ok "the list in SFTCA_SIGNER and in signer = of the client config"

# (c) every address dead: the error names each one and why.
DEAD2=$(free_port)
while [ "$DEAD2" = "$DEAD" ]; do DEAD2=$(free_port); done
expect_rc 1 on "127.0.0.1:$DEAD,127.0.0.1:$DEAD2" ops-admin status
assert_contains "$OUT" "error: GetStatus: UNAVAILABLE: no signer of 2 reachable: 127\.0\.0\.1:$DEAD \(UNAVAILABLE: .*\); 127\.0\.0\.1:$DEAD2 \(UNAVAILABLE: .*\)" \
	"each address named with its reason"
ok "every address dead: exit 1, the error names each address and why"

# (d) an answer is not an outage: the stranger's PERMISSION_DENIED from the
# first (live) signer is final, though the second is live too.
expect_rc 1 on "$LIVE,unix:$T/run/signer.sock" stranger status
assert_contains "$OUT" "GetStatus: PERMISSION_DENIED" "the denial is reported"
assert_not_contains "$OUT" "switching" "no failover on PERMISSION_DENIED"
# Likewise NOT_FOUND from revoke.
expect_rc 1 on "$LIVE,unix:$T/run/signer.sock" ops-admin revoke --ca "$CA_ID" --serial 00
assert_contains "$OUT" "Revoke: NOT_FOUND" "the answer is reported"
assert_not_contains "$OUT" "switching" "no failover on an answer"
ok "PERMISSION_DENIED (and other answers) from the first signer: reported, not asked of the next"

# (e) bad lists, refused before any call with their own error.
expect_rc 1 on "$LIVE,,127.0.0.1:$DEAD" ops-admin status
assert_contains "$OUT" "signer list \"$LIVE,,127\.0\.0\.1:$DEAD\" \(--signer\): address 2 is empty" "a,,b"
expect_rc 1 on "$LIVE," ops-admin status
assert_contains "$OUT" "address 2 is empty" "trailing comma"
expect_rc 1 env SFTCA_SIGNER="$LIVE,unix:$T/run/signer.sock,$LIVE" "$SFTCA" $(creds ops-admin) status
assert_contains "$OUT" "signer list \(SFTCA_SIGNER\) names $LIVE twice" "duplicate"
list=$LIVE
for i in $(seq 2 17); do list+=",127.0.0.$i:$PORT"; done
expect_rc 1 on "$list" ops-admin status
assert_contains "$OUT" "signer list \(--signer\) names more than 16 addresses" "17 addresses"
list=${list%,*}
expect_rc 0 on "$list" ops-admin status
ok "empty elements, duplicates and 17 addresses refused with their own errors; 16 accepted"

# (f) the signer killed between two runs: the next run steps over it to the
# same signer restarted on another port (the same state dir and ledger).
NEW=$(free_port)
OLD=$PORT
LIST="$LIVE,127.0.0.1:$NEW"
expect_rc 0 on "$LIST" ops-admin status
assert_not_contains "$OUT" "switching" "first run: the first signer"
kill -9 "$SIGNER_PID"
wait "$SIGNER_PID" 2>/dev/null || true
rm -f "$T/pids/signer"
# (The rate limit is for (g) below: one IssueBatch per CN, then busy.)
sed "s/^listen = 127\.0\.0\.1:0$/listen = 127.0.0.1:$NEW/" "$T/signer.conf" > "$T/signer2.conf"
printf '[limits]\nissue_rate = 0.001\nissue_burst = 1\n' >> "$T/signer2.conf"
start_signer "$T/signer2.conf" signer2
expect_rc 0 on "$LIST" fmc-east issue --ca "$CA_ID" --root "$FMC" --self --rekey
assert_contains "$OUT" "4 issued \(4 with new keys\), 0 current, 0 failed" "issue after the kill"
assert_contains "$OUT" "$(switched "$OLD" "127.0.0.1:$NEW")" "the killed signer stepped over"
expect_rc 0 on "$LIST" auditor-1 ledger --ca "$CA_ID" --format csv
[ "$(grep -c "$CA_ID" <<<"$OUT")" -ge 2 ] || fail "the ledger holds both runs' FMC certificates: $OUT"
ok "signer kill -9 between runs: the next run fails over and issues on the same ledger"

# (g) issue's retry of a chunk the signer was too busy for (RESOURCE_EXHAUSTED:
# fmc-east spent its one IssueBatch above) goes to the next address, here the
# same signer's unix socket, where the caller is someone else.
expect_rc 0 on "127.0.0.1:$NEW,unix:$T/run/signer.sock" fmc-east issue --ca "$CA_ID" --root "$FMC" --self --rekey --retries 1
assert_contains "$OUT" "warning: signer 127\.0\.0\.1:$NEW: RESOURCE_EXHAUSTED: .*rate.*; switching to unix:$T/run/signer\.sock" \
	"the busy signer is left for the next"
assert_contains "$OUT" "4 issued \(4 with new keys\), 0 current, 0 failed" "issued on the retry"
ok "issue's retry after RESOURCE_EXHAUSTED goes on with the next address"
