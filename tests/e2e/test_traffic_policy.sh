#!/usr/bin/env bash
# strategy.trafficPolicy under load that crosses its threshold mid-rollout:
# at 300 req/s the rollout reaches 10% as configured; then a second client
# adds 400 req/s (700 in all, peak above 380): the agent notices the peak,
# the 50% step goes up 10 points at a time (20, 30, 40, 50), each judged,
# the 3 s pause lasts 6 s, and 100% comes in 10-point steps too.
set -u
source "$(dirname "$0")/lib.sh"

STEPS="[{setWeight: 10}, {pause: {duration: 15s}}, {setWeight: 50}, {pause: {duration: 3s}},
          {setWeight: 100}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"
POLICY="    trafficPolicy: {peak: {aboveRps: 380, maxStepIncrease: 10, pauseFactor: 2}}"

lab_with_warm_backends
lab_rollout web "$LAB_VIP" "$STEPS
$POLICY" "$ANALYSIS"
lab_load_bg "$LAB_DIR/base.out" --mode newconn --connections 4 --rate 300 --duration-s 90 \
	--timeout-ms 3000
base=$LAB_LOAD_PID
lab_agent
check "below the peak, the first step is 10% as configured" \
	lab_wait web "d['weight'] == 10 and d['step'] == 1 and d['phase'] == 'Paused'" 15
lab_load_bg "$LAB_DIR/peak.out" --mode newconn --connections 8 --rate 400 --duration-s 80 \
	--timeout-ms 3000
peak=$LAB_LOAD_PID
check "the agent notices the peak" lab_wait web "d['traffic']['peak']" 15
echo "# $(lab_status web 'd["traffic"]')"
check "at peak the 3 s pause at 50% lasts 6 s" \
	lab_wait web "d['step'] == 3 and d['phase'] == 'Paused' and d['pause_remaining_s'] is not None and d['pause_remaining_s'] > 4.5" 40
check "the rollout completes" lab_wait web "d['phase'] == 'Healthy'" 40
weights=$(sed -n 's/.*msg="weight set" rollout=web .*weight=\([0-9.]*\).*/\1/p' "$LAB_DIR/canaryd.log" | tr '\n' ' ')
echo "# weights set: $weights"
check "the weights went up 10 points at a time at peak" \
	test "$weights" = "10 20 30 40 50 60 70 80 90 100 "
check "never aborted" expect "$(lab_status web 'd["aborts"] == 0')"
kill -TERM "$base" "$peak" 2>/dev/null
wait "$base" "$peak" 2>/dev/null
lab_agent_stop 2>/dev/null
lab_finish
