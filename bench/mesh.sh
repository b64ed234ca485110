#!/usr/bin/env bash
# The mesh benchmark: wsrelay nodes linked on 127.0.0.1, the publisher on
# one node and the subscribers on another (wsrelay-loadgen --pub-port), and
# a summary block:
#   hop1     latency over one hop, line a - b - c: publisher on a, subs on b
#   hop2     latency over two hops: publisher on a, subscribers on c
#   fanout   cross-node deliveries/s: publisher on a, subscribers on b
#   inm      INM frames sent per channel message in a 5-node full mesh where
#            only m1 (publisher) and m2 (subscribers) hold the channel: the
#            sum over the 5 nodes of the delta of wsrelay_inm_packets_out_total
#            over exactly the traffic, divided by the messages sent
# Each loadgen run probes until every subscriber got a message (--probe),
# then waits (--sync) until the publisher's node lists the subscribers' node
# among the channel's holders (GET /api/node) before the counted traffic.
# Usage: mesh.sh WSRELAY LOADGEN   (the `bench-mesh` CMake target passes both)
#
# Environment overrides (defaults in brackets):
#   MESH_SECONDS [5]  MESH_WARMUP [1]  MESH_SIZE [64]  MESH_RATE [1000]
#   MESH_SUBS [100]  MESH_WINDOW [64]  MESH_INM_SECONDS [2]
#   MESH_ONLY ["" = all; else a space-separated subset of: hop1 hop2 fanout
#   inm]   MESH_KEEP=1 keeps the temporary directory (configs, logs, outputs).
set -uo pipefail

BENCH_NAME=mesh
# shellcheck source=bench/args.sh
. "$(dirname "$0")/args.sh"
UTIL="$(cd "$(dirname "$0")" && pwd)/mesh_util.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

DUR=${MESH_SECONDS:-5}
WARMUP=${MESH_WARMUP:-1}
SIZE=${MESH_SIZE:-64}
RATE=${MESH_RATE:-1000}
SUBS=${MESH_SUBS:-100}
WINDOW=${MESH_WINDOW:-64}
INM_DUR=${MESH_INM_SECONDS:-2}
ONLY=${MESH_ONLY:-}
LG_TIMEOUT=30           # loadgen: setup, probing, each --sync wait
LINK_WAIT=15            # links up after start
HOLDER_WAIT=15          # the subscribers' node listed as a holder

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-mesh.XXXXXX") || exit 1
declare -A pid port
nodes=()                # started, in order
failed=0
summary=()
lg_pid=""

