#!/usr/bin/env bash
# cmake --install puts the programs, scripts, example configurations and
# the unit where README says; a production configuration (BUILD_TESTING=OFF)
# needs neither cmocka nor libp11.
. "$(dirname "$0")/lib.sh"
need cmake

P=$T/inst
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"
for f in bin/sftca-signer bin/sftca share/sftca/init-token.sh share/sftca/dev-pki.sh; do
	[ -x "$P/$f" ] || fail "$f not installed executable"
done
for f in share/doc/sftca/examples/signer.conf share/doc/sftca/examples/client.conf \
	share/doc/sftca/examples/softhsm2.conf.in lib/systemd/system/sftca-signer.service; do
	[ -f "$P/$f" ] || fail "$f not installed"
done
[ ! -e "$P/etc" ] || fail "the install wrote under etc/"
expect_rc 0 "$P/bin/sftca" --version
expect_rc 0 "$P/bin/sftca-signer" --version
ok "cmake --install: both programs run from the prefix, scripts, examples and unit in place, nothing in etc/"

# Configure only (the build is the same sources): the production tree asks
# for neither test library.
cmake -S "$SRC" -B "$T/prod" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >"$T/prod.log" 2>&1 ||
	fail "BUILD_TESTING=OFF configure: $(tail -5 "$T/prod.log")"
assert_not_contains "$(grep -E '^(CMOCKA|LIBP11)_' "$T/prod/CMakeCache.txt" || true)" "FOUND|LIBRARIES" \
	"cmocka and libp11 not looked up"
[ ! -e "$T/prod/tests" ] || fail "BUILD_TESTING=OFF still configured tests/"
ok "BUILD_TESTING=OFF: no cmocka, no libp11, no tests configured"
