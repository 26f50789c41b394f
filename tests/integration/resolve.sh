#!/usr/bin/env bash
# Issue 12 items 2 and 3: UUIDs discovered, not typed. `sftca devices
# resolve` logs into every device of a vendor devices.csv (four columns, no
# UUID), reads who it is and writes the list again with the uuid column
# (0600, atomic, the previous file kept, passwords byte for byte); `sftca
# push` resolves rows without a UUID on the fly and pushes only to devices
# the FMC tree knows; the FMC's own row and an FMC HA peer are skipped, not
# failed. --identity-file on a direct device.
#
# The vendor's file has no port column, so the devices answer on port 22:
# the test runs in a network namespace of its own, where 22 is free.
if [ "${SFTCA_RESOLVE_NETNS:-}" != 1 ]; then
	# root's PATH may lack /usr/sbin
	IP=$(command -v ip || echo /usr/sbin/ip)
	command -v unshare >/dev/null && [ -x "$IP" ] ||
		{ echo "FAIL: unshare (util-linux) and ip (iproute2) are required" >&2; exit 1; }
	exec unshare -n env SFTCA_RESOLVE_NETNS=1 bash -c '"$1" link set lo up && exec bash "$0"' "$0" "$IP"
fi
. "$(dirname "$0")/lib.sh"
need python3
signer_with_ca

FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 10 --legacy-ca "$T/legacy" >/dev/null
DEVICES_SSH_PORT=22 start_fmc_devices "$FMC" 10
PW=$(cat "$D/password")
# field NAME COLUMN: a column of the device's row in the stand-ins' devices.csv.
field() { python3 -c 'import csv,sys
for r in csv.DictReader(open(sys.argv[1])):
    if r["device_name"] == sys.argv[2]: print(r[sys.argv[3]])' "$CSV" "$1" "$2"; }
for i in 01 02 03 04 05 06 07 08 09 10; do
	declare "u$i=$(field "ftd-$i" uuid)" "ip$i=$(field "ftd-$i" ip)"
done
remote() { ctl "$1" run cat "/var/sf/peers/$CA_ID/$2"; }
snap() { ctl "$1" run sh -c "cd /var/sf/peers/$CA_ID && ls -lA --time-style=+%s . && find . -type f -exec sha256sum {} + | sort"; }
resolve() { "$SFTCA" devices resolve --known-hosts "$KH" --ca "$CA_ID" "$@"; }
push() { "$SFTCA" push --ca "$CA_ID" --root "$FMC" --known-hosts "$KH" "$@"; }

# Passwords that need quoting: a comma, quotes, blanks at the ends.
printf '%s\n' "p,a\"s s'w0rd" > "$T/pw2"
printf '%s\n' "\"lead,ing quote\" " > "$T/pw4"
ctl ftd-02 password "$T/pw2" >/dev/null
ctl ftd-04 password "$T/pw4" >/dev/null
# ftd-06 plays the FMC itself (its UUID is the CA id), ftd-08 the FMC's HA
# peer: both FMC CLIs, whose show version names a Management Center.
ctl ftd-06 fmc "$CA_ID" >/dev/null
ctl ftd-08 fmc >/dev/null
ctl ftd-10 stop >/dev/null

# --- resolve a vendor devices.csv ------------------------------------------------
# Four columns, no header, the FMC first (as copy_sftunnel_certs.py expects).
mkdir -m 700 "$T/vendor"
V=$T/vendor/devices.csv
python3 - "$V" "$PW" "$(cat "$T/pw2")" "$(cat "$T/pw4")" "$ip06" "$ip02" "$ip04" "$ip08" "$ip10" <<'PY'
import csv, sys
out, pw, pw2, pw4, ip06, ip02, ip04, ip08, ip10 = sys.argv[1:]
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["FMCpri", ip06, "admin", pw])
    w.writerow(["ftd-02", ip02, "admin", pw2])
    w.writerow(["ftd-04", ip04, "admin", pw4])
    w.writerow(["ftd-08", ip08, "admin", pw])
    w.writerow(["ftd-10", ip10, "admin", pw])
