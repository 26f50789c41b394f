#!/usr/bin/env bash
# Issue 5: push renewed files to 10 simulated FTDs (mixed direct and ftd
# shells, each sshd in its own mount namespace on its own loopback address),
# prove the tunnels with verify --live, then the faults: unreachable, wrong
# password, changed host key, read-only peer directory, connection cut in
# the middle of a transfer. Each leaves the device's files intact and lands
# in FAILED_PUSH; --retry finishes the job. Reruns change nothing; a kept
# key never travels; kill -9 of the client mid-push leaves whole pairs.
. "$(dirname "$0")/lib.sh"
signer_with_ca

# An FMC before renewal: a field-style legacy CA and leaves; the devices get
# those old files.
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 10 --legacy-ca "$T/legacy" >/dev/null
start_fmc_devices "$FMC" 10
PW=$(cat "$D/password")
names=($(tail -n +2 "$CSV" | cut -d, -f1))
dev_uuid() { grep "^$1," "$CSV" | cut -d, -f5; }
remote() { ctl "$1" run cat "/var/sf/peers/$CA_ID/$2"; }
new_key_on() { cmp -s <(remote "$1" sftunnel-key.pem) "$FMC/var/sf/peers/$(dev_uuid "$1")/certs_pushed/sftunnel-key.pem"; }
declare -A restarts0
for n in "${names[@]}"; do
	for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do remote "$n" "$f" > "$T/old-$n-$f"; done
	restarts0[$n]=$(ctl "$n" restarts)
