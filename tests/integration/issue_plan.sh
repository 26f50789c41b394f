#!/usr/bin/env bash
# sftca issue --dry-run, --renew-days and --json (issue 11, "Missing
# tests"): what a dry run does not write, which peers --renew-days picks,
# and the JSON document, parsed.
. "$(dirname "$0")/lib.sh"
need python3 sqlite3

make_token
make_pki
write_conf "$T/signer.conf"
start_signer "$T/signer.conf"
expect_rc 0 as ops-admin ca create --ca "$CA_ID"

FMC=$T/fmc
"$SRC/scripts/make-fmc-tree.sh" --root "$FMC" --fmc-uuid "$CA_ID" --peers 6 --legacy-ca "$T/legacy" >/dev/null
mapfile -t P < <(ls "$FMC/var/sf/peers")
tree_state() { find "$FMC" -printf '%p %m %s\n' -type f -exec sha256sum {} + | sort; }
rows() { sqlite3 "$T/state/ledger.db" "SELECT COUNT(*) FROM certificates"; }
# results JSON: "uuid result" per peer, sorted, after checking the summary.
results() {
	python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
s = d["summary"]
assert d["dry_run"] == (sys.argv[1] == "dry"), d["dry_run"]
assert len(d["peers"]) == s["issued"] + s["current"] + s["planned"] + s["failed"], s
for p in sorted(d["peers"], key=lambda p: p["uuid"]):
    print(p["uuid"], p["result"])
' "$1"
}

# --dry-run on a tree of legacy leaves: every peer planned, nothing written.
before=$(tree_state) rows_before=$(rows)
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --dry-run --json
got=$(results dry <<<"$OUT")
assert_eq "$got" "$(for p in "${P[@]}"; do echo "$p would-recertify"; done)" "dry run plans every legacy leaf"
assert_eq "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["summary"]["planned"], d["crl_refreshed"])' <<<"$OUT")" "6 False" "summary"
assert_eq "$(tree_state)" "$before" "dry run wrote nothing: no certificate, key, backup, bundle, CRL or lock"
[ ! -e "$FMC/etc/sf/ca_root/crl.pem" ] && [ ! -e "$FMC/etc/sf/sftca.lock" ] || fail "dry run left a CRL or lock"
assert_eq "$(rows)" "$rows_before" "dry run added no ledger row"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --dry-run
assert_contains "$OUT" "^${P[0]}  would re-certify its key$" "text line"
assert_contains "$OUT" "^dry run: 6 would be issued, 0 current, 0 failed$" "text summary"
ok "issue --dry-run: every legacy peer planned, no file, mode, CRL, lock or ledger row changed"

# A real run, then two peers with 30 days only. The tree's cacert.pem is the
# legacy CA, which this signer did not import: only --force replaces it
# (custody.sh tests the refusal).
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --json --force
assert_eq "$(results real <<<"$OUT")" "$(for p in "${P[@]}"; do echo "$p issued"; done)" "all issued"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "${P[1]}" --peer "${P[4]}" --force --days 30
assert_contains "$OUT" "^2 issued" "two short certificates"
short=$(printf '%s\n' "${P[1]}" "${P[4]}" | sort)
want() { for p in "${P[@]}"; do if grep -qx "$p" <<<"$short"; then echo "$p $1"; else echo "$p current"; fi; done; }

# --renew-days picks exactly the peers with that few days left.
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --dry-run --json --renew-days 20
assert_eq "$(results dry <<<"$OUT")" "$(for p in "${P[@]}"; do echo "$p current"; done)" "30 days > 20: none"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --dry-run --json --renew-days 30
assert_eq "$(results dry <<<"$OUT")" "$(want would-recertify)" "29 days left <= 30: the two"
before=$(tree_state) rows_before=$(rows)
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --json --renew-days 60
assert_eq "$(results real <<<"$OUT")" "$(want issued)" "--renew-days 60 renews the two"
assert_eq "$(( $(rows) - rows_before ))" "2" "two ledger rows"
for p in "${P[1]}" "${P[4]}"; do
	end=$(date -d "$(openssl x509 -in "$FMC/var/sf/peers/$p/certs_pushed/sftunnel-cert.pem" -noout -enddate | cut -d= -f2)" +%s)
	[ $(( (end - $(date +%s)) / 86400 )) -gt 60 ] || fail "$p still short"
done
serial=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print([p for p in d["peers"] if p["result"]=="issued"][0]["serial"])' <<<"$OUT")
assert_contains "$(as auditor-1 ledger --ca "$CA_ID" --format csv)" "^\"$serial\"," "JSON serial is in the ledger"
ok "issue --renew-days: 20 picks none, 30 the two 30-day peers (dry run), 60 renews exactly them; --json parsed"

# Leave alone what is not ours (issue 13): a peer directory without a pair
# (a stale device, an HA peer's) is named, not given a new key; --peer does.
STALE=0f1e2d3c-4b5a-4697-8877-665544332211
mkdir -p "$FMC/var/sf/peers/$STALE"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC"
assert_contains "$OUT" "var/sf/peers/$STALE: no certs_pushed/ and no sftunnel pair in it .a stale device, or an FMC HA peer's directory.: left alone; --peer $STALE gives it one" "the stale directory named"
[ -z "$(ls -A "$FMC/var/sf/peers/$STALE")" ] || fail "issue wrote into a directory without a pair: $(ls -A "$FMC/var/sf/peers/$STALE")"
expect_rc 1 as auditor-1 verify --ca "$CA_ID" --root "$FMC" --peer "$STALE"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$FMC" --peer "$STALE"
[ -s "$FMC/var/sf/peers/$STALE/certs_pushed/sftunnel-cert.pem" ] || fail "--peer did not give it a pair"
ok "a peer directory without a pair is left alone by issue (named, with the --peer that gives it one); --peer gives it one"

# A --root that is not an FMC tree creates nothing (issue 13): not a bundle,
# not a key, not even the lock directory.
for args in "--self --force" "--dry-run"; do
	# shellcheck disable=SC2086
	expect_rc 1 as fmc-east issue --ca "$CA_ID" --root "$T/mistyped/path" $args
	assert_contains "$OUT" "$T/mistyped/path is not an FMC tree: it has neither etc/sf/ca_root/ nor var/sf/peers/" "issue $args: refused"
	[ ! -e "$T/mistyped" ] || fail "issue $args created $(find "$T/mistyped")"
done
printf 'device_name,ip,admin_username,admin_password,uuid\nftd,127.0.0.1,admin,x,%s\n' "${P[0]}" > "$T/d.csv"
chmod 600 "$T/d.csv"
expect_rc 1 "$SFTCA" push --ca "$CA_ID" --root "$T/mistyped/path" --devices "$T/d.csv" --known-hosts /dev/null --failed-push "$T/FP"
assert_contains "$OUT" "is not an FMC tree" "push: refused"
[ ! -e "$T/mistyped" ] || fail "push created $(find "$T/mistyped")"
ok "a --root that is not an FMC tree: issue (also --dry-run) and push refuse it by name and create nothing under it"
