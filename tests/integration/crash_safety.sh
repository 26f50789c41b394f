#!/usr/bin/env bash
# Issue 6, crash safety: kill -9 of the signer at random moments during
# large batches (CRASH_ROUNDS rounds, default 20; tests/soak/crash-soak.sh
# runs 200), kill -9 of the client at each step of a file replacement, and a
# ledger on a full disk. After each: the ledger passes its integrity check,
# every file pair is entirely old or entirely new, and a rerun finishes.
. "$(dirname "$0")/lib.sh"
need sqlite3 unshare nsenter
ROUNDS=${CRASH_ROUNDS:-20}

make_token
make_pki
export SFTCA_SHIM_MODULE=$MODULE SFTCA_SHIM_CONTROL=$T/shim.rules SFTCA_SHIM_LOG=$T/shim.log SFTCA_SHIM_LOG_SIGN=1
: > "$SFTCA_SHIM_CONTROL"
MODULE=$BUILD/lib/p11shim.so write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID"
FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 1500 --key-pool 8 >/dev/null
stop_signer
db=$T/state/ledger.db

# --- kill -9 of the signer, at random moments -----------------------------------
abandoned_total=0 mid_batch=0
rows() { sqlite3 "$db" "PRAGMA busy_timeout=5000; SELECT COUNT(*) FROM certificates" | tail -1; }
rows_above() { [ "$(rows)" -gt "$1" ]; }
for round in $(seq "$ROUNDS"); do
	start_signer "$T/signer.conf"
	before=$(rows)
	as fmc-east issue --ca "$CA_ID" --root "$FMC" --force --batch 500 --retries 0 >"$T/round.out" 2>&1 &
	client=$!
	# Kill inside the run: once the first batch has reserved its rows, at a
	# random moment within the next second (three batches of 500, each
	# signing for 0.3 s or more, then the client's writes).
	wait_until 120 "round $round: the first batch reserved in the ledger" rows_above "$before"
	sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
	kill -9 "$SIGNER_PID"
	wait "$SIGNER_PID" 2>/dev/null || true
	rm -f "$T/pids/signer"
	wait "$client" 2>/dev/null || true
	expect_rc 0 "$SIGNER" --config "$T/signer.conf" check-ledger
	assert_contains "$OUT" "intact \(0 problems" "ledger integrity after kill -9 round $round"
	n=$(sed -n 's/.*; \([0-9]*\) pending rows marked abandoned.*/\1/p' <<<"$OUT")
	abandoned_total=$((abandoned_total + n))
	[ "$n" -gt 0 ] && mid_batch=$((mid_batch + 1))
done
# Proof the kills landed where it hurts: a batch reserved but not recorded.
[ "$mid_batch" -ge $(( (ROUNDS + 3) / 4 )) ] ||
	fail "only $mid_batch of $ROUNDS kills landed inside a batch (rows left pending): the test proves too little"
start_signer "$T/signer.conf"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC"
assert_contains "$OUT" ", 0 failed" "the rerun completes every peer"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$FMC"
assert_eq "$(sqlite3 "$db" "SELECT COUNT(*) FROM certificates WHERE state='pending'")" "0" "nothing pending"
assert_eq "$(sqlite3 "$db" "SELECT COUNT(*) FROM (SELECT serial FROM certificates GROUP BY serial HAVING COUNT(*) > 1)")" "0" "no serial twice"
[ "$(sqlite3 "$db" "SELECT COUNT(*) FROM certificates WHERE state='abandoned'")" -eq "$abandoned_total" ] ||
	fail "abandoned rows do not add up to what the rounds left pending"
ok "$ROUNDS rounds of kill -9 at random moments, $mid_batch of them inside a batch: ledger intact each time ($abandoned_total serials abandoned, none reused), rerun completed all 1500 peers"

