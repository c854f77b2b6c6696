#!/usr/bin/env bash
# End-to-end benchmark: HTTP through the lab's node, eight ways, same backends.
#
#   direct    client -> st1 198.18.1.2:8080, routed by the node, no translation
#   canaryd1  client -> VIP 198.19.0.11:80, canaryd with st1 as the only stable
#             endpoint at canary weight 0: direct's baseline plus translation
#   direct3   the split without translation: three wrk processes started
#             together, 14/14/4 of the 32 connections straight to st1/st2/cn1
#   canaryd   client -> VIP 198.19.0.10:80, canaryd splitting 90/10 (tc)
#   canaryd3  canaryd with direct3's client: three wrk processes, 14/14/4
#             connections, all to the VIP (the control for direct3's client)
#   canaryd3tcx  canaryd3 with the programs attached by tcx (--attach tcx),
#             not as clsact filters: no classifier layers per packet
#   iptables  client -> 198.19.0.20:80, kube-proxy-style DNAT with
#             "-m statistic --mode random" (st1 45%, st2 45%, cn1 10%)
#   haproxy   client -> 198.18.0.1:8081, haproxy on the node (weights 45/45/10),
#             an L7 proxy standing in for a mesh sidecar
#
# Backends are nginx (one worker each) answering a small body. Each variant
# runs with keep-alive (wrk's default) and with a new connection per request
# (Connection: close): wrk -t2 -c32 -d10s --latency (direct3: three wrk -t1),
# 3 rounds (the variants interleaved, so drift hits all of them alike;
# the second round backwards, so each runs on both sides of its neighbours),
# medians reported. canaryd, canaryd3 and canaryd3tcx are compared with
# direct3, canaryd1 with direct.
# Only one of canaryd, the iptables rules and haproxy exists at a time: the
# other variants never pay for canaryd's programs (or conntrack), and
# canaryd's row is not measured under someone else's.
#
# usage: tools/bench/e2e.sh [--quick] [--json FILE] [--profile DIR]
#        E2E_VARIANTS="canaryd3 direct3" tools/bench/e2e.sh ...
#   --quick   1 round of 2 s runs (a smoke run, ~30 s in all)
#   --json    where to write the results (default build/bench/e2e.json)
#   --profile after the rounds, one more 10-s (--quick: 2-s) keep-alive run of direct3,
#             canaryd3, canaryd3tcx and iptables each under "perf record -e cpu-clock
#             -a" (not measured with the rounds: perf costs too), and a
#             table of CPU per request by symbol group (e2e_profile.py);
#             perf data, wrk outputs and profile.json in DIR
#   E2E_VARIANTS  the variants to run, each once, the odd rounds in this order
#             (default: all eight, in the order of VARIANTS below); the report leaves out
#             the comparisons whose variant or baseline did not run
#   E2E_ORDER  alternate (default): even rounds run the list backwards;
#             fixed: every round in the list's order
#
# Needs root (skips otherwise; fails under CI=true) and wrk, nginx, haproxy,
# iptables (tools/install-deps.sh installs them). Goals are reported, never
# asserted: the exit status is 0 unless the benchmark itself broke.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source tests/e2e/lib.sh

QUICK=0
JSON=build/bench/e2e.json
PROFILE_DIR=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--json)
		[ $# -ge 2 ] || { echo "usage: $0 [--quick] [--json FILE] [--profile DIR]" >&2; exit 2; }
		JSON=$2
		shift
		;;
	--profile)
		[ $# -ge 2 ] || { echo "usage: $0 [--quick] [--json FILE] [--profile DIR]" >&2; exit 2; }
		PROFILE_DIR=$2
		shift
		;;
	-h | --help)
		sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) echo "usage: $0 [--quick] [--json FILE] [--profile DIR]" >&2; exit 2 ;;
	esac
	shift
done

THREADS=2
CONNS=32
if [ $QUICK = 1 ]; then
	DURATION=2 ROUNDS=1 IDLE_SAMPLE=1
else
	DURATION=10 ROUNDS=3 IDLE_SAMPLE=3
fi
WARMUP=1                    # seconds of keep-alive traffic after a variant is set up
IPT_VIP=198.19.0.20
HAPROXY_ADDR=198.18.0.1:8081
VIP1=198.19.0.11 # canaryd1's service: st1 only
# direct3 and canaryd3: connections per wrk process (direct3: to st1 st2 cn1),
# the split's 45/45/10 of 32.
DIRECT3_CONNS=(14 14 4)
# Run order within a round: each fair baseline next to what it is compared with.
ALL_VARIANTS=(direct canaryd1 direct3 canaryd3 canaryd3tcx canaryd iptables haproxy)
VARIANTS=("${ALL_VARIANTS[@]}")
if [ -n "${E2E_VARIANTS:-}" ]; then
	read -ra VARIANTS <<<"$E2E_VARIANTS"
	for v in "${VARIANTS[@]}"; do
		[[ " ${ALL_VARIANTS[*]} " == *" $v "* ]] ||
			{ echo "e2e: E2E_VARIANTS: unknown variant '$v' (known: ${ALL_VARIANTS[*]})" >&2; exit 2; }
		[ "$(printf '%s\n' "${VARIANTS[@]}" | grep -cx "$v")" = 1 ] ||
			{ echo "e2e: E2E_VARIANTS: '$v' given twice (its client port range is its own)" >&2; exit 2; }
	done
fi
ORDER=${E2E_ORDER:-alternate}
case $ORDER in
alternate | fixed) ;;
*) echo "e2e: E2E_ORDER: '$ORDER' is neither alternate nor fixed" >&2; exit 2 ;;
esac

die() {
	echo "e2e: $*" >&2
	exit 1
}

lab_require_root
for tool in wrk nginx haproxy iptables; do
	command -v "$tool" >/dev/null && continue
	echo "e2e: $tool missing; running tools/install-deps.sh" >&2
	tools/install-deps.sh >&2 || die "tools/install-deps.sh failed"
	break
done
for tool in wrk nginx haproxy iptables curl python3; do
	command -v "$tool" >/dev/null || die "$tool not found (tools/install-deps.sh installs it)"
