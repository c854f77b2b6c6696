#!/usr/bin/env bash
# A pinned map whose value has two same-size fields swapped (generation before
# id, tests/bpf/reordered.bpf.c) passes libbpf's size checks; canaryd and
# canaryctl compare its BTF with the program's and refuse it, naming the
# map, the member and its offset. After canaryd --cleanup the agent starts.
# Without CAP_SYS_ADMIN the layout digests recorded in layout_v<N> decide.
set -u
source "$(dirname "$0")/lib.sh"

lab_require_root
lab_mount_bpffs
OBJ=$LAB_BUILD/reordered.bpf.o
BPFFS=/sys/fs/bpf/canaryd-lab-$LAB_ID-layout
NETNS=canaryd-layout-$LAB_ID
WORK=$(mktemp -d)
AGENT_PID=
cleanup() {
	[ -n "$AGENT_PID" ] && kill -9 "$AGENT_PID" 2>/dev/null
	ip netns del "$NETNS" 2>/dev/null
	rm -rf "$BPFFS" "$WORK"
}
trap cleanup EXIT
[ -f "$OBJ" ] || make -s -C "$LAB_ROOT" "$OBJ" >/dev/null || lab_fail "cannot build $OBJ" || exit 1
ip netns add "$NETNS"
mkdir -p "$WORK/config" "$BPFFS"

# agent: canaryd on $BPFFS in its own namespace (attaching nothing); waits at
# most 20 s for it to exit or say ready, leaves AGENT_PID set while it runs.
agent() {
	: >"$WORK/canaryd.log"
	timeout 20 nsenter --net=/run/netns/"$NETNS" ${LAUNCH:-} "$LAB_BUILD/canaryd" --bpffs "$BPFFS" \
		--host-cgroup off --interfaces 'nomatch*' --config "$WORK/config" --allow-empty-config \
		--state-dir "$WORK/state" --api-socket "$WORK/api.sock" >"$WORK/canaryd.log" 2>&1 &
	AGENT_PID=$!
	local i
	for i in $(seq 1 200); do
		grep -q 'msg=ready' "$WORK/canaryd.log" && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	wait "$AGENT_PID"
	AGENT_RC=$?
	AGENT_PID=
	return 1
}

bpftool prog loadall "$OBJ" "$BPFFS/progs" pinmaps "$BPFFS" || lab_fail "bpftool loadall" || exit 1
rm -rf "$BPFFS/progs" # the map stays pinned, as an older agent would have left it
check "the reordered map is pinned as $(pin_name services)" [ -e "$BPFFS/$(pin_name services)" ]

AGENT_RC=
agent
want="$(pin_name services): value canary_service: member 0 (offset 0): generation in the pinned map, id in the program"
check "canaryd refuses the reordered pin and exits 1 (got ${AGENT_RC:-running})" [ "${AGENT_RC:-}" = 1 ]
check "its log names the map, the member and the offset: $(grep -o 'difference="[^"]*"' "$WORK/canaryd.log")" \
	grep -qF "difference=\"$want\"" "$WORK/canaryd.log"
check "nothing else was pinned beside it" [ "$(ls "$BPFFS")" = "$(pin_name services)" ]

out=$("$LAB_BUILD/canaryctl" --bpffs "$BPFFS" --socket "$WORK/api.sock" maps 2>&1)
rc=$?
check "canaryctl maps refuses it too (exit $rc)" [ "$rc" -ne 0 ]
check "and says why: $(echo "$out" | grep -o 'difference="[^"]*"')" grep -qF "$want" <<<"$out"

"$LAB_BUILD/canaryd" --cleanup --bpffs "$BPFFS" >"$WORK/cleanup.log" 2>&1
check "after canaryd --cleanup the agent starts on that bpffs" agent
[ -n "$AGENT_PID" ] && kill "$AGENT_PID" && wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
check "and starts again on its own pins (same layout: reused)" agent
[ -n "$AGENT_PID" ] && kill "$AGENT_PID" && wait "$AGENT_PID" 2>/dev/null
AGENT_PID=

# Without CAP_SYS_ADMIN (as the DaemonSet starts it) no pin's BTF can be read:
# the layout digests the agent recorded in layout_v<N> stand in for it.
# name_key NAME: layout_v<N>'s key for a map, its name in 16 bytes, as bpftool wants it.
name_key() { python3 -c "import sys; print(*sys.argv[1].encode().ljust(16, bytes(1)))" "$1"; }
LAUNCH="setpriv --bounding-set -all,+bpf,+net_admin,+perfmon --inh-caps -all --"
recorded() {
	bpftool map lookup pinned "$BPFFS/$(pin_name layout)" key $(name_key "$(pin_name "$1")") \
		>/dev/null
}
check "the agent recorded the pins' layouts in $(pin_name layout)" recorded services
check "without CAP_SYS_ADMIN it starts on its own pins (record matches)" agent
[ -n "$AGENT_PID" ] && kill "$AGENT_PID" && wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
# Another layout's agent would have recorded another digest: write one.
bpftool map update pinned "$BPFFS/$(pin_name layout)" \
	key $(name_key "$(pin_name services)") \
	value 1 2 3 4 5 6 7 8
AGENT_RC=
agent
check "without CAP_SYS_ADMIN a pin recorded with another layout is refused (exit ${AGENT_RC:-running})" \
	[ "${AGENT_RC:-}" = 1 ]
check "naming the map: $(grep -o 'difference="[^"]*"' "$WORK/canaryd.log")" \
	grep -qF "difference=\"$(pin_name services): the layout recorded when it was pinned" "$WORK/canaryd.log"
LAUNCH=
lab_finish