# --- kill -9 of the client at each step of a file replacement -------------------
pair_ok() { # every pair directory under $1: no files, or a key and the cert for it
	local bad=0 d
	for d in "$1"/var/sf/peers/*/certs_pushed; do
		if [ -e "$d/sftunnel-cert.pem" ] || [ -e "$d/sftunnel-key.pem" ]; then
			[ "$(openssl x509 -in "$d/sftunnel-cert.pem" -noout -pubkey 2>/dev/null)" = \
			  "$(openssl pkey -in "$d/sftunnel-key.pem" -pubout 2>/dev/null)" ] || { bad=1; echo "mixed pair: $d" >&2; }
		fi
	done
	return $bad
}
for step in atomic.write atomic.fsync atomic.rename atomic.dirsync; do
	F=$T/pairs-$step
	"$SRC/scripts/make-fmc-tree.sh" --root "$F" --fmc-uuid "$CA_ID" --peers 20 --no-keys >/dev/null
	set +e
	SFTCA_FAILPOINTS="$step=kill@9" as fmc-east issue --ca "$CA_ID" --root "$F" --jobs 1 >"$T/kill.out" 2>&1
	rc=$?
	set -e
	[ "$rc" -eq 137 ] || fail "client was not killed at $step (exit $rc)"
	pair_ok "$F" || fail "a key and certificate of different ages after kill -9 at $step"
	done_before=$(find "$F"/var/sf/peers -path "*/certs_pushed/sftunnel-cert.pem" | wc -l)
	expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$F"
	pair_ok "$F" || fail "mixed pair after the rerun"
	expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$F"
	ok "kill -9 of the client at $step (new key + cert): $done_before of 20 pairs were done, all pairs whole, rerun finished"
done
# Certificate-only replacement (key kept) after a rotation.
F=$T/certs
"$SRC/scripts/make-fmc-tree.sh" --root "$F" --fmc-uuid "$CA_ID" --peers 20 >/dev/null
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$F"
expect_rc 0 as ops-admin ca rotate --ca "$CA_ID"
for step in atomic.write atomic.rename atomic.dirsync; do
	set +e
	SFTCA_FAILPOINTS="$step=kill@5" as fmc-east issue --ca "$CA_ID" --root "$F" --jobs 1 >"$T/kill.out" 2>&1
	rc=$?
	set -e
	[ "$rc" -eq 137 ] || fail "client was not killed at $step (exit $rc)"
	pair_ok "$F" || fail "certificate not matching its key after kill -9 at $step"
	for c in "$F"/var/sf/peers/*/certs_pushed/sftunnel-cert.pem; do
		openssl x509 -in "$c" -noout >/dev/null 2>&1 || fail "half-written certificate $c"
	done
done
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$F"
expect_rc 0 as auditor-1 verify --ca "$CA_ID" --root "$F"
ok "kill -9 during certificate-only replacements: every file whole and matching its key; rerun finished"

# --- the ledger's disk is full --------------------------------------------------
stop_signer
SMALL=$T/state-small
mkdir -p "$SMALL"
sed "s|^state_dir = .*|state_dir = $SMALL|" "$T/signer.conf" > "$T/small.conf"
# The signer gets a private 8 MiB tmpfs as its state directory (a fresh
# ledger: the CA for this part is created in it).
"$(command -v unshare)" -m --propagation private sh -c \
	'mount -t tmpfs -o size=8m tmpfs "$1" && shift && exec "$@"' _ \
	"$SMALL" "$SIGNER" --config "$T/small.conf" --allow-root >>"$T/small.log" 2>&1 &
SIGNER_PID=$!
echo "$SIGNER_PID" > "$T/pids/small"
for _ in $(seq 100); do grep -q "serving (" "$T/small.log" && break; sleep 0.1; done
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$T/small.log" | tail -1 | cut -d: -f2 || true)
[ -n "$PORT" ] || fail "signer on a small disk did not start: $(tail -3 "$T/small.log")"
CA2=6bf1143a-8a2e-11ef-92d8-fd927e807d77
expect_rc 0 as ops-admin ca create --ca "$CA2"
# Signatures by any key but the audit key (the shim logs each C_Sign with its
# key's label). The audit key signs a checkpoint within a second of every
# record, the refusal's own record included, whenever the count is taken:
# those say nothing about certificates.
not_audit_signs() { grep '^C_Sign ' "$SFTCA_SHIM_LOG" | grep -vc ' sftca/audit$' || true; }
nsenter -t "$SIGNER_PID" -m -- sh -c "dd if=/dev/zero of=$SMALL/fill bs=4k >/dev/null 2>&1; true"
signs_before=$(not_audit_signs)
grep -q "^C_Sign 0 sftca/$CA2/" "$SFTCA_SHIM_LOG" ||
	fail "no signature by the key of CA $CA2 in the shim log (ca create signs with it): the count below would prove nothing"
"$SRC/scripts/make-fmc-tree.sh" --root "$T/full" --fmc-uuid "$CA2" --peers 30 >/dev/null
expect_rc 1 as ops-admin issue --ca "$CA2" --root "$T/full" --retries 0
assert_contains "$OUT" "ledger write failed.*nothing was signed" "a clear error"
assert_eq "$(not_audit_signs)" "$signs_before" "the token signed nothing with a CA key"
for d in "$T"/full/var/sf/peers/*/certs_pushed; do [ ! -e "$d/sftunnel-cert.pem" ] || fail "a certificate was written"; done
nsenter -t "$SIGNER_PID" -m -- rm -f "$SMALL/fill"
expect_rc 0 as ops-admin issue --ca "$CA2" --root "$T/full"
assert_contains "$OUT" "30 issued" "issuing works once there is room again"
kill "$SIGNER_PID"; wait "$SIGNER_PID" || true; rm -f "$T/pids/small"
ok "ledger disk full: the batch fails with a clear error, the token signs nothing, no file written; room again: issued"
