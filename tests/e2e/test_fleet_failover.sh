#!/usr/bin/env bash
# Fleet, real etcd: leadership. A healthy canary walks its steps while
#  A. the leading agent is SIGKILLed in a pause: another node advances the
#     next step once the dead leader's session has expired;
#  B. the (new) leading agent is stopped (SIGSTOP) past its session, then
#     continued: another node leads meanwhile, and the deposed one never
#     writes a step again;
# and the rollout completes on every node. etcd's own history of the shared
# state then shows every step written once, in order, none skipped.
#
# Bounds: the session TTL is 2 s (FLEET_SESSION_TTL_S); etcd deletes the
# dead leader's key when it expires, the others see it on their watch and
# campaign at once; the new leader judges the pooled counts of the epoch
# (already enough) and writes the next step, typically TTL + 1 s after the
# kill. That time is printed, not judged (on a loaded machine etcd's expiry
# check and the watch add their own delays): the check is that a survivor
# wrote the step after the kill, before the 10 s wait ran out.
set -u
source "$(dirname "$0")/fleet_lib.sh"

TTL_S=2
WAIT_S=10
STEPS="[{setWeight: 10}, {pause: {duration: 3s}}, {setWeight: 20}, {pause: {duration: 3s}},
        {setWeight: 30}, {pause: {duration: 3s}}, {setWeight: 40}, {pause: {duration: 3s}},
        {setWeight: 50}, {pause: {duration: 3s}}, {setWeight: 100}]"
N_STEPS=11
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"
STATE_KEY=/canaryd-lab/rollouts/web/state

fleet_start "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 150 \
		--duration-s 600 --timeout-ms 3000
done

etcdctl_lab() { in_fns n1 etcdctl --endpoints "$FLEET_ETCD_ENDPOINTS" --command-timeout=2s "$@"; }
etcd_rev() { etcdctl_lab get / -w json | jget 'd["header"]["revision"]'; }
log_ms_after() {
	tail -n +"$(($3 + 1))" "$1" | grep -m1 -- "$2" |
		sed -n 's/^ts=\([^ ]*\) .*/\1/p' | xargs -r -I{} date -d {} +%s%3N
}
# The step of the shared state, as a node follows it.
shared_step() { fleet_get "$1" 'd["step"]'; }

# ---- A: the leader killed in a pause ----
check "a leader is elected" fleet_wait 10 "d['fleet']['leader'] != ''" 1
leader=$(fleet_leader)
echo "# leader: n$leader"
check "the fleet reaches the first pause (step 1)" fleet_wait 20 "d['step'] == 1" "$leader"
# Killed near the end of the pause, so that the next step is due at once: what
# the survivors then wait for is the leadership, not the pause. (One poll
# and a sleep: polls are slow on a loaded machine.)
rem=$(fleet_get "$leader" 'd["pause_remaining_s"] or 0')
sleep "$(python3 -c "print(max(0.0, $rem - 1.2))")"
others=()
for i in "${FLEET_NODES[@]}"; do [ "$i" = "$leader" ] || others+=("$i"); done
declare -A mark
for i in "${others[@]}"; do mark[$i]=$(wc -l <"$LAB_DIR/canaryd-n$i.log"); done
step_before=$(shared_step "${others[0]}")
kill_rev=$(etcd_rev)
kill_ms=$(date +%s%3N)
kill -9 "$(cat "$LAB_DIR/canaryd-n$leader.pid")"
check "another node advances the next step" \
	fleet_wait "$WAIT_S" "d['step'] > $step_before" "${others[@]}"
