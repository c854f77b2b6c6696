#!/usr/bin/env bash
# A Kubernetes API lab: a one-member etcd and a real kube-apiserver (the one
# tools/kube-apiserver.sh builds) in their own network namespace, and a node
# namespace that reaches it over a veth. Sourced by test_kube_*.sh.
#
#   kapi-PID  198.18.110.1  etcd (127.0.0.1:2379 inside kapi only),
#             kube-apiserver https://198.18.110.1:6443
#      │ veth
#   knode-PID 198.18.110.2  the agent side (kubewatch, canaryd)
#
# The API server serves TLS with a certificate from a lab CA (openssl),
# authorizes with RBAC and authenticates with static tokens: "admin"
# (system:masters) and "canaryd-agent" (no group; what it may do is only what
# a test binds to it). kubectl runs inside kapi with $KUBE_DIR/admin.kubeconfig
# (kctl), or as the agent (kctl_agent). Nothing touches the machine's own
# interfaces; kube_down removes the namespaces and files, safe to call twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_DIR=$LAB_DIR/kube
KUBE_ADDR=198.18.110.1
KUBE_NODE_ADDR=198.18.110.2
KUBE_SERVER=https://$KUBE_ADDR:6443
KUBE_APISERVER=${KUBE_APISERVER:-$("$LAB_ROOT/tools/kube-apiserver.sh" --print-path)}
# Extra flags for the API server (e.g. --watch-cache=false).
KUBE_APISERVER_FLAGS=${KUBE_APISERVER_FLAGS:-}
KUBE_UP_MS=0

kns() { echo "k$1-$LAB_ID"; }
in_kns() {
	local name=$1
	shift
	nsenter --net=/run/netns/"$(kns "$name")" "$@"
}
kctl() { in_kns api kubectl --kubeconfig "$KUBE_DIR/admin.kubeconfig" "$@"; }
kctl_agent() { in_kns api kubectl --kubeconfig "$KUBE_DIR/agent.kubeconfig" "$@"; }
kube_etcdctl() { in_kns api env ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 "$@"; }

# Root, and the API server binary: missing, it fails under CI=true and is
# skipped otherwise.
kube_require() {
	lab_require_root
	if [ ! -x "$KUBE_APISERVER" ]; then
		if [ "${CI:-}" = true ]; then
			echo "not ok - kube-apiserver is built (tools/kube-apiserver.sh)"
			exit 1
		fi
		echo "skipped: needs kube-apiserver: run tools/kube-apiserver.sh as root"
		exit 0
	fi
}

# The lab CA, the API server's certificate (SAN: its lab address), the
# service-account signing key, the token file and two kubeconfigs.
kube_pki() {
	local d=$KUBE_DIR
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kube-lab-ca \
		-keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
		-keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$KUBE_ADDR" \
		>"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
		-CAcreateserial -days 1 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
	openssl genrsa -out "$d/sa-key.pem" 2048 2>/dev/null
	openssl rsa -in "$d/sa-key.pem" -pubout -out "$d/sa.pem" 2>/dev/null
	# Random tokens, never fixed strings; the files are 0600 as an agent's must be.
	(
		umask 077
		head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$d/admin.token"
		head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$d/agent.token"
		printf '%s,admin,uid-admin,"system:masters"\n%s,canaryd-agent,uid-agent\n' \
			"$(cat "$d/admin.token")" "$(cat "$d/agent.token")" >"$d/tokens.csv"
	)
	local who
	for who in admin agent; do
		cat >"$d/$who.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "$KUBE_SERVER", certificate-authority: "$d/ca.pem"}
users:
- name: $who
  user: {token: "$(cat "$d/$who.token")"}
contexts:
- name: lab
  context: {cluster: lab, user: $who, namespace: default}
current-context: lab
EOF
	done
}

# Background processes start through nsenter itself, not in_kns: $! is then
# the process (nsenter execs it), not a subshell whose kill would leave it.
kube_etcd_start() {
	nsenter --net=/run/netns/"$(kns api)" etcd --name kube-etcd --data-dir "$KUBE_DIR/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 \
		--initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster kube-etcd=http://127.0.0.1:2380 --initial-cluster-state new \
		>>"$KUBE_DIR/etcd.log" 2>&1 &
	echo $! >"$LAB_DIR/kube-etcd.pid"
	for _ in $(seq 1 100); do
		in_kns api curl -s -m 1 http://127.0.0.1:2379/health 2>/dev/null | grep -q true && return 0
		sleep 0.1
	done
	tail -5 "$KUBE_DIR/etcd.log" >&2
	lab_fail "etcd did not come up"
}

