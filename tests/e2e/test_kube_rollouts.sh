#!/usr/bin/env bash
# run-all: needs kube-apiserver
# canaryd runs the Rollouts of the Kubernetes API (--rollouts-from kube, no
# --config), on a real kube-apiserver 1.20 (lib_kube.sh) as the agent's user
# bound to deploy/kubernetes/rbac.yaml's roles. `kubectl apply` of a Rollout:
# its service appears in the pinned map and it walks its steps; a second
# Rollout does not restart the first; a changed canary restarts only that
# Rollout; a spec the CRD's schema accepts but the agent refuses (a weight
# with three decimals) is logged naming the object and the field, and is a
# Warning Event on the Rollout, while the last accepted spec keeps running;
# `kubectl delete` takes the service out of the map. The API server killed:
# the agent keeps running what it has,
# and follows changes again once it is back. Last, the agent with
# --coordinator kube as well: the Rollout's status is written. The time
# from each kubectl call to the map change is printed, never judged.
set -u
source "$(dirname "$0")/lib_kube.sh"

NS=canaryd-system
VIP2=198.19.0.11

kube_require
trap kube_down EXIT
kube_node_lab

quiet() { "$@" >/dev/null 2>&1; }
kctl apply -f "$LAB_ROOT/deploy/kubernetes/crd.yaml" >/dev/null
kctl -n "$NS" create rolebinding lab-agent --role=canaryd-leader-election \
	--user=canaryd-agent >/dev/null
check "the CRD is Established" quiet kctl wait --for=condition=Established --timeout=20s \
	crd/rollouts.canaryd.io

# apply NAME VIP CANARY STEPS: kubectl apply a Rollout (stable st1,st2; canary CANARY).
apply() {
	kctl apply -f - >/dev/null <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: $1, namespace: $NS}
spec:
  service: {vip: $2, port: $LAB_PORT, protocol: http}
  stable: {revision: v1, endpoints: [$(lab_endpoints_yaml st1 st2)]}
  canary: {revision: rev-$3, endpoints: [$(lab_endpoints_yaml "$3")]}
  strategy: {steps: $4}
  analysis: {minRequests: 5}
YAML
}

WEB_STEPS="[{setWeight: 20}, {pause: {duration: 1s}}, {setWeight: 40}, {pause: {}}]"
API_STEPS="[{setWeight: 50}, {pause: {}}]"

check "--config and --rollouts-from kube together are refused" \
	quiet expect "$(
		"$LAB_BUILD/canaryd" --rollouts-from kube --config "$LAB_DIR" >/dev/null 2>&1
		echo $?
	) == 2"
LAB_ROLLOUTS_FROM=kube lab_agent --kubeconfig "$KUBE_DIR/agent.kubeconfig" \
	--kube-namespace "$NS" || {
	echo "not ok - canaryd starts with --rollouts-from kube and no --config"
	exit 1
}
check "the agent listed the (empty) namespace" kube_wait 5 grep -q \
	"msg=\"rollouts listed from the API\" namespace=$NS objects=0" "$LAB_DIR/canaryd.log"

# map_field VIP EXPR: EXPR over the pinned map's service on VIP (bound to s), or "none".
map_field() {
	canaryctl -o json maps 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = [s for s in d["services"] if s["vip"].startswith(sys.argv[1] + ":")]
print(eval(sys.argv[2], {"s": s[0]}) if s else "none")' "$1" "$2" 2>/dev/null
}
in_map() { [ "$(map_field "$1" "s['name']")" != none ]; }
not_in_map() { [ "$(map_field "$1" "s['name']")" = none ]; }
canary_is() { [ "$(map_field "$1" "','.join(s['canary']['endpoints'])")" = "$(lab_endpoints "$2")" ]; }
started() { grep -c "msg=\"rollout started\" rollout=$1 " "$LAB_DIR/canaryd.log"; }

# applied_ms T0 T1: the agent's first "config applied" log line after T0
# (date +%s%N; the moment the maps were written), in ms after T0 and T1.
applied_ms() {
	python3 - "$1" "$2" "$LAB_DIR/canaryd.log" <<'PY'
import datetime, re, sys
t0, t1 = int(sys.argv[1]) / 1e9, int(sys.argv[2]) / 1e9
for line in open(sys.argv[3], errors="replace"):
    m = re.match(r'ts=(\S+) .*msg="config applied"', line)
    if not m:
        continue
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    if t >= t0:
        print("%d ms after the call started, %d ms after it returned"
              % (round((t - t0) * 1000), round((t - t1) * 1000)))
        break
else:
    print("(not logged)")
PY
}

