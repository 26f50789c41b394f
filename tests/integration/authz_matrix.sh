#!/usr/bin/env bash
# Hostile input, part 1: who may call what. Every caller kind against every
# RPC, each cell asserted exactly: the TLS handshake refuses callers without
# a verified certificate before any handler runs; a verified caller without
# the role gets PERMISSION_DENIED, logged with its identity and written to
# the audit log; a refused call changes nothing. Then the unix socket's role.
. "$(dirname "$0")/lib.sh"

make_token
make_pki
make_pki "$T/other" ops-admin          # same CN, another CA
make_expired_cert expired ops-admin    # right CA, CN of an admin, expired
# Every refusal its own audit record here (coalescing is audit_flood.sh's).
write_conf "$T/signer.conf" "[audit]
coalesce_seconds = 0"
start_signer "$T/signer.conf"

CA_X=$CA_ID                                  # fmc-east may issue for this one only
CA_Y=6bf1143a-8a2e-11ef-92d8-fd927e807d77
CA_NEW=0e6f4f5c-9a4b-11ef-8d2b-3b1f5c2e7a10  # created by the admin's CreateCA cell
PEER=11111111-2222-4333-8444-555555555555
LOG=$T/signer.log AUDIT=$T/state/audit.log

# call WHO METHOD [FIELD=VALUE...]: rpcprobe rpc as one kind of caller; sets
# OUT and STATUS (the first word of the reply).
call() {
	local who=$1 creds
	shift
	case $who in
	none) creds=() ;;
	otherca) creds=(--tls-cert "$T/other/ops-admin.crt" --tls-key "$T/other/ops-admin.key") ;;
	unix) creds=() ;;
	*) creds=(--tls-cert "$T/pki/$who.crt" --tls-key "$T/pki/$who.key") ;;
	esac
	local target=(--signer "127.0.0.1:$PORT" --tls-ca "$T/pki/service-ca.crt")
	[ "$who" = unix ] && target=(--signer "unix:$T/run/signer.sock")
	set +e
	OUT=$("$PROBE" "${target[@]}" "${creds[@]}" rpc "$@" 2>&1 </dev/null)
	set -e
	STATUS=${OUT%%[ $'\n']*}
}

# --- fixtures: CAs X and Y, a CSR, an issued serial ---------------------------
call ops-admin CreateCA ca_id="$CA_X"
assert_eq "$STATUS" OK "create CA X: $OUT"
call ops-admin CreateCA ca_id="$CA_Y"
assert_eq "$STATUS" OK "create CA Y: $OUT"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/peer.key" \
	-subj "/CN=ignored" -outform DER -out "$T/peer.csr" 2>/dev/null
call fmc-east IssueBatch ca_id="$CA_X" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"
assert_eq "$STATUS" OK "fixture issuance: $OUT"
SERIAL=$(sed -n 's/^results\.0\.serial=//p' <<<"$OUT")
[ -n "$SERIAL" ] || fail "fixture issuance gave no serial: $OUT"
ok "fixtures: CA X $CA_X, CA Y $CA_Y, serial $SERIAL issued for X"

# The request each column sends: well-formed, so that only the caller decides.
declare -A REQ=(
	[GetStatus]=""
	[CreateCA]="ca_id=$CA_NEW"
	[RenewCA]="ca_id=$CA_Y"
	[RotateCA]="ca_id=$CA_Y"
	[FinalizeCA]="ca_id=$CA_X"
	[GetCA]="ca_id=$CA_X"
	[IssueBatch:X]="ca_id=$CA_X items=peer_uuid=$PEER,csr_der=@$T/peer.csr"
	[IssueBatch:Y]="ca_id=$CA_Y items=peer_uuid=$PEER,csr_der=@$T/peer.csr"
	[Revoke]="ca_id=$CA_X serial=$SERIAL reason=keyCompromise"
	[GetCRL]="ca_id=$CA_X"
	[ListIssued]="ca_id=$CA_X"
	[SetCustody]="ca_id=$CA_Y custody=CUSTODY_SHARED"
	[Health/Check]=""
)
COLS=(GetStatus CreateCA RenewCA RotateCA FinalizeCA GetCA IssueBatch:X IssueBatch:Y Revoke GetCRL ListIssued SetCustody Health/Check)
# The specification, one row per caller. UN = UNAVAILABLE (TLS handshake
# refused), PD = PERMISSION_DENIED, FP = FAILED_PRECONDITION (allowed, but X
# has nothing to finalize). The admin row runs last: its CreateCA, RenewCA,
# RotateCA and Revoke really change things.
MATRIX="
#           Status Create Renew Rotate Final GetCA IssueX IssueY Revoke GetCRL List Custody Health
none        UN     UN     UN    UN     UN    UN    UN     UN     UN     UN     UN   UN      UN
otherca     UN     UN     UN    UN     UN    UN    UN     UN     UN     UN     UN   UN      UN
expired     UN     UN     UN    UN     UN    UN    UN     UN     UN     UN     UN   UN      UN
stranger    PD     PD     PD    PD     PD    PD    PD     PD     PD     PD     PD   PD      OK
fmc-east    OK     PD     PD    PD     PD    OK    OK     PD     PD     OK     OK   PD      OK
auditor-1   OK     PD     PD    PD     PD    OK    PD     PD     PD     OK     OK   PD      OK
ops-admin   OK     OK     OK    OK     FP    OK    OK     OK     OK     OK     OK   OK      OK
"
declare -A CODE=([UN]=UNAVAILABLE [PD]=PERMISSION_DENIED [FP]=FAILED_PRECONDITION [OK]=OK)

