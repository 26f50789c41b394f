# skip WHY: exit 77 (ctest's SKIP_RETURN_CODE). A skipped test hides a
# capability, so under CI=true (.ci/run) a skip fails instead. Sourced by
# the integration tests' lib.sh and the devices' self-test.
skip() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: would skip under CI=true: $*" >&2
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}
