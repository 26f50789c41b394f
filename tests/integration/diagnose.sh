#!/usr/bin/env bash
# sftca diagnose: sftunnel certificate failures in FMC/FTD /var/log/messages
# (the seed's lines and variants), rotated and gzip-compressed logs, findings,
# counts, first/last, remedies and exit codes (0 clean, 1 found, 2 trouble).
. "$(dirname "$0")/lib.sh"
need jq gzip timeout

L=$T/logs
mkdir -p "$L/ftd" "$L/fmc"
FMC_CA=$CA_ID

# ftd_block STAMP: one failed reconnect as the seed shows it (lines cut as in the article).
ftd_block() {
	local s=$1 p="FTD-hostname SF-IMS[50792]: [51982] sftunnel:sf_ssl"
	cat <<EOF
$s $p [INFO] Initiating IPv4 connection
$s $p [INFO] Wait to connect to 8305 (IP
$s $p [INFO] Connected to 10.10.200.31 f
$s $p [ERROR] -Error with certificate at
$s $p [ERROR] issuer = /title=Intern
$s $p [ERROR] subject = /title=Intern
$s $p [ERROR] err 10:certificate has e
$s $p [ERROR] SSL_renegotiate error: 1:
$s $p [ERROR] Connect:SSL handshake fail
$s $p [WARN] SSL Verification status: ce
EOF
}
fmc_block() {
	local s=$1 p="FMC-hostname SF-IMS[1504]: [4171] sftunnel:sf_ssl"
	cat <<EOF
$s $p [INFO] VERIFY ssl_verify_callback_in
$s $p [ERROR] SSL_renegotiate error: 1: er
$s $p [WARN] establishConnectionUtil: SSL
$s $p [WARN] establishConnectionUtil: SSL
$s $p [WARN] establishConnectionUtil: SSL
$s $p [INFO] establishConnectionUtil: Fail
$s $p [ERROR] establishSSLConnection: Unab
$s $p [ERROR] establishSSLConnection: ret_
$s $p [ERROR] establishSSLConnection: ired
$s $p [ERROR] establishSSLConnection: Fail
EOF
}
noise() { # noise STAMP N: ordinary syslog lines
	for i in $(seq "$2"); do
		echo "$1 FTD-hostname kernel: [$i] eth0: link up"
		echo "$1 FTD-hostname SF-IMS[50792]: [51982] sftunnel:sf_heartbeat [INFO] heartbeat $i"
	done
}

# Rotated FTD log: messages.2.gz (oldest) < messages.1 < messages (newest).
{ noise "Sep 18 23:59:00" 3; ftd_block "Sep 18 23:59:59"; } | gzip -c > "$L/ftd/messages.2.gz"
{ ftd_block "Sep 19 10:00:00"; noise "Sep 19 10:00:01" 2; } > "$L/ftd/messages.1"
{ ftd_block "Sep 20 04:10:47"; ftd_block "Sep 20 04:11:17"; } > "$L/ftd/messages"

# ---- the seed's FTD lines, across rotated and compressed files
set +e
J=$("$SFTCA" diagnose --json "$L/ftd/messages" "$L/ftd/messages.1" "$L/ftd/messages.2.gz")
rc=$?
set -e
assert_eq "$rc" 1 "exit code with findings"
assert_eq "$(jq -r .status <<<"$J")" failures_found "status"
assert_eq "$(jq -r '[.files[].path | sub(".*/"; "")] | join(" ")' <<<"$J")" "messages.2.gz messages.1 messages" \
	"rotated files read oldest first"
assert_eq "$(jq -r '[.files[].gzip] | join(" ")' <<<"$J")" "true false false" "gzip recognised"
assert_eq "$(jq -r '[.files[].lines] | join(" ")' <<<"$J")" "16 14 20" "lines per file"
f() { jq -r --arg id "$1" ".findings[] | select(.id == \$id) | $2" <<<"$J"; }
assert_eq "$(f cert_expired .count)" 4 "err 10 count"
assert_eq "$(f cert_expired .verify_error)" 10 "err 10 code"
assert_eq "$(f cert_expired .first)" "Sep 18 23:59:59" "err 10 first"
assert_eq "$(f cert_expired .last)" "Sep 20 04:11:17" "err 10 last"
assert_eq "$(f cert_expired '.hosts | map("\(.value)=\(.count)") | join(",")')" "FTD-hostname=4" "hosts"
assert_eq "$(f cert_expired '.peers | map("\(.value)=\(.count)") | join(",")')" "10.10.200.31=4" "peers"
assert_eq "$(f cert_expired '.issuers[0].value')" "/title=Intern" "issuer line"
assert_eq "$(f cert_expired '.subjects[0].value')" "/title=Intern" "subject line"
assert_eq "$(f cert_expired .subject_is_ca)" true "the failing certificate is the InternalCA"
assert_eq "$(f cert_expired '.remedy | join(";")')" \
	"sftca check /etc/sf/ca_root /etc/sf/keys /var/sf/peers;sftca status;sftca ca renew --ca <FMC-UUID>;sftca issue --ca <FMC-UUID> --root /;sftca push --ca <FMC-UUID> --root / --devices devices.csv" \
	"remedy for an expired certificate"
assert_eq "$(f ssl_handshake_failed .count)" 4 "handshake failures"
assert_eq "$(f ssl_verification_failed .count)" 4 "verification status"
assert_eq "$(f ssl_verification_failed '.logged[0].value')" "ce" "status text as logged"
assert_eq "$(jq '.findings | length' <<<"$J")" 3 "kinds of finding"
ok "FTD seed lines: err 10, handshake, verification status; counts, first/last over rotated + gzip logs"

expect_rc 1 "$SFTCA" diagnose "$L/ftd/messages" "$L/ftd/messages.1" "$L/ftd/messages.2.gz"
assert_contains "$OUT" "^certificate has expired \(OpenSSL verify error 10\): 4 times, first Sep 18 23:59:59, last Sep 20 04:11:17" "human headline"
assert_contains "$OUT" "note: +the certificate that expired is the InternalCA" "InternalCA note"
assert_contains "$OUT" "run: +sftca check /etc/sf/ca_root" "first step"
assert_contains "$OUT" "sftca ca renew --ca <FMC-UUID>" "renew step"
assert_contains "$OUT" "3 kinds of sftunnel failure, 12 occurrences, in 50 lines of 3 files" "summary"
ok "human output: headline, note, steps, summary"

# ---- the seed's FMC lines: one event per failure, not one per line
fmc_block "Sep 20 03:14:23" > "$L/fmc/messages"
fmc_block "Sep 20 03:15:23" >> "$L/fmc/messages"
set +e
J=$("$SFTCA" --json diagnose "$L/fmc/messages")
rc=$?
set -e
assert_eq "$rc" 1 "FMC exit code"
assert_eq "$(f fmc_connect_failed .count)" 2 "FMC failures counted per event"
assert_eq "$(f fmc_connect_failed .first)" "Sep 20 03:14:23" "FMC first"
assert_eq "$(f fmc_connect_failed .last)" "Sep 20 03:15:23" "FMC last"
assert_eq "$(f fmc_connect_failed '.hosts[0].value')" "FMC-hostname" "FMC host"
assert_contains "$(f fmc_connect_failed '.remedy | join(";")')" "--live --devices devices.csv" "FMC remedy"
ok "FMC seed lines: establishSSLConnection failures, one per event"

# ---- an FMC-only log still shows an expiry: the devices' TLS alerts, with the
# OpenSSL reasons the seed's lines cut off; an unknown-CA alert is its own kind
Q="FMC-hostname SF-IMS[1504]: [4171] sftunnel:sf_ssl"
cat > "$L/fmc/alerts" <<EOF
Sep 20 03:14:23 $Q [ERROR] SSL_renegotiate error: 1: error:14094415:SSL routines:ssl3_read_bytes:sslv3 alert certificate expired
Sep 20 03:14:23 $Q [ERROR] establishSSLConnection: Unable to connect to 10.10.200.41:8305
Sep 20 03:14:23 $Q [ERROR] establishSSLConnection: Failed: certificate expired
Sep 20 03:15:23 $Q [ERROR] SSL_renegotiate error: 1: error:0A000415:SSL routines::sslv3 alert certificate expired
Sep 20 03:16:40 $Q [ERROR] SSL_renegotiate error: 1: error:0A000418:SSL routines::tlsv1 alert unknown ca
EOF
set +e
J=$("$SFTCA" --json diagnose "$L/fmc/alerts")
rc=$?
set -e
assert_eq "$rc" 1 "FMC alerts exit code"
assert_eq "$(f tls_alert_certificate_expired .count)" 2 "certificate expired alerts, one per event"
assert_eq "$(f tls_alert_certificate_expired .tls_alert)" 45 "alert number"
assert_eq "$(f tls_alert_certificate_expired .verify_error)" null "an alert is not a verify error"
assert_contains "$(f tls_alert_certificate_expired '.remedy | join(";")')" "sftca ca renew" "expiry remedy"
assert_eq "$(f tls_alert_unknown_ca .count)" 1 "unknown ca alert"
assert_contains "$(f tls_alert_unknown_ca '.remedy | join(";")')" "--bundle" "unknown ca remedy: the bundle"
assert_eq "$(jq '.findings | length' <<<"$J")" 3 "kinds: expired, unknown ca, connect failures"
expect_rc 1 "$SFTCA" diagnose "$L/fmc/alerts"
assert_contains "$OUT" "TLS alert certificate expired \(45\): 2 times" "human headline for the alert"
ok "FMC alerts: certificate expired and unknown ca from an FMC-only log"

# ---- full lines and other verify errors; the CA's UUID fills the remedy
P="ftd-7 SF-IMS[7]: [8] sftunnel:sf_ssl"
cat > "$L/variants.log" <<EOF
Oct  2 10:00:01 $P [INFO] Wait to connect to 8305 (IP address: 192.0.2.10)
Oct  2 10:00:01 $P [ERROR] -Error with certificate at depth: 0
Oct  2 10:00:01 $P [ERROR] issuer = /title=InternalCA/OU=Intrusion Management System/CN=$FMC_CA/O=Cisco Systems, Inc.
Oct  2 10:00:01 $P [ERROR] subject = /OU=Intrusion Management System/CN=6bf1143a-8a2e-11ef-92d8-fd927e807d77/O=Cisco Systems, Inc.
Oct  2 10:00:01 $P [ERROR] err 20:unable to get local issuer certificate
Oct  2 10:00:01 $P [ERROR] Connect:SSL handshake failed
2024-10-02T10:00:05.123456+00:00 ftd-8 SF-IMS[9]: [9] sftunnel:sf_ssl [ERROR] err 7:certificate signature failure
Oct  2 10:00:06 ftd-8 SF-IMS[9]: [9] sftunnel:sf_ssl [ERROR] err 9:certificate is not yet valid
Oct  2 10:00:07 ftd-8 SF-IMS[9]: [9] sftunnel:sf_ssl [ERROR] err 18:self signed certificate
Oct  2 10:00:08 ftd-8 SF-IMS[9]: [9] sftunnel:sf_ssl [ERROR] err 19:self signed certificate in certificate chain
Oct  2 10:00:09 ftd-8 SF-IMS[9]: [9] sftunnel:sf_ssl [ERROR] err 23:certificate revoked
Oct  2 10:00:10 ftd-8 SF-IMS[9]: [9] sftunnel:sf_ssl [ERROR] err 26:unsupported certificate purpose
Oct  2 10:00:11 ftd-8 sshd[10]: err 10:certificate has expired
EOF
set +e
J=$("$SFTCA" diagnose --json "$L/variants.log")
rc=$?
set -e
assert_eq "$rc" 1 "variants exit code"
assert_eq "$(jq -r '[.findings[].id] | join(" ")' <<<"$J")" \
	"unable_to_get_local_issuer ssl_handshake_failed signature_failure cert_not_yet_valid self_signed_cert self_signed_in_chain cert_revoked verify_error_26" \
	"one finding per verify error (sshd's line is not sftunnel's)"
assert_eq "$(f unable_to_get_local_issuer '.ca_ids[0].value')" "$FMC_CA" "CA UUID from the issuer's CN"
assert_eq "$(f unable_to_get_local_issuer '.peers[0].value')" "192.0.2.10" "peer from 'Wait to connect'"
assert_eq "$(f unable_to_get_local_issuer .subject_is_ca)" false "a peer certificate"
assert_contains "$(f unable_to_get_local_issuer '.remedy | join(";")')" \
	"sftca push --ca $FMC_CA --root / --devices devices.csv" "push remedy with the real UUID"
assert_contains "$(f unable_to_get_local_issuer .why)" "cacert.pem is not the current bundle" "why"
assert_eq "$(f signature_failure .first)" "2024-10-02T10:00:05.123456+00:00" "ISO timestamp kept as text"
assert_contains "$(f signature_failure '.remedy | join(";")')" "sftca issue --ca $FMC_CA" "signature remedy"
assert_contains "$(f cert_revoked '.remedy | join(";")')" "--rekey" "revoked remedy"
assert_contains "$(f verify_error_26 .title)" "certificate purpose \\(OpenSSL verify error 26\\)" "OpenSSL's text for other codes"
assert_contains "$(f verify_error_26 '.remedy | join(";")')" "sftca verify --ca $FMC_CA --root /" "generic remedy"
ok "variants: err 20/7/9/18/19/23/26, ISO timestamps, UUID from the issuer fills the remedy"

# ---- CRLF, NUL bytes, binary garbage, a 1 MiB line, a big file
ftd_block "Sep 21 01:02:03" | sed 's/$/\r/' > "$L/crlf.log"
{
	head -c 200000 /dev/urandom
	printf '\nSep 21 01:02:04 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] err 10:certificate \0has expired\n'
	head -c 1048576 /dev/zero | tr '\0' 'x'
	printf '\n'
	noise "Sep 21 01:02:05" 100000
	printf 'Sep 21 01:02:06 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] Connect:SSL handshake fail'
} > "$L/messy.log"
set +e
J=$(timeout 120 "$SFTCA" diagnose --json "$L/crlf.log" "$L/messy.log")
rc=$?
set -e
assert_eq "$rc" 1 "messy input exit code"
assert_eq "$(f cert_expired .count)" 2 "err 10 in CRLF and NUL-laden lines"
assert_eq "$(f cert_expired '[.logged[].value] | sort | join("|")')" "certificate ?has expired|certificate has e" \
	"no CR in the text; NUL shown as ?"
assert_eq "$(f ssl_handshake_failed .count)" 2 "last line without a newline"
[ "$(jq -r .long_lines <<<"$J")" -ge 1 ] || fail "the 1 MiB line counted as long"
ok "CRLF, NULs, binary garbage, a 1 MiB line, 200k lines, no final newline"

# ---- standard input, and a clean log
expect_rc 1 bash -c "cat '$L/ftd/messages' | '$SFTCA' diagnose -"
assert_contains "$OUT" "certificate has expired" "stdin"
noise "Sep 22 00:00:00" 50 > "$L/clean.log"
gzip -c "$L/clean.log" > "$L/clean.log.1.gz"
expect_rc 0 "$SFTCA" diagnose "$L/clean.log" "$L/clean.log.1.gz"
assert_contains "$OUT" "^no sftunnel certificate failures found in 200 lines of 2 files" "clean"
expect_rc 0 "$SFTCA" diagnose --json "$L/clean.log"
assert_eq "$(jq -r '.status + " " + (.findings | length | tostring)' <<<"$OUT")" "clean 0" "clean JSON"
ok "standard input; a clean log exits 0"

# ---- trouble: unreadable, a directory, truncated gzip; the rest still reported
expect_rc 2 "$SFTCA" diagnose "$L/nope.log" "$L/ftd/messages"
assert_contains "$OUT" "nope.log: No such file or directory" "missing file named"
assert_contains "$OUT" "certificate has expired" "other files still scanned"
assert_contains "$OUT" "NOT READ WHOLE: $L/nope.log" "summary names the file"
expect_rc 2 "$SFTCA" diagnose "$L/ftd"
assert_contains "$OUT" "is a directory" "directory"
head -c 200 "$L/ftd/messages.2.gz" > "$L/cut.gz"
expect_rc 2 "$SFTCA" diagnose --json "$L/cut.gz"
assert_contains "$OUT" "gzip data is truncated" "truncated gzip"
jq -e '.exit_code == 2 and (.files[0].error | test("gzip"))' <<<"$(sed -n '/^{/,$p' <<<"$OUT")" >/dev/null ||
	fail "JSON reports the unread file"
ok "unreadable file, directory, truncated gzip: exit 2, named, others still reported"

# ---- usage
expect_rc 2 "$SFTCA" diagnose
assert_contains "$OUT" "name at least one log file" "no file"
expect_rc 2 "$SFTCA" diagnose --bogus "$L/clean.log"
expect_rc 0 "$SFTCA" diagnose --help
assert_contains "$OUT" "Exit code: 0 nothing found, 1 failures found, 2" "help"
ok "usage: exit 2; --help: exit 0"
