#!/usr/bin/env bash
# Faults under steady traffic: the agent killed in every phase, a stable
# backend dying, a canary backend dying, a state directory that refuses
# writes, and pins removed by hand. Unless the fault itself kills a
# backend, the client sees no failed request.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

kill_agent() {
	local pid
	pid=$(cat "$LAB_DIR/canaryd.pid")
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
}
HC="  healthCheck: {interval: 300ms, timeout: 100ms, failureThreshold: 2}"
ANALYSIS="{interval: 500ms, minRequests: 20, metrics: [{name: errorRate, max: 0.05}]}"

# 1. kill -9 in every phase: Progressing, Paused, Degraded, Healthy.
# The operator's abort between the kills drains: the default (reset) resets
# the canary's connections in flight by design (test_reset.sh), and
# a request caught in one is a failure that no kill caused.
lab_rollout web "$LAB_VIP" "[{setWeight: 20}, {pause: {duration: 3s}}, {setWeight: 40}, {pause: {}}]" \
	"$ANALYSIS" "$HC
  abort: {connections: drain}"
lab_agent
lab_load_bg "$LAB_DIR/kill.out" --mode newconn --connections 4 --rate 400 --duration-s 60
load=$LAB_LOAD_PID
# Each check reads the restarted agent's first answer and looks for what
# only the state file can give it: a fresh rollout would be at step 0 with
# no abort behind it, or in a pause started afresh (3 s).
lab_wait web "d['phase'] == 'Paused' and d['step'] == 1" 10 >/dev/null
left=$(lab_status web 'd["pause_remaining_s"]')
kill_agent
sleep 0.5
lab_agent
now=$(canaryctl -o json status web)
check "kill -9 while Paused (step 1, ${left} s left): resumed with less left ($(jget 'd["step"], d["pause_remaining_s"]' <<<"$now"))" \
	expect "$(jget "d['step'] > 1 or (d['step'] == 1 and d['phase'] == 'Paused' and d['pause_remaining_s'] <= $left - 0.4)" <<<"$now")"
# An abort and a retry leave a mark a fresh rollout lacks: aborts == 1.
canaryctl abort web >/dev/null
canaryctl retry web >/dev/null
lab_wait web "d['phase'] == 'Progressing' and d['aborts'] == 1" 5 >/dev/null
kill_agent
sleep 0.5
lab_agent
now=$(canaryctl -o json status web)
check "kill -9 while Progressing after a retry: resumed with its abort count ($(jget 'd["aborts"], d["step"]' <<<"$now"))" \
	expect "$(jget "d['aborts'] == 1 and d['phase'] in ('Progressing', 'Paused')" <<<"$now")"
canaryctl abort web | sed 's/^/# /'
kill_agent
lab_agent
check "kill -9 while Degraded: still Degraded after the restart" \
	lab_wait web "d['phase'] == 'Degraded' and d['weight'] == 0" 5
canaryctl retry web >/dev/null
canaryctl promote web --full >/dev/null
check "promoted" lab_wait web "d['phase'] == 'Healthy'" 5
kill_agent
lab_agent
check "kill -9 while Healthy: still Healthy after the restart" lab_wait web "d['phase'] == 'Healthy'" 5
kill "$load"
wait "$load"
echo "# the load across the kills: $(tail -1 "$LAB_DIR/kill.out" | jget '{k: v for k, v in d["errors"].items() if v}')"
check "no client request failed across four kills ($(tail -1 "$LAB_DIR/kill.out" | jget 'd["requests"]') requests)" \
	expect "$(lab_failed "$LAB_DIR/kill.out") == 0"

# 2. A stable backend dies: the health check takes it out of new connections.
LAB_CANARY_REVISION=v3 lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}]" "$ANALYSIS" "$HC"
check "a new rollout at 10% with health checks" \
	lab_wait web "d['canary']['revision'] == 'v3' and d['weight'] == 10" 10
lab_load_bg "$LAB_DIR/st2.out" --mode newconn --connections 4 --rate 400 --duration-s 8 \
	--snapshot-on-usr1 --timeout-ms 500
