#!/usr/bin/env bash
# kill -9 of the agent in the middle of a timed pause (20 s at 50%) under
# traffic: the clients see nothing (programs and maps stay), and the
# restarted agent resumes the same step with the pause time that was left
# (deadlines are wall-clock, in the state file), then completes the rollout.
set -u
source "$(dirname "$0")/lib.sh"

PAUSE_S=20 # long enough that a restart on a busy machine (6.5 s seen) lands inside it
STEPS="[{setWeight: 10}, {pause: {duration: 2s}}, {setWeight: 50}, {pause: {duration: ${PAUSE_S}s}},
          {setWeight: 100}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.02}, {name: compareErrorRate},
                      {name: compareLatency, maxIncrease: 0.5}]}"

lab_with_warm_backends
lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"
lab_agent
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 500 --duration-s 60 \
	--timeout-ms 3000
load=$LAB_LOAD_PID

# 1.5 s into the 20 s pause at 50% (step 3).
check "the rollout reaches the timed pause at 50%" \
	lab_wait web "d['step'] == 3 and d['weight'] == 50 and d['phase'] == 'Paused' and d['pause_remaining_s'] is not None and d['pause_remaining_s'] < $PAUSE_S - 1.5" 20
read_ms=$(date +%s%3N) # the time left below was computed between these two
before=$(canaryctl -o json status web)
read_end_ms=$(date +%s%3N)
left_before=$(jget 'd["pause_remaining_s"]' <<<"$before")
agent=$(cat "$LAB_DIR/canaryd.pid")
exec 3>&2 2>/dev/null # no "Killed" job notice from bash
kill -9 "$agent"
killed_ms=$(date +%s%3N)
wait "$agent"
exec 2>&3 3>&-
echo "# killed the agent (pid $agent) with ${left_before} s of the pause left"
sleep 1 # no agent at all for a while: traffic flows on with the pinned maps
check "the API is gone with the agent" expect "not $(canaryctl status >/dev/null 2>&1 && echo True || echo False)"
check "the kernel keeps weight 50 while the agent is down" \
	expect "$(canaryctl -o json maps | jget '[s["weight"] for s in d["services"]] == [50]')"
lab_agent
restarted_ms=$(date +%s%3N)
after=$(canaryctl -o json status web)
after_end_ms=$(date +%s%3N)
left_after=$(jget 'd["pause_remaining_s"]' <<<"$after")
down_s=$(python3 -c "print(($restarted_ms - $killed_ms) / 1000)")
echo "# restarted after ${down_s} s: phase $(jget 'd["phase"]' <<<"$after"), step $(jget 'd["step"]' <<<"$after"), weight $(jget 'd["weight"]' <<<"$after"), ${left_after} s of the pause left"
grep 'msg="rollout resumed"' "$LAB_DIR/canaryd.log" | sed 's/^/# /'
check "the restarted agent logged 'rollout resumed'" grep -q 'msg="rollout resumed" rollout=web' "$LAB_DIR/canaryd.log"
check "it resumed the same step (3, the pause) at weight 50" \
	expect "$(jget 'd["step"] == 3 and d["weight"] == 50 and d["phase"] == "Paused"' <<<"$after")"
# The deadline is wall-clock: it lies in [read_ms, read_end_ms] + left_before,
# so the time left after the restart is that minus the moment of the second
# read (0.1 s for rounding). A pause started afresh would show about 20 s.
lo=$(python3 -c "print(round(($read_ms - $after_end_ms) / 1000 + $left_before - 0.1, 3))")
hi=$(python3 -c "print(round(($read_end_ms - $restarted_ms) / 1000 + $left_before + 0.1, 3))")
check "with the remaining pause time ($left_before s -> $left_after s after ${down_s} s down; expected $lo..$hi)" \
	expect "0 < $left_after < $left_before and $lo <= $left_after <= $hi"

check "the rollout then continues to completion (Healthy)" lab_wait web "d['phase'] == 'Healthy'" 30
done_ms=$(date +%s%3N)
kill -TERM "$load"
wait "$load"
# The pause was not cut short: 100% came no earlier than the pause deadline.
ts_ms() { sed -n 's/^ts=\([^ ]*\) .*/\1/p' | sed -n 1p | xargs -r -I{} date -d {} +%s%3N; }
w100_ms=$(grep 'msg="weight set".*weight=100' "$LAB_DIR/canaryd.log" | ts_ms)
deadline_ms=$(python3 -c "print(int($read_ms + $left_before * 1000))")
echo "# weight 100 set $((w100_ms - deadline_ms)) ms after the pause deadline; Healthy $((done_ms - restarted_ms)) ms after the restart"
check "the pause ran its full time across the restart" expect "$w100_ms >= $deadline_ms - 100"
check "one agent start and one resume" \
	expect "$(grep -c 'msg="rollout started"' "$LAB_DIR/canaryd.log") == 1 and $(grep -c 'msg="rollout resumed"' "$LAB_DIR/canaryd.log") == 1"

echo "# load: $(cat "$LAB_DIR/load.out")"
failed_expr='d["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")'
total=$(jget 'd["requests"]' <"$LAB_DIR/load.out")
failed=$(jget "$failed_expr" <"$LAB_DIR/load.out")
check "zero failed requests across the kill -9 and the restart ($failed of $total)" \
	expect "$failed == 0 and $total > 2000"
check "both versions served traffic" \
	expect "$(jget 'd["backends"].get("cn1", 0) > 500 and d["backends"].get("st1", 0) > 500' <"$LAB_DIR/load.out")"
lab_agent_stop 2>/dev/null # SIGTERM, waited for: no "Killed" notice from lab_down
lab_finish