# walk NAME VIP EXPR SECONDS: traffic to VIP (the analysis needs requests to
# pass a step) until the rollout NAME meets EXPR (lab_wait), SECONDS at most.
walk() {
	local rc
	LAB_VIP=$2 lab_load_bg "$LAB_DIR/walk-$1.out" --mode newconn --connections 2 --rate 100 \
		--duration-s "$4"
	lab_wait "$1" "$3" "$4"
	rc=$?
	kill "$LAB_LOAD_PID" 2>/dev/null
	wait "$LAB_LOAD_PID" 2>/dev/null
	return $rc
}

# timed DESC TEST... -- CMD...: run CMD (a kubectl call), then wait (10 s at
# most, 20 ms polls) until TEST holds; print how long after the call started
# the agent applied the change (its log) and when the polls saw it.
timed() {
	local desc=$1 t0 t1 n=500 test=()
	shift
	while [ "$1" != -- ]; do
		test+=("$1")
		shift
	done
	shift
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	while [ "$n" -gt 0 ] && ! "${test[@]}"; do
		sleep 0.02
		n=$((n - 1))
	done
	if "${test[@]}"; then
		echo "# $desc: kubectl took $(((t1 - t0) / 1000000)) ms; the agent applied it $(applied_ms "$t0" "$t1"); seen by the polls $((($(date +%s%N) - t1) / 1000000)) ms after kubectl returned"
		echo "ok - $desc"
	else
		echo "not ok - $desc"
		LAB_FAILURES=$((LAB_FAILURES + 1))
	fi
}

timed "kubectl apply web: its service is in the pinned map" in_map "$LAB_VIP" -- \
	apply web "$LAB_VIP" cn1 "$WEB_STEPS"
check "web walks its steps to 40%, paused" walk web "$LAB_VIP" \
	"d['phase'] == 'Paused' and d['weight'] == 40 and d['step'] == 3" 20
check "the map has web at 40%" expect "$(map_field "$LAB_VIP" "s['weight']") == 40"
lab_load --mode newconn --connections 2 --requests 200 --duration-s 10 >"$LAB_DIR/web.out"
echo "# traffic through web: $(tail -1 "$LAB_DIR/web.out" | jget "d['backends']") failed=$(lab_failed "$LAB_DIR/web.out")"
check "traffic through web's VIP: no request failed" test "$(lab_failed "$LAB_DIR/web.out")" = 0

timed "kubectl apply a second Rollout (api): in the map" in_map "$VIP2" -- \
	apply api "$VIP2" st2 "$API_STEPS"
check "api walks to 50%, paused" walk api "$VIP2" "d['phase'] == 'Paused' and d['weight'] == 50" 20
check "adding api did not restart web (started once, still paused at 40%)" \
	expect "$(started web) == 1 and $(lab_status web "d['step'] == 3 and d['weight'] == 40")"

timed "kubectl apply web with a new canary (st2): the map's canary follows" \
	canary_is "$LAB_VIP" st2 -- apply web "$LAB_VIP" st2 "$WEB_STEPS"
check "web restarted with its new canary, to 40% again" walk web "$LAB_VIP" \
	"d['phase'] == 'Paused' and d['weight'] == 40" 20
check "web started twice, api once: only the changed Rollout restarted" \
	expect "$(started web) == 2 and $(started api) == 1"
check "api still paused at 50%" lab_wait api "d['phase'] == 'Paused' and d['weight'] == 50" 1

# 12.345: a number from 0 to 100 for the CRD's schema; the agent wants two decimals.
check "the API server takes setWeight 12.345" \
	apply web "$LAB_VIP" cn1 "[{setWeight: 12.345}, {pause: {}}]"
check "the agent refuses it, naming the Rollout and the field" kube_wait 5 grep -q \
	'msg="rollout rejected: keeping its last accepted spec" rollout=web .*spec.strategy.steps\[0\].setWeight' \
	"$LAB_DIR/canaryd.log"
