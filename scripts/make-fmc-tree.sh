#!/usr/bin/env bash
# Make a sample FMC filesystem tree for the quickstart, tests and
# benchmarks (DESIGN.md section 1 layout):
#   ROOT/etc/sf/sftunnel.conf
#   ROOT/etc/sf/ca_root/cacert.pem           (with --legacy-ca)
#   ROOT/etc/sf/keys/sftunnel-{cert,key}.pem  (the FMC's own identity)
#   ROOT/var/sf/peers/<FTD-UUID>/certs_pushed/sftunnel-{cert,key}.pem
#   ROOT/var/sf/peers/<FTD-UUID>/{ims.conf,peer_flags.json}   (left alone by sftca)
# With --legacy-ca the tree looks like a field FMC before sftca: an OpenSSL-made
# InternalCA as the field has it (X.509 v1, serial 0, RSA-2048, 10 years,
# title=InternalCA ...), its key in LEGACY_DIR/cakey.pem, and leaves with exactly
# basicConstraints CA:FALSE, SAN DNS:localhost, EKU serverAuth,clientAuth.
# Without it, peers get keys only (no certificates yet).
#
# usage: make-fmc-tree.sh --root DIR --fmc-uuid UUID [--peers N] [--legacy-ca LEGACY_DIR]
#          [--ca-start YYYYMMDDHHMMSSZ --ca-end YYYYMMDDHHMMSSZ] [--leaf-days N] [--no-keys]
#          [--key-pool N] [--jobs N]
# --key-pool N makes only N distinct peer keys and reuses them (fast trees
# for load tests; the CA does not care).
set -euo pipefail

root= fmc= peers=5 legacy= ca_start= ca_end= leaf_days=3650 keys=1 jobs=$(nproc) pool=0
while [ $# -gt 0 ]; do
	case $1 in
	--root) root=$2; shift 2 ;;
	--fmc-uuid) fmc=$2; shift 2 ;;
	--peers) peers=$2; shift 2 ;;
	--legacy-ca) legacy=$2; shift 2 ;;
	--ca-start) ca_start=$2; shift 2 ;;
	--ca-end) ca_end=$2; shift 2 ;;
	--leaf-days) leaf_days=$2; shift 2 ;;
	--no-keys) keys=0; shift ;;
	--jobs) jobs=$2; shift 2 ;;
	--key-pool) pool=$2; shift 2 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "make-fmc-tree.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "$root" ] && [ -n "$fmc" ] || { echo "make-fmc-tree.sh: --root and --fmc-uuid are required" >&2; exit 2; }

umask 022
mkdir -p "$root/etc/sf/ca_root" "$root/etc/sf/keys" "$root/var/sf/peers"
root=$(cd "$root" && pwd)
cat > "$root/etc/sf/sftunnel.conf" <<CONF
proxyssl {
  proxy_cert $root/etc/sf/keys/sftunnel-cert.pem;
  proxy_key $root/etc/sf/keys/sftunnel-key.pem;
  proxy_cacert $root/etc/sf/ca_root/cacert.pem;
  proxy_crl $root/etc/sf/ca_root/crl.pem;
  proxy_cipher 1;
  proxy_tls_version TLSv1.2;
};
CONF

newkey() { (umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null); }
export -f newkey

# Peer directories with their unrelated files; UUIDs from the kernel.
uuids=()
for _ in $(seq "$peers"); do uuids+=("$(</proc/sys/kernel/random/uuid)"); done
for u in "${uuids[@]}"; do
	mkdir -p "$root/var/sf/peers/$u/certs_pushed"
	printf 'name=ftd\nuuid=%s\n' "$u" > "$root/var/sf/peers/$u/ims.conf"
	printf '{"peer":"%s"}\n' "$u" > "$root/var/sf/peers/$u/peer_flags.json"
done
if [ "$keys" = 1 ] && [ "$pool" -gt 0 ]; then
	mkdir -p "$root/.keypool"
	seq "$pool" | xargs -P "$jobs" -I{} bash -c 'newkey "$1/.keypool/$2.pem"' _ "$root" {}
	newkey "$root/etc/sf/keys/sftunnel-key.pem"
	i=0
	for u in "${uuids[@]}"; do
		cp -p "$root/.keypool/$((i % pool + 1)).pem" "$root/var/sf/peers/$u/certs_pushed/sftunnel-key.pem"
		i=$((i + 1))
	done
	rm -rf "$root/.keypool"
