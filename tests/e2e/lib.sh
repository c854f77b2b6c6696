#!/usr/bin/env bash
# Lab topology for canaryd's end-to-end tests, demo and benchmarks.
#
#   client (cl) ──┐                      ┌── st1  stable backend  198.18.1.2
#   198.18.0.2..  │  node (canaryd runs, ├── st2  stable backend  198.18.2.2
#                 └─ programs attach to  ├── cn1  canary backend  198.18.3.2
#                    every to-* link)    └── up   empty upstream (default route)
#
# The node is set up like a real host: forwarding, a default route, strict
# reverse-path filtering (rp_filter=1). Namespace names carry the PID so
# parallel runs do not collide; lab_down removes everything and is safe to
# call twice. Nothing touches the machine's own interfaces.
# Addresses come from 198.18.0.0/15, the range set aside for benchmarking.

LAB_ID=${LAB_ID:-$$}
LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_BUILD=${LAB_BUILD:-$LAB_ROOT/build}
LAB_DIR=${LAB_DIR:-/tmp/canaryd-lab-$LAB_ID}
LAB_BPFFS=/sys/fs/bpf/canaryd-lab-$LAB_ID
LAB_VIP=198.19.0.10
LAB_PORT=80
LAB_BACKEND_PORT=8080
LAB_CLIENT=198.18.0.2
LAB_BACKENDS=(st1 st2 cn1)
declare -A LAB_BACKEND_NET=([st1]=1 [st2]=2 [cn1]=3)

# The pinned maps' suffix, "_v<N>", read from the one place the layout
# version is spelt (headers/canary_consts.h), so a bump needs no edit here.
canary_pin_suffix() {
	local v
	v=$(sed -n 's/^#define CANARY_LAYOUT_VERSION \([0-9][0-9]*\)$/\1/p' \
		"${CANARY_CONSTS_H:-$LAB_ROOT/headers/canary_consts.h}")
	[ -n "$v" ] || {
		echo "lab: no CANARY_LAYOUT_VERSION in headers/canary_consts.h" >&2
		return 1
	}
	echo "_v$v"
}
# A map's pin name: pin_name conntrack -> conntrack_v<N>.
pin_name() { echo "$1$(canary_pin_suffix)"; }
ns() { echo "$1-$LAB_ID"; }
# Run in a lab namespace. nsenter (not "ip netns exec") keeps the real
# /sys mounted, so the agent and canaryctl see the bpffs pins.
in_ns() {
	local name=$1
	shift
	nsenter --net=/run/netns/"$(ns "$name")" "$@"
}
backend_addr() { echo "198.18.${LAB_BACKEND_NET[$1]}.2"; }

lab_fail() {
	echo "lab: $*" >&2
	return 1
}

lab_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		if [ "${CI:-}" = true ]; then
			lab_fail "needs root/CAP_BPF (CI=true: failing instead of skipping)"
			exit 1
		fi
		echo "skipped: needs root/CAP_BPF"
		exit 0
	fi
}

