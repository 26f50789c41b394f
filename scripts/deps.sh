# Debian packages sftca needs to build, test and run; sourced by
# quickstart.sh and test.sh. install_deps installs whatever is missing.
SFTCA_PACKAGES=(
	build-essential cmake pkg-config git ca-certificates
	libssl-dev openssl libp11-dev libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
	libsqlite3-dev sqlite3 libpq-dev libinih-dev libcmocka-dev libjansson-dev libcsv-dev libssh-dev zlib1g-dev
	softhsm2 opensc p11-kit libp11-kit-dev libengine-pkcs11-openssl
	openssh-server openssh-client iproute2 procps util-linux gzip jq python3
)

# Only the test suite needs these: the fuzz tree (clang, libFuzzer), the
# memcheck test, and PostgreSQL for the [ledger] url tests (tests/pg.sh runs
# a server of each test's own from /usr/lib/postgresql/VERSION/bin; the
# cluster the package may set up is not used).
SFTCA_TEST_PACKAGES=(clang libclang-rt-14-dev valgrind postgresql)

# install_deps [--test]: --test adds SFTCA_TEST_PACKAGES.
install_deps() {
	local missing=() want=("${SFTCA_PACKAGES[@]}")
	[ "${1:-}" = --test ] && want+=("${SFTCA_TEST_PACKAGES[@]}")
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages; run as root or install them: ${missing[*]}" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build_sftca() {
	# A release build: no fault injection (test.sh turns it on for its run).
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSFTCA_TEST_HOOKS=OFF >/dev/null
	cmake --build build -j"$(nproc)"
}
