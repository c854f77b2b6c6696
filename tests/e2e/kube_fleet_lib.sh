#!/usr/bin/env bash
# The fleet on the Kubernetes API (--coordinator kube), for test_kube_fleet*.sh:
# lib_kube.sh's API server and fleet_lib.sh's 3 nodes, each with a veth to
# it; deploy/kubernetes's namespace, CRD and RBAC applied, the roles bound to
# the agents' user (they use its token, not admin's); the Rollout applied
# with kubectl from the agents' own file. Set NS and LEASE_S before
# kube_fleet_up.
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib_kube.sh"

NS=${NS:-canaryd-system}
LEASE_S=${LEASE_S:-6}

fleet_coord_flags() {
	echo "--coordinator kube --kubeconfig $KUBE_DIR/agent.kubeconfig --kube-namespace $NS" \
		"--kube-lease-duration $LEASE_S --node-name n$1"
}
kube_fleet_down() {
	fleet_down
	kube_down
}

# kube_fleet_up STEPS ANALYSIS: everything up, the agents started (a failed start exits).
kube_fleet_up() {
	local t0 i k=$LAB_ROOT/deploy/kubernetes
	t0=$(date +%s%N)
	kube_up || exit 1
	fleet_up
	for i in "${FLEET_NODES[@]}"; do kube_link "$(fns "n$i")" "$i"; done
	kctl apply -f "$k/namespace.yaml" -f "$k/crd.yaml" -f "$k/rbac.yaml" >/dev/null
	# As rbac.yaml binds the ServiceAccount: the ClusterRole in the watched namespace only.
	kctl -n "$NS" create rolebinding lab-agent-rollouts --clusterrole=canaryd \
		--user=canaryd-agent >/dev/null
	kctl -n "$NS" create rolebinding lab-agent --role=canaryd-leader-election \
		--user=canaryd-agent >/dev/null
	kctl wait --for condition=established --timeout=20s crd/rollouts.canaryd.io >/dev/null
	fleet_backends
	fleet_rollout "$1" "$2"
	check "the Rollout is applied with kubectl from the agents' file" \
		kube_wait 10 kctl -n "$NS" apply -f "$LAB_DIR/config/web.yaml"
	for i in "${FLEET_NODES[@]}"; do fleet_agent "$i"; done
	echo "# lab up (API server, 3 nodes, agents) in $((($(date +%s%N) - t0) / 1000000)) ms"
}
