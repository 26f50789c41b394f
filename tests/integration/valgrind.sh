#!/usr/bin/env bash
# Issue 6 (hygiene): an end-to-end issuance with the signer and the CLI
# under valgrind memcheck. Passes when neither leaks memory from sftca code
# (definitely or indirectly lost blocks whose allocation passes through an
# sftca binary) and memcheck reports no invalid access. No suppression file
# is needed: Debian's gRPC, OpenSSL and SoftHSM2 leave only still-reachable
# or possibly-lost blocks (thread stacks) at exit, which are not counted.
. "$(dirname "$0")/lib.sh"
need valgrind sqlite3

VG_OPTS=(--tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --num-callers=40 --track-origins=no
	--error-exitcode=0)
# The signer runs through a wrapper so that start_signer and stop_signer
# drive it unchanged; one log file per process.
cat > "$T/vg-signer" <<WRAP
#!/bin/sh
exec valgrind ${VG_OPTS[*]} --log-file=$T/vg-signer.%p $BUILD/bin/sftca-signer "\$@"
WRAP
chmod +x "$T/vg-signer"
REAL_SIGNER=$SIGNER
SIGNER=$T/vg-signer

make_token
make_pki
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID" --key-type ec:p256
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 20 >/dev/null
set +e
valgrind "${VG_OPTS[@]}" --log-file="$T/vg-client.%p" "$SFTCA" $(tls fmc-east) issue --ca "$CA_ID" \
	--root "$FMC" --self >"$T/issue.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "sftca issue under valgrind: exit $rc: $(cat "$T/issue.out")"
assert_contains "$(cat "$T/issue.out")" "21 issued" "20 peers and the FMC issued"
expect_rc 0 as auditor-1 status
expect_rc 0 as auditor-1 ledger --ca "$CA_ID"
stop_signer
SIGNER=$REAL_SIGNER
expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
ok "signer and CLI under valgrind: CA created, 21 certificates issued, status and ledger read, clean stop"

# judge LOG...: no memcheck error and no definite or indirect leak (each one
# counts as an error under --errors-for-leak-kinds).
judge() {
	local log n=0
	for log in "$@"; do
		grep -q "ERROR SUMMARY" "$log" || fail "$log: valgrind did not finish: $(tail -5 "$log")"
		n=$((n + 1))
		if ! grep -q "ERROR SUMMARY: 0 errors" "$log"; then
			fail "$log: $(grep -m1 -B2 -A40 -E '(Invalid|uninitialised|definitely lost in|indirectly lost in|Mismatched|overlap)' "$log")"
		fi
	done
	[ "$n" -gt 0 ] || fail "no valgrind log"
}
judge "$T"/vg-signer.*
judge "$T"/vg-client.*
leaks() { grep -h -E "(definitely|indirectly) lost:" "$@" | awk '{s+=$4} END {print s+0}'; }
ok "memcheck: no invalid access and no leak (signer $(leaks "$T"/vg-signer.*) bytes, CLI $(leaks "$T"/vg-client.*) bytes lost in total)"
