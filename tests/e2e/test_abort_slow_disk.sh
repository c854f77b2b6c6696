#!/usr/bin/env bash
# An abort reaches the kernel before the state directory is written: with
# every fsync of the agent slowed to 6 s (strace injects the delay into the
# real syscalls), a canary that starts answering 503 is at weight 0 in the
# pinned map while its state file still says Paused; the abort reaches the
# file afterwards. Before, the abort waited for two fsyncs (file and
# directory) under the agent's lock, so the file said Degraded first. The
# time to weight 0 is printed, not judged.
set -u
source "$(dirname "$0")/lib.sh"

FSYNC_DELAY_US=6000000
ANALYSIS="{interval: 500ms, minRequests: 20, failureLimit: 1,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

lab_with_warm_backends
lab_rollout web "$LAB_VIP" "[{setWeight: 20}, {pause: {}}]" "$ANALYSIS"
lab_agent
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 400 --duration-s 40 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
check "the rollout holds at 20% in its pause" \
	lab_wait web "d['weight'] == 20 and d['phase'] == 'Paused'" 15

agent=$(cat "$LAB_DIR/canaryd.pid")
strace -f -qq -o /dev/null -e trace=fsync,fdatasync \
	-e inject=fsync,fdatasync:delay_enter=$FSYNC_DELAY_US -p "$agent" &
tracer=$!
echo "$tracer" >"$LAB_DIR/strace.pid"
sleep 1

kernel_weight_zero() { canaryctl -o json maps | jget '[s["weight"] for s in d["services"]][0] == 0'; }
bad_ms=$(date +%s%3N)
lab_backend_set cn1 error_rate=1
zero_ms=""
disk_at_zero=""
deadline=$((bad_ms + 20000))
while [ "$(date +%s%3N)" -lt "$deadline" ]; do
	if [ "$(kernel_weight_zero)" = True ]; then
		zero_ms=$(date +%s%3N)
		disk_at_zero=$(grep -o '"phase": "[A-Za-z]*"' "$LAB_STATE_DIR/web.json")
		break
	fi
	sleep 0.05
done
check "the kernel's weight went to 0" test -n "$zero_ms"
took=$((${zero_ms:-$deadline} - bad_ms))
echo "# weight 0 in the pinned map ${took} ms after the canary turned bad (each fsync takes $((FSYNC_DELAY_US / 1000)) ms)"
# Order, not time: had the abort waited for its save, the file would say
# Degraded before the kernel's weight was 0.
check "when the kernel's weight was 0 the state file did not say Degraded yet (${disk_at_zero:-none})" \
	test "${disk_at_zero:-}" = '"phase": "Paused"'
check "the agent reports the abort" \
	lab_wait web "d['phase'] == 'Degraded'" 30
# The state file is renamed into place after its own slowed fsync, and a save
# begun before the abort may hold the disk for two more: up to 18 s. Poll,
# with the delays still injected, rather than race the rename.
saved_on_disk() {
	local i
	for ((i = 0; i < 400; i++)); do
		grep -q '"phase": "Degraded"' "$LAB_STATE_DIR/web.json" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
reported_ms=$(date +%s%3N)
check "the abort is saved on disk all the same (each fsync still slowed)" saved_on_disk
echo "# on disk $(($(date +%s%3N) - reported_ms)) ms after the API reported it"
kill "$tracer" 2>/dev/null
wait "$tracer" 2>/dev/null
kill -TERM "$load" 2>/dev/null
wait "$load" 2>/dev/null
lab_agent_stop 2>/dev/null
lab_finish
