#!/usr/bin/env bash
# run-all: needs kube-apiserver
# Fleet on the Kubernetes API (--coordinator kube): a real kube-apiserver
# (lib_kube.sh) and fleet_lib.sh's 3 nodes, each with a veth to the API
# server. The CRD and the RBAC of deploy/kubernetes are applied, the agents
# authenticate as the user canaryd-agent bound to those roles (not admin),
# and the Rollout is created with kubectl apply from the agents' own file.
#
#  1. one node becomes leader (the holder of Lease canaryd-web.leader), the
#     first step is taken on every node, and the Rollout's .status shows it,
#     with every node's counts and the leader's verdicts;
#  2. the leader is SIGKILLed in the pause: another node takes the Lease once
#     it expired (--kube-lease-duration 6 here; the gap is printed), an
#     operator's promote on a survivor, and the new leader walks the steps;
#  3. node 1's canary fails: every node ends at weight 0 (the time from node
#     1's decision to the last node's is printed) and .status says Degraded;
#  4. the transitions are Events on the Rollout (kubectl get events), each
#     recorded once, by the node that wrote it: the pause at step 1, the
#     operator's promote, and node 1's abort (a Warning);
#  5. after a retry, an operator's abort from outside the nodes: kubectl
#     patches the Rollout's status.abort, and every node ends at weight 0.
set -u
source "$(dirname "$0")/kube_fleet_lib.sh"

LEASE_S=6
# An indefinite pause at step 1: the leader is killed there, and an
# operator's promote (a versioned write, from a survivor) then needs the
# new leader to walk steps 2..5.
STEPS="[{setWeight: 20}, {pause: {}}, {setWeight: 40}, {pause: {duration: 1s}},
        {setWeight: 60}, {pause: {}}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

