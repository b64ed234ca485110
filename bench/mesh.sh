#!/usr/bin/env bash
# The mesh benchmark: wsrelay nodes linked on 127.0.0.1, the publisher on
# one node and the subscribers on another (wsrelay-loadgen --pub-port), and
# a summary block:
#   hop1     latency over one hop, line a - b - c: publisher on a, subs on b
#   hop2     latency over two hops: publisher on a, subscribers on c
#   fanout   cross-node deliveries/s: publisher on a, subscribers on b
#   fanout3  cross-node deliveries/s in a full mesh of 3: publisher on a,
#            subscribers split 50/50 over b and c; then the same loadgen
#            (--proto nats) against a 3-server nats-server cluster in the
#            same invocation, and the ratio wsrelay/nats. MESH_ROUNDS pairs,
#            the order alternating (wsrelay first in odd rounds). nats-server
#            is installed when missing (scripts/deps.sh bench); a skipped
#            comparison is said so, never silently left out
#   inm      INM frames sent per channel message in a 5-node full mesh where
#            only m1 (publisher) and m2 (subscribers) hold the channel: the
#            sum over the 5 nodes of the delta of wsrelay_inm_packets_out_total
#            over exactly the traffic, divided by the messages sent
# Each loadgen run probes until every subscriber got a message (--probe),
# then waits (--sync) until the publisher's node lists the subscribers' node
# among the channel's holders (GET /api/node) before the counted traffic.
# nats-server runs have no holders to wait for: the probe (every subscriber
# got a message through the cluster) is their readiness check.
# Usage: mesh.sh WSRELAY LOADGEN   (the `bench-mesh` CMake target passes both)
#
# Environment overrides (defaults in brackets):
#   MESH_SECONDS [5]  MESH_WARMUP [1]  MESH_SIZE [64]  MESH_RATE [1000]
#   MESH_SUBS [100]  MESH_WINDOW [64]  MESH_INM_SECONDS [2]  MESH_ROUNDS [3]
#   MESH_ONLY ["" = all; else a space-separated subset of: hop1 hop2 fanout
#   fanout3 inm]   MESH_KEEP=1 keeps the temporary directory (configs, logs,
#   outputs).  MESH_NATS=0 skips the nats-server cluster (said so);
#   NATS_SERVER [nats-server on PATH or /usr/sbin] the binary to run.
set -uo pipefail

BENCH_NAME=mesh
# shellcheck source=bench/args.sh
. "$(dirname "$0")/args.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"
UTIL="$HERE/mesh_util.py"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

DUR=${MESH_SECONDS:-5}
WARMUP=${MESH_WARMUP:-1}
SIZE=${MESH_SIZE:-64}
RATE=${MESH_RATE:-1000}
SUBS=${MESH_SUBS:-100}
WINDOW=${MESH_WINDOW:-64}
INM_DUR=${MESH_INM_SECONDS:-2}
ROUNDS=${MESH_ROUNDS:-3}
ONLY=${MESH_ONLY:-}
LG_TIMEOUT=30           # loadgen: setup, probing, each --sync wait
LINK_WAIT=15            # links up after start
HOLDER_WAIT=15          # the subscribers' node listed as a holder

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-mesh.XXXXXX") || exit 1
declare -A pid port mport kind
nodes=()                # wsrelay nodes started, in order
nats=()                 # nats-servers started, in order
failed=0
summary=()
lg_pid=""

# shellcheck source=bench/procs.sh
. "$(dirname "$0")/procs.sh"

stop_nodes() {
	stop_procs "${nodes[@]}"
	nodes=()
}

stop_nats() {
	stop_procs "${nats[@]}"
	nats=()
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	if [ -n "$lg_pid" ]; then
		kill -TERM "$lg_pid" 2>/dev/null
		wait "$lg_pid" 2>/dev/null
	fi
	stop_nodes
	stop_nats
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

# node_logs: the tail of every node's (and nats-server's) log, for a
# failure report.
node_logs() {
	local n
	for n in "${nodes[@]}" "${nats[@]}"; do
		echo "--- ${kind[$n]} $n (pid ${pid[$n]}, port ${port[$n]}):" >&2
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
		token = "mesh-bench-token-$name"
		max_peers = $max
		[limits]
		max_clients = 200000
		# the load comes from one address, as fast as the node takes
		# it: the per-address and per-connection limits (7.2) must not
		# be what is measured
		max_clients_per_ip = 200000
		max_pending_per_ip = 200000
		messages_per_second = 100000000
		messages_burst = 100000000
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
			token = "mesh-bench-token-$p"
			EOF
		done
	} >"$tmp/$name.toml"
}

# start_node NAME: starts it on port[NAME] and waits for "listening on".
start_node() {
	local n=$1 log="$tmp/$1.log" i
	"$WSRELAY" -c "$tmp/$n.toml" >"$log" 2>&1 </dev/null &
	pid[$n]=$!
	kind[$n]=wsrelay
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

# cpu_ticks NAME...: "T0 U1 U2 ...": now in clock ticks, then each named
# process's user + system CPU in clock ticks (its CPU share over traffic).
cpu_ticks() {
	local n
	printf '%s' "$(awk -v hz="$HZ" '{ printf "%d", $1 * hz }' /proc/uptime)"
	for n in "$@"; do
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

# figures FILE: "DELIVERIES/S P50_MS P99_MS" from a fanout run's output.
figures() {
	awk '
	function ms(v, u) { return u == "us" ? v / 1000 : u == "s" ? v * 1000 : v }
	NR == 1 { for (i = 1; i < NF; i++) if ($(i + 1) == "deliveries/s")
			{ d = $i; gsub(",", "", d) } }
	/latency under load:/ { for (i = 1; i < NF; i++) {
			if ($i == "p50") p50 = ms($(i + 1) + 0, $(i + 2))
			if ($i == "p99") p99 = ms($(i + 1) + 0, $(i + 2)) } }
	END { if (d == "") exit 1; printf "%s %.3f %.3f\n", d, p50, p99 }' "$1"
}

# traffic NAME PUB SUBS LOADGEN-ARGS...: one loadgen run, publisher on PUB,
# subscribers split over SUBS (comma-separated). For wsrelay nodes the INM
# frames they sent during exactly its traffic are counted; PUB a nats-server
# runs the loadgen with --proto nats. Adds summary lines; sets $last_out.
traffic() {
	local name=$1 pub=$2 sub=$3 out="$tmp/$1.out" err="$tmp/$1.err"
	local ctl="$tmp/$1.ctl" fd chan rc before after sent frames per
	local cpu0 cpu1 subn s sp=() sports group=() proto=ws
	shift 3
	IFS=, read -r -a subn <<<"$sub"
	for s in "${subn[@]}"; do sp+=("${port[$s]}"); done
	sports=$(IFS=,; echo "${sp[*]}")
	if [ "${kind[$pub]}" = nats-server ]; then
		proto=nats
		group=("${nats[@]}")
	else
		group=("${nodes[@]}")
	fi
	last_out=$out
	echo
	echo "== $name: publisher on $pub (port ${port[$pub]}), subscribers" \
	     "on $sub (port $sports)"
	mkfifo "$ctl" || exit 1
	exec {fd}<>"$ctl"
	"$LOADGEN" --proto "$proto" --host 127.0.0.1 --port "$sports" \
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
	if [ "$proto" = ws ] && ! "$PY" "$UTIL" wait-holder "$HOLDER_WAIT" \
		"${port[$pub]}" "$chan" "${subn[@]}"; then
		node_logs
		die "$name: the channel's holders never reached node $pub"
	fi
	[ "$proto" = ws ] && read -r -a before <<<"$(inm_sum metric)"
	read -r -a cpu0 <<<"$(cpu_ticks "${group[@]}")"
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
		return 1
	fi
	read -r -a cpu1 <<<"$(cpu_ticks "${group[@]}")"
	[ "$proto" = ws ] && read -r -a after <<<"$(inm_sum settle 5)"
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
		return 1
	fi
	local i deltas="" cpu="" n span line
	span=$(( ${cpu1[0]:-0} - ${cpu0[0]:-0} ))
	i=1
	for n in "${group[@]}"; do
		[ "$proto" = ws ] &&
			deltas+=" $n +$(( ${after[$i]:-0} - ${before[$i]:-0} ))"
		[ "$span" -gt 0 ] && cpu+=" $n $(( (${cpu1[$i]:-0} - ${cpu0[$i]:-0}) \
			* 100 / span ))%"
		i=$((i + 1))
	done
	echo "  ${kind[$pub]} CPU over the traffic (warm-up and drain" \
	     "included):$cpu"
	summary+=("$name: $(head -n 1 "$out")")
	line=$(grep -m 1 'latency under load:' "$out") &&
		summary+=("  ${line#"${line%%[! ]*}"}")
	summary+=("  ${kind[$pub]} CPU:$cpu")
	if [ "$proto" = ws ]; then
		sent=$(sed -n 's/.*; \([0-9,]*\) sent in all.*/\1/p' "$out" |
			tr -d ,)
		frames=$(( ${after[0]:-0} - ${before[0]:-0} ))
		per=$(awk -v f="$frames" -v s="${sent:-0}" \
			'BEGIN { if (s > 0) printf "%.3f", f / s; else print "?" }')
		echo "  INM frames sent during the traffic: $frames for $sent" \
		     "messages = $per per message (by node:$deltas)"
		summary+=("  INM frames/message $per ($frames for $sent; by node:$deltas)")
	fi
	for n in "$pub" "${subn[@]}"; do
		if ! kill -0 "${pid[$n]}" 2>/dev/null; then
			node_logs
			die "$name: $n died"
		fi
	done
	return 0
}

# nats_binary: prints the nats-server to run, installing it when missing;
# otherwise prints why not and returns 1.
nats_binary() {
	local b=${NATS_SERVER:-}
	if [ "${MESH_NATS:-1}" = 0 ]; then
		echo "MESH_NATS=0"
		return 1
	fi
	[ -n "$b" ] || b=$(command -v nats-server || true)
	[ -n "$b" ] || [ ! -x /usr/sbin/nats-server ] || b=/usr/sbin/nats-server
	if [ -z "$b" ]; then
		echo "mesh: nats-server missing: installing it" \
		     "(scripts/deps.sh bench)" >&2
		bash "$HERE/../scripts/deps.sh" bench >&2 || true
		b=$(command -v nats-server || true)
		[ -n "$b" ] || [ ! -x /usr/sbin/nats-server ] ||
			b=/usr/sbin/nats-server
	fi
	if [ -z "$b" ] || [ ! -x "$b" ]; then
		echo "nats-server is not installed and could not be installed"
		return 1
	fi
	echo "$b"
}

# start_nats BINARY NAME...: a nats-server cluster on 127.0.0.1 (client,
# cluster and monitoring ports free ones), each server routing to every
# other; waits until each lists all the others in GET /routez.
start_nats() {
	local bin=$1 n m i j sep ps cport=() mports=()
	shift
	read -r -a ps <<<"$("$PY" "$UTIL" ports $(($# * 3)))"
	i=0
	for n in "$@"; do
		port[$n]=${ps[$i]}
		cport+=("${ps[$((i + 1))]}")
		mport[$n]=${ps[$((i + 2))]}
		mports+=("${mport[$n]}")
		i=$((i + 3))
	done
	i=0
	for n in "$@"; do
		{
			echo "server_name: $n"
			echo "listen: 127.0.0.1:${port[$n]}"
			echo "http: 127.0.0.1:${mport[$n]}"
			echo "cluster {"
			echo "  name: wsrelay-bench"
			echo "  listen: 127.0.0.1:${cport[$i]}"
			printf '  routes: ['
			j=0
			sep=""
			for m in "$@"; do
				if [ "$m" != "$n" ]; then
					printf '%s nats-route://127.0.0.1:%s' \
						"$sep" "${cport[$j]}"
					sep=,
				fi
				j=$((j + 1))
			done
			echo " ]"
			echo "}"
		} >"$tmp/$n.conf"
		"$bin" -c "$tmp/$n.conf" >"$tmp/$n.log" 2>&1 </dev/null &
		pid[$n]=$!
		kind[$n]="nats-server"
		nats+=("$n")
		i=$((i + 1))
	done
	if ! "$PY" "$UTIL" wait-routes "$LINK_WAIT" $(($# - 1)) "${mports[@]}"
	then
		node_logs
		exit 1
	fi
	echo "mesh: nats cluster, $("$bin" --version 2>&1 | head -n 1):" \
	     "$(for n in "$@"; do printf '%s (pid %s, port %s) ' "$n" \
		"${pid[$n]}" "${port[$n]}"; done)"
}

# fanout3_round R WHICH...: one run on each of WHICH (ws, nats), in that
# order; ws_fig[R] / nats_fig[R] get "DELIVERIES/S P50_MS P99_MS".
fanout3_round() {
	local r=$1 w f
	shift
	for w in "$@"; do
		if [ "$w" = ws ]; then
			traffic "fanout3-wsrelay-$r" a b,c --scenario fanout \
				--subs "$SUBS" --window "$WINDOW" "${common[@]}" &&
				f=$(figures "$last_out") && ws_fig[r]=$f
		else
			traffic "fanout3-nats-$r" n1 n2,n3 --scenario fanout \
				--subs "$SUBS" --window "$WINDOW" "${common[@]}" &&
				f=$(figures "$last_out") && nats_fig[r]=$f
		fi
	done
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

if wanted fanout3; then
	ws_fig=()
	nats_fig=()
	nats_why=""
	if ! nats_bin=$(nats_binary); then
		nats_why=$nats_bin
		echo
		echo "mesh: fanout3: SKIPPING the nats-server cluster: $nats_why"
	fi
	# full mesh of 3: a dials b and c, b dials c
	start_mesh 5000 c:2: b:2:c a:2:b,c
	wait_links 2 a b c
	[ -z "$nats_why" ] && start_nats "$nats_bin" n1 n2 n3
	for ((r = 1; r <= ROUNDS; r++)); do
		# alternate who goes first: drift on a shared machine evens out
		if [ -n "$nats_why" ]; then
			fanout3_round "$r" ws
		elif ((r % 2)); then
			fanout3_round "$r" ws nats
		else
			fanout3_round "$r" nats ws
		fi
	done
	stop_nodes
	stop_nats
	line="fanout3: 1 publisher on a, $SUBS subscribers split over b and c:"
	summary+=("$line wsrelay 3-node full mesh vs nats-server 3-node cluster")
	ratios=()
	for ((r = 1; r <= ROUNDS; r++)); do
		read -r wd wp50 wp99 <<<"${ws_fig[r]:-0 ? ?}"
		if [ -n "$nats_why" ]; then
			line="  round $r: wsrelay $wd/s p50 $wp50 ms p99 $wp99 ms"
			summary+=("$line | nats SKIPPED ($nats_why)")
			continue
		fi
		read -r nd np50 np99 <<<"${nats_fig[r]:-0 ? ?}"
		ratio=$(awk -v a="$wd" -v b="$nd" -v c="$wp50" -v d="$np50" '
			BEGIN { if (a > 0 && b > 0 && c > 0 && d > 0)
				printf "%.2f %.2f", a / b, c / d; else print "? ?" }')
		line="  round $r: wsrelay $wd/s p50 $wp50 ms p99 $wp99 ms"
		line+=" | nats $nd/s p50 $np50 ms p99 $np99 ms"
		summary+=("$line | wsrelay/nats deliveries/s ${ratio% *}, p50 ${ratio#* }")
		[ "${ratio% *}" != "?" ] && ratios+=("${ratio% *}")
	done
	if [ -n "$nats_why" ]; then
		summary+=("  fanout3 ratio wsrelay/nats: none, nats SKIPPED ($nats_why)")
	elif [ ${#ratios[@]} -gt 0 ]; then
		med=$(printf '%s\n' "${ratios[@]}" | sort -n |
			awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
		summary+=("  fanout3 ratio wsrelay/nats (deliveries/s): median $med of ${#ratios[@]} round(s): ${ratios[*]}")
	fi
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
