#!/usr/bin/env bash
# Installs the Debian packages a task needs, only those missing.
#   scripts/deps.sh build   compiler, CMake, the libraries
#   scripts/deps.sh test    build + Criterion, Python websockets/pytest, openssl
#   scripts/deps.sh fuzz    build + clang and its libFuzzer runtime
set -euo pipefail

build=(gcc make cmake pkg-config libwebsockets-dev libwebsockets-evlib-uv
       libuv1-dev libcjson-dev libsodium-dev libssl-dev)
case "${1:-build}" in
build) want=("${build[@]}") ;;
test) want=("${build[@]}" libcriterion-dev python3 python3-websockets
            python3-pytest openssl) ;;
fuzz) want=("${build[@]}" clang libclang-rt-14-dev) ;;
*) echo "usage: $0 build|test|fuzz" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