# The first state another node wrote after the kill: its writtenMs, from
# etcd's history since the kill.
first=$(in_fns n1 timeout 3 etcdctl --endpoints "$FLEET_ETCD_ENDPOINTS" watch \
	--rev=$((kill_rev + 1)) -w json "$STATE_KEY" 2>/dev/null | python3 -c '
import base64, json, sys
for line in sys.stdin:
    for ev in json.loads(line).get("Events") or []:
        v = json.loads(base64.b64decode(ev["kv"]["value"]))
        if v["writer"] != sys.argv[1]:
            print(v["writtenMs"])
            sys.exit(0)' "n$leader")
took=$((${first:-0} - kill_ms))
echo "# leader n$leader SIGKILLed (shared step $step_before then); a survivor wrote the next step $took ms later (session TTL $TTL_S s)"
check "a survivor wrote the next step after the leader died" expect "0 < $took <= $WAIT_S * 1000"
new_leader=$(fleet_get "${others[0]}" 'd["fleet"]["leader"]')
echo "# new leader: $new_leader"
check "the new leader is another node" expect "'$new_leader' != 'n$leader'"
# The killed node comes back: it takes the shared state before its maps.
fleet_agent "$leader"
check "the restarted node follows the fleet's step" \
	fleet_wait 5 "d['step'] >= $(shared_step "${others[0]}")" "$leader"

check "rollout v2 completes on every node" fleet_wait 40 "d['phase'] == 'Healthy'" 1 2 3

# ---- B: the leader stopped past its session, then continued ----
# A new canary (v3, the same steps), so that B does not race A's last steps.
fleet_rollout "$STEPS" "$ANALYSIS" v3
deposed=$(fleet_leader)
check "a pause step of v3 to stop its leader n$deposed in" \
	fleet_wait 30 "d['canary']['revision'] == 'v3' and d['phase'] == 'Paused'" "$deposed"
kill -STOP "$(cat "$LAB_DIR/canaryd-n$deposed.pid")"
stop_ms=$(date +%s%3N)
# A request already in flight when it stopped may still land: read after it.
sleep 0.3
stop_rev=$(etcd_rev)
rest=()
for i in "${FLEET_NODES[@]}"; do [ "$i" = "$deposed" ] || rest+=("$i"); done
step_at_stop=$(shared_step "${rest[0]}")
echo "# n$deposed stopped (SIGSTOP) at etcd revision $stop_rev, shared step $step_at_stop"
check "while n$deposed is stopped, another node advances" \
	fleet_wait 10 "d['step'] > $step_at_stop" "${rest[@]}"
# Past its session for sure, then continue it: its stale view must not write.
while [ $(($(date +%s%3N) - stop_ms)) -lt $(((TTL_S + 2) * 1000)) ]; do sleep 0.1; done
kill -CONT "$(cat "$LAB_DIR/canaryd-n$deposed.pid")"
check "the rollout completes on every node" fleet_wait 30 "d['phase'] == 'Healthy'" 1 2 3
sleep 1

# ---- etcd's history of the shared state ----
# --rev 1 replays every version of the key (the lab never compacts).
in_fns n1 timeout 3 etcdctl --endpoints "$FLEET_ETCD_ENDPOINTS" watch --rev=1 -w json \
	"$STATE_KEY" >"$LAB_DIR/history.json" 2>/dev/null
python3 - "$LAB_DIR/history.json" "$stop_rev" "n$deposed" >"$LAB_DIR/history.txt" <<'PY'
import base64, json, sys
revs = []
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    for ev in json.loads(line).get("Events") or []:
        kv = ev["kv"]
        v = json.loads(base64.b64decode(kv["value"]))
        revs.append((kv["mod_revision"], v["step"], v["phase"], v["weightBp"], v["writer"],
                     v["canaryRevision"]))
for r in revs:
    print("%d %d %s %d %s %s" % r)
PY
sed 's/^/# state: /' "$LAB_DIR/history.txt"
for rev in v2 v3; do
	steps=$(awk -v r="$rev" '$6 == r {print $2}' "$LAB_DIR/history.txt" | tr '\n' ' ')
	check "$rev: the history has the whole rollout" \
		expect "$(awk -v r="$rev" '$6 == r' "$LAB_DIR/history.txt" | wc -l) >= $N_STEPS + 1"
	# Step 0 is written twice (the seed, then its weight); otherwise a step
	# number never repeats, never goes back, never jumps.
	check "$rev: steps in order, each written once, none skipped: $steps" python3 -c '
import sys
s = [int(x) for x in sys.argv[1].split()]
ok = all(b == a + 1 for a, b in zip(s[1:], s[2:])) and s[:2] == [0, 0] and s[-1] == int(sys.argv[2])
sys.exit(0 if ok else 1)' "$steps" "$N_STEPS"
done
late=$(awk -v r="$stop_rev" -v n="n$deposed" '$1 > r && $5 == n' "$LAB_DIR/history.txt" | wc -l)
check "the deposed leader n$deposed wrote no state after it was stopped" expect "$late == 0"
grep -h 'fenced off\|no longer the leader\|session expired' "$LAB_DIR/canaryd-n$deposed.log" |
	sed 's/^/# n'"$deposed"': /' | head -5
fleet_load_stop
for i in "${FLEET_NODES[@]}"; do
	check "client of n$i: no failed request" expect "$(lab_failed "$LAB_DIR/load-$i.out") == 0"
done
lab_finish
