#!/usr/bin/env bash
# Development PKI for the signer's gRPC mutual-TLS channel (NOT the
# InternalCA, which lives in the token). Creates in OUTDIR:
#   service-ca.{crt,key}   the CA that signs the signer and its clients
#   signer.{crt,key}       server certificate, SAN DNS:localhost, IP:127.0.0.1
#   <CN>.{crt,key}         one client certificate per CN (default: ops-admin,
#                          fmc-east, auditor-1); the CN is what [authz] maps
# Keys are written mode 0600. Existing files are kept (idempotent).
#
# usage: dev-pki.sh OUTDIR [CLIENT_CN...]
set -euo pipefail

out=${1:?usage: dev-pki.sh OUTDIR [CLIENT_CN...]}
shift
cns=("$@")
[ ${#cns[@]} -gt 0 ] || cns=(ops-admin fmc-east auditor-1)
days=${DEV_PKI_DAYS:-825}

umask 077
mkdir -p "$out"
cd "$out"

if [ ! -s service-ca.crt ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout service-ca.key -out service-ca.crt -days "$days" \
		-subj "/O=sftca development/CN=sftca service CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue NAME SUBJECT EXTENSIONS...
issue() {
	local name=$1 subj=$2; shift 2
	[ -s "$name.crt" ] && return 0
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
	printf '%s\n' "$@" > "$name.ext"
	openssl x509 -req -in "$name.csr" -CA service-ca.crt -CAkey service-ca.key \
		-CAcreateserial -days "$days" -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
	chmod 600 "$name.key"
	chmod 644 "$name.crt"
}

issue signer "/O=sftca development/CN=sftca-signer" \
	"basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1"
for cn in "${cns[@]}"; do
	issue "$cn" "/O=sftca development/CN=$cn" \
		"basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=clientAuth"
done
chmod 644 service-ca.crt
echo "dev PKI in $(pwd): service-ca.crt, signer.crt, ${cns[*]/%/.crt}"
