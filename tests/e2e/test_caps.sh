#!/usr/bin/env bash
# The agent keeps CAP_BPF and CAP_NET_ADMIN and nothing else once it has
# started, whatever it was given, and sets no_new_privs and a seccomp
# filter. Started as the DaemonSet starts it (root, bounding set exactly
# CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON: no CAP_SETPCAP), as the systemd unit
# does (the same three also ambient and inheritable) and as plain root, its
# /proc/PID/status shows the sets docs/reliability.md lists; and it still
# works (set-weight goes through to the kernel map, ticks go on).
set -u
source "$(dirname "$0")/lib.sh"

# /proc/PID/status masks: CAP_NET_ADMIN is bit 12, CAP_PERFMON 38, CAP_BPF 39.
KEPT=0000008000001000
GRANTED=000000c000001000

lab_require_root
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
lab_rollout web "$LAB_VIP" "[{setWeight: 20}, {pause: {}}]"

# start_agent LAUNCHER...: canaryd in the node namespace, through LAUNCHER
# (setpriv ..., or nothing); waits until ready.
start_agent() {
	: >"$LAB_DIR/canaryd.log"
	nsenter --net=/run/netns/"$(ns node)" "$@" "$LAB_BUILD/canaryd" --bpffs "$LAB_BPFFS" \
		--host-cgroup off --interfaces 'to-*' --config "$LAB_CONFIG_DIR" --state-dir "$LAB_STATE_DIR" \
		--api-socket "$LAB_SOCKET" --tick-ms 100 >>"$LAB_DIR/canaryd.log" 2>&1 &
	echo $! >"$LAB_DIR/canaryd.pid"
	for i in $(seq 1 100); do
		grep -q 'msg=ready' "$LAB_DIR/canaryd.log" && return 0
		kill -0 "$(cat "$LAB_DIR/canaryd.pid")" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}
field() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$(cat "$LAB_DIR/canaryd.pid")/status"; }

# run_case NAME BOUNDING LAUNCHER...
run_case() {
	local name=$1 bnd=$2 w
	shift 2
	check "$name: the agent starts" start_agent "$@" ||
		sed 's/^/# /' "$LAB_DIR/canaryd.log"
	check "$name: CapEff $(field CapEff) = CAP_BPF,CAP_NET_ADMIN" [ "$(field CapEff)" = $KEPT ]
	check "$name: CapPrm $(field CapPrm) = CAP_BPF,CAP_NET_ADMIN" [ "$(field CapPrm)" = $KEPT ]
	check "$name: CapInh $(field CapInh) and CapAmb $(field CapAmb) empty" \
		[ "$(field CapInh)" = 0000000000000000 -a "$(field CapAmb)" = 0000000000000000 ]
	check "$name: CapBnd $(field CapBnd) = $bnd" [ "$(field CapBnd)" = "$bnd" ]
	check "$name: NoNewPrivs $(field NoNewPrivs), Seccomp $(field Seccomp) (filter)" \
		[ "$(field NoNewPrivs)" = 1 -a "$(field Seccomp)" = 2 ]
	canaryctl set-weight web 35 >/dev/null 2>&1
	w=$(canaryctl -o json maps 2>/dev/null | jget 'd["services"][0]["weight"]' 2>/dev/null)
	check "$name: set-weight 35 reaches the kernel map (weight ${w:-?})" expect "'${w:-x}' in ('35', '35.0')"
	canaryctl resume web >/dev/null 2>&1
	canaryctl set-weight web 20 >/dev/null 2>&1
	lab_agent_stop
}

run_case "DaemonSet (bounding set BPF,NET_ADMIN,PERFMON)" $GRANTED \
	setpriv --bounding-set -all,+bpf,+net_admin,+perfmon --inh-caps -all --
run_case "systemd unit (the three also ambient)" $GRANTED \
	setpriv --bounding-set -all,+bpf,+net_admin,+perfmon --inh-caps -all,+bpf,+net_admin,+perfmon \
	--ambient-caps -all,+bpf,+net_admin,+perfmon --
run_case "root with every capability" $KEPT
lab_finish
