# Sourced by the bench drivers that start processes into the associative
# array pid[NAME]; $BENCH_NAME names the driver in messages.
#
# stop_procs NAME...: SIGCONT (a bench may have stopped it) and SIGTERM to
# each, then waits for each, SIGKILL after 5 s.
stop_procs() {
	local n i
	for n in "$@"; do
		kill -CONT "${pid[$n]}" 2>/dev/null
		kill -TERM "${pid[$n]}" 2>/dev/null
	done
	for n in "$@"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "${pid[$n]}" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "${pid[$n]}" 2>/dev/null; then
			echo "$BENCH_NAME: $n (${pid[$n]}) ignored SIGTERM for 5 s;" \
			     "killing" >&2
			kill -KILL "${pid[$n]}" 2>/dev/null
		fi
		wait "${pid[$n]}" 2>/dev/null
	done
}
