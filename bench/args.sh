# Sourced by the bench drivers: checks "WSRELAY LOADGEN" and sets both.
# $BENCH_NAME names the driver in messages.
if [ $# -ne 2 ]; then
	echo "usage: $0 WSRELAY LOADGEN" >&2
	exit 2
fi
WSRELAY=$1
LOADGEN=$2
for f in "$WSRELAY" "$LOADGEN"; do
	if [ ! -x "$f" ]; then
		echo "$BENCH_NAME: $f is not an executable" >&2
		exit 2
	fi
done