load=$LAB_LOAD_PID
sleep 1
kill "$(cat "$LAB_DIR/st2.pid")"
killed=$(date +%s%3N)
for i in $(seq 1 40); do grep -q 'stable endpoint down' "$LAB_DIR/canaryd.log" && break; sleep 0.1; done
noticed=$(date +%s%3N)
sleep 0.3
kill -USR1 "$load" # failures up to here: connections refused before the check noticed
wait "$load"
echo "# st2 killed; the agent routed around it $((noticed - killed)) ms later"
before=$(head -1 "$LAB_DIR/st2.out" | jget 'd["requests"] - d["ok"]')
after=$(lab_failed "$LAB_DIR/st2.out")
echo "# failed requests: $before while st2 was being noticed, $((after - before)) after"
check "the health check noticed the dead stable backend" grep -q 'stable endpoint down' "$LAB_DIR/canaryd.log"
check "no failed request once it was noticed" expect "$after == $before"
check "the rollout did not abort for a stable backend" expect "$(lab_status web 'd["phase"] != "Degraded"')"
lab_backend st2
lab_wait_backends
check "the backend comes back when it answers again" \
	bash -c "for i in \$(seq 1 30); do grep -q 'stable endpoint up again' '$LAB_DIR/canaryd.log' && exit 0; sleep 0.1; done; exit 1"

# 3. A canary backend dies mid-rollout: that is a failure, and the rollout aborts.
lab_load_bg "$LAB_DIR/cn1.out" --mode newconn --connections 4 --rate 400 --duration-s 8
load=$LAB_LOAD_PID
sleep 1
kill "$(cat "$LAB_DIR/cn1.pid")"
check "a dead canary backend aborts the rollout" lab_wait web "d['phase'] == 'Degraded'" 5
echo "# $(lab_status web 'd["message"]')"
kill "$load" 2>/dev/null
wait "$load" 2>/dev/null
lab_backend cn1
lab_wait_backends

# 4. The state directory refuses writes: a clear error, the rollout holds, nothing is corrupted.
LAB_CANARY_REVISION=v4 lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}, {setWeight: 30}, {pause: {}}]" \
	"{minRequests: 10}"
lab_load_bg "$LAB_DIR/ro.out" --mode newconn --connections 2 --rate 200 --duration-s 10
check "a new rollout reaches its pause at 10%" \
	lab_wait web "d['canary']['revision'] == 'v4' and d['step'] == 1 and d['phase'] == 'Paused'" 10
cp "$LAB_STATE_DIR/web.json" "$LAB_DIR/web.json.before"
chmod 0500 "$LAB_STATE_DIR" # the agent has no CAP_DAC_OVERRIDE left: this binds it
promote_out=$(canaryctl promote web 2>&1)
promote_rc=$?
echo "# promote: $promote_out"
check "promote is refused with the reason: nothing changed" \
	expect "$promote_rc != 0 and 'Permission denied' in '''$promote_out''' and 'nothing changed' in '''$promote_out'''"
sleep 1.5
check "a clear error names the state directory" grep -q 'cannot save rollout state: holding the rollout' "$LAB_DIR/canaryd.log"
check "the rollout holds where it was (step 1, weight 10)" \
	expect "$(lab_status web '(d["step"], d["weight"])') == (1, 10)"
check "the state file is untouched and still valid" cmp -s "$LAB_STATE_DIR/web.json" "$LAB_DIR/web.json.before"
chmod 0700 "$LAB_STATE_DIR"
check "once writable again, promote goes through" canaryctl promote web
check "and the rollout goes on" lab_wait web "d['weight'] == 30" 5
check "and its state is saved" grep -q '"weight_basis_points": 3000' "$LAB_STATE_DIR/web.json"
wait "$LAB_LOAD_PID"
check "no client request failed meanwhile" expect "$(lab_failed "$LAB_DIR/ro.out") == 0"

# 5. Pins removed by hand: the agent pins the maps again and says so.
rm -rf "$LAB_BPFFS"
check "the agent pins the maps again" \
	bash -c "for i in \$(seq 1 30); do [ -e '$LAB_BPFFS/$(pin_name services)' ] && exit 0; sleep 0.1; done; exit 1"
check "and logs it" grep -q 'pinned maps were removed: pinned again' "$LAB_DIR/canaryd.log"
check "canaryctl reads them" expect "$(canaryctl -o json maps | jget 'len(d["services"])') == 1"
lab_finish
