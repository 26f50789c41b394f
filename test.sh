#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite with ctest.
# The last lines of the output are ctest's summary.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
install_deps
build_sftca
cd build
exec ctest --output-on-failure -j"$(nproc)" --timeout 1200
