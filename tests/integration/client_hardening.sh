#!/usr/bin/env bash
# Issue 10, the client's part: attacks on the FMC tree and from devices,
# with the real signer, CLI and sshd device stand-ins. A revoked pair is
# never pushed and its key is replaced (item 4); symlinks in the tree and a
# predictable stage name (8); two runs on one tree (10); a device that drips
# after the end marker or prints terminal control sequences (9); which
# known_hosts file is used (12).
. "$(dirname "$0")/lib.sh"
need jq
signer_with_ca
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 2 >/dev/null
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self
start_fmc_devices "$FMC" 2
dev_uuid() { grep "^$1," "$CSV" | cut -d, -f5; }
remote() { ctl "$1" run cat "/var/sf/peers/$CA_ID/$2"; }
push() { "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --known-hosts "$KH" \
	--failed-push "$T/FAILED_PUSH" "$@"; }
spki() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64; }
expect_rc 0 push
assert_contains "$OUT" "0 failed" "first push"

# --- item 4: revoked pairs ------------------------------------------------------------
U1=$(dev_uuid ftd-01)
P1=$FMC/var/sf/peers/$U1/certs_pushed
# A new certificate for the same key, not pushed yet, then revoked for
# keyCompromise and the CRL published into the tree.
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U1" --force
serial=$(openssl x509 -in "$P1/sftunnel-cert.pem" -noout -serial | cut -d= -f2)
spki0=$(spki "$P1/sftunnel-cert.pem")
expect_rc 0 as ops-admin revoke --ca "$CA_ID" --serial "$serial" --reason keyCompromise
expect_rc 0 as auditor-1 crl --ca "$CA_ID" --out "$FMC/etc/sf/ca_root/crl.pem"
expect_rc 1 "$SFTCA" verify --ca "$CA_ID" --root "$FMC" --peer "$U1"
assert_contains "$OUT" "revoked by the CRL" "verify reports the pair revoked"
for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do remote ftd-01 "$f" > "$T/rev-before-$f"; done
r0=$(ctl ftd-01 restarts)
expect_rc 1 push
assert_contains "$(grep " ftd-01 " <<<"$OUT")" "FAILED: local certificate $P1/sftunnel-cert.pem \(serial $serial\) is revoked by .*crl.pem: not pushed" "push refuses the revoked pair"
assert_contains "$OUT" "0 updated, 1 unchanged, 1 failed" "the other device is not held up"
for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do
	cmp -s <(remote ftd-01 "$f") "$T/rev-before-$f" || fail "ftd-01: $f changed though its pair is revoked"
done
[ -z "$(ctl ftd-01 run sh -c "ls -a /var/sf/peers/$CA_ID/ | grep -E 'sftca-tmp|backup'")" ] || fail "ftd-01: something was written"
assert_eq "$(ctl ftd-01 restarts)" "$r0" "no restart of a refused device"
ok "push refuses a pair the tree's CRL revokes (clear message), writes nothing to that device"

expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U1"
assert_contains "$OUT" "$U1  issued .*new key" "issue after revoke makes a new key"
assert_contains "$OUT" "serial $serial .* is revoked" "and says why"
spki1=$(spki "$P1/sftunnel-cert.pem")
[ "$spki0" != "$spki1" ] || fail "the revoked key was certified again"
assert_contains "$(openssl pkey -in "$P1/sftunnel-key.pem" -pubout | openssl pkey -pubin -outform DER | sha256sum)" "$spki1" "key file matches the new certificate"
expect_rc 0 push
assert_contains "$OUT" "1 updated, 1 unchanged, 0 failed" "push after the new key"
ok "issue after revoke: a new key (SPKI differs), which push then sends"

# --- item 8: symbolic links in the FMC tree ---------------------------------------------
U2=$(dev_uuid ftd-02)
P2=$FMC/var/sf/peers/$U2/certs_pushed
VICTIM=$T/victim
mkdir -p "$VICTIM"
echo precious > "$VICTIM/precious"
cp "$P2"/sftunnel-*.pem "$VICTIM/"
victim_state() { (cd "$VICTIM" && stat -c "%n %a %s %Y" . * && sha256sum *); }
victim0=$(victim_state)
# certs_pushed is a link to a directory root must not write into.
mv "$P2" "$T/real-certs_pushed"
ln -s "$VICTIM" "$P2"
expect_rc 1 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U2" --rekey
assert_contains "$OUT" "$U2  FAILED   $P2 is a symbolic link: refused \(a certs_pushed must be a real directory" "issue refuses a symlinked certs_pushed"
assert_eq "$(victim_state)" "$victim0" "the link's target is untouched by issue"
for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do remote ftd-02 "$f" > "$T/l-before-$f"; done
expect_rc 1 push
assert_contains "$(grep " ftd-02 " <<<"$OUT")" "FAILED: $P2 is a symbolic link: refused" "push refuses a symlinked certs_pushed"
for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do
	cmp -s <(remote ftd-02 "$f") "$T/l-before-$f" || fail "ftd-02: $f changed though its certs_pushed is a link"
