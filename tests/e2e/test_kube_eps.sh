#!/usr/bin/env bash
# run-all: needs kube-apiserver
# canaryd takes a rollout's backends from Kubernetes EndpointSlices: the
# stable and canary versions name Services (web-stable, web-canary) of a
# real kube-apiserver 1.20 (lib_kube.sh; v1beta1 slices listing the lab's
# backends st1, st2, cn1), and the agent runs with --kubeconfig (the agent
# user's token, bound to deploy/kubernetes/rbac.yaml's roles). Traffic
# through the VIP reaches the slices' backends; st2 removed from its slice,
# added back: the pinned map follows (the time from the kubectl call to the
# map change is printed), and new connections follow the map. st2 marked
# terminating while still serving drains: kept-alive connections to it go
# on without a reset while new connections avoid it; removed from the slice
# then, new connections are unaffected. A Service with no ready endpoint
# keeps its last list. With the API
# server killed, the weights and backends stay and requests do not fail;
# started again, changes are followed again.
set -u
source "$(dirname "$0")/lib_kube.sh"

# shellcheck disable=SC2034 # read by lib_kube.sh: keep the terminating condition
KUBE_APISERVER_FLAGS="--feature-gates=EndpointSliceTerminatingCondition=true"
kube_require
trap kube_down EXIT
kube_node_lab
kctl create service clusterip web-stable --tcp=80:8080 >/dev/null
kctl create service clusterip web-canary --tcp=80:8080 >/dev/null

# slice SERVICE 'BACKEND[:ready|:terminating|:unready]...': apply SERVICE's one
# v1beta1 EndpointSlice, listing the lab backends' addresses.
slice() {
	local svc=$1 ep name st eps=""
	for ep in $2; do
		name=${ep%%:*}
		st=${ep#"$name"}
		case $st in
		:terminating) st="{ready: false, serving: true, terminating: true}" ;;
		:unready) st="{ready: false}" ;;
		*) st="{ready: true}" ;;
		esac
		eps="$eps  - {addresses: [$(backend_addr "$name")], conditions: $st}
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

quiet_ok() { "$@" >/dev/null 2>&1; }
fails_quietly() { ! "$@" >/dev/null 2>&1; }

slice web-stable "st1 st2"
slice web-canary "cn1"

mkdir -p "$LAB_CONFIG_DIR"
cat >"$LAB_CONFIG_DIR/web.yaml" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: default}
spec:
  service: {vip: $LAB_VIP, port: $LAB_PORT, protocol: http}
  stable: {revision: v1, service: web-stable}
  canary: {revision: v2, service: web-canary}
  strategy: {steps: [{setWeight: 50}, {pause: {}}]}
YAML
check "canaryd --check-config accepts versions given as service:" \
	quiet_ok "$LAB_BUILD/canaryd" --check-config --config "$LAB_CONFIG_DIR/web.yaml"
lab_agent --kubeconfig "$KUBE_DIR/agent.kubeconfig" || {
	echo "not ok - canaryd starts with --kubeconfig"
	exit 1
}

# map_eps VERSION: the pinned map's endpoints of one version, comma-separated.
map_eps() {
	canaryctl -o json maps 2>/dev/null |
		jget '",".join(d["services"][0]["'"$1"'"]["endpoints"])' 2>/dev/null
}
map_is() { [ "$(map_eps "$1")" = "$2" ]; }
# map_draining VERSION: its draining endpoints in the pinned map, comma-separated.
map_draining() {
	canaryctl -o json maps 2>/dev/null |
		jget '",".join(d["services"][0]["'"$1"'"]["draining"])' 2>/dev/null
}
map_draining_is() { [ "$(map_draining "$1")" = "$2" ]; }
# reason NAME: a per-reason packet counter of the pinned maps.
reason() { canaryctl -o json maps 2>/dev/null | jget "d['reasons']['$1']" 2>/dev/null; }
ep() { lab_endpoints "$@"; }

check "the map holds the slices' endpoints (stable st1,st2; canary cn1)" \
	kube_wait 5 map_is stable "$(ep st1 st2)"
