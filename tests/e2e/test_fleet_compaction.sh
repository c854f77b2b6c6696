#!/usr/bin/env bash
# Fleet, real etcd: a node cut off from etcd while the fleet moves on, and
# etcd's history compacted meanwhile, catches up when it is back. Its watch
# resumes from a revision etcd no longer has, etcd cancels it with
# compact_revision, and the node reads everything again and follows.
# While it is cut off the node keeps its weight (fail static).
set -u
source "$(dirname "$0")/fleet_lib.sh"

CUT_S=13 # longer than a watch stream lives (10 s): the next one starts from the old revision
# The pause outlasts the checks that nodes reached 10% (three canaryctl calls a
# round), so node 3 is cut off while the fleet still waits at 10%.
STEPS="[{setWeight: 10}, {pause: {duration: 6s}}, {setWeight: 50}, {pause: {}}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

fleet_start "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 150 \
		--duration-s 600 --timeout-ms 3000
done
etcdctl_lab() { in_fns n1 etcdctl --endpoints "$FLEET_ETCD_ENDPOINTS" --command-timeout=2s "$@"; }

check "every node at 10%" fleet_wait 20 "d['weight'] == 10" 1 2 3
ip -n "$(fns n3)" link set fab0 down
cut_ms=$(date +%s%3N)
check "nodes 1 and 2 move on to 50% without node 3" fleet_wait 20 "d['weight'] == 50" 1 2
check "node 3, cut off, keeps 10%" expect "$(fleet_weight 3) == 10"
rev=$(etcdctl_lab get / -w json | jget 'd["header"]["revision"]')
etcdctl_lab compact "$rev" >/dev/null
echo "# etcd history compacted at revision $rev while n3 is cut off"
while [ $(($(date +%s%3N) - cut_ms)) -lt $((CUT_S * 1000)) ]; do sleep 0.2; done
check "node 3 still at 10% after ${CUT_S}s cut off" expect "$(fleet_weight 3) == 10"
ip -n "$(fns n3)" link set fab0 up
back_ms=$(date +%s%3N)
check "node 3 catches up: 50%" fleet_wait 20 "d['weight'] == 50 and d['step'] == 3" 3
echo "# link back -> node 3 at 50%: $(($(date +%s%3N) - back_ms)) ms (polled)"
check "node 3's watch was canceled for compaction and it read everything again" \
	grep -q 'watch history compacted' "$LAB_DIR/canaryd-n3.log"
fleet_load_stop
for i in "${FLEET_NODES[@]}"; do
	check "client of n$i: no failed request" expect "$(lab_failed "$LAB_DIR/load-$i.out") == 0"
done
lab_finish
