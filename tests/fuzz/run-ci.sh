#!/usr/bin/env bash
# A short, bounded fuzzing run of one target for CI (ctest registers one per
# target through tests/fuzz/ctest.cmake).
#
# usage: run-ci.sh BUILD_DIR TARGET [SECONDS]
#   BUILD_DIR  a clang tree configured with -DSFTCA_FUZZ=ON (bin/fuzz_TARGET)
#   TARGET     a fuzz_<TARGET> of tests/fuzz/CMakeLists.txt (config, devices, ..., devout)
#   SECONDS    how long to fuzz (default 45)
#
# Every input of the committed corpus tests/fuzz/corpus/TARGET/ runs first
# (crash-* files there are regression inputs of bugs already fixed), then
# libFuzzer mutates for SECONDS. It works on a copy of the corpus: the
# committed one is never modified. Exit 0 when nothing was found; 77 when
# the binary is not built (ctest reports the test skipped); non-zero on a
# crash, sanitizer report, leak, timeout (-timeout=10 per input) or memory
# blow-up (-rss_limit_mb=2048), with the reproducer kept under
# BUILD_DIR/fuzz-artifacts/TARGET/ (or $SFTCA_FUZZ_ARTIFACTS) and printed.
set -uo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: run-ci.sh BUILD_DIR TARGET [SECONDS]" >&2
	exit 2
fi
build=$1 target=$2 seconds=${3:-45}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bin/fuzz_$target
corpus=$here/corpus/$target
dict=$here/dict/$target.dict

case $seconds in '' | *[!0-9]*) echo "run-ci.sh: SECONDS must be a whole number" >&2; exit 2 ;; esac
if [ ! -x "$bin" ]; then
	echo "run-ci.sh: $bin is not built (CC=clang cmake -S . -B build-fuzz -DSFTCA_FUZZ=ON;" \
		"cmake --build build-fuzz --target fuzz): skipped"
	[ "${CI:-}" = true ] && { echo "run-ci.sh: a skip fails under CI=true" >&2; exit 1; }
	exit 77
fi
if [ ! -d "$corpus" ]; then
	echo "run-ci.sh: no corpus $corpus for target '$target'" >&2
	exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sftca-fuzz-ci.$target.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
cp -p "$corpus"/* "$work/corpus/"

args=(
	"$work/corpus"
	-max_total_time="$seconds"
	-rss_limit_mb=2048
	-timeout=10
	-error_exitcode=1        # libFuzzer's default (77) would read as "skipped"
	-timeout_exitcode=1
	-artifact_prefix="$work/artifacts/"
	-close_fd_mask=2         # the product's log lines; libFuzzer's own output stays
	-print_final_stats=1
)
[ -f "$dict" ] && args+=(-dict="$dict")
# Inputs past the parsers' own limits: lines over LOGSCAN_MAX_LINE (8192),
# CSRs over max_csr_bytes (16384). The others stay at libFuzzer's 4096.
case $target in
logscan) args+=(-max_len=20000) ;;
csr) args+=(-max_len=17000) ;;
esac

export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=1:handle_abort=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}print_stacktrace=1:halt_on_error=1

echo "fuzz_$target: $(ls "$corpus" | wc -l) corpus inputs ($(ls "$corpus" | grep -c '^crash-') regression), $seconds s"
"$bin" "${args[@]}" >"$work/log" 2>&1
rc=$?
# libFuzzer's progress lines are many; keep the start, the findings and the end.
grep -E '^(INFO: Seed|INFO: seed corpus|#[0-9]+ +INITED|Done [0-9]+ runs|stat::)' "$work/log"

found=$(ls "$work/artifacts" 2>/dev/null)
if [ "$rc" -eq 77 ]; then
	tail -n 5 "$work/log"
	echo "fuzz_$target: skipped (the target could not start: see above)"
	[ "${CI:-}" = true ] && { echo "run-ci.sh: a skip fails under CI=true" >&2; exit 1; }
	exit 77
fi
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
	keep=${SFTCA_FUZZ_ARTIFACTS:-$build/fuzz-artifacts/$target}
	mkdir -p "$keep"
	tail -n 80 "$work/log"
	echo
	echo "fuzz_$target: FAILED (exit $rc)"
	for f in $found; do
		cp -p "$work/artifacts/$f" "$keep/$f"
		echo "reproducer: $keep/$f"
		echo "  run it:   $bin $keep/$f"
		echo "  minimise: $bin -minimize_crash=1 -runs=100000 -exact_artifact_path=$keep/$f.min $keep/$f"
	done
	[ -z "$found" ] && echo "(no reproducer written; the log above says what failed)"
	echo "Once fixed, add it as tests/fuzz/corpus/$target/crash-<what-it-was> (see tests/fuzz/README.md)."
	exit 1
fi
echo "fuzz_$target: OK, nothing found"
exit 0
