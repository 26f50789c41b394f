#!/usr/bin/env bash
# Hostile input, part 2: excess size and load. Each limit answers with
# RESOURCE_EXHAUSTED or INVALID_ARGUMENT, is logged, and leaves the signer
# alive, healthy and within bounded memory: a message over
# max_message_bytes, a flood of such messages, a batch over max_batch, a CSR
# over max_csr_bytes, more calls than max_calls, and a client over its
# IssueBatch rate.
. "$(dirname "$0")/lib.sh"

# Under AddressSanitizer (the asan_* runs) shadow memory and the 256 MiB
# quarantine come on top.
RSS_LIMIT_KB=$((200 * 1024))
[ -z "${ASAN_OPTIONS:-}" ] || RSS_LIMIT_KB=$((1024 * 1024))
PEER=11111111-2222-4333-8444-555555555555

make_token
make_pki
LOG=$T/signer.log AUDIT=$T/state/audit.log
# The token behind the fault shim: "C_Sign HOLD" keeps signatures in flight
# for as long as the max_calls check needs, however fast the machine.
SHIM=$BUILD/lib/p11shim.so
[ -r "$SHIM" ] || fail "p11shim.so not built"
export SFTCA_SHIM_MODULE=$MODULE SFTCA_SHIM_CONTROL=$T/shim.rules SFTCA_SHIM_LOG=$T/shim.log
: > "$SFTCA_SHIM_CONTROL"

# items N CSR: N IssueBatch items for one CSR file, distinct peer UUIDs.
items() {
	for i in $(seq "$1"); do printf 'items=peer_uuid=%08x-2222-4333-8444-555555555555,csr_der=@%s\n' "$i" "$2"; done
}
# memory_ok WHAT: the signer is alive, its peak RSS is under the limit, and it
# answers its health check.
memory_ok() {
	kill -0 "$SIGNER_PID" 2>/dev/null || fail "$1: the signer died"
	local hwm rss
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SIGNER_PID/status")
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SIGNER_PID/status")
	[ "$hwm" -lt "$RSS_LIMIT_KB" ] || fail "$1: peak RSS ${hwm} kB, over $RSS_LIMIT_KB kB"
	expect_rc 0 probe auditor-1 health
	assert_eq "$OUT" SERVING "$1: health"
	ok "$1: signer alive, SERVING, RSS ${rss} kB (peak ${hwm} kB, limit $RSS_LIMIT_KB kB)"
}
# parallel N AT_MS CMD...: N copies of CMD started together, each connecting
# first and calling at AT_MS; outputs in $T/par.I; waits for all.
parallel() {
	local n=$1 at=$2 pids=()
	shift 2
	rm -f "$T"/par.*
	for i in $(seq "$n"); do
		"$@" --at "$at" >"$T/par.$i" 2>&1 </dev/null &
		pids+=($!)
		echo "$!" > "$T/pids/par.$i"
	done
	for i in $(seq "$n"); do
		wait "${pids[$((i - 1))]}" || true
		rm -f "$T/pids/par.$i"
	done
}
now_ms() { date +%s%3N; }

# EC P-256 CSRs are small (about 200 bytes): a 200-item batch fits in a
# 64 KiB request, while the reply to it could not (the signer counts about
# 3 KiB per certificate).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/peer.key" \
	-subj "/CN=ignored" -outform DER -out "$T/peer.csr" 2>/dev/null
# A valid CSR over max_csr_bytes (1024): the same kind of key plus a long
# extension it is allowed to carry (the profile ignores CSR extensions).
openssl req -new -key "$T/peer.key" -subj "/CN=ignored" -outform DER -out "$T/big.csr" \
	-addext "nsComment=$(printf '%01200d' 0)" 2>/dev/null
big_csr=$(stat -c %s "$T/big.csr")
[ "$big_csr" -gt 1024 ] || fail "big CSR is only $big_csr bytes"
head -c 100000 /dev/urandom > "$T/100k.bin"
head -c 12000000 /dev/urandom > "$T/12m.bin"