# kube_apiserver_start: start it (again) and wait for /readyz, 30 s at most.
kube_apiserver_start() {
	# shellcheck disable=SC2086 # KUBE_APISERVER_FLAGS is a list of flags
	nsenter --net=/run/netns/"$(kns api)" "$KUBE_APISERVER" --etcd-servers http://127.0.0.1:2379 \
		--bind-address "$KUBE_ADDR" --advertise-address "$KUBE_ADDR" --secure-port 6443 \
		--insecure-port 0 --cert-dir "$KUBE_DIR/certs" \
		--tls-cert-file "$KUBE_DIR/server.pem" --tls-private-key-file "$KUBE_DIR/server-key.pem" \
		--client-ca-file "$KUBE_DIR/ca.pem" \
		--token-auth-file "$KUBE_DIR/tokens.csv" --authorization-mode RBAC \
		--service-account-issuer https://kubernetes.default.svc \
		--service-account-key-file "$KUBE_DIR/sa.pem" \
		--service-account-signing-key-file "$KUBE_DIR/sa-key.pem" \
		--api-audiences https://kubernetes.default.svc \
		--service-cluster-ip-range 10.96.0.0/16 \
		--enable-priority-and-fairness=false --profiling=false \
		$KUBE_APISERVER_FLAGS >>"$KUBE_DIR/apiserver.log" 2>&1 &
	echo $! >"$LAB_DIR/kube-apiserver.pid"
	disown # its SIGKILL is ours, not worth a "Killed" line from bash
	for _ in $(seq 1 300); do
		[ "$(in_kns api curl -s -m 1 --cacert "$KUBE_DIR/ca.pem" \
			-H "Authorization: Bearer $(cat "$KUBE_DIR/admin.token")" \
			"$KUBE_SERVER/readyz" 2>/dev/null)" = ok ] && return 0
		kill -0 "$(cat "$LAB_DIR/kube-apiserver.pid")" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$KUBE_DIR/apiserver.log" >&2
	lab_fail "kube-apiserver not ready within 30 s"
}

# kube_apiserver_stop: SIGKILL, and wait until it is gone (5 s at most). A
# crash, not a drain: 1.20's graceful shutdown keeps watches open for
# seconds, and what the watchers must survive is the connection's loss.
kube_apiserver_stop() {
	local pid
	pid=$(cat "$LAB_DIR/kube-apiserver.pid" 2>/dev/null) || return 0
	kill -9 "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$LAB_DIR/kube-apiserver.pid"
	return 0
}

# kube_up: namespaces, PKI, etcd, the API server; KUBE_UP_MS says how long it took.
kube_up() {
	local t0 name
	t0=$(date +%s%N)
	mkdir -p "$KUBE_DIR"
	for name in api node; do ip netns add "$(kns "$name")"; done
	ip -n "$(kns api)" link set lo up
	ip -n "$(kns node)" link set lo up
	ip -n "$(kns api)" link add kap0 type veth peer name kn0 netns "$(kns node)"
	ip -n "$(kns api)" addr add "$KUBE_ADDR/24" dev kap0
	ip -n "$(kns node)" addr add "$KUBE_NODE_ADDR/24" dev kn0
	ip -n "$(kns api)" link set kap0 up
	ip -n "$(kns node)" link set kn0 up
	kube_pki
	kube_etcd_start || return 1
	kube_apiserver_start || return 1
	KUBE_UP_MS=$((($(date +%s%N) - t0) / 1000000))
	echo "# kube_up: etcd and kube-apiserver ready in $KUBE_UP_MS ms"
}

# kube_link NETNS I: a veth from the API server's namespace to another
# namespace (a fleet node), 198.18.112.(4I+1) <-> .(4I+2), and a host route
# to the API server over it: nothing else of that namespace changes.
kube_link() {
	local ns=$1 i=$2
	ip -n "$(kns api)" link add "kx$i" type veth peer name kube0 netns "$ns"
	ip -n "$(kns api)" addr add "198.18.112.$((4 * i + 1))/30" dev "kx$i"
	ip -n "$ns" addr add "198.18.112.$((4 * i + 2))/30" dev kube0
	ip -n "$(kns api)" link set "kx$i" up
	ip -n "$ns" link set kube0 up
	ip -n "$ns" route add "$KUBE_ADDR/32" via "198.18.112.$((4 * i + 1))"
}

# kube_node_lab: lib.sh's lab (client, node, backends) beside the API
# server; the node namespace, where the agent runs, reaches the API server
# over a veth of its own (named so that the agent's --interfaces 'to-*'
# leaves it alone); the agent's roles bound to its user. Exits when the API
# server does not start.
kube_node_lab() {
	local b
	lab_up
	for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
	kube_up || {
		echo "not ok - etcd and kube-apiserver start"
		exit 1
	}
	lab_wait_backends
	ip -n "$(kns api)" link add kq0 type veth peer name kapi0 netns "$(ns node)"
	ip -n "$(kns api)" addr add 198.18.111.1/24 dev kq0
	ip -n "$(kns api)" link set kq0 up
	ip -n "$(ns node)" addr add 198.18.111.2/24 dev kapi0
	ip -n "$(ns node)" link set kapi0 up
	ip -n "$(ns node)" route add "$KUBE_ADDR/32" via 198.18.111.1
	kctl apply -f "$LAB_ROOT/deploy/kubernetes/namespace.yaml" >/dev/null
	kctl apply -f "$LAB_ROOT/deploy/kubernetes/rbac.yaml" >/dev/null
	kctl create clusterrolebinding lab-agent --clusterrole=canaryd --user=canaryd-agent >/dev/null
}

kube_down() {
	local name
	kube_apiserver_stop
	lab_down
	for name in api node; do
		ip netns pids "$(kns "$name")" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$(kns "$name")" 2>/dev/null
	done
	return 0
}

# kube_wait SECONDS CMD...: run CMD every 0.2 s until it succeeds, bounded.
kube_wait() {
	local n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
