#!/usr/bin/env bash
# A canary that turns 150 ms slower during its 10% step, still answering
# 200, is aborted by compareLatency (maxIncrease 0.5): the canary is slower
# than 1.5x stable. The absolute gates (errorRate, latencyP95 max 250 ms)
# cannot catch it; the comparison must. Prints the detection time.
#
# The bound only tells "aborted by the comparison during the step" from
# "never aborted": the step's pause is 60 s. How fast a slowdown is caught is
# measured by tools/bench/rollback.sh (docs/analysis.md), never judged here:
# expect about 1-3 s (the mixture statistic needs about 1 s of slow samples
# at ~50 canary samples/s to pass log(1/0.005) = 5.3, plus the clean samples
# before the change to outweigh, labsrv's 100 ms control poll and one tick
# for failureLimit 1), more on a busy machine.
set -u
source "$(dirname "$0")/lib.sh"

BOUND_MS=30000
STEPS=$(lab_steps_10_50_100 60s)
ANALYSIS=$LAB_ANALYSIS_ALL

lab_with_warm_backends
lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"
lab_agent

# 16 workers, so the slow canary answers do not hold the offered rate down.
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 16 --rate 500 --duration-s 30 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
check "the canary is at 10% with minRequests samples" \
	lab_wait web "d['weight'] == 10 and d['step'] <= 1 and d['canary']['requests_total'] >= 20" 10
before=$(canaryctl -o json status web)
echo "# before: step $(jget 'd["step"]' <<<"$before"), canary p99 $(jget 'd["canary"]["latency_p99_ms"]' <<<"$before") ms, stable p99 $(jget 'd["stable"]["latency_p99_ms"]' <<<"$before") ms, $(jget 'd["canary"]["requests_total"]' <<<"$before") canary requests"

slow_ms=$(date +%s%3N)
lab_backend_set cn1 latency_ms=150
check "the slow canary is aborted automatically (phase Degraded)" \
	lab_wait web "d['phase'] == 'Degraded'" 10
seen_ms=$(date +%s%3N)
kill -TERM "$load"
wait "$load"

ts_ms() { sed -n 's/^ts=\([^ ]*\) .*/\1/p' | sed -n 1p | xargs -r -I{} date -d {} +%s%3N; }
abort_line=$(grep -m1 'msg=aborted' "$LAB_DIR/canaryd.log")
abort_ms=$(ts_ms <<<"$abort_line")
detect_ms=$((abort_ms - slow_ms))
echo "# ${abort_line}"
grep 'msg=verdict' "$LAB_DIR/canaryd.log" | sed 's/^/# /'
echo "# canary turned 150 ms slower; aborted (weight 0) ${detect_ms} ms later (seen through the API after $((seen_ms - slow_ms)) ms)"
check "aborted within $BOUND_MS ms of the slowdown (${detect_ms} ms)" expect "0 < $detect_ms < $BOUND_MS"
check "aborted during the 10% step" expect "'step=0 ' in '''$abort_line''' or 'step=1 ' in '''$abort_line'''"

final=$(canaryctl -o json status web)
metrics=$(jget 'sorted(v["metric"] for v in d["abort_verdicts"])' <<<"$final")
echo "# abort verdicts: $metrics"
jget '"\n".join("# %s: %s" % (v["metric"], v["detail"]) for v in d["abort_verdicts"])' <<<"$final"
check "compareLatency is what failed (and no error metric)" \
	expect "'compareLatency' in $metrics and 'errorRate' not in $metrics and 'compareErrorRate' not in $metrics"
check "weight 0 in the API and the kernel" \
	expect "$(jget 'd["weight"]' <<<"$final") == 0 and $(canaryctl -o json maps | jget '[s["weight"] for s in d["services"]] == [0]')"
echo "# load: $(cat "$LAB_DIR/load.out")"
failed_expr='d["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")'
check "slow, not failed: zero failed client requests" expect "$(jget "$failed_expr" <"$LAB_DIR/load.out") == 0"
lab_finish
