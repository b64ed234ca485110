#!/usr/bin/env bash
# Runs every benchmark scenario against a wsrelay node started here on
# 127.0.0.1 (port 0, parsed from its log) and prints a summary block.
# Usage: run.sh WSRELAY LOADGEN   (the `bench` CMake target passes both)
#
# Environment overrides (defaults in brackets):
#   BENCH_SECONDS [5]  BENCH_WARMUP [1]  BENCH_SIZE [64]  BENCH_WINDOW [64]
#   BENCH_DEEP_WINDOW [256]  BENCH_RATE [1000]  BENCH_IDLE_CONNS [10000]
#   BENCH_CONCURRENCY [256]  BENCH_ONLY ["" = all; else a space-separated
#   subset of: fanout-100 fanout-1000 fanout-100-deep channels latency idle]
#   BENCH_KEEP=1 keeps the temporary directory (config, node logs, outputs).
set -uo pipefail

BENCH_NAME=bench
# shellcheck source=bench/args.sh
. "$(dirname "$0")/args.sh"

DUR=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
SIZE=${BENCH_SIZE:-64}
WINDOW=${BENCH_WINDOW:-64}
DEEP_WINDOW=${BENCH_DEEP_WINDOW:-256}
RATE=${BENCH_RATE:-1000}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
CONCURRENCY=${BENCH_CONCURRENCY:-256}
ONLY=${BENCH_ONLY:-}

# Both the node and the load generator inherit this; each needs one
# descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$IDLE_CONNS" -gt $((nofile - 64)) ]; then
	echo "bench: ulimit -n is $nofile; idle scenario lowered to" \
	     "$((nofile - 64)) connections" >&2
	IDLE_CONNS=$((nofile - 64))
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-bench.XXXXXX") || exit 1
node_pid=""
port=""
failed=0
summary=()

stop_node() {
	local i
	if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
		kill -TERM "$node_pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			kill -0 "$node_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$node_pid" 2>/dev/null; then
			echo "bench: node $node_pid ignored SIGTERM for 5 s; killing" >&2
			kill -KILL "$node_pid" 2>/dev/null
		fi
		wait "$node_pid" 2>/dev/null
	fi
	node_pid=""
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	stop_node
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$tmp/node.toml" <<'EOF'
[node]
name = "bench"
listen = "127.0.0.1:0"
[limits]
max_clients = 200000
[log]
level = "warn"
EOF

# listen_port PID: the TCP port PID listens on, from /proc (for a node that
# logs nothing at level warn): its socket inodes matched against LISTEN
# (state 0A) entries of /proc/net/tcp and tcp6.
listen_port() {
	local inodes hex
	inodes=$(for l in /proc/"$1"/fd/*; do readlink "$l"; done 2>/dev/null |
		 sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ')
	[ -n "$inodes" ] || return 0
	hex=$(awk -v inodes=" $inodes " '$4 == "0A" && index(inodes, " " $10 " ") {
		n = split($2, a, ":"); print a[n]; exit }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null)
	[ -n "$hex" ] && echo $((16#$hex))
}

# start_node LABEL: a fresh node; sets node_pid and port.
start_node() {
	local log="$tmp/node-$1.log" i
	: >"$log"
	"$WSRELAY" -c "$tmp/node.toml" >"$log" 2>&1 </dev/null &
	node_pid=$!
	port=""
	for ((i = 0; i < 200; i++)); do         # 200 x 50 ms = 10 s
		port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' \
		       "$log" | head -n 1)
		[ -n "$port" ] && break
		port=$(listen_port "$node_pid")
		[ -n "$port" ] && break
		if ! kill -0 "$node_pid" 2>/dev/null; then
			echo "bench: the node exited at startup; its log:" >&2
			tail -n 20 "$log" >&2
			node_pid=""
			exit 1
		fi
		sleep 0.05
	done
	if [ -z "$port" ]; then
		echo "bench: no 'listening on http://127.0.0.1:PORT' line from" \
		     "the node and no listening socket within 10 s; its log:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	echo "bench: node pid $node_pid listening on 127.0.0.1:$port ($1)"
}

wanted() {
	[ -z "$ONLY" ] && return 0
	case " $ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# scenario NAME LOADGEN-ARGS...: runs one scenario on the current node.
scenario() {
	local name=$1 out="$tmp/$1.out" rc
	shift
	wanted "$name" || return 0
	echo
	echo "== $name"
	"$LOADGEN" --host 127.0.0.1 --port "$port" --server-pid "$node_pid" \
		--size "$SIZE" "$@" | tee "$out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		summary+=("$(head -n 1 "$out")")
	else
		summary+=("$name: FAILED (loadgen exit $rc)")
		failed=1
	fi
	if ! kill -0 "$node_pid" 2>/dev/null; then
		echo "bench: the node died during $name; its log:" >&2
		tail -n 20 "$tmp"/node-*.log >&2
		summary+=("$name: the node died")
		failed=1
		node_pid=""
		start_node "after-$name"
	fi
}

echo "bench: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' \
     /proc/cpuinfo | head -n 1)), Linux $(uname -r), ulimit -n $(ulimit -n)"
echo "bench: ${DUR}s measured after ${WARMUP}s warm-up per scenario," \
     "${SIZE}-byte messages"

common=(--seconds "$DUR" --warmup "$WARMUP")
start_node main
scenario fanout-100 --scenario fanout --subs 100 --window "$WINDOW" "${common[@]}"
scenario fanout-1000 --scenario fanout --subs 1000 --window "$WINDOW" "${common[@]}"
scenario fanout-100-deep --scenario fanout --subs 100 --window "$DEEP_WINDOW" \
	"${common[@]}"
scenario channels --scenario channels --channels 100 --subs 10 \
	--window "$WINDOW" "${common[@]}"
scenario latency --scenario latency --rate "$RATE" --subs 100 "${common[@]}"
stop_node

# A fresh node, so the RSS delta is not hidden by memory the allocator kept
# from the scenarios above.
if wanted idle; then
	start_node idle
	scenario idle --scenario idle --conns "$IDLE_CONNS" \
		--concurrency "$CONCURRENCY"
	stop_node
fi

echo
echo "==================== wsrelay bench summary ===================="
for line in "${summary[@]}"; do
	echo "$line"
done
echo "==============================================================="
exit "$failed"