check "canary endpoints from web-canary" map_is canary "$(ep cn1)"
check "the change was logged with the API version (v1beta1)" \
	grep -q 'msg="service endpoints changed".*service=web-stable ready=2.*api=v1beta1' \
	"$LAB_DIR/canaryd.log"
lab_wait web "d['weight'] == 50" 5 >/dev/null

# load NAME: 200 new connections through the VIP, labload's JSON to $LAB_DIR/NAME.out.
load() {
	lab_load --mode newconn --connections 2 --requests 200 --duration-s 10 >"$LAB_DIR/$1.out"
}
served() { tail -1 "$LAB_DIR/$1.out" | jget "d['backends'].get('$2', 0)"; }
show() {
	echo "# $1: st1=$(served "$1" st1) st2=$(served "$1" st2) cn1=$(served "$1" cn1) failed=$(lab_failed "$LAB_DIR/$1.out")"
}

load all
show all
check "traffic through the VIP reaches st1, st2 and cn1" \
	expect "$(served all st1) > 0 and $(served all st2) > 0 and $(served all cn1) > 0"
check "no request failed" test "$(lab_failed "$LAB_DIR/all.out")" = 0

writes() { grep -c 'msg="endpoints programmed from service"' "$LAB_DIR/canaryd.log"; }

# programmed_ms T0 N: ms from T0 (date +%s%N) to the agent's last logged map
# write, when there are more than N writes logged.
programmed_ms() {
	local ts
	[ "$(writes)" -gt "$2" ] || {
		echo "(no write logged)"
		return
	}
	ts=$(grep 'msg="endpoints programmed from service"' "$LAB_DIR/canaryd.log" | tail -1 |
		sed -n 's/^ts=\([^ ]*\) .*/\1/p')
	echo "$((($(date -d "$ts" +%s%N) - $1) / 1000000)) ms"
}

# change DESC VERSION WANT CMD...: run CMD (a kubectl apply); wait (10 s at
# most, 20 ms polls) until the map's VERSION endpoints are WANT; print how
# long kubectl took and how long after it returned the map had the change.
change() {
	local desc=$1 v=$2 want=$3 t0 t1 n=500 before
	shift 3
	before=$(writes)
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	while [ "$n" -gt 0 ] && ! map_is "$v" "$want"; do
		sleep 0.02
		n=$((n - 1))
	done
	if map_is "$v" "$want"; then
		echo "# $desc: kubectl apply $(((t1 - t0) / 1000000)) ms; seen in the map $((($(date +%s%N) - t1) / 1000000)) ms after it returned (polls of canaryctl maps); the agent logged the map write $(programmed_ms "$t0" "$before") after the kubectl call started"
		echo "ok - $desc"
	else
		echo "not ok - $desc (map: $(map_eps "$v"))"
		LAB_FAILURES=$((LAB_FAILURES + 1))
	fi
}

change "st2 removed from web-stable's slice: the map drops it" stable "$(ep st1)" \
	slice web-stable "st1"
load removed
show removed
check "no new connection reaches st2 once it left the slice" test "$(served removed st2)" = 0
check "st1 and cn1 still serve, nothing failed" \
	expect "$(served removed st1) > 0 and $(served removed cn1) > 0 and $(lab_failed "$LAB_DIR/removed.out") == 0"

change "st2 added back: the map has it again" stable "$(ep st1 st2)" slice web-stable "st1 st2"
load back
show back
check "st2 gets new connections again" expect "$(served back st2) > 0"

# Draining: 32 kept-alive connections (8 requests/s each) run through the
# change, so some ride on st2 (all 32 missing it: 0.75^32, 1e-4); st2 turns
# terminating, still serving, 2 s in. Its connections must go on without a
# reset (a re-steered one would be reset by its new backend: a failed
# request), while new connections avoid it.
lab_load_bg "$LAB_DIR/drain.out" --mode keepalive --connections 32 --rate 256 --duration-s 8 \
	--snapshot-on-usr1
sleep 2
resteered0=$(reason ct_resteered)
change "st2 marked terminating (serving): it leaves the selectable list" stable "$(ep st1)" \
	slice web-stable "st1 st2:terminating"