stop_nodes() {
	local n i
	for n in "${nodes[@]}"; do
		kill -TERM "${pid[$n]}" 2>/dev/null
	done
	for n in "${nodes[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "${pid[$n]}" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "${pid[$n]}" 2>/dev/null; then
			echo "mesh: node $n (${pid[$n]}) ignored SIGTERM for 5 s;" \
			     "killing" >&2
			kill -KILL "${pid[$n]}" 2>/dev/null
		fi
		wait "${pid[$n]}" 2>/dev/null
	done
	nodes=()
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	if [ -n "$lg_pid" ]; then
		kill -TERM "$lg_pid" 2>/dev/null
		wait "$lg_pid" 2>/dev/null
	fi
	stop_nodes
	if [ "${MESH_KEEP:-0}" = 1 ]; then
		echo "mesh: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wanted() {
	[ -z "$ONLY" ] && return 0
	case " $ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

die() {
	echo "mesh: $*" >&2
	exit 1
}

# node_logs: the tail of every node's log, for a failure report.
node_logs() {
	local n
	for n in "${nodes[@]}"; do
		echo "--- node $n (pid ${pid[$n]}, port ${port[$n]}):" >&2
		tail -n 8 "$tmp/$n.log" >&2
	done
}

# write_conf NAME MAX_PEERS ANNOUNCE_MS PEER...: the config of node NAME
# (port[NAME] set), dialling each PEER (port[PEER] set).
write_conf() {
	local name=$1 max=$2 announce=$3 p
	shift 3
	{
		cat <<-EOF
		[node]
		name = "$name"
		listen = "127.0.0.1:${port[$name]}"
		url = "ws://127.0.0.1:${port[$name]}/node"
		token = "tok-$name"
		max_peers = $max
		[limits]
		max_clients = 200000
		[log]
		level = "info"
		[mesh]
		reconnect_min_ms = 50
		reconnect_max_ms = 1000
		announce_interval_ms = $announce
		EOF
		for p in "$@"; do
			cat <<-EOF
			[[peers]]
			name = "$p"
			url = "ws://127.0.0.1:${port[$p]}/node"
			token = "tok-$p"
			EOF
		done
	} >"$tmp/$name.toml"
}

# start_node NAME: starts it on port[NAME] and waits for "listening on".
start_node() {
	local n=$1 log="$tmp/$1.log" i
	"$WSRELAY" -c "$tmp/$n.toml" >"$log" 2>&1 </dev/null &
	pid[$n]=$!
	nodes+=("$n")
	for ((i = 0; i < 200; i++)); do         # 200 x 50 ms = 10 s
		grep -q "listening on" "$log" && return 0
		if ! kill -0 "${pid[$n]}" 2>/dev/null; then
			echo "mesh: node $n exited at startup; its log:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		sleep 0.05
	done
	tail -n 20 "$log" >&2
	die "node $n printed no 'listening on' within 10 s"
}

# wait_links COUNT NODE...: wsrelay_peers_up reaches COUNT on every NODE.
wait_links() {
	local want=$1 n ports=()
	shift
	for n in "$@"; do ports+=("${port[$n]}"); done
	if ! "$PY" "$UTIL" wait-metric "$LINK_WAIT" wsrelay_peers_up "$want" \
		"${ports[@]}"; then
		node_logs
		exit 1
	fi
}

# start_mesh ANNOUNCE_MS SPEC...: a topology; each SPEC is
# NAME:MAX_PEERS:PEER,PEER (the peers it dials; the names need ports).
start_mesh() {
	local announce=$1 spec n max peers i ps
	shift
	read -r -a ps <<<"$("$PY" "$UTIL" ports $#)"
	i=0
	for spec in "$@"; do
		port[${spec%%:*}]=${ps[$i]}
		i=$((i + 1))
	done
	for spec in "$@"; do
		IFS=: read -r n max peers <<<"$spec"
		# shellcheck disable=SC2086
		write_conf "$n" "$max" "$announce" ${peers//,/ }
		start_node "$n"
	done
	echo "mesh: started $(for spec in "$@"; do n=${spec%%:*}
		printf '%s (pid %s, port %s) ' "$n" "${pid[$n]}" "${port[$n]}"
		done)"
}

# cpu_ticks: "T0 U1 U2 ...": now in clock ticks, then each node's user +
# system CPU in clock ticks (for the CPU share over the traffic).
cpu_ticks() {
	local n
	printf '%s' "$(awk -v hz="$HZ" '{ printf "%d", $1 * hz }' /proc/uptime)"
	for n in "${nodes[@]}"; do
		printf ' %s' "$(sed 's/.*) //' "/proc/${pid[$n]}/stat" 2>/dev/null |
			awk '{ print $12 + $13 }')"
	done
	echo
}

inm_sum() {
	local n ports=()
	for n in "${nodes[@]}"; do ports+=("${port[$n]}"); done
	"$PY" "$UTIL" "$@" wsrelay_inm_packets_out_total "${ports[@]}"
}

# wait_line FILE TEXT SECS: TEXT appears in FILE while the loadgen lives.
wait_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q "$2" "$1" && return 0
		kill -0 "$lg_pid" 2>/dev/null || { grep -q "$2" "$1"; return; }
		sleep 0.05
	done
	return 1
}

