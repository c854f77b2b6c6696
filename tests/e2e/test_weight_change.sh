#!/usr/bin/env bash
# Changing the weight mid-traffic, by restarting the agent with a new weight
# (it reuses the pinned maps and replaces the programs in place), and
# killing it outright, cost the clients nothing: established flows keep
# their backend, new ones follow the new weight.
set -u
source "$(dirname "$0")/lib.sh"

lab_standard --weight 10
agent_with_weight() {
	lab_agent_stop
	lab_agent --service "web=$LAB_VIP:$LAB_PORT/http" --stable "$(lab_endpoints st1 st2)" \
		--canary "$(lab_endpoints cn1)" --weight "$1"
}

lab_load_bg "$LAB_DIR/newconn.out" --mode newconn --connections 4 --duration-s 8 --snapshot-on-usr1
newconn=$LAB_LOAD_PID
lab_load_bg "$LAB_DIR/keepalive.out" --mode keepalive --connections 8 --duration-s 8
keepalive=$LAB_LOAD_PID
for w in 50 90; do
	sleep 1
	agent_with_weight "$w"
done
sleep 1
kill -9 "$(cat "$LAB_DIR/canaryd.pid")" # fail static: no agent at all for a while
sleep 1
agent_with_weight 0
sleep 0.5
kill -USR1 "$newconn" # after this, no new connection may reach the canary
wait "$keepalive"
wait "$newconn"

echo "# newconn: $(tail -1 "$LAB_DIR/newconn.out")"
echo "# keepalive: $(cat "$LAB_DIR/keepalive.out")"
check "new-connection clients saw zero errors across 3 weight changes and a kill -9" \
	expect "$(tail -1 "$LAB_DIR/newconn.out" | jget 'd["requests"]-d["ok"]') == 0"
check "keep-alive clients saw zero errors" \
	expect "$(jget 'd["requests"]-d["ok"]' <"$LAB_DIR/keepalive.out") == 0"
check "new connections reached both versions" \
	expect "$(tail -1 "$LAB_DIR/newconn.out" | jget 'd["backends"].get("cn1",0)') > 100"
check "a snapshot was taken after weight 0" expect "$(wc -l <"$LAB_DIR/newconn.out") == 2"
at_zero=$(head -1 "$LAB_DIR/newconn.out" | jget 'd["backends"].get("cn1",0)')
at_end=$(tail -1 "$LAB_DIR/newconn.out" | jget 'd["backends"].get("cn1",0)')
check "after weight 0, no new connection reached the canary ($at_zero -> $at_end)" \
	expect "$at_zero == $at_end"
lab_finish