lab_mount_bpffs() {
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

# A veth pair between the node and a peer namespace, each side addressed.
lab_link() {
	local peer=$1 net=$2 node_if=to-$1
	ip -n "$(ns node)" link add "$node_if" type veth peer name eth0 netns "$(ns "$peer")"
	ip -n "$(ns node)" addr add "198.18.$net.1/24" dev "$node_if"
	ip -n "$(ns "$peer")" addr add "198.18.$net.2/24" dev eth0
	ip -n "$(ns node)" link set "$node_if" up
	ip -n "$(ns "$peer")" link set eth0 up
	ip -n "$(ns "$peer")" link set lo up
	ip -n "$(ns "$peer")" route add default via "198.18.$net.1"
	in_ns node sysctl -qw "net.ipv4.conf.$node_if.rp_filter=1"
}

lab_up() {
	local name
	lab_mount_bpffs
	mkdir -p "$LAB_DIR"
	for name in node cl up "${LAB_BACKENDS[@]}"; do
		ip netns add "$(ns "$name")"
	done
	ip -n "$(ns node)" link set lo up
	in_ns node sysctl -qw net.ipv4.ip_forward=1
	in_ns node sysctl -qw net.ipv4.conf.all.rp_filter=1
	in_ns node sysctl -qw net.ipv4.conf.default.rp_filter=1
	lab_link cl 0
	for name in "${LAB_BACKENDS[@]}"; do
		lab_link "$name" "${LAB_BACKEND_NET[$name]}"
	done
	lab_link up 255
	ip -n "$(ns node)" route add default via 198.18.255.2
	# More client addresses, for per-client affinity tests.
	local i
	for i in $(seq 3 20); do
		ip -n "$(ns cl)" addr add "198.18.0.$i/24" dev eth0
	done
}

# lab_backend NAME [labsrv flags...]: start the test HTTP server in a backend.
lab_backend() {
	local name=$1
	shift
	# The lab tools are not part of "make" (all); "make lab" builds them.
	[ -x "$LAB_BUILD/labsrv" ] && [ -x "$LAB_BUILD/labload" ] ||
		lab_fail "$LAB_BUILD/labsrv or labload missing: run make lab" || return 1
	# nsenter execs the program, so $! is the server's own PID.
	nsenter --net=/run/netns/"$(ns "$name")" "$LAB_BUILD/labsrv" \
		--listen "$(backend_addr "$name"):$LAB_BACKEND_PORT" \
		--name "$name" --control "$LAB_DIR/$name.ctl" "$@" \
		>>"$LAB_DIR/$name.log" 2>&1 &
	echo $! >"$LAB_DIR/$name.pid"
}

# Set a backend's behaviour while it runs (labsrv re-reads its control file).
lab_backend_set() {
	local name=$1
	shift
	printf '%s\n' "$@" >"$LAB_DIR/$name.ctl.tmp"
	mv "$LAB_DIR/$name.ctl.tmp" "$LAB_DIR/$name.ctl"
}

lab_endpoints_yaml() { lab_endpoints "$@" | sed 's/\([^,]*\)/"\1"/g; s/,/, /g'; }

lab_endpoints() {
	local out="" name
	for name in "$@"; do
		out="$out${out:+,}$(backend_addr "$name"):$LAB_BACKEND_PORT"
	done
	echo "$out"
}

# The rollout scenarios' analysis: both gates and both comparisons. The
# latency gate is a p95: a p99 gate is judged over at least 1,000 latencies,
# 20 s of the lab's canary traffic at 10%.
LAB_ANALYSIS_ALL="{interval: 1s, minRequests: 20, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.02}, {name: latencyP95, max: 250ms},
                      {name: compareErrorRate}, {name: compareLatency, maxIncrease: 0.5}]}"

# lab_steps_10_50_100 PAUSE: weights 10, 50 and 100, a timed pause after the first two.
lab_steps_10_50_100() {
	echo "[{setWeight: 10}, {pause: {duration: $1}}, {setWeight: 50}, {pause: {duration: $1}},
          {setWeight: 100}]"
}

LAB_CONFIG_DIR=$LAB_DIR/config
LAB_STATE_DIR=$LAB_DIR/state
LAB_SOCKET=$LAB_DIR/api.sock

# lab_rollout NAME VIP STEPS [ANALYSIS] [EXTRA]: write a Rollout for the lab's
# backends to $LAB_CONFIG_DIR/NAME.yaml. STEPS is the YAML of the steps list,
# e.g. "[{setWeight: 30}, {pause: {}}]"; ANALYSIS the analysis mapping.
lab_rollout() {
	local name=$1 vip=$2 steps=$3 analysis=${4:-"{minRequests: 20}"} extra=${5:-}
	mkdir -p "$LAB_CONFIG_DIR"
	cat >"$LAB_CONFIG_DIR/$name.yaml.tmp" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: $name
spec:
  service: {vip: $vip, port: $LAB_PORT, protocol: http}
  stable: {revision: v1, endpoints: [$(lab_endpoints_yaml st1 st2)]}
  canary: {revision: ${LAB_CANARY_REVISION:-v2}, endpoints: [$(lab_endpoints_yaml cn1)]}
  strategy:
    steps: $steps
  analysis: $analysis
$extra
YAML
	mv "$LAB_CONFIG_DIR/$name.yaml.tmp" "$LAB_CONFIG_DIR/$name.yaml"
}

