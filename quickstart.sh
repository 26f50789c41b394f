#!/usr/bin/env bash
# The main job on the embedded defaults, start to finish: install what is
# missing, build, create a SoftHSM2 token and a development service PKI under
# ./var/, start sftca-signer (unix socket + 127.0.0.1 with mutual TLS),
# create the InternalCA of a sample FMC inside the token, build a sample FMC
# tree (its own identity and 5 peers with existing keys; the first 3 of
# them are also started as simulated FTDs on 127.0.0.2-4, each sshd in its
# own mount namespace), renew every certificate in it with `sftca issue`,
# prove the result with `sftca verify` and `sftca check`, push the files to
# the devices with `sftca push`, prove the tunnels with `sftca verify --live`,
# and stop everything it started. Nothing outside this directory is touched
# except Debian packages. Safe to run again: state under ./var/ is reused,
# and a second run finds every certificate current.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh

FMC_UUID=${FMC_UUID:-cdb123c8-4347-11ef-aca1-f3aa241412a1}
PORT_WANTED=${SFTCA_PORT:-7443}

step() { printf '\n== %s\n' "$*"; }

step "dependencies and build"
install_deps
build_sftca >/dev/null
BIN=$PWD/build/bin
VAR=$PWD/var
mkdir -p "$VAR/run" "$VAR/state"
chmod 700 "$VAR/state"

step "SoftHSM2 token under var/hsm (PIN files mode 0600)"
SFTCA_SIGNER_BIN=$BIN/sftca-signer hsm-config/init-token.sh "$VAR/hsm" sftca >/dev/null
export SOFTHSM2_CONF=$VAR/hsm/softhsm2.conf
echo "token 'sftca' ready; SOFTHSM2_CONF=$SOFTHSM2_CONF"

step "development PKI for the signer's gRPC channel (var/pki)"
hsm-config/dev-pki.sh "$VAR/pki" ops-admin fmc-east auditor-1

cat > "$VAR/signer.conf" <<CONF
; written by quickstart.sh
[signer]
listen    = unix:$VAR/run/signer.sock
listen    = 127.0.0.1:$PORT_WANTED
state_dir = $VAR/state
tls_cert  = $VAR/pki/signer.crt
tls_key   = $VAR/pki/signer.key
client_ca = $VAR/pki/service-ca.crt
unix_role = admin

[pkcs11]
module      = /usr/lib/softhsm/libsofthsm2.so
token_label = sftca
pin_file    = $VAR/hsm/user.pin

[authz]
ops-admin = admin
fmc-east  = issuer:$FMC_UUID
auditor-1 = auditor
CONF

step "start sftca-signer"
root_flag=()
[ "$(id -u)" -eq 0 ] && root_flag=(--allow-root) # development only
: > "$VAR/signer.log"
"$BIN/sftca-signer" --config "$VAR/signer.conf" "${root_flag[@]}" >>"$VAR/signer.log" 2>&1 &
SIGNER_PID=$!
stop_signer() {
	if kill -0 "$SIGNER_PID" 2>/dev/null; then
		kill -TERM "$SIGNER_PID"
		wait "$SIGNER_PID" || true
	fi
}
stop_devices() { [ -d "$VAR/devices" ] && tests/devices/stop-devices.sh --state "$VAR/devices" >/dev/null 2>&1 || true; }
trap 'stop_signer; stop_devices' EXIT
for _ in $(seq 100); do
	grep -q "serving (" "$VAR/signer.log" && break
	kill -0 "$SIGNER_PID" 2>/dev/null || { cat "$VAR/signer.log" >&2; exit 1; }
	sleep 0.1
done
grep -q "serving (" "$VAR/signer.log" || { echo "signer did not start" >&2; exit 1; }
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$VAR/signer.log" | tail -1 | cut -d: -f2)
for who in ops-admin fmc-east; do
	cat > "$VAR/client-$who.conf" <<CONF
; written by quickstart.sh: the CLI as $who, over mutual TLS
[client]
signer   = 127.0.0.1:$PORT
tls_cert = $VAR/pki/$who.crt
tls_key  = $VAR/pki/$who.key
tls_ca   = $VAR/pki/service-ca.crt
CONF
done
sed -n 's/.* info [a-z_]*: //p' "$VAR/signer.log"

sftca() { "$BIN/sftca" --config "$VAR/client-ops-admin.conf" "$@"; }
issuer() { "$BIN/sftca" --config "$VAR/client-fmc-east.conf" "$@"; }

step "InternalCA for FMC $FMC_UUID, generated inside the token"
if sftca ca cert --ca "$FMC_UUID" >/dev/null 2>&1; then
	echo "CA $FMC_UUID exists already (var/state/ledger.db); keeping it"
else
	sftca ca create --ca "$FMC_UUID"
fi

step "sftca status (over mutual TLS as ops-admin)"
sftca status

step "sample FMC tree under var/fmc: the FMC's identity and 5 peers, as before renewal"
if [ ! -d "$VAR/fmc/var/sf/peers" ]; then
	# Old certificates from a field-style InternalCA (X.509 v1, serial 0),
	# which the 3 simulated FTDs below start with.
	scripts/make-fmc-tree.sh --root "$VAR/fmc" --fmc-uuid "$FMC_UUID" --peers 5 --legacy-ca "$VAR/legacy-ca"
else
	echo "var/fmc exists; reusing it"
fi

step "3 simulated FTDs on 127.0.0.2-4 (own sshd, mount namespace, sftunnel endpoint)"
# A device dir left by an earlier run is stopped and made afresh; port 2222
# keeps clear of a host sshd on port 22.
tests/devices/start-devices.sh --state "$VAR/devices" --count 3 --fmc-uuid "$FMC_UUID" \
	--shell mixed --first-ip 127.0.0.2 --ssh-port "${DEVICE_SSH_PORT:-2222}" --seed-from "$VAR/fmc"

step "sftca issue --self (as the issuer fmc-east): keys re-certified in place, none moved"
# The sample tree's cacert.pem is the legacy CA, which this signer did not
# import (it made its own): issue names it and replaces it only with --force.
issuer issue --ca "$FMC_UUID" --root "$VAR/fmc" --self --force

step "sftca verify: every peer chains to the bundle, key matches, CN is its UUID"
issuer verify --ca "$FMC_UUID" --root "$VAR/fmc"

step "sftca check: days left of every certificate in the tree (monitoring exit codes)"
"$BIN/sftca" check "$VAR/fmc/etc/sf" "$VAR/fmc/var/sf/peers" | head -3
echo "..."

step "sftca push: the new bundle and certificates to the 3 devices over SSH (keys stay put)"
"$BIN/sftca" push --ca "$FMC_UUID" --root "$VAR/fmc" --devices "$VAR/devices/devices.csv" \
	--known-hosts "$VAR/devices/known_hosts" --failed-push "$VAR/FAILED_PUSH"

step "sftca verify --live: a TLS 1.2 handshake with each device's sftunnel, as the FMC does"
"$BIN/sftca" verify --ca "$FMC_UUID" --root "$VAR/fmc" --live --devices "$VAR/devices/devices.csv" | tail -4

step "stop the signer and the devices"
stop_signer
stop_devices
trap - EXIT
echo "stopped. State is in var/: token var/hsm, ledger var/state/ledger.db, audit var/state/audit.log,"
echo "the renewed FMC tree var/fmc. Start the signer again with:"
echo "  SOFTHSM2_CONF=$SOFTHSM2_CONF build/bin/sftca-signer --config var/signer.conf ${root_flag[*]}"
