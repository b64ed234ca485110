#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS
# (default 60). Not part of the test run. Findings land in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh fuzz
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	-DWSRELAY_FUZZ=ON -DWSRELAY_TESTS=OFF -DFUZZ_SECONDS="${FUZZ_SECONDS:-60}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_config fuzz_frame fuzz_inm fuzz_host fuzz_jwt >/dev/null
cmake --build build-fuzz --target fuzz