# lab_agent [canaryd flags...]: start canaryd in the node namespace, wait until ready.
# Its rollouts come from $LAB_CONFIG_DIR, or with LAB_ROLLOUTS_FROM=kube from the
# Kubernetes API (--rollouts-from kube, no --config).
lab_agent() {
	local ready_before=0 source=(--config "$LAB_CONFIG_DIR")
	[ -n "${LAB_ROLLOUTS_FROM:-}" ] && source=(--rollouts-from "$LAB_ROLLOUTS_FROM")
	[ -f "$LAB_DIR/canaryd.log" ] && ready_before=$(grep -c 'msg=ready' "$LAB_DIR/canaryd.log")
	# nsenter execs canaryd, so $! is the agent's own PID (kill -9 hits it).
	nsenter --net=/run/netns/"$(ns node)" "$LAB_BUILD/canaryd" --bpffs "$LAB_BPFFS" \
		--host-cgroup off --interfaces 'to-*' \
		"${source[@]}" --state-dir "$LAB_STATE_DIR" --api-socket "$LAB_SOCKET" \
		--tick-ms 100 "$@" >>"$LAB_DIR/canaryd.log" 2>&1 &
	echo $! >"$LAB_DIR/canaryd.pid"
	local i ready
	for i in $(seq 1 100); do
		ready=$(grep -sc 'msg=ready' "$LAB_DIR/canaryd.log") # nothing while there is no log yet
		[ "${ready:-0}" -gt "$ready_before" ] && return 0
		kill -0 "$(cat "$LAB_DIR/canaryd.pid")" 2>/dev/null || break
		sleep 0.05
	done
	cat "$LAB_DIR/canaryd.log" >&2
	lab_fail "canaryd did not become ready"
}

# lab_status NAME EXPR: a field of the rollout from the API, e.g. 'd["phase"]'.
lab_status() { canaryctl -o json status "$1" | jget "$2"; }

# lab_wait NAME EXPR SECONDS: wait until the Python expression over the rollout
# (bound to d) is true; fails after SECONDS.
lab_wait() {
	local name=$1 expr=$2 secs=$3 deadline
	# A deadline, not a count of polls: on a loaded machine each poll is slow.
	deadline=$(($(date +%s%N) + secs * 1000000000))
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		[ "$(canaryctl -o json status "$name" 2>/dev/null | jget "bool($expr)" 2>/dev/null)" = True ] &&
			return 0
		sleep 0.05
	done
	echo "# lab_wait: $name: ($expr) still false after ${secs}s: $(canaryctl -o json status "$name" 2>&1 | head -c 600)"
	return 1
}