PY
grep -qF '"p,a""s s'"'"'w0rd"' "$V" || fail "the vendor file does not quote ftd-02's password: $(cat "$V")"
chmod 644 "$V"
cp -p "$V" "$T/vendor.orig"
ino0=$(stat -c %i "$V")
expect_rc 1 resolve --devices "$V" --shell ftd --jobs 5
assert_contains "$OUT" "FMCpri $ip06: resolved $CA_ID \(this is the FMC \(its UUID is the CA id\)" "the FMC's row"
assert_contains "$OUT" "ftd-02 $ip02: resolved $u02$" "ftd-02 (password with a comma and quotes)"
assert_contains "$OUT" "ftd-04 $ip04: resolved $u04$" "ftd-04 (password with quotes and a trailing blank)"
assert_contains "$OUT" "ftd-08 $ip08: resolved $u08 \(an FMC \(HA peer; its model is \"Secure Firewall Management Center for VMware" "the HA peer"
assert_contains "$OUT" "ftd-10 $ip10: FAILED: cannot connect" "a stopped device"
assert_contains "$OUT" "4 resolved, 0 confirmed, 0 identity mismatch, 1 not resolved" "summary"
assert_contains "$OUT" "not resolved \(left as they were\):
  ftd-10 $ip10: cannot connect" "the unresolved rows listed with why"
assert_contains "$OUT" "written to $V \(mode 0600; the previous file kept as $V.backup.[0-9TZ]+\)" "where it went"
assert_not_contains "$OUT" "$PW|w0rd|lead,ing" "no password in the output"
assert_eq "$(stat -c %a "$V")" "600" "mode of the list written"
bk=$(ls "$T/vendor" | grep '^devices.csv.backup.')
assert_eq "$(ls -A "$T/vendor" | paste -sd ' ')" "devices.csv $bk" "the list and one backup, no temporary file"
cmp -s "$T/vendor/$bk" "$T/vendor.orig" || fail "the backup is not the previous file"
assert_eq "$(stat -c %i "$T/vendor/$bk")" "$ino0" "the backup is the previous file itself (a hard link)"
[ "$(stat -c %i "$V")" != "$ino0" ] || fail "the list was rewritten in place, not renamed into place"
python3 - "$T/vendor.orig" "$V" "$CA_ID" "$u02" "$u04" "$u08" <<'PY' || fail "the list written"
import csv, sys
orig = list(csv.reader(open(sys.argv[1], newline="")))
new = list(csv.reader(open(sys.argv[2], newline="")))
want = [sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], ""]
assert new[0] == ["device_name", "ip", "admin_username", "admin_password", "uuid"], new[0]
assert len(new) == len(orig) + 1, (len(new), len(orig))
for o, n, u in zip(orig, new[1:], want):
    assert n[:4] == o, (n[:4], "differs from", o)   # passwords byte for byte
    assert n[4] == u, (o[0], n[4], u)
PY
ok "devices resolve on a vendor four-column file: uuids filled (the FMC's row its CA id, the HA peer named), a header naming the columns, passwords with commas, quotes and blanks byte for byte, mode 0600, the previous file kept as a hard-linked backup and the new one renamed into place; the stopped device listed with why and left without a uuid, exit 1"

# The list it wrote is one sftca reads: a second run confirms and writes nothing.
expect_rc 1 resolve --devices "$V" --shell ftd --jobs 5
assert_contains "$OUT" "ftd-02 $ip02: confirmed $u02$" "confirmed"
assert_contains "$OUT" "0 resolved, 4 confirmed, 0 identity mismatch, 1 not resolved" "summary of the rerun"
assert_contains "$OUT" "$V unchanged: no row gained a uuid" "nothing written"
assert_eq "$(ls -A "$T/vendor" | wc -l)" "2" "no second backup"
# A uuid the device contradicts is reported, not overwritten.
{ echo "device_name,ip,admin_username,admin_password,uuid"; grep "^ftd-02," "$V" | sed "s/,$u02\$/,$u04/"; } > "$T/mismatch.csv"
chmod 600 "$T/mismatch.csv"
cp "$T/mismatch.csv" "$T/mismatch.orig"
expect_rc 1 resolve --devices "$T/mismatch.csv" --shell ftd
assert_contains "$OUT" "ftd-02 $ip02: FAILED: identity mismatch: the device says $u02, devices.csv says $u04: left as it is" "mismatch"
cmp -s "$T/mismatch.csv" "$T/mismatch.orig" || fail "a contradicted uuid was overwritten"
ok "devices resolve: a resolved list is read back and confirmed (nothing rewritten); a row's uuid the device contradicts is reported (identity mismatch) and left as it is"

