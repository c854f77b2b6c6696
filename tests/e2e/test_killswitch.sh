#!/usr/bin/env bash
# The operator's kill switch holds while the agent is busy: with a stable
# endpoint's health check flapping (the health worker rewrites the service
# several times a second), set-weight verbs arriving through the API, and a
# stale writer putting back the service as it was before the rollback,
# canaryctl emergency-rollback engages killswitch_v<N>, and no new connection
# reaches the canary afterwards, however the service is rewritten. The
# switch and its hold survive an agent restart; only emergency-clear
# releases it. Bounded: about 25 s.
set -u
source "$(dirname "$0")/lib.sh"

lab_require_root
trap 'flap_stop; lab_down' EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
lab_rollout web "$LAB_VIP" "[{setWeight: 50}, {pause: {}}]" "{minRequests: 20}" \
	"  healthCheck: {interval: 100ms, timeout: 50ms, failureThreshold: 1}"
lab_agent
lab_wait web "d['weight'] == 50" 5 || lab_fail "rollout did not reach 50%"

# st2 goes down and up every 0.3 s; set-weight verbs race with it. Both stop
# after at most 60 rounds (about 20 s) or at exit.
FLAP_PID=
STALE_PID=
flap_stop() {
	[ -n "$FLAP_PID" ] && kill "$FLAP_PID" 2>/dev/null
	[ -n "$STALE_PID" ] && kill "$STALE_PID" 2>/dev/null
	FLAP_PID=
	STALE_PID=
}
(
	for i in $(seq 1 60); do
		kill "$(cat "$LAB_DIR/st2.pid")" 2>/dev/null
		sleep 0.15
		lab_backend st2
		canaryctl set-weight web $((40 + i % 2 * 20)) >/dev/null 2>&1
		sleep 0.15
	done
) &
FLAP_PID=$!

# Snapshots A and B around four seconds after the rollback, C and D around
# an agent restart; checked afterwards (each check costs a second here).
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 400 --duration-s 40 \
	--snapshot-on-usr1
load=$LAB_LOAD_PID
sleep 2
writes_before=$(grep -c 'stable endpoint' "$LAB_DIR/canaryd.log")
# A writer that read the service before the rollback (the agent between its
# read and write, canaryctl writing back what it read) writes it after: made
# certain here by writing back a copy taken now, weight and all.
stale=$(bpftool -j map dump pinned "$LAB_BPFFS/$(pin_name services)" | python3 -c '
import json, sys
e = json.load(sys.stdin)[0]
print("key hex", " ".join(b[2:] for b in e["key"]), "value hex", " ".join(b[2:] for b in e["value"]))')
canaryctl emergency-rollback web | sed 's/^/# /'
(
	for i in $(seq 1 50); do
		# shellcheck disable=SC2086
		bpftool map update pinned "$LAB_BPFFS/$(pin_name services)" $stale && echo written
		sleep 0.1
	done
) >"$LAB_DIR/stale.out" 2>&1 &
STALE_PID=$!
sleep 0.3
kill -USR1 "$load" # A: just after the rollback
sleep 4
kill -USR1 "$load" # B: four seconds of flapping, verbs and stale writes later
kill "$STALE_PID" 2>/dev/null
wait "$STALE_PID" 2>/dev/null
STALE_PID=
stale_writes=$(grep -c written "$LAB_DIR/stale.out")
api_ks=$(lab_status web 'd["kill_switch"]')
gauge=$(in_ns node curl -sS -m 3 --unix-socket "$LAB_SOCKET" http://x/metrics |
	grep -c '^canaryd_rollout_kill_switch{rollout="web".*} 1$')
refused=$(canaryctl retry web 2>&1)
agent=$(cat "$LAB_DIR/canaryd.pid")
kill -9 "$agent"
wait "$agent" 2>/dev/null
lab_agent
kill -USR1 "$load" # C: the agent restarted
lab_wait web "d['kill_switch'] and d['phase'] == 'Degraded'" 5
restarted=$?
sleep 2
kill -USR1 "$load" # D
writes=$(($(grep -c 'stable endpoint' "$LAB_DIR/canaryd.log") - writes_before))
flap_stop
kill "$load"
wait "$load" 2>/dev/null

snap() { sed -n "$1p" "$LAB_DIR/load.out" | jget "$2"; }
cn_a=$(snap 1 'd["backends"].get("cn1", 0)')
cn_b=$(snap 2 'd["backends"].get("cn1", 0)')
cn_c=$(snap 3 'd["backends"].get("cn1", 0)')
cn_d=$(snap 4 'd["backends"].get("cn1", 0)')
n_ab=$(($(snap 2 'd["requests"]') - $(snap 1 'd["requests"]')))
n_bd=$(($(snap 4 'd["requests"]') - $(snap 2 'd["requests"]')))
echo "# health-check endpoint changes logged from the rollback to D: $writes"
check "the health worker kept rewriting the service ($writes endpoint changes)" \
	expect "$writes >= 4"
check "the stale writer put the pre-rollback service back $stale_writes times" \
	expect "$stale_writes >= 10"
check "the canary had traffic before the rollback ($cn_a)" expect "$cn_a > 100"
check "no new connection reached the canary in $n_ab connections ($cn_a -> $cn_b)" \
	expect "$n_ab > 500 and $cn_a == $cn_b"
check "the API reported the kill switch" expect "$api_ks"
check "the gauge said 1" expect "$gauge == 1"
check "verbs were refused while it was engaged" \
	expect "$(grep -c 'kill switch' <<<"$refused") == 1"
check "the restarted agent still reported the kill switch, rollout aborted" \
	expect "$restarted == 0"
check "no new connection reached the canary across the restart in $n_bd connections ($cn_b -> $cn_d)" \
	expect "$n_bd > 300 and $cn_b == $cn_c and $cn_c == $cn_d"

# Only the operator releases it; then the rollout can be retried.
canaryctl emergency-clear web | sed 's/^/# /'
check "emergency-clear releases it" lab_wait web "not d['kill_switch']" 3
check "retry is accepted again" expect "'$(canaryctl retry web >/dev/null 2>&1 && echo ok)' == 'ok'"
check "the rollout runs again at its weight" lab_wait web "d['phase'] in ('Progressing', 'Paused') and d['weight'] == 50" 5
lab_finish
