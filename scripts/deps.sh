#!/usr/bin/env bash
# Installs the Debian packages a task needs, only those missing.
#   scripts/deps.sh build   compiler, CMake, the libraries
#   scripts/deps.sh test    build + Criterion, Python websockets/pytest, openssl, curl,
#                           Chromium and Node.js, and `npm ci` in tests/browser
#                           (playwright-core, which drives that Chromium, and
#                           ws, Node's WebSocket client for refusals.mjs),
#                           clang-format (scripts/format.sh), dpkg-dev and
#                           systemd (the package test: cpack's dpkg-shlibdeps,
#                           systemd-analyze verify)
#   scripts/deps.sh fuzz    build + clang and its libFuzzer runtime
#   scripts/deps.sh bench   build + python3 and nats-server (bench/mesh.sh's
#                           fanout3 row compares against a nats cluster)
set -euo pipefail

build=(gcc make cmake pkg-config libwebsockets-dev libwebsockets-evlib-uv
       libuv1-dev libcjson-dev libsodium-dev libssl-dev)
case "${1:-build}" in
build) want=("${build[@]}") ;;
test) want=("${build[@]}" libcriterion-dev python3 python3-websockets
            python3-pytest python3-cryptography openssl curl chromium nodejs
            clang-format
            dpkg-dev systemd) ;;
fuzz) want=("${build[@]}" clang libclang-rt-14-dev) ;;
bench) want=("${build[@]}" python3 nats-server) ;;
*) echo "usage: $0 build|test|fuzz|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
# npm: part of some Node.js builds, its own Debian package otherwise
if [ "${1:-build}" = test ] && ! command -v npm >/dev/null; then
	missing+=(npm)
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser test's npm packages, exactly as locked; playwright-core
# drives Debian's Chromium and downloads no browser of its own.
if [ "${1:-build}" = test ]; then
	browser=$(cd "$(dirname "$0")/../tests/browser" && pwd)
	if [ ! -d "$browser/node_modules/playwright-core" ] ||
	   [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
		echo "installing: npm packages in tests/browser" >&2
		(cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
			npm ci --no-audit --no-fund --loglevel=error)
	fi
fi
