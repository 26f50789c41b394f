#!/usr/bin/env bash
# Issue 13 item 1: the whole renewal from a jump host against a simulated
# FMC (an sshd stand-in holding an FMC tree, the restricted CLI, a pmtool
# that records restarts) and three FTD stand-ins seeded from the same tree:
# fmc pull (backup on the FMC, files and manifest here) -> ca renew + issue
# -> fmc commit --dry-run -> fmc commit (only the changed files, backups,
# modes and owners kept, sftunnel restarted after the writes) -> push ->
# verify --live. Then a commit refused because the FMC's files changed
# underneath: named, nothing written, no restart.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool jq tar

make_token
make_pki
write_conf "$T/signer.conf"
signer_cmd() { "$SIGNER" --config "$T/signer.conf" "$@"; }

SEED=$T/seed
"$SRC/scripts/make-fmc-tree.sh" --root "$SEED" --fmc-uuid "$CA_ID" --peers 4 --legacy-ca "$T/legacy" >/dev/null
expect_rc 0 signer_cmd import-ca --ca "$CA_ID" --cert "$T/legacy/cacert.pem" --key "$T/legacy/cakey.pem"
start_signer "$T/signer.conf"

# ftd-01..03 are the FTDs; ftd-04 becomes the FMC, holding the whole tree
# (its fourth peer has no device: a stale registration).
start_fmc_devices "$SEED" 4 mixed # FTDs direct, ftd, direct; ftd-04 (the FMC) ftd
ctl ftd-04 fmc-tree "$SEED" >/dev/null
FMC_IP=$NET.13
mapfile -t PEERS < <(ls "$SEED/var/sf/peers")
# The vendor's list starts with the FMC: its row is the FMC's login.
(umask 077
 awk -F, -v OFS=, -v ca="$CA_ID" 'NR == 1 { print; next } $1 == "ftd-04" { $1 = "fmc"; $5 = ca; print }' "$CSV" >"$T/fmc.csv"
 grep -v '^ftd-04,' "$CSV" >"$T/ftd.csv")
fmc() { "$SFTCA" fmc "$1" --fmc "$FMC_IP" --ca "$CA_ID" --devices "$T/fmc.csv" --known-hosts "$KH" "${@:2}"; }
on_fmc() { ctl ftd-04 run sh -c "$1"; }
# The set's files on the FMC: "sha mode uid gid path" per file.
FILES='/etc/sf/ca_root/cacert.pem /etc/sf/ca_root/crl.pem /etc/sf/keys/sftunnel-*.pem /var/sf/peers/*/certs_pushed/sftunnel-*.pem /var/sf/peers/*/sftunnel-*.pem'
fmc_state() { on_fmc "for f in $FILES; do [ -f \"\$f\" ] && echo \$(sha256sum <\"\$f\" | cut -c1-64) \$(stat -c '%a %u %g %n' \"\$f\"); done; true"; }
backups_on_fmc() { on_fmc "ls /var/tmp/sftca-fmc-backup.* 2>/dev/null | wc -l"; }
J=$T/jump

# --- identity first --------------------------------------------------------
OTHER=0f0e0d0c-0b0a-4908-8706-050403020100
expect_rc 1 "$SFTCA" fmc pull --fmc "$FMC_IP" --ca "$OTHER" --devices "$T/fmc.csv" --known-hosts "$KH" --root "$J"
assert_contains "$OUT" "refused, nothing done: it says it is $CA_ID, not the FMC of --ca $OTHER" "wrong FMC refused"
[ ! -e "$J/.sftca-fmc-pull.json" ] || fail "a refused pull wrote a manifest"
assert_eq "$(backups_on_fmc)" 0 "a refused pull made no backup"
expect_rc 1 "$SFTCA" fmc pull --fmc "$NET.11" --ca "$CA_ID" --devices "$CSV" --known-hosts "$KH" --root "$J"
assert_contains "$OUT" "refused, nothing done: it says it is ${PEERS[1]}" "an FTD (ftd shell) is not the FMC"
expect_rc 1 "$SFTCA" fmc pull --fmc "$NET.10" --ca "$CA_ID" --devices "$CSV" --known-hosts "$KH" --root "$J"
assert_contains "$OUT" "refused, nothing done: who it is cannot be read \\(it holds no '/etc/sf/ca_root/cacert.pem'\\)" \
	"direct shell: an FTD has no InternalCA certificate to name it"
[ ! -e "$J" ] || fail "a refused pull wrote locally"
ok "fmc pull: an FMC whose UUID is not --ca, or an FTD (ftd or direct shell), is refused before anything is done"