done
if [ -n "$PROFILE_DIR" ]; then
	command -v perf >/dev/null || die "--profile needs perf (Debian's linux-perf)"
	mkdir -p "$PROFILE_DIR" || die "cannot create $PROFILE_DIR"
	PROFILE_DIR=$(cd "$PROFILE_DIR" && pwd)
fi
for prog in canaryd canaryctl; do
	[ -x "$LAB_BUILD/$prog" ] || die "$LAB_BUILD/$prog missing: run make first"
done
mkdir -p "$(dirname "$JSON")" || die "cannot create $(dirname "$JSON")"
JSON=$(cd "$(dirname "$JSON")" && pwd)/$(basename "$JSON")

# --- clean-up: everything we start is in $LAB_DIR/*.pid (lab_down kills
# those too); the iptables rules and canaryd's programs live in the node
# namespace, which lab_down deletes. We remove them ourselves first anyway.
HAPROXY_PID=
NGINX_PIDS=()
CANARYD_ON=0
IPT_ON=0
stop_pid() { # stop_pid PID: TERM, wait up to 2 s, then KILL
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	return 0
}
cleanup() {
	trap - EXIT INT TERM HUP
	[ $CANARYD_ON = 1 ] && canaryd_down
	[ $IPT_ON = 1 ] && iptables_down
	[ -n "$HAPROXY_PID" ] && haproxy_down
	local pid
	for pid in "${NGINX_PIDS[@]}"; do stop_pid "$pid"; done
	lab_down
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- backends: nginx, one worker, a small body, everything in $LAB_DIR.
nginx_up() {
	local b=$1 conf addr
	conf=$LAB_DIR/nginx-$b.conf
	addr=$(backend_addr "$b")
	mkdir -p "$LAB_DIR/nginx-$b"
	cat >"$conf" <<EOF
daemon off;
worker_processes 1;
pid $LAB_DIR/nginx-$b/nginx.pid;
error_log $LAB_DIR/nginx-$b/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $LAB_DIR/nginx-$b/body;
    proxy_temp_path $LAB_DIR/nginx-$b/proxy;
    fastcgi_temp_path $LAB_DIR/nginx-$b/fastcgi;
    uwsgi_temp_path $LAB_DIR/nginx-$b/uwsgi;
    scgi_temp_path $LAB_DIR/nginx-$b/scgi;
    server {
        listen $addr:$LAB_BACKEND_PORT backlog=4096;
        location = /nginx_status { stub_status; }
        location / { default_type text/plain; return 200 "hello from $b\n"; }
    }
}
EOF
	# nsenter execs nginx (daemon off: the master stays in the foreground),
	# so $! is the master's PID.
	nsenter --net=/run/netns/"$(ns "$b")" nginx -e "$LAB_DIR/nginx-$b/error.log" \
		-c "$conf" -p "$LAB_DIR/nginx-$b" >>"$LAB_DIR/nginx-$b.log" 2>&1 &
	NGINX_PIDS+=($!)
	echo $! >"$LAB_DIR/nginx-$b.pid"
}

