#!/usr/bin/env bash
# Decisions that survive reloads, restarts and lost files:
#  1. an identical config re-applied every 0.8 s does not keep a failing
#     canary (50% errors, minRequests 50 at ~40 canary req/s) from abort;
#  2. a directory whose only file was renamed away leaves the VIP in the
#     kernel and the state on disk (the reload is refused);
#  3. a truncated state file at 50% holds the rollout at 50% (rebuilt from
#     the pinned map, Paused for a person), the bad file kept aside;
#  4. errors the kernel counted while the agent was down (during the last
#     pause) abort the canary after the restart instead of promoting it;
# and the delivery records of it all: canaryctl history, /metrics.
set -u
source "$(dirname "$0")/lib.sh"

ANALYSIS="{interval: 1s, minRequests: 50, failureLimit: 1,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

lab_with_warm_backends
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 400 --duration-s 100 \
	--timeout-ms 3000
load=$LAB_LOAD_PID

# ---- 1. reload churn
lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}]" "$ANALYSIS"
lab_agent
check "1: the rollout holds at 10% in its indefinite pause" \
	lab_wait web "d['weight'] == 10 and d['phase'] == 'Paused'" 15
cp "$LAB_CONFIG_DIR/web.yaml" "$LAB_DIR/web.yaml.same"
(
	for i in $(seq 1 25); do # bounded: 25 rewrites, 20 s
		cp "$LAB_DIR/web.yaml.same" "$LAB_CONFIG_DIR/web.yaml.tmp"
		mv "$LAB_CONFIG_DIR/web.yaml.tmp" "$LAB_CONFIG_DIR/web.yaml"
		sleep 0.8
	done
) &
churn=$!
echo $churn >"$LAB_DIR/churn.pid"
lab_backend_set cn1 error_rate=0.5
check "1: aborted while the same config is written every 0.8 s" \
	lab_wait web "d['phase'] == 'Degraded'" 15
kill "$churn" 2>/dev/null
wait "$churn" 2>/dev/null
reloads=$(($(grep -c 'msg="config applied"' "$LAB_DIR/canaryd.log") - 1)) # less the start's
echo "# $reloads reloads before the abort; $(lab_status web 'd["message"]')"
check "1: the rewrites were applied as reloads ($reloads), with no rollout restarted" \
	expect "$reloads >= 1 and $(grep -c 'msg="rollout started"' "$LAB_DIR/canaryd.log") == 1"
lab_backend_set cn1 error_rate=0

# ---- 2. a config with no rollout
mv "$LAB_CONFIG_DIR/web.yaml" "$LAB_CONFIG_DIR/web.yaml.txt"
sleep 1.5
check "2: the reload without rollouts is refused, saying what it would remove" \
	grep -q 'config not applied: keeping the running one.*no rollout and would remove 1 running' \
	"$LAB_DIR/canaryd.log"
check "2: the VIP stays in the kernel" \
	expect "$(canaryctl -o json maps | jget 'len(d["services"]) == 1')"
check "2: the state file stays" test -f "$LAB_STATE_DIR/web.json"
check "2: the API still shows the rollout" expect "$(lab_status web 'd["phase"] == "Degraded"')"
mv "$LAB_CONFIG_DIR/web.yaml.txt" "$LAB_CONFIG_DIR/web.yaml"

# ---- 3. a truncated state file at 50%
LAB_CANARY_REVISION=v3 lab_rollout web "$LAB_VIP" \
	"[{setWeight: 10}, {pause: {duration: 1s}}, {setWeight: 50}, {pause: {}}, {setWeight: 100}]" \
	"$ANALYSIS"
check "3: the new revision walks to its pause at 50%" \
	lab_wait web "d['weight'] == 50 and d['phase'] == 'Paused' and d['step'] == 3" 20
agent=$(cat "$LAB_DIR/canaryd.pid")
kill -9 "$agent"
wait "$agent" 2>/dev/null
: >"$LAB_STATE_DIR/web.json"
lab_agent
after=$(canaryctl -o json status web)
echo "# after the restart: $(jget '(d["phase"], d["weight"], d["message"])' <<<"$after")"
check "3: held at 50%, Paused by the operator's hand, not restarted at 10%" \
	expect "$(jget 'd["weight"] == 50 and d["phase"] == "Paused" and d["paused_by_operator"]' <<<"$after")"
check "3: the message says the state was rebuilt from the pinned map" \
	expect "$(jget '"pinned map" in d["message"]' <<<"$after")"
check "3: the bad file is kept aside" compgen -G "$LAB_STATE_DIR/web.json.bad-*"
check "3: logged at error level" grep -q 'level=error msg="rollout state file unreadable' \
	"$LAB_DIR/canaryd.log"

# ---- 4. errors counted while the agent was down
LAB_CANARY_REVISION=v4 lab_rollout web "$LAB_VIP" \
	"[{setWeight: 10}, {pause: {duration: 1s}}, {setWeight: 50}, {pause: {duration: 6s}}, {setWeight: 100}]" \
	"$ANALYSIS"
# v3 is held at the same step and weight: wait for v4's own pause, not v3's.
check "4: the new revision reaches its last pause at 50%" \
	lab_wait web "d['canary']['revision'] == 'v4' and d['weight'] == 50 and d['phase'] == 'Paused' and d['step'] == 3" 20
agent=$(cat "$LAB_DIR/canaryd.pid")
kill -9 "$agent"
wait "$agent" 2>/dev/null
lab_backend_set cn1 error_rate=0.3
sleep 8 # the pause runs out while the canary errs and nobody watches
lab_backend_set cn1 error_rate=0
sleep 0.3
lab_agent
check "4: the restarted agent aborts on what the kernel counted meanwhile" \
	lab_wait web "d['phase'] in ('Degraded', 'Healthy')" 10
echo "# $(lab_status web '(d["phase"], d["message"])')"
check "4: not promoted" expect "$(lab_status web 'd["phase"] == "Degraded"')"
check "4: the evidence was restored" grep -q 'msg="analysis evidence restored"' \
	"$LAB_DIR/canaryd.log"

# ---- delivery records across all of it
history=$(canaryctl -o json history web)
echo "# history: $(jget '[(h["revision"], h["outcome"], h["time_to_rollback_s"]) for h in d["history"]]' <<<"$history")"
check "history: v2 aborted by the analysis, with its time to rollback and verdicts" \
	expect "$(jget 'any(h["revision"] == "v2" and h["outcome"] == "aborted" and h["time_to_rollback_s"] is not None and 0 <= h["time_to_rollback_s"] < 10 and len(h["verdicts"]) > 0 for h in d["history"])' <<<"$history")"
check "history: v3, held after its state was lost, superseded by v4; v4 aborted" \
	expect "$(jget '[(h["revision"], h["outcome"]) for h in d["history"]][-2:] == [("v3", "superseded"), ("v4", "aborted")]' <<<"$history")"
check "canaryctl history prints the records" grep -q '^v4 *aborted' <<<"$(canaryctl history web)"
metrics=$(in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" http://x/metrics)
check "/metrics counts the abort since the last start" \
	grep -q '^canaryd_rollouts_total{rollout="web",outcome="aborted"} 1$' <<<"$metrics"
check "/metrics has the time-to-rollback histogram" \
	grep -q '^canaryd_rollback_seconds_count{rollout="web"} ' <<<"$metrics"

kill -TERM "$load" 2>/dev/null
wait "$load" 2>/dev/null
lab_agent_stop 2>/dev/null
lab_finish
