#!/usr/bin/env bash
# Issue 10 items 2 and 3: what a verified client can make the signer spend
# before (or without) a role. Request bytes: every method has a size cap
# (max_request_bytes, IssueBatch max_batch_request_bytes) and a walk over the
# bytes refuses unknown fields and oversized lists before protobuf-c
# allocates anything, so a 16 MiB Health body of two-byte unknown fields
# from a CN not in [authz] leaves the signer's peak RSS bounded, and each
# refusal is logged with who asked.
# Call slots: identity and role are checked when a call's headers arrive
# (before its body is read), a call's body must arrive within
# request_timeout, one identity holds at most max_calls_per_client slots and
# the last admin_reserved_calls are kept for admins: 100 header-only streams
# from an unlisted CN and 100 from an issuer leave the admin served.
. "$(dirname "$0")/lib.sh"
need python3

# Under AddressSanitizer (the asan_* runs) shadow memory and the quarantine
# come on top.
RSS_LIMIT_KB=$((150 * 1024))
[ -z "${ASAN_OPTIONS:-}" ] || RSS_LIMIT_KB=$((1024 * 1024))
HEALTH=/grpc.health.v1.Health/Check
make_token
make_pki
LOG=$T/signer.log

peak_ok() {
	kill -0 "$SIGNER_PID" 2>/dev/null || fail "$1: the signer died"
	local hwm
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SIGNER_PID/status")
	[ "$hwm" -lt "$RSS_LIMIT_KB" ] || fail "$1: peak RSS ${hwm} kB, over $RSS_LIMIT_KB kB"
	ok "$1: peak RSS ${hwm} kB (limit $RSS_LIMIT_KB kB)"
}
# fields FILE N BYTES-HEX: FILE holds N repeats of the bytes.
fields() { python3 -c "import sys; open(sys.argv[1], 'wb').write(bytes.fromhex(sys.argv[3]) * int(sys.argv[2]))" "$@"; }

write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID" --key-type ec:p256

# --- request bytes -------------------------------------------------------------------
# 16 MiB of "10 00" (field 2, varint 0: unknown to HealthCheckRequest), from
# a verified client with no [authz] entry: Health answers any verified client.
fields "$T/flood.bin" $((8 << 20)) 1000
l0=$(wc -l <"$LOG")
OUT=$(probe stranger --timeout 60 call "$HEALTH" @"$T/flood.bin" 2>&1) || true
peak_ok "a 16 MiB Health body of unknown fields from an unlisted CN"
assert_eq "$OUT" "RESOURCE_EXHAUSTED request of 16777216 bytes; $HEALTH takes at most 4096 (max_request_bytes)" "16 MiB Health body"
assert_contains "$(log_since "$l0" "max_request_bytes")" \
	"refused $HEALTH for cn=stranger \(ipv4:127\.0\.0\.1:[0-9]+\): request of 16777216 bytes" "refusal logged with who asked"
pids=()
for i in 1 2 3 4; do
	probe stranger --timeout 60 call "$HEALTH" @"$T/flood.bin" >"$T/flood.$i" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
for i in 1 2 3 4; do assert_contains "$(cat "$T/flood.$i")" "^RESOURCE_EXHAUSTED request of 16777216 bytes" "parallel flood $i"; done
peak_ok "four such bodies in parallel"

# Within the size cap: a few unknown fields pass (a newer client's optional
# field), more are refused before unpacking.
expect_rc 0 probe stranger call "$HEALTH" 100010001000
fields "$T/unknown9.bin" 9 1000
l0=$(wc -l <"$LOG")
expect_rc 1 probe stranger call "$HEALTH" @"$T/unknown9.bin"
assert_eq "$OUT" "INVALID_ARGUMENT more than 8 fields unknown to this signer (grpc.health.v1.HealthCheckRequest field 2)" "9 unknown fields"
assert_contains "$(log_since "$l0" "fields unknown")" "refused $HEALTH for cn=stranger \(ipv4:127\.0\.0\.1:[0-9]+\): more than 8 fields unknown" "logged"
ok "3 unknown fields accepted, 9 refused before unpacking, logged"

