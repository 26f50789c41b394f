#!/usr/bin/env bash
# Issue 6 (hygiene): started as root with [signer] user = nobody, the signer
# binds its listeners, then runs as that user with no capabilities; its state
# (directory, lock, ledger, audit log) and unix socket belong to that user,
# and a state directory left to someone else is refused with the fix named.
. "$(dirname "$0")/lib.sh"
need sqlite3
[ "$(id -u)" = 0 ] || skip "needs root to start as root and drop privileges"
USER_NAME=nobody
uid=$(id -u "$USER_NAME") gid=$(id -g "$USER_NAME")

make_token
make_pki
# The token and the PIN are the user's: it opens them after dropping. The
# test directory must be traversable by it (mktemp makes it 0700).
chmod 0711 "$T"
chown -R "$uid:$gid" "$T/hsm" "$T/run"
write_conf "$T/signer.conf" "[signer]
user = $USER_NAME"

# start_dropping: like start_signer, without --allow-root.
start_dropping() {
	"$SIGNER" --config "$T/signer.conf" >>"$T/signer.log" 2>&1 &
	SIGNER_PID=$!
	echo "$SIGNER_PID" > "$T/pids/signer"
	for _ in $(seq 200); do
		if grep -q "serving (" "$T/signer.log"; then
			PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$T/signer.log" | tail -1 | cut -d: -f2)
			return 0
		fi
		kill -0 "$SIGNER_PID" 2>/dev/null || fail "signer exited during start: $(tail -5 "$T/signer.log")"
		sleep 0.1
	done
	fail "signer did not start within 20 s"
}
start_dropping

status=$(cat "/proc/$SIGNER_PID/status")
assert_contains "$status" $'Uid:\t'"$uid"$'\t'"$uid"$'\t'"$uid"$'\t'"$uid" "real, effective, saved and fs uid"
assert_contains "$status" $'Gid:\t'"$gid"$'\t'"$gid"$'\t'"$gid"$'\t'"$gid" "real, effective, saved and fs gid"
assert_contains "$status" $'CapEff:\t0000000000000000' "no effective capabilities"
assert_contains "$status" $'CapPrm:\t0000000000000000' "no permitted capabilities"
assert_file_contains "$T/signer.log" "running as $USER_NAME \(uid $uid\)" "drop logged"
ok "runs as $USER_NAME (uid $uid, gid $gid) with no capabilities after binding as root"

expect_rc 0 as ops-admin ca create --ca "$CA_ID" --key-type ec:p256
expect_rc 0 "$PROBE" --signer "unix:$T/run/signer.sock" health
assert_eq "$OUT" "SERVING" "health over the unix socket"
mkdir -p "$T/peer"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/peer/k" \
	-subj "/CN=ignored" -outform DER -out "$T/peer/csr" 2>/dev/null
expect_rc 0 probe fmc-east issue "$CA_ID" "$T/out" "11111111-2222-4333-8444-555555555555=$T/peer/csr"
assert_contains "$OUT" "ITEM 0 OK" "issued as $USER_NAME"
ok "creates a CA in the token and issues as $USER_NAME"

st=$T/state
assert_eq "$(stat -c '%u %a' "$st")" "$uid 700" "state dir owner and mode"
for f in "$st"/*; do
	assert_eq "$(stat -c %u "$f")" "$uid" "owner of $f"
done
assert_eq "$(stat -c '%u:%g %a' "$T/run/signer.sock")" "$uid:$gid 660" "unix socket owner and mode"
ok "state dir 0700 and every file in it ($(ls "$st" | tr '\n' ' '))owned by $USER_NAME; socket $uid:$gid 0660"
stop_signer

# Maintenance commands run as root drop too: they leave nothing root-owned.
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "intact" "check-ledger as root"
assert_eq "$(find "$st" ! -uid "$uid" | wc -l)" 0 "files not owned by $USER_NAME after check-ledger"
ok "check-ledger started as root works as $USER_NAME and leaves nothing root-owned"

# A file in the state dir that belongs to someone else is refused at start,
# naming it and the fix, before anything is opened.
touch "$st/stray"
set +e
timeout 20 "$SIGNER" --config "$T/signer.conf" >"$T/stray.log" 2>&1
rc=$?
set -e
assert_eq "$rc" 1 "exit with a root-owned file in the state dir"
assert_file_contains "$T/stray.log" "$st/stray belongs to uid 0, but the signer runs as $USER_NAME \(uid $uid\): chown -R $uid:$gid $st" "stray file named"
rm "$st/stray"
chown 0:0 "$st"
set +e
timeout 20 "$SIGNER" --config "$T/signer.conf" >"$T/owner.log" 2>&1
rc=$?
set -e
assert_eq "$rc" 1 "exit with a root-owned state dir"
assert_file_contains "$T/owner.log" "state_dir $st belongs to uid 0, but the signer runs as $USER_NAME" "state dir owner named"
ok "a state dir, or a file in it, owned by another user is refused with the chown to run"

chown "$uid:$gid" "$st"
: > "$T/signer.log"
start_dropping
expect_rc 0 as auditor-1 ledger --ca "$CA_ID"
assert_contains "$OUT" "11111111-2222-4333-8444-555555555555" "ledger kept across restarts"
stop_signer
ok "after the chown it starts again with its ledger intact"