done
rm "$P2"
mv "$T/real-certs_pushed" "$P2"
# The peer directory itself is a link.
mv "$FMC/var/sf/peers/$U2" "$T/real-peer"
ln -s "$T/real-peer" "$FMC/var/sf/peers/$U2"
expect_rc 1 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U2" --rekey
assert_contains "$OUT" "$FMC/var/sf/peers/$U2 is a symbolic link: refused \(a peer directory must be a real directory" "issue refuses a symlinked peer directory"
rm "$FMC/var/sf/peers/$U2"
mv "$T/real-peer" "$FMC/var/sf/peers/$U2"
ok "a certs_pushed or peer directory that is a symbolic link: issue and push refuse it by name, its target and the device untouched"

# The stage beside certs_pushed has a random name: a link planted at the
# name older versions used is neither followed nor in the way.
ln -s "$VICTIM" "$P2.sftca-stage"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U2" --rekey
assert_contains "$OUT" "$U2  issued .*new key" "a new key through the stage"
assert_eq "$(victim_state)" "$victim0" "the planted link's target is untouched"
[ -L "$P2.sftca-stage" ] || fail "the planted link was removed"
[ -z "$(ls -d "$P2".sftca-stage.* 2>/dev/null)" ] || fail "a stage was left behind"
rm "$P2.sftca-stage"
ok "the stage directory's name is random (DIR.sftca-stage.PID.XXXXXX): a link at the predictable name changes nothing"

# --- item 10: two runs on one tree -------------------------------------------------------
LOCK=$FMC/etc/sf/sftca.lock
# wait_lock PID COMMAND: until that run holds the tree's lock.
wait_lock() {
	for _ in $(seq 300); do
		grep -qx "pid $1 $2" "$LOCK" 2>/dev/null && return 0
		kill -0 "$1" 2>/dev/null || fail "the first $2 ended before it held the lock"
		sleep 0.1
	done
	fail "the first $2 did not take the lock within 30 s"
}
# second_runs_refused PID COMMAND: while that run holds the tree, another
# issue and another push are refused, naming it.
second_runs_refused() {
	wait_lock "$1" "$2"
	expect_rc 1 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U2" --force
	assert_contains "$OUT" "another sftca $2 is running on $FMC \(pid $1\)" "an issue during a $2 is refused"
	expect_rc 1 push
	assert_contains "$OUT" "another sftca $2 is running on $FMC \(pid $1\)" "a push during a $2 is refused"
}
# A first issue, held up by a signer that stops answering (SIGSTOP).
kill -STOP "$SIGNER_PID"
on_exit kill -CONT "$SIGNER_PID"
"$SFTCA" $(tls fmc-east) issue --ca "$CA_ID" --root "$FMC" --peer "$U1" --force >"$T/first-issue.out" 2>&1 &
first=$!
echo "$first" > "$T/pids/first-issue"
second_runs_refused "$first" issue
[ -z "$(ls -d "$FMC"/var/sf/peers/*/certs_pushed.sftca-stage* 2>/dev/null)" ] || fail "a refused run left a stage"
kill -CONT "$SIGNER_PID"
wait "$first" || fail "the first issue failed: $(cat "$T/first-issue.out")"
rm -f "$T/pids/first-issue"
assert_contains "$(cat "$T/first-issue.out")" "1 issued" "the first issue finished its job"
# A first push, held up by a device that stops answering.
ctl ftd-01 freeze >/dev/null
"$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --known-hosts "$KH" \
	--failed-push "$T/FP-first" --ssh-timeout 60 >"$T/first-push.out" 2>&1 &
first=$!
echo "$first" > "$T/pids/first-push"
second_runs_refused "$first" push
ctl ftd-01 thaw >/dev/null
wait "$first" || fail "the first push failed: $(cat "$T/first-push.out")"
rm -f "$T/pids/first-push"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$U2" --force
expect_rc 0 push
[ -f "$LOCK" ] && [ ! -s "$LOCK" ] || fail "the lock file is not left empty after the runs"
ok "two runs on one tree: while an issue or a push runs, a second issue or push is refused naming it and its pid; both finish, and the next runs work"

