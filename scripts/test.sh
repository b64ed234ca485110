#!/usr/bin/env bash
# Builds and runs every test twice: a normal build, then the whole suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer. Installs the
# Debian packages it needs first. Fails on the first failing run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)

run_suite() { # build-dir, cmake args...
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >/dev/null
	if ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
		cat "$dir/build.log" >&2
		return 1
	fi
	if grep -E "warning:" "$dir/build.log" >&2; then
		echo "the build must be warning-free" >&2
		return 1
	fi
	(cd "$dir" && ctest --output-on-failure -j2 --timeout 300)
}

echo "== plain build (RelWithDebInfo) =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZE=OFF

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON
