#!/usr/bin/env bash
# The scale benchmark: SCALE_NODES wsrelay processes on 127.0.0.1, each
# with max_peers = 4 and one [[peers]] entry naming a random earlier node
# (node 0 dials nobody; seeded, so a seed gives the same dial tree), and a
# summary block with the goals next to the measured values:
#   formation  seconds from the first node's start until every node knows
#              every node and the links form one mesh; then until the link
#              set stops changing (remote connection fills max_peers)
#   links      links per node (both ends report it in GET /api/node)
#   idle       per node: INM packets/s sent (goal <= 2 x its links per
#              announce period); whole mesh: CPU from /proc/PID/stat
#              utime+stime (goal <= 0.05 of a core), INM bytes/s (first
#              and second half of the window, per node, per link)
#   traffic    a publisher on one node, one subscriber on each of 3 nodes
#              2-3 hops from it; INM frames per message summed over every
#              node (wsrelay_inm_packets_out_by_type_total{type="message"}
#              when the node has it, else the packets_out delta minus the
#              idle rate x the duration) against the fewest links of a
#              shortest-path tree from the publisher's node to the 3
#              (BFS over every node's GET /api/node peers; goal <= 1.2 x);
#              loss and duplicates: every subscriber must get every
#              message exactly once
#   kill       kill -9 of the hub (most links; never a traffic node): time
#              until every survivor knows exactly the survivors, all have
#              the same channels with the 4 traffic nodes as the holders,
#              and their links form one mesh (two polls in a row); then
#              loss and duplicates of messages sent right after that
#   restart    the hub again (same config and port; its children's one
#              [[peers]] entry is the hub): the same, with every node
#   partition  SIGSTOP of SCALE_STOP_NODES nodes (seeded; not the hub nor a
#              traffic node) for SCALE_STOP_SECONDS, then SIGCONT: the same
# Each "did not converge within X s" says which condition still failed.
# The subscribers and the publisher are bench/scale_util.py clients
# (websockets). Before counting, each waits until the publisher's node
# lists every subscriber's node among the channel's holders, then probes
# until every subscriber got a message. Views are polled every 0.25 s.
# Usage: scale.sh WSRELAY   (the `bench-scale` CMake target passes it;
# unlike run.sh and mesh.sh it needs no loadgen, so no bench/args.sh).
# Exit status 1 when a step failed (no formation, no convergence, loss or
# duplicates, a node died); the goals are reported, not enforced.
#
# Environment overrides (defaults in brackets):
#   SCALE_NODES [50]  SCALE_SEED [1]  SCALE_MAX_PEERS [4]
#   SCALE_ANNOUNCE_MS [1000]  SCALE_PEER_TIMEOUT_MS [4000]
#   SCALE_PING_MS [unset: the node's default, 5000]
#   SCALE_IDLE_SECONDS [10]  SCALE_MESSAGES [3000] (counted traffic)
#   SCALE_AFTER_MESSAGES [1000] (after each convergence)  SCALE_RATE [1000]
#   SCALE_SIZE [64]  SCALE_STOP_NODES [5]  SCALE_STOP_SECONDS [peer timeout
#   + ping interval + 1 s: every link to a stopped node has timed out]
#   SCALE_FORM_WAIT [60]  SCALE_CONVERGE_WAIT [45]  SCALE_SETTLE [3]
#   (seconds the link set must stay unchanged)  SCALE_KEEP=1 keeps the
#   temporary directory (configs, node logs, outputs).
set -uo pipefail

BENCH_NAME=scale

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 WSRELAY   (an executable)" >&2
	exit 2
fi
WSRELAY=$1
UTIL="$(cd "$(dirname "$0")" && pwd)/scale_util.py"
MESH_UTIL="$(dirname "$UTIL")/mesh_util.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

N=${SCALE_NODES:-50}
SEED=${SCALE_SEED:-1}
MAXP=${SCALE_MAX_PEERS:-4}
ANNOUNCE=${SCALE_ANNOUNCE_MS:-1000}
TIMEOUT=${SCALE_PEER_TIMEOUT_MS:-4000}
PING=${SCALE_PING_MS:-}
IDLE=${SCALE_IDLE_SECONDS:-10}
MSGS=${SCALE_MESSAGES:-3000}
AFTER=${SCALE_AFTER_MESSAGES:-1000}
RATE=${SCALE_RATE:-1000}
SIZE=${SCALE_SIZE:-64}
NSTOP=${SCALE_STOP_NODES:-5}
STOP=${SCALE_STOP_SECONDS:-$(( (TIMEOUT + ${PING:-5000}) / 1000 + 1 ))}
FORM_WAIT=${SCALE_FORM_WAIT:-60}
CONV_WAIT=${SCALE_CONVERGE_WAIT:-45}
SETTLE=${SCALE_SETTLE:-3}
CL_TIMEOUT=30           # clients: connect and subscribe
HOLDER_WAIT=15          # the subscribers' nodes listed as holders
PROBE_WAIT=10           # every subscriber got a probe
DRAIN=5                 # no delivery for this long: the rest is lost