# check_cell WHO COLUMN WANT: one call, its status, and what it left in the
# signer log and the audit log.
check_cell() {
	local who=$1 col=$2 want=$3 method=${2%%:*} log0 audit0 newlog newaudit path
	log0=$(wc -l <"$LOG") audit0=$(wc -l <"$AUDIT")
	# shellcheck disable=SC2086 # REQ holds FIELD=VALUE words without spaces
	call "$who" "$method" ${REQ[$col]}
	[ "$STATUS" = "$want" ] || fail "$who x $col: expected $want, got: $OUT"
	newlog=$(tail -n +"$((log0 + 1))" "$LOG") newaudit=$(tail -n +"$((audit0 + 1))" "$AUDIT")
	path=/sftca.v1.Signer/$method
	[ "$method" = Health/Check ] && path=/grpc.health.v1.Health/Check
	local cn=cn=$who
	[ "$who" = unix ] && cn=unix
	case $want in
	UNAVAILABLE)
		# Refused in the handshake (gRPC logs why, maybe a moment later);
		# nothing reached a handler or the audit log.
		local why="certificate verify failed"
		[ "$who" = none ] && why="peer did not return a certificate"
		for _ in $(seq 30); do
			grep -q "Handshake failed" <<<"$newlog" && break
			sleep 0.1
			newlog=$(tail -n +"$((log0 + 1))" "$LOG")
		done
		assert_contains "$newlog" "Handshake failed .*$why" "$who x $col: refused in the TLS handshake"
		assert_not_contains "$newlog" "$path|refused|cn=" "$who x $col: a handshake-refused call left a trace of a handler"
		[ -z "$newaudit" ] || fail "$who x $col: a handshake-refused call was audited: $newaudit"
		;;
	PERMISSION_DENIED)
		assert_contains "$newlog" "refused $path for $cn \((ipv4:127\.0\.0\.1:[0-9]+|unix:[^)]*)\)" "$who x $col: refusal logged with identity and peer"
		[ "$(grep -c . <<<"$newaudit")" -eq 1 ] || fail "$who x $col: want exactly one audit line: $newaudit"
		assert_contains "$newaudit" "\"event\":\"refused\",\"identity\":\"$cn\".*\"result\":\"refused\".*\"method\":\"$path\"" "$who x $col: refusal audited"
		;;
	*)
		assert_not_contains "$newlog" "refused $path" "$who x $col: an allowed call was logged as refused"
		assert_not_contains "$newaudit" "\"event\":\"refused\"" "$who x $col: an allowed call was audited as refused"
		;;
	esac
}

