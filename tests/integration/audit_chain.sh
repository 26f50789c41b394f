#!/usr/bin/env bash
# Hostile input, part 3: the audit log. Real traffic makes a hash-chained
# log; every record is checked independently (fields, sequence, SHA-256
# chain, audit.head); tampered copies are reported BROKEN at the right line;
# a restarted signer continues the chain.
. "$(dirname "$0")/lib.sh"
need jq sha256sum

make_token
make_pki
write_conf "$T/signer.conf"
AUDIT=$T/state/audit.log HEAD=$T/state/audit.head
ZERO=0000000000000000000000000000000000000000000000000000000000000000
PEER=11111111-2222-4333-8444-555555555555

# --- traffic -------------------------------------------------------------------
start_signer "$T/signer.conf"
expect_rc 0 probe ops-admin rpc CreateCA ca_id="$CA_ID"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/peer.key" \
	-subj "/CN=ignored" -outform DER -out "$T/peer.csr" 2>/dev/null
for _ in 1 2 3; do
	expect_rc 0 probe fmc-east rpc IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"
done
serial=$(sed -n 's/^results\.0\.serial=//p' <<<"$OUT")
expect_rc 1 probe stranger rpc GetStatus
assert_contains "$OUT" "^PERMISSION_DENIED" "a refused call"
expect_rc 0 probe ops-admin rpc Revoke ca_id="$CA_ID" serial="$serial" reason=superseded
stop_signer
# What those calls must have left, in order.
want_events="signer.start:signer:ok ca.create:cn=ops-admin:ok issue:cn=fmc-east:ok issue:cn=fmc-east:ok issue:cn=fmc-east:ok refused:cn=stranger:refused revoke:cn=ops-admin:ok signer.stop:signer:ok"
N=$(wc -w <<<"$want_events")

# --- the intact log, checked without the signer's help ------------------------------
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
assert_eq "$OUT" "$AUDIT: intact, $N records" "verify-audit on the untouched log"
assert_eq "$(wc -l <"$AUDIT")" "$N" "one line per record"

