#!/usr/bin/env bash
# A healthy canary at low traffic is judged more slowly, never held for ever:
# 10% of 200 req/s (about 20 canary req/s) with interval 250ms and
# minRequests 20 — a single 250 ms window holds about 5 canary samples —
# walks 10 -> 50 -> 100 and ends Healthy within the sum of its pauses + 10 s.
set -u
source "$(dirname "$0")/lib.sh"

PAUSES_S=10
STEPS="[{setWeight: 10}, {pause: {duration: 5s}}, {setWeight: 50}, {pause: {duration: 5s}},
          {setWeight: 100}]"
ANALYSIS="{interval: 250ms, minRequests: 20, failureLimit: 1,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate},
                      {name: compareLatency, maxIncrease: 0.5}]}"

lab_with_warm_backends
lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 200 --duration-s 60 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
start_ms=$(date +%s%3N)
lab_agent
bound=$((PAUSES_S + 10))
check "Healthy within the pauses + 10 s ($bound s)" lab_wait web "d['phase'] == 'Healthy'" "$bound"
took=$(($(date +%s%3N) - start_ms))
echo "# $(lab_status web '(d["phase"], d["message"])') after ${took} ms"
check "never aborted" expect "$(lab_status web 'd["aborts"] == 0')"
plan=$(canaryctl plan web --errors 5 --latency 1 --target 120 2>&1)
echo "$plan" | sed 's/^/# /'
check "canaryctl plan: a time for each weight below 100% from the measured traffic" \
	expect "$(grep -cE '^ *(10|50)\.00% +[0-9.]+ ' <<<"$plan") == 2 and $(grep -c '^proposed (.*steps: \[.*{setWeight: 100}\]$' <<<"$plan") == 1"
kill -TERM "$load" 2>/dev/null
wait "$load" 2>/dev/null
lab_agent_stop 2>/dev/null
lab_finish
