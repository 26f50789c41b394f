#!/usr/bin/env bash
# Issue 10 item 11: the audit chain gets an anchor. A sign-only key in the
# token signs a checkpoint of the chain (audit.anchor); its public half is
# exported as audit-key.pem. Whoever can rewrite the log and recompute the
# chain and audit.head, but cannot use the token's key, fails
# `verify-audit --key`; openssl checks the signature independently.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool jq

make_token
make_pki
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
S=$T/state A=$S/audit.log
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
expect_rc 1 probe stranger rpc GetStatus
last=$(tail -1 "$A" | jq .seq)
for _ in $(seq 100); do [ "$(cut -d' ' -f1 "$S/audit.anchor" 2>/dev/null | head -1)" = "$last" ] && break; sleep 0.1; done
assert_eq "$(head -1 "$S/audit.anchor" | cut -d' ' -f1)" "$last" "the checkpoint follows the last record"
stop_signer
cp "$S/audit-key.pem" "$T/trusted-audit-key.pem" # what an operator keeps off the host

# openssl as the judge: the checkpoint's first line, signed ECDSA-SHA256.
head -1 "$S/audit.anchor" | tr -d '\n' > "$T/cp.txt"
sed -n 2p "$S/audit.anchor" | cut -d' ' -f2 | base64 -d > "$T/cp.sig"
assert_eq "$(openssl dgst -sha256 -verify "$T/trusted-audit-key.pem" -signature "$T/cp.sig" "$T/cp.txt")" "Verified OK" "openssl verifies the checkpoint"
expect_rc 0 "$SIGNER" verify-audit "$A" --key "$T/trusted-audit-key.pem"
assert_contains "$OUT" "intact, [0-9]+ records; the audit key's checkpoint matches" "verify-audit --key"
last=$(tail -1 "$A" | jq .seq)
assert_eq "$(head -1 "$S/audit.anchor" | cut -d' ' -f1)" "$last" "signer.stop is in the last checkpoint"
objs=$(p11_login --list-objects --type privkey)
assert_contains "$(grep -A8 'label: *sftca/audit' <<<"$objs")" "Usage: *sign" "the audit key signs"
assert_not_contains "$(grep -A8 'label: *sftca/audit' <<<"$objs" | grep Usage)" "decrypt|derive|unwrap" "and does nothing else"
assert_contains "$(grep -A8 'label: *sftca/audit' <<<"$objs" | grep Access)" "sensitive.*never extractable" "it never leaves the token"
ok "checkpoint signed in the token (sign-only, non-extractable key); openssl and verify-audit --key accept it"

# The signer's user rewrites history: drop the last records and the refusal,
# recompute the chain and audit.head. The plain check passes; --key does not.
cp -r "$S" "$T/forged"
F=$T/forged
jq -c 'select(.event != "refused")' "$A" | head -n -1 > "$F/body"
prev=0000000000000000000000000000000000000000000000000000000000000000 seq=0
: > "$F/audit.log"
while read -r line; do
	seq=$((seq + 1))
	line=$(jq -c --argjson s "$seq" --arg p "$prev" '.seq = $s | .prev = $p' <<<"$line")
	printf '%s\n' "$line" >> "$F/audit.log"
	prev=$(printf '%s' "$line" | sha256sum | cut -d' ' -f1)
done < "$F/body"
echo "$seq $prev" > "$F/audit.head"
expect_rc 0 "$SIGNER" verify-audit "$F/audit.log"
ok "a forged log with a recomputed chain and head passes the unanchored check (the gap the anchor closes)"
expect_rc 1 "$SIGNER" verify-audit "$F/audit.log" --key "$T/trusted-audit-key.pem"
assert_contains "$OUT" "BROKEN: (line [0-9]+: differs from the record the audit key signed|the log ends at record [0-9]+ but the audit key signed record $last: records were removed)" "--key catches it"
# ...and a checkpoint re-signed with a key of the attacker's own is refused.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/evil.key" 2>/dev/null
printf '%s %s %s' "$seq" "$prev" "$(date +%s)" > "$T/evil.txt"
openssl dgst -sha256 -sign "$T/evil.key" -out "$T/evil.sig" "$T/evil.txt"
{ cat "$T/evil.txt"; printf '\nsig %s\n' "$(base64 -w0 "$T/evil.sig")"; } > "$F/audit.anchor"
expect_rc 1 "$SIGNER" verify-audit "$F/audit.log" --key "$T/trusted-audit-key.pem"
assert_contains "$OUT" "BROKEN: .*audit.anchor: the signature does not verify with the audit key" "a checkpoint signed by another key"
ok "verify-audit --key refuses the forged log, and a checkpoint signed by any other key"

# The key stays across restarts (the exported copy stays valid).
start_signer "$T/signer.conf"
stop_signer
cmp -s "$S/audit-key.pem" "$T/trusted-audit-key.pem" || fail "the audit key changed across a restart"
expect_rc 0 "$SIGNER" verify-audit "$A" --key "$T/trusted-audit-key.pem"
ok "same audit key after a restart; the chain still verifies with it"
