#!/usr/bin/env bash
# One agent per state directory and per API socket: a second agent (its own
# bpffs, in another namespace, attaching nothing) that names the first one's
# --state-dir, or its --api-socket, refuses to start, and the first agent's
# socket keeps answering. After rm -rf of the bpffs directory a second agent
# on it still refuses to start. A socket left by an agent that died is replaced.
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 20
OTHER_BPFFS=/sys/fs/bpf/canaryd-lab-$LAB_ID-other

# second AGENT-ARGS...: a second agent in the "up" namespace; prints its exit status.
second() {
	timeout 20 nsenter --net=/run/netns/"$(ns up)" "$LAB_BUILD/canaryd" --bpffs "$OTHER_BPFFS" \
		--host-cgroup off --interfaces 'nomatch*' --config "$LAB_CONFIG_DIR" "$@" >"$LAB_DIR/second.log" 2>&1 &
	echo $! >"$LAB_DIR/second.pid"
	wait "$(cat "$LAB_DIR/second.pid")"
	echo $?
	rm -f "$LAB_DIR/second.pid"
	rm -rf "$OTHER_BPFFS"
}
alive() { canaryctl status web >/dev/null 2>&1; }

rc=$(second --state-dir "$LAB_STATE_DIR" --api-socket "$LAB_DIR/other.sock")
check "a second agent on the same state directory exits 1 (got $rc): $(grep -o 'msg="[^"]*"' "$LAB_DIR/second.log" | tail -2 | tr '\n' ' ')" \
	expect "$rc == 1 and $(grep -c 'another canaryd is using this state directory' "$LAB_DIR/second.log") == 1"

rc=$(second --state-dir "$LAB_DIR/other-state" --api-socket "$LAB_SOCKET")
check "a second agent on the same API socket exits 1 (got $rc): $(grep -o 'error="[^"]*"' "$LAB_DIR/second.log" | tail -1)" \
	expect "$rc == 1 and $(grep -c 'in use by a running agent' "$LAB_DIR/second.log") >= 1"
check "the first agent's socket still answers" alive
check "the first agent's socket file is still there" [ -S "$LAB_SOCKET" ]

# rm -rf of the bpffs (which the agent survives): it pins its maps again in a
# new directory, which nobody has locked; the bpffs must still be taken.
rm -rf "$LAB_BPFFS"
for i in $(seq 1 50); do
	[ -e "$LAB_BPFFS/$(pin_name services)" ] && break
	sleep 0.1
done
check "after rm -rf of the bpffs the agent pins its maps again" [ -e "$LAB_BPFFS/$(pin_name services)" ]
rc=$(timeout 10 nsenter --net=/run/netns/"$(ns up)" "$LAB_BUILD/canaryd" --bpffs "$LAB_BPFFS" \
	--host-cgroup off --interfaces 'nomatch*' --config "$LAB_CONFIG_DIR" --state-dir "$LAB_DIR/other-state" \
	--api-socket "$LAB_DIR/other.sock" >"$LAB_DIR/second.log" 2>&1
	echo $?)
check "then a second agent on the same bpffs exits 1 (got $rc): $(grep -o 'msg="[^"]*"' "$LAB_DIR/second.log" | tail -1)" \
	expect "$rc == 1 and $(grep -c 'another canaryd is running on this bpffs' "$LAB_DIR/second.log") == 1"
check "and the first agent still answers" alive

# A dead agent's socket is not a live one: it is replaced.
kill -9 "$(cat "$LAB_DIR/canaryd.pid")"
sleep 0.2
check "after kill -9 the socket file is left behind" [ -S "$LAB_SOCKET" ]
lab_agent || exit 1
check "a new agent replaces the stale socket and answers" alive
lab_finish