# traffic NAME PUB SUB LOADGEN-ARGS...: one loadgen run, publisher on node
# PUB, subscribers on node SUB; the INM frames the nodes sent during exactly
# its traffic are counted. Adds one summary line.
traffic() {
	local name=$1 pub=$2 sub=$3 out="$tmp/$1.out" err="$tmp/$1.err"
	local ctl="$tmp/$1.ctl" fd chan rc before after sent frames per
	local cpu0 cpu1
	shift 3
	echo
	echo "== $name: publisher on $pub (port ${port[$pub]}), subscribers" \
	     "on $sub (port ${port[$sub]})"
	mkfifo "$ctl" || exit 1
	exec {fd}<>"$ctl"
	"$LOADGEN" --host 127.0.0.1 --port "${port[$sub]}" \
		--pub-port "${port[$pub]}" --probe --sync --timeout "$LG_TIMEOUT" \
		--size "$SIZE" "$@" <"$ctl" >"$out" 2>"$err" {fd}>&- &
	lg_pid=$!
	if ! wait_line "$err" "^loadgen: ready channel=" $((LG_TIMEOUT + 5)); then
		cat "$err" >&2
		node_logs
		die "$name: the loadgen did not get ready"
	fi
	cat "$err"
	chan=$(sed -n 's/^loadgen: ready channel=\([^ ]*\).*/\1/p' "$err")
	if ! "$PY" "$UTIL" wait-holder "$HOLDER_WAIT" "${port[$pub]}" "$chan" \
		"$sub"; then
		node_logs
		die "$name: the channel's holders never reached node $pub"
	fi
	read -r -a before <<<"$(inm_sum metric)"
	read -r -a cpu0 <<<"$(cpu_ticks)"
	echo go >&"$fd"
	if ! wait_line "$err" "^loadgen: drained" \
		"$(awk -v a="$DUR" -v b="$WARMUP" 'BEGIN { print int(a + b + 20) }')"
	then
		cat "$out"; cat "$err" >&2
		exec {fd}>&-
		wait "$lg_pid"
		rc=$?
		lg_pid=""
		node_logs
		summary+=("$name: FAILED (loadgen exit $rc)")
		failed=1
		rm -f "$ctl"
		return
	fi
	read -r -a cpu1 <<<"$(cpu_ticks)"
	read -r -a after <<<"$(inm_sum settle 5)"
	echo go >&"$fd"
	wait "$lg_pid"
	rc=$?
	lg_pid=""
	exec {fd}>&-
	rm -f "$ctl"
	cat "$out"
	sed -n '/^loadgen: drained/,$p' "$err" | sed 1d >&2
	if [ "$rc" -ne 0 ]; then
		summary+=("$name: FAILED (loadgen exit $rc)")
		failed=1
		return
	fi
	sent=$(sed -n 's/.*; \([0-9,]*\) sent in all.*/\1/p' "$out" | tr -d ,)
	frames=$(( ${after[0]:-0} - ${before[0]:-0} ))
	per=$(awk -v f="$frames" -v s="${sent:-0}" \
		'BEGIN { if (s > 0) printf "%.3f", f / s; else print "?" }')
	local i deltas="" cpu="" n span
	span=$(( ${cpu1[0]:-0} - ${cpu0[0]:-0} ))
	i=1
	for n in "${nodes[@]}"; do
		deltas+=" $n +$(( ${after[$i]:-0} - ${before[$i]:-0} ))"
		[ "$span" -gt 0 ] && cpu+=" $n $(( (${cpu1[$i]:-0} - ${cpu0[$i]:-0}) \
			* 100 / span ))%"
		i=$((i + 1))
	done
	echo "  node CPU over the traffic (warm-up and drain included):$cpu"
	echo "  INM frames sent during the traffic: $frames for $sent" \
	     "messages = $per per message (by node:$deltas)"
	summary+=("$name: $(head -n 1 "$out")")
	summary+=("  INM frames/message $per ($frames for $sent; by node:$deltas)")
	if ! kill -0 "${pid[$pub]}" 2>/dev/null ||
	   ! kill -0 "${pid[$sub]}" 2>/dev/null; then
		node_logs
		die "$name: a node died"
	fi
}

echo "mesh: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' \
     /proc/cpuinfo | head -n 1)), Linux $(uname -r)"
echo "mesh: ${DUR}s measured after ${WARMUP}s warm-up per run," \
     "${SIZE}-byte messages, $SUBS subscribers"

common=(--seconds "$DUR" --warmup "$WARMUP")
if wanted hop1 || wanted hop2 || wanted fanout; then
	# a line a - b - c: a dials b, b dials c; max_peers = the degree, so
	# no node asks for more links (5.3) and a never links to c
	start_mesh 5000 c:1: b:2:c a:1:b
	wait_links 1 a c
	wait_links 2 b
	wanted hop1 && traffic "latency-1-hop" a b --scenario latency \
		--rate "$RATE" --subs "$SUBS" "${common[@]}"
	wanted hop2 && traffic "latency-2-hops" a c --scenario latency \
		--rate "$RATE" --subs "$SUBS" "${common[@]}"
	wanted fanout && traffic "fanout-1-hop" a b --scenario fanout \
		--subs "$SUBS" --window "$WINDOW" "${common[@]}"
	if ! peers_a=$("$PY" "$UTIL" peers "${port[a]}" 2>&1); then
		echo "mesh: warning: could not check node a's links:" \
		     "$peers_a" >&2
	elif [ "$peers_a" != b ]; then
		echo "mesh: warning: node a's peers are now '$peers_a', not 'b':" \
		     "the 2-hop figure may not be 2 hops" >&2
		summary+=("warning: node a linked to '$peers_a' (expected b only)")
	fi
	stop_nodes
fi

if wanted inm; then
	# full mesh of 5 (m_i dials every m_j, j > i); announces and the
	# remote-connection flow kept out of the count
	start_mesh 600000 m5:4: m4:4:m5 m3:4:m4,m5 m2:4:m3,m4,m5 \
		m1:4:m2,m3,m4,m5
	wait_links 4 m1 m2 m3 m4 m5
	traffic "inm-5-node-mesh" m1 m2 --scenario latency --rate "$RATE" \
		--subs "$SUBS" --seconds "$INM_DUR" --warmup 0
	stop_nodes
fi

echo
echo "==================== wsrelay mesh bench summary ===================="
for line in "${summary[@]}"; do
	echo "$line"
done
echo "===================================================================="
exit "$failed"
