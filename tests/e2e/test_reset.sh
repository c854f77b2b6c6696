#!/usr/bin/env bash
# emergency-rollback moves keep-alive clients off the canary within one
# request: each canary connection's next request gets a RST (the client sees
# a reset at once, no hang) and its reconnect lands on stable. With
# --connections drain, established canary flows finish where they are.
set -u
source "$(dirname "$0")/lib.sh"

CONNS=16
lab_standard 50

snapshot() { kill -USR1 "$1"; sleep 0.2; }
lab_load_bg "$LAB_DIR/load.out" --mode keepalive --connections $CONNS --duration-s 4 \
	--rate 2000 --timeout-ms 1000 --snapshot-on-usr1
load=$LAB_LOAD_PID
sleep 1
canary_conns=$(canaryctl flows web | grep -c ' canary ')
echo "# canary keep-alive connections before the rollback: $canary_conns"
canaryctl emergency-rollback web
snapshot "$load" # A: right after the rollback
sleep 0.5
snapshot "$load" # B: every connection has sent several requests since
sleep 1
snapshot "$load" # C
wait "$load"
sed 's/^/# /' "$LAB_DIR/load.out"
check "three snapshots and a final count" expect "$(wc -l <"$LAB_DIR/load.out") == 4"

field() { sed -n "${1}p" "$LAB_DIR/load.out" | jget "$2"; }
cn_b=$(field 2 'd["backends"].get("cn1",0)')
cn_c=$(field 3 'd["backends"].get("cn1",0)')
err_end=$(field 4 'd["requests"]-d["ok"]')
resets=$(field 4 'd["errors"]["reset"]')
check "some keep-alive connections were on the canary ($canary_conns)" expect "$canary_conns > 0"
check "no canary response after the rollback settled ($cn_b -> $cn_c)" expect "$cn_b == $cn_c"
check "each canary connection failed at most one request ($err_end errors, $resets resets)" \
	expect "$err_end <= $canary_conns and $err_end == $resets"
check "all later requests were answered by stable" \
	expect "$(field 3 'd["ok"]') - $(field 2 'd["ok"]') > 1000"
reset_steered=$(canaryctl -o json maps | jget 'd["reasons"]["reset_steered"]')
check "kernel re-steered $reset_steered flows, one per canary connection" \
	expect "$reset_steered == $canary_conns"
check "the provoked resets are not counted against the canary" \
	expect "$(metric canary conns_reset) == 0"
check "the running agent took the emergency rollback as an abort" \
	lab_wait web "d['phase'] == 'Degraded' and 'emergency' in d['message']" 3

# Drain: established canary flows go on, new connections go to stable.
# The kill switch holds the rollout until the operator releases it.
canaryctl emergency-clear web | sed 's/^/# /'
canaryctl retry web | sed 's/^/# /'
lab_wait web "d['weight'] == 50" 5
lab_load_bg "$LAB_DIR/drain.out" --mode keepalive --connections $CONNS --duration-s 3 \
	--rate 2000 --snapshot-on-usr1
load=$LAB_LOAD_PID
sleep 1
canaryctl emergency-rollback web --connections drain
snapshot "$load"
sleep 1
wait "$load"
cn_a=$(sed -n 1p "$LAB_DIR/drain.out" | jget 'd["backends"].get("cn1",0)')
cn_end=$(sed -n 2p "$LAB_DIR/drain.out" | jget 'd["backends"].get("cn1",0)')
check "drain: zero client errors" expect "$(sed -n 2p "$LAB_DIR/drain.out" | jget 'd["requests"]-d["ok"]') == 0"
check "drain: established canary connections keep being served ($cn_a -> $cn_end)" \
	expect "$cn_end > $cn_a"
lab_finish