log_ms_after() {
	tail -n +"$(($3 + 1))" "$1" | grep -m1 -- "$2" |
		sed -n 's/^ts=\([^ ]*\) .*/\1/p' | xargs -r -I{} date -d {} +%s%3N
}
status_of() { kctl -n "$NS" get rollout web -o jsonpath="$1" 2>/dev/null; }
holder() { kctl -n "$NS" get lease canaryd-web.leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
# Checked again at every try of kube_wait.
status_is() { [ "$(status_of '{.status.phase}/{.status.abort}/{.status.weight}')" = "$1" ]; }
holder_other_than() {
	local h
	h=$(holder)
	[ -n "$h" ] && [ "$h" != "$1" ]
}

kube_require
trap kube_fleet_down EXIT
t0=$(date +%s%N)
kube_fleet_up "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 150 \
		--duration-s 600 --timeout-ms 3000
done

# ---- 1: a leader, and the steps on every node and in .status ----
check "a leader is elected" fleet_wait 10 "d['fleet']['leader'] != ''" 1
leader=$(fleet_leader)
echo "# leader: n$leader; Lease holder: $(holder)"
check "the leader holds Lease canaryd-web.leader" expect "'$(holder)' == 'n$leader'"
check "the first step is taken on every node (20%, paused at step 1)" \
	fleet_wait 20 "d['step'] == 1 and d['weight'] == 20" 1 2 3
check ".status shows the step and weight (kubectl)" kube_wait 5 status_is Paused/false/20
kctl -n "$NS" get rollouts 2>&1 | sed 's/^/# /'
kctl -n "$NS" get leases -L canaryd.io/role,canaryd.io/node 2>&1 | sed 's/^/# /'
node_leases() { [ "$(kctl -n "$NS" get leases -l canaryd.io/role=node -o name 2>/dev/null | wc -l)" = 3 ]; }
check "every node publishes its evidence in its own Lease" kube_wait 5 node_leases
# The leader's view in .status (every 5 s at most): each node's evidence and
# its verdicts of the pooled counts.
status_nodes() { status_of '{range .status.nodes[*]}{.node} {.live} {.requests}{"\n"}{end}'; }
status_nodes_counted() { [ "$(status_nodes | grep -c '^n[1-3] true [1-9]')" = 3 ]; }
status_verdicts() { [ "$(status_of '{.status.verdicts[*].metric}')" = "errorRate compareErrorRate" ]; }
check ".status.nodes: the 3 nodes, live, each with canary requests (kubectl)" \
	kube_wait 15 status_nodes_counted
status_nodes | sed 's/^/# status.nodes: /'
check ".status.verdicts: the leader's errorRate and compareErrorRate (kubectl)" \
	kube_wait 10 status_verdicts
status_of '{range .status.verdicts[*]}{.metric} {.result} {.value} {.time}{"\n"}{end}' |
	sed 's/^/# status.verdicts: /'

# ---- 2: the leader killed; another takes the Lease after it expires ----
others=()
for i in "${FLEET_NODES[@]}"; do [ "$i" = "$leader" ] || others+=("$i"); done
declare -A mark
for i in "${others[@]}"; do mark[$i]=$(wc -l <"$LAB_DIR/canaryd-n$i.log"); done
step_before=$(fleet_get "${others[0]}" 'd["step"]')
kill_ms=$(date +%s%3N)
pid=$(cat "$LAB_DIR/canaryd-n$leader.pid")
kill -9 "$pid"
wait "$pid" 2>/dev/null # reaped here, so that the shell does not report it
check "another node takes the Lease" \
	kube_wait $((LEASE_S + 10)) holder_other_than "n$leader"
new_leader=$(holder)
lead_ms=$(log_ms_after "$LAB_DIR/canaryd-$new_leader.log" 'fleet: leading' "${mark[${new_leader#n}]:-0}")
echo "# n$leader SIGKILLed at step $step_before; $new_leader leads $((${lead_ms:-0} - kill_ms)) ms later (Lease duration ${LEASE_S}s)"
check "the new holder is not the killed node" expect "'$new_leader' not in ('', 'n$leader')"
promote() { fctl "$1" promote web >/dev/null; }
check "promote on n${others[1]} is accepted" promote "${others[1]}"
check "the new leader walks the steps: 60% at step 5 on both survivors" \
	fleet_wait 20 "d['step'] == 5 and d['weight'] == 60" "${others[@]}"
check ".status shows step 5 at 60% (kubectl)" kube_wait 5 status_is Paused/false/60
fleet_agent "$leader"
check "the restarted node follows the fleet" \
	fleet_wait 20 "d['step'] == 5 and d['weight'] == 60" 1 2 3

# ---- 3: node 1's canary fails: every node at weight 0 ----
for i in "${FLEET_NODES[@]}"; do mark[$i]=$(wc -l <"$LAB_DIR/canaryd-n$i.log"); done
lab_backend_set k1 error_rate=1
check "every node aborts" fleet_wait 15 "d['phase'] == 'Degraded'" 1 2 3
decided=$(log_ms_after "$LAB_DIR/canaryd-n1.log" 'msg=aborted ' "${mark[1]}")
last=0
for i in 2 3; do
	ms=$(log_ms_after "$LAB_DIR/canaryd-n$i.log" 'aborted by the fleet' "${mark[$i]}")
	[ -n "$ms" ] && [ "$ms" -gt "$last" ] && last=$ms
done
echo "# node 1 aborted on its own evidence; nodes 2 and 3 at weight 0 $((last - ${decided:-0})) ms later"
check "node 1 decided, nodes 2 and 3 followed it" expect "${decided:-0} > 0 and $last >= ${decided:-0}"
for i in "${FLEET_NODES[@]}"; do
	check "weight 0 in node $i's kernel map" expect "$(fleet_weight "$i") == 0"
done
check ".status says Degraded, abort true, weight 0 (kubectl)" \
	kube_wait 5 status_is Degraded/true/0
kctl -n "$NS" get rollouts 2>&1 | sed 's/^/# /'
check "nodes 2 and 3 never failed on their own evidence" \
	expect "$(grep -c 'msg=aborted ' "$LAB_DIR/canaryd-n2.log" "$LAB_DIR/canaryd-n3.log" | awk -F: '{s+=$2} END {print s}') == 0"

# ---- 4: the transitions as Events on the Rollout, each once ----
events() {
	kctl -n "$NS" get events --field-selector involvedObject.name=web,involvedObject.kind=Rollout \
		-o jsonpath='{range .items[*]}{.reason}|{.type}|{.source.host}|{.count}|{.message}{"\n"}{end}' \
		2>/dev/null
}
n_events() { events | grep -c -- "$1"; }
has_abort_event() { [ "$(n_events '^Aborted|Warning|n1|')" -ge 1 ]; }
kube_wait 5 has_abort_event
events | sed 's/^/# event: /'
check "the pause at step 1 is one Event (Paused, Normal)" \
	expect "$(n_events '^Paused|Normal|n[123]|1|step 1, weight 20%: ')" == 1
check "the operator's promote is one Event (Promoted, by n${others[1]})" \
	expect "$(n_events "^Promoted|Normal|n${others[1]}|1|step 2, weight [0-9.]*%: promoted")" == 1
check "the step to 60% is one Event (StepAdvanced, by the new leader)" \
	expect "$(n_events "^StepAdvanced|Normal|$new_leader|1|step 4, weight 60%: ")" == 1
check "node 1's abort is one Event (Aborted, Warning, by n1)" \
	expect "$(n_events '^Aborted|Warning|n1|1|')" == 1
check "no other node recorded an abort" expect "$(n_events '^Aborted|')" == 1
# ---- 5: an operator's abort from outside the nodes: kubectl patches .status ----
lab_backend_set k1 error_rate=0
check "a retry through n2 runs the rollout again" fctl 2 retry web
check "every node is back at its pause at 20%" \
	fleet_wait 20 "d['phase'] == 'Paused' and d['step'] == 1 and d['weight'] == 20" 1 2 3
check ".status says abort false again (kubectl)" kube_wait 5 status_is Paused/false/20
patch_ms=$(date +%s%3N)
check "kubectl patches status.abort, asking no agent" \
	kctl -n "$NS" patch rollouts.canaryd.io web --subresource=status --type=merge \
	-p '{"status":{"abort":true}}'
check "every node aborts" fleet_wait 10 "d['phase'] == 'Degraded'" 1 2 3
echo "# every node Degraded $(($(date +%s%3N) - patch_ms)) ms after the patch (polled)"
for i in "${FLEET_NODES[@]}"; do
	check "weight 0 in node $i's kernel map after the operator's abort" \
		expect "$(fleet_weight "$i") == 0"
done
check "the message names the cause" \
	expect "$(fleet_get 3 "'status.abort set on the Rollout' in d['message']")"
kctl -n "$NS" get rollouts 2>&1 | sed 's/^/# /'
echo "# whole test: $((($(date +%s%N) - t0) / 1000000)) ms"
lab_finish
