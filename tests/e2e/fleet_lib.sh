#!/usr/bin/env bash
# A fleet lab: a real 3-member etcd cluster and 3 nodes, each node with its
# own agent (own bpffs, state dir, API socket), its own client, one stable
# and one canary backend, all behind the same VIP. Sourced by test_fleet_*.sh.
#
#          e1 198.18.100.1   e2 .2   e3 .3        (etcd members)
#                 \            |      /
#                  [ sw: bridge br0, 198.18.100.0/24 ]
#                 /            |      \
#   n1 fab0 .11          n2 fab0 .12        n3 fab0 .13   (nodes, canaryd)
#   ├ to-cl  c1 198.18.0.2   (the same private addressing behind each node,
#   ├ to-st  s1 198.18.1.2    so every node reads one and the same Rollout file)
#   └ to-cn  k1 198.18.3.2
#
# Namespaces carry the PID; fleet_down removes them all, the pins, the data.
# Nothing touches the machine's own interfaces.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLEET_NODES=(1 2 3)
FLEET_ETCD=(1 2 3)
# FLEET_TLS=1: etcd serves clients over TLS and asks for client certificates.
FLEET_TLS=${FLEET_TLS:-0}
FLEET_SCHEME=http
[ "$FLEET_TLS" = 1 ] && FLEET_SCHEME=https
FLEET_ETCD_ENDPOINTS="$FLEET_SCHEME://198.18.100.1:2379,$FLEET_SCHEME://198.18.100.2:2379,$FLEET_SCHEME://198.18.100.3:2379"
FLEET_PKI=$LAB_DIR/pki

# A lab CA, a certificate for the members (clientAuth too: the gateway dials
# its own gRPC side with it), and one for the agents.
fleet_pki() {
	local d=$FLEET_PKI
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=lab-ca \
		-keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=etcd -keyout "$d/server-key.pem" \
		-out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:198.18.100.1,IP:198.18.100.2,IP:198.18.100.3\nextendedKeyUsage=serverAuth,clientAuth\n' \
		>"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
		-CAcreateserial -days 1 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=canaryd -keyout "$d/client-key.pem" \
		-out "$d/client.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
		-CAcreateserial -days 1 -extfile "$d/client.ext" -out "$d/client.pem" 2>/dev/null
}

# etcd's flags for its client side.
fleet_etcd_tls_flags() {
	[ "$FLEET_TLS" = 1 ] || return 0
	echo "--cert-file $FLEET_PKI/server.pem --key-file $FLEET_PKI/server-key.pem" \
		"--trusted-ca-file $FLEET_PKI/ca.pem --client-cert-auth"
}

fns() { echo "fl$1-$LAB_ID"; }
in_fns() {
	local name=$1
	shift
	nsenter --net=/run/netns/"$(fns "$name")" "$@"
}

# fleet_veth NS_A IF_A NS_B IF_B
fleet_veth() {
	ip -n "$(fns "$1")" link add "$2" type veth peer name "$4" netns "$(fns "$3")"
	ip -n "$(fns "$1")" link set "$2" up
	ip -n "$(fns "$3")" link set "$4" up
}

fleet_names() {
	local i
	echo sw
	for i in "${FLEET_ETCD[@]}"; do echo "e$i"; done
	for i in "${FLEET_NODES[@]}"; do echo "n$i c$i s$i k$i"; done
}