# --- sizes and calls in flight ---------------------------------------------------
SESSIONS=1 MODULE=$SHIM write_conf "$T/signer.conf" "[limits]
max_message_bytes = 65536
max_batch = 200
max_csr_bytes = 1024
max_calls = 2"
start_signer "$T/signer.conf"
# RSA-4096: the largest certificates, for the reply-size estimate below.
rpc ops-admin CreateCA ca_id="$CA_ID" key_type=rsa:4096
assert_eq "$STATUS" OK "create CA: $OUT"
# issued: how many ledger rows CA_ID has (every page; 100 rows fit in 64 KiB).
issued() {
	local n=0 token=""
	while :; do
		rpc auditor-1 ListIssued ca_id="$CA_ID" page_size=100 ${token:+page_token=$token}
		[ "$STATUS" = OK ] || fail "ListIssued: $OUT"
		n=$((n + $(grep -c '^rows\.[0-9]*\.serial=' <<<"$OUT" || true)))
		token=$(sed -n 's/^next_page_token=//p' <<<"$OUT")
		[ -n "$token" ] || break
	done
	echo "$n"
}
# batch_call N: an IssueBatch of N items from fmc-east (sets OUT, STATUS);
# BEFORE and L0 are the ledger rows and log lines from just before it.
batch_call() {
	local batch
	BEFORE=$(issued) L0=$(wc -l <"$LOG")
	mapfile -t batch < <(items "$1" "$T/peer.csr")
	rpc fmc-east IssueBatch ca_id="$CA_ID" "${batch[@]}"
}

# A message over max_message_bytes: gRPC's own limit, before any handler.
# gRPC core 1.51 (message_size filter) fails the call with
# RESOURCE_EXHAUSTED "Received message larger than max (N vs. LIMIT)".
l0=$(wc -l <"$LOG") a0=$(wc -l <"$AUDIT")
rpc fmc-east IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/100k.bin"
assert_contains "$OUT" "^RESOURCE_EXHAUSTED Received message larger than max \(1000[0-9]{2} vs\. 65536\)$" "oversized message"
newlog=$(log_since "$l0" "not received")
assert_contains "$newlog" "request for /sftca.v1.Signer/IssueBatch from cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\) not received: larger than max_message_bytes \(65536\)" "oversized message logged"
assert_eq "$(wc -l <"$AUDIT")" "$a0" "no handler ran (nothing audited)"
ok "message over max_message_bytes: RESOURCE_EXHAUSTED from gRPC, logged with identity, no handler ran"

# A flood of much larger messages in parallel: gRPC 1.51 reads a whole
# message before comparing it with the limit, so only the signer's memory
# quota keeps this bounded. Every call fails (RESOURCE_EXHAUSTED; under
# memory pressure gRPC may also close a connection: UNAVAILABLE).
parallel 30 "$(($(now_ms) + 1500))" probe fmc-east --timeout 60 rpc IssueBatch ca_id="$CA_ID" \
	items=peer_uuid=$PEER,csr_der=@"$T/12m.bin"
for f in "$T"/par.*; do
	grep -qE "^(RESOURCE_EXHAUSTED|UNAVAILABLE) " "$f" || fail "flood call: $(cat "$f")"
done
echo "    flood outcomes: $(cut -d' ' -f1 "$T"/par.* | sort | uniq -c | tr -s ' \n' ' ')"
memory_ok "30 parallel 12 MB messages (limit 64 KiB)"

# A batch over max_batch: refused as a whole, naming the limit.
batch_call 201
assert_eq "$OUT" "INVALID_ARGUMENT batch of 201 items; at most 200 allowed (max_batch)" "batch over max_batch"
assert_contains "$(log_since "$L0" "max_batch")" "/sftca.v1.Signer/IssueBatch for cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\) answered INVALID_ARGUMENT: batch of 201 items; at most 200 allowed \(max_batch\)" "max_batch refusal logged"
assert_contains "$(tail -1 "$AUDIT")" '"event":"refused","identity":"cn=fmc-east".*"reason":"batch of 201 items; at most 200 allowed \(max_batch\)"' "max_batch refusal audited"
assert_eq "$(issued)" "$BEFORE" "nothing issued from a batch over max_batch"
ok "batch over max_batch: INVALID_ARGUMENT naming max_batch, logged and audited, nothing issued"

# A CSR over max_csr_bytes: that item refused, its batch-mates issued.
mkdir -p "$T/out"
expect_rc 0 probe fmc-east issue "$CA_ID" "$T/out" "$PEER=$T/peer.csr" \
	"22222222-2222-4333-8444-555555555555=$T/big.csr" "33333333-2222-4333-8444-555555555555=$T/peer.csr"