# --- push on the fly -----------------------------------------------------------
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --self --force
ctl ftd-10 start >/dev/null
cp "$T/vendor.orig" "$T/vendor2.csv" && chmod 600 "$T/vendor2.csv"
for n in ftd-06 ftd-08; do snap "$n" > "$T/snap-$n"; done
expect_rc 0 push --devices "$T/vendor2.csv" --shell ftd --failed-push "$T/FP1" --jobs 5
assert_contains "$OUT" "FMCpri $ip06: skipped, this is the FMC \(its UUID is the CA id\)" "the FMC's row skipped"
assert_contains "$OUT" "ftd-08 $ip08: skipped, an FMC \(HA peer; its model is .*\), not a managed device: certificates are not copied" "the HA peer skipped"
for i in 02 04 10; do
	u=u$i ip=ip$i
	assert_contains "$OUT" "ftd-$i ${!ip} ${!u}: updated .*\(UUID read from the device\)" "ftd-$i resolved and pushed"
	cmp -s <(remote "ftd-$i" sftunnel-cert.pem) "$FMC/var/sf/peers/${!u}/certs_pushed/sftunnel-cert.pem" ||
		fail "ftd-$i has not the new certificate"
done
assert_contains "$OUT" "3 updated, 0 unchanged, 0 failed, 0 without a UUID" "summary"
for n in ftd-06 ftd-08; do cmp -s <(snap "$n") "$T/snap-$n" || fail "$n (an FMC) was written to"; done
[ ! -e "$T/FP1" ] || fail "FAILED_PUSH written: $(cat "$T/FP1")"
cmp -s "$T/vendor2.csv" "$T/vendor.orig" || fail "push changed devices.csv"
ok "push on a vendor four-column file: each device resolved and pushed in the same login (new certificate on ftd-02/04/10); the FMC's own row and the HA-peer FMC skipped, nothing written to them, no FAILED_PUSH"

# The list resolve wrote: the UUIDs given now (ftd-10's still read on the fly).
# The HA peer's directory holds no pair from this CA (its own CA signs it).
mv "$FMC/var/sf/peers/$u08/certs_pushed" "$T/pair-08"
expect_rc 0 push --devices "$V" --shell ftd --failed-push "$T/FP1" --jobs 5
mv "$T/pair-08" "$FMC/var/sf/peers/$u08/certs_pushed"
assert_contains "$OUT" "FMCpri $ip06: skipped, this is the FMC" "the FMC's row, its uuid given"
assert_contains "$OUT" "ftd-08 $ip08: skipped, an FMC \(HA peer" "the HA peer, its uuid given"
assert_contains "$OUT" "ftd-02 $ip02 $u02: unchanged$" "ftd-02 by the uuid resolve wrote"
assert_contains "$OUT" "0 updated, 3 unchanged, 0 failed, 0 without a UUID" "summary"
for n in ftd-06 ftd-08; do cmp -s <(snap "$n") "$T/snap-$n" || fail "$n (an FMC) was written to"; done
ok "push on the list resolve wrote: the FMC's row and the HA peer (no pair of this CA in its directory) skipped with their UUIDs given too; the others by their uuid"
# The same row when the HA peer cannot be asked: it may be a device whose
# pair is missing, so the local reason stands (FAILED, listed), not a skip.
ctl ftd-08 stop >/dev/null
mv "$FMC/var/sf/peers/$u08/certs_pushed" "$T/pair-08"
expect_rc 1 push --devices "$V" --shell ftd --failed-push "$T/FP6" --jobs 5
mv "$T/pair-08" "$FMC/var/sf/peers/$u08/certs_pushed"
assert_contains "$OUT" "ftd-08 $ip08 $u08: FAILED: local file .*/var/sf/peers/$u08/certs_pushed/sftunnel-cert.pem cannot be read" \
	"an unreachable HA peer keeps the local reason"
