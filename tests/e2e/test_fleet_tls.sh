#!/usr/bin/env bash
# Fleet over TLS: etcd serves clients on https and requires client
# certificates (a lab CA made with openssl). The agents, started with
# --etcd-cacert/--etcd-cert/--etcd-key, elect a leader, walk to the first
# step and carry node 1's abort to every node, as over plain http.
set -u
FLEET_TLS=1
source "$(dirname "$0")/fleet_lib.sh"

STEPS="[{setWeight: 10}, {pause: {}}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

fleet_start "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 150 \
		--duration-s 600 --timeout-ms 3000
done
check "etcd refuses a client without a certificate" \
	bash -c '! nsenter --net="$1" curl -s -m 2 --cacert "$2" -X POST \
		https://198.18.100.1:2379/v3/kv/range -d "{\"key\":\"Lw==\"}" | grep -q header' \
	_ "/run/netns/$(fns n1)" "$FLEET_PKI/ca.pem"
check "the agents reach etcd over TLS: a leader, every node at 10%" \
	fleet_wait 20 "d['fleet']['leader'] != '' and d['weight'] == 10" 1 2 3
echo "# n2's view: $(fleet_get 2 'json.dumps({k: v for k, v in d["fleet"].items() if k != "nodes"})')"
check "n2 sees etcd reachable and 3 live nodes" \
	fleet_wait 5 "d['fleet']['reachable'] and d['fleet']['liveNodes'] == 3" 2
lab_backend_set k1 error_rate=1
check "node 1's abort reaches every node over TLS" \
	fleet_wait 15 "d['phase'] == 'Degraded' and d['weight'] == 0" 1 2 3
fleet_load_stop
lab_finish
