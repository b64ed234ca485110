#!/usr/bin/env bash
# Runs every benchmark scenario against a wsrelay node started here on
# 127.0.0.1 (port 0, parsed from its log) and prints a summary block.
# Usage: run.sh WSRELAY LOADGEN   (the `bench` CMake target passes both)
#
# Environment overrides (defaults in brackets):
#   BENCH_SECONDS [5]  BENCH_WARMUP [1]  BENCH_SIZE [64]  BENCH_WINDOW [64]
#   BENCH_DEEP_WINDOW [256]  BENCH_RATE [1000]  BENCH_IDLE_CONNS [10000]
#   BENCH_CONCURRENCY [256]  BENCH_ONLY ["" = all; else a space-separated
#   subset of: fanout-100 fanout-1000 fanout-100-deep channels latency idle
#   guarded history recovery; idle also runs idle-bare and idle-auth]  BENCH_ROUNDS [3] rounds of the guarded
#   and history pairs
#   BENCH_KEEP=1 keeps the temporary directory (config, node logs, outputs).
#   BENCH_PIN [1]: node on CPU 0, load generator on CPU 1 (taskset).
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

# Node and generator on a core each (BENCH_PIN=0: wherever the kernel
# puts them). Unpinned on this 2-core machine the same build gave two
# families of figures, ~2.6 M and ~3.7 M deliveries/s, by where the two
# processes happened to run: a pair of medians of 5 then moved by 25%.
NODE_PIN=() GEN_PIN=()
if [ "${BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] &&
	command -v taskset >/dev/null; then
	NODE_PIN=(taskset -c 0) GEN_PIN=(taskset -c 1)
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
# the load comes from one address, as fast as the node takes it: the
# per-address and per-connection limits must not be what is measured
max_clients_per_ip = 200000
max_pending_per_ip = 200000
messages_per_second = 100000000
messages_burst = 100000000
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

# start_node LABEL [CONFIG]: a fresh node (CONFIG: $tmp/node.toml); sets
# node_pid and port.
start_node() {
	local log="$tmp/node-$1.log" i
	: >"$log"
	"${NODE_PIN[@]}" "$WSRELAY" -c "${2:-$tmp/node.toml}" >"$log" 2>&1 </dev/null &
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
	case "$1" in idle-bare | idle-auth) wanted idle && return 0 ;; esac # with idle
	return 1
}