# every node holds its links, its clients and HTTP polls; this shell
# holds none, but the nodes inherit it
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-scale.XXXXXX") || exit 1
declare -A pid port
nodes=()                # running or stopped, in order
summary=()
failed=0
cl_pid=""
cl_fd=""

# shellcheck source=bench/procs.sh
. "$(dirname "$0")/procs.sh"

# shellcheck disable=SC2317  # invoked by cleanup (the EXIT trap)
stop_nodes() {
	stop_procs "${nodes[@]}"
	nodes=()
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	if [ -n "$cl_pid" ]; then
		kill -TERM "$cl_pid" 2>/dev/null
		wait "$cl_pid" 2>/dev/null
	fi
	stop_nodes
	if [ "${SCALE_KEEP:-0}" = 1 ]; then
		echo "scale: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# node_logs [NODE...]: the tail of each node's log (default: every node's
# last 4 lines), for a failure report.
node_logs() {
	local n lines=8
	if [ $# -eq 0 ]; then
		set -- "${nodes[@]}"
		lines=4
	fi
	for n in "$@"; do
		echo "--- node $n (pid ${pid[$n]}, port ${port[$n]}):" >&2
		tail -n "$lines" "$tmp/$n.log" >&2
	done
}

# culprit_logs: the log tails of (up to 6 of) the nodes the last
# formed/converge named at fault.
culprit_logs() {
	local c=() n
	read -r -a c <<<"${val[culprits]:-}"
	[ "${#c[@]}" -gt 0 ] || return 0
	echo "scale: nodes at fault: ${c[*]}" >&2
	for n in "${c[@]:0:6}"; do node_logs "$n"; done
}

die() {
	echo "scale: $*" >&2
	exit 1
}

# write_conf NAME PEER|"": the config of node NAME (port[NAME] set),
# dialling PEER when given (bench/mesh.sh's write_conf, plus the timeout).
write_conf() {
	local name=$1 p=$2
	{
		cat <<-EOF
		[node]
		name = "$name"
		listen = "127.0.0.1:${port[$name]}"
		url = "ws://127.0.0.1:${port[$name]}/node"
		token = "mesh-bench-token-$name"
		max_peers = $MAXP
		[limits]
		max_clients = 200000
		[log]
		level = "info"
		[mesh]
		reconnect_min_ms = 50
		reconnect_max_ms = 1000
		announce_interval_ms = $ANNOUNCE
		peer_timeout_ms = $TIMEOUT
		EOF
		[ -n "$PING" ] && echo "ping_interval_ms = $PING"
		if [ -n "$p" ]; then
			cat <<-EOF
			[[peers]]
			name = "$p"
			url = "ws://127.0.0.1:${port[$p]}/node"
			token = "mesh-bench-token-$p"
			EOF
		fi
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
			echo "scale: node $n exited at startup; its log:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		sleep 0.05
	done
	tail -n 20 "$log" >&2
	die "node $n printed no 'listening on' within 10 s"
}

# specs [pid]: sp = NAME:PORT[:PID] of every node (running or stopped)
specs() {
	local n
	sp=()
	for n in "${nodes[@]}"; do
		if [ "${1:-}" = pid ]; then
			sp+=("$n:${port[$n]}:${pid[$n]}")
		else
			sp+=("$n:${port[$n]}")
		fi
	done
}

# util FILE CMD ARGS...: runs a scale_util.py command, shows its report,
# keeps its SUMMARY lines and its SET values (in val[KEY]) from FILE.
declare -A val
util() {
	local f=$1 rc line k
	shift
	"$PY" "$UTIL" "$@" >"$f" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"SUMMARY "*) summary+=("${line#SUMMARY }") ;;
		"SET "*) k=${line#SET }; val[${k%% *}]=${k#* } ;;
		*) echo "$line" ;;
		esac
	done <"$f"
	return $rc
}

# wait_line FILE TEXT SECS: TEXT appears in FILE while the clients live.
wait_line() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -q "$2" "$1" && return 0
		kill -0 "$cl_pid" 2>/dev/null || { grep -q "$2" "$1"; return; }
		sleep 0.05
	done
	return 1
}

