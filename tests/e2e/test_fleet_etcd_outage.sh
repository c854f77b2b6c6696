#!/usr/bin/env bash
# Fleet, real etcd: fail static. In the middle of a rollout etcd's Raft
# leader is killed and then a second member stopped (SIGSTOP), so etcd has
# no quorum for OUTAGE_S seconds, longer than the pause that was running.
# Meanwhile no node's kernel weight changes, every agent keeps answering its
# API, and no client request fails. When the members return, the fleet goes
# on and every node completes the rollout. Then, with a new canary held at
# 10%, the same outage while node 2's canary starts failing: node 2 rolls
# back on its own at once, nodes 1 and 3 keep their weight (nothing tells
# them), and when etcd is back node 2's abort is written and applied
# everywhere.
set -u
source "$(dirname "$0")/fleet_lib.sh"

OUTAGE_S=8
STEPS="[{setWeight: 10}, {pause: {duration: 3s}}, {setWeight: 50}, {pause: {duration: 3s}},
        {setWeight: 100}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

fleet_start "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 150 \
		--duration-s 600 --timeout-ms 3000
done

# The member etcd elected leader: its number 1..3.
etcd_leader() {
	in_fns n1 etcdctl --endpoints "$FLEET_ETCD_ENDPOINTS" --command-timeout=2s endpoint status \
		-w json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    st = s["Status"]
    if st["header"]["member_id"] == st["leader"]:
        print(s["Endpoint"].split("//")[1].split(":")[0].split(".")[-1])'
}

# Kill etcd's leader and stop a second member: no quorum.
outage_begin() {
	raft=$(etcd_leader)
	other=$((raft % 3 + 1))
	echo "# etcd leader e$raft killed, e$other stopped: no quorum"
	kill -9 "$(cat "$LAB_DIR/etcd-e$raft.pid")"
	kill -STOP "$(cat "$LAB_DIR/etcd-e$other.pid")"
}

# Continue the stopped member and start the killed one again on its data.
outage_end() {
	local cluster="e1=http://198.18.100.1:2380,e2=http://198.18.100.2:2380,e3=http://198.18.100.3:2380"
	kill -CONT "$(cat "$LAB_DIR/etcd-e$other.pid")"
	nsenter --net=/run/netns/"$(fns "e$raft")" etcd --name "e$raft" \
		--data-dir "$LAB_DIR/etcd-e$raft" \
		--listen-client-urls "http://198.18.100.$raft:2379" \
		--advertise-client-urls "http://198.18.100.$raft:2379" \
		--listen-peer-urls "http://198.18.100.$raft:2380" \
		--initial-advertise-peer-urls "http://198.18.100.$raft:2380" \
		--initial-cluster "$cluster" --heartbeat-interval 100 --election-timeout 500 \
		>>"$LAB_DIR/etcd-e$raft.log" 2>&1 &
	echo $! >"$LAB_DIR/etcd-e$raft.pid"
}

check "the fleet is in its first pause at 10%" fleet_wait 20 "d['step'] == 1" 1 2 3
outage_begin
outage_ms=$(date +%s%3N)
declare -A w0
for i in "${FLEET_NODES[@]}"; do w0[$i]=$(fleet_weight "$i"); done
echo "# weights at the start of the outage: ${w0[*]}"
changed=0 samples=0 api_down=0
while [ $(($(date +%s%3N) - outage_ms)) -lt $((OUTAGE_S * 1000)) ]; do
	for i in "${FLEET_NODES[@]}"; do
		w=$(fleet_weight "$i")
		[ "$w" = "${w0[$i]}" ] || changed=$((changed + 1))
		samples=$((samples + 1))
	done
	sleep 0.2
done
# The tick and the API never wait on etcd: each agent answers at once.
for i in "${FLEET_NODES[@]}"; do
	timeout 2 nsenter --net=/run/netns/"$(fns "n$i")" "$LAB_BUILD/canaryctl" \
		--socket "$LAB_DIR/api-n$i.sock" -o json status web >/dev/null 2>&1 ||
		api_down=$((api_down + 1))
done
echo "# $samples weight samples during the outage, $changed changed, $api_down API calls unanswered"
check "no weight changed while etcd had no quorum" expect "$changed == 0 and $samples > 0"
check "every agent answered its API during the outage" expect "$api_down == 0"
for i in "${FLEET_NODES[@]}"; do
	check "n$i: still at its weight, not aborted" \
		fleet_wait 2 "d['weight'] == ${w0[$i]} and d['phase'] != 'Degraded'" "$i"
done

back_ms=$(date +%s%3N)
outage_end
check "the fleet converges: every node completes the rollout" \
	fleet_wait 40 "d['phase'] == 'Healthy'" 1 2 3
echo "# quorum back -> every node Healthy: $(($(date +%s%3N) - back_ms)) ms"

# ---- a local abort while etcd has no quorum ----
fleet_rollout "[{setWeight: 10}, {pause: {}}]" "$ANALYSIS" v3
check "the new canary v3 at 10% on every node" \
	fleet_wait 30 "d['canary']['revision'] == 'v3' and d['weight'] == 10" 1 2 3
outage_begin
lab_backend_set k2 error_rate=1
check "node 2 rolls its own canary back without etcd" \
	fleet_wait 10 "d['phase'] == 'Degraded' and d['weight'] == 0" 2
sleep 1
for i in 1 3; do
	check "n$i keeps 10% while etcd cannot tell it" expect "$(fleet_weight "$i") == 10"
done
check "n2 holds on to its abort (the stale shared state does not undo it)" \
	expect "$(fleet_weight 2) == 0"
back_ms=$(date +%s%3N)
outage_end
check "node 2's abort is written when etcd is back: every node at 0" \
	fleet_wait 30 "d['phase'] == 'Degraded' and d['weight'] == 0" 1 3
echo "# quorum back -> node 2's abort applied on nodes 1 and 3: $(($(date +%s%3N) - back_ms)) ms (polled)"
fleet_load_stop
for i in "${FLEET_NODES[@]}"; do
	f=$(lab_failed "$LAB_DIR/load-$i.out")
	echo "# client of n$i: $(tail -1 "$LAB_DIR/load-$i.out" | jget 'd["requests"]') requests, $f failed"
	check "client of n$i: no failed request" expect "$f == 0"
done
lab_finish
