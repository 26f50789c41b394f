#!/usr/bin/env bash
# Issue 2: every start-up fault gets one clear line and a non-zero exit,
# and a wrong PIN is tried exactly once (the token is not locked by retries).
. "$(dirname "$0")/lib.sh"

make_token
make_pki

# start_fails CONF PATTERN WHAT: the signer must exit non-zero saying PATTERN.
start_fails() {
	set +e
	timeout 20 "$SIGNER" --config "$1" --allow-root >"$T/fail.log" 2>&1
	local rc=$?
	set -e
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$3: signer exit $rc"
	grep -qE -- "$2" "$T/fail.log" || fail "$3: '$2' not in: $(cat "$T/fail.log")"
	ok "$3"
}

printf 'not-the-pin\n' > "$T/wrong.pin"
chmod 600 "$T/wrong.pin"
PIN_FILE=$T/wrong.pin write_conf "$T/wrongpin.conf"
for i in 1 2 3; do
	start_fails "$T/wrongpin.conf" "refused the PIN .*CKR_PIN_INCORRECT.*not retried" "wrong PIN (run $i): clear error"
	n=$(grep -c "refused the PIN" "$T/fail.log")
	assert_eq "$n" "1" "exactly one PIN attempt per start"
done
write_conf "$T/good.conf"
start_signer "$T/good.conf"
assert_eq "$(probe ops-admin health)" "SERVING" "right PIN after three wrong starts"
stop_signer
ok "the token is not locked after wrong-PIN starts: the right PIN still logs in"

chmod 644 "$T/hsm/user.pin"
start_fails "$T/good.conf" "must not be accessible by group or others" "world-readable PIN file refused"
chmod 600 "$T/hsm/user.pin"

TOKEN_LABEL=nosuch write_conf "$T/label.conf"
start_fails "$T/label.conf" "no token labelled 'nosuch'.*tokens present: 'sftca'" "missing token label"

sed "s|^module = .*|module = $T/nonexistent.so|" "$T/good.conf" > "$T/module.conf"
start_fails "$T/module.conf" "PKCS#11 module .*nonexistent.so cannot be loaded" "module not loadable"

echo x > "$T/afile"
sed "s|^state_dir = .*|state_dir = $T/afile/state|" "$T/good.conf" > "$T/state.conf"
start_fails "$T/state.conf" "state_dir .*cannot be created" "state dir not creatable"

sed "s|^tls_cert = .*|tls_cert = $T/pki/missing.crt|" "$T/good.conf" > "$T/nocert.conf"
start_fails "$T/nocert.conf" "missing.crt: No such file" "TLS certificate missing"
sed "s|^tls_key = .*|tls_key = $T/pki/ops-admin.key|" "$T/good.conf" > "$T/mismatch.conf"
start_fails "$T/mismatch.conf" "does not hold the private key of the certificate" "TLS key does not match"

printf '[signer]\nlisten = unix:%s/run/x.sock\nstat_dir = /tmp\n' "$T" > "$T/typo.conf"
start_fails "$T/typo.conf" "typo.conf:3: unknown key \"stat_dir\" in \[signer\]" "config typo names file and line"

expect_rc 0 "$SIGNER" --config "$T/good.conf" --check-config
assert_contains "$OUT" "configuration OK" "check-config on a good file"
expect_rc 1 "$SIGNER" --config "$T/mismatch.conf" --check-config
ok "--check-config validates files without starting"

if [ "$(id -u)" = 0 ]; then
	set +e
	timeout 20 "$SIGNER" --config "$T/good.conf" >"$T/root.log" 2>&1
	rc=$?
	set -e
	[ "$rc" -eq 1 ] || fail "root without --allow-root: exit $rc"
	assert_file_contains "$T/root.log" "refusing to run as root" "root refusal"
	ok "refuses to run as root without --allow-root or [signer] user"
fi