# wait_listen NS ADDR:PORT: bounded wait (5 s) for a listening socket.
wait_listen() {
	local name=$1 addr=$2 i
	for i in $(seq 1 100); do
		[ -n "$(in_ns "$name" ss -Hltn "src $addr" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	return 1
}

# Requests each backend's nginx has served (stub_status), as "st1 st2 cn1".
nginx_counts() {
	local b out=()
	for b in "${LAB_BACKENDS[@]}"; do
		out+=("$(in_ns "$b" curl -s --max-time 2 "http://$(backend_addr "$b"):$LAB_BACKEND_PORT/nginx_status" |
			awk 'NR == 3 {print $3}')")
	done
	echo "${out[@]}"
}

# --- the variants' set-up and tear-down.
canaryd_up() { # [canaryd flags...]
	lab_agent "$@" || die "canaryd did not start"
	CANARYD_ON=1
	lab_wait web "d['weight'] == 10" 10 || die "rollout web did not reach weight 10"
}
# canaryd1: its own config and state directories, rollout web1 only.
canaryd1_up() {
	LAB_CONFIG_DIR=$LAB_DIR/config1 LAB_STATE_DIR=$LAB_DIR/state1 lab_agent || die "canaryd (web1) did not start"
	CANARYD_ON=1
	# At weight 0 the first step waits for canary requests that never come:
	# the rollout stays Progressing at step 0, weight 0, which is the point.
	lab_wait web1 "d['weight'] == 0 and d['phase'] == 'Progressing'" 10 || die "rollout web1 not at weight 0"
	local i
	for i in $(seq 1 50); do
		[ "$(in_ns cl curl -s --max-time 1 "http://$VIP1:$LAB_PORT/")" = "hello from st1" ] && return 0
		sleep 0.1
	done
	die "VIP $VIP1 does not answer from st1"
}
canaryd_down() {
	lab_agent_stop
	rm -f "$LAB_DIR/canaryd.pid"
	# The agent leaves its programs attached on exit ("fail static"): detach
	# them and remove the pins, so the next variant runs without canaryd.
	in_ns node "$LAB_BUILD/canaryd" --cleanup --bpffs "$LAB_BPFFS" >>"$LAB_DIR/canaryd.log" 2>&1 ||
		echo "e2e: canaryd --cleanup failed (see $LAB_DIR/canaryd.log)" >&2
	CANARYD_ON=0
	# A program left on a hook would be paid by every later variant.
	local left
	left=$(canaryctl -o json attachments 2>&1)
	[ "$left" = "[]" ] || die "canaryd's programs still attached after --cleanup: $left"
}

ipt() { in_ns node iptables -w 5 "$@"; }
iptables_up() {
	# The shape kube-proxy writes: service chain, then one random-probability
	# rule per endpoint (each probability of what is left), then DNAT.
	IPT_ON=1
	ipt -t nat -N KUBE-SERVICES &&
		ipt -t nat -N KUBE-SVC-WEB &&
		ipt -t nat -N KUBE-SEP-ST1 &&
		ipt -t nat -N KUBE-SEP-ST2 &&
		ipt -t nat -N KUBE-SEP-CN1 &&
		ipt -t nat -A PREROUTING -j KUBE-SERVICES &&
		ipt -t nat -A KUBE-SERVICES -d "$IPT_VIP/32" -p tcp -m tcp --dport "$LAB_PORT" -j KUBE-SVC-WEB &&
		ipt -t nat -A KUBE-SVC-WEB -m statistic --mode random --probability 0.45000000000 -j KUBE-SEP-ST1 &&
		ipt -t nat -A KUBE-SVC-WEB -m statistic --mode random --probability 0.81818181818 -j KUBE-SEP-ST2 &&
		ipt -t nat -A KUBE-SVC-WEB -j KUBE-SEP-CN1 &&
		ipt -t nat -A KUBE-SEP-ST1 -p tcp -m tcp -j DNAT --to-destination "$(backend_addr st1):$LAB_BACKEND_PORT" &&
		ipt -t nat -A KUBE-SEP-ST2 -p tcp -m tcp -j DNAT --to-destination "$(backend_addr st2):$LAB_BACKEND_PORT" &&
		ipt -t nat -A KUBE-SEP-CN1 -p tcp -m tcp -j DNAT --to-destination "$(backend_addr cn1):$LAB_BACKEND_PORT" ||
		die "iptables rules could not be added"
}
iptables_down() {
	ipt -t nat -F
	ipt -t nat -X
	IPT_ON=0
}
# Connections in the node's conntrack table (0 when conntrack is off there).
ct_count() { in_ns node cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0; }

haproxy_up() {
	local conf=$LAB_DIR/haproxy.cfg
	cat >"$conf" <<EOF
global
    maxconn 4096
defaults
    mode http
    maxconn 4096
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind $HAPROXY_ADDR
    default_backend web
backend web
    balance roundrobin
    server st1 $(backend_addr st1):$LAB_BACKEND_PORT weight 45
    server st2 $(backend_addr st2):$LAB_BACKEND_PORT weight 45
    server cn1 $(backend_addr cn1):$LAB_BACKEND_PORT weight 10
EOF
	# -db: stay in the foreground; nsenter execs haproxy, so $! is its PID.
	nsenter --net=/run/netns/"$(ns node)" haproxy -db -f "$conf" >>"$LAB_DIR/haproxy.log" 2>&1 &
	HAPROXY_PID=$!
	echo "$HAPROXY_PID" >"$LAB_DIR/haproxy.pid"
	wait_listen node "$HAPROXY_ADDR" || { cat "$LAB_DIR/haproxy.log" >&2; die "haproxy did not listen"; }
}
haproxy_down() {
	stop_pid "$HAPROXY_PID"
	rm -f "$LAB_DIR/haproxy.pid"
	HAPROXY_PID=
}

variant_url() {
	case $1 in
	direct) echo "http://$(backend_addr st1):$LAB_BACKEND_PORT/" ;;
	direct3) echo "http://$(backend_addr st1):$LAB_BACKEND_PORT/ http://$(backend_addr st2):$LAB_BACKEND_PORT/ http://$(backend_addr cn1):$LAB_BACKEND_PORT/" ;;
	canaryd) echo "http://$LAB_VIP:$LAB_PORT/" ;;
	canaryd1) echo "http://$VIP1:$LAB_PORT/" ;;
	canaryd3 | canaryd3tcx) echo "http://$LAB_VIP:$LAB_PORT/ http://$LAB_VIP:$LAB_PORT/ http://$LAB_VIP:$LAB_PORT/" ;;
	iptables) echo "http://$IPT_VIP:$LAB_PORT/" ;;
	haproxy) echo "http://$HAPROXY_ADDR/" ;;
	esac
}
# Each variant gets its own client port range. With Connection: close the
# backend closes first and keeps the connection in TIME_WAIT for 60 s; the
# client's TCP timestamps (and ISNs) are keyed on the address it dialled, so
# a SYN for the VIP that lands on a 4-tuple another variant left in TIME_WAIT
# (dialled at another address) fails PAWS, is dropped, and waits 1 s for a
# retransmit: disjoint ranges keep one variant's leftovers out of the next.
variant_ports() {
	local i
	for i in "${!ALL_VARIANTS[@]}"; do
		[ "${ALL_VARIANTS[$i]}" = "$1" ] && echo "$((1024 + i * 8000)) $((1024 + i * 8000 + 7999))"
	done
}
variant_up() {
	in_ns cl sysctl -qw net.ipv4.ip_local_port_range="$(variant_ports "$1")"
	case $1 in
	canaryd | canaryd3) canaryd_up ;;
	canaryd3tcx) canaryd_up --attach tcx ;;
	canaryd1) canaryd1_up ;;
	iptables) iptables_up ;;
	haproxy) haproxy_up ;;
	esac
}
variant_down() {
	case $1 in
	canaryd | canaryd1 | canaryd3 | canaryd3tcx) canaryd_down ;;
	iptables) iptables_down ;;
	haproxy) haproxy_down ;;
	esac
}

cpu_line() { head -1 /proc/stat; }

# CPU of the lab's own processes, as "PID:ticks ..." (utime+stime): nginx
# masters and workers, haproxy, canaryd, and the ksoftirqd threads (packets
# whose softirq work was deferred). With tick-based accounting (no
# IRQ_TIME_ACCOUNTING), softirq work done on a process's time is in its
# stime. wrk's own time comes from the shell's "times" (children).
# lab_pids: "ROLE PID" per process of the lab (wrk is counted apart, by
# the shell's "times"): nginx-st1 for st1's master and worker, and so on.
lab_pids() {
	local i p
	for i in "${!NGINX_PIDS[@]}"; do
		for p in "${NGINX_PIDS[$i]}" $(pgrep -P "${NGINX_PIDS[$i]}"); do
			echo "nginx-${LAB_BACKENDS[$i]} $p"
		done
	done
	[ -n "$HAPROXY_PID" ] && echo "haproxy $HAPROXY_PID"
	[ $CANARYD_ON = 1 ] && echo "agent $(cat "$LAB_DIR/canaryd.pid" 2>/dev/null)"
	for p in $(pgrep '^ksoftirqd/'); do echo "ksoftirqd $p"; done
}
# lab_ticks: "ROLE/PID:TICKS" (utime + stime) per process of lab_pids.
lab_ticks() {
	local role p
	lab_pids | while read -r role p; do
		awk -v k="$role/$p" '{print k ":" ($14 + $15)}' /proc/"$p"/stat 2>/dev/null
	done | tr '\n' ' '
}

