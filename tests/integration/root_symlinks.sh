#!/usr/bin/env bash
# Issue 10 item 1: root via the lock file. The state directory belongs to
# [signer] user, who can plant a symlink there before root runs the signer
# or a maintenance command: root must not follow it, let alone chown what
# it points at. Also a socket name in a directory the user writes.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root (the attack is on root)"
USER_NAME=nobody
uid=$(id -u "$USER_NAME") gid=$(id -g "$USER_NAME")
as_user() { setpriv --reuid "$uid" --regid "$gid" --clear-groups "$@"; }

make_token
make_pki
chmod 0711 "$T"
chown -R "$uid:$gid" "$T/hsm" "$T/run"
write_conf "$T/signer.conf" "[signer]
user = $USER_NAME"
mkdir -m 0700 "$T/state"
chown "$uid:$gid" "$T/state"

VICTIM=$(mktemp /tmp/sftca-victim.XXXXXX)
on_exit rm -f "$VICTIM"
chmod 0600 "$VICTIM"
echo "root's secret" > "$VICTIM"
as_user ln -s "$VICTIM" "$T/state/signer.lock"
assert_eq "$(stat -c %u "$T/state/signer.lock")" "$uid" "the symlink is the user's"

expect_rc 1 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "signer.lock is a symbolic link: refusing to follow it" "check-ledger refuses the symlink"
assert_eq "$(stat -c '%u:%g %a' "$VICTIM")" "0:0 600" "victim still root's"
ok "check-ledger as root refuses a symlinked signer.lock; the target stays root:root 0600"

expect_rc 1 "$SIGNER" --config "$T/signer.conf" import-ca --ca "$CA_ID" --cert "$T/pki/service-ca.crt" --key "$T/pki/service-ca.key"
assert_contains "$OUT" "signer.lock is a symbolic link" "import-ca refuses the symlink"
set +e
timeout 20 "$SIGNER" --config "$T/signer.conf" >"$T/serve.log" 2>&1
rc=$?
set -e
assert_eq "$rc" 1 "the signer exits"
assert_file_contains "$T/serve.log" "signer.lock is a symbolic link" "the signer refuses the symlink"
assert_eq "$(stat -c '%u:%g %a' "$VICTIM")" "0:0 600" "victim still root's"
assert_eq "$(cat "$VICTIM")" "root's secret" "victim unchanged"
ok "import-ca and the signer refuse it too"

# A hard link or a FIFO in its place is refused as well (a FIFO must not
# hang root either).
rm "$T/state/signer.lock"
as_user mkfifo "$T/state/signer.lock"
expect_rc 1 timeout 20 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "signer.lock is not a regular file with one link owned by $USER_NAME" "a FIFO refused"
rm "$T/state/signer.lock"
as_user touch "$T/state/own"
as_user ln "$T/state/own" "$T/state/signer.lock"
expect_rc 1 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_contains "$OUT" "signer.lock is not a regular file with one link" "a hard-linked file refused"
rm "$T/state/signer.lock" "$T/state/own"
ok "a FIFO or a hard link as signer.lock is refused"

# The real thing still works: lock created by root and given to the user.
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
assert_eq "$(stat -c '%u %F' "$T/state/signer.lock")" "$uid regular empty file" "lock owned by $USER_NAME"
ok "without the plant, check-ledger runs and the lock is $USER_NAME's"
