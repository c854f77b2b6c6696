#!/usr/bin/env bash
# run-all: needs kube-apiserver
# Fleet on the Kubernetes API (--coordinator kube), fail static: 3 nodes
# at an indefinite pause at 20% with traffic, and the API server SIGKILLed
# for OUTAGE_S seconds, longer than the Lease duration (the leader's Lease
# expires meanwhile). No node's kernel weight changes, no step advances,
# every agent answers its API and no client request fails. When the API
# server is back the nodes converge again: an operator's promote through
# one node reaches every node (the time is printed).
set -u
source "$(dirname "$0")/kube_fleet_lib.sh"

LEASE_S=6
OUTAGE_S=8
STEPS="[{setWeight: 20}, {pause: {}}, {setWeight: 40}, {pause: {}}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"


kube_require
trap kube_fleet_down EXIT
t0=$(date +%s%N)
kube_fleet_up "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 150 \
		--duration-s 600 --timeout-ms 3000
done
check "every node is paused at step 1 at 20%" \
	fleet_wait 20 "d['step'] == 1 and d['weight'] == 20 and d['phase'] == 'Paused'" 1 2 3

# ---- the API server SIGKILLed for OUTAGE_S seconds ----
kube_apiserver_stop
outage_ms=$(date +%s%3N)
declare -A w0
for i in "${FLEET_NODES[@]}"; do w0[$i]=$(fleet_weight "$i"); done
echo "# API server killed; weights at the start: ${w0[*]}"
changed=0 samples=0
while [ $(($(date +%s%3N) - outage_ms)) -lt $((OUTAGE_S * 1000)) ]; do
	for i in "${FLEET_NODES[@]}"; do
		[ "$(fleet_weight "$i")" = "${w0[$i]}" ] || changed=$((changed + 1))
		samples=$((samples + 1))
	done
	sleep 0.2
done
api_down=0 moved=0
for i in "${FLEET_NODES[@]}"; do
	s=$(timeout 2 nsenter --net=/run/netns/"$(fns "n$i")" "$LAB_BUILD/canaryctl" \
		--socket "$LAB_DIR/api-n$i.sock" -o json status web 2>/dev/null |
		jget '"%s/%s" % (d["step"], d["phase"])' 2>/dev/null)
	[ -n "$s" ] || api_down=$((api_down + 1))
	[ "$s" = 1/Paused ] || moved=$((moved + 1))
	echo "# n$i during the outage: step/phase $s"
done
echo "# $samples weight samples in ${OUTAGE_S}s without the API server, $changed changed"
check "no weight changed while the API server was down" expect "$changed == 0 and $samples > 0"
check "every agent answered its API during the outage" expect "$api_down == 0"
check "no step advanced and nothing aborted during the outage" expect "$moved == 0"

# ---- back: the nodes converge again ----
back_ms=$(date +%s%3N)
kube_apiserver_start || exit 1
echo "# API server ready again in $(($(date +%s%3N) - back_ms)) ms"
holder() { kctl -n "$NS" get lease canaryd-web.leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
has_holder() { [ -n "$(holder)" ]; }
check "a node holds the leader Lease again" kube_wait 20 has_holder
echo "# leader Lease held by $(holder) $(($(date +%s%3N) - back_ms)) ms after the restart"
promote_ms=$(date +%s%3N)
promote() { fctl 2 promote web >/dev/null; }
check "promote on n2 is accepted" promote
check "the promote reaches every node: 40% at step 3" \
	fleet_wait 20 "d['step'] == 3 and d['weight'] == 40" 1 2 3
echo "# promote through n2 -> every node at 40%: $(($(date +%s%3N) - promote_ms)) ms (polled)"
fleet_load_stop
for i in "${FLEET_NODES[@]}"; do
	f=$(lab_failed "$LAB_DIR/load-$i.out")
	echo "# client of n$i: $(tail -1 "$LAB_DIR/load-$i.out" | jget 'd["requests"]') requests, $f failed"
	check "client of n$i: no failed request" expect "$f == 0"
done
echo "# whole test: $((($(date +%s%N) - t0) / 1000000)) ms"
lab_finish