# The private side of node i: client, stable and canary, as lib.sh's lab.
fleet_node_links() {
	local i=$1 peer net
	ip -n "$(fns "n$i")" link set lo up
	in_fns "n$i" sysctl -qw net.ipv4.ip_forward=1
	in_fns "n$i" sysctl -qw net.ipv4.conf.all.rp_filter=1
	for peer in "c$i:0" "s$i:1" "k$i:3"; do
		net=${peer#*:}
		peer=${peer%:*}
		fleet_veth "n$i" "to-${peer%[0-9]}" "$peer" eth0
		ip -n "$(fns "n$i")" addr add "198.18.$net.1/24" dev "to-${peer%[0-9]}"
		ip -n "$(fns "$peer")" addr add "198.18.$net.2/24" dev eth0
		ip -n "$(fns "$peer")" link set lo up
		ip -n "$(fns "$peer")" route add default via "198.18.$net.1"
	done
}

fleet_up() {
	local i name
	lab_mount_bpffs
	mkdir -p "$LAB_DIR"
	for name in $(fleet_names); do ip netns add "$(fns "$name")"; done
	ip -n "$(fns sw)" link add br0 type bridge
	ip -n "$(fns sw)" link set br0 up
	for i in "${FLEET_ETCD[@]}"; do
		fleet_veth sw "pe$i" "e$i" eth0
		ip -n "$(fns sw)" link set "pe$i" master br0
		ip -n "$(fns "e$i")" addr add "198.18.100.$i/24" dev eth0
		ip -n "$(fns "e$i")" link set lo up
	done
	for i in "${FLEET_NODES[@]}"; do
		fleet_veth sw "pn$i" "n$i" fab0
		ip -n "$(fns sw)" link set "pn$i" master br0
		ip -n "$(fns "n$i")" addr add "198.18.100.1$i/24" dev fab0
		fleet_node_links "$i"
	done
}

# Election timeout 500 ms: a lease of 2 s is then kept as asked (>= 1.5 x).
fleet_etcd_start() {
	local i cluster=""
	for i in "${FLEET_ETCD[@]}"; do
		cluster="$cluster${cluster:+,}e$i=http://198.18.100.$i:2380"
	done
	for i in "${FLEET_ETCD[@]}"; do
		nsenter --net=/run/netns/"$(fns "e$i")" etcd --name "e$i" \
			--data-dir "$LAB_DIR/etcd-e$i" \
			--listen-client-urls "$FLEET_SCHEME://198.18.100.$i:2379" \
			--advertise-client-urls "$FLEET_SCHEME://198.18.100.$i:2379" $(fleet_etcd_tls_flags) \
			--listen-peer-urls "http://198.18.100.$i:2380" \
			--initial-advertise-peer-urls "http://198.18.100.$i:2380" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token "lab-$LAB_ID" \
			--heartbeat-interval 100 --election-timeout 500 \
			>>"$LAB_DIR/etcd-e$i.log" 2>&1 &
		echo $! >"$LAB_DIR/etcd-e$i.pid"
	done
	local tls=()
	[ "$FLEET_TLS" = 1 ] && tls=(--cacert "$FLEET_PKI/ca.pem" --cert "$FLEET_PKI/client.pem"
		--key "$FLEET_PKI/client-key.pem")
	for i in $(seq 1 100); do
		in_fns n1 curl -s -m 1 "${tls[@]}" -X POST "$FLEET_SCHEME://198.18.100.1:2379/v3/kv/put" \
			-d '{"key":"bGFi","value":"dXA="}' 2>/dev/null | grep -q revision && return 0
		sleep 0.1
	done
	tail -5 "$LAB_DIR/etcd-e1.log" >&2
	lab_fail "etcd cluster did not come up"
}

# fleet_backends: labsrv on every node's stable and canary.
fleet_backends() {
	local i b
	for i in "${FLEET_NODES[@]}"; do
		for b in "s$i:198.18.1.2" "k$i:198.18.3.2"; do
			nsenter --net=/run/netns/"$(fns "${b%%:*}")" "$LAB_BUILD/labsrv" \
				--listen "${b#*:}:$LAB_BACKEND_PORT" --name "${b%%:*}" \
				--control "$LAB_DIR/${b%%:*}.ctl" >>"$LAB_DIR/${b%%:*}.log" 2>&1 &
			echo $! >"$LAB_DIR/${b%%:*}.pid"
		done
	done
	for i in "${FLEET_NODES[@]}"; do
		for b in "s$i" "k$i"; do
			for _ in $(seq 1 100); do
				grep -q listening "$LAB_DIR/$b.log" 2>/dev/null && break
				sleep 0.02
			done
		done
	done
}

# fleet_rollout STEPS ANALYSIS [REVISION]: one Rollout file for every node.
fleet_rollout() {
	mkdir -p "$LAB_DIR/config"
	cat >"$LAB_DIR/config/web.yaml.tmp" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  service: {vip: $LAB_VIP, port: $LAB_PORT, protocol: http}
  stable: {revision: v1, endpoints: ["198.18.1.2:$LAB_BACKEND_PORT"]}
  canary: {revision: ${3:-v2}, endpoints: ["198.18.3.2:$LAB_BACKEND_PORT"]}
  strategy:
    steps: $1
  analysis: $2
YAML
	mv "$LAB_DIR/config/web.yaml.tmp" "$LAB_DIR/config/web.yaml"
}

# fleet_agent I [canaryd flags...]: start node i's agent, wait until ready.
fleet_agent() {
	local i=$1 before=0 log
	shift
	log="$LAB_DIR/canaryd-n$i.log"
	[ -f "$log" ] && before=$(grep -c 'msg=ready' "$log")
	mkdir -p "$LAB_DIR/state-n$i"
	nsenter --net=/run/netns/"$(fns "n$i")" "$LAB_BUILD/canaryd" \
		--bpffs "/sys/fs/bpf/canaryd-fleet-$LAB_ID-n$i" --host-cgroup off --interfaces 'to-*' \
		--config "$LAB_DIR/config" --state-dir "$LAB_DIR/state-n$i" \
		--api-socket "$LAB_DIR/api-n$i.sock" --tick-ms 100 \
		$(fleet_coord_flags "$i") "$@" >>"$log" 2>&1 &
	echo $! >"$LAB_DIR/canaryd-n$i.pid"
	for _ in $(seq 1 100); do
		[ "$(cat "$log" 2>/dev/null | grep -c 'msg=ready')" -gt "$before" ] && return 0
		kill -0 "$(cat "$LAB_DIR/canaryd-n$i.pid")" 2>/dev/null || break
		sleep 0.05
	done
	tail -20 "$log" >&2
	lab_fail "canaryd on n$i did not become ready"
}

# The coordinator flags of node i; none with FLEET_ALONE=1 (a node on its own).
fleet_coord_flags() {
	[ "${FLEET_ALONE:-0}" = 1 ] && return 0
	echo "--coordinator etcd --etcd-endpoints $(fleet_endpoints_for "$1")" \
		"--etcd-prefix /canaryd-lab --node-name n$1"
	[ "$FLEET_TLS" = 1 ] && echo "--etcd-cacert $FLEET_PKI/ca.pem" \
		"--etcd-cert $FLEET_PKI/client.pem --etcd-key $FLEET_PKI/client-key.pem"
}

# Node i talks to member i first, then the others.
fleet_endpoints_for() {
	local i=$1 j out="$FLEET_SCHEME://198.18.100.$1:2379"
	for j in "${FLEET_ETCD[@]}"; do
		[ "$j" = "$i" ] || out="$out,$FLEET_SCHEME://198.18.100.$j:2379"
	done
	echo "$out"
}

fctl() {
	local i=$1
	shift
	in_fns "n$i" "$LAB_BUILD/canaryctl" --bpffs "/sys/fs/bpf/canaryd-fleet-$LAB_ID-n$i" \
		--socket "$LAB_DIR/api-n$i.sock" "$@"
}

# fleet_get I EXPR: a Python expression over node i's rollout "web" (d).
fleet_get() { fctl "$1" -o json status web 2>/dev/null | jget "$2" 2>/dev/null; }

# fleet_weight I: the weight in node i's kernel map, in percent.
fleet_weight() {
	fctl "$1" -o json maps 2>/dev/null | jget '[s["weight"] for s in d["services"]][0]' 2>/dev/null
}

# fleet_wait SECONDS EXPR NODES...: until EXPR holds on every node given.
fleet_wait() {
	local secs=$1 expr=$2 deadline i all
	shift 2
	deadline=$(($(date +%s%N) + secs * 1000000000))
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		all=1
		for i in "$@"; do
			[ "$(fleet_get "$i" "bool($expr)")" = True ] || {
				all=0
				break
			}
		done
		[ "$all" = 1 ] && return 0
		sleep 0.05
	done
	for i in "$@"; do
		echo "# fleet_wait: n$i: ($expr) false after ${secs}s: $(fctl "$i" -o json status web 2>&1 | head -c 400)"
	done
	return 1
}

# fleet_leader: the node number that leads "web", as node 1..3 sees it.
fleet_leader() {
	local i l
	for i in "${FLEET_NODES[@]}"; do
		l=$(fleet_get "$i" 'd["fleet"]["leader"]')
		[ -n "$l" ] && [ "$l" != None ] && {
			echo "${l#n}"
			return 0
		}
	done
	return 1
}

# fleet_load_bg I OUT [labload flags]: node i's client, in the background.
fleet_load_bg() {
	local i=$1 out=$2
	shift 2
	nsenter --net=/run/netns/"$(fns "c$i")" "$LAB_BUILD/labload" \
		--target "$LAB_VIP:$LAB_PORT" "$@" >"$out" &
	echo $! >"$LAB_DIR/labload-c$i-$!.pid"
	FLEET_LOAD_PID=$!
}

# fleet_load_stop: end every client (each prints its final JSON line).
fleet_load_stop() {
	local f
	for f in "$LAB_DIR"/labload-*.pid; do
		[ -f "$f" ] || continue
		kill -TERM "$(cat "$f")" 2>/dev/null
		wait "$(cat "$f")" 2>/dev/null
		rm -f "$f"
	done
}

# fleet_agent_stop I: SIGTERM node i's agent and wait for it (it resigns).
fleet_agent_stop() {
	local pid
	pid=$(cat "$LAB_DIR/canaryd-n$1.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
}

fleet_down() {
	local f name i
	for f in "$LAB_DIR"/*.pid; do
		[ -f "$f" ] && kill -CONT "$(cat "$f")" 2>/dev/null
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	for i in $(seq 1 40); do
		local alive=0
		for f in "$LAB_DIR"/*.pid; do
			[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.05
	done
	for f in "$LAB_DIR"/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	for name in $(fleet_names); do
		ip netns pids "$(fns "$name")" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$(fns "$name")" 2>/dev/null
	done
	for i in "${FLEET_NODES[@]}"; do rm -rf "/sys/fs/bpf/canaryd-fleet-$LAB_ID-n$i"; done
	rm -rf "$LAB_DIR"
	return 0
}

# fleet_start STEPS ANALYSIS: the whole lab, etcd, backends and the three agents.
fleet_start() {
	lab_require_root
	command -v etcd >/dev/null || {
		lab_fail "etcd not installed (tools/install-deps.sh installs etcd-server)"
		exit 1
	}
	trap fleet_down EXIT
	fleet_up
	[ "$FLEET_TLS" = 1 ] && fleet_pki
	fleet_etcd_start || exit 1
	fleet_backends
	fleet_rollout "$1" "$2"
	local i
	for i in "${FLEET_NODES[@]}"; do fleet_agent "$i"; done
}
