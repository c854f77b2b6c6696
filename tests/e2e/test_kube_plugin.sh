#!/usr/bin/env bash
# run-all: needs kube-apiserver
# kubectl canary (canaryctl installed as kubectl-canary), from outside the
# nodes: kube_fleet_lib.sh's 3 agents with --coordinator kube on a real
# kube-apiserver, and the real kubectl finding the plugin on PATH (build/),
# run in the API server's namespace with the lab's admin kubeconfig
# ($KUBECONFIG), asking no agent:
#
#  1. get lists the Rollout (table and -o json); kubectl's completion of
#     `kubectl canary` offers the verbs and the Rollout's name;
#  2. pause: every node Paused by the operator; resume: every node goes on;
#  3. set-weight: every node's kernel map carries the weight;
#  4. promote: every node at the next steps; status --watch --timeout ends
#     with exit 3 while the rollout waits;
#  5. abort: every node at weight 0 in its kernel map; the verbs are Events
#     on the Rollout by kubectl-canary; retry: running again;
#  6. status --watch exits 0 once promote --full made it Healthy;
#  7. a verb on a missing Rollout, on a Rollout no agent runs, and a verb
#     that makes no sense in the phase fail with a message saying so;
#  8. a kubeconfig as kubeadm and kind write it (CA, client certificate
#     and key as *-data) authenticates;
#  9. so does one whose user is a credential plugin (user.exec); a plugin
#     that fails is an error naming user.exec, its own message shown.
# After 1, a user who may only read Rollouts gets them, and their pause is
# refused by the API server (403): exit 1, "forbidden" and the server's
# words, and no node paused.
set -u
source "$(dirname "$0")/kube_fleet_lib.sh"

LEASE_S=6
# A long timed pause at step 1 (pause and resume act on it), an indefinite
# one at step 3 (promote stops there).
STEPS="[{setWeight: 20}, {pause: {duration: 300s}}, {setWeight: 40}, {pause: {}},
        {setWeight: 60}, {pause: {duration: 300s}}]"
ANALYSIS="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"