assert_not_contains "$OUT" "ftd-08 $ip08.*skipped" "not skipped unasked"
assert_contains "$OUT" "0 updated, 3 unchanged, 1 failed" "summary"
assert_contains "$(cat "$T/FP6")" "^$u08 ftd-08 $ip08 " "listed in FAILED_PUSH"
assert_not_contains "$OUT" "sftca-key-made" "no error for a key that was re-certified (no record beside it is the usual case)"
ok "push: a row without a local pair whose device cannot be asked is FAILED with the local reason and listed, not skipped as an FMC"

# --- direct devices: the certificate's CN, --identity-file, unknown devices ----------
H=$T/direct.csv
{
	echo "device_name,ip,admin_username,admin_password,port,shell"
	for i in 01 03 05 07; do ip=ip$i; echo "ftd-$i,${!ip},admin,$PW,22,direct"; done
} > "$H"
chmod 600 "$H"
cp "$H" "$T/direct.orig"
ctl ftd-03 run rm -f "/var/sf/peers/$CA_ID/sftunnel-cert.pem"
ctl ftd-07 stop >/dev/null
expect_rc 1 resolve --devices "$H" --out "$T/direct-resolved.csv"
assert_contains "$OUT" "ftd-01 $ip01: resolved $u01$" "direct: the certificate's CN"
assert_contains "$OUT" "ftd-03 $ip03: FAILED: identity not established \(it holds no '/var/sf/peers/$CA_ID'/sftunnel-cert.pem\)" "direct without a certificate"
assert_contains "$OUT" "ftd-07 $ip07: FAILED: cannot connect" "stopped"
assert_contains "$OUT" "2 resolved, 0 confirmed, 0 identity mismatch, 2 not resolved" "summary"
assert_contains "$OUT" "written to $T/direct-resolved.csv \(mode 0600\)" "--out"
cmp -s "$H" "$T/direct.orig" || fail "--out: the input changed"
assert_eq "$(ls "$T" | grep -c 'direct.csv.backup' || true)" "0" "--out: no backup of the input"
assert_eq "$(stat -c %a "$T/direct-resolved.csv")" "600" "mode"
assert_eq "$(cat "$T/direct-resolved.csv")" "device_name,ip,admin_username,admin_password,port,shell,uuid
ftd-01,$ip01,admin,$PW,22,direct,$u01
ftd-03,$ip03,admin,$PW,22,direct,
ftd-05,$ip05,admin,$PW,22,direct,$u05
ftd-07,$ip07,admin,$PW,22,direct," "a header file gains the uuid column"
ok "devices resolve --out on direct devices: the certificate's CN; a device without a certificate and a stopped one listed with why and left without a uuid; the input untouched"

# The list cannot be written (the rename fails): said, exit 1, and the file
# the operator has is the one they had, with nothing left beside it.
W=$T/wfail
mkdir "$W"
{ echo "device_name,ip,admin_username,admin_password,port,shell"; echo "ftd-01,$ip01,admin,$PW,22,direct"; } > "$W/devices.csv"
chmod 600 "$W/devices.csv"
cp "$W/devices.csv" "$T/wfail.orig"
SFTCA_FAILPOINTS=atomic.rename=error expect_rc 1 resolve --devices "$W/devices.csv"
assert_contains "$OUT" "ftd-01 $ip01: resolved $u01$" "resolved before the write"
assert_contains "$OUT" "$W/devices.csv could not be written: " "the write failure said"
assert_not_contains "$OUT" "written to" "no claim that it was written"
cmp -s "$W/devices.csv" "$T/wfail.orig" || fail "a failed write changed devices.csv"
assert_eq "$(ls -A "$W")" "devices.csv" "nothing left beside it (no temporary file, no backup)"
ok "devices resolve: a list that cannot be written is said, exit 1, the file as it was and nothing beside it"

