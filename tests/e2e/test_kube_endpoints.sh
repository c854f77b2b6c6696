#!/usr/bin/env bash
# run-all: needs kube-apiserver
# The agent's EndpointSlice watcher (userspace/kube.c, run as build/kubewatch
# from the node namespace with the agent user's token, bound to the roles of
# deploy/kubernetes/rbac.yaml) against a real kube-apiserver 1.20, which
# serves discovery.k8s.io/v1beta1 only: kube.c falls back to it. Each change
# to the Service's slices (an endpoint added, marked terminating, removed; a
# second slice) shows up in kubewatch's output; the time each took is printed
# (figures only). Then a 410: the API server runs with --watch-cache=false,
# so a watch goes straight to etcd. It is stopped, one slice is deleted in
# etcd behind its back, and etcd is compacted past kubewatch's
# resourceVersion; restarted, the API server answers kubewatch's resumed
# watch with 410 Gone, kubewatch lists again, and it ends with exactly the
# API server's endpoints (the slice deleted unseen is gone). Last, a silent
# loss of the watch's connection (no FIN, no RST): TCP keepalive finds it.
set -u
source "$(dirname "$0")/lib_kube.sh"

# The terminating condition is alpha in 1.20: without the gate the API
# server drops it from what it stores.
# shellcheck disable=SC2034 # read by lib_kube.sh
KUBE_APISERVER_FLAGS="--watch-cache=false --feature-gates=EndpointSliceTerminatingCondition=true"
kube_require
trap kube_down EXIT
kube_up || {
	echo "not ok - etcd and kube-apiserver start"
	exit 1
}
KW_OUT=$LAB_DIR/kubewatch.out
KW_ERR=$LAB_DIR/kubewatch.err

# The agent's roles, bound to its user.
kctl apply -f "$LAB_ROOT/deploy/kubernetes/namespace.yaml" >/dev/null
kctl apply -f "$LAB_ROOT/deploy/kubernetes/rbac.yaml" >/dev/null
kctl create service clusterip web --tcp=80:8080 >/dev/null

# slice NAME 'ENDPOINT...': apply a v1beta1 EndpointSlice of Service web;
# an endpoint is ADDR (ready) or ADDR:terminating.
slice() {
	local name=$1 ep addr eps=""
	for ep in $2; do
		addr=${ep%%:*}
		if [ "$ep" = "$addr:terminating" ]; then
			eps="$eps  - {addresses: [$addr], conditions: {ready: false, serving: true, terminating: true}}
"
		else
			eps="$eps  - {addresses: [$addr], conditions: {ready: true}}
"
		fi
	done
	kctl apply -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata:
  name: $name
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
$eps
EOF
}

fails() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }

# seen PATTERN: kubewatch's last line matches (a grep -E pattern).
seen() { tail -1 "$KW_OUT" 2>/dev/null | grep -Eq -- "$1"; }

# change DESC PATTERN CMD...: run CMD (a kubectl apply), then wait (10 s
# at most, polling every 20 ms) for kubewatch to print PATTERN; print how
# long the apply took and how long after it kubewatch had the change.
change() {
	local desc=$1 pat=$2 t0 t1 n=500
	shift 2
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	while [ "$n" -gt 0 ] && ! seen "$pat"; do
		sleep 0.02
		n=$((n - 1))
	done
	if seen "$pat"; then
		echo "# $desc: apply $(((t1 - t0) / 1000000)) ms, then in kubewatch's output after $((($(date +%s%N) - t1) / 1000000)) ms"
		echo "ok - $desc"
	else
		echo "not ok - $desc (last: $(tail -1 "$KW_OUT" 2>/dev/null))"
		LAB_FAILURES=$((LAB_FAILURES + 1))
	fi
}

api_code() {
	in_kns node curl -s -o /dev/null -w '%{http_code}' --cacert "$KUBE_DIR/ca.pem" \
		-H "Authorization: Bearer $(cat "$KUBE_DIR/agent.token")" "$KUBE_SERVER$1"
}
check "this server has no discovery.k8s.io/v1 (404), only v1beta1 (200)" \
	test "$(api_code /apis/discovery.k8s.io/v1)/$(api_code /apis/discovery.k8s.io/v1beta1)" = 404/200

slice web-a "198.18.1.2"
nsenter --net=/run/netns/"$(kns node)" "$LAB_BUILD/kubewatch" --server "$KUBE_SERVER" --token-file "$KUBE_DIR/agent.token" \
	--ca-file "$KUBE_DIR/ca.pem" --namespace default --service web >"$KW_OUT" 2>"$KW_ERR" &
echo $! >"$LAB_DIR/kubewatch.pid"
# rbac.yaml grants its roles in canaryd-system only: in default the list is
# refused until a RoleBinding grants them there, and kubewatch says so.
check "without a RoleBinding in default: 403, logged naming the namespace's slices" \
	kube_wait 10 grep -q 'kube list refused.*namespaces/default/endpointslices.*status=403' "$KW_ERR"
kctl create rolebinding lab-agent --clusterrole=canaryd --user=canaryd-agent >/dev/null
check "kubewatch lists the slice with the agent's token, over v1beta1" \
	kube_wait 40 seen 'api=v1beta1 relists=0 ready=198.18.1.2:8080 terminating=- not-ready=-$'

change "an endpoint added" \
	' ready=198.18.1.2:8080,198.18.1.3:8080 terminating=- not-ready=-$' \
	slice web-a "198.18.1.2 198.18.1.3"
