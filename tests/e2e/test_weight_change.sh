#!/usr/bin/env bash
# run-all: alone (its clients load both CPUs for 25 s)
# Changing the weight mid-traffic (canaryctl set-weight through the API),
# killing the agent outright and restarting it cost the clients nothing:
# established flows keep their backend, new ones follow the new weight, and
# the restarted agent resumes the state it had.
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 10

lab_load_bg "$LAB_DIR/newconn.out" --mode newconn --connections 4 --duration-s 25 --snapshot-on-usr1
newconn=$LAB_LOAD_PID
lab_load_bg "$LAB_DIR/keepalive.out" --mode keepalive --connections 8 --duration-s 25
keepalive=$LAB_LOAD_PID
for w in 50 90; do
	sleep 1
	canaryctl set-weight web "$w" | sed 's/^/# /'
done
sleep 1
agent=$(cat "$LAB_DIR/canaryd.pid")
kill -9 "$agent" # fail static: no agent at all for a while
wait "$agent" 2>/dev/null
sleep 1
lab_agent
check "the restarted agent resumed weight 90" lab_wait web "d['weight'] == 90" 5
canaryctl set-weight web 0 | sed 's/^/# /'
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
