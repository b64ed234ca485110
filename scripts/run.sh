#!/usr/bin/env bash
# Quick start: install what is missing, build, start one node with the
# shipped defaults (node.toml.example) on 127.0.0.1:8080. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSRELAY_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target wsrelay >/dev/null
config=${1:-node.toml.example}
echo "starting wsrelay with $config — open http://127.0.0.1:8080/ in a browser (demo chat); clients connect to ws://127.0.0.1:8080/connect"
exec build/wsrelay -c "$config"
