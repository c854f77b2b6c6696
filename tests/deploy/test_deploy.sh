#!/usr/bin/env bash
# Checks the deployment files in deploy/ and `make install`, offline.
# Prints TAP ("ok - ..." / "not ok - ..." / "ok - ... # SKIP why"), then the
# plan and one summary line; exits non-zero if any check failed.
#
#   bash tests/deploy/test_deploy.sh
#
# Needs: kubectl (kustomize is built in), promtool (Debian package
# `prometheus`), python3 with PyYAML (`python3-yaml`), systemd-analyze, make
# and a C toolchain for `make install` (it builds first). Missing Debian
# packages are installed when running as root (tools/install-deps.sh lists
# them too).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

PASS=0 FAIL=0 SKIP=0
TMP=$(mktemp -d /tmp/canaryd-deploy-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
not_ok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
skip() { echo "ok - $1 # SKIP $2"; SKIP=$((SKIP + 1)); }
diag() { sed 's/^/# /'; }
# check DESC CMD...: ok if CMD succeeds; its output as TAP diagnostics if not.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		printf '%s\n' "$out" | tail -n 40 | diag
	fi
}
# tally: pass through TAP lines printed by a helper, counting them.
tally() {
	local line
	while IFS= read -r line; do
		echo "$line"
		case $line in
		"not ok"*) FAIL=$((FAIL + 1)) ;;
		"ok "*"# SKIP"*) SKIP=$((SKIP + 1)) ;;
		"ok "*) PASS=$((PASS + 1)) ;;
		esac
	done
}

# run_py DESC SCRIPT ARGS...: a python checker printing TAP lines; a crash fails.
run_py() {
	local desc=$1 rc
	shift
	"$PY" "$@" >"$TMP/py.out" 2>"$TMP/py.err"
	rc=$?
	tally <"$TMP/py.out"
	if [ "$rc" -ne 0 ]; then
		not_ok "$desc ran to the end"
		diag <"$TMP/py.err"
	fi
}

