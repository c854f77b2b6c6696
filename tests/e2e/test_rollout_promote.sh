#!/usr/bin/env bash
# A healthy canary walks 10% -> 50% -> 100% with short timed pauses under
# steady new-connection traffic, judged all the way by the analysis, and is
# promoted: phase Healthy, zero client errors, and afterwards every new
# connection goes to the canary's endpoint (cn1), which is the stable set now.
set -u
source "$(dirname "$0")/lib.sh"

STEPS=$(lab_steps_10_50_100 2s)
ANALYSIS=$LAB_ANALYSIS_ALL

lab_with_warm_backends
lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"

# The agent first (before it attaches, the VIP leads nowhere), then the
# traffic: the first step holds until the canary has minRequests samples.
start_ms=$(date +%s%3N)
lab_agent
# A 3 s timeout rides out a packet dropped on a busy machine (TCP retransmits
# within 1 s); a flow sent to the wrong backend never recovers and still fails.
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 500 --duration-s 40 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
check "the rollout is promoted (phase Healthy) within 25 s" \
	lab_wait web "d['phase'] == 'Healthy'" 25
done_ms=$(date +%s%3N)
echo "# 10% -> 50% -> 100% and promoted in $((done_ms - start_ms)) ms"
kill -TERM "$load"
wait "$load"
echo "# load: $(cat "$LAB_DIR/load.out")"

final=$(canaryctl -o json status web)
echo "# phase $(jget 'd["phase"]' <<<"$final"), step $(jget 'd["step"]' <<<"$final")/$(jget 'd["step_count"]' <<<"$final"), weight $(jget 'd["weight"]' <<<"$final"), decision $(jget 'd["analysis"]["decision"]' <<<"$final")"
# Completion: the canary is the stable set now and the canary weight is 0 again.
check "the rollout completed every step (step 5 of 5, canary weight back to 0)" \
	expect "$(jget 'd["step"] == d["step_count"] == 5 and d["weight"] == 0' <<<"$final")"
check "no automatic abort along the way" \
	expect "$(jget 'd["aborts"] == 0 and not d.get("abort_verdicts")' <<<"$final")"
weights=$(sed -n 's/.*msg="\{0,1\}weight set"\{0,1\} .*weight=\([0-9.]*\).*/\1/p' "$LAB_DIR/canaryd.log" |
	tr '\n' ' ')
echo "# weights set by the agent: $weights"
check "the agent set 10, 50 and 100 in that order" \
	expect "[float(w) for w in '$weights'.split()] == [10, 50, 100]"

failed_expr='d["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")'
total=$(jget 'd["requests"]' <"$LAB_DIR/load.out")
failed=$(jget "$failed_expr" <"$LAB_DIR/load.out")
rps=$(jget 'd["rps"]' <"$LAB_DIR/load.out")
check "steady traffic during the rollout ($total requests, $rps rps)" expect "$total > 1500 and $rps > 200"
check "zero failed client requests during the rollout ($failed of $total)" expect "$failed == 0"
cn_share=$(jget 'round(d["backends"].get("cn1", 0) / d["requests"], 3)' <"$LAB_DIR/load.out")
check "the canary served its share during the rollout (10/50/100%: $cn_share)" expect "0.2 < $cn_share < 0.8"

# After the promotion the canary's endpoints are the stable set.
check "the promoted stable set is the canary's endpoint" \
	expect "$(jget "d['stable']['endpoints'] == ['$(lab_endpoints cn1)']" <<<"$final")"
lab_load --mode newconn --connections 4 --rate 500 --duration-s 2 --timeout-ms 3000 \
	>"$LAB_DIR/after.out"
echo "# after promotion: $(cat "$LAB_DIR/after.out")"
after_total=$(jget 'd["requests"]' <"$LAB_DIR/after.out")
after_backends=$(jget 'sorted(d["backends"])' <"$LAB_DIR/after.out")
check "after promotion new connections go only to cn1 ($after_backends, $after_total requests)" \
	expect "$after_backends == ['cn1'] and $after_total > 500 and $(jget "$failed_expr" <"$LAB_DIR/after.out") == 0"
reasons=$(canaryctl -o json maps | jget '{k: v for k, v in d["reasons"].items() if v}')
echo "# kernel packet reasons: $reasons"
check "no mid-flow packet missed its conntrack entry across the promotion" \
	expect "$reasons.get('ct_miss_non_syn', 0) == 0 and $reasons.get('new_flow', 0) >= $total + $after_total"
lab_finish