# --- item 9: hostile devices --------------------------------------------------------------
# ftd-02 (ftd shell) answers the first framed command with its end marker,
# then drips a digit every 2 s for ever.
head -1 "$CSV" > "$T/ftd02.csv" && grep "^ftd-02," "$CSV" >> "$T/ftd02.csv" && chmod 600 "$T/ftd02.csv"
ctl ftd-02 hostile drip >/dev/null
drip_push() {
	local t0=$(date +%s)
	expect_rc 1 timeout 60 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/ftd02.csv" \
		--known-hosts "$KH" --failed-push "$T/FP-drip" "$@"
	ELAPSED=$(($(date +%s) - t0))
}
drip_push --ssh-timeout 4
assert_contains "$OUT" "ftd-02 .*FAILED: no complete answer from the device shell within 4 s" "a dripping device fails its step"
[ "$ELAPSED" -lt 30 ] || fail "the push held by a dripping device took $ELAPSED s"
assert_eq "$(grep -c 'hostile fired: drip' "$D/ftd-02/faults.log")" "1" "the drip fired"
drip_push --ssh-timeout 60 --device-timeout 8
assert_contains "$OUT" "ftd-02 .*FAILED: .*the device's deadline of 8 s passed \(--device-timeout\)" "the device's deadline"
[ "$ELAPSED" -lt 30 ] || fail "the push past the device deadline took $ELAPSED s"
assert_contains "$(cat "$T/FP-drip")" " ftd-02 " "the device is in FAILED_PUSH"
ctl ftd-02 hostile off >/dev/null
ok "a device that prints the end marker and then drips a byte every 2 s: FAILED within the step's timeout, and within --device-timeout when the step allows more"

# Both devices answer the restart with terminal control sequences (OSC
# window title and clipboard write, CSI, a C1 CSI byte, BEL).
ctl ftd-01 hostile osc >/dev/null
ctl ftd-02 hostile osc >/dev/null
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --force
expect_rc 1 push
assert_contains "$(grep " ftd-01 " <<<"$OUT")" "FAILED: files in place; 'pmtool restartbyid sftunnel' exited 1: pmtool: \\\\x1b\]0;PWNED-TITLE\\\\x07\\\\x1b\]52;c;cHduZWQ=\\\\x1b\\\\\\\\\\\\x1b\[2J\\\\x9b31m\\\\x07 failed" "direct device: every control character escaped"
assert_contains "$(grep " ftd-02 " <<<"$OUT")" "FAILED: files in place; 'pmtool restartbyid sftunnel' exited 1: pmtool: \\\\x9b31m\\\\x07 failed" "ftd device: sequences dropped, the rest escaped"
! LC_ALL=C grep -qP '[\x07\x1b\x9b]' <<<"$OUT" || fail "a control character reached the operator's terminal"
expect_rc 1 push --json
! LC_ALL=C grep -qP '[\x07\x1b\x9b]' <<<"$OUT" || fail "a control character in the JSON output"
assert_contains "$OUT" 'PWNED-TITLE' "the JSON report carries the escaped text"
ctl ftd-01 hostile off >/dev/null
ctl ftd-02 hostile off >/dev/null
expect_rc 0 push
ok "device output with OSC/CSI/C1/BEL sequences: printed escaped (\\xNN), in text and JSON"

# --- item 12: which known_hosts ------------------------------------------------------------
# A user's home with a known_hosts that trusts the devices, as sudo -E passes
# it in HOME: the push must not take it.
mkdir -p "$T/userhome/.ssh"
cp "$KH" "$T/userhome/.ssh/known_hosts"
realhome=$(getent passwd "$(id -u)" | cut -d: -f6)
REAL_KH=${realhome%/}/.ssh/known_hosts
grep -qF "$NET." "$REAL_KH" 2>/dev/null && fail "$REAL_KH already lists this test's devices"
kh0=$(stat -c '%s %Y' "$REAL_KH" 2>/dev/null || echo absent)
expect_rc 1 env HOME="$T/userhome" "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --failed-push "$T/FP-kh"
assert_contains "$OUT" "host keys: $REAL_KH \(the home of $(id -un) \(uid $(id -u)\) in the password database\)" "the real user's file, named"
assert_contains "$OUT" "FAILED: unknown host key SHA256:.*$REAL_KH" "refused against the real user's file"
assert_contains "$OUT" "0 updated, 0 unchanged, 2 failed" "HOME's file not used"
assert_eq "$(stat -c '%s %Y' "$REAL_KH" 2>/dev/null || echo absent)" "$kh0" "the real user's known_hosts untouched"
printf '[client]\nknown_hosts = %s\n' "$KH" > "$T/client.conf"
expect_rc 0 env HOME="$T/userhome" "$SFTCA" --config "$T/client.conf" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --failed-push "$T/FP-kh"
assert_contains "$OUT" "host keys: $KH \(known_hosts in \[client\] of $T/client.conf\)" "the config's file, named"
expect_rc 1 "$SFTCA" --config "$T/client.conf" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --failed-push "$T/FP-kh" --known-hosts "$T/kh-none"
assert_contains "$OUT" "host keys: $T/kh-none \(--known-hosts\)" "--known-hosts first, named"
expect_rc 0 "$SFTCA" --config "$T/client.conf" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --failed-push "$T/FP-kh" --json
assert_eq "$(jq -r .known_hosts <<<"$OUT")" "$KH" "the file in the JSON report"
ok "known_hosts: --known-hosts, else known_hosts = in the client config, else the real user's home from the password database (not \$HOME, as sudo -E leaves it); the file used is printed"