# Snapshot once the map has the change: what st2 serves after it came from
# connections that were open before.
kill -USR1 "$LAB_LOAD_PID"
sleep 0.3
check "st2 is draining in the map" kube_wait 5 map_draining_is stable "$(ep st2)"
check "the draining endpoint was counted as such" \
	grep -q 'msg="service endpoints changed".*service=web-stable ready=1 draining=1 terminating=1' \
	"$LAB_DIR/canaryd.log"
load terminating
show terminating
check "no new connection reaches the terminating st2" test "$(served terminating st2)" = 0
check "st1 and cn1 take the new connections, nothing failed" \
	expect "$(served terminating st1) > 0 and $(served terminating cn1) > 0 and $(lab_failed "$LAB_DIR/terminating.out") == 0"
wait "$LAB_LOAD_PID"
st2_before=$(head -1 "$LAB_DIR/drain.out" | jget "d['backends'].get('st2', 0)")
st2_after=$(served drain st2)
resteered1=$(reason ct_resteered)
echo "# kept-alive: st2 served $st2_before requests until the map had it draining, $st2_after in all; failed $(lab_failed "$LAB_DIR/drain.out") of $(tail -1 "$LAB_DIR/drain.out" | jget "d['requests']"); ct_resteered $resteered0 -> $resteered1"
check "st2 went on serving its kept-alive connections while terminating" \
	expect "$st2_after > $st2_before > 0"
check "no kept-alive request failed (no reset)" test "$(lab_failed "$LAB_DIR/drain.out")" = 0
check "no flow was re-steered away from the draining st2" test "$resteered1" = "$resteered0"

# st2 removed from the slice: its draining slot goes, new connections are unaffected.
slice web-stable "st1"
check "st2 removed from the slice: no longer draining in the map" \
	kube_wait 5 map_draining_is stable ""
load removed_drained
show removed_drained
check "after the removal, new connections go to st1 and cn1 and none fails" \
	expect "$(served removed_drained st2) == 0 and $(served removed_drained st1) > 0 and $(lab_failed "$LAB_DIR/removed_drained.out") == 0"

# No ready canary at all: the last list stays, and that is logged.
slice web-canary "cn1:unready"
check "web-canary with no ready endpoint: logged" \
	kube_wait 5 grep -q 'msg="service has no ready endpoint: keeping the last list".*service=web-canary' \
	"$LAB_DIR/canaryd.log"
check "web-canary with no ready endpoint: the map keeps cn1" map_is canary "$(ep cn1)"

# The API server killed while traffic flows.
lab_load_bg "$LAB_DIR/outage.out" --mode newconn --connections 2 --duration-s 3
kube_apiserver_stop
check "the API server is down" \
	fails_quietly in_ns node curl -s -m 1 --cacert "$KUBE_DIR/ca.pem" "$KUBE_SERVER/readyz"
wait "$LAB_LOAD_PID"
show outage
check "API server down: no request failed" test "$(lab_failed "$LAB_DIR/outage.out")" = 0
check "API server down: the backends stay (stable st1, canary cn1)" \
	expect "'$(map_eps stable)' == '$(ep st1)' and '$(map_eps canary)' == '$(ep cn1)'"
check "API server down: the weight stays at 50%" lab_wait web "d['weight'] == 50" 1

t0=$(date +%s%N)
kube_apiserver_start || echo "# the API server did not come back"
echo "# API server ready again after $((($(date +%s%N) - t0) / 1000000)) ms"
change "API server back: st2 ready again is followed" stable "$(ep st1 st2)" \
	slice web-stable "st1 st2"
change "API server back: web-canary gets st2 as well" canary "$(ep st2 cn1)" \
	slice web-canary "cn1 st2"
change "API server back: web-canary back to cn1 alone" canary "$(ep cn1)" slice web-canary "cn1"
grep -c 'msg="endpoints programmed from service"' "$LAB_DIR/canaryd.log" |
	sed 's/^/# map writes from Service changes: /'
if [ "$LAB_FAILURES" -gt 0 ]; then
	grep -E 'service|kube|endpoints' "$LAB_DIR/canaryd.log" | tail -15 | sed 's/^/# canaryd: /'
fi
lab_finish
