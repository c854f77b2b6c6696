#!/usr/bin/env bash
# Incident mode: with the agent killed, canaryctl emergency-rollback (straight
# into the pinned maps) moves every new connection to stable; the restarted
# agent respects it, showing the rollout aborted instead of resuming it.
# The rollback resets the canary connections open at that moment (the
# default, --connections reset): a request in flight on one of them fails by
# design, so the load may lose at most that many requests, and only to resets.
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 50
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 500 --duration-s 12 \
	--snapshot-on-usr1
load=$LAB_LOAD_PID
sleep 1
agent=$(cat "$LAB_DIR/canaryd.pid")
kill -9 "$agent"
wait "$agent" 2>/dev/null
rollback=$(canaryctl emergency-rollback web)
echo "# $rollback"
reset=$(sed -n 's/.*; \([0-9]*\) canary connections reset$/\1/p' <<<"$rollback")
sleep 0.2
kill -USR1 "$load" # A: just after the rollback
sleep 2
kill -USR1 "$load" # B: two seconds later, still without an agent
cn_a=$(sed -n 1p "$LAB_DIR/load.out" | jget 'd["backends"].get("cn1", 0)')
cn_b=$(sed -n 2p "$LAB_DIR/load.out" | jget 'd["backends"].get("cn1", 0)')
check "the canary had traffic before the rollback ($cn_a)" expect "$cn_a > 100"
check "no new connection reached the canary with the agent down ($cn_a -> $cn_b)" \
	expect "$cn_a == $cn_b"
check "the map says weight 0" \
	expect "$(canaryctl -o json maps | jget 'd["services"][0]["weight"]') == 0"

lab_agent
check "the restarted agent shows the rollout aborted" lab_wait web "d['phase'] == 'Degraded'" 5
echo "# $(lab_status web 'd["message"]')"
check "and says why" expect "$(lab_status web '"emergency" in d["message"]')"
check "it did not resume the canary's weight" \
	expect "$(canaryctl -o json maps | jget 'd["services"][0]["weight"]') == 0"
wait "$load"
cn_end=$(tail -1 "$LAB_DIR/load.out" | jget 'd["backends"].get("cn1", 0)')
check "still no new connection to the canary after the restart ($cn_b -> $cn_end)" \
	expect "$cn_b == $cn_end"
failed=$(lab_failed "$LAB_DIR/load.out")
resets=$(tail -1 "$LAB_DIR/load.out" | jget 'd["errors"].get("reset", 0)')
echo "# errors: $(tail -1 "$LAB_DIR/load.out" | jget 'd["errors"]')"
check "the rollback said how many canary connections it reset (${reset:-none})" \
	expect "'${reset:-x}'.isdigit()"
check "no client request failed but those the rollback reset ($failed failed, $resets by reset, ${reset:-?} reset)" \
	expect "$failed == $resets and $failed <= ${reset:-0}"
lab_finish