# wrk_to VARIANT SECONDS OUT [wrk args...]: wrk against the variant, output in
# OUT, bounded by SECONDS + 20; returns wrk's exit status. direct3 starts three
# wrk -t1 together, one per backend with DIRECT3_CONNS connections (canaryd3
# and canaryd3tcx the same three to the VIP), waits for all three, and puts their outputs one
# after the other in OUT, each after a "### wrk part" line; its status is the
# last non-zero one.
wrk_to() {
	local variant=$1 secs=$2 out=$3 url i rc=0 pids=()
	shift 3
	if [ "$variant" = direct3 ] || [ "${variant#canaryd3}" != "$variant" ]; then
		local urls=()
		i=0
		for url in $(variant_url "$variant"); do
			in_ns cl timeout -k 2 $((secs + 20)) wrk -t1 -c"${DIRECT3_CONNS[$i]}" -d"${secs}s" "$@" \
				"$url" >"$out.$i" 2>&1 &
			pids+=($!)
			urls+=("$url")
			i=$((i + 1))
		done
		for i in "${!pids[@]}"; do
			wait "${pids[$i]}" || rc=$?
		done
		for i in "${!pids[@]}"; do
			echo "### wrk part $i: ${urls[$i]}, ${DIRECT3_CONNS[$i]} connections"
			cat "$out.$i"
			rm -f "$out.$i"
		done >"$out"
		return $rc
	fi
	in_ns cl timeout -k 2 $((secs + 20)) wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" "$@" \
		"$(variant_url "$variant")" >"$out" 2>&1
}

# wrk's done() hook: the latency quantiles (microseconds) at every 0.1% up to
# 89.9% and every 0.01% from 90% to 99.99%, and the maximum, so that the
# latencies of direct3's (canaryd3's) three processes can be merged. (wrk's
# latency(i), the i-th distinct value, scans the histogram from the start on
# every call: the whole histogram takes minutes with a long tail.)
HIST_LUA=$LAB_DIR/quantiles.lua

# run_wrk VARIANT MODE ROUND: one measured run; appends a line to the manifest.
run_wrk() {
	local variant=$1 mode=$2 round=$3 out hdr=() before after counts_before counts_after ct
	local ticks_before ticks_after
	out=$LAB_DIR/wrk-$variant-$mode-$round.txt
	[ "$mode" = newconn ] && hdr=(-H "Connection: close")
	counts_before=$(nginx_counts)
	ticks_before=$(lab_ticks)
	before=$(cpu_line)
	# "times" in this shell (not a subshell): its children line grows by
	# exactly what wrk (and nsenter/timeout) used between the two calls.
	times >"$LAB_DIR/times.before"
	wrk_to "$variant" "$DURATION" "$out" --latency -s "$HIST_LUA" "${hdr[@]}"
	local rc=$?
	times >"$LAB_DIR/times.after"
	after=$(cpu_line)
	ticks_after=$(lab_ticks)
	counts_after=$(nginx_counts)
	ct=$(ct_count)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$mode" "$round" \
		"$rc" "$out" "$before" "$after" "$counts_before" "$counts_after" "$ct" \
		"$ticks_before" "$ticks_after" "$(sed -n 2p "$LAB_DIR/times.before")" \
		"$(sed -n 2p "$LAB_DIR/times.after")" >>"$MANIFEST"
	python3 - "$out" "$variant" "$mode" "$round" <<'PY'
import re, sys, time
t = open(sys.argv[1]).read()
rps = [float(x) for x in re.findall(r"Requests/sec:\s*([\d.]+)", t)]
p99 = re.findall(r"^\s*99%\s+(\S+)", t, re.M)
err = re.findall(r"Socket errors: (.*)", t)
n2 = re.findall(r"Non-2xx or 3xx responses: (\d+)", t)
print("  %s %-8s %-9s round %s: %s rps, p99 %s%s%s" % (time.strftime("%H:%M:%S"), sys.argv[2], sys.argv[3], sys.argv[4],
      "%.2f" % sum(rps) if rps else "?", "/".join(p99) if p99 else "?",
      ", socket errors: " + "; ".join(err) if err else "", ", non-2xx: " + "/".join(n2) if n2 else ""))
PY
}

# --- the lab.
echo "== e2e: building the lab (LAB_ID $LAB_ID)"
lab_up || die "lab_up failed"
MANIFEST=$LAB_DIR/manifest.tsv
: >"$MANIFEST"
# wrk with Connection: close opens ~10^5 connections per run: TIME_WAIT reuse
# in the client namespace (only there); port ranges per variant (variant_ports).
in_ns cl sysctl -qw net.ipv4.tcp_tw_reuse=1
for b in "${LAB_BACKENDS[@]}"; do nginx_up "$b"; done
for b in "${LAB_BACKENDS[@]}"; do
	wait_listen "$b" "$(backend_addr "$b"):$LAB_BACKEND_PORT" ||
		{ cat "$LAB_DIR/nginx-$b/error.log" "$LAB_DIR/nginx-$b.log" >&2; die "nginx in $b did not listen"; }
done
lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}]"
# canaryd1's rollout, alone in its own config directory: st1 the only stable
# endpoint, weight 0, so every connection goes to st1, as direct's do. (A
# canary endpoint is required; at weight 0 it gets no connection.)
mkdir -p "$LAB_DIR/config1"
cat >"$LAB_DIR/config1/web1.yaml" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: web1
spec:
  service: {vip: $VIP1, port: $LAB_PORT, protocol: http}
  stable: {revision: v1, endpoints: [$(lab_endpoints_yaml st1)]}
  canary: {revision: v2, endpoints: [$(lab_endpoints_yaml cn1)]}
  strategy:
    steps: [{setWeight: 0}, {pause: {}}]
  analysis: {minRequests: 20}
