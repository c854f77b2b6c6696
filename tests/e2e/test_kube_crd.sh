#!/usr/bin/env bash
# run-all: needs kube-apiserver
# The Rollout CRD and the agent's RBAC on a real kube-apiserver (lib_kube.sh):
# the CRD is established; a valid Rollout, written as a lab config file, is
# accepted by the API server as it is by `canaryd --check-config`, and
# `kubectl get rollouts` shows the printer columns; invalid ones are refused
# by both, the API server naming the field (among them a service with both
# vip and fromService); a service given as fromService alone is accepted by
# both, canaryd saying it cannot check that VIP offline; a status merge-patch through the
# status subresource leaves spec and generation alone; a write with a stale
# resourceVersion gets 409. Then deploy/kubernetes/rbac.yaml's roles allow
# its ServiceAccount exactly what the agent needs, in canaryd-system only
# (kubectl auth can-i).
# Last, the whole kustomization and its kube-native overlay
# (deploy/kubernetes-native) pass a server-side dry run.
set -u
source "$(dirname "$0")/lib_kube.sh"

kube_require
trap kube_down EXIT
kube_up || {
	echo "not ok - etcd and kube-apiserver start"
	exit 1
}
CANARYD=$LAB_BUILD/canaryd
CASES=$LAB_DIR/cases
mkdir -p "$CASES"
# fails CMD...: CMD exits non-zero (a check that a refusal happens).
fails() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }
# refused_naming FILE FIELD: kubectl's answer in FILE is a refusal naming FIELD.
refused_naming() { grep -q 'is invalid' "$1" && grep -q -- "$2" "$1"; }

check "the CRD applies" quiet kctl apply -f "$LAB_ROOT/deploy/kubernetes/crd.yaml"
check "the CRD is Established" quiet kctl wait --for=condition=Established --timeout=20s \
	crd/rollouts.canaryd.io