# clients CMD TEXT SECS: sends CMD to the clients, waits for a line
# matching TEXT (each answer has its own) in their output, prints what
# they said since and keeps their SET values.
cl_seen=0
clients() {
	local f="$tmp/clients.out" total line k
	echo "$1" >&"$cl_fd"
	if ! wait_line "$f" "$2" "$3"; then
		sed -n "$((cl_seen + 1)),\$p" "$f"
		node_logs
		die "the clients said no '$2' within $3 s after '$1'"
	fi
	total=$(wc -l <"$f")
	while IFS= read -r line; do
		case $line in
		"SET "*) k=${line#SET }; val[${k%% *}]=${k#* } ;;
		result*) ;;
		*) echo "$line" ;;
		esac
	done < <(sed -n "$((cl_seen + 1)),${total}p" "$f")
	cl_seen=$total
}

# traffic TAG COUNT: COUNT counted messages; one summary line.
traffic() {
	local tag=$1 count=$2 what=$3
	clients "send $tag $count $RATE $DRAIN" "^result $tag " \
		$((count / RATE + DRAIN + 30))
	local lost=${val[lost_$tag]} dup=${val[dup_$tag]}
	if [ "$lost" = 0 ] && [ "$dup" = 0 ]; then
		summary+=("$what: $count messages x 3 subscribers: 0 lost, 0 duplicates")
	else
		summary+=("$what: $count messages x 3 subscribers: $lost lost, $dup duplicates (goal 0) NOT MET")
		failed=1
	fi
}

# then_label: how the traffic after the last converge is labelled
then_label() {
	case ${val[converged]} in
	did*) echo "  then, the views never agreed" ;;
	*) echo "  then, at once" ;;
	esac
}

# converge WHAT T0: waits until the running nodes agree (see the header).
converge() {
	local what=$1 t0=$2
	specs
	util "$tmp/converge-$what.out" converge "$CONV_WAIT" "$t0" "$chan" \
		"$(echo "$pub" "${holders[@]}" | tr ' ' ,)" "${sp[@]}"
	summary+=("$what: ${val[converged]}")
	case ${val[converged]} in
	did*)
		failed=1
		culprit_logs
		;;
	esac
}

echo "scale: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' \
     /proc/cpuinfo | head -n 1)), Linux $(uname -r), $(git -C \
     "$(dirname "$0")" describe --always --dirty 2>/dev/null || echo '?')"
echo "scale: $N nodes, max_peers $MAXP, announce ${ANNOUNCE} ms, peer" \
     "timeout ${TIMEOUT} ms, ping ${PING:-default} ms, seed $SEED"

# ---- start: node i dials one random earlier node ----
read -r -a ps <<<"$("$PY" "$MESH_UTIL" ports "$N")"
[ "${#ps[@]}" -eq "$N" ] || die "could not get $N free ports"
read -r -a parent <<<"$("$PY" "$UTIL" parents "$N" "$SEED")"
for ((i = 0; i < N; i++)); do port[n$i]=${ps[$i]}; done
t_start=$(date +%s.%N)
for ((i = 0; i < N; i++)); do
	if [ "$i" = 0 ]; then
		write_conf n0 ""
	else
		write_conf "n$i" "n${parent[$((i - 1))]}"
	fi
	t_last=$(date +%s.%N)
	start_node "n$i"
done
t_up=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "scale: started $N nodes in $t_up s (ports ${ps[0]}..., dial tree" \
     "$(for ((i = 1; i < N && i < 12; i++)); do
		printf 'n%s>n%s ' "$i" "${parent[$((i - 1))]}"; done)...)"
summary+=("started $N nodes in $t_up s")

# ---- formation and links ----
specs
if ! util "$tmp/formed.out" formed "$FORM_WAIT" "$SETTLE" "$t_start" \
	"$t_last" "${sp[@]}"; then
	culprit_logs
	failed=1