YAML
cat >"$HIST_LUA" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("QUANTILES_BEGIN %d\n", summary.requests))
  for i = 1, 899 do
    io.write(string.format("%.2f %d\n", i / 10, latency:percentile(i / 10)))
  end
  for i = 9000, 9999 do
    io.write(string.format("%.2f %d\n", i / 100, latency:percentile(i / 100)))
  end
  io.write(string.format("100.00 %d\nQUANTILES_END\n", latency.max))
end
LUA

LOAD_BEFORE=$(cat /proc/loadavg)
IDLE_BEFORE=$(cpu_line)
sleep "$IDLE_SAMPLE"
IDLE_AFTER=$(cpu_line)
echo "== e2e: load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS round(s)"

START=$(date +%s)
# round_order ROUND: the variants in the order that round runs them. What
# ran just before a variant moved its rps by up to 20% here
# (docs/benchmarks.md): running even rounds backwards puts each variant on
# both sides of its neighbours, its baseline included.
round_order() {
	local i
	if [ "$ORDER" = alternate ] && [ $(($1 % 2)) = 0 ]; then
		for ((i = ${#VARIANTS[@]} - 1; i >= 0; i--)); do echo "${VARIANTS[$i]}"; done
	else
		printf '%s\n' "${VARIANTS[@]}"
	fi
}
for round in $(seq 1 "$ROUNDS"); do
	for v in $(round_order "$round"); do
		variant_up "$v"
		# Warm-up, not measured: neighbour entries, accept queues, caches.
		wrk_to "$v" "$WARMUP" "$LAB_DIR/warmup.txt"
		for mode in keepalive newconn; do
			run_wrk "$v" "$mode" "$round"
		done
		if [ "${v#canaryd}" != "$v" ]; then
			canaryctl -o json maps >"$LAB_DIR/$v-maps-$round.json" 2>/dev/null
		fi
		variant_down "$v"
	done
done
ELAPSED=$(($(date +%s) - START))
LOAD_AFTER=$(cat /proc/loadavg)
# --profile: one keep-alive run per profiled variant under perf, after the
# measured rounds. cpu-clock is a software event (no PMU needed, as on this
# kind of VM); PROFILE_HZ samples per second per CPU.
PROFILE_VARIANTS=()
for v in direct3 canaryd3 canaryd3tcx iptables; do
	[[ " ${VARIANTS[*]} " == *" $v "* ]] && PROFILE_VARIANTS+=("$v")
done
PROFILE_SECONDS=$((QUICK ? 2 : 10))
PROFILE_HZ=1000
profile_pass() {
	local v perf_pid
	echo "$PROFILE_HZ" >"$PROFILE_DIR/hz"
	for v in "${PROFILE_VARIANTS[@]}"; do
		variant_up "$v"
		wrk_to "$v" "$WARMUP" "$LAB_DIR/warmup.txt"
		perf record -q -e cpu-clock -F "$PROFILE_HZ" -a -o "$PROFILE_DIR/$v.data" \
			-- sleep "$PROFILE_SECONDS" >"$PROFILE_DIR/$v-perf.log" 2>&1 &
		perf_pid=$!
		wrk_to "$v" "$PROFILE_SECONDS" "$PROFILE_DIR/$v-wrk.txt"
		wait "$perf_pid" || die "perf record failed for $v (see $PROFILE_DIR/$v-perf.log)"
		variant_down "$v"
	done
}
[ -n "$PROFILE_DIR" ] && profile_pass

# The same idle sample after the runs (the lab's nginx idle, nothing else of ours).
IDLE2_BEFORE=$(cpu_line)
sleep "$IDLE_SAMPLE"
IDLE2_AFTER=$(cpu_line)

# --- medians, ratios, goals: Markdown on stdout, JSON to $JSON.
python3 - "$MANIFEST" "$JSON" "$QUICK" "$THREADS" "$CONNS" "$DURATION" "$ROUNDS" \
	"$LOAD_BEFORE" "$LOAD_AFTER" "$IDLE_BEFORE" "$IDLE_AFTER" "$IDLE_SAMPLE" "$ELAPSED" \
	"$IDLE2_BEFORE" "$IDLE2_AFTER" "${VARIANTS[*]}" "$ORDER" <<'PY'
import bisect, json, os, platform, re, statistics, sys

(manifest, out_path, quick, threads, conns, duration, rounds, load_before, load_after,
 idle_before, idle_after, idle_sample, elapsed, idle2_before, idle2_after, run_variants,
 order) = sys.argv[1:]
HZ = os.sysconf("SC_CLK_TCK")
BACKENDS = ["st1", "st2", "cn1"]
# The table's order; only the variants that ran (E2E_VARIANTS) are reported.
RAN = set(run_variants.split())
VARIANTS = [v for v in ("direct", "direct3", "canaryd", "canaryd3", "canaryd3tcx", "canaryd1",
                        "iptables", "haproxy") if v in RAN]
BASES = tuple(b for b in ("direct", "direct3", "iptables", "haproxy") if b in RAN)
# The fair comparisons: (variant, its baseline).
FAIR = tuple((v, b) for v, b in (("canaryd", "direct3"), ("canaryd3", "direct3"),
                                 ("canaryd3tcx", "direct3"), ("canaryd1", "direct"))
             if v in RAN and b in RAN)
MODES = ["keepalive", "newconn"]
MODE_LABEL = {"keepalive": "keep-alive", "newconn": "new conn/request"}

def ms(value):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not m:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[m.group(2)]
    return float(m.group(1)) * scale

def parse_quantiles(text):
    # The done() hook's output: (requests, [(percent, microseconds), ...]).
    m = re.search(r"QUANTILES_BEGIN (\d+)\n(.*?)QUANTILES_END", text, re.S)
    if not m:
        return None
    q = [(float(a), int(b)) for a, b in (line.split() for line in m.group(2).splitlines() if line.strip())]
    return int(m.group(1)), q

def merged_percentile(parts, p):
    # parts: [(requests, quantiles)]. Each process's CDF at x is taken as the
    # highest grid percent whose quantile is <= x (a lower bound, by at most
    # one grid step: 0.01 points above 90%); the merged CDF is their mean
    # weighted by requests; the answer is the smallest quantile value of any
    # process at which it reaches p. For one process it is its own quantile.
    total = sum(n for n, _ in parts)
    if not total:
        return None
    cols = [(n, [v for _, v in q], [pc for pc, _ in q]) for n, q in parts]
    for x in sorted({v for _, q in parts for _, v in q}):
        cdf = 0.0
        for n, vals, pcs in cols:
            i = bisect.bisect_right(vals, x)
            cdf += n * (pcs[i - 1] if i else 0.0)
        if cdf / total >= p - 1e-9:
            return x / 1000.0
    return None

def parse_wrk(text):
    # direct3, canaryd3: three wrk outputs, each after a "### wrk part" line. rps,
    # requests and errors are summed; p50/p99 come from the three processes'
    # latency quantiles merged (merged_percentile).
    parts = re.split(r"^### wrk part .*\n", text, flags=re.M)[1:]
    if parts:
        rr = [parse_wrk(t) for t in parts]
        hists = [parse_quantiles(t) for t in parts]
        r = {"rps": sum(x["rps"] for x in rr), "requests": sum(x["requests"] for x in rr),
             "socket_errors": {k: sum(x["socket_errors"][k] for x in rr)
                               for k in ("connect", "read", "write", "timeout")},
             "non2xx": sum(x["non2xx"] for x in rr), "p50_ms": None, "p99_ms": None,
             "parts": [{k: x[k] for k in ("rps", "requests", "p50_ms", "p99_ms", "errors")} for x in rr]}
        if all(h is not None for h in hists) and all(x["parsed"] for x in rr):
            r["p50_ms"], r["p99_ms"] = merged_percentile(hists, 50), merged_percentile(hists, 99)
        r["errors"] = sum(r["socket_errors"].values()) + r["non2xx"]
        r["parsed"] = bool(len(rr) == 3 and all(x["parsed"] for x in rr) and r["p99_ms"] is not None)
        return r
    r = {"rps": 0.0, "requests": 0, "p50_ms": None, "p99_ms": None,
         "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "non2xx": 0}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    if m:
        r["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s*%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            r[key] = ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    r["errors"] = sum(r["socket_errors"].values()) + r["non2xx"]
    r["parsed"] = bool(r["rps"] > 0 and r["p99_ms"] is not None)
    # The same percentile through the merge, from this process alone: a
    # check that the merge reproduces wrk's own p99.
    h = parse_quantiles(text)
    r["p99_ms_from_quantiles"] = merged_percentile([h], 99) if h else None
    return r

def cpu_fields(line):
    f = [int(x) for x in line.split()[1:]]
    f += [0] * (10 - len(f))
    user, nice, system, idle, iowait, irq, softirq, steal = f[:8]
    return {"user": user + nice, "system": system, "irq": irq, "softirq": softirq,
            "idle": idle + iowait, "steal": steal}

def cpu_delta(a, b):
    a, b = cpu_fields(a), cpu_fields(b)
    d = {k: (b[k] - a[k]) / HZ for k in a}
    d["busy"] = d["user"] + d["system"] + d["irq"] + d["softirq"]
    return d

def lab_cpu_by_role(before, after):
    # "ROLE/PID:TICKS" entries -> CPU seconds per role between the two samples.
    b = dict(x.rsplit(":", 1) for x in before.split())
    a = dict(x.rsplit(":", 1) for x in after.split())
    roles = {}
    for k in a:
        if k in b:
            role = k.split("/", 1)[0]
            roles[role] = roles.get(role, 0.0) + (int(a[k]) - int(b[k])) / HZ
    return roles

def shell_children_s(line):
    # bash "times" second line: children's user and system, "1m2.345s 0m0.500s"
    total = 0.0
    for m in re.finditer(r"(\d+)m([\d.]+)s", line):
        total += int(m.group(1)) * 60 + float(m.group(2))
    return total

runs = {}
broken = []
for line in open(manifest):
    (variant, mode, rnd, rc, path, before, after, nb, na, ct, tb, ta, wb, wa) = \
        line.rstrip("\n").split("\t")
    text = open(path).read()
    r = parse_wrk(text)
    r["round"] = int(rnd)
    r["wrk_exit"] = int(rc)
    cpu = cpu_delta(before, after)
    r["cpu_s"] = {k: round(v, 3) for k, v in cpu.items()}
    r["cpu_s_per_1k"] = round(cpu["busy"] / r["requests"] * 1000, 5) if r["requests"] else None
    by_role = lab_cpu_by_role(tb, ta)
    by_role["wrk"] = shell_children_s(wa) - shell_children_s(wb)
    # CPU seconds of each part of the lab over the run: one nginx worker
    # near the run's length in seconds is a backend at its limit.
    r["lab_cpu_s_by_role"] = {k: round(v, 3) for k, v in sorted(by_role.items())}
    lab = sum(by_role.values())
    r["lab_cpu_s"] = round(lab, 3)
    r["lab_cpu_s_per_1k"] = round(lab / r["requests"] * 1000, 5) if r["requests"] else None
    agent = by_role.get("agent", 0.0)
    r["agent_cpu_s"] = round(agent, 3)
    r["agent_cpu_s_per_1k"] = round(agent / r["requests"] * 1000, 5) if r["requests"] else None
    try:
        served = [int(y) - int(x) for x, y in zip(nb.split(), na.split())]
        total = sum(served)
        r["backend_requests"] = dict(zip(BACKENDS, served))
        r["canary_share"] = round(served[2] / total, 4) if total else None
    except ValueError:
        r["backend_requests"], r["canary_share"] = None, None
    r["node_conntrack_entries_after"] = int(ct) if ct.strip().isdigit() else None
    if not r["parsed"] or r["wrk_exit"] != 0:
        broken.append("%s/%s round %s (wrk exit %s)" % (variant, mode, rnd, rc))
        r["wrk_output_tail"] = text[-600:]
    runs.setdefault((variant, mode), []).append(r)

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

rows = []
for v in VARIANTS:
    for m in MODES:
        rr = runs.get((v, m), [])
        rows.append({
            "variant": v, "mode": m, "runs_n": len(rr),
            "rps": round(med([r["rps"] for r in rr]) or 0.0, 2),
            "p50_ms": med([r["p50_ms"] for r in rr]),
            "p99_ms": med([r["p99_ms"] for r in rr]),
            "errors": sum(r["errors"] for r in rr),
            "socket_errors": {k: sum(r["socket_errors"][k] for r in rr)
                              for k in ("connect", "read", "write", "timeout")},
            "non2xx": sum(r["non2xx"] for r in rr),
            "requests": sum(r["requests"] for r in rr),
            "cpu_s_per_1k": med([r["cpu_s_per_1k"] for r in rr]),
            "lab_cpu_s_per_1k": med([r["lab_cpu_s_per_1k"] for r in rr]),
            "agent_cpu_s_per_1k": med([r["agent_cpu_s_per_1k"] for r in rr]),
            "canary_share": med([r["canary_share"] for r in rr]),
            "runs": rr,
        })
by = {(r["variant"], r["mode"]): r for r in rows}

def ratio(a, b):
    return round(a / b, 4) if a is not None and b else None

for r in rows:
    r["ratios"] = {}
    for base in BASES:
        b = by[(base, r["mode"])]
        r["ratios"]["rps_vs_" + base] = ratio(r["rps"], b["rps"])
        r["ratios"]["p99_vs_" + base] = ratio(r["p99_ms"], b["p99_ms"])
        r["ratios"]["p50_vs_" + base] = ratio(r["p50_ms"], b["p50_ms"])
        r["ratios"]["cpu_per_req_vs_" + base] = ratio(r["cpu_s_per_1k"], b["cpu_s_per_1k"])
        r["ratios"]["lab_cpu_per_req_vs_" + base] = ratio(r["lab_cpu_s_per_1k"], b["lab_cpu_s_per_1k"])

# The fair comparisons, with each round's ratio (the variant and its
# baseline run back to back in a round) next to the ratio of the medians.
fair = []
for v, base in FAIR:
    for m in MODES:
        a, b = by[(v, m)], by[(base, m)]
        rb = {x["round"]: x for x in b["runs"]}
        per_round = [{"round": x["round"],
                      "rps": ratio(x["rps"], rb[x["round"]]["rps"]) if x["round"] in rb else None,
                      "p99": ratio(x["p99_ms"], rb[x["round"]]["p99_ms"]) if x["round"] in rb else None}
                     for x in a["runs"]]
        fair.append({"variant": v, "baseline": base, "mode": m,
                     "rps": ratio(a["rps"], b["rps"]), "p50": ratio(a["p50_ms"], b["p50_ms"]),
                     "p99": ratio(a["p99_ms"], b["p99_ms"]),
                     "cpu_per_req": ratio(a["cpu_s_per_1k"], b["cpu_s_per_1k"]),
                     "lab_cpu_per_req": ratio(a["lab_cpu_s_per_1k"], b["lab_cpu_s_per_1k"]),
                     "lab_cpu_us_per_req": [None if x["lab_cpu_s_per_1k"] is None else round(x["lab_cpu_s_per_1k"] * 1000, 2)
                                            for x in (a, b)],
                     "agent_cpu_us_per_req": None if a["agent_cpu_s_per_1k"] is None else round(a["agent_cpu_s_per_1k"] * 1000, 2),
                     "per_round": per_round})

goals = []
def goal(name, desc, value, op, threshold, holds):
    goals.append({"name": name, "description": desc, "value": value, "op": op,
                  "threshold": threshold, "holds": bool(holds) if value is not None else False})
def ran(*variants):
    return all(v in RAN for v in variants)
for m in MODES if ran("canaryd", "direct") else ():
    c = by[("canaryd", m)]
    rv = c["ratios"]["rps_vs_direct"]
    goal("rps_within_3pct_of_direct_" + m, "canaryd rps >= 97%% of direct (%s)" % MODE_LABEL[m],
         rv, ">=", 0.97, rv is not None and rv >= 0.97)
    pv = c["ratios"]["p99_vs_direct"]
    goal("p99_within_3pct_of_direct_" + m, "canaryd p99 <= 103%% of direct (%s)" % MODE_LABEL[m],
         pv, "<=", 1.03, pv is not None and pv <= 1.03)
for v, base in FAIR:
    for m in MODES:
        c = by[(v, m)]
        pre = "" if v == "canaryd" else v + "_"
        rv = c["ratios"]["rps_vs_" + base]
        goal("%srps_within_3pct_of_%s_%s" % (pre, base, m), "%s rps >= 97%% of %s (%s)" % (v, base, MODE_LABEL[m]),
             rv, ">=", 0.97, rv is not None and rv >= 0.97)
        pv = c["ratios"]["p99_vs_" + base]
        goal("%sp99_within_3pct_of_%s_%s" % (pre, base, m), "%s p99 <= 103%% of %s (%s)" % (v, base, MODE_LABEL[m]),
             pv, "<=", 1.03, pv is not None and pv <= 1.03)
if ran("canaryd", "iptables"):
    rv = by[("canaryd", "newconn")]["ratios"]["rps_vs_iptables"]
    goal("ahead_of_iptables_newconn", "canaryd rps > iptables rps (new conn/request)", rv, ">", 1.0,
         rv is not None and rv > 1.0)
for m in MODES if ran("canaryd", "haproxy") else ():
    rv = by[("canaryd", m)]["ratios"]["rps_vs_haproxy"]
    goal("2x_haproxy_" + m, "canaryd rps >= 2x haproxy (%s)" % MODE_LABEL[m], rv, ">=", 2.0,
         rv is not None and rv >= 2.0)

idle = cpu_delta(idle_before, idle_after)
idle2 = cpu_delta(idle2_before, idle2_after)
ncpu = os.cpu_count()
cpu_model = ""
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
versions = {}
for tool, cmd in (("wrk", "wrk -v 2>&1 | sed -n 1p"), ("nginx", "nginx -v 2>&1"),
                  ("haproxy", "haproxy -v 2>&1 | sed -n 1p"), ("iptables", "iptables --version 2>&1")):
    versions[tool] = os.popen(cmd).read().strip()
doc = {
    "tool": "tools/bench/e2e.sh",
    "quick": quick == "1",
    "config": {"variants": run_variants.split(),  # in the order of odd rounds
               "order": order,  # alternate: even rounds ran the variants backwards
               "wrk": "-t%s -c%s -d%ss --latency" % (threads, conns, duration),
               "direct3": "three wrk -t1 -c14/-c14/-c4 -d%ss --latency started together, to st1/st2/cn1; "
                          "rps, requests, errors summed; p50/p99 from the merged latency histograms" % duration,
               "canaryd1": "canaryd, rollout web1 (VIP 198.19.0.11): stable st1 only, weight 0",
               "canaryd3": "canaryd (rollout web) with direct3's client: three wrk -t1 -c14/-c14/-c4 to the VIP",
               "canaryd3tcx": "canaryd3 with canaryd --attach tcx",
               "rounds": int(rounds), "split": "90/10 (st1 45, st2 45, cn1 10)",
               "statistic": "median over rounds; errors and requests summed"},
    "machine": {"kernel": platform.release(), "cpu": cpu_model, "nproc": ncpu,
                "loadavg_before": load_before.split()[:3], "loadavg_after": load_after.split()[:3],
                "busy_cpus_before_idle_sample": round(idle["busy"] / float(idle_sample), 3),
                "busy_cpus_after_idle_sample": round(idle2["busy"] / float(idle_sample), 3),
                "versions": versions},
    "cpu_note": "cpu_s_per_1k is machine-wide busy CPU (user+nice+system+irq+softirq from "
                "/proc/stat) during the run, per 1,000 requests: client, node, backends and "
                "anything else running. lab_cpu_s_per_1k is the CPU of the lab's own processes "
                "(wrk, nginx, haproxy, canaryd) and ksoftirqd, softirq included where it ran on "
                "their time. Compare variants, not absolutes.",
    "elapsed_s": int(elapsed),
    "rows": rows,
    "fair": fair,
    "goals": goals,
    "broken_runs": broken,
}
with open(out_path, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

def fx(v, nd=2, suffix=""):
    return "-" if v is None else ("%.*f%s" % (nd, v, suffix))

print()
print("End to end, kernel %s, %s, %d CPUs; wrk %s, %s round(s), medians" % (
    platform.release(), cpu_model or "?", ncpu, doc["config"]["wrk"], rounds))
print("load average %s before, %s after; %.2f CPUs busy before the runs, %.2f after "
      "(%s s samples, nothing of ours running)" % (
    " ".join(doc["machine"]["loadavg_before"]), " ".join(doc["machine"]["loadavg_after"]),
    doc["machine"]["busy_cpus_before_idle_sample"], doc["machine"]["busy_cpus_after_idle_sample"], idle_sample))
print()
print("| variant | connections | rps | p50 ms | p99 ms | errors | CPU s/1k req, machine "
      "| CPU s/1k req, lab | canary share |" + "".join(" vs %s: rps, p99 |" % b for b in BASES))
print("|---|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(BASES))
for r in rows:
    q = r["ratios"]
    print("| %s | %s | %.0f | %s | %s | %d | %s | %s | %s |" % (
        r["variant"], MODE_LABEL[r["mode"]], r["rps"], fx(r["p50_ms"]), fx(r["p99_ms"]), r["errors"],
        fx(r["cpu_s_per_1k"], 3), fx(r["lab_cpu_s_per_1k"], 3),
        fx(None if r["canary_share"] is None else 100 * r["canary_share"], 1, "%"))
          + "".join(" %s, %s |" % (fx(q["rps_vs_" + b]), fx(q["p99_vs_" + b])) for b in BASES))
print()
print("| fair comparison | connections | rps ratio | p50 ratio | p99 ratio | CPU/req ratio, machine "
      "| CPU/req ratio, lab | lab CPU µs/req (variant / baseline) | of which agent | per round: rps, p99 |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for f in fair:
    print("| %s vs %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
        f["variant"], f["baseline"], MODE_LABEL[f["mode"]], fx(f["rps"], 3), fx(f["p50"], 3), fx(f["p99"], 3),
        fx(f["cpu_per_req"], 3), fx(f["lab_cpu_per_req"], 3),
        fx(f["lab_cpu_us_per_req"][0], 1), fx(f["lab_cpu_us_per_req"][1], 1), fx(f["agent_cpu_us_per_req"], 1),
        "; ".join("%s, %s" % (fx(x["rps"]), fx(x["p99"])) for x in f["per_round"])))
print()
print("| goal | value | holds |")
print("|---|---:|---|")
for g in goals:
    print("| %s | %s (needs %s %s) | %s |" % (g["description"], fx(g["value"], 3),
          g["op"], g["threshold"],
          "yes" if g["holds"] else "**no**"))
print()
print("errors: wrk socket errors + non-2xx, summed over rounds. CPU: busy CPU seconds per 1,000 requests,")
print("machine-wide (/proc/stat) and the lab's own processes; see docs/benchmarks.md.")
print("JSON: %s" % out_path)
if broken:
    print("broken runs: %s" % "; ".join(broken), file=sys.stderr)
    sys.exit(1)
PY
rc=$?
if [ $rc = 0 ] && [ -n "$PROFILE_DIR" ]; then
	echo
	python3 tools/bench/e2e_profile.py "$PROFILE_DIR" "${PROFILE_VARIANTS[@]}"
	rc=$?
fi
exit $rc