# rollout NAME [SPEC-EDIT]: a lab config file; SPEC-EDIT is Python run on the
# parsed document d, so each invalid case is one edit of the valid one.
rollout() {
	python3 - "$1" "${2:-}" >"$CASES/$1.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load("""
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  service: {vip: 198.19.0.10, port: 80, protocol: http}
  stable: {revision: v1, endpoints: ["198.18.1.2:8080", "198.18.2.2:8080"]}
  canary: {revision: v2, endpoints: ["198.18.3.2:8080"]}
  strategy:
    steps: [{setWeight: 10}, {pause: {duration: 30s}}, {setWeight: 50}, {pause: {}}]
  analysis:
    interval: 1s
    minRequests: 20
    confidence: 0.99
    metrics: [{name: errorRate, max: 0.05}, {name: latencyP99, max: 250ms},
              {name: compareErrorRate}]
  abort: {connections: reset}
""")
d["metadata"]["name"] = sys.argv[1]
exec(sys.argv[2])
yaml.safe_dump(d, sys.stdout)
PY
}

rollout web
check "the lab config is valid for canaryd --check-config" \
	quiet "$CANARYD" --config "$CASES/web.yaml" --check-config
check "the same file applies as a Rollout" quiet kctl apply -f "$CASES/web.yaml"
kctl get rollouts >"$LAB_DIR/get.out" 2>&1
sed 's/^/# /' "$LAB_DIR/get.out"
check "kubectl get rollouts shows NAME PHASE STEP WEIGHT AGE" \
	grep -Eq '^NAME +PHASE +STEP +WEIGHT +AGE$' "$LAB_DIR/get.out"
check "the short name lists it: kubectl get cro web" quiet kctl get cro web

# NAME|EDIT|FIELD: each must be refused by both, the API server naming FIELD.
INVALID=(
	'weight-over|d["spec"]["strategy"]["steps"][0]["setWeight"] = 101|setWeight'
	'port-over|d["spec"]["service"]["port"] = 70000|spec.service.port'
	'port-string|d["spec"]["service"]["port"] = "80"|spec.service.port'
	'protocol-sctp|d["spec"]["service"]["protocol"] = "sctp"|spec.service.protocol'
	'no-canary|del d["spec"]["canary"]|spec.canary'
	'pause-no-unit|d["spec"]["strategy"]["steps"][1]["pause"]["duration"] = "30"|duration'
	'step-two-kinds|d["spec"]["strategy"]["steps"][0]["pause"] = {}|steps'
	'no-steps|d["spec"]["strategy"]["steps"] = []|spec.strategy.steps'
	'confidence-one|d["spec"]["analysis"]["confidence"] = 1|spec.analysis.confidence'
	'affinity-sticky|d["spec"]["affinity"] = "sticky"|spec.affinity'
	'endpoints-17|d["spec"]["canary"]["endpoints"] = ["198.18.3.%d:8080" % i for i in range(2, 19)]|spec.canary.endpoints'
	'abort-kill|d["spec"]["abort"] = {"connections": "kill"}|spec.abort.connections'
	'metric-twice|d["spec"]["analysis"]["metrics"].append({"name": "errorRate", "max": 0.1})|spec.analysis.metrics'
	'name-32-chars|d["metadata"]["name"] = "n" * 32|metadata.name'
	'endpoints-and-service|d["spec"]["canary"]["service"] = "web-canary"|spec.canary'
	'vip-and-from-service|d["spec"]["service"]["fromService"] = "web"|spec.service'
	'vip-without-port|del d["spec"]["service"]["port"]|spec.service'
	'from-service-upper|d["spec"]["service"] = {"fromService": "Web"}|spec.service.fromService'
)
for c in "${INVALID[@]}"; do
	IFS='|' read -r name edit field <<<"$c"
	rollout "$name" "$edit"
	"$CANARYD" --config "$CASES/$name.yaml" --check-config >"$CASES/$name.check" 2>&1
	rc=$?
	check "$name: canaryd --check-config refuses it, naming $field" \
		test "$rc" -ne 0 -a "$(grep -c -- "$field" "$CASES/$name.check")" -gt 0
	# --validate=false: the API server judges, not kubectl's client-side check.
	kctl apply --validate=false -f "$CASES/$name.yaml" >"$CASES/$name.apply" 2>&1
	echo "# $name: $(grep -o "${field}[^,]*" "$CASES/$name.apply" | head -1 | cut -c1-110)"
	check "$name: the API server refuses it, naming $field" \
		refused_naming "$CASES/$name.apply" "$field"
	check "$name: nothing was stored" fails kctl get rollout "$name"
done

# A version given as a Service name: the CRD takes it (exactly one of
# endpoints and service; both were refused above); canaryd's files do not yet.
rollout by-service 'd["spec"]["canary"] = {"revision": "v2", "service": "web-canary"}'
check "a version given as service: (a Service name) is accepted by the API server" \
	quiet kctl apply -f "$CASES/by-service.yaml"
"$CANARYD" --config "$CASES/by-service.yaml" --check-config 2>&1 | sed 's/^/# not yet in canaryd: /'

# The VIP as a Service's ClusterIP: the port may be left to the Service.
rollout vip-from-service 'd["spec"]["service"] = {"fromService": "web-root", "protocol": "http"}'
check "service: {fromService: NAME} (no vip, no port) is accepted by the API server" \
	quiet kctl apply -f "$CASES/vip-from-service.yaml"
"$CANARYD" --config "$CASES/vip-from-service.yaml" --check-config >"$CASES/vip-from-service.check" 2>&1
rc=$?
sed 's/^/# /' "$CASES/vip-from-service.check"
check "canaryd --check-config accepts it, saying the VIP is not checked offline" \
	test "$rc" = 0 -a "$(grep -c 'fromService web-root: .*not checked here' "$CASES/vip-from-service.check")" = 1

# The status subresource: a merge patch changes status only.
gen0=$(kctl get rollout web -o jsonpath='{.metadata.generation}')
spec0=$(kctl get rollout web -o jsonpath='{.spec}')
check "a status merge-patch through the status subresource is accepted" \
	quiet kctl patch rollout web --subresource=status --type=merge -p \
	'{"status": {"phase": "Progressing", "step": 1, "weight": 10, "abort": false,
	  "observedGeneration": 1, "message": "lab", "verdicts": [{"metric": "errorRate",
	  "result": "pass", "value": "0.01", "limit": "0.05"}],
	  "nodes": [{"node": "n1", "phase": "Progressing", "step": 1, "weight": 10}]}}'
check "the status is stored" test "$(kctl get rollout web -o jsonpath='{.status.phase}/{.status.weight}/{.status.nodes[0].node}')" = "Progressing/10/n1"
check "spec and generation unchanged by the status patch" \
	test "$(kctl get rollout web -o jsonpath='{.metadata.generation}')|$(kctl get rollout web -o jsonpath='{.spec}')" = "$gen0|$spec0"
kctl get rollouts web >"$LAB_DIR/get2.out" 2>&1
sed 's/^/# /' "$LAB_DIR/get2.out"
check "the printer columns show the status: web Progressing 1 10" \
	grep -Eq '^web +Progressing +1 +10 +' "$LAB_DIR/get2.out"
kctl patch rollout web --type=merge -p '{"status": {"phase": "Degraded"}}' >/dev/null 2>&1
check "a status patch through the main resource leaves status alone" \
	test "$(kctl get rollout web -o jsonpath='{.status.phase}')" = Progressing
check "the status subresource refuses weight 150" \
	fails kctl patch rollout web --subresource=status --type=merge -p '{"status": {"weight": 150}}'

# A write with a stale resourceVersion: 409 Conflict.
kctl get rollout web -o json >"$LAB_DIR/stale.json"
kctl patch rollout web --type=merge -p '{"spec": {"strategy": {"steps": [{"setWeight": 20}]}}}' >/dev/null
check "a spec change bumps the generation" \
	test "$(kctl get rollout web -o jsonpath='{.metadata.generation}')" = $((gen0 + 1))
code=$(in_kns api curl -s -o "$LAB_DIR/stale.out" -w '%{http_code}' --cacert "$KUBE_DIR/ca.pem" \
	-H "Authorization: Bearer $(cat "$KUBE_DIR/admin.token")" -H 'Content-Type: application/json' \
	-X PUT --data-binary @"$LAB_DIR/stale.json" \
	"$KUBE_SERVER/apis/canaryd.io/v1alpha1/namespaces/default/rollouts/web")
echo "# PUT with the old resourceVersion: HTTP $code, $(grep -o '"reason": *"[A-Za-z]*"' "$LAB_DIR/stale.out")"
check "a PUT with a stale resourceVersion gets 409 Conflict" test "$code" = 409

# RBAC: deploy/kubernetes/rbac.yaml as it is, judged for its own subject,
# the ServiceAccount canaryd: its rules hold in canaryd-system only.
kctl apply -f "$LAB_ROOT/deploy/kubernetes/namespace.yaml" >/dev/null
check "rbac.yaml applies" quiet kctl apply -f "$LAB_ROOT/deploy/kubernetes/rbac.yaml"
can() { [ "$(kctl auth can-i --as system:serviceaccount:canaryd-system:canaryd "$@" 2>/dev/null)" = yes ]; }
A="-n canaryd-system"
ALLOWED=(
	"list rollouts.canaryd.io $A" "watch rollouts.canaryd.io $A" "get rollouts.canaryd.io/web $A"
	"patch rollouts.canaryd.io --subresource=status $A" "update rollouts.canaryd.io --subresource=status $A"
	"watch endpointslices.discovery.k8s.io $A" "list endpointslices.discovery.k8s.io $A"
	"get services $A" "list services $A" "watch services $A" "create events $A"
	"create leases.coordination.k8s.io $A" "update leases.coordination.k8s.io $A"
)
DENIED=(
	"update rollouts.canaryd.io $A" "patch rollouts.canaryd.io $A"
	"delete rollouts.canaryd.io $A" "create rollouts.canaryd.io $A"
	"create endpointslices.discovery.k8s.io $A" "patch services $A"
	"create services $A" "delete services $A"
	"get secrets $A" "list configmaps $A" "list pods --all-namespaces"
	"delete leases.coordination.k8s.io $A" "delete events $A" "get nodes"
	# Nothing outside its namespace: least privilege holds across namespaces too.
	"list rollouts.canaryd.io --all-namespaces" "watch rollouts.canaryd.io -n default"
	"patch rollouts.canaryd.io --subresource=status -n default"
	"list endpointslices.discovery.k8s.io --all-namespaces" "get services -n default"
	"create events -n default" "create leases.coordination.k8s.io -n default"
)
for a in "${ALLOWED[@]}"; do
	# shellcheck disable=SC2086 # a is a verb and its arguments
	check "rbac: the agent may $a" can $a
done
for a in "${DENIED[@]}"; do
	# shellcheck disable=SC2086
	check "rbac: the agent may not $a" fails can $a
done
# The agent's user of the lab (a token, namespace default) bound the same
# way in default: it reads there, and nothing it was not given.
kctl -n default create rolebinding lab-agent --clusterrole=canaryd --user=canaryd-agent >/dev/null
check "the agent's own token reads rollouts" quiet kctl_agent get rollouts
kctl_agent get secrets >"$LAB_DIR/secrets.out" 2>&1
check "the agent's own token may not read secrets (Forbidden)" grep -q Forbidden "$LAB_DIR/secrets.out"
# The whole kustomization, as `kubectl apply -k` sends it, judged by the
# server (a dry run: nothing runs). PodMonitor needs the Prometheus
# Operator's CRDs, which this cluster does not have (deploy/kubernetes/
# kustomization.yaml says so), so it is left out. --validate=false: the
# server judges, not kubectl's copy of its OpenAPI; on 1.20 that copy lacks
# the DaemonSet's rollingUpdate.maxSurge (1.21+), which a 1.20 server drops.
kubectl kustomize "$LAB_ROOT/deploy/kubernetes" | python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] != "PodMonitor"]
yaml.safe_dump_all(docs, sys.stdout)' >"$LAB_DIR/rendered.yaml"
kctl apply --dry-run=server --validate=false -f "$LAB_DIR/rendered.yaml" >"$LAB_DIR/dryrun.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/dryrun.out" | grep -iv 'unchanged\|configured\|created' | head -5
check "deploy/kubernetes (but the PodMonitor) passes a server-side dry run" test "$rc" = 0
# The kube-native overlay (deploy/kubernetes-native) the same way: the
# DaemonSet with its Rollouts from the API, its token and the node's name.
kubectl kustomize "$LAB_ROOT/deploy/kubernetes-native" | python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] != "PodMonitor"]
yaml.safe_dump_all(docs, sys.stdout)' >"$LAB_DIR/native.yaml"
kctl apply --dry-run=server --validate=false -f "$LAB_DIR/native.yaml" >"$LAB_DIR/native.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/native.out" | grep -iv 'unchanged\|configured\|created' | head -5
check "deploy/kubernetes-native (but the PodMonitor) passes a server-side dry run" test "$rc" = 0
kctl apply --dry-run=server --validate=false -o json -f "$LAB_DIR/native.yaml" 2>/dev/null |
	python3 -c '
import json, sys
d = json.load(sys.stdin)
ds = [i for i in d.get("items", [d]) if i["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]
c = ds["containers"][0]
env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c["env"]}
print(ds.get("automountServiceAccountToken"), "--rollouts-from=kube" in c["args"], env.get("NODE_NAME"))' \
	>"$LAB_DIR/native.check"
check "the server keeps the kube-native DaemonSet's token, --rollouts-from and NODE_NAME" \
	grep -qx "True True spec.nodeName" "$LAB_DIR/native.check"
lab_finish