# scenario NAME LOADGEN-ARGS...: runs one scenario on the current node.
scenario() {
	local name=$1 out="$tmp/$1.out" rc
	shift
	wanted "$name" || return 0
	echo
	echo "== $name"
	"${GEN_PIN[@]}" "$LOADGEN" --host 127.0.0.1 --port "$port" --server-pid "$node_pid" \
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

# The guarded node's config (the idle-auth and guarded scenarios): every
# 7.1/7.2 check on (auth required, an Origin list the loadgen, sending
# none, passes, the per-address count and the send bucket), and a token
# for the load generator to log in with
printf '%s\n' "bench-hs256-secret-0123456789abcdef" >"$tmp/hs256.key"
cp "$tmp/node.toml" "$tmp/node-guarded.toml"
cat >>"$tmp/node-guarded.toml" <<EOF
[auth]
hs256_secret_file = "$tmp/hs256.key"
required = true
[web]
allowed_origins = ["https://app.example.com"]
EOF
token=$("$WSRELAY" token --secret-file "$tmp/hs256.key" --sub bench \
	--ttl 1h) || { echo "bench: wsrelay token failed" >&2; exit 1; }

# A fresh node, so the RSS delta is not hidden by memory the allocator kept
# from the scenarios above.
if wanted idle; then
	start_node idle
	scenario idle --scenario idle --conns "$IDLE_CONNS" \
		--concurrency "$CONCURRENCY"
	stop_node
	# the same connections that only upgrade: what a connection itself
	# costs (the line above adds a channel and its reservation each)
	start_node idle-bare
	scenario idle-bare --scenario idle --bare --conns "$IDLE_CONNS" \
		--concurrency "$CONCURRENCY"
	stop_node
	# and logged in (7.1): what a connection costs with its auth state
	start_node idle-auth "$tmp/node-guarded.toml"
	scenario idle-auth --scenario idle --bare --token "$token" \
		--conns "$IDLE_CONNS" --concurrency "$CONCURRENCY"
	stop_node
fi

rate_of() { # the deliveries/s of a loadgen output, as a number
	sed -n 's/^fanout [^:]*: \([0-9,]*\) deliveries\/s.*/\1/p' "$1" |
		head -n 1 | tr -d ,
}
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# The node's CPU per delivery of a loadgen output, in ns: what a pair
# compares when the load generator, not the node, bounds the rate (then
# deliveries/s move with the generator, the node's cost per delivery not)
cost_of() {
	awk '/^fanout .* deliveries\/s/ { gsub(",", "", $3); rate = $3 }
	     /^  cpu: node/ { cpu = $3; sub("%,?", "", cpu) }
	     END { if (rate > 0 && cpu != "") printf "%.1f", cpu * 1e7 / rate }' "$1"
}
# pair KIND WORD ON_CONFIG ON_NODE OFF_NODE ON_LABEL OFF_LABEL [LOADGEN-ARGS
# of the "on" side...]: fan-out 1 -> 100 and 1 -> 1000 on a node started
# with ON_CONFIG beside one with the plain config, BENCH_ROUNDS rounds, the
# order alternating (a machine that slows down over the run must not
# favour one side); the medians, their ratio and the node's CPU per
# delivery go into the summary
pair() {
	local kind=$1 word=$2 cfg=$3 on_node=$4 off_node=$5 on_label=$6 \
		off_label=$7
	shift 7
	local rounds=${BENCH_ROUNDS:-3} subs r order mode out v c
	local on off con coff extra
	for subs in 100 1000; do
		off=() on=() con=() coff=()
		for ((r = 1; r <= rounds; r++)); do
			order="off on"
			[ $((r % 2)) = 0 ] && order="on off"
			for mode in $order; do
				echo
				echo "== $kind fanout-$subs round $r: $word $mode"
				extra=()
				if [ "$mode" = on ]; then
					start_node "$on_node-$subs-$r" "$cfg"
					extra=("$@")
				else
					start_node "$off_node-$subs-$r"
				fi
				out="$tmp/$kind-$subs-$r-$mode.out"
				"${GEN_PIN[@]}" "$LOADGEN" --host 127.0.0.1 --port "$port" \
					--server-pid "$node_pid" --size "$SIZE" \
					--scenario fanout --subs "$subs" \
					--window "$WINDOW" "${common[@]}" "${extra[@]}" |
					tee "$out"
				stop_node
				v=$(rate_of "$out")
				if [ -z "$v" ]; then
					summary+=("$kind fanout-$subs: FAILED (round $r, $word $mode)")
					failed=1
					continue
				fi
				c=$(cost_of "$out")
				if [ "$mode" = on ]; then on+=("$v"); con+=("$c"); else off+=("$v"); coff+=("$c"); fi
			done
		done
		if [ ${#on[@]} -gt 0 ] && [ ${#off[@]} -gt 0 ]; then
			summary+=("$(awk -v k="$kind" -v s="$subs" \
				-v la="$on_label" -v lb="$off_label" \
				-v a="$(median "${on[@]}")" -v b="$(median "${off[@]}")" \
				-v r="$rounds" \
				-v ca="$(median "${con[@]}")" -v cb="$(median "${coff[@]}")" 'BEGIN {
				printf "%s fanout 1->%s: %s %.0f, %s %.0f deliveries/s (medians of %d rounds), ratio %.3f; node CPU %.1f vs %.1f ns per delivery, ratio %.3f", k, s, la, a, lb, b, r, a / b, ca, cb, ca / cb }')")
		fi
	done
}

# The guarded pair: the fan-outs on a node with [auth] required (every
# connection authenticates with an HS256 token first) and [web]
# allowed_origins set, beside the same on a node without, alternating,
# BENCH_ROUNDS rounds; the medians and their ratio (goal: within 3%). The
# per-address count and the send bucket run on both (set high, above).
if wanted guarded; then
	pair guarded auth "$tmp/node-guarded.toml" guarded open \
		"auth required" open --token "$token"
fi

# The history pair (PROTOCOL.md 7.3): the fan-outs on a node with
# [history] size = 100 (every message kept in the channel's ring, nobody
# recovering: the offset variant is never built) beside the same without,
# alternating, BENCH_ROUNDS rounds; medians and ratio (goal: within 5%).
if wanted history; then
	cp "$tmp/node.toml" "$tmp/node-history.toml"
	printf '[history]\nsize = 100\n' >>"$tmp/node-history.toml"
	pair history history "$tmp/node-history.toml" history nohistory \
		"size 100" off
fi

# The recovery benchmark (bench/recovery.py): 1,000 subscribers reconnect
# at once with since, each missing 100 messages.
if wanted recovery; then
	echo
	echo "== recovery"
	if /usr/bin/python3 "$(dirname "$0")/recovery.py" "$WSRELAY" \
		--size "$SIZE" | tee "$tmp/recovery.out"; then
		summary+=("$(tail -n 1 "$tmp/recovery.out")")
	else
		summary+=("recovery: FAILED")
		failed=1
	fi
fi

echo
echo "==================== wsrelay bench summary ===================="
for line in "${summary[@]}"; do
	echo "$line"
done
echo "==============================================================="
exit "$failed"
