#!/usr/bin/env bash
# The agent stopped (SIGSTOP) for 60 s under steady traffic: the data path
# keeps the last weights, no client request fails, and the agent carries on
# when continued. Long, so it runs in "make soak", not in "make test".
set -u
source "$(dirname "$0")/../e2e/lib.sh"
STOP_S=${SOAK_STOP_S:-60}

lab_standard 30
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 400 \
	--duration-s $((STOP_S + 10)) --snapshot-on-usr1
load=$LAB_LOAD_PID
sleep 2
agent=$(cat "$LAB_DIR/canaryd.pid")
kill -STOP "$agent"
echo "# agent $agent stopped for $STOP_S s"
sleep "$STOP_S"
kill -USR1 "$load"
sleep 0.2
kill -CONT "$agent"
check "the agent answers again once continued" lab_wait web "d['weight'] == 30" 10
wait "$load"
stopped=$(head -1 "$LAB_DIR/load.out")
final=$(tail -1 "$LAB_DIR/load.out")
share=$(echo "$stopped" | jget 'round(100.0 * d["backends"].get("cn1", 0) / max(d["ok"], 1), 1)')
echo "# while stopped: $(echo "$stopped" | jget 'd["requests"]') requests, canary share $share%"
check "no client request failed while the agent was stopped" \
	expect "$(echo "$stopped" | jget 'd["requests"] - d["ok"]') == 0"
check "the split stayed at the last weight (30% +- 5)" expect "abs($share - 30) <= 5"
check "no client request failed at all" expect "$(echo "$final" | jget 'd["requests"] - d["ok"]') == 0"
lab_finish
