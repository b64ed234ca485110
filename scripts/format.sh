#!/usr/bin/env bash
# clang-format over every C source and header, in the style of
# .clang-format (tuned for clang-format 14, Debian's `clang-format`;
# other versions may format some lines differently).
#   scripts/format.sh           formats the files in place
#   scripts/format.sh --check   changes nothing: lists the files that are
#                               not formatted, exits 1 if there are any
# The ctest format.check runs the --check.
set -euo pipefail
cd "$(dirname "$0")/.."

dirs=(common config auth inm channels health mesh flows node clients bench
      tests/unit tests/fuzz)
clang_format=${CLANG_FORMAT:-clang-format}

check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if ! command -v "$clang_format" >/dev/null; then
	echo "format: $clang_format not found (scripts/deps.sh test installs it)" >&2
	exit 2
fi
version=$("$clang_format" --version | sed -nE 's/.*version ([0-9]+).*/\1/p')
if [ "$version" != 14 ]; then
	echo "format: warning: clang-format $version, .clang-format is tuned for 14" >&2
fi

present=()
for d in "${dirs[@]}"; do
	[ -d "$d" ] && present+=("$d")
done
files=()
while IFS= read -r -d '' f; do
	files+=("$f")
done < <(find "${present[@]}" -type f -name '*.[ch]' -print0 | sort -z)

if [ "$check" -eq 0 ]; then
	"$clang_format" -i "${files[@]}"
	exit 0
fi

bad=0
for f in "${files[@]}"; do
	if ! "$clang_format" "$f" | cmp -s "$f" -; then
		echo "$f"
		bad=1
	fi
done
if [ "$bad" -ne 0 ]; then
	echo "format: the files above are not formatted: run scripts/format.sh" >&2
fi
exit "$bad"