# --- pull ----------------------------------------------------------------------
before=$(fmc_state)
nfiles=$(wc -l <<<"$before")
expect_rc 0 fmc pull --root "$J" --dry-run
assert_contains "$OUT" "would fetch /etc/sf/ca_root/cacert.pem" "dry run names the files"
assert_contains "$OUT" "would fetch /var/sf/peers/${PEERS[2]}/certs_pushed/sftunnel-key.pem" "dry run names peer keys"
assert_eq "$(grep -c 'would fetch' <<<"$OUT")" "$nfiles" "dry run: every file of the set"
[ ! -e "$J" ] || fail "pull --dry-run wrote locally"
assert_eq "$(backups_on_fmc)" 0 "pull --dry-run made no backup"
expect_rc 2 fmc pull --root "$J" --dry-run --accept-new-host-keys
assert_contains "$OUT" "fmc: --dry-run records no host key" "a dry run records no host key"
ok "fmc pull --dry-run: says what it would fetch ($nfiles files); no backup, nothing local"

expect_rc 0 fmc pull --root "$J"
B=$(grep -oE '/var/tmp/sftca-fmc-backup\.[0-9]{8}T[0-9]{6}Z\.tar\.gz' <<<"$OUT" | head -1)
[ -n "$B" ] || fail "no backup path printed: $OUT"
assert_eq "$(on_fmc "stat -c %a $B")" 600 "backup mode"
listing=$(on_fmc "tar tzf $B")
for want in etc/sf/ca_root/cacert.pem etc/sf/keys/sftunnel-key.pem "var/sf/peers/${PEERS[3]}/certs_pushed/sftunnel-cert.pem"; do
	assert_contains "$listing" "^$want\$" "backup holds $want"
done
M=$J/.sftca-fmc-pull.json
assert_eq "$(stat -c %a "$M")" 600 "manifest mode"
assert_eq "$(jq -r .ca "$M")" "$CA_ID" "manifest ca"
assert_eq "$(jq -r .backup "$M")" "$B" "manifest backup"
assert_eq "$(jq '.files | length' "$M")" "$nfiles" "manifest: every file"
while read -r sha mode uid gid path; do
	[ "$(sha256sum <"$J$path" | cut -c1-64)" = "$sha" ] || fail "local $path is not the FMC's"
	assert_eq "$(jq -r --arg p "$path" '.files[] | select(.path == $p) | "\(.sha256) \(.mode) \(.uid) \(.gid)"' "$M")" \
		"$sha $((8#$mode)) $uid $gid" "manifest entry of $path"
done <<<"$before"
assert_eq "$(stat -c %a "$J/etc/sf/keys/sftunnel-key.pem")" 600 "a pulled key is 0600 here"
ok "fmc pull: backup $B (0600) on the FMC, $nfiles files here, manifest with their hashes, modes and owners"

# --- renew and issue on the jump host ------------------------------------------
expect_rc 0 as ops-admin ca renew --ca "$CA_ID"
expect_rc 0 as fmc-east issue --ca "$CA_ID" --root "$J" --self
changed=$(while read -r sha mode uid gid path; do
	[ "$(sha256sum <"$J$path" | cut -c1-64)" = "$sha" ] || echo "$path"
done <<<"$before"; for f in "$J"/etc/sf/ca_root/crl.pem; do [ -f "$f" ] && ! grep -q " ${f#"$J"}\$" <<<"$before" && echo "${f#"$J"}"; done; true)
assert_contains "$changed" "^/etc/sf/ca_root/cacert.pem$" "issue changed the bundle"
assert_not_contains "$changed" "^/etc/sf/keys/sftunnel-key.pem$" "the FMC's key was re-certified, not replaced"

# --- commit --dry-run, then commit -------------------------------------------------
expect_rc 0 fmc commit --root "$J" --dry-run
for p in $changed; do assert_contains "$OUT" "would write $p " "dry run names $p"; done
assert_eq "$(grep -c 'would write' <<<"$OUT")" "$(wc -w <<<"$changed")" "dry run: only the changed files"
assert_eq "$(fmc_state)" "$before" "commit --dry-run changed nothing on the FMC"
assert_eq "$(ctl ftd-04 restarts)" 0 "commit --dry-run restarted nothing"
ok "fmc commit --dry-run: names the $(wc -w <<<"$changed") changed files; nothing written, no restart"

expect_rc 0 fmc commit --root "$J"
assert_contains "$OUT" "done: $(wc -w <<<"$changed") file\(s\) written" "commit reports the FMC done"
after=$(fmc_state)
while read -r sha mode uid gid path; do
	[ "$sha" = "$(sha256sum <"$J$path" | cut -c1-64)" ] || fail "$path on the FMC is not the local one"
	old=$(grep " $path\$" <<<"$before" || true)
	if [ -n "$old" ]; then
		assert_eq "$mode $uid $gid" "$(cut -d' ' -f2-4 <<<"$old")" "mode and owner of $path kept"
	fi
	if grep -qx "$path" <<<"$changed"; then
		[ -n "$old" ] || continue
		assert_eq "$(on_fmc "sha256sum <\$(ls $path.backup.* | head -1) | cut -c1-64")" "$(cut -d' ' -f1 <<<"$old")" "backup of $path"
	else
		assert_eq "$(on_fmc "ls $path.backup.* 2>/dev/null | wc -l")" 0 "unchanged $path not rewritten"
	fi
done <<<"$after"
assert_eq "$(on_fmc "ls -a /etc/sf/ca_root /etc/sf/keys /var/sf/peers/*/certs_pushed | grep -c sftca-tmp || true")" 0 "no upload left behind"
assert_eq "$(ctl ftd-04 restarts)" 1 "sftunnel restarted once on the FMC"
new_bundle=$(sha256sum <"$J/etc/sf/ca_root/cacert.pem" | cut -c1-64)
assert_file_contains "$D/ftd-04/pmtool.log" "restartbyid sftunnel ok fmc cacert=$new_bundle" "the restart found the renewed bundle"
for f in $(jq -r '.files[] | "\(.path)=\(.sha256)"' "$M"); do
	[ "$(sha256sum <"$J${f%%=*}" | cut -c1-64)" = "${f#*=}" ] || fail "manifest not updated for ${f%%=*}"
done
ok "fmc commit: only the changed files written, old ones kept as backups, modes and owners as before, sftunnel restarted after the writes, manifest updated"

expect_rc 0 fmc commit --root "$J"
assert_contains "$OUT" "nothing to commit" "second commit is a no-op"
assert_eq "$(ctl ftd-04 restarts)" 1 "no second restart"
ok "a second fmc commit: nothing to commit, no restart"

# --- the FTDs, then the live check -------------------------------------------------
expect_rc 0 "$SFTCA" push --ca "$CA_ID" --root "$J" --devices "$T/ftd.csv" --known-hosts "$KH" --failed-push "$T/FAILED_PUSH"
assert_contains "$OUT" "3 updated" "push updated the three FTDs"
expect_rc 0 "$SFTCA" verify --ca "$CA_ID" --root "$J" --live --devices "$T/ftd.csv"
for i in 0 1 2; do assert_contains "$OUT" "${PEERS[$i]}  OK" "ftd-0$((i + 1)) live OK"; done
ok "push to the three FTDs, then verify --live: every tunnel handshakes with the renewed files"

# --- the FMC changed underneath ------------------------------------------------------
tampered=/var/sf/peers/${PEERS[1]}/certs_pushed/sftunnel-cert.pem
on_fmc "echo '# generate_certs.pl' >>$tampered"
on_fmc "mkdir -p /var/sf/peers/${OTHER} && cp /etc/sf/keys/sftunnel-cert.pem /var/sf/peers/${OTHER}/sftunnel-cert.pem"
echo >>"$J/etc/sf/ca_root/cacert.pem" # a local change the refused commit must not write
state=$(fmc_state)
msum=$(sha256sum <"$M")
expect_rc 1 fmc commit --root "$J"
assert_contains "$OUT" "$tampered changed on the FMC since the pull" "the changed file is named"
assert_contains "$OUT" "/var/sf/peers/$OTHER/sftunnel-cert.pem was added on the FMC since the pull" "the added file is named"
assert_contains "$OUT" "commit refused: 2 file\(s\) changed" "refusal"
assert_eq "$(fmc_state)" "$state" "a refused commit wrote nothing on the FMC"
assert_eq "$(ctl ftd-04 restarts)" 1 "a refused commit restarted nothing"
assert_eq "$(sha256sum <"$M")" "$msum" "a refused commit left the manifest"
expect_rc 1 fmc commit --root "$J" --dry-run
assert_contains "$OUT" "$tampered changed on the FMC since the pull" "the dry run refuses too"
ok "fmc commit after the FMC's files changed underneath: refused, each file named, nothing written, no restart"

# --- a restart that fails is not forgotten -------------------------------------------
expect_rc 0 fmc pull --root "$J"
assert_eq "$(jq '.files | length' "$M")" "$(fmc_state | wc -l)" "a new pull lists every file, the added one too"
# A bad pair (another peer's certificate beside this peer's key) never leaves.
P0=$J/var/sf/peers/${PEERS[0]}/certs_pushed
cp -p "$P0/sftunnel-cert.pem" "$T/keep.pem"
cp "$J/var/sf/peers/${PEERS[1]}/certs_pushed/sftunnel-cert.pem" "$P0/sftunnel-cert.pem"
state=$(fmc_state)
expect_rc 1 fmc commit --root "$J"
assert_contains "$OUT" "the pair in $P0 is not written: .*key" "a bad pair is named"
assert_eq "$(fmc_state)" "$state" "a bad pair: nothing written"
assert_eq "$(ctl ftd-04 restarts)" 1 "a bad pair: no restart"
cp -p "$T/keep.pem" "$P0/sftunnel-cert.pem"
ok "fmc commit: a pair sftca verify would call bad is refused, nothing written, no restart"

echo >>"$J/etc/sf/ca_root/cacert.pem"
ctl ftd-04 pmtool-fail on >/dev/null
expect_rc 1 fmc commit --root "$J"
assert_contains "$OUT" "files in place; 'pmtool restartbyid sftunnel' failed" "a failed restart is said"
assert_not_contains "$OUT" "done:" "the FMC is not reported done"
assert_eq "$(on_fmc "sha256sum </etc/sf/ca_root/cacert.pem | cut -c1-64")" "$(sha256sum <"$J/etc/sf/ca_root/cacert.pem" | cut -c1-64)" "the file was written"
assert_eq "$(jq -r .restart_pending "$M")" true "the manifest remembers the restart"
ctl ftd-04 pmtool-fail off >/dev/null
expect_rc 0 fmc commit --root "$J"
assert_contains "$OUT" "done: 0 file\(s\) written" "the next commit restarts"
assert_eq "$(ctl ftd-04 restarts)" 2 "restarted once more"
assert_eq "$(jq -r .restart_pending "$M")" null "restart no longer pending"
ok "fmc commit: a failed restart exits 1 and is remembered; the next commit restarts sftunnel"

# --- an FMC that lists a file outside the set ----------------------------------------
# A hostile or broken FMC: its sha256sum and stat also report root's
# authorized_keys (a real file, with a real hash, mode and owner).
mkdir -p "$D/ftd-04/root/.ssh"
echo "ssh-ed25519 AAAA hostile" > "$D/ftd-04/root/.ssh/authorized_keys"
cat > "$D/ftd-04/bin/sha256sum" <<'SH'
#!/bin/sh
/usr/bin/sha256sum "$@" || exit
[ "$1" != /etc/sf/ca_root/cacert.pem ] || /usr/bin/sha256sum /root/.ssh/authorized_keys
SH
cat > "$D/ftd-04/bin/stat" <<'SH'
#!/bin/sh
/usr/bin/stat "$@" || exit
[ "$3" != /etc/sf/ca_root/cacert.pem ] || /usr/bin/stat "$1" "$2" /root/.ssh/authorized_keys
SH
chmod 755 "$D/ftd-04/bin/sha256sum" "$D/ftd-04/bin/stat"
expect_rc 1 fmc pull --root "$T/jump3"
rm "$D/ftd-04/bin/sha256sum" "$D/ftd-04/bin/stat"
assert_contains "$OUT" "listed /root/.ssh/authorized_keys, which is not one of its sftunnel files .*: refused, nothing fetched" \
	"a file outside the set is refused by name"
[ ! -e "$T/jump3/root" ] && [ ! -e "$T/jump3/.sftca-fmc-pull.json" ] || fail "a refused pull wrote something: $(find "$T/jump3")"
ok "fmc pull: an FMC listing a file outside the sftunnel set is refused, nothing fetched or written here"

# --- the direct shell: the FMC is who its InternalCA's CN names ------------------------
ctl ftd-03 fmc-tree "$SEED" >/dev/null
(umask 077; awk -F, 'NR == 1 || $1 == "ftd-03"' "$CSV" >"$T/fmc-direct.csv")
expect_rc 0 "$SFTCA" fmc pull --fmc "$NET.12" --ca "$CA_ID" --devices "$T/fmc-direct.csv" --known-hosts "$KH" \
	--root "$T/jump2" --dry-run
assert_contains "$OUT" "would fetch /etc/sf/ca_root/cacert.pem" "direct shell: identified by the CA's CN"
expect_rc 1 "$SFTCA" fmc pull --fmc "$NET.12" --ca "$OTHER" --devices "$T/fmc-direct.csv" --known-hosts "$KH" \
	--root "$T/jump2"
assert_contains "$OUT" "it says it is $CA_ID, not the FMC of --ca $OTHER" "direct shell: another CA refused"
[ ! -e "$T/jump2" ] || fail "direct shell: something written locally"
ok "fmc pull over the direct shell: the CN of /etc/sf/ca_root/cacert.pem is the FMC's identity"
