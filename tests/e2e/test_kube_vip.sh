#!/usr/bin/env bash
# run-all: needs kube-apiserver
# The VIP from a Service's ClusterIP (spec.service.fromService): a real
# kube-apiserver 1.20 (lib_kube.sh) gives the Service `web` a ClusterIP from
# its --service-cluster-ip-range (10.96.0.0/16); a Rollout names it, with no
# vip and no port, and its versions name Services whose EndpointSlices list
# the lab's backends. The agent (--kubeconfig, the agent user's token bound
# to deploy/kubernetes/rbac.yaml's roles) puts ClusterIP:port in the pinned
# services map, and traffic from the client namespace to the ClusterIP
# (routed to the node like the lab's VIP: the client's default route) reaches
# stable and canary. `web` deleted and created again with another ClusterIP:
# the map follows (the time from kubectl to the map is printed), the old VIP
# leaves it, and traffic to the new one is split. A headless Service and a
# missing one are refused with an error naming the rollout and the Service,
# and the running configuration stays.
set -u
source "$(dirname "$0")/lib_kube.sh"

kube_require
trap kube_down EXIT
kube_node_lab

VIP1=10.96.0.50
VIP2=10.96.0.60
kctl create service clusterip web --tcp=80:8080 --clusterip=$VIP1 >/dev/null
kctl create service clusterip web-stable --tcp=80:8080 >/dev/null
kctl create service clusterip web-canary --tcp=80:8080 >/dev/null
kctl create service clusterip web-headless --tcp=80:8080 --clusterip=None >/dev/null
echo "# Services: $(kctl get services -o jsonpath='{range .items[*]}{.metadata.name}={.spec.clusterIP} {end}')"

# slice SERVICE BACKEND...: SERVICE's one v1beta1 EndpointSlice, ready endpoints.
slice() {
	local svc=$1 name eps=""
	shift
	for name in "$@"; do
		eps="$eps  - {addresses: [$(backend_addr "$name")], conditions: {ready: true}}
"
	done
	kctl apply -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata:
  name: $svc-a
  labels: {kubernetes.io/service-name: $svc}
addressType: IPv4
ports: [{name: http, port: $LAB_BACKEND_PORT, protocol: TCP}]
endpoints:
$eps
EOF
}
slice web-stable st1 st2
slice web-canary cn1

# rollout FILE NAME SERVICE: a Rollout whose VIP is SERVICE's ClusterIP and port.
rollout() {
	cat >"$LAB_CONFIG_DIR/$1.tmp" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: $2, namespace: default}
spec:
  service: {fromService: $3, protocol: http}
  stable: {revision: v1, service: web-stable}
  canary: {revision: v2, service: web-canary}
  strategy: {steps: [{setWeight: 50}, {pause: {}}]}
YAML
	mv "$LAB_CONFIG_DIR/$1.tmp" "$LAB_CONFIG_DIR/$1"
}
mkdir -p "$LAB_CONFIG_DIR"
rollout web.yaml web web
"$LAB_BUILD/canaryd" --check-config --config "$LAB_CONFIG_DIR" >"$LAB_DIR/check.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/check.out"
check "canaryd --check-config accepts fromService and says it is not checked offline" \
	test "$rc" = 0 -a "$(grep -c 'fromService web: .*not checked here' "$LAB_DIR/check.out")" = 1

lab_agent --kubeconfig "$KUBE_DIR/agent.kubeconfig" || {
	echo "not ok - canaryd starts with --kubeconfig"
	exit 1
}

# map_vips: every service's VIP in the pinned map, sorted, comma-separated.
map_vips() {
	canaryctl -o json maps 2>/dev/null |
		jget '",".join(sorted(s["vip"] for s in d["services"]))' 2>/dev/null
}
map_vips_are() { [ "$(map_vips)" = "$1" ]; }

check "the map holds web's ClusterIP and its only port: $VIP1:80" \
	kube_wait 5 map_vips_are "$VIP1:80"
check "the read was logged" \
	grep -q "msg=\"VIP service read\".*service=web cluster_ip=$VIP1" "$LAB_DIR/canaryd.log"
check "the rollout runs at 50%" lab_wait web "d['weight'] == 50" 5

