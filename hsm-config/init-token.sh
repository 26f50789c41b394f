#!/usr/bin/env bash
# Create a SoftHSM2 token for sftca under DIR (nothing outside DIR is
# touched): DIR/softhsm2.conf, DIR/tokens/, and the SO and user PIN files
# DIR/so.pin and DIR/user.pin (mode 0600, random). Idempotent: an existing
# token and existing PIN files are left as they are.
#
# usage: init-token.sh DIR [LABEL]       (LABEL defaults to "sftca")
# env:   SFTCA_SIGNER_BIN  path to sftca-signer (default: build/bin next to this script)
#        SOFTHSM_MODULE    PKCS#11 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

dir=${1:?usage: init-token.sh DIR [LABEL]}
label=${2:-sftca}
here=$(cd "$(dirname "$0")" && pwd)
signer=${SFTCA_SIGNER_BIN:-$here/../build/bin/sftca-signer}
module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

[ -x "$signer" ] || { echo "init-token.sh: $signer not built (run cmake first)" >&2; exit 1; }
[ -r "$module" ] || { echo "init-token.sh: PKCS#11 module $module missing (apt-get install softhsm2)" >&2; exit 1; }

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.in" > "$dir/softhsm2.conf"
# PINs come from the kernel's CSPRNG and go only into 0600 files.
for f in so.pin user.pin; do
	# 24 hex characters (96 bits): within the PIN length limit of common
	# PKCS#11 tools (libp11's engine takes at most 31 characters).
	[ -s "$dir/$f" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/$f"
	chmod 600 "$dir/$f"
done
SOFTHSM2_CONF="$dir/softhsm2.conf" "$signer" init-token --module "$module" --label "$label" \
	--so-pin-file "$dir/so.pin" --pin-file "$dir/user.pin"
echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