# --identity-file: read instead of the certificate (ftd-03 has none now).
ID=/var/sf/sftca-identity
ctl ftd-01 identity-file "$ID" >/dev/null
ctl ftd-03 identity-file "$ID" >/dev/null
printf '\n%s\n' "$u05" | ctl ftd-05 identity-file "$ID" - >/dev/null
expect_rc 1 resolve --devices "$H" --out "$T/direct-id.csv" --identity-file "$ID" --json
python3 - "$OUT" "$u01" "$u03" "$u05" <<'PY' || fail "--json: $OUT"
import json, sys
j = json.loads(sys.argv[1])
r = {d["device"]: d for d in j["devices"]}
assert [r[n]["result"] for n in ("ftd-01", "ftd-03", "ftd-05", "ftd-07")] == ["resolved"] * 3 + ["unresolved"], r
assert [r[n]["uuid"] for n in ("ftd-01", "ftd-03", "ftd-05")] == sys.argv[2:5], r
assert "cannot connect" in r["ftd-07"]["message"], r["ftd-07"]
assert j["not_resolved"] == ["ftd-07"] and j["summary"]["resolved"] == 3 and j["written"], j
PY
echo "ftd-09,$ip09,admin,$PW,,22,direct" > "$T/nine.csv" && chmod 600 "$T/nine.csv"
expect_rc 1 resolve --devices "$T/nine.csv" --out "$T/nine-out.csv" --identity-file "$ID"
assert_contains "$OUT" "ftd-09 $ip09: FAILED: identity not established \(it has no identity file '$ID'\)" "no identity file"
ok "--identity-file: the device's file names it ('UUID : <uuid>' or the UUID alone), read instead of the certificate; --json lists results and the rows not resolved"

# push on the fly: a device the FMC tree has no peer for is refused.
rm -rf "${FMC:?}/var/sf/peers/$u05"
snap ftd-05 > "$T/snap-ftd-05"
# A FAILED_PUSH from before: devices that failed without an entry leave it be.
old_line="$u09 ftd-09 $ip09 /etc/sf/ca_root/cacert.pem /var/sf/peers/$CA_ID/cacert.pem"
echo "$old_line" > "$T/FP2"
expect_rc 1 push --devices "$H" --identity-file "$ID" --failed-push "$T/FP2"
assert_contains "$OUT" "ftd-05 $ip05 $u05: FAILED: unknown device: $u05 has no peer directory under $FMC" "unknown device"
assert_contains "$OUT" "ftd-03 $ip03 $u03: updated .*sftunnel-cert.pem, sftunnel restarted \(UUID read from the device\)" "ftd-03 identified by its identity file"
assert_contains "$OUT" "ftd-07 $ip07: FAILED: cannot connect" "stopped device"
assert_contains "$OUT" "2 updated, 0 unchanged, 2 failed, 1 without a UUID" "summary"
cmp -s <(snap ftd-05) "$T/snap-ftd-05" || fail "ftd-05 written to: $(diff <(snap ftd-05) "$T/snap-ftd-05")"
assert_eq "$(cat "$T/FP2")" "$old_line" "FAILED_PUSH: no entry for a device without a known peer, and the old list kept"
# The unknown device alone is enough to keep the old list.
ctl ftd-07 start >/dev/null
ctl ftd-07 identity-file "$ID" >/dev/null
expect_rc 1 push --devices "$H" --identity-file "$ID" --failed-push "$T/FP2"
assert_contains "$OUT" "ftd-07 $ip07 $u07: updated .*\(UUID read from the device\)" "ftd-07 back"
assert_contains "$OUT" "1 updated, 2 unchanged, 1 failed, 0 without a UUID" "only the unknown device fails"
assert_eq "$(cat "$T/FP2")" "$old_line" "the old FAILED_PUSH kept after a run whose only failure has no entry"
assert_eq "$(ls "$T" | grep -c '^FP2.backup' || true)" "0" "the old FAILED_PUSH not moved aside"
cmp -s <(snap ftd-05) "$T/snap-ftd-05" || fail "ftd-05 written to on the second push"
ok "push on the fly: a resolved UUID without a peer directory under the FMC tree is an unknown device (FAILED, nothing written, not in FAILED_PUSH); a device that cannot be asked counts as without a UUID; an older FAILED_PUSH stays"