assert_contains "$OUT" "ITEM 0 OK [0-9A-F]+ " "first batch-mate issued"
assert_contains "$OUT" "ITEM 1 INVALID_ARGUMENT - CSR is $big_csr bytes, more than the 1024 allowed" "CSR over max_csr_bytes"
assert_contains "$OUT" "ITEM 2 OK [0-9A-F]+ " "second batch-mate issued"
[ -s "$T/out/0.pem" ] && [ ! -e "$T/out/1.pem" ] && [ -s "$T/out/2.pem" ] || fail "certificates written: $(ls "$T/out")"
assert_contains "$(tail -1 "$AUDIT")" "\"event\":\"issue\",\"identity\":\"cn=fmc-east\".*\"refused\":\[\{\"peer\":\"22222222-2222-4333-8444-555555555555\",\"code\":3,\"message\":\"CSR is $big_csr bytes" "refused item in the audit line"
ok "CSR of $big_csr bytes over max_csr_bytes: that item INVALID_ARGUMENT, batch-mates issued, audited"

# A batch whose reply may not fit in max_message_bytes: the request fits,
# its 100 certificates would not. The signer refuses it before signing
# anything (signed but undeliverable certificates would be on record yet
# lost to the caller) and says how many items do fit.
a0=$(wc -l <"$AUDIT")
batch_call 100
assert_contains "$OUT" "^INVALID_ARGUMENT the reply to 100 items could reach [0-9]+ bytes, more than max_message_bytes \(65536\); send at most [0-9]+ items per call$" "reply over max_message_bytes"
fit=$(sed -n 's/.*send at most \([0-9]*\) items per call$/\1/p' <<<"$OUT")
[ "$fit" -ge 1 ] && [ "$fit" -lt 100 ] || fail "items that fit: '$fit'"
assert_contains "$(log_since "$L0" "could reach")" "/sftca.v1.Signer/IssueBatch for cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\) answered INVALID_ARGUMENT: the reply to 100 items could reach" "refusal logged"
assert_contains "$(tail -n +"$((a0 + 1))" "$AUDIT")" '"event":"refused","identity":"cn=fmc-east".*"reason":"the reply to 100 items could reach' "refusal audited"
assert_eq "$(issued)" "$BEFORE" "nothing signed for a reply that could not be sent"
# The number it names does fit.
batch_call "$fit"
assert_eq "$STATUS" "OK" "a batch of the size the refusal named"
assert_eq "$(issued)" "$((BEFORE + fit))" "all $fit issued and delivered"
ok "batch whose reply could exceed max_message_bytes: refused before signing, naming the $fit items that fit; those go through"

# More calls than max_calls: 20 batches (as many items as fit) arrive
# together while the token holds every signature. Of max_calls 2, one slot
# is kept for admins: the one admitted stays in flight until the other 19
# have been refused, then the token lets go.
before=$(issued)
l0=$(wc -l <"$LOG")
busy_logged() { [ "$(tail -n +"$((l0 + 1))" "$LOG" | grep -c 'refused /sftca.v1.Signer/IssueBatch .*other calls in flight (max_calls 2)')" -ge "$1" ]; }
echo 'C_Sign HOLD' > "$SFTCA_SHIM_CONTROL"
(trap ': > "$SFTCA_SHIM_CONTROL"' EXIT; wait_until 120 "19 calls refused as busy" busy_logged 19) &
echo "$!" > "$T/pids/release"
mapfile -t batch < <(items "$fit" "$T/peer.csr")
parallel 20 "$(($(now_ms) + 2500))" probe fmc-east --timeout 150 rpc IssueBatch ca_id="$CA_ID" "${batch[@]}"
wait "$(cat "$T/pids/release")"
rm -f "$T/pids/release"
n_ok=0 n_busy=0
for f in "$T"/par.*; do
	case $(head -1 "$f") in
	"OK ")
		n_ok=$((n_ok + 1))
		assert_eq "$(grep -c '^results\.[0-9]*\.code=0$' "$f")" "$fit" "every item of an admitted batch issued"
		;;
	"RESOURCE_EXHAUSTED signer busy: too many calls in flight") n_busy=$((n_busy + 1)) ;;
	*) fail "call over max_calls: $(head -3 "$f")" ;;
	esac