# Small methods take a few KiB, even from an admin.
fields "$T/5k.bin" 2560 1000
expect_rc 1 probe ops-admin call /sftca.v1.Signer/GetStatus @"$T/5k.bin"
assert_eq "$OUT" "RESOURCE_EXHAUSTED request of 5120 bytes; /sftca.v1.Signer/GetStatus takes at most 4096 (max_request_bytes)" "GetStatus over its cap"
# IssueBatch takes megabytes, but not millions of list elements or unknown
# fields: 1 MiB of empty items ("12 00") and 1 MiB of unknown field 9 ("48 00").
fields "$T/items.bin" $((512 << 10)) 1200
expect_rc 1 probe fmc-east --timeout 60 call /sftca.v1.Signer/IssueBatch @"$T/items.bin"
assert_eq "$OUT" "RESOURCE_EXHAUSTED more than 2000 items in one sftca.v1.IssueBatchRequest" "an IssueBatch of 512 Ki empty items"
fields "$T/unknown-batch.bin" $((512 << 10)) 4800
expect_rc 1 probe fmc-east --timeout 60 call /sftca.v1.Signer/IssueBatch @"$T/unknown-batch.bin"
assert_contains "$OUT" "^INVALID_ARGUMENT more than 8 fields unknown to this signer \(sftca.v1.IssueBatchRequest field 9\)$" "IssueBatch of unknown fields"
peak_ok "IssueBatch of 512 Ki items / unknown fields"
assert_eq "$(probe auditor-1 health)" SERVING "health after the floods"
ok "request bytes: per-method caps and the wire walk refuse before unpacking; signer SERVING"
stop_signer

# --- call slots -------------------------------------------------------------------------
# hold WHO N OUT: N header-only IssueBatch streams from WHO in the
# background; sets HOLDER (its pid).
hold() {
	probe "$1" --timeout 60 hold /sftca.v1.Signer/IssueBatch "$2" >"$3" 2>&1 &
	HOLDER=$!
	echo "$HOLDER" >"$T/pids/holder.$HOLDER"
}
# held OUT...: wait (up to 30 s) until each holder says its streams are at the signer.
held() {
	for f in "$@"; do
		for _ in $(seq 300); do grep -q '^HELD ' "$f" && break; sleep 0.1; done
		grep -q '^HELD ' "$f" || fail "holder $f: $(head -3 "$f")"
	done
}
write_conf "$T/signer.conf" "[limits]
request_timeout = 600"
start_signer "$T/signer.conf"
l0=$(wc -l <"$LOG")
holders=()
for i in 1 2 3 4; do
	hold stranger 25 "$T/stranger.$i"; holders+=("$HOLDER")
	hold fmc-east 25 "$T/issuer.$i"; holders+=("$HOLDER")
done
held "$T"/stranger.* "$T"/issuer.*
t0=$(date +%s%N)
expect_rc 0 probe ops-admin --timeout 20 rpc GetStatus
assert_contains "$OUT" "^OK " "the admin's call beside 200 held streams"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc 0 probe auditor-1 --timeout 20 rpc GetStatus
ok "admin's GetStatus answered OK in $ms ms beside 100 held streams from an unlisted CN and 100 from an issuer; an auditor's too"
# The unlisted CN's streams were refused from their headers alone (each
# logged and audited); the issuer holds max_calls_per_client slots, the
# rest of its streams were refused as busy.
for f in "$T"/stranger.*; do
	for _ in $(seq 300); do [ "$(grep -c '^PERMISSION_DENIED' "$f")" -eq 25 ] && break; sleep 0.1; done
	assert_eq "$(grep -c '^PERMISSION_DENIED cn=stranger is not authorized for any role$' "$f")" 25 "unlisted CN's streams refused at their headers"
done
assert_eq "$(cat "$T"/issuer.* | grep -c '^RESOURCE_EXHAUSTED signer busy')" 84 "issuer's streams over max_calls_per_client"
newlog=$(log_since "$l0" "max_calls_per_client")
assert_eq "$(grep -cE "refused /sftca.v1.Signer/IssueBatch for cn=stranger \(ipv4:127\.0\.0\.1:[0-9]+\): cn=stranger is not authorized for any role" <<<"$newlog")" 100 "unlisted CN's refusals logged"
assert_eq "$(grep -cE "refused /sftca.v1.Signer/IssueBatch for cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\): 16 calls from cn=fmc-east in flight \(max_calls_per_client 16\)" <<<"$newlog")" 84 "per-client refusals logged"
ok "unlisted CN refused at its headers (100, logged); issuer held 16 slots (max_calls_per_client), 84 refused busy"
for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; rm -f "$T/pids/holder.$p"; done
stop_signer

# A body that never comes: the call ends at request_timeout, not at the
# client's deadline (or never, without one).
write_conf "$T/signer.conf" "[limits]
request_timeout = 2"
start_signer "$T/signer.conf"
l0=$(wc -l <"$LOG")
t0=$(date +%s)
expect_rc 1 probe fmc-east --timeout 60 hold /sftca.v1.Signer/IssueBatch 1
assert_eq "$(tail -1 <<<"$OUT")" "DEADLINE_EXCEEDED request not received within request_timeout" "header-only stream"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the stream lasted $(($(date +%s) - t0)) s"
assert_contains "$(log_since "$l0" "request_timeout")" "refused /sftca.v1.Signer/IssueBatch for cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\): request not received within request_timeout \(2 s\)" "logged"
expect_rc 0 probe ops-admin rpc GetStatus
ok "a header-only stream ends DEADLINE_EXCEEDED after request_timeout (2 s), logged with who asked"
stop_signer