# The plugin as a user runs it: kubectl canary, found on PATH, with $KUBECONFIG.
kcanary() {
	in_kns api env PATH="$LAB_BUILD:$PATH" KUBECONFIG="$KUBE_DIR/admin.kubeconfig" \
		kubectl canary -n "$NS" "$@"
}
# kcanary_ok WHAT ARGS...: the verb succeeds; its output is printed.
kcanary_ok() {
	local out rc
	out=$(kcanary "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/# kubectl canary: /'
	return "$rc"
}
# kcanary_fails SAYS ARGS...: the verb fails (non-zero) and its message says SAYS.
kcanary_fails() {
	local says=$1 out rc
	shift
	out=$(kcanary "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/# kubectl canary: /'
	[ "$rc" -ne 0 ] && grep -qF -- "$says" <<<"$out"
}
all_weights() {
	local i
	for i in "${FLEET_NODES[@]}"; do
		expect "$(fleet_weight "$i") == $1" || return 1
	done
}
# A change from outside reaches each node within this bound (polled; the time is printed).
timed_wait() {
	local what=$1 t0 rc
	shift
	t0=$(date +%s%3N)
	"$@"
	rc=$?
	echo "# $what: $(($(date +%s%3N) - t0)) ms (polled)"
	return "$rc"
}

# user_kubeconfig FILE USER: a kubeconfig for the lab's API server with its
# CA inline, whose user USER is given on stdin (the lines under "user:").
user_kubeconfig() {
	{
		cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: "$KUBE_SERVER"
    certificate-authority-data: $(base64 -w0 <"$KUBE_DIR/ca.pem")
users:
- name: $2
  user:
EOF
		cat
		cat <<EOF
contexts:
- name: lab
  context: {cluster: lab, user: $2, namespace: $NS}
current-context: lab
EOF
	} >"$1"
}

# cert_kubeconfig NAME SUBJECT: $KUBE_DIR/NAME.kubeconfig, a kubeconfig as
# kubeadm and kind write it: the CA, a client certificate and its key
# inline as *-data (no token). The lab's CA signs the certificate, and the
# API server (--client-ca-file) takes its CN and O as user and group.
cert_kubeconfig() {
	local d=$KUBE_DIR
	openssl req -newkey rsa:2048 -nodes -subj "$2" \
		-keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
			-CAcreateserial -days 1 -out "$d/$1.crt" 2>/dev/null || return 1
	user_kubeconfig "$d/$1.kubeconfig" "$1" <<EOF
    client-certificate-data: $(base64 -w0 <"$d/$1.crt")
    client-key-data: $(base64 -w0 <"$d/$1.key")
EOF
}

kube_require
trap kube_fleet_down EXIT
t0=$(date +%s%N)
kube_fleet_up "$STEPS" "$ANALYSIS"
for i in "${FLEET_NODES[@]}"; do
	fleet_load_bg "$i" "$LAB_DIR/load-$i.out" --mode newconn --connections 2 --rate 100 \
		--duration-s 600 --timeout-ms 3000
done
check "the first step is taken on every node (20%, the timed pause at step 1)" \
	fleet_wait 30 "d['step'] == 1 and d['weight'] == 20" 1 2 3

# ---- 1: get ----
check "kubectl finds the plugin and get lists the Rollout" kcanary_ok get
listed() { kcanary get | grep -Eq '^web +Paused +1 +20\.00 '; }
check "get shows web Paused at step 1, 20.00%" listed
# Completion: kubectl runs kubectl_complete-canary (deploy/completion/) from PATH.
kcomplete() {
	in_kns api env PATH="$LAB_BUILD:$LAB_ROOT/deploy/completion:$PATH" \
		KUBECONFIG="$KUBE_DIR/admin.kubeconfig" kubectl __complete canary "$@" 2>/dev/null
}
check "completion offers the verbs (kubectl __complete canary se)" \
	eval '[ "$(kcomplete se | tr "\n" " ")" = "set-weight :4 " ]'
check "completion offers the Rollout names from the API server" \
	eval 'kcomplete -n "$NS" pause "" | grep -qx web'
listed_json() { [ "$(kcanary get -o json | jget '",".join(r["metadata"]["name"] for r in d["items"])')" = web ]; }
check "get -o json is the Rollout list" listed_json

# ---- 1b: a user who may only read: the API server refuses the write (403) ----
check "a kubeconfig of user lab-viewer, who may only read Rollouts" \
	cert_kubeconfig viewer "/CN=lab-viewer"
kctl -n "$NS" create role lab-viewer --verb=get,list,watch --resource=rollouts.canaryd.io >/dev/null
kctl -n "$NS" create rolebinding lab-viewer --role=lab-viewer --user=lab-viewer >/dev/null
viewer() {
	in_kns api env PATH="$LAB_BUILD:$PATH" kubectl canary --kubeconfig "$KUBE_DIR/viewer.kubeconfig" \
		-n "$NS" "$@"
}
viewer_lists() { viewer get | grep -Eq '^web +Paused +1 '; }
check "the viewer's get lists web" kube_wait 10 viewer_lists
viewer pause web >"$LAB_DIR/viewer-pause.out" 2>&1
rc=$?
sed 's/^/# viewer: /' "$LAB_DIR/viewer-pause.out"
check "the viewer's pause: exit 1, forbidden, naming what it may not do" \
	eval '[ "$rc" = 1 ] && grep -q "^kubectl canary: forbidden: .*cannot patch resource \"rollouts/status\"" "$LAB_DIR/viewer-pause.out"'
sleep 2 # an accepted pause reaches every node within 1 s (section 2)
check "no node was paused by the refused verb" \
	fleet_wait 1 "d['phase'] == 'Paused' and 'operator' not in d['message']" 1 2 3

# ---- 2: pause, resume ----
check "pause is accepted" kcanary_ok pause web
check "every node is paused by the operator" timed_wait "pause on every node" \
	fleet_wait 10 "d['phase'] == 'Paused' and 'paused by an operator' in d['message']" 1 2 3
check "resume is accepted" kcanary_ok resume web
check "every node goes on (the timed pause, no operator's hold)" timed_wait "resume on every node" \
	fleet_wait 10 "d['phase'] == 'Paused' and 'operator' not in d['message']" 1 2 3

# ---- 3: set-weight ----
check "set-weight 33 is accepted" kcanary_ok set-weight web 33
check "every node's kernel map carries 33%" timed_wait "set-weight in every map" \
	kube_wait 10 all_weights 33
check "every node holds there, paused by the operator" \
	fleet_wait 5 "d['weight'] == 33 and d['phase'] == 'Paused'" 1 2 3

# ---- 4: promote; status --watch while it waits ----
check "promote is accepted" kcanary_ok promote web
check "every node walks to the indefinite pause at step 3, 40%" timed_wait "promote to step 3" \
	fleet_wait 20 "d['step'] == 3 and d['weight'] == 40 and d['phase'] == 'Paused'" 1 2 3
check "every node's kernel map carries 40%" kube_wait 5 all_weights 40
watch_timeout() {
	kcanary status web --watch --timeout 2s >"$LAB_DIR/watch-timeout.out" 2>&1
	[ $? -eq 3 ]
}
check "status --watch --timeout 2s on a waiting rollout exits 3" watch_timeout
sed 's/^/# status --watch: /' "$LAB_DIR/watch-timeout.out"

# ---- 5: abort, retry ----
abort_ms=$(date +%s%3N)
check "abort is accepted" kcanary_ok abort web
check "every node aborts" fleet_wait 10 "d['phase'] == 'Degraded'" 1 2 3
echo "# every node Degraded $(($(date +%s%3N) - abort_ms)) ms after kubectl canary abort (polled)"
for i in "${FLEET_NODES[@]}"; do
	check "weight 0 in node $i's kernel map" expect "$(fleet_weight "$i") == 0"
done
events() {
	kctl -n "$NS" get events --field-selector involvedObject.name=web,involvedObject.kind=Rollout \
		-o jsonpath='{range .items[*]}{.reason}|{.type}|{.source.host}|{.message}{"\n"}{end}' \
		2>/dev/null
}
events | sed 's/^/# event: /'
check "the plugin's pause is an Event by kubectl-canary" \
	expect "$(events | grep -c '^Paused|Normal|kubectl-canary|step 1, weight 20%: paused by an operator')" == 1
check "the plugin's abort is one Warning Event by kubectl-canary" \
	expect "$(events | grep -c '^Aborted|Warning|kubectl-canary|step 3, weight 0%: aborted')" == 1
check "no agent recorded the operator's abort again" expect "$(events | grep -c '^Aborted|')" == 1
check "get shows the abort" eval "kcanary get web | grep -Eq '^web +Degraded +3 +0\.00 '"
check "retry is accepted" kcanary_ok retry web
check "every node runs it again, back at the pause at 20%" timed_wait "retry on every node" \
	fleet_wait 30 "d['phase'] == 'Paused' and d['step'] == 1 and d['weight'] == 20" 1 2 3
check ".status says abort false again (kubectl get)" \
	expect "'$(kctl -n "$NS" get rollout web -o jsonpath='{.status.abort}')' == 'false'"

# ---- 6: status --watch until Healthy ----
kcanary status web --watch --timeout 60s >"$LAB_DIR/watch.out" 2>&1 &
watch_pid=$!
sleep 1 # the watch is open (its first line printed) before the change it must see
full_ms=$(date +%s%3N)
check "promote --full is accepted" kcanary_ok promote web --full
wait "$watch_pid"
watch_rc=$?
echo "# status --watch ended $(($(date +%s%3N) - full_ms)) ms after promote --full, exit $watch_rc"
sed 's/^/# status --watch: /' "$LAB_DIR/watch.out"
check "status --watch exits 0 on Healthy" expect "$watch_rc == 0"
check "status --watch printed the Healthy state" grep -q '^web: Healthy' "$LAB_DIR/watch.out"
check "every node is Healthy" fleet_wait 10 "d['phase'] == 'Healthy'" 1 2 3

# ---- 7: errors name what is wrong ----
check "a verb on a Healthy rollout is refused, saying why" \
	kcanary_fails "the rollout is complete" resume web
check "abort on a Healthy rollout is refused, saying why" \
	kcanary_fails "nothing to abort (rollout is Healthy)" abort web
check "a missing Rollout is named" \
	kcanary_fails 'Rollout "nosuch" not found in namespace "'"$NS"'"' pause nosuch
check "status of a missing Rollout fails the same way" \
	kcanary_fails 'Rollout "nosuch" not found' status nosuch --watch --timeout 5s
sed 's/name: web/name: other/' "$LAB_DIR/config/web.yaml" | kctl -n "$NS" apply -f - >/dev/null
check "a Rollout no agent runs: no shared state, said so" \
	kcanary_fails "no agent has written status.shared yet" pause other
check "a namespace without the Rollout" \
	kcanary_fails 'Rollout "web" not found in namespace "default"' -n default pause web
check "a bad kubeconfig is named" \
	kcanary_fails "kubeconfig /nonexistent: cannot read" --kubeconfig /nonexistent get

# ---- 8: a kubeconfig as kubeadm and kind write it ----
check "a kubeconfig with certificate-authority-data and a client certificate as data" \
	cert_kubeconfig cert "/O=system:masters/CN=lab-cert-admin"
kubectl_cert() { in_kns api kubectl --kubeconfig "$KUBE_DIR/cert.kubeconfig" "$@" >/dev/null; }
check "kubectl itself accepts it (the check of the check)" kubectl_cert get rollouts.canaryd.io web
cert_get() {
	in_kns api env PATH="$LAB_BUILD:$PATH" kubectl canary --kubeconfig "$KUBE_DIR/cert.kubeconfig" \
		get web | grep -Eq '^web +Healthy '
}
check "kubectl canary get authenticates with the client certificate" cert_get

# ---- 9: a credential plugin (user.exec), as EKS, GKE and AKS kubeconfigs have ----
# The plugin, relative to the kubeconfig's directory, prints an
# ExecCredential with the lab admin's token; it fails unless kubectl's call
# information and exec.env reach it. (v1beta1: the lab's kubectl is 1.20.)
exec_kubeconfig() {
	local d=$KUBE_DIR fail=${1:-0}
	cat >"$d/exec-login.sh" <<'EOF'
#!/bin/sh
case "$KUBERNETES_EXEC_INFO" in *'"kind":"ExecCredential"'*) ;; *) echo "no KUBERNETES_EXEC_INFO" >&2; exit 4 ;; esac
[ "$1" = lab ] || { echo "bad args: $*" >&2; exit 5; }
[ "$LOGIN_FAIL" = 1 ] && { echo "login refused" >&2; exit 6; }
printf '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"%s"}}\n' "$(cat "$LAB_TOKEN_FILE")"
EOF
	chmod 0755 "$d/exec-login.sh"
	user_kubeconfig "$d/exec.kubeconfig" exec-admin <<EOF
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./exec-login.sh
      args: [lab]
      env: [{name: LAB_TOKEN_FILE, value: "$d/admin.token"}, {name: LOGIN_FAIL, value: "$fail"}]
EOF
}
check "a kubeconfig whose user is an exec credential plugin" exec_kubeconfig
kubectl_exec() { in_kns api kubectl --kubeconfig "$KUBE_DIR/exec.kubeconfig" "$@" >/dev/null; }
check "kubectl itself accepts it (the check of the check)" kubectl_exec get rollouts.canaryd.io web
exec_get() {
	in_kns api env PATH="$LAB_BUILD:$PATH" kubectl canary --kubeconfig "$KUBE_DIR/exec.kubeconfig" \
		get web | grep -Eq '^web +Healthy '
}
check "kubectl canary get authenticates with the plugin's token" exec_get
exec_kubeconfig 1
in_kns api env PATH="$LAB_BUILD:$PATH" kubectl canary --kubeconfig "$KUBE_DIR/exec.kubeconfig" \
	get web >"$LAB_DIR/exec-fail.out" 2>&1
rc=$?
sed 's/^/# /' "$LAB_DIR/exec-fail.out"
check "a failing plugin: exit 1, its message shown, the error naming user.exec" \
	expect "$rc == 1 and $(grep -c 'login refused' "$LAB_DIR/exec-fail.out") == 1 and $(grep -c 'user.exec: .*exec-login.sh failed (exit status 6)' "$LAB_DIR/exec-fail.out") == 1"
echo "# whole test: $((($(date +%s%N) - t0) / 1000000)) ms"
fleet_load_stop
lab_finish
