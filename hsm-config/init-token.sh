#!/usr/bin/env bash
# Create a SoftHSM2 token for sftca under DIR: DIR/softhsm2.conf, DIR/tokens/
# and the user PIN file DIR/user.pin; the SO PIN goes to SO_PIN_FILE, outside
# DIR (default: DIR.so.pin beside it), because DIR is what the signer's user
# is given and the SO PIN (re-initialise the token, reset the user PIN) is
# not the signer's. PIN files are mode 0600 and random. Idempotent: an
# existing token and existing PIN files are left as they are; a so.pin left
# inside DIR by an older version is moved out.
#
# usage: init-token.sh DIR [LABEL] [SO_PIN_FILE]   (LABEL defaults to "sftca")
# env:   SFTCA_SIGNER_BIN  path to sftca-signer (default: build/bin next to this script)
#        SOFTHSM_MODULE    PKCS#11 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

dir=${1:?usage: init-token.sh DIR [LABEL] [SO_PIN_FILE]}
label=${2:-sftca}
sopin=${3:-${dir%/}.so.pin}
here=$(cd "$(dirname "$0")" && pwd)
signer=${SFTCA_SIGNER_BIN:-$here/../build/bin/sftca-signer}
module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

[ -x "$signer" ] || { echo "init-token.sh: $signer not built (run cmake first)" >&2; exit 1; }
[ -r "$module" ] || { echo "init-token.sh: PKCS#11 module $module missing (apt-get install softhsm2)" >&2; exit 1; }

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
case $(realpath -m "$sopin")/ in
"$dir"/*) echo "init-token.sh: the SO PIN file $sopin must be outside the token directory $dir" >&2; exit 1 ;;
esac
mkdir -p "$(dirname "$sopin")"
if [ -e "$dir/so.pin" ]; then
	[ -e "$sopin" ] && { echo "init-token.sh: both $dir/so.pin and $sopin exist: keep the one the token uses and remove the other" >&2; exit 1; }
	mv "$dir/so.pin" "$sopin"
	echo "init-token.sh: moved the SO PIN out of the token directory to $sopin" >&2
fi
sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.in" > "$dir/softhsm2.conf"
# PINs come from the kernel's CSPRNG and go only into 0600 files.
for f in "$sopin" "$dir/user.pin"; do
	# 24 hex characters (96 bits): within the PIN length limit of common
	# PKCS#11 tools (libp11's engine takes at most 31 characters).
	[ -s "$f" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$f"
	chmod 600 "$f"
done
SOFTHSM2_CONF="$dir/softhsm2.conf" "$signer" init-token --module "$module" --label "$label" \
	--so-pin-file "$sopin" --pin-file "$dir/user.pin"
echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
