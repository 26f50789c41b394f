#!/usr/bin/env bash
# Issue 10 item 5: an audit-log flood. Denials are coalesced per identity
# and method (the first is a record, the rest one count per interval);
# audit.log rotates by size with the hash chain going on into the next
# file, and verify-audit checks the set; start-up reads only the end of
# the log, so its size does not matter.
. "$(dirname "$0")/lib.sh"

make_token
make_pki
write_conf "$T/signer.conf" "[audit]
coalesce_seconds = 3"
start_signer "$T/signer.conf"
A=$T/state/audit.log
refused_records() { grep -c "\"event\":\"refused\",\"identity\":\"cn=stranger\".*GetStatus" "$A" || true; }

# --- 4 clients x 200 denied calls --------------------------------------------------
t0=$(date +%s%N)
for i in 1 2 3 4; do
	probe stranger --repeat 200 rpc GetStatus >"$T/flood.$i" 2>&1 &
	echo $! > "$T/pids/flood.$i"
done
for i in 1 2 3 4; do wait "$(cat "$T/pids/flood.$i")" || true; rm "$T/pids/flood.$i"; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
denied=$(grep -c "refused /sftca.v1.Signer/GetStatus for cn=stranger" "$T/signer.log")
assert_eq "$denied" 800 "every denial logged"
n=$(refused_records)
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "$n audit records for 800 denials of one identity+method (want 1 per 3 s interval)"
# A held count is written once its interval has passed, with the next record.
# A slow flood (ASan, load) spans several intervals, so counts are written
# during it and the last one after it: wait until none is held any more.
held_counts() {
	grep '"refused.repeat","identity":"cn=stranger"' "$A" | grep -o '"count":[0-9]*' | cut -d: -f2 |
		paste -sd+ | sed 's/^$/0/' | bc
}
for _ in $(seq 100); do
	probe auditor-1 rpc CreateCA ca_id="$CA_ID" >/dev/null 2>&1 || true
	[ $(( $(refused_records) + $(held_counts) )) -ge 800 ] && break
	sleep 0.2
done
counts=$(held_counts)
assert_eq "$(( $(refused_records) + counts ))" 800 "records plus held counts account for every denial"
assert_contains "$(grep '"refused.repeat"' "$A" | head -1)" '"method":"/sftca.v1.Signer/GetStatus".*"last_peer":"ipv4:127.0.0.1:[0-9]+"' "the count names method and peer"
expect_rc 0 "$SIGNER" verify-audit "$A"
ok "800 denials in $ms ms: $n refused record(s) + counts $counts; every denial logged; chain intact"
stop_signer

# --- rotation by size; the chain goes on across files --------------------------------
write_conf "$T/signer.conf" "[audit]
coalesce_seconds = 0
rotate_bytes = 4096"
start_signer "$T/signer.conf"
probe stranger --repeat 60 rpc GetStatus >/dev/null 2>&1 || true
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
nfiles=$(ls "$T/state" | grep -c '^audit\.log\.[0-9]*$')
[ "$nfiles" -ge 3 ] || fail "only $nfiles rotated files"
for f in "$A".*; do
	[ "$(stat -c %s "$f")" -le 4096 ] || fail "$f is larger than rotate_bytes"
	assert_eq "$(stat -c %a "$f")" 600 "$f mode"
done
assert_file_contains "$T/signer.log" "audit log rotated: $A.1 \(records up to [0-9]+\)" "rotation logged"
expect_rc 0 "$SIGNER" verify-audit "$A"
assert_contains "$OUT" "^$A: intact, [0-9]+ records in $((nfiles + 1)) files \($A.1 first\)" "verify-audit checks the set"
stop_signer
start_signer "$T/signer.conf"
probe stranger --repeat 5 rpc GetStatus >/dev/null 2>&1 || true
expect_rc 0 "$SIGNER" verify-audit "$A"
ok "audit.log rotated into $nfiles files of at most 4 KiB; one chain across them, also after a restart"

mkdir "$T/aside"
mv "$A.2" "$T/aside/"
expect_rc 1 "$SIGNER" verify-audit "$A"
assert_contains "$OUT" "BROKEN: line [0-9]+ \(in $A.3\): not a record in sequence" "a missing file of the set is found"
mv "$T/aside/audit.log.2" "$A.2"
expect_rc 0 "$SIGNER" verify-audit "$A"
ok "a file missing from the set is reported"
stop_signer

# --- start-up reads only the end of the log ------------------------------------------
# A stop right after a rotation leaves audit.log empty: then the newest
# rotated file is the log's end; make it the active file again (a state the
# signer itself leaves when no rotation happened) so there is a record to follow.
if [ ! -s "$A" ]; then
	n=$(ls "$A".* | sed 's/.*\.//' | grep -E '^[0-9]+$' | sort -n | tail -1)
	mv "$A.$n" "$A"
fi
last=$(tail -1 "$A" | grep -o '"seq":[0-9]*' | cut -d: -f2)
[ -n "$last" ] || fail "no record at the end of $A"
mv "$A" "$T/aside/log"
truncate -s 2G "$A"
# A newline ends the 2 GiB of zeros: with a single record after them (how
# many the active file holds depends on when it last rotated) the signer
# still finds where that record starts.
printf '\n' >> "$A"
cat "$T/aside/log" >> "$A"
t0=$(date +%s%N)
start_signer "$T/signer.conf"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
hash=$(tail -1 "$T/aside/log" | tr -d '\n' | sha256sum | cut -d' ' -f1)
assert_contains "$(head -1 "$A")" "^\{\"seq\":$((last + 1)),.*\"prev\":\"$hash\"\}$" "the chain goes on from the last record"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$SIGNER_PID/status")
[ "$rss" -lt $((150 * 1024)) ] || fail "peak RSS $rss KiB after starting on a 2 GiB log"
ok "start-up on a 2 GiB audit.log in $ms ms, peak RSS $((rss / 1024)) MiB: it reads only the end"
stop_signer
