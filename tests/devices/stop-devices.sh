#!/bin/bash
# Stop every process of the simulated devices in a state directory.
set -euo pipefail
PROG=stop-devices.sh
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
	cat <<USAGE
Usage: $PROG --state DIR [--purge]

Stop the simulated devices made by start-devices.sh in DIR: every sshd, SSH
session, sftunnel endpoint and namespace holder of every device (found by
namespace, so stale pid files after a crash do not matter). Idempotent; a
missing DIR is not an error.

  --state DIR   the state directory
  --purge       also delete DIR afterwards
  -h, --help    this text
USAGE
}

STATE='' PURGE=0
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--state) [ $# -ge 2 ] || usage_error "--state needs a value"; STATE=$2; shift 2 ;;
	--purge) PURGE=1; shift ;;
	*) usage_error "unknown argument \"$1\"" ;;
	esac
done
[ -n "$STATE" ] || usage_error "--state is required"
[ -d "$STATE" ] || exit 0
check_state_dir "$STATE"
require_root

mapfile -t DEVS < <(state_devices "$STATE")
if [ ${#DEVS[@]} -gt 0 ]; then
	stop_devices "${DEVS[@]}" || die "some processes of $STATE survived; see above"
fi
if [ "$PURGE" = 1 ]; then
	rm -rf "$STATE"
fi