grep 'msg="rollout rejected' "$LAB_DIR/canaryd.log" | tail -1 | sed 's/^/# canaryd: /'
rejected_event() {
	kctl -n "$NS" get events --field-selector involvedObject.name=web,reason=SpecRejected \
		-o jsonpath='{range .items[*]}{.type} {.message}{"\n"}{end}' >"$LAB_DIR/events.out" 2>&1
	grep -q '^Warning spec not applied, the last accepted spec keeps running: .*setWeight' \
		"$LAB_DIR/events.out"
}
check "the refusal is a Warning Event (SpecRejected) on the Rollout" kube_wait 5 rejected_event
sed 's/^/# event: /' "$LAB_DIR/events.out"
check "web keeps its last accepted spec: canary st2, 40%, not restarted" \
	expect "$(started web) == 2 and $(lab_status web "d['weight'] == 40") and '$(map_field "$LAB_VIP" "','.join(s['canary']['endpoints'])")' == '$(lab_endpoints st2)'"

timed "kubectl delete api: its service leaves the map" not_in_map "$VIP2" -- \
	quiet kctl -n "$NS" delete rollout api
check "web is still in the map" in_map "$LAB_VIP"

# The API server killed: the agent keeps what it runs, and answers.
kube_apiserver_stop
sleep 2
check "API server down: the agent runs on" kill -0 "$(cat "$LAB_DIR/canaryd.pid")"
check "API server down: web still paused at 40% with canary st2" \
	expect "$(lab_status web "d['phase'] == 'Paused' and d['weight'] == 40") and '$(map_field "$LAB_VIP" "','.join(s['canary']['endpoints'])")' == '$(lab_endpoints st2)'"
t0=$(date +%s%N)
kube_apiserver_start || echo "# the API server did not come back"
echo "# API server ready again after $((($(date +%s%N) - t0) / 1000000)) ms"
timed "API server back: web's canary back to cn1 is followed" canary_is "$LAB_VIP" cn1 -- \
	apply web "$LAB_VIP" cn1 "$WEB_STEPS"
check "web runs the new spec to 40%" walk web "$LAB_VIP" \
	"d['phase'] == 'Paused' and d['weight'] == 40" 20

# With the fleet on the API as well: the agent writes the Rollout's status.
# The node is named as clouds name theirs, with dots.
NODE=node-1.lab.internal
lab_agent_stop
LAB_ROLLOUTS_FROM=kube lab_agent --kubeconfig "$KUBE_DIR/agent.kubeconfig" \
	--kube-namespace "$NS" --coordinator kube --node-name "$NODE" --kube-lease-duration 6 || {
	echo "not ok - canaryd starts with --rollouts-from kube --coordinator kube"
	exit 1
}
phase() { [ "$(kctl -n "$NS" get rollout web -o jsonpath='{.status.phase}')" = "$1" ]; }
check "--coordinator kube: web's status is written (phase Paused)" kube_wait 10 phase Paused
kctl -n "$NS" get rollouts | sed 's/^/# /'
check "--coordinator kube: the dotted node $NODE publishes in Lease canaryd-web.node.$NODE" \
	quiet kctl -n "$NS" get lease "canaryd-web.node.$NODE"
check "--coordinator kube: web still at 40% in the map" \
	expect "$(map_field "$LAB_VIP" "s['weight']") == 40"
check "--coordinator kube: status writes are not spec changes (web started 3 times in all)" \
	expect "$(started web) == 3"

# status.observedGeneration: the generation of the spec the agent runs. A
# refused spec leaves it behind metadata.generation; the next accepted one
# (the same spec as before: nothing restarts) catches it up at once.
gens() { kctl -n "$NS" get rollout web -o jsonpath='{.metadata.generation} {.status.observedGeneration}'; }
observed_is_current() { read -r g o <<<"$(gens)" && [ -n "$o" ] && [ "$o" = "$g" ]; }
check "--coordinator kube: status.observedGeneration is web's generation" \
	kube_wait 10 observed_is_current
echo "# generation, observedGeneration: $(gens)"
apply web "$LAB_VIP" cn1 "[{setWeight: 12.345}, {pause: {}}]"
sleep 2 # the refusal is logged within 0.1 s (above); a view would follow at once
read -r g o <<<"$(gens)"
echo "# a refused spec: generation $g, observedGeneration $o"
check "--coordinator kube: a refused spec leaves observedGeneration behind" \
	expect "$o == $g - 1"
apply web "$LAB_VIP" cn1 "$WEB_STEPS"
check "--coordinator kube: the next accepted spec brings it up to date" \
	kube_wait 10 observed_is_current
echo "# generation, observedGeneration: $(gens)"
check "--coordinator kube: web was not restarted by either (3 starts in all)" \
	expect "$(started web) == 3"

if [ "$LAB_FAILURES" -gt 0 ]; then
	grep -E 'rollout|config|kube' "$LAB_DIR/canaryd.log" | tail -25 | sed 's/^/# canaryd: /'
fi
lab_finish