apt_install() {
	[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
	echo "# installing $* (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; }
}

# --- tools ---------------------------------------------------------------------
# A python3 that has PyYAML: the one on PATH, Debian's, or Debian's after
# installing python3-yaml.
PY=""
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then
		PY=$p
		break
	fi
done
if [ -z "$PY" ] && apt_install python3-yaml && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	PY=/usr/bin/python3
fi
command -v promtool >/dev/null || apt_install prometheus || true
KUBECTL=$(command -v kubectl || true)

# --- Kubernetes ----------------------------------------------------------------
RENDERED=$TMP/rendered.yaml
if [ -z "$KUBECTL" ]; then
	skip "kubectl kustomize deploy/kubernetes" "kubectl not installed"
elif "$KUBECTL" kustomize deploy/kubernetes >"$RENDERED" 2>"$TMP/kustomize.err"; then
	ok "kubectl kustomize deploy/kubernetes renders offline"
else
	not_ok "kubectl kustomize deploy/kubernetes renders offline"
	diag <"$TMP/kustomize.err"
	: >"$RENDERED"
fi

if [ -z "$PY" ]; then
	skip "manifest checks" "no python3 with PyYAML (apt-get install python3-yaml)"
elif [ -s "$RENDERED" ]; then
	cat >"$TMP/manifests.py" <<'PY'
import sys, yaml
rendered, root = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
def t(cond, desc, detail=""):
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond and detail:
        for l in str(detail).splitlines():
            print("# " + l)

kinds = {}
for d in docs:
    kinds.setdefault(d["kind"], []).append(d)
want = {"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service", "PodMonitor"}
t(want <= set(kinds), "rendered output has " + ", ".join(sorted(want)), sorted(kinds))
cluster_scoped = ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding")
t(all(d["metadata"].get("namespace") == "canaryd-system" for d in docs if d["kind"] not in cluster_scoped)
  and kinds.get("Namespace", [{}])[0].get("metadata", {}).get("name") == "canaryd-system",
  "every object is in namespace canaryd-system",
  [(d["kind"], d["metadata"].get("namespace")) for d in docs])
# Least privilege (deploy/kubernetes/rbac.yaml): exactly these rules, read
# only but for the Rollouts' status, events and the agent's own leases.
def rules(kind):
    return sorted((tuple(g), tuple(r), tuple(v)) for d in kinds.get(kind, [])
                  for x in d.get("rules", [])
                  for g, r, v in [(x.get("apiGroups", []), x.get("resources", []), x.get("verbs", []))])
want_cluster = sorted([(("canaryd.io",), ("rollouts",), ("get", "list", "watch")),
                       (("canaryd.io",), ("rollouts/status",), ("get", "update", "patch")),
                       (("discovery.k8s.io",), ("endpointslices",), ("get", "list", "watch")),
                       (("",), ("services",), ("get", "list", "watch")),
                       (("", "events.k8s.io"), ("events",), ("create",))])
t(rules("ClusterRole") == want_cluster, "ClusterRole canaryd: exactly the agent's rules", rules("ClusterRole"))
t(rules("Role") == [(("coordination.k8s.io",), ("leases",), ("get", "list", "watch", "create", "update", "patch"))]
  and all(d["metadata"].get("namespace") == "canaryd-system" for d in kinds.get("Role", [])),
  "Role: leases only, in canaryd-system", rules("Role"))
t(all(x.get("subjects") == [{"kind": "ServiceAccount", "name": "canaryd", "namespace": "canaryd-system"}]
      for x in kinds.get("RoleBinding", []))
  and len(kinds.get("RoleBinding", [])) == 2,
  "RBAC binds the roles to ServiceAccount canaryd only")
t(not kinds.get("ClusterRoleBinding")
  and sorted((b["metadata"].get("namespace"), b["roleRef"]["kind"], b["roleRef"]["name"])
             for b in kinds.get("RoleBinding", []))
  == [("canaryd-system", "ClusterRole", "canaryd"), ("canaryd-system", "Role", "canaryd-leader-election")],
  "RBAC grants nothing cluster-wide: both bindings are RoleBindings in canaryd-system",
  [(b["metadata"].get("namespace"), b["roleRef"]) for b in kinds.get("RoleBinding", [])])
crd = kinds.get("CustomResourceDefinition", [{}])[0]
t(crd.get("metadata", {}).get("name") == "rollouts.canaryd.io", "the Rollout CRD is part of the kustomization")
sa = kinds.get("ServiceAccount", [{}])[0]
t(sa.get("automountServiceAccountToken") is False, "ServiceAccount does not automount its token")

ds = kinds.get("DaemonSet", [{}])[0]
spec = ds.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
cs = pod.get("containers", [])
c = next((x for x in cs if x.get("name") == "canaryd"), cs[0] if cs else {})
sc = c.get("securityContext", {})
t(pod.get("hostNetwork") is True, "DaemonSet: hostNetwork: true")
t(pod.get("serviceAccountName") == "canaryd" and pod.get("automountServiceAccountToken") is False,
  "DaemonSet: ServiceAccount canaryd, no API token mounted")
allc = cs + pod.get("initContainers", [])
t(all(x.get("securityContext", {}).get("privileged") is not True for x in allc),
  "DaemonSet: no privileged container")
t(all(x.get("securityContext", {}).get("allowPrivilegeEscalation") is False for x in allc),
  "DaemonSet: allowPrivilegeEscalation: false everywhere")
caps = sc.get("capabilities", {})
t(caps.get("drop") == ["ALL"] and sorted(caps.get("add", [])) == ["BPF", "NET_ADMIN", "PERFMON"],
  "DaemonSet: capabilities drop ALL, add exactly BPF, NET_ADMIN, PERFMON", caps)
t(all(not x.get("securityContext", {}).get("capabilities", {}).get("add") for x in pod.get("initContainers", [])),
  "DaemonSet: init containers add no capabilities")
mounts = [m for x in allc for m in x.get("volumeMounts", [])]
t(all(m.get("mountPropagation") != "Bidirectional" for m in mounts),
  "DaemonSet: no Bidirectional mount propagation (it needs privileged)")
vols = {v["name"]: v for v in pod.get("volumes", [])}
hp = {v.get("hostPath", {}).get("path"): n for n, v in vols.items() if "hostPath" in v}
t({"/sys/fs/bpf", "/var/lib/canaryd", "/run/canaryd"} <= set(hp),
  "DaemonSet: hostPath volumes /sys/fs/bpf, /var/lib/canaryd, /run/canaryd", sorted(hp))
cmounts = {m["name"]: m for m in c.get("volumeMounts", [])}
args = c.get("args", [])
def arg(flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None
bpffs_mount = cmounts.get(hp.get("/sys/fs/bpf"), {}).get("mountPath", "?")
t(arg("--bpffs") == bpffs_mount.rstrip("/") + "/canaryd" and not cmounts.get(hp.get("/sys/fs/bpf"), {}).get("readOnly"),
  "DaemonSet: --bpffs is inside the writable /sys/fs/bpf hostPath mount", (arg("--bpffs"), bpffs_mount))
t(cmounts.get(hp.get("/var/lib/canaryd"), {}).get("mountPath") == arg("--state-dir") == "/var/lib/canaryd",
  "DaemonSet: --state-dir on the /var/lib/canaryd hostPath")
sock = arg("--api-socket") or ""
t(cmounts.get(hp.get("/run/canaryd"), {}).get("mountPath") == "/run/canaryd" and sock.startswith("/run/canaryd/"),
  "DaemonSet: --api-socket on the /run/canaryd hostPath", sock)
cfgvol = next((n for n, v in vols.items() if v.get("configMap", {}).get("name") == "canaryd-config"), None)
t(cfgvol and cmounts.get(cfgvol, {}).get("mountPath") == "/etc/canaryd" and "subPath" not in cmounts.get(cfgvol, {})
  and arg("--config") == "/etc/canaryd",
  "DaemonSet: ConfigMap canaryd-config mounted as a directory at /etc/canaryd, --config /etc/canaryd")
env = {e["name"]: e for e in c.get("env", [])}
t(arg("--listen") == "$(POD_IP):9090"
  and env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
  "DaemonSet: --listen $(POD_IP):9090 from the downward API status.podIP", arg("--listen"))
t(arg("--token-file") is None, "DaemonSet: TCP listener read-only (no --token-file)")
ports = {p.get("name"): p for p in c.get("ports", [])}
def probe_ok(p, path):
    # An exec probe through the API socket: the TCP listener is open to the network.
    cmd = (p or {}).get("exec", {}).get("command", [])
    return (len(cmd) >= 3 and cmd[0].endswith("/canaryd") and cmd[1:3] == ["--probe", path]
            and ("--api-socket=" + sock) in cmd and "httpGet" not in (p or {}))
t(probe_ok(c.get("livenessProbe"), "/healthz") and probe_ok(c.get("readinessProbe"), "/readyz")
  and ports.get("metrics", {}).get("containerPort") == 9090,
  "DaemonSet: liveness /healthz and readiness /readyz exec probes through the API socket; metrics on port 9090")
res = c.get("resources", {})
t(all(res.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")),
  "DaemonSet: cpu and memory requests and limits", res)
t(any(tl.get("operator") == "Exists" and not tl.get("key") and not tl.get("effect") for tl in pod.get("tolerations", [])),
  "DaemonSet: tolerates every taint (runs on every node)", pod.get("tolerations"))
us = spec.get("updateStrategy", {})
ru = us.get("rollingUpdate", {})
t(us.get("type") == "RollingUpdate" and ru.get("maxUnavailable") not in (None, 0, "0", "0%")
  and ru.get("maxSurge") in (0, "0", "0%"),
  "DaemonSet: RollingUpdate with maxUnavailable, maxSurge 0 (one agent per bpffs)", us)
t(sc.get("readOnlyRootFilesystem") is True, "DaemonSet: read-only root filesystem")

svc = kinds.get("Service", [{}])[0].get("spec", {})
t(svc.get("clusterIP") == "None" and any(p.get("port") == 9090 for p in svc.get("ports", [])),
  "Service: headless, port 9090")
pm = kinds.get("PodMonitor", [{}])[0].get("spec", {})
eps = pm.get("podMetricsEndpoints", [])
t(eps and eps[0].get("path") == "/metrics" and eps[0].get("port") == "metrics"
  and pm.get("jobLabel") == "app.kubernetes.io/name"
  and ds.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == "canaryd",
  "PodMonitor: scrapes /metrics on port metrics as job canaryd")

# The ConfigMap's rollout and deploy/config/checkout.yaml are the same.
cm = kinds.get("ConfigMap", [{}])[0].get("data", {})
sample = yaml.safe_load(open(root + "/deploy/config/checkout.yaml"))
t(yaml.safe_load(cm.get("checkout.yaml", "")) == sample,
  "ConfigMap checkout.yaml equals deploy/config/checkout.yaml")
import os
os.makedirs(sys.argv[1] + ".cm", exist_ok=True)
for k, v in cm.items():
    open(os.path.join(sys.argv[1] + ".cm", k), "w").write(v)
# Flags the manifests pass, for the next check.
open(sys.argv[1] + ".flags", "w").write("\n".join(a.split("=", 1)[0] for a in args if a.startswith("--")) + "\n")
PY
	run_py "manifest checks" "$TMP/manifests.py" "$RENDERED" "$ROOT"
else
	skip "manifest checks" "nothing rendered"
fi

# The kube-native overlay (deploy/kubernetes-native): the base with the agent
# on the API (--rollouts-from kube, --coordinator kube), its token mounted,
# the node name from the downward API, and no ConfigMap.
NATIVE=$TMP/native.yaml
if [ -z "$KUBECTL" ]; then
	skip "kubectl kustomize deploy/kubernetes-native" "kubectl not installed"
elif "$KUBECTL" kustomize deploy/kubernetes-native >"$NATIVE" 2>"$TMP/native.err"; then
	ok "kubectl kustomize deploy/kubernetes-native renders offline"
else
	not_ok "kubectl kustomize deploy/kubernetes-native renders offline"
	diag <"$TMP/native.err"
	: >"$NATIVE"
fi
if [ -z "$PY" ] || [ ! -s "$NATIVE" ] || [ ! -s "$RENDERED" ]; then
	skip "kube-native manifest checks" "no python3 with PyYAML, or nothing rendered"
else
	cat >"$TMP/native.py" <<'PY'
import json, sys, yaml
base = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
native = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
def t(cond, desc, detail=""):
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond and detail:
        for l in str(detail).splitlines():
            print("# " + l)
def others(docs):
    return sorted(json.dumps(d, sort_keys=True) for d in docs if d["kind"] not in ("DaemonSet", "ConfigMap"))
t(others(base) == others(native),
  "kube-native: the base's objects unchanged (namespace, CRD, RBAC, ServiceAccount, Service, PodMonitor)")
t(not any(d["kind"] == "ConfigMap" for d in native), "kube-native: no ConfigMap of Rollouts")
ds = next(d for d in native if d["kind"] == "DaemonSet")
pod = ds["spec"]["template"]["spec"]
c = next(x for x in pod["containers"] if x["name"] == "canaryd")
args = c.get("args", [])
env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c.get("env", [])}
t("--rollouts-from=kube" in args and not any(a.startswith("--config") for a in args),
  "kube-native: --rollouts-from=kube, no --config", args)
t("--coordinator=kube" in args and "--node-name=$(NODE_NAME)" in args and env.get("NODE_NAME") == "spec.nodeName",
  "kube-native: --coordinator=kube, --node-name from the downward API spec.nodeName", (args, env))
t("--kube-namespace=$(POD_NAMESPACE)" in args and env.get("POD_NAMESPACE") == "metadata.namespace",
  "kube-native: --kube-namespace is the pod's namespace", (args, env))
t(pod.get("automountServiceAccountToken") is True and pod.get("serviceAccountName") == "canaryd",
  "kube-native: ServiceAccount canaryd with its token mounted")
t(not any(v.get("configMap") for v in pod.get("volumes", []))
  and not any(m["mountPath"] == "/etc/canaryd" for m in c.get("volumeMounts", [])),
  "kube-native: no config volume")
bds = next(d for d in base if d["kind"] == "DaemonSet")
bc = next(x for x in bds["spec"]["template"]["spec"]["containers"] if x["name"] == "canaryd")
keep = [a for a in bc.get("args", []) if not a.startswith("--config")]
t(all(a in args for a in keep) and [m["mountPath"] for m in c["volumeMounts"]]
  == [m["mountPath"] for m in bc["volumeMounts"] if m["mountPath"] != "/etc/canaryd"]
  and c.get("securityContext") == bc.get("securityContext"),
  "kube-native: the base's other flags, mounts and securityContext kept", (keep, args))
open(sys.argv[2] + ".flags", "w").write("\n".join(a.split("=", 1)[0] for a in args if a.startswith("--")) + "\n")
PY
	run_py "kube-native manifest checks" "$TMP/native.py" "$RENDERED" "$NATIVE"
fi

# Flags and config the agent itself accepts.
CANARYD=$ROOT/build/canaryd
if [ ! -x "$CANARYD" ]; then
	skip "canaryd accepts the deployment's flags and configs" "build/canaryd not built (make)"
else
	flags_ok=1 help=$("$CANARYD" --help 2>&1 || true)
	for f in $(cat "$RENDERED.flags" "$NATIVE.flags" 2>/dev/null) \
		$(grep -o -- '--[a-z-]*' deploy/systemd/canaryd.service | sort -u); do
		grep -q -- "$f" <<<"$help" || { echo "# canaryd --help does not know $f"; flags_ok=0; }
	done
	[ "$flags_ok" = 1 ] && ok "canaryd --help knows every flag the DaemonSet and the unit pass" ||
		not_ok "canaryd --help knows every flag the DaemonSet and the unit pass"
	check "canaryd --check-config deploy/config/checkout.yaml" "$CANARYD" --config deploy/config/checkout.yaml --check-config
	if [ -d "$RENDERED.cm" ]; then
		check "canaryd --check-config on the ConfigMap's files" "$CANARYD" --config "$RENDERED.cm" --check-config
	fi
fi

# kubectl's client-side dry run still asks an API server for the resource
# types (discovery), even with --validate=false, so offline it cannot run: it
# is skipped when no server answers and run for real when one does.
if [ -z "$KUBECTL" ] || [ ! -s "$RENDERED" ]; then
	skip "kubectl apply --dry-run=client" "kubectl or rendered output missing"
elif out=$("$KUBECTL" apply --dry-run=client --validate=false -f "$RENDERED" 2>&1); then
	ok "kubectl apply --dry-run=client -f (rendered)"
elif grep -qE 'connection refused|unable to recognize|no such host|dial tcp|the server could not find|Unable to connect' <<<"$out"; then
	skip "kubectl apply --dry-run=client -f (rendered)" "no API server reachable (offline); kubectl needs discovery even for a client dry run"
else
	not_ok "kubectl apply --dry-run=client -f (rendered)"
	diag <<<"$out"
fi

# --- Prometheus ----------------------------------------------------------------
if command -v promtool >/dev/null; then
	check "promtool check rules deploy/prometheus/rules.yaml" promtool check rules deploy/prometheus/rules.yaml
	check "promtool test rules deploy/prometheus/rules_test.yaml" promtool test rules deploy/prometheus/rules_test.yaml
	# The snippet is a valid prometheus.yml by itself. Its bare-metal job is
	# commented out: check it too, swapped in for the Kubernetes one.
	{
		echo "scrape_configs:"
		sed -n '/^  # - job_name: canaryd/,$p' deploy/prometheus/scrape-config.yaml | sed 's/^  # /  /; s/^  #$//'
	} >"$TMP/scrape-static.yaml"
	check "promtool check config: scrape-config.yaml's bare-metal job" promtool check config "$TMP/scrape-static.yaml"
	if out=$(promtool check config deploy/prometheus/scrape-config.yaml 2>&1); then
		ok "promtool check config deploy/prometheus/scrape-config.yaml"
	elif grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
		# Debian builds Prometheus without Kubernetes service discovery.
		skip "promtool check config deploy/prometheus/scrape-config.yaml" "this promtool build has no kubernetes_sd_configs (Debian's)"
	else
		not_ok "promtool check config deploy/prometheus/scrape-config.yaml"
		diag <<<"$out"
	fi
else
	skip "promtool checks" "promtool missing (apt-get install prometheus)"
fi

# --- metric names: rules and dashboard use only what canaryd exports ------------
if [ -n "$PY" ]; then
	cat >"$TMP/names.py" <<'PY'
import json, re, sys, yaml
root = sys.argv[1]
def t(cond, desc, detail=""):
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond and detail:
        for l in str(detail).splitlines():
            print("# " + l)

# Exported names: the first column of docs/metrics.md's tables, with the
# histogram series suffixes for histograms, plus `up` (added by the scrape).
exported = {"up"}
for line in open(root + "/docs/metrics.md"):
    m = re.match(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(\w+)\s*\|", line)
    if not m:
        continue
    name, kind = m.groups()
    exported.add(name)
    if kind == "histogram":
        exported |= {name + s for s in ("_bucket", "_sum", "_count")}
t(len(exported) > 15 and "canaryd_requests_total" in exported and "canaryd_request_duration_seconds_bucket" in exported,
  "docs/metrics.md yields the exported metric names (%d)" % len(exported))

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan", "atan2"}
def names(expr):
    """Metric names in a PromQL expression (Grafana variables allowed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?", "1", e)            # $vars
    e = re.sub(r"\{[^{}]*\}", "", e)                                             # matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                                             # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    out = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        if re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", word):
            continue
        out.add(word)
    return out

# The checker itself must catch a name canaryd does not export.
probe = 'sum by (rollout) (rate(canaryd_bogus_total{rollout=~"$rollout"}[$__rate_interval])) / on (rollout) up'
t(names(probe) == {"canaryd_bogus_total", "up"}, "metric-name checker finds the names in an expression", names(probe))

rules = yaml.safe_load(open(root + "/deploy/prometheus/rules.yaml"))
recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
bad = {}
for g in rules["groups"]:
    for r in g["rules"]:
        unknown = names(r["expr"]) - exported - recorded
        if unknown:
            bad[r.get("record") or r.get("alert")] = sorted(unknown)
t(not bad, "rules.yaml uses only exported metric names (and its own recording rules)", bad)
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
tests = yaml.safe_load(open(root + "/deploy/prometheus/rules_test.yaml"))
tested_alerts = {a["alertname"] for tc in tests["tests"] for a in tc.get("alert_rule_test", [])
                 if a.get("exp_alerts")}
tested_records = {s["labels"].split("{")[0] for tc in tests["tests"] for p in tc.get("promql_expr_test", [])
                  for s in p.get("exp_samples", [])}
t(alerts == tested_alerts and recorded <= tested_records,
  "rules_test.yaml has a firing case for every alert and samples for every recording rule",
  {"untested alerts": sorted(alerts - tested_alerts), "untested records": sorted(recorded - tested_records)})

try:
    dash = json.load(open(root + "/deploy/grafana/dashboard.json"))
    t(True, "dashboard.json is valid JSON")
except ValueError as err:
    t(False, "dashboard.json is valid JSON", err)
    sys.exit(0)
tmpl = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
t(tmpl.get("DS_PROMETHEUS", {}).get("type") == "datasource" and tmpl["DS_PROMETHEUS"].get("query") == "prometheus",
  "dashboard: templated Prometheus datasource ${DS_PROMETHEUS}")
t(tmpl.get("rollout", {}).get("type") == "query", "dashboard: `rollout` variable")

exprs = []  # (where, expression)
def walk(node, where):
    if isinstance(node, dict):
        title = node.get("title", where)
        for k, v in node.items():
            if k in ("expr",) and isinstance(v, str):
                exprs.append((title, v))
            elif k == "definition" and isinstance(v, str) and v.startswith(("label_values(", "query_result(")):
                inner = v[v.index("(") + 1:v.rindex(")")]
                exprs.append((node.get("name", title), inner.rsplit(",", 1)[0] if v.startswith("label_values(") and "," in inner else inner))
            elif k == "datasource" and isinstance(v, dict) and v.get("type") == "prometheus":
                if v.get("uid") != "${DS_PROMETHEUS}":
                    exprs.append((title, "__hardcoded_datasource__"))
            else:
                walk(v, title)
    elif isinstance(node, list):
        for v in node:
            walk(v, where)
walk(dash, "dashboard")
bad = {}
for where, e in exprs:
    unknown = names(e) - exported
    if unknown:
        bad.setdefault(where, set()).update(unknown)
t(exprs and not bad, "dashboard: every expression (%d) uses only exported metric names and ${DS_PROMETHEUS}" % len(exprs),
  {k: sorted(v) for k, v in bad.items()})
used = set().union(*(names(e) for _, e in exprs)) if exprs else set()
need = {"canaryd_rollout_canary_weight_ratio", "canaryd_requests_total", "canaryd_errors_total",
        "canaryd_request_duration_seconds_bucket", "canaryd_analysis_verdicts_total", "up",
        "canaryd_tick_duration_seconds", "canaryd_conntrack_entries", "canaryd_conntrack_capacity_entries",
        "canaryd_packets_total"}
t(need <= used, "dashboard: panels for weight, rps, errors, latency, verdicts, up, tick, conntrack, packets",
  sorted(need - used))
allx = " ".join(e for _, e in exprs)
t("histogram_quantile(0.5" in allx and "histogram_quantile(0.99" in allx and "by (result)" in allx,
  "dashboard: p50 and p99 latency, verdicts by result")
PY
	run_py "metric-name checks" "$TMP/names.py" "$ROOT"
else
	skip "metric names in rules and dashboard" "no python3 with PyYAML"
fi

# --- Dockerfile: the runtime stage installs every library the binaries need -----
DF=deploy/Dockerfile
if grep -qE '^FROM debian:12 AS build' "$DF" && grep -qE '^FROM debian:12-slim' "$DF" &&
	grep -qE '^RUN .*make' "$DF" && grep -qE '^COPY --from=build .*canaryd .*canaryctl' "$DF"; then
	ok "Dockerfile: debian:12 build stage runs make, debian:12-slim runtime gets canaryd and canaryctl"
else
	not_ok "Dockerfile: debian:12 build stage runs make, debian:12-slim runtime gets canaryd and canaryctl"
fi
if [ ! -x build/canaryd ] || [ ! -x build/canaryctl ] || ! command -v dpkg >/dev/null; then
	skip "Dockerfile runtime packages cover ldd" "binaries not built or no dpkg"
else
	# The runtime stage's apt-get install line (continuation lines joined).
	runtime_pkgs=$(awk '/^FROM /{stage++} stage==2' "$DF" | sed ':a;/\\$/{N;s/\\\n/ /;ba}' |
		grep 'apt-get install' | sed 's/.*apt-get install//; s/&&.*//' | tr ' ' '\n' |
		grep -E '^[a-z0-9][a-z0-9.+-]+$' | sort -u)
	pkg_of() { # library path -> Debian package (without :arch)
		local p
		p=$(dpkg -S "$1" 2>/dev/null || dpkg -S "$(readlink -f "$1")" 2>/dev/null) || return 1
		echo "${p%%:*}" | sed -n 's/:.*//; 1p'
	}
	# Direct dependencies (DT_NEEDED) must be named in the Dockerfile; the
	# rest of what ldd lists must come with them through their Depends (apt
	# installs those) or be in debian:12-slim already (libc6, libgcc-s1).
	declare -A closure=()
	mapfile -t queue <<<"$runtime_pkgs"
	while [ ${#queue[@]} -gt 0 ]; do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		[ -n "${closure[$p]:-}" ] && continue
		closure[$p]=1
		deps=$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" 2>/dev/null | tr ',' '\n' |
			sed 's/([^)]*)//g; s/:any//g; s/^ *//; s/ *$//')
		while IFS= read -r alt; do
			[ -n "$alt" ] || continue
			for a in $(tr '|' ' ' <<<"$alt"); do
				if [ "$(dpkg-query -W -f='${db:Status-Status}' "$a" 2>/dev/null)" = installed ]; then
					[ -z "${closure[$a]:-}" ] && queue+=("$a")
					break
				fi
			done
		done <<<"$deps"
	done
	closure[libc6]=1 closure[libgcc-s1]=1 # in debian:12-slim
	missing_direct="" missing_any=""
	for bin in build/canaryd build/canaryctl; do
		for so in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
			path=$(ldd "$bin" | awk -v so="$so" '$1 == so {print $3}')
			pkg=$(pkg_of "$path") || { missing_direct+=" $so(no package)"; continue; }
			case $pkg in libc6 | libgcc-s1) continue ;; esac
			grep -qx "$pkg" <<<"$runtime_pkgs" || missing_direct+=" $pkg($so)"
		done
		for path in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
			pkg=$(pkg_of "$path") || { missing_any+=" $path(no package)"; continue; }
			[ -n "${closure[$pkg]:-}" ] || missing_any+=" $pkg($(basename "$path"))"
		done
	done
	if [ -z "$missing_direct" ]; then
		ok "Dockerfile runtime stage names the package of every DT_NEEDED library ($(echo $runtime_pkgs))"
	else
		not_ok "Dockerfile runtime stage names the package of every DT_NEEDED library"
		echo "# missing:$missing_direct"
	fi
	if [ -z "$missing_any" ]; then
		ok "every library ldd lists comes with those packages' Depends or debian:12-slim's libc6/libgcc-s1"
	else
		not_ok "every library ldd lists comes with those packages' Depends or debian:12-slim's libc6/libgcc-s1"
		echo "# not covered:$missing_any"
	fi
fi

# --- systemd unit ----------------------------------------------------------------
UNIT=deploy/systemd/canaryd.service
unit_ok=1
for want in 'CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON' \
	'AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON' 'NoNewPrivileges=yes' \
	'ProtectSystem=strict' 'ReadWritePaths=/sys/fs/bpf' 'StateDirectory=canaryd' \
	'RuntimeDirectory=canaryd' 'ProtectHome=yes' 'PrivateTmp=yes' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'KillMode=mixed' \
	'ExecStart=/usr/local/bin/canaryd --config /etc/canaryd'; do
	grep -qF -- "$want" "$UNIT" || { echo "# $UNIT lacks: $want"; unit_ok=0; }
done
grep -qE '^ExecStop' "$UNIT" && { echo "# $UNIT must not detach on stop (ExecStop)"; unit_ok=0; }
[ "$unit_ok" = 1 ] && ok "systemd unit: capabilities, hardening, reload, restart, KillMode, no ExecStop" ||
	not_ok "systemd unit: capabilities, hardening, reload, restart, KillMode, no ExecStop"

# systemd-analyze verify works without systemd as PID 1: it loads the unit
# with the system's unit search path and checks every directive, and that the
# commands exist. The unit's ExecStart (/usr/local/bin/canaryd) is only there
# once installed, so it is verified with ExecStart pointing at build/canaryd.
if ! command -v systemd-analyze >/dev/null; then
	skip "systemd-analyze verify" "systemd-analyze not installed"
elif [ ! -x build/canaryd ]; then
	skip "systemd-analyze verify" "build/canaryd not built"
else
	mkdir -p "$TMP/unit"
	sed "s#/usr/local/bin/canaryd#$ROOT/build/canaryd#" "$UNIT" >"$TMP/unit/canaryd.service"
	if out=$(systemd-analyze verify "$TMP/unit/canaryd.service" 2>&1) && [ -z "$out" ]; then
		ok "systemd-analyze verify canaryd.service: no findings"
	else
		not_ok "systemd-analyze verify canaryd.service: no findings"
		diag <<<"$out"
	fi
fi

# --- make install ------------------------------------------------------------------
# The top-level Makefile includes deploy/install.mk; until it does, name it.
if grep -qE '^[[:space:]]*-?include[[:space:]].*deploy/install\.mk' Makefile; then
	MAKE_INSTALL=(make --no-print-directory install)
else
	MAKE_INSTALL=(make --no-print-directory -f Makefile -f deploy/install.mk install)
fi
DEST=$TMP/destdir
if ! "${MAKE_INSTALL[@]}" DESTDIR="$DEST" PREFIX=/usr/local >"$TMP/install.log" 2>&1; then
	not_ok "make install DESTDIR=\$tmp PREFIX=/usr/local"
	tail -n 30 "$TMP/install.log" | diag
else
	missing=""
	for f in usr/local/bin/canaryd usr/local/bin/canaryctl lib/systemd/system/canaryd.service \
		etc/canaryd/checkout.yaml usr/share/bash-completion/completions/canaryctl \
		usr/share/zsh/vendor-completions/_canaryctl \
		usr/share/fish/vendor_completions.d/canaryctl.fish; do
		[ -f "$DEST/$f" ] || missing+=" $f"
	done
	[ -x "$DEST/usr/local/bin/canaryd" ] && [ -x "$DEST/usr/local/bin/canaryctl" ] || missing+=" (binaries not executable)"
	[ "$(readlink "$DEST/usr/local/bin/kubectl-canary")" = canaryctl ] ||
		missing+=" (kubectl-canary not a symlink to canaryctl)"
	[ -x "$DEST/usr/local/bin/kubectl_complete-canary" ] ||
		missing+=" (kubectl_complete-canary not installed)"
	for f in labsrv labload; do
		[ ! -e "$DEST/usr/local/bin/$f" ] || missing+=" (lab tool $f installed)"
	done
	grep -q '^ExecStart=/usr/local/bin/canaryd ' "$DEST/lib/systemd/system/canaryd.service" 2>/dev/null ||
		missing+=" (unit ExecStart not /usr/local/bin/canaryd)"
	if [ -z "$missing" ]; then
		ok "make install DESTDIR=\$tmp PREFIX=/usr/local: binaries (no lab tools), the kubectl-canary symlink and its completion, unit, /etc/canaryd/checkout.yaml, bash/zsh/fish completion"
	else
		not_ok "make install DESTDIR=\$tmp PREFIX=/usr/local: binaries (no lab tools), the kubectl-canary symlink and its completion, unit, /etc/canaryd/checkout.yaml, bash/zsh/fish completion"
		echo "# missing:$missing"
	fi
	# A second install keeps the administrator's configuration, and PREFIX
	# reaches the unit's ExecStart.
	echo "# edited" >>"$DEST/etc/canaryd/checkout.yaml"
	cp "$DEST/etc/canaryd/checkout.yaml" "$TMP/edited.yaml"
	if "${MAKE_INSTALL[@]}" DESTDIR="$DEST" PREFIX=/opt/canaryd >"$TMP/install2.log" 2>&1 &&
		cmp -s "$DEST/etc/canaryd/checkout.yaml" "$TMP/edited.yaml" &&
		grep -q '^ExecStart=/opt/canaryd/bin/canaryd ' "$DEST/lib/systemd/system/canaryd.service" &&
		[ -x "$DEST/opt/canaryd/bin/canaryd" ]; then
		ok "make install again (PREFIX=/opt/canaryd): config kept, ExecStart follows PREFIX"
	else
		not_ok "make install again (PREFIX=/opt/canaryd): config kept, ExecStart follows PREFIX"
		tail -n 20 "$TMP/install2.log" | diag
	fi
fi
rm -rf "$DEST"
[ ! -e "$DEST" ] && ok "install tree removed" || not_ok "install tree removed"

# --- bash completion ---------------------------------------------------------------
COMP=deploy/completion/canaryctl.bash
check "bash -n $COMP" bash -n "$COMP"
cat >"$TMP/stubctl" <<'EOF'
#!/bin/sh
# canaryctl stand-in: what `canaryctl -o json status` prints.
echo "$*" >>"${0%/*}/stubctl.args"
printf '{\n  "rollouts": [\n    {\n      "name": "checkout",\n      "phase": "Paused",\n      "stable": {"revision": "v1"}\n    },\n    {\n      "name": "web-2",\n      "analysis": {"verdicts": [{"metric": "errorRate"}]}\n    }\n  ]\n}\n'
EOF
chmod +x "$TMP/stubctl"
mkdir -p "$TMP/nopython"
for tool in sed tr timeout; do ln -s "$(command -v $tool)" "$TMP/nopython/$tool"; done
comp_out=$(
	# shellcheck disable=SC1090
	source "$COMP"
	c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _canaryctl; echo "${COMPREPLY[*]}"; }
	echo "verbs=$(c canaryctl '')"
	echo "globals=$(c canaryctl --)"
	echo "output=$(c canaryctl -o '')"
	echo "names=$(c "$TMP/stubctl" --socket /x.sock -o text status '')"
	echo "names_sed=$(PATH=$TMP/nopython c "$TMP/stubctl" abort '')"
	echo "promote=$(c "$TMP/stubctl" promote checkout --)"
	echo "connections=$(c "$TMP/stubctl" emergency-rollback checkout --connections '')"
	echo "down=$(c "$TMP/absent/canaryctl" pause '')"
	echo "output_after=$(c "$TMP/stubctl" status checkout -o '')"
	echo "track=$(c "$TMP/stubctl" flows checkout --track '')"
	echo "after_value=$(c "$TMP/stubctl" flows --track canary '')"
)
expect_line() { grep -qxF "$1" <<<"$comp_out" || { echo "# expected '$1'"; return 1; }; }
if expect_line "verbs=status promote pause resume abort retry set-weight history plan maps flows attachments emergency-rollback emergency-clear uninstall" &&
	expect_line "globals=--socket --server --token-file --bpffs --output --help --version" &&
	expect_line "output=json yaml text" && expect_line "output_after=json yaml text" &&
	expect_line "track=stable canary" && expect_line "after_value=checkout web-2" &&
	expect_line "names=checkout web-2" && expect_line "names_sed=checkout web-2" &&
	expect_line "promote=--full" && expect_line "connections=reset drain" &&
	expect_line "down=" && grep -qx -- '--socket /x.sock -o json status' "$TMP/stubctl.args"; then
	ok "completion: verbs, flags, rollout names from status -o json (python3 and sed), nothing with the agent down"
else
	not_ok "completion: verbs, flags, rollout names from status -o json (python3 and sed), nothing with the agent down"
	diag <<<"$comp_out"
fi

# --- zsh and fish completion --------------------------------------------------------
if command -v zsh >/dev/null; then
	check "zsh -n deploy/completion/_canaryctl" zsh -n deploy/completion/_canaryctl
	check "zsh: compinit registers _canaryctl for canaryctl" \
		test "$(zsh -f -c 'fpath=(deploy/completion $fpath); autoload -U compinit
			compinit -u -D; print -r -- $_comps[canaryctl]')" = _canaryctl
else
	skip "zsh completion" "zsh not installed (tools/install-deps.sh installs it)"
fi
if command -v fish >/dev/null; then
	check "fish -n deploy/completion/canaryctl.fish" fish -n deploy/completion/canaryctl.fish
	mkdir -p "$TMP/fishbin" "$TMP/fishhome"
	ln -sf "$TMP/stubctl" "$TMP/fishbin/canaryctl"
	# The stub logs its arguments next to the name it was called by.
	: >"$TMP/fishbin/stubctl.args"
	fish_out=$(PATH="$TMP/fishbin:$PATH" HOME="$TMP/fishhome" XDG_CONFIG_HOME="$TMP/fishhome" \
		fish --no-config -c '
source deploy/completion/canaryctl.fish
function t; echo "$argv[1]="(complete -C $argv[2] | cut -f1 | sort | string join " "); end
t verbs "canaryctl "
t output_after "canaryctl status web -o "
t track "canaryctl flows web --track "
t names "canaryctl --socket /x.sock status "
t status_flags "canaryctl status web --"' 2>&1)
	fish_line() { grep -qxF "$1" <<<"$fish_out" || { echo "# expected '$1'"; return 1; }; }
	if fish_line "verbs=abort attachments emergency-clear emergency-rollback flows history maps pause plan promote resume retry set-weight status uninstall" &&
		fish_line "output_after=json text yaml" && fish_line "track=canary stable" &&
		fish_line "names=checkout web-2" &&
		fish_line "status_flags=--bpffs --help --output --server --socket --timeout --token-file --until-done --watch" &&
		grep -qx -- '--socket /x.sock -o json status' "$TMP/fishbin/stubctl.args"; then
		ok "fish completion: verbs, flags after the verb, values, rollout names from the agent"
	else
		not_ok "fish completion: verbs, flags after the verb, values, rollout names from the agent"
		diag <<<"$fish_out"
	fi
else
	skip "fish completion" "fish not installed (tools/install-deps.sh installs it)"
fi

# --- kubectl canary completion (kubectl runs kubectl_complete-canary) ----------------
KCOMP=deploy/completion/kubectl_complete-canary
kcomp() { sh "$KCOMP" "$@" | tr '\n' ' '; }
if sh -n "$KCOMP" &&
	[ "$(kcomp p)" = "promote pause :4 " ] &&
	[ "$(kcomp status web --w)" = "--watch :4 " ] &&
	[ "$(kcomp promote web --f)" = "--full :4 " ] &&
	[ "$(kcomp get -o "")" = "json :4 " ] &&
	[ "$(kcomp --kubeconfig "")" = ":0 " ]; then
	ok "kubectl_complete-canary: verbs, each verb's flags, -o values, files after --kubeconfig"
else
	not_ok "kubectl_complete-canary: verbs, each verb's flags, -o values, files after --kubeconfig"
	diag <<<"$(kcomp p; kcomp status web --w)"
fi

# --- docs --------------------------------------------------------------------------
check "docs/deploy.md exists" test -s docs/deploy.md

echo "1..$((PASS + FAIL + SKIP))"
echo "deploy: $PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