done
[ "$n_ok" -eq 1 ] && [ "$n_busy" -eq 19 ] || fail "20 calls with max_calls 2 (1 kept for admins): $n_ok OK, $n_busy refused"
assert_eq "$(issued)" "$((before + fit * n_ok))" "ledger holds exactly the admitted batches"
newlog=$(log_since "$l0" "other calls in flight")
assert_eq "$(grep -cE "refused /sftca.v1.Signer/IssueBatch for cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\): [0-9]+ other calls in flight \(max_calls 2\)" <<<"$newlog")" \
	"$n_busy" "one log line per call refused as busy"
ok "20 calls with max_calls 2: $n_ok admitted (all $fit items each issued), $n_busy RESOURCE_EXHAUSTED 'too many calls in flight', each logged with identity"

# A call waiting for a token session gives up at its own deadline, not the
# token's 30 s default: the deadline travels with the call down to the
# signature. One session, held in C_Sign by a batch; an admin's GetCRL
# (signed in the token on the handler thread) with a 3 s deadline waits
# behind it.
# hold_session: a batch whose signature the token holds (the only session
# busy); release_session lets it go and checks it completes.
hold_session() {
	: > "$SFTCA_SHIM_LOG"
	echo 'C_Sign HOLD' > "$SFTCA_SHIM_CONTROL"
	probe fmc-east --timeout 150 rpc IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr" \
		>"$T/holder.out" 2>&1 </dev/null &
	echo "$!" > "$T/pids/holder"
	wait_until 60 "the batch's signature held in the token" held
}
release_session() {
	: > "$SFTCA_SHIM_CONTROL"
	wait "$(cat "$T/pids/holder")" || true
	rm -f "$T/pids/holder"
	assert_contains "$(cat "$T/holder.out")" "^OK " "the held batch completes once the token lets go"
}
held() { grep -q '^C_Sign held$' "$SFTCA_SHIM_LOG"; }
hold_session
a0=$(wc -l <"$AUDIT") t0=$(now_ms)
set +e
OUT=$(probe ops-admin --timeout 3 rpc GetCRL ca_id="$CA_ID" 2>&1 </dev/null)
set -e
assert_contains "$OUT" "^DEADLINE_EXCEEDED" "the waiting call's client gives up at 3 s"
# Still held: the signer's answer can only come from the call's deadline.
gave_up() { tail -n +"$((a0 + 1))" "$AUDIT" | grep -q '"event":"crl.sign".*"message":"CRL for CA [^"]*: deadline exceeded"'; }
wait_until 60 "the signer giving up on a token session" gave_up
waited=$(($(now_ms) - t0))
[ "$waited" -lt 20000 ] || fail "the signer gave up on a token session after $waited ms: not at the call's 3 s deadline"
release_session
ok "a GetCRL waiting for the only session ends at its 3 s deadline (audited after $waited ms, not the 30 s default); the held batch completes"

# The same for an admin's CA operations: every token wait in them (a session
# for key generation, import, storing, lookups, the CA's own signature) ends
# at the call's deadline. sftca ca renew (the CA signature) and ca create
# (key generation) with --timeout 3 while the only session is held: each is
# audited as given up within the deadline's reach, not after the 30 s
# default, and changes nothing.
hold_session
rpc ops-admin GetCA ca_id="$CA_ID"
gens_before=$(grep -c '^ca\.generations\.[0-9]*\.generation=' <<<"$OUT" || true)
[ "$gens_before" -ge 1 ] || fail "GetCA lists no generation: $OUT"
NEW_CA=99999999-2222-4333-8444-555555555555
# admin_gives_up ACTION EVENT CA ARGS...: the CLI's ca ACTION with a 3 s
# deadline; sets WAITED to the ms until the signer audited EVENT as failed.
admin_gives_up() {
	local action=$1 event=$2 ca=$3 a0 t0
	shift 3
	a0=$(wc -l <"$AUDIT") t0=$(now_ms)
	set +e
	OUT=$(as ops-admin --timeout 3 ca "$action" --ca "$ca" "$@" 2>&1 </dev/null)
	set -e
	assert_contains "$OUT" "DEADLINE_EXCEEDED|deadline" "ca $action: the client gives up at 3 s"
	line() { tail -n +"$((a0 + 1))" "$AUDIT" | grep "\"event\":\"$event\",\"identity\":\"cn=ops-admin\",\"ca\":\"$ca\",\"result\":\"error\""; }
	wait_until 60 "the signer giving up on $event" line
	WAITED=$(($(now_ms) - t0))
	kill -0 "$(cat "$T/pids/holder")" 2>/dev/null || fail "$event: the held batch ended early"
	[ "$WAITED" -lt 20000 ] || fail "the signer gave up $event after $WAITED ms: not at the call's 3 s deadline"
	assert_contains "$(line)" '"message":"deadline exceeded"' "$event audited as past its deadline"
}
admin_gives_up renew ca.renew "$CA_ID"
renew_waited=$WAITED
admin_gives_up create ca.create "$NEW_CA" --key-type ec:p256
create_waited=$WAITED
release_session
rpc ops-admin GetCA ca_id="$CA_ID"
assert_eq "$(grep -c '^ca\.generations\.[0-9]*\.generation=' <<<"$OUT" || true)" "$gens_before" "no generation from the renewal that gave up"
rpc ops-admin GetCA ca_id="$NEW_CA"
assert_eq "$STATUS" NOT_FOUND "no CA from the creation that gave up: $OUT"
ok "admin ca renew and ca create waiting for the only session end at their 3 s deadline (audited after $renew_waited and $create_waited ms, not the 30 s default), change nothing; the held batch completes"
rpc fmc-east IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"
assert_eq "$STATUS" OK "a call after the burst: $OUT"
memory_ok "after sizes and load"
stop_signer

