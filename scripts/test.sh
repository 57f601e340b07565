#!/bin/sh
# Installs dependencies, builds, and runs the whole test suite (unit + accuracy tiers).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/build.sh
cd build && ctest --output-on-failure -j"$(nproc)" "$@"
