#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite with ctest.
# Besides the ordinary build it builds three trees whose tests the one ctest
# run also covers: build-asan (ASan+UBSan: every unit and integration test
# again), build-tsan (the signer under ThreadSanitizer for the concurrency
# test, the client for its threaded paths) and build-fuzz (clang libFuzzer
# targets, a short run each).
# The last lines of the output are ctest's summary.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
install_deps --test
build_sftca

# build_tree DIR TARGETS CMAKE-ARGS...: configure and build one tree,
# printing its log only if it fails.
build_tree() {
	local dir=$1 targets=$2
	shift 2
	echo "building $dir"
	if ! { cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j"$(nproc)" ${targets:+--target $targets}; } \
		>"$dir.log" 2>&1; then
		tail -n 60 "$dir.log" >&2
		echo "building $dir failed (log: $dir.log)" >&2
		exit 1
	fi
}
# Every test tree carries fault injection (SFTCA_FAILPOINTS); release builds
# (build_sftca, quickstart) do not.
build_tree build-asan "" -DCMAKE_BUILD_TYPE=Debug -DSFTCA_SANITIZE=ON -DSFTCA_TEST_HOOKS=ON
build_tree build-tsan "sftca-signer p11shim sftca" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSFTCA_TSAN=ON \
	-DSFTCA_TEST_HOOKS=ON
build_tree build-fuzz fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSFTCA_FUZZ=ON \
	-DSFTCA_TEST_HOOKS=ON
build_tree build "" -DSFTCA_TEST_HOOKS=ON -DSFTCA_ASAN_BUILD_DIR="$PWD/build-asan" \
	-DSFTCA_TSAN_BUILD_DIR="$PWD/build-tsan" -DSFTCA_FUZZ_BUILD_DIR="$PWD/build-fuzz"

cd build
# The benchmarks (label perf) are run by hand: see tests/perf/README.md.
exec ctest --output-on-failure -j"$(nproc)" --timeout 2400 -LE perf
