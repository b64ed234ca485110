#!/usr/bin/env bash
# The layering check: only node/ (the process) speaks to libwebsockets and
# libuv; every other library is plain C over plain data.
#   scripts/check-layers.sh [BUILD_DIR]     (default: build)
# Fails, naming each offender, when
#   - a static library of BUILD_DIR other than those in $allowed references
#     an lws_* or uv_* symbol (nm -u on the .a, so it needs a build), or
#   - a header outside node/ includes <libwebsockets.h> or <uv.h>, which
#     would pull them into every file that includes it.
# Registered as the ctest layers.no_lws_below_node.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)

# the libraries allowed to call lws and libuv: the process, and the
# command-line client's should clients/cli/ become a library
allowed=(wr_node wr_cli)

fail=0

libs=()
while IFS= read -r -d '' a; do
	name=$(basename "$a" .a)
	name=${name#lib}
	for ok in "${allowed[@]}"; do
		[ "$name" = "$ok" ] && continue 2
	done
	libs+=("$a")
done < <(find "$build" -name 'libwr_*.a' -not -path '*/CMakeFiles/*' -print0 | sort -z)

if [ ${#libs[@]} -eq 0 ]; then
	echo "check-layers: no libwr_*.a under $build: build first" >&2
	exit 2
fi

# nm -A prints "lib.a:object.o:   U symbol" for each undefined symbol
for a in "${libs[@]}"; do
	bad=$(nm -u -A "$a" 2>/dev/null |
	      awk '$NF ~ /^(lws_|uv_)/ {
		      split($1, f, ":"); print f[2] ": " $NF
	      }' | sort -u)
	if [ -n "$bad" ]; then
		while IFS= read -r line; do
			echo "check-layers: $(basename "$a") ${line%%:*} references ${line#*: }" >&2
		done <<<"$bad"
		fail=1
	fi
done

# headers: anywhere in the source tree but node/, build trees and npm's
bad=$(find "$src" \( -path "$src/node" -o -path "$src/build*" \
		     -o -path "$build" -o -name .git -o -name node_modules \) -prune \
	   -o -name '*.h' -print0 |
      xargs -0 -r grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](libwebsockets|uv)(\.h|/)' ||
      true)
if [ -n "$bad" ]; then
	while IFS= read -r line; do
		echo "check-layers: ${line#"$src"/}: only node/ headers may include libwebsockets or libuv" >&2
	done <<<"$bad"
	fail=1
fi

if [ "$fail" -ne 0 ]; then
	echo "check-layers: FAILED: only node/ may use libwebsockets and libuv (README.md, Layout)" >&2
	exit 1
fi
echo "check-layers: ok: ${#libs[@]} libraries ($(for a in "${libs[@]}"; do basename "$a" .a; done | sed 's/^lib//' | paste -sd' ')) reference no lws_/uv_ symbol; no header outside node/ includes lws or uv"