# load VIP NAME PORTS: 200 new connections to VIP:80 from the client
# namespace, from the client ports PORTS ("LOW HIGH"). Each load gets its own
# range: the backends close first (Connection: close) and hold TIME_WAIT for
# 60 s, and the client's ISNs and TCP timestamps depend on the address it
# dialled, so a SYN to the new ClusterIP on a 4-tuple the first load left in
# TIME_WAIT (dialled at the old one) fails PAWS at the backend and is lost
# (docs/kubernetes.md, "The VIP from a Service's ClusterIP").
load() {
	in_ns cl sysctl -qw net.ipv4.ip_local_port_range="$3"
	in_ns cl "$LAB_BUILD/labload" --target "$1:$LAB_PORT" --mode newconn --connections 2 \
		--requests 200 --duration-s 10 >"$LAB_DIR/$2.out"
}
served() { tail -1 "$LAB_DIR/$1.out" | jget "d['backends'].get('$2', 0)"; }
show() {
	echo "# $1: st1=$(served "$1" st1) st2=$(served "$1" st2) cn1=$(served "$1" cn1) failed=$(lab_failed "$LAB_DIR/$1.out")"
}

load "$VIP1" first "20000 29999"
show first
check "traffic to the ClusterIP reaches stable (st1, st2) and canary (cn1)" \
	expect "$(served first st1) > 0 and $(served first st2) > 0 and $(served first cn1) > 0"
check "no request failed" test "$(lab_failed "$LAB_DIR/first.out")" = 0

# The Service deleted and created again with another ClusterIP: the map
# follows (polled every 20 ms, 10 s at most).
t0=$(date +%s%N)
kctl delete service web >/dev/null
kctl create service clusterip web --tcp=80:8080 --clusterip=$VIP2 >/dev/null
t1=$(date +%s%N)
n=500
while [ "$n" -gt 0 ] && ! map_vips_are "$VIP2:80"; do
	sleep 0.02
	n=$((n - 1))
done
t2=$(date +%s%N)
echo "# web re-created: kubectl delete + create $(((t1 - t0) / 1000000)) ms; the map had $VIP2:80 $(((t2 - t1) / 1000000)) ms after they returned (map: $(map_vips))"
check "web re-created with ClusterIP $VIP2: the map moved to $VIP2:80, $VIP1 left it" \
	map_vips_are "$VIP2:80"
check "the deletion was logged, the last VIP kept meanwhile" \
	grep -q 'msg="VIP service gone: the maps keep its last VIP".*service=web$' "$LAB_DIR/canaryd.log"
check "the agent logged the new ClusterIP" \
	grep -q "msg=\"VIP service read\".*service=web cluster_ip=$VIP2" "$LAB_DIR/canaryd.log"
echo "# after the move: $(canaryctl -o json status web 2>/dev/null | jget '"phase %s, step %s, weight %s" % (d["phase"], d["step"], d["weight"])' 2>/dev/null)"
lab_wait web "d['weight'] == 50" 5 >/dev/null
load "$VIP2" moved "40000 49999"
show moved
check "traffic to the new ClusterIP reaches stable and canary" \
	expect "$(served moved st1) > 0 and $(served moved st2) > 0 and $(served moved cn1) > 0"
check "no request to the new ClusterIP failed" test "$(lab_failed "$LAB_DIR/moved.out")" = 0

refusals() { grep -c 'msg="config not applied' "$LAB_DIR/canaryd.log"; }
more_refusals_than() { [ "$(refusals)" -gt "$1" ]; }

# refused FILE SERVICE WHAT: a second rollout whose VIP would come from
# SERVICE; the config is not applied, with an error naming rollout, Service
# and WHAT, and the running rollout stays in the map.
refused() {
	local before
	before=$(refusals)
	rollout "$1" api "$2"
	kube_wait 10 more_refusals_than "$before"
	grep 'msg="config not applied' "$LAB_DIR/canaryd.log" | tail -1 | cut -c1-400 | sed 's/^/# /'
	# The log escapes the quotes around the rollout's name.
	check "$2: the config is refused, naming the rollout, the Service and why" \
		grep -qF "rollout \\\"api\\\": spec.service.fromService: Service default/$2: $3" \
		"$LAB_DIR/canaryd.log"
	check "$2: the running rollout stays ($VIP2:80 alone in the map)" map_vips_are "$VIP2:80"
	rm -f "$LAB_CONFIG_DIR/$1"
}
refused api.yaml web-headless "the Service is headless (clusterIP None)"
refused api.yaml web-missing "no such Service"

grep -E 'VIP service|config (not )?applied|superseded|service removed' "$LAB_DIR/canaryd.log" |
	tail -12 | cut -c1-300 | sed 's/^/# canaryd: /'
lab_finish