# run_row WHO CODES...: every column for one caller.
run_row() {
	local who=$1 line=""
	shift
	for col in "${COLS[@]}"; do
		local want=${CODE[${1:?row too short}]}
		shift
		check_cell "$who" "$col" "$want"
		line+=" $col=$want"
	done
	[ $# -eq 0 ] || fail "row $who has more cells than columns"
	ok "$who:$line"
}

refused_before=$(grep -c '"event":"refused"' "$AUDIT" || true)
pd_cells=0
while read -r who cells; do
	[ -z "$who" ] || [ "${who:0:1}" = "#" ] && continue
	# shellcheck disable=SC2086
	set -- $cells
	if [ "$who" = ops-admin ]; then
		# Before the admin acts: no refused call changed anything.
		call auditor-1 GetCA ca_id="$CA_NEW"
		assert_eq "$STATUS" NOT_FOUND "CA $CA_NEW created by a refused call: $OUT"
		call auditor-1 GetStatus
		[ "$(grep -c "^cas\.[0-9]*\.generations\.[0-9]*\.generation=" <<<"$OUT")" -eq 2 ] ||
			fail "a refused RenewCA/RotateCA added a generation: $OUT"
		call auditor-1 GetCA ca_id="$CA_Y"
		assert_contains "$OUT" "ca\.custody=CUSTODY_EXCLUSIVE" "CA Y (created) exclusive, not changed by a refused SetCustody"
		call auditor-1 ListIssued ca_id="$CA_X"
		assert_eq "$(grep -c '^rows\.[0-9]*\.serial=' <<<"$OUT")" 2 "only the fixture and fmc-east's issuance in the ledger"
		assert_contains "$OUT" "rows\.0\.serial=$SERIAL" "fixture serial listed"
		assert_contains "$OUT" "rows\.0\.state=issued" "fixture serial not revoked by a refused Revoke"
		ok "refused calls changed nothing: no CA created, no generation added, nothing issued for Y, nothing revoked"
	fi
	pd_cells=$((pd_cells + $(awk '{ for (i = 1; i <= NF; i++) n += $i == "PD" } END { print n + 0 }' <<<"$cells")))
	run_row "$who" "$@"
done <<<"$MATRIX"

refused_after=$(grep -c '"event":"refused"' "$AUDIT")
assert_eq "$((refused_after - refused_before))" "$pd_cells" "one audit line per PERMISSION_DENIED cell"
ok "$pd_cells refusals, each logged with identity and peer and audited once"

# The admin's calls did what they say.
call auditor-1 ListIssued ca_id="$CA_X" state=revoked
assert_contains "$OUT" "rows\.0\.serial=$SERIAL" "admin's Revoke took effect"
assert_contains "$OUT" "rows\.0\.revocation_reason=keyCompromise" "revocation reason"
call auditor-1 GetCA ca_id="$CA_Y"
assert_contains "$OUT" "ca\.generations\.0\.state=GENERATION_RETIRED" "renewed-away generation 1 retired"
assert_contains "$OUT" "ca\.generations\.1\.state=GENERATION_RETIRING" "rotated-away generation 2 retiring"
assert_contains "$OUT" "ca\.generations\.2\.state=GENERATION_ACTIVE" "generation 3 active"
assert_contains "$OUT" "ca\.custody=CUSTODY_SHARED" "admin's SetCustody took effect"
call auditor-1 GetCA ca_id="$CA_NEW"
assert_eq "$STATUS" OK "admin's CreateCA took effect: $OUT"
call ops-admin FinalizeCA ca_id="$CA_X"
assert_contains "$OUT" "^FAILED_PRECONDITION .*no retiring generation" "FinalizeCA with nothing to finalize"
call ops-admin RenewCA ca_id=a5f3c1de-9a4b-11ef-8d2b-3b1f5c2e7a10
assert_contains "$OUT" "^NOT_FOUND no CA a5f3c1de" "RenewCA of an unknown CA"
ok "admin: allowed calls took effect; business refusals keep their own codes (FAILED_PRECONDITION, NOT_FOUND)"

# The details say what was missing.
call auditor-1 CreateCA ca_id="$CA_NEW"
assert_contains "$OUT" "needs the admin role; cn=auditor-1 has auditor" "auditor refusal message"
call stranger GetStatus
assert_contains "$OUT" "cn=stranger is not authorized for any role" "unknown CN refusal message"
call fmc-east IssueBatch ca_id="$CA_Y" items=peer_uuid=$PEER,csr_der=@"$T/peer.csr"
assert_contains "$OUT" "cn=fmc-east may not issue for CA $CA_Y" "issuer limited to its CA"
ok "refusal details name the role needed, the caller's role and the CA"

# --- the unix socket: its role is unix_role ------------------------------------
call unix GetStatus
assert_contains "$OUT" "identity=unix" "unix caller identity"
assert_contains "$OUT" "role=admin" "default unix_role is admin"
stop_signer
write_conf "$T/signer-unix.conf" "unix_role = auditor
[audit]
coalesce_seconds = 0"
start_signer "$T/signer-unix.conf"
call unix GetStatus
assert_contains "$OUT" "role=auditor" "unix_role = auditor applied"
run_row unix OK PD PD PD PD OK PD PD PD OK OK PD OK
call auditor-1 ListIssued ca_id="$CA_X" state=issued
assert_eq "$(grep -c '^rows\.[0-9]*\.serial=' <<<"$OUT")" 2 "nothing issued over the auditor socket"
stop_signer
expect_rc 0 "$SIGNER" verify-audit "$AUDIT"
ok "audit chain intact after $(grep -c . "$AUDIT") records"