lab_agent_stop() {
	local pid
	pid=$(cat "$LAB_DIR/canaryd.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	local i
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
}

canaryctl() {
	in_ns node "$LAB_BUILD/canaryctl" --bpffs "$LAB_BPFFS" --socket "$LAB_SOCKET" "$@"
}

# lab_load [labload flags...]: client traffic to the VIP; prints labload's JSON.
lab_load() {
	in_ns cl "$LAB_BUILD/labload" --target "$LAB_VIP:$LAB_PORT" "$@"
}

# lab_load_bg OUTFILE [labload flags...]: the same in the background. Sets
# LAB_LOAD_PID to labload's own PID (nsenter execs it), so signals such as
# SIGUSR1 (snapshot) reach labload and not a shell.
lab_load_bg() {
	local out=$1
	shift
	nsenter --net=/run/netns/"$(ns cl)" "$LAB_BUILD/labload" --target "$LAB_VIP:$LAB_PORT" \
		"$@" >"$out" &
	LAB_LOAD_PID=$!
	echo "$LAB_LOAD_PID" >"$LAB_DIR/labload-$LAB_LOAD_PID.pid"
}

lab_down() {
	local f name
	for f in "$LAB_DIR"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	# The agent's clean exit (threads joined) takes up to ~150 ms: wait for it, 2 s at most.
	local i alive
	for i in $(seq 1 40); do
		alive=0
		for f in "$LAB_DIR"/*.pid; do
			[ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.05
	done
	for f in "$LAB_DIR"/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	for name in node cl up "${LAB_BACKENDS[@]}"; do
		ip netns pids "$(ns "$name")" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$(ns "$name")" 2>/dev/null
	done
	# LAB_KEEP=DIR: keep the lab's logs and state for a post-mortem.
	[ -n "${LAB_KEEP:-}" ] && [ -d "$LAB_DIR" ] && cp -r "$LAB_DIR" "$LAB_KEEP" 2>/dev/null
	# Programs went with the namespaces' interfaces; the pins are ours to remove.
	rm -rf "$LAB_BPFFS"
	rm -rf "$LAB_DIR"
	return 0
}

# jget EXPR: evaluate a Python expression over the JSON document on stdin,
# bound to d, e.g. jget 'd["requests"] - d["ok"]'. The lab's one JSON reader.
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# lab_failed FILE: failed requests in labload's last (final) JSON line of FILE.
lab_failed() { tail -1 "$1" | jget 'd["requests"] - d["ok"]'; }

# TAP-style checks: "ok - what" or "not ok - what (details)".
LAB_FAILURES=0
check() {
	local desc=$1
	shift
	if "$@"; then
		echo "ok - $desc"
	else
		echo "not ok - $desc"
		LAB_FAILURES=$((LAB_FAILURES + 1))
	fi
}
# Numeric comparisons with python3, so floats work: expect "A <= B" etc.
expect() { python3 -c "import sys; sys.exit(0 if ($*) else 1)"; }
lab_finish() { [ "$LAB_FAILURES" -eq 0 ]; }

# Start a standard lab: three backends, and canaryd with rollout "web" held
# at WEIGHT percent (a setWeight step, then an indefinite pause).
# Extra arguments go to canaryd (e.g. --attach xdp).
lab_standard() {
	local weight=$1
	shift
	lab_require_root
	trap lab_down EXIT
	lab_up
	local b
	for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
	lab_wait_backends
	lab_rollout web "$LAB_VIP" "[{setWeight: $weight}, {pause: {}}]"
	lab_agent "$@"
	lab_wait web "d['weight'] == $weight" 5
}

# lab_with_warm_backends: a lab (removed on exit) whose backends serve and
# have been warmed up directly, not through the VIP: a cold labsrv's first
# answers are slow, and at 10% the canary's first samples would be judged
# against a stable whose own cold start is diluted 9 times more.
lab_with_warm_backends() {
	local b
	lab_require_root
	trap lab_down EXIT
	lab_up
	for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
	lab_wait_backends
	for b in "${LAB_BACKENDS[@]}"; do
		in_ns cl "$LAB_BUILD/labload" --target "$(backend_addr "$b"):$LAB_BACKEND_PORT" \
			--mode newconn --connections 2 --requests 300 --duration-s 3 >/dev/null
	done
}

lab_wait_backends() {
	local b i
	for b in "${LAB_BACKENDS[@]}"; do
		for i in $(seq 1 100); do
			grep -q listening "$LAB_DIR/$b.log" 2>/dev/null && break
			sleep 0.02
		done
	done
}

# Per-version value from "canaryctl -o json maps", e.g. metric canary requests
metric() {
	canaryctl -o json maps | python3 -c '
import json, sys
svc = json.load(sys.stdin)["services"][0]
m = svc[sys.argv[1]]["metrics"]
path = sys.argv[2].split(".")
for p in path:
    m = m[p]
print(m)' "$1" "$2"
}