done
push() { "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --known-hosts "$KH" \
	--failed-push "$T/FAILED_PUSH" "$@"; }

# modes DEVICE DIR: "NAME=MODE" of the three files sftca pushes, in DIR on the device.
modes() { ctl "$1" run sh -c "cd '$2' && stat -c '%n=%a' cacert.pem sftunnel-cert.pem sftunnel-key.pem" | paste -sd ' '; }
# attrs DEVICE: "NAME=MODE USER:GROUP" of the three files in the peer directory.
attrs() { ctl "$1" run sh -c "cd /var/sf/peers/$CA_ID && stat -c '%n=%a %U:%G' cacert.pem sftunnel-cert.pem sftunnel-key.pem" | paste -sd ' '; }
# Files as the stand-ins keep them: an FTD's all 0644 root:root (the key
# too, as the field has them), a direct device's key 0600.
ATTRS_FTD="cacert.pem=644 root:root sftunnel-cert.pem=644 root:root sftunnel-key.pem=644 root:root"
ATTRS_DIRECT="cacert.pem=644 root:root sftunnel-cert.pem=644 root:root sftunnel-key.pem=600 root:root"
# tmps DEVICE: sftca's temporary files in the device's peer directory (read
# from the host: the device may be down).
tmps() { ls -A "$D/$1/varsf/peers/$CA_ID" | grep sftca-tmp | paste -sd ' ' || true; }
ftd_names=()
for n in "${names[@]}"; do grep -qx "SHELL_KIND=ftd" "$D/$n/device.env" && ftd_names+=("$n"); done
[ "${#ftd_names[@]}" = 5 ] || fail "expected 5 ftd devices: ${ftd_names[*]}"
# history_clean: the ftd stand-in's root shell keeps bash's history in
# /root/.bash_history, as a real FTD's does (tests/devices). sftca turns it
# off, so none of its commands and no file it sent (the current key
# included) may be there.
history_clean() {
	local n k64 h
	for n in "${ftd_names[@]}"; do
		k64=$(base64 -w 64 "$FMC/var/sf/peers/$(dev_uuid "$n")/certs_pushed/sftunnel-key.pem" | sed -n 2p)
		h=$D/$n/root/.bash_history
		[ ! -e "$h" ] || ! grep -qF -e SFTCA_EOF -e sftca-tmp -e __SFTCA_ -e "$k64" "$h" ||
			fail "$n: sftca's commands or the key in root's .bash_history: $(head -c 300 "$h")"
	done
}

# --- renew and push to all 10 ------------------------------------------------------
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self --force
# Modes on the FMC tree as issue writes them: bundle, CRL and certificates
# 0644 (keys 0600 are checked by the issue tests).
assert_eq "$(stat -c %a "$FMC/etc/sf/ca_root/cacert.pem" "$FMC/etc/sf/ca_root/crl.pem" "$FMC/etc/sf/keys/sftunnel-cert.pem" | paste -sd ' ')" \
	"644 644 644" "FMC tree: modes of bundle, CRL and the FMC's certificate"
for u in $(ls "$FMC/var/sf/peers"); do
	assert_eq "$(stat -c %a "$FMC/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem")" "644" "FMC tree: mode of $u's certificate"
done
# A dry run first: every device logged into, identified and compared, and
# nothing written or restarted anywhere.
expect_rc 0 push --jobs 4 --dry-run
assert_contains "$OUT" "dry run: 10 would be updated, 0 unchanged, 0 failed" "dry run summary"
assert_contains "$OUT" "$(dev_uuid "${names[0]}"): would update cacert.pem sftunnel-cert.pem, would restart sftunnel" \
	"dry run: the files and the restart it would do"
assert_contains "$OUT" "dry run: nothing written to any device, no FAILED_PUSH written, nothing restarted" "said"
for n in "${names[@]}"; do
	for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do
		cmp -s <(remote "$n" "$f") "$T/old-$n-$f" || fail "dry run: $n's $f changed"
	done
	assert_eq "$(ctl "$n" restarts)" "${restarts0[$n]}" "dry run: $n not restarted"
	assert_eq "$(tmps "$n")" "" "dry run: $n has no temporary file"
done
[ ! -e "$T/FAILED_PUSH" ] || fail "dry run wrote FAILED_PUSH"
expect_rc 2 push --dry-run --accept-new-host-keys
assert_contains "$OUT" "--dry-run records no host key" "a dry run records no host key"
ok "push --dry-run: 10 devices identified and compared, what would change said per device; no file, restart, FAILED_PUSH or host key written"

expect_rc 0 push --jobs 4
assert_contains "$OUT" "10 updated, 0 unchanged, 0 failed" "push to 10 devices"
assert_not_contains "$OUT" "sftunnel-key.pem" "keep-key renewal sends no key"
for n in "${names[@]}"; do
	u=$(dev_uuid "$n")
	P=$FMC/var/sf/peers/$u/certs_pushed
	cmp -s <(remote "$n" sftunnel-cert.pem) "$P/sftunnel-cert.pem" || fail "$n has not the new certificate"
	cmp -s <(remote "$n" cacert.pem) "$FMC/etc/sf/ca_root/cacert.pem" || fail "$n has not the new bundle"
	cmp -s <(remote "$n" sftunnel-key.pem) "$T/old-$n-sftunnel-key.pem" || fail "$n key changed"
	for f in cacert.pem sftunnel-cert.pem; do
		cmp -s <(ctl "$n" run sh -c "cat /var/sf/peers/$CA_ID/$f.backup.*") "$T/old-$n-$f" ||
			fail "$n: backup of $f differs from the old file"
	done
	[ -z "$(ctl "$n" run sh -c "ls /var/sf/peers/$CA_ID/ | grep 'sftunnel-key.pem.backup'")" ] ||
		fail "$n: a key backup was made though the key did not change"
	ctl "$n" untouched >/dev/null || fail "$n: unrelated files were touched"
	want=$ATTRS_DIRECT
	grep -qx "SHELL_KIND=ftd" "$D/$n/device.env" && want=$ATTRS_FTD
	assert_eq "$(attrs "$n")" "$want" "$n: modes and owners of bundle, certificate and key as the device had them"
	assert_eq "$(ctl "$n" restarts)" "$((restarts0[$n] + 1))" "$n: one restart by the push"
done
ok "push to 10 devices (5 direct, 5 ftd): new bundle and certificate, key kept (no key sent), backups byte for byte, unrelated files untouched, one restart each; modes 0644 bundle/certificate/CRL, 0600 key on the FMC tree; on the devices modes and owners as they had them (ftd: all 0644 root:root)"

expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --live --devices "$CSV"
assert_contains "$OUT" "live: 10 devices, 10 OK, 0 FAILED" "verify --live"
ok "verify --live: a TLS 1.2 handshake with every device's sftunnel, its certificate chains to the bundle and names its UUID"

expect_rc 0 push
assert_contains "$OUT" "0 updated, 10 unchanged, 0 failed" "rerun"
for n in "${names[@]}"; do assert_eq "$(ctl "$n" restarts)" "$((restarts0[$n] + 1))" "$n: no restart on a rerun"; done
ok "rerun with nothing changed: no file rewritten, no restart"

# A push that replaced the files but did not restart sftunnel (here the
# restart command fails; a kill -9 at that moment is the same): the rerun
# finds the files identical and restarts anyway, once.
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --force
declare -A restarts1
for n in "${names[@]}"; do restarts1[$n]=$(ctl "$n" restarts); done
expect_rc 1 push --restart-cmd false
assert_contains "$OUT" "0 updated, 0 unchanged, 10 failed" "restart command failing"
assert_contains "$OUT" "files in place; 'false' exited 1" "why"
for n in "${names[@]}"; do assert_eq "$(ctl "$n" restarts)" "${restarts1[$n]}" "$n: restart failed"; done
expect_rc 0 push
assert_contains "$OUT" "0 updated, 10 unchanged, 0 failed" "rerun after the failed restarts"
for n in "${names[@]}"; do assert_eq "$(ctl "$n" restarts)" "$((restarts1[$n] + 1))" "$n: restarted by the rerun"; done
expect_rc 0 push
for n in "${names[@]}"; do assert_eq "$(ctl "$n" restarts)" "$((restarts1[$n] + 1))" "$n: only once"; done
ok "files replaced but sftunnel not restarted: the rerun restarts each device once, though nothing changed"

# --- faults ---------------------------------------------------------------------------
expect_rc 0 as ops-admin ca renew --ca "$CA_ID"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self --force
for n in "${names[@]}"; do
	for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do remote "$n" "$f" > "$T/before-$n-$f"; done
done
ctl ftd-01 stop >/dev/null
cp "$CSV" "$T/good.csv"
sed -i "s/^ftd-02,\([^,]*\),admin,[^,]*,/ftd-02,\1,admin,not-the-password,/" "$CSV"
ctl ftd-03 rekey-host >"$T/newkey-03"
ctl ftd-04 readonly on >/dev/null
ctl ftd-05 cut-transfer --after-bytes 600 >/dev/null
ctl ftd-06 cut-transfer --after-bytes 600 >/dev/null
expect_rc 1 push --jobs 8
line() { grep " $1 " <<<"$OUT"; }
assert_contains "$(line ftd-01)" "FAILED: cannot connect" "unreachable device"
assert_contains "$(line ftd-02)" "FAILED: authentication refused" "wrong password"
assert_contains "$(line ftd-03)" "FAILED: host key CHANGED" "changed host key"
assert_contains "$(line ftd-04)" "FAILED: upload of .*(cannot create|Read-only|failed)" "read-only peer directory"
assert_contains "$(line ftd-05)" "FAILED: upload of" "connection cut mid-transfer (direct)"
assert_contains "$(line ftd-06)" "FAILED: upload of cacert\.pem: the device shell closed$" "connection cut mid-transfer (ftd)"
assert_contains "$OUT" "4 updated, 0 unchanged, 6 failed" "the others were pushed"
assert_not_contains "$OUT" "$PW|not-the-password" "no password in the output"
for n in ftd-02 ftd-03 ftd-04 ftd-05 ftd-06; do
	for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do
		cmp -s <(remote "$n" "$f") "$T/before-$n-$f" || fail "$n: $f changed though the push failed"
	done
done
# Temporary files, on every device: none, except on ftd-05 the one whose
# SFTP upload the cut interrupted (sftp_open had created it; the connection
# was gone before anything could remove it). ftd-06's cut landed inside the
# heredoc, which never ran; ftd-04 refused the create.
for n in ftd-01 ftd-02 ftd-03 ftd-04 ftd-05 ftd-06; do
	want=
	[ "$n" = ftd-05 ] && want=.cacert.pem.sftca-tmp
	assert_eq "$(tmps "$n")" "$want" "$n: temporary files after the failed push"
done
F=$T/FAILED_PUSH
assert_eq "$(stat -c %a "$F")" "600" "FAILED_PUSH mode"
assert_eq "$(wc -l < "$F")" "18" "three lines per failed device"
for n in ftd-01 ftd-02 ftd-03 ftd-04 ftd-05 ftd-06; do
	u=$(dev_uuid "$n")
	# Sources as the FMC names them (the tree here is a copy under $FMC).
	grep -q "^$u $n ${NET//./\\.}\.[0-9]* /etc/sf/ca_root/cacert.pem /var/sf/peers/$CA_ID/cacert.pem$" "$F" ||
		fail "FAILED_PUSH lacks the vendor-format line for $n"
	grep -q "^$u $n [0-9.]* /var/sf/peers/$u/certs_pushed/sftunnel-cert.pem /var/sf/peers/$CA_ID/sftunnel-cert.pem$" "$F" ||
		fail "FAILED_PUSH lacks the certificate line for $n with its path on the FMC"
done
! grep -q "$FMC\|//" "$F" || fail "FAILED_PUSH names this host's copy of the tree or a '//' path: $(grep "$FMC\|//" "$F" | head -1)"
! grep -q "$PW\|not-the-password" "$F" || fail "a password in FAILED_PUSH"
ok "faults (unreachable, wrong password, changed host key, read-only dir, cut transfer x2): previous files intact, 6 devices in FAILED_PUSH in the vendor's format, no password anywhere"

# --- remove the faults and retry ------------------------------------------------------
ctl ftd-01 start >/dev/null
cp "$T/good.csv" "$CSV"
grep -v "^\[$NET.12\]:$SSH_PORT \|^$NET.12 " "$KH" > "$KH.new"
cat "$T/newkey-03" >> "$KH.new"
mv "$KH.new" "$KH"
ctl ftd-04 readonly off >/dev/null
ctl ftd-05 cut-transfer off >/dev/null
ctl ftd-06 cut-transfer off >/dev/null
expect_rc 0 push --retry "$F"
assert_contains "$OUT" "retrying 6 of 10 devices in devices.csv: those $F lists \(6 entries, 0 without a row\)" "only the failed devices"
assert_contains "$OUT" "6 updated, 0 unchanged, 0 failed" "retry completes"
assert_contains "$OUT" "no device failed: the previous $F was moved aside" "a list that is no longer true is moved aside"
[ ! -e "$F" ] || fail "FAILED_PUSH still there after a retry in which nothing failed"
ls "$F".backup.* >/dev/null 2>&1 || fail "the retried FAILED_PUSH was not kept as a backup"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --live --devices "$CSV"
assert_contains "$OUT" "live: 10 devices, 10 OK" "all tunnels after the retry"
for n in "${names[@]}"; do assert_eq "$(tmps "$n")" "" "$n: temporary files after the retry"; done
ok "--retry FAILED_PUSH after the faults are gone: the 6 devices updated, no temporary file left anywhere, verify --live passes for all 10"

# An upload that fails with the connection up (the key's temporary name is
# taken by a directory): the temporary file already written (the
# certificate's) is removed before the device is given up, on both shells,
# and the device keeps its files.
head -1 "$CSV" > "$T/78.csv" && grep -E "^ftd-0[78]," "$CSV" >> "$T/78.csv" && chmod 600 "$T/78.csv"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$(dev_uuid ftd-07)" --peer "$(dev_uuid ftd-08)" --rekey
for n in ftd-07 ftd-08; do
	P=$FMC/var/sf/peers/$(dev_uuid "$n")/certs_pushed
	assert_eq "$(stat -c %a "$P/sftunnel-cert.pem" "$P/sftunnel-key.pem" | paste -sd ' ')" "644 600" "FMC tree: modes of $n's new certificate and key"
done
for n in ftd-07 ftd-08; do
	ctl "$n" run mkdir "/var/sf/peers/$CA_ID/.sftunnel-key.pem.sftca-tmp"
	for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do remote "$n" "$f" > "$T/blk-$n-$f"; done
done
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/78.csv" --known-hosts "$KH" --failed-push "$T/FP7"
assert_contains "$(line ftd-07)" "FAILED: upload of sftunnel-key\.pem: cannot create .*/\.sftunnel-key\.pem\.sftca-tmp \(SFTP error" "direct: the key's upload refused"
assert_contains "$(line ftd-08)" "FAILED: upload of sftunnel-key\.pem: writing .*/\.sftunnel-key\.pem\.sftca-tmp failed \(status 1\)" "ftd: the key's upload refused"
for n in ftd-07 ftd-08; do
	assert_eq "$(tmps "$n")" ".sftunnel-key.pem.sftca-tmp" "$n: the certificate's temporary file removed (the directory in the way is not sftca's)"
	for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do
		cmp -s <(remote "$n" "$f") "$T/blk-$n-$f" || fail "$n: $f changed though the push failed"
	done
	ctl "$n" run rmdir "/var/sf/peers/$CA_ID/.sftunnel-key.pem.sftca-tmp"
done
ok "an upload refused with the connection up (direct and ftd): the temporary files already written are removed, the device keeps its files"

# Files stay as the device had them (issue 12). ftd-07 (direct): a
# certificate 0640 daemon's, a key 0640 bin's, no bundle (the new one
# follows the certificate). ftd-08 (ftd): the key 0644 root:root, as an
# FTD has it, replaced by the new key (--rekey above).
P7=/var/sf/peers/$CA_ID
ctl ftd-07 run sh -c "cd $P7 && chown daemon:daemon sftunnel-cert.pem && chmod 0640 sftunnel-cert.pem && chown bin:bin sftunnel-key.pem && chmod 0640 sftunnel-key.pem && rm cacert.pem"
assert_eq "$(attrs ftd-08)" "$ATTRS_FTD" "ftd-08: files as an FTD has them before the push"
# A device on which the owner cannot be given (a chown that is refused, as
# for a login that is not root): nothing replaced, no temporary file left.
printf '#!/bin/sh\necho "chown: changing ownership of $2: Operation not permitted" >&2\nexit 1\n' >"$D/ftd-07/bin/chown"
chmod 0755 "$D/ftd-07/bin/chown"
head -1 "$CSV" > "$T/7.csv" && grep -E "^ftd-07," "$CSV" >> "$T/7.csv" && chmod 600 "$T/7.csv"
snap7=$(ctl ftd-07 run sh -c "cd $P7 && ls -lA --time-style=+%s . && sha256sum sftunnel-cert.pem sftunnel-key.pem")
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/7.csv" --known-hosts "$KH" --failed-push "$T/FP7"
assert_contains "$(line ftd-07)" "FAILED: nothing replaced: the mode and owner the device has for the files cannot be given to the new ones: chown: changing ownership of \.cacert\.pem\.sftca-tmp: Operation not permitted" "a refused chown"
assert_eq "$(ctl ftd-07 run sh -c "cd $P7 && ls -lA --time-style=+%s . && sha256sum sftunnel-cert.pem sftunnel-key.pem")" "$snap7" "ftd-07: nothing replaced, no temporary file"
rm "$D/ftd-07/bin/chown"
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/78.csv" --known-hosts "$KH" --failed-push "$T/FP7"
assert_contains "$OUT" "2 updated, 0 unchanged, 0 failed" "the push after the way is clear"
for n in ftd-07 ftd-08; do
	new_key_on "$n" || fail "$n: the new key was not sent"
done
assert_eq "$(attrs ftd-07)" "cacert.pem=640 daemon:daemon sftunnel-cert.pem=640 daemon:daemon sftunnel-key.pem=640 bin:bin" "ftd-07 (direct): modes and owners kept, the new bundle as the certificate"
assert_eq "$(attrs ftd-08)" "$ATTRS_FTD" "ftd-08 (ftd): the new key 0644 root:root as the old one"
ok "modes and owners on the devices: a replaced key keeps 0644 root:root (ftd), a certificate 0640 daemon's and a key 0640 bin's keep theirs (direct), a new bundle takes the certificate's; a refused chown replaces nothing"
ctl ftd-07 run sh -c "cd $P7 && chown root:root cacert.pem sftunnel-cert.pem sftunnel-key.pem && chmod 0644 cacert.pem sftunnel-cert.pem && chmod 0600 sftunnel-key.pem"

# --device-dir, --no-restart, --json: a second peer directory on ftd-09
# (direct) and ftd-10 (ftd), pushed without a restart, reported as JSON.
head -1 "$CSV" > "$T/910.csv" && grep -E "^ftd-(09|10)," "$CSV" >> "$T/910.csv" && chmod 600 "$T/910.csv"
declare -A restarts2
for n in ftd-09 ftd-10; do
	ctl "$n" run mkdir -p "/var/sf/alt/$CA_ID"
	ctl "$n" run sh -c "cd /var/sf/peers/$CA_ID && sha256sum cacert.pem sftunnel-cert.pem sftunnel-key.pem" > "$T/peers-$n"
	restarts2[$n]=$(ctl "$n" restarts)
done
# ftd-09 (direct) holds no certificate in /var/sf/alt: its identity cannot
# be read, so it gets nothing, not even a temporary file...
grep -E "^ftd-09," "$CSV" | { head -1 "$CSV"; cat; } > "$T/09.csv" && chmod 600 "$T/09.csv"
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/09.csv" --known-hosts "$KH" \
	--failed-push "$T/FP8a" --device-dir /var/sf/alt --no-restart
assert_contains "$OUT" "ftd-09 .*FAILED: identity not established .it holds no '/var/sf/alt/$CA_ID'/sftunnel-cert.pem.: nothing written" "ftd-09: no current certificate, refused"
assert_eq "$(ctl ftd-09 run ls -A "/var/sf/alt/$CA_ID")" "" "ftd-09: nothing written to a device not identified"
# --trust-csv-identity does not make it a device a key may go to: it has
# none, so the key would travel, and a private key goes only to a device
# whose identity was proven.
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/09.csv" --known-hosts "$KH" \
	--failed-push "$T/FP8a" --device-dir /var/sf/alt --no-restart --trust-csv-identity
assert_contains "$OUT" "ftd-09 .*FAILED: the key must be sent .the device has none., but a private key goes only to a device whose identity was proven .not on --trust-csv-identity.: nothing written" "ftd-09: no key on devices.csv's word"
assert_eq "$(ctl ftd-09 run ls -A "/var/sf/alt/$CA_ID")" "" "ftd-09: nothing written on devices.csv's word when the key would travel"
# With the key it already has (no certificate, so still unidentified) the
# operator may vouch for devices.csv: the bundle and certificate go, said
# per device.
ctl ftd-09 run cp -p "/var/sf/peers/$CA_ID/sftunnel-key.pem" "/var/sf/alt/$CA_ID/"
set +e
"$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/910.csv" --known-hosts "$KH" --failed-push "$T/FP8" \
	--device-dir /var/sf/alt --no-restart --json --trust-csv-identity >"$T/push.json" 2>"$T/push.err"
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "push --json exit $rc: $(cat "$T/push.json" "$T/push.err")"
assert_contains "$(cat "$T/push.err")" "ftd-09 [0-9.]+: identity not established; trusting devices.csv's $(dev_uuid ftd-09) .--trust-csv-identity." "--trust-csv-identity logged per device"
[ "$(grep -c "identity not established" "$T/push.err")" -eq 1 ] || fail "ftd-10 (show version) was identified: $(cat "$T/push.err")"
python3 - "$T/push.json" "$KH" "$(dev_uuid ftd-09)" "$(dev_uuid ftd-10)" <<'PY' || fail "push --json: $(cat "$T/push.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["summary"] == {"updated": 2, "unchanged": 0, "failed": 0, "unresolved": 0, "retry_without_row": 0}, doc["summary"]
assert doc["known_hosts"] == sys.argv[2], doc["known_hosts"]
assert doc.get("failed_push") is None, doc["failed_push"]
devs = sorted(doc["devices"], key=lambda d: d["device"])
assert [d["device"] for d in devs] == ["ftd-09", "ftd-10"], devs
for d, uuid in zip(devs, sys.argv[3:]):
    assert d["uuid"] == uuid and d["result"] == "updated" and d["restarted"] is False, d
    assert d["message"] == "", d
# ftd-09 had the key: it did not travel; ftd-10 (identified) had none.
assert devs[0]["files"] == "cacert.pem sftunnel-cert.pem", devs[0]
assert devs[1]["files"] == "cacert.pem sftunnel-cert.pem sftunnel-key.pem", devs[1]
PY
for n in ftd-09 ftd-10; do
	P=$FMC/var/sf/peers/$(dev_uuid "$n")/certs_pushed
	for f in sftunnel-cert.pem sftunnel-key.pem; do
		cmp -s <(ctl "$n" run cat "/var/sf/alt/$CA_ID/$f") "$P/$f" || fail "$n: /var/sf/alt/$CA_ID/$f is not the FMC's"
	done
	cmp -s <(ctl "$n" run cat "/var/sf/alt/$CA_ID/cacert.pem") "$FMC/etc/sf/ca_root/cacert.pem" || fail "$n: no bundle in /var/sf/alt"
	# ftd-10: new files with nothing to follow in an empty directory;
	# ftd-09: the bundle and certificate follow the key it had (cp -p, 0600).
	want="cacert.pem=644 sftunnel-cert.pem=644 sftunnel-key.pem=600"
	[ "$n" = ftd-09 ] && want="cacert.pem=600 sftunnel-cert.pem=600 sftunnel-key.pem=600"
	assert_eq "$(modes "$n" "/var/sf/alt/$CA_ID")" "$want" "$n: modes in --device-dir"
	assert_eq "$(ctl "$n" run sh -c "cd /var/sf/peers/$CA_ID && sha256sum cacert.pem sftunnel-cert.pem sftunnel-key.pem")" "$(cat "$T/peers-$n")" "$n: /var/sf/peers untouched by --device-dir"
	assert_eq "$(ctl "$n" restarts)" "${restarts2[$n]}" "$n: no restart with --no-restart"
	assert_eq "$(ctl "$n" run ls -A "/var/sf/alt/$CA_ID" | grep -c restart-pending || true)" "0" "$n: --no-restart leaves no restart-pending mark"
done
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/910.csv" --known-hosts "$KH" --failed-push "$T/FP8" --device-dir /var/sf/alt
assert_contains "$OUT" "0 updated, 2 unchanged, 0 failed" "rerun into --device-dir"
for n in ftd-09 ftd-10; do assert_eq "$(ctl "$n" restarts)" "${restarts2[$n]}" "$n: nothing changed, nothing pending: no restart"; done
ok "--device-dir: a direct device with no current certificate gets nothing (no temporary file either); --trust-csv-identity pushes to it and says so, but never a key"
ok "--device-dir /var/sf/alt (the default directory untouched, modes 0644/0644/0600), --no-restart (no restart, no pending mark), --json (parsed: summary, devices, files, restarted, known_hosts)"

# ftd-08 and ftd-10 have just been sent a new key through the ftd shell.
history_clean
ok "shell history off on the ftd devices: nothing of sftca's (commands, heredocs, the keys just sent) in root's .bash_history"

# A devices.csv without a uuid column takes the UUIDs from a FAILED_PUSH
# file (here a vendor-style one), matched by device name; rows it does not
# list are not pushed, and a row that cannot be resolved is reported.
python3 - "$CSV" "$T/nouuid.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["device_name", "ip", "admin_username", "admin_password", "port", "shell"])
    for r in rows:
        w.writerow([r["device_name"], r["ip"], r["admin_username"], r["admin_password"], r["port"], r["shell"]])
PY
chmod 600 "$T/nouuid.csv"
{
	for n in ftd-07 ftd-08; do
		u=$(dev_uuid "$n") ip=$(grep "^$n," "$CSV" | cut -d, -f2)
		echo "$u $n $ip /etc/sf/ca_root/cacert.pem /var/sf/peers/$CA_ID/cacert.pem"
		echo "$u $n $ip /var/sf/peers/$u/certs_pushed//sftunnel-key.pem /var/sf/peers/$CA_ID/sftunnel-key.pem"
	done
} > "$T/VENDOR_FAILED_PUSH"
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/nouuid.csv" --known-hosts "$KH" \
	--retry "$T/VENDOR_FAILED_PUSH" --failed-push "$T/FP2"
assert_contains "$OUT" "retrying 2 of 10 devices in devices.csv: those .* lists \(2 entries, 0 without a row\)" "rows matched by name"
assert_contains "$OUT" "ftd-07 $NET.16 $(dev_uuid ftd-07): unchanged, sftunnel restarted" "UUID taken from the vendor file; a retry restarts"
# Without --retry each device says who it is (issue 12: resolved on the fly).
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/nouuid.csv" --known-hosts "$KH" --failed-push "$T/FP3"
for n in "${names[@]}"; do
	assert_contains "$OUT" "$n [0-9.]+ $(dev_uuid "$n"): (unchanged|updated).* \(UUID read from the device\)" "$n: its UUID read from the device"
done
assert_contains "$OUT" "0 failed, 0 without a UUID" "every row resolved"
ok "devices.csv without UUIDs: --retry with the vendor's FAILED_PUSH supplies them by name; without it each device's own UUID is read and used"

# A FAILED_PUSH entry no devices.csv row answers (renamed, re-addressed)
# cannot be pushed: it is reported and stays listed, never dropped.
GHOST=0badc0de-1111-4222-8333-444455556666
{
	grep " ftd-07 " "$T/VENDOR_FAILED_PUSH"
	echo "$GHOST ghost-ftd 127.0.9.77 /etc/sf/ca_root/cacert.pem /var/sf/peers/$CA_ID/cacert.pem"
} > "$T/VENDOR_FP_GHOST"
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/nouuid.csv" --known-hosts "$KH" \
	--retry "$T/VENDOR_FP_GHOST" --failed-push "$T/FP4"
assert_contains "$OUT" "\(2 entries, 1 without a row\)" "the unmatched entry counted"
assert_contains "$OUT" "ghost-ftd 127.0.9.77 $GHOST: listed in .*, but no devices.csv row matches it" "the unmatched entry named"
assert_contains "$OUT" "ftd-07 $NET.16 $(dev_uuid ftd-07): unchanged, sftunnel restarted" "the matched entry pushed"
assert_contains "$OUT" "0 failed, 0 without a UUID, 1 listed in .* without a devices.csv row" "summary"
assert_eq "$(grep -c "^$GHOST ghost-ftd 127.0.9.77 " "$T/FP4")" "3" "the unmatched device stays in FAILED_PUSH"
assert_eq "$(grep -c " ftd-07 " "$T/FP4" || true)" "0" "the pushed device leaves it"
ok "--retry: a FAILED_PUSH entry without a devices.csv row is reported and kept in the new FAILED_PUSH, not dropped"

# A FAILED_PUSH entry that gives a row without a uuid the wrong one: the
# device refuses it, and the message blames the file the UUID came from.
u8=$(dev_uuid ftd-08)
grep " ftd-07 " "$T/VENDOR_FAILED_PUSH" | sed "s/^[^ ]* /$u8 /" > "$T/VENDOR_FP_SWAP"
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/nouuid.csv" --known-hosts "$KH" \
	--retry "$T/VENDOR_FP_SWAP" --failed-push "$T/FP5"
assert_contains "$OUT" "ftd-07 $NET.16 $u8: FAILED.*identity mismatch: the device says $(dev_uuid ftd-07), FAILED_PUSH says $u8" \
	"the mismatch names FAILED_PUSH as the UUID's source"
ok "--retry: a FAILED_PUSH entry giving a row another device's UUID is refused, naming FAILED_PUSH as the source"

# A device that stops answering in the middle of an SFTP upload (the
# connection stays up): the push gives up after --ssh-timeout instead of
# hanging, the device keeps its files, and the next push completes.
u5=$(dev_uuid ftd-05)
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$u5" --force
head -1 "$CSV" > "$T/one.csv" && grep "^ftd-05," "$CSV" >> "$T/one.csv" && chmod 600 "$T/one.csv"
for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do remote ftd-05 "$f" > "$T/stall-$f"; done
ctl ftd-05 cut-transfer --at-write 1 --stall --once >/dev/null
t0=$(date +%s)
expect_rc 1 timeout 90 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/one.csv" --known-hosts "$KH" \
	--failed-push "$T/FP5" --ssh-timeout 3
elapsed=$(($(date +%s) - t0))
assert_contains "$OUT" "ftd-05 .*FAILED: upload of .*: no answer from the SFTP server within 3 s" "a stalled upload times out"
[ "$elapsed" -lt 60 ] || fail "the stalled push took ${elapsed} s"
for f in cacert.pem sftunnel-cert.pem sftunnel-key.pem; do
	cmp -s <(remote ftd-05 "$f") "$T/stall-$f" || fail "ftd-05: $f changed though the upload stalled"
done
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/one.csv" --known-hosts "$KH" --failed-push "$T/FP5"
assert_contains "$OUT" "1 updated, 0 unchanged, 0 failed" "the push after the stall"
cmp -s <(remote ftd-05 sftunnel-cert.pem) "$FMC/var/sf/peers/$u5/certs_pushed/sftunnel-cert.pem" || fail "ftd-05 lacks the new certificate"
ok "a device that stops answering mid-upload: the push gives up after --ssh-timeout (${elapsed} s), files intact, the next push completes"

# Host keys: an empty known_hosts refuses, --accept-new-host-keys records them.
: > "$T/kh-empty"
expect_rc 1 push --known-hosts "$T/kh-empty" --jobs 10
assert_contains "$OUT" "unknown host key SHA256:" "unknown host key refused"
assert_contains "$OUT" "0 updated, 0 unchanged, 10 failed" "nothing pushed to unknown hosts"
expect_rc 0 push --known-hosts "$T/kh-empty" --accept-new-host-keys --jobs 10
assert_eq "$(grep -c . "$T/kh-empty")" "10" "ten host keys recorded"
expect_rc 0 push --known-hosts "$T/kh-empty" --jobs 10
ok "unknown host keys: refused unless --accept-new-host-keys, which records them"

# Public-key login (the devices accept $D/id_ed25519).
expect_rc 0 push --identity "$D/id_ed25519" --jobs 10
assert_contains "$OUT" "0 updated, 10 unchanged, 0 failed" "key authentication"
ok "--identity: public-key login"

# kill -9 of the client in the middle of a push with new keys: every device
# keeps a key and certificate of the same age; the rerun finishes.
# Identity before any write (issue 12): the device must be the row's UUID.
# snap DEVICE: every file of its peer directory, with mtime and hash.
snap() { ctl "$1" run sh -c "cd /var/sf/peers/$CA_ID && ls -lA --time-style=+%s . && find . -type f -exec sha256sum {} + | sort"; }
A=${ftd_names[0]} B=${ftd_names[1]}
for n in "${names[@]}"; do grep -qx "SHELL_KIND=direct" "$D/$n/device.env" && { W=$n; break; }; done
rowA=$(grep "^$A," "$CSV") rowB=$(grep "^$B," "$CSV") rowW=$(grep "^$W," "$CSV")
IFS=, read -r _ ipA _ _ _ portA _ <<<"$rowA"
IFS=, read -r _ ipB _ _ _ portB _ <<<"$rowB"
fmc_uuid=0a0b0c0d-0000-4000-8000-00000000f3c0
wrong=$(dev_uuid ftd-10)
{
	head -1 "$CSV"
	echo "FMCpri,127.0.0.1,admin,x,$CA_ID,22,ftd,8305"
	awk -F, -v OFS=, -v ip="$ipB" -v port="$portB" '{ $2 = ip; $6 = port; print }' <<<"$rowA"
	awk -F, -v OFS=, -v ip="$ipA" -v port="$portA" '{ $2 = ip; $6 = port; print }' <<<"$rowB"
	awk -F, -v OFS=, -v u="$wrong" '{ $5 = u; print }' <<<"$rowW"
} > "$T/swapped.csv"
chmod 600 "$T/swapped.csv"
for n in "$A" "$B" "$W"; do snap "$n" > "$T/snap-$n"; done
# The rows' peers get new files first, so that a push would change them.
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$(dev_uuid "$A")" --peer "$(dev_uuid "$B")" --peer "$wrong" --rekey
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/swapped.csv" --known-hosts "$KH" --failed-push "$T/FP-id"
assert_contains "$OUT" "$A $ipB $(dev_uuid "$A"): FAILED: identity mismatch: the device says $(dev_uuid "$B"), devices.csv says $(dev_uuid "$A")" "swapped row $A"
assert_contains "$OUT" "$B $ipA $(dev_uuid "$B"): FAILED: identity mismatch: the device says $(dev_uuid "$A"), devices.csv says $(dev_uuid "$B")" "swapped row $B"
assert_contains "$OUT" "$W [0-9.]+ $wrong: FAILED: identity mismatch: the device says $(dev_uuid "$W"), devices.csv says $wrong" "wrong uuid on $W (direct: its certificate's CN)"
assert_contains "$OUT" "FMCpri 127.0.0.1: skipped, this is the FMC" "the FMC's own row"
assert_contains "$OUT" "identity mismatch: fix the ip or uuid of these devices.csv rows: " "summary names the rows"
assert_contains "$OUT" "0 updated, 0 unchanged, 3 failed" "summary counts"
for n in "$A" "$B" "$W"; do
	assert_contains "$OUT" "rows: .*$n " "summary names $n"
	cmp -s <(snap "$n") "$T/snap-$n" || fail "$n: written to though not identified: $(diff <(snap "$n") "$T/snap-$n")"
	[ -z "$(tmps "$n")" ] || fail "$n: temporary files left: $(tmps "$n")"
done
grep -q "FMCpri" "$T/FP-id" && fail "the FMC's row in FAILED_PUSH: $(cat "$T/FP-id")"
ok "identity before any write: two rows' addresses swapped and a wrong uuid (direct) are FAILED with the mismatch and nothing written (files, mtimes, no temporary file); the FMC's own row skipped; the summary names the rows"
# Put the devices back in step with the tree for what follows.
expect_rc 0 push

# A key travels only when sftca issue made it (issue 12): a device whose
# key differs on its own (its own pair, a restore, a wrong row) is
# reported and left alone, whatever else changed; after issue --rekey the
# new key goes, once.
KA=${ftd_names[2]}
KD=$W
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$(dev_uuid "$KA")" --peer "$(dev_uuid "$KD")" --force
for n in "$KA" "$KD"; do
	ctl "$n" run sh -c "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /var/sf/peers/$CA_ID/sftunnel-key.pem 2>/dev/null"
	snap "$n" > "$T/ksnap-$n"
done
head -1 "$CSV" > "$T/k.csv" && grep -E "^($KA|$KD)," "$CSV" >> "$T/k.csv" && chmod 600 "$T/k.csv"
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/k.csv" --known-hosts "$KH" --failed-push "$T/FP-k"
for n in "$KA" "$KD"; do
	u=$(dev_uuid "$n")
	assert_contains "$OUT" "$n [0-9.]+ $u: FAILED: key mismatch: the device's sftunnel-key.pem is not the key the FMC holds for $u, and sftca issue did not make that one .--rekey.: no key sent, nothing written" "$n: a key differing on the device alone"
	cmp -s <(snap "$n") "$T/ksnap-$n" || fail "$n: written to on a key mismatch: $(diff <(snap "$n") "$T/ksnap-$n")"
	[ -z "$(tmps "$n")" ] || fail "$n: temporary files left: $(tmps "$n")"
done
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$(dev_uuid "$KA")" --peer "$(dev_uuid "$KD")" --rekey
for n in "$KA" "$KD"; do
	P=$FMC/var/sf/peers/$(dev_uuid "$n")/certs_pushed
	assert_eq "$(cd "$P" && sha256sum -c .sftca-key-made.sha256)" "sftunnel-key.pem: OK" "$n: issue --rekey records the key it made"
done
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$T/k.csv" --known-hosts "$KH" --failed-push "$T/FP-k"
for n in "$KA" "$KD"; do
	assert_contains "$OUT" "$n [0-9.]+ $(dev_uuid "$n"): updated sftunnel-cert.pem sftunnel-key.pem, sftunnel restarted" "$n: the key made by --rekey sent"
	cmp -s <(remote "$n" sftunnel-key.pem) "$FMC/var/sf/peers/$(dev_uuid "$n")/certs_pushed/sftunnel-key.pem" || fail "$n: not the FMC's new key"
done
ok "a key differing on the device alone (ftd and direct): FAILED 'key mismatch', nothing written; after issue --rekey (recorded beside the pair) the new key is sent"

expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --rekey
# The real process in the background ($! of a shell function would be a
# subshell, and killing it would leave sftca running to the end). Two jobs:
# slow enough that the kill lands with devices still to do.
"$SFTCA" push --ca "$CA_ID" --root "$FMC" --devices "$CSV" --known-hosts "$KH" \
	--failed-push "$T/FAILED_PUSH" --jobs 2 >"$T/killed.out" 2>&1 &
pid=$!
any_new_key() { for n in "${names[@]}"; do new_key_on "$n" && return 0; done; return 1; }
wait_until 120 "a first device with its new key" any_new_key
kill -9 "$pid"
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "sftca push was not killed mid-run (exit $rc): $(cat "$T/killed.out")"
assert_not_contains "$(cat "$T/killed.out")" "updated, [0-9]+ unchanged" "the killed run printed no summary"
# The device's shell finishes the renames it started after the client is
# gone (it ignores the hangup), so a pair may be mid-swap for a moment; a
# pair still mixed after 20 s is one the kill broke for good.
whole_pair() {
	local k c
	k=$(ctl "$1" run openssl pkey -in "/var/sf/peers/$CA_ID/sftunnel-key.pem" -pubout 2>/dev/null)
	c=$(ctl "$1" run openssl x509 -in "/var/sf/peers/$CA_ID/sftunnel-cert.pem" -noout -pubkey 2>/dev/null)
	[ -n "$k" ] && [ "$k" = "$c" ]
}
mixed=0
for n in "${names[@]}"; do
	for i in $(seq 40); do
		whole_pair "$n" && { [ "$i" = 1 ] || echo "pair on $n whole after $i checks" >&2; continue 2; }
		sleep 0.5
	done
	mixed=1
	echo "mixed pair on $n" >&2
done
[ "$mixed" = 0 ] || fail "kill -9 mid-push left a key and certificate of different ages"
updated=0
for n in "${names[@]}"; do new_key_on "$n" && updated=$((updated + 1)); done
[ "$updated" -ge 1 ] && [ "$updated" -lt 10 ] ||
	fail "the kill did not land mid-run: $updated of 10 devices have the new key"
expect_rc 0 push --jobs 10
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --live --devices "$CSV"
assert_contains "$OUT" "live: 10 devices, 10 OK" "tunnels after the rerun"
ok "kill -9 of the real sftca push mid-run ($updated of 10 devices had the new pair): every device pair whole, rerun finished, all tunnels up"

history_clean
ok "shell history off on the ftd devices after the rekeyed pushes: nothing of sftca's (commands, new keys) in root's .bash_history"

stop_devices
for n in "${names[@]}"; do ctl "$n" status 2>/dev/null | grep -q "running" && fail "$n still running"; done
[ -z "$(pgrep -f "sshd.*$D" || true)" ] || fail "device sshd left running"
ok "every simulated device stopped"