elif [ "$keys" = 1 ]; then
	{
		echo "$root/etc/sf/keys/sftunnel-key.pem"
		for u in "${uuids[@]}"; do echo "$root/var/sf/peers/$u/certs_pushed/sftunnel-key.pem"; done
	} | xargs -P "$jobs" -I{} bash -c 'newkey "$1"' _ {}
fi

if [ -n "$legacy" ]; then
	mkdir -p "$legacy"
	legacy=$(cd "$legacy" && pwd)
	cat > "$legacy/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $legacy/index.txt
new_certs_dir = $legacy
serial = $legacy/serial
policy = p
default_md = sha256
unique_subject = no
preserve = yes
[p]
title = optional
organizationalUnitName = optional
commonName = supplied
organizationName = optional
localityName = optional
CNF
	: > "$legacy/index.txt"
	echo 00 > "$legacy/serial" # the field's InternalCA has serial 0
	newkey "$legacy/cakey.pem"
	openssl req -new -key "$legacy/cakey.pem" -out "$legacy/ca.csr" \
		-subj "/title=InternalCA/OU=Intrusion Management System/CN=$fmc/O=Cisco Systems, Inc" 2>/dev/null
	dates=(-days 3650)
	[ -n "$ca_start" ] && dates=(-startdate "$ca_start" -enddate "$ca_end")
	# No extension section: OpenSSL writes an X.509 v1 certificate, as the field has.
	openssl ca -batch -config "$legacy/ca.cnf" -selfsign -keyfile "$legacy/cakey.pem" \
		-in "$legacy/ca.csr" -out "$legacy/cacert.pem" -notext "${dates[@]}" 2>/dev/null
	cp "$legacy/cacert.pem" "$root/etc/sf/ca_root/cacert.pem"
	printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n' > "$legacy/leaf.ext"
	serial=1
	leaf() { # leaf KEYFILE CN OUT
		openssl req -new -key "$1" -subj "/OU=Intrusion Management System/CN=$2/O=Cisco Systems, Inc" \
			-out "$legacy/leaf.csr" 2>/dev/null
		local end=()
		[ -n "$ca_end" ] && end=(-startdate "$ca_start" -enddate "$ca_end")
		openssl x509 -req -in "$legacy/leaf.csr" -CA "$legacy/cacert.pem" -CAkey "$legacy/cakey.pem" \
			-set_serial "$serial" -days "$leaf_days" -sha256 -extfile "$legacy/leaf.ext" -out "$3" 2>/dev/null
		serial=$((serial + 1))
	}
	if [ -n "$ca_end" ]; then
		# A past validity needs `openssl ca`, which can backdate.
		leaf() {
			openssl req -new -key "$1" -subj "/OU=Intrusion Management System/CN=$2/O=Cisco Systems, Inc" \
				-out "$legacy/leaf.csr" 2>/dev/null
			printf '[x]\n' > "$legacy/leafca.ext"; cat "$legacy/leaf.ext" >> "$legacy/leafca.ext"
			openssl ca -batch -config "$legacy/ca.cnf" -cert "$legacy/cacert.pem" -keyfile "$legacy/cakey.pem" \
				-in "$legacy/leaf.csr" -out "$3" -notext -startdate "$ca_start" -enddate "$ca_end" \
				-extfile "$legacy/leafca.ext" -extensions x 2>/dev/null
		}
	fi
	leaf "$root/etc/sf/keys/sftunnel-key.pem" "$fmc" "$root/etc/sf/keys/sftunnel-cert.pem"
	for u in "${uuids[@]}"; do
		leaf "$root/var/sf/peers/$u/certs_pushed/sftunnel-key.pem" "$u" \
			"$root/var/sf/peers/$u/certs_pushed/sftunnel-cert.pem"
	done
	rm -f "$legacy/ca.csr" "$legacy/leaf.csr"
fi
echo "FMC tree for $fmc in $root: ${#uuids[@]} peers${legacy:+, legacy InternalCA in $legacy}"