change "an endpoint marked terminating (ready=false, terminating=true)" \
	' ready=198.18.1.2:8080 terminating=198.18.1.3:8080 not-ready=-$' \
	slice web-a "198.18.1.2 198.18.1.3:terminating"
change "an endpoint removed" \
	' ready=198.18.1.2:8080 terminating=- not-ready=-$' \
	slice web-a "198.18.1.2"
change "a second slice" \
	' ready=198.18.1.2:8080,198.18.3.2:8080 terminating=- not-ready=-$' \
	slice web-b "198.18.3.2"
check "no re-list so far" seen ' relists=0 '

# The 410. etcd keeps the objects under /registry/<resource>/<namespace>/<name>.
key=$(kube_etcdctl get --prefix --keys-only /registry/ | grep -E '^/registry/.*endpointslices/default/web-b$')
echo "# web-b in etcd: ${key:-not found}"
kube_apiserver_stop
check "the API server is down (its port refuses)" \
	fails in_kns node curl -s -m 2 --cacert "$KUBE_DIR/ca.pem" "$KUBE_SERVER/readyz"
check "web-b deleted in etcd while the API server is down" \
	test "$(kube_etcdctl del "$key" 2>/dev/null)" = 1
rev=$(kube_etcdctl put /lab/bump x -w json | jget 'd["header"]["revision"]')
check "etcd compacted to revision $rev, past kubewatch's resourceVersion" \
	quiet kube_etcdctl compact "$rev"
old_rv=$(tail -1 "$KW_OUT" | sed -n 's/^rv=\([0-9]*\) .*/\1/p')
kube_apiserver_start || echo "# the API server did not come back"
t0=$(date +%s%N)
check "kubewatch got 410 Gone and listed again (relists=1)" \
	kube_wait 20 seen ' relists=1 ready=198.18.1.2:8080 terminating=- not-ready=-$'
echo "# re-listed $((($(date +%s%N) - t0) / 1000000)) ms after the API server was ready again (0.2 s polls; backoff up to 2 s)"
# The same watch from curl: the 410 is the server's, not kubewatch's idea.
in_kns node curl -s -m 5 --cacert "$KUBE_DIR/ca.pem" \
	-H "Authorization: Bearer $(cat "$KUBE_DIR/agent.token")" \
	"$KUBE_SERVER/apis/discovery.k8s.io/v1beta1/namespaces/default/endpointslices?watch=1&resourceVersion=$old_rv&timeoutSeconds=1" \
	>"$LAB_DIR/watch410.out" 2>&1
echo "# watch from rv=$old_rv: $(cut -c1-160 "$LAB_DIR/watch410.out" | head -1)"
check "a watch from kubewatch's old resourceVersion ($old_rv) is answered 410 Gone" \
	grep -q '"code":410' "$LAB_DIR/watch410.out"
check "kubewatch logged the expired watch" \
	grep -q 'kube watch expired (410): listing again' "$KW_ERR"
grep -E 'kube watch (error event|expired)' "$KW_ERR" | head -2 | cut -c1-200 | sed 's/^/# /'
want=$(kctl get endpointslices -l kubernetes.io/service-name=web -o json |
	jget '",".join(sorted("%s:%d" % (a, s["ports"][0]["port"]) for s in d["items"]
		for e in s["endpoints"] for a in e["addresses"]))')
got=$(tail -1 "$KW_OUT" | sed -n 's/.* ready=\([^ ]*\) .*/\1/p')
echo "# the API server lists: $want; kubewatch holds: $got"
check "kubewatch ends with exactly the API server's endpoints" test "$want" = "$got"
# A silent loss: every packet of kubewatch's open connections is dropped
# from now on, in the node namespace (a NAT or firewall that lost their
# state, a peer gone without a FIN or an RST). The watch on one of them is
# dead, and nothing arrives to say so. Only TCP keepalive finds out: its
# probes go unanswered, TCP_USER_TIMEOUT closes the connection, and the watch
# starts again on a new one. Without it kubewatch would wait for its watch
# timeout (5-10 min) and miss every change until then.
old_ports=$(in_kns node ss -tnH state established '( dport = :6443 )' | awk '{ sub(/.*:/, "", $3); print $3 }')
echo "# kubewatch's connections to the API server, from ports: $(tr "\n" " " <<<"$old_ports")"
drop_ports() {
	local p
	[ -n "$old_ports" ] || return 1
	for p in $old_ports; do
		in_kns node iptables -A INPUT -p tcp --dport "$p" -j DROP &&
			in_kns node iptables -A OUTPUT -p tcp --sport "$p" -j DROP || return 1
	done
}
check "their packets are dropped from now on (iptables in the node namespace)" drop_ports
t0=$(date +%s%N)
slice web-a "198.18.1.2 198.18.1.4"
check "kubewatch sees the next change on a new connection (90 s at most)" \
	kube_wait 90 seen ' ready=198.18.1.2:8080,198.18.1.4:8080 terminating=- not-ready=-$'
echo "# seen $((($(date +%s%N) - t0) / 1000000)) ms after the change (keepalive: idle 15 s, every 5 s; TCP_USER_TIMEOUT 30 s)"
if [ "$LAB_FAILURES" -gt 0 ]; then
	sed 's/^/# kubewatch: /' "$KW_OUT" | tail -8
	sed 's/^/# kubewatch stderr: /' "$KW_ERR" | tail -8
fi
lab_finish