# --- the per-client IssueBatch rate ------------------------------------------------
# A refill every 5 s: the burst of 6 below is over long before one comes,
# however slow the machine (it would need 20 s for two).
write_conf "$T/signer-rate.conf" "[limits]
issue_rate = 0.2
issue_burst = 2"
start_signer "$T/signer-rate.conf"
l0=$(wc -l <"$LOG") a0=$(grep -c '"event":"refused"' "$AUDIT" || true)
t0=$(now_ms)
set +e
OUT=$(probe fmc-east --repeat 6 rpc IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr" 2>&1)
set -e
elapsed_ms=$(($(now_ms) - t0))
# Status lines start with the status name; reply lines are field=value.
statuses=$(grep -E '^[A-Z][A-Z_]* ' <<<"$OUT" | cut -d' ' -f1 | tr '\n' ' ')
assert_eq "$(wc -w <<<"$statuses")" 6 "six calls answered: $OUT"
n_ok=$(grep -c '^OK ' <<<"$OUT" || true)
n_rate=$(grep -c "^RESOURCE_EXHAUSTED cn=fmc-east is over its IssueBatch rate (0.20/s); slow down$" <<<"$OUT" || true)
assert_eq "$((n_ok + n_rate))" 6 "every call OK or over the rate ($statuses)"
assert_contains "$statuses" "^OK OK " "the burst of 2 is admitted"
# The bucket refills at 1 call per 5 s while the burst runs.
[ "$n_ok" -le $((2 + elapsed_ms / 5000)) ] || fail "$n_ok calls admitted in $elapsed_ms ms with rate 0.2/s, burst 2"
[ "$n_rate" -ge 1 ] || fail "no call refused in a burst of 6 ($elapsed_ms ms)"
newlog=$(log_since "$l0" "over its IssueBatch rate")
assert_eq "$(grep -cE "/sftca.v1.Signer/IssueBatch for cn=fmc-east \(ipv4:127\.0\.0\.1:[0-9]+\) answered RESOURCE_EXHAUSTED: cn=fmc-east is over its IssueBatch rate" <<<"$newlog")" "$n_rate" "each rate refusal logged"
assert_eq "$(($(grep -c '"event":"refused","identity":"cn=fmc-east"' "$AUDIT") - a0))" "$n_rate" "each rate refusal audited"
ok "burst of 6 IssueBatch from one CN in $elapsed_ms ms: $statuses(rate 0.2/s, burst 2), each refusal logged and audited"

rpc ops-admin IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"
assert_eq "$STATUS" OK "another CN right after: $OUT"
rpc ops-admin IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"
assert_eq "$STATUS" OK "another CN, its second call: $OUT"
ok "another CN is unaffected (its own burst of 2)"
# Until the bucket refills, each try is refused (and takes nothing from it).
refilled() { rpc fmc-east IssueBatch ca_id="$CA_ID" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"; [ "$STATUS" = OK ]; }
t0=$(now_ms)
wait_until 60 "the limited CN admitted again" refilled
ok "after $(($(now_ms) - t0)) ms the limited CN may issue again"
memory_ok "after the rate limit"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