else
	# ---- idle ----
	echo
	specs pid
	util "$tmp/idle.out" idle "$IDLE" "$HZ" "$ANNOUNCE" "${sp[@]}" ||
		{ node_logs; die "the idle measurement failed"; }

	# ---- traffic ----
	echo
	util "$tmp/plan.out" plan "$SEED" "$NSTOP" "${sp[@]}" ||
		die "could not pick the traffic nodes"
	pub=${val[pub]}
	read -r -a holders <<<"${val[holders]}"
	read -r -a victims <<<"${val[victims]}"
	hub=${val[hub]}
	chan="scale-$SEED-$$"
	summary+=("traffic: publisher on $pub, subscribers on ${holders[*]} (hops ${val[hops]}); counted once $pub listed them as holders and each got a probe")
	mkfifo "$tmp/clients.ctl" || exit 1
	exec {cl_fd}<>"$tmp/clients.ctl"
	hspecs=()
	for h in "${holders[@]}"; do hspecs+=("$h:${port[$h]}"); done
	"$PY" "$UTIL" clients "$SIZE" "${port[$pub]}" "$chan" "${hspecs[@]}" \
		<"$tmp/clients.ctl" >"$tmp/clients.out" 2>&1 &
	cl_pid=$!
	if ! wait_line "$tmp/clients.out" "^ready channel=" "$CL_TIMEOUT"; then
		cat "$tmp/clients.out" >&2
		node_logs "$pub" "${holders[@]}"
		die "the clients did not subscribe within $CL_TIMEOUT s"
	fi
	cl_seen=$(wc -l <"$tmp/clients.out")
	if ! "$PY" "$MESH_UTIL" wait-holder "$HOLDER_WAIT" "${port[$pub]}" \
		"$chan" "${holders[@]}"; then
		node_logs "$pub" "${holders[@]}"
		die "the channel's holders never reached node $pub"
	fi
	echo "scale: $pub lists ${holders[*]} among the holders of $chan"
	clients "probe $PROBE_WAIT" "^probe" $((PROBE_WAIT + 10))
	if grep -q "^probe FAILED" "$tmp/clients.out"; then
		summary+=("$(grep -m 1 "^probe FAILED" "$tmp/clients.out")")
		failed=1
	fi
	util "$tmp/snap.out" snap "$tmp/before.json" "${sp[@]}" ||
		die "could not read the counters"
	traffic counted "$MSGS" "loss/duplicates"
	util "$tmp/snap.out" snap "$tmp/after.json" 5 "${sp[@]}" ||
		die "could not read the counters"
	util "$tmp/frames.out" frames "$tmp/before.json" "$tmp/after.json" \
		"$MSGS" "${val[ideal]}" "${val[idle_pps]}" "${val[idle_pps_spread]}"

	# ---- kill -9 of the hub ----
	echo
	echo "scale: kill -9 $hub (pid ${pid[$hub]}, ${val[hub_links]} links)"
	t0=$(date +%s.%N)
	kill -KILL "${pid[$hub]}"
	wait "${pid[$hub]}" 2>/dev/null
	for i in "${!nodes[@]}"; do
		[ "${nodes[$i]}" = "$hub" ] && unset 'nodes[i]'
	done
	nodes=("${nodes[@]}")
	converge "after kill -9 of hub $hub (${val[hub_links]} links)" "$t0"
	traffic after-kill "$AFTER" "$(then_label)"

	# ---- the hub back (same config, port and log), so the partition
	# starts from the whole mesh: the hub is its children's one [[peers]]
	echo
	echo "scale: restarting $hub"
	mv "$tmp/$hub.log" "$tmp/$hub.killed.log"
	t0=$(date +%s.%N)
	start_node "$hub"
	converge "after restarting $hub" "$t0"

	# ---- SIGSTOP partition ----
	echo
	if [ "${#victims[@]}" -eq 0 ]; then
		echo "scale: no node to stop: every other node is the hub or a" \
		     "traffic node"
		summary+=("partition: skipped, no node other than the hub and the traffic nodes")
	else
		echo "scale: SIGSTOP ${victims[*]} for $STOP s (their [[peers]]:" \
		     "$(for v in "${victims[@]}"; do i=${v#n}
			[ "$i" = 0 ] && printf 'n0>none ' ||
				printf '%s>n%s ' "$v" "${parent[$((i - 1))]}"; done))"
		for v in "${victims[@]}"; do kill -STOP "${pid[$v]}"; done
		sleep "$STOP"
		specs
		util "$tmp/stopped.out" stopped "$(echo "${victims[@]}" | tr ' ' ,)" \
			"${sp[@]}"
		echo "scale: at SIGCONT, ${val[stopped_view]}"
		t0=$(date +%s.%N)
		for v in "${victims[@]}"; do kill -CONT "${pid[$v]}"; done
		converge "after SIGSTOP of ${#victims[@]} nodes for $STOP s, SIGCONT" \
			"$t0"
		summary+=("  (at SIGCONT: ${val[stopped_view]})")
		traffic after-stop "$AFTER" "$(then_label)"
	fi
	echo quit >&"$cl_fd"
	for ((i = 0; i < 100; i++)); do         # 100 x 50 ms = 5 s
		kill -0 "$cl_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -TERM "$cl_pid" 2>/dev/null
	wait "$cl_pid"
	cl_pid=""
	exec {cl_fd}>&-
fi

for n in "${nodes[@]}"; do
	if ! kill -0 "${pid[$n]}" 2>/dev/null; then
		node_logs "$n"
		summary+=("node $n died")
		failed=1
	fi
done

echo
echo "==================== wsrelay scale bench summary ===================="
for line in "${summary[@]}"; do
	echo "$line"
done
echo "====================================================================="
exit "$failed"