# check_chain FILE: every line is a JSON record with seq, ts, event,
# identity, result and prev; seq counts from 1; prev is the SHA-256 of the
# line before (zeros for the first). Prints the hash of the last line.
check_chain() {
	local file=$1 i=0 prev=$ZERO line
	while IFS= read -r line; do
		i=$((i + 1))
		jq -e --argjson seq "$i" --arg prev "$prev" '
			(keys_unsorted[:4] == ["seq", "ts", "event", "identity"]) and
			(keys_unsorted[-1] == "prev") and has("result") and
			.seq == $seq and .prev == $prev and
			(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and
			(.event | type == "string" and length > 0) and
			(.identity | type == "string" and length > 0) and
			(.result | IN("ok", "refused", "error"))' <<<"$line" >/dev/null ||
			fail "$file line $i is not record $i chained to $prev: $line"
		prev=$(printf '%s' "$line" | sha256sum | cut -d' ' -f1)
	done <"$file"
	echo "$prev"
}
last_hash=$(check_chain "$AUDIT")
assert_eq "$(cat "$HEAD")" "$N $last_hash" "audit.head holds the last sequence number and hash"
got=$(jq -r '"\(.event):\(.identity):\(.result)"' "$AUDIT" | tr '\n' ' ')
assert_eq "$got" "$want_events " "events, identities and results in order"
line_of() { grep -n "\"event\":\"$1\"" "$AUDIT" | head -1 | cut -d: -f1; }
assert_eq "$(sed -n "$(line_of refused)p" "$AUDIT" | jq -r .detail.method)" /sftca.v1.Signer/GetStatus "refused record names the method"
assert_eq "$(sed -n "$(line_of revoke)p" "$AUDIT" | jq -r '"\(.detail.serial) \(.detail.reason)"')" "$serial superseded" "revoke record names serial and reason"
assert_eq "$(jq -r 'select(.event == "issue") | .detail.serials | length' "$AUDIT" | tr '\n' ' ')" "1 1 1 " "each issue record lists its serial"
ok "$N records: JSON with seq, ts, event, identity, result, prev; SHA-256 chain and audit.head check out independently"

# --- tampered copies --------------------------------------------------------------
# tamper NAME WANT EDIT...: copy log and head to $T/tamper/NAME, run EDIT
# (a command with FILE appended), expect BROKEN with WANT (a regex).
tamper() {
	local name=$1 want=$2 dir=$T/tamper/$1
	shift 2
	mkdir -p "$dir"
	cp "$AUDIT" "$HEAD" "$dir/"
	"$@" "$dir/audit.log"
	if cmp -s "$AUDIT" "$dir/audit.log" && cmp -s "$HEAD" "$dir/audit.head"; then
		fail "$name: the copy is unchanged"
	fi
	expect_rc 1 "$SIGNER" verify-audit "$dir/audit.log"
	assert_contains "$OUT" "^$dir/audit.log: BROKEN: $want" "tampering '$name'"
	ok "$name: ${OUT#*BROKEN: }"
}
M=$(((N + 1) / 2)) # the middle line
# The edited line still parses, carries its own seq and prev: only the next
# line's prev gives it away.
edit_identity() { sed -i "${M}s/\"identity\":\"[^\"]*\"/\"identity\":\"cn=nobody\"/" "$1"; }
delete_line() { sed -i "${M}d" "$1"; }
# A careful forger renumbers what follows: the chain still gives it away.
delete_renumber() {
	local f=$1
	sed -i "${M}d" "$f"
	jq -c --argjson m "$M" 'if .seq > $m then .seq -= 1 else . end' "$f" > "$f.new"
	mv "$f.new" "$f"
}
swap_lines() { sed -i -n "$((M - 1)){h;d};${M}{p;x};p" "$1"; }
truncate_last() { sed -i '$d' "$1"; }
truncate_two() { sed -i '$d' "$1"; sed -i '$d' "$1"; }
cut_mid_line() { truncate -s -10 "$1"; }
forge() { # append a record with the given prev
	printf '{"seq":%d,"ts":"2030-01-01T00:00:00.000Z","event":"ca.create","identity":"cn=ops-admin","ca":"%s","result":"ok","detail":null,"prev":"%s"}\n' \
		"$((N + 1))" "$CA_ID" "$2" >> "$1"
}
forge_wrong_prev() { forge "$1" "$ZERO"; }
forge_right_prev() { forge "$1" "$last_hash"; }
edit_last() { sed -i '$s/"result":"ok"/"result":"refused"/' "$1"; }
remove_head() { rm "$(dirname "$1")/audit.head"; }
# A record behind a NUL byte: a check that reads to the first NUL misses it.
nul_then_record() { printf '\0' >> "$1"; forge_right_prev "$1"; }

tamper edited-middle "line $((M + 1)): chain broken" edit_identity
tamper deleted-middle "line $M: not a record in sequence" delete_line
tamper deleted-renumbered "line $M: chain broken" delete_renumber
tamper swapped "line $((M - 1)): not a record in sequence" swap_lines
tamper truncated-last "the log ends at record $((N - 1)) but .*audit.head says $N: records were removed from the end" truncate_last
tamper truncated-two "the log ends at record $((N - 2)) but .*audit.head says $N: records were removed from the end" truncate_two
tamper cut-mid-line "line $N: partial line at the end" cut_mid_line
tamper forged-wrong-prev "line $((N + 1)): chain broken" forge_wrong_prev
tamper forged-right-prev "the log ends at record $((N + 1)) but .*audit.head says $N: records were appended" forge_right_prev
tamper edited-last "line $N: does not match .*audit.head: the last record was edited" edit_last
tamper behind-nul "line $((N + 1)): holds a NUL byte" nul_then_record
tamper head-missing "$T/tamper/head-missing/audit.head cannot be read, so records removed from the end would go unnoticed" remove_head
expect_rc 1 "$SIGNER" verify-audit "$T/tamper/truncated-last/audit.log" --head "$T/tamper/none"
assert_contains "$OUT" "BROKEN: $T/tamper/none cannot be read" "--head naming a missing file"
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
ok "the original is still intact"

# --- the chain continues across a restart ------------------------------------------------
start_signer "$T/signer.conf"
expect_rc 1 probe auditor-1 rpc CreateCA ca_id="$CA_ID"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
assert_eq "$OUT" "$AUDIT: intact, $((N + 3)) records" "after a restart"
first_new=$(sed -n "$((N + 1))p" "$AUDIT")
assert_eq "$(jq -r '"\(.seq) \(.event) \(.prev)"' <<<"$first_new")" "$((N + 1)) signer.start $last_hash" "first record after the restart"
assert_eq "$(sed -n "$((N + 2))p" "$AUDIT" | jq -r '"\(.seq) \(.event) \(.identity)"')" "$((N + 2)) refused cn=auditor-1" "the refusal after the restart"
assert_eq "$(cat "$HEAD")" "$((N + 3)) $(check_chain "$AUDIT")" "chain and head after the restart"
ok "restart: seq continues at $((N + 1)), its prev is the hash of record $N, the whole chain verifies"

# A log whose last line was cut keeps the signer from starting (it would
# otherwise chain new records to a damaged one).
cp "$AUDIT" "$T/audit.good"
truncate -s -10 "$AUDIT"
set +e
timeout 30 "$SIGNER" --config "$T/signer.conf" --allow-root >"$T/damaged.out" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "the signer started on a damaged audit log (exit $rc)"
assert_file_contains "$T/damaged.out" "audit.log ends in a partial line: the audit log was damaged" "start refused with the reason"
cp "$T/audit.good" "$AUDIT"
ok "a signer does not start on an audit log whose last line was cut"

# A record the disk takes only half of (the failpoint stops the write in
# mid-line) is taken back: the chain goes on from the last whole record, and
# the signer starts again on the log.
before=$(wc -l <"$AUDIT")
SFTCA_FAILPOINTS="audit.write=error@2" start_signer "$T/signer.conf"
expect_rc 1 probe stranger rpc GetStatus
expect_rc 1 probe stranger rpc ListIssued
stop_signer
assert_file_contains "$T/signer.log" "audit log write failed" "the failed write is logged"
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
assert_eq "$OUT" "$AUDIT: intact, $((before + 3)) records" "start, one refusal and stop recorded; the cut record taken back"
assert_eq "$(tail -n 2 "$AUDIT" | head -1 | jq -r '"\(.event) \(.detail.method)"')" "refused /sftca.v1.Signer/ListIssued" "the record after the failure"
start_signer "$T/signer.conf"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
ok "an audit write cut in mid-line is taken back: the chain stays intact and the signer restarts on it"

# Bytes that are not UTF-8 from a caller still make a record (jansson
# refuses such strings; they are written as \xNN).
start_signer "$T/signer.conf"
expect_rc 0 probe fmc-east rpc IssueBatch ca_id="$CA_ID" items=peer_uuid=$'\xff\xfe-not-a-uuid',csr_der=@"$T/peer.csr"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
assert_eq "$(jq -r 'select(.event == "issue") | .detail.refused[0].peer // empty' "$AUDIT" | tail -1)" '\xff\xfe-not-a-uuid' "the refused item's peer, escaped"
ok "a peer UUID that is not UTF-8: the refusal is audited with its bytes escaped"
