#!/usr/bin/env bash
# Long fuzzing runs: builds the clang fuzz tree if needed, then fuzzes each
# target in turn for SECONDS (default 3600), growing a work corpus outside
# the repository that the next run starts from.
#
# usage: tests/fuzz/run-long.sh [SECONDS] [TARGET...]
#   TARGETs default to all: config devices failedpush csr handlers logscan wire
# env:
#   SFTCA_FUZZ_BUILD_DIR  the clang tree (default: build-fuzz in the checkout)
#   SFTCA_FUZZ_WORK       work corpora and findings (default: /var/tmp/sftca-fuzz)
#   SFTCA_FUZZ_FORK       N > 1: libFuzzer's -fork=N (N processes; continues past
#                         crashes, each one saved) instead of one process
#
# Per target, under $SFTCA_FUZZ_WORK/TARGET/: corpus/ (new interesting inputs
# land here, merged and minimised at the end of the run; the committed seeds
# in tests/fuzz/corpus/TARGET/ are read, never written), artifacts/ (crash-*,
# leak-*, timeout-*, oom-* reproducers) and the log of the last run.
# Exit 1 when any target found something.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
all=(config devices failedpush csr handlers logscan wire certscan devparse audit anchor clientid devout)
seconds=3600
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
	seconds=$1
	shift
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
build=${SFTCA_FUZZ_BUILD_DIR:-$src/build-fuzz}
work=${SFTCA_FUZZ_WORK:-/var/tmp/sftca-fuzz}
fork=${SFTCA_FUZZ_FORK:-1}

for t in "${targets[@]}"; do
	if [ ! -d "$here/corpus/$t" ]; then
		echo "run-long.sh: unknown target '$t' (known: ${all[*]})" >&2
		exit 2
	fi
done

# Configure once, then let the build decide what is out of date.
if [ ! -f "$build/CMakeCache.txt" ]; then
	CC=clang cmake -S "$src" -B "$build" -DSFTCA_FUZZ=ON -DSFTCA_WERROR=ON >/dev/null || exit 1
fi
cmake --build "$build" --target fuzz -j"$(nproc)" >/dev/null || {
	echo "run-long.sh: the fuzz tree $build does not build" >&2
	exit 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=1:handle_abort=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}print_stacktrace=1:halt_on_error=1

failed=()
for t in "${targets[@]}"; do
	bin=$build/bin/fuzz_$t
	dir=$work/$t
	mkdir -p "$dir/corpus" "$dir/artifacts"
	args=(
		-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
		-error_exitcode=1 -timeout_exitcode=1
		-artifact_prefix="$dir/artifacts/" -close_fd_mask=2 -print_final_stats=1
	)
	[ -f "$here/dict/$t.dict" ] && args+=(-dict="$here/dict/$t.dict")
	case $t in # past LOGSCAN_MAX_LINE and max_csr_bytes (as run-ci.sh)
	logscan) args+=(-max_len=20000) ;;
	csr) args+=(-max_len=17000) ;;
	esac
	[ "$fork" -gt 1 ] && args+=(-fork="$fork" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
	before=$(ls "$dir/artifacts" | wc -l)
	echo "== fuzz_$t: $seconds s, work corpus $dir/corpus ($(ls "$dir/corpus" | wc -l) inputs)"
	"$bin" "${args[@]}" "$dir/corpus" "$here/corpus/$t" >"$dir/log" 2>&1
	rc=$?
	grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$dir/log"
	# Keep the work corpus small: a minimal set of inputs (seeds included)
	# that covers everything the run reached.
	rm -rf "$dir/corpus.merged"
	mkdir -p "$dir/corpus.merged"
	if "$bin" -merge=1 -close_fd_mask=2 -rss_limit_mb=2048 -timeout=10 "$dir/corpus.merged" \
		"$here/corpus/$t" "$dir/corpus" >"$dir/merge.log" 2>&1; then
		rm -rf "$dir/corpus"
		mv "$dir/corpus.merged" "$dir/corpus"
	else
		rm -rf "$dir/corpus.merged"
		echo "   (merge failed, corpus left as it was: $dir/merge.log)"
	fi
	echo "   work corpus now $(ls "$dir/corpus" | wc -l) inputs"
	after=$(ls "$dir/artifacts" | wc -l)
	if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
		failed+=("$t")
		echo "   FOUND something (exit $rc); last lines of $dir/log:"
		tail -n 40 "$dir/log" | sed 's/^/   | /'
		ls -t "$dir/artifacts" | head -n $((after - before > 0 ? after - before : 1)) |
			sed "s|^|   reproducer: $dir/artifacts/|"
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	cat <<EOF

Findings in: ${failed[*]}. For each reproducer R of target T:
  1. see it:      $build/bin/fuzz_T R            (the product's log lines show here)
  2. minimise it: $build/bin/fuzz_T -minimize_crash=1 -runs=100000 -exact_artifact_path=R.min R
  3. fix the product code, rebuild (cmake --build $build --target fuzz), check R.min passes
  4. keep it:     cp R.min tests/fuzz/corpus/T/crash-<what-it-was>
     (run-ci.sh replays every corpus file first, so CI fails if the bug comes back)
EOF
	exit 1
fi
echo "nothing found in: ${targets[*]}"
