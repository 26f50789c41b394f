#!/usr/bin/env bash
# Soak: the crash-safety test with 200 rounds of kill -9 of the signer at
# random moments (the ctest run does 20). Takes about ten minutes.
#   tests/soak/crash-soak.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SFTCA_SRC=${SFTCA_SRC:-$(cd "$here/../.." && pwd)}
export SFTCA_BUILD=${SFTCA_BUILD:-$SFTCA_SRC/build}
export CRASH_ROUNDS=${1:-200}
exec bash "$SFTCA_SRC/tests/integration/crash_safety.sh"
