#!/usr/bin/env bash
# Hash seeds come from a secret kept with the pins (secret_v<N>), not from the
# rollout name alone: the seed of rollout "web" is not the name's old FNV-1a
# hash, stays the same across an agent restart on the same bpffs, and differs
# on another bpffs (another node) with the same configuration. rm -rf of the
# pins does not lose it.
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 20
OTHER_BPFFS=/sys/fs/bpf/canaryd-lab-$LAB_ID-other
OTHER_DIR=$LAB_DIR/other
cleanup() {
	[ -f "$LAB_DIR/other.pid" ] && kill -9 "$(cat "$LAB_DIR/other.pid")" 2>/dev/null
	rm -rf "$OTHER_BPFFS"
	lab_down
}
trap cleanup EXIT

# seed_of BPFFS: rollout web's seed in BPFFS's services map ("" when absent):
# struct canary_service has the seed at byte 8 and the name at byte 20.
seed_of() {
	bpftool -j map dump pinned "$1/$(pin_name services)" 2>/dev/null |
		jget '[int.from_bytes(bytes(int(x, 16) for x in e["value"][8:12]), "little")
		       for e in d if bytes(int(x, 16) for x in e["value"][20:24]) == b"web\0"][0]' \
			2>/dev/null
}
# The seed the agent used to give "web": FNV-1a of the name, anyone could compute it.
fnv_web=$(python3 -c '
h = 2166136261
for c in b"web":
    h = ((h ^ c) * 16777619) & 0xffffffff
print(h)')

s1=$(seed_of "$LAB_BPFFS")
check "the secret is pinned as $(pin_name secret)" [ -e "$LAB_BPFFS/$(pin_name secret)" ]
check "web has a seed ($s1)" [ -n "$s1" ]
check "the seed ($s1) is not the name's FNV-1a hash ($fnv_web)" [ -n "$s1" -a "$s1" != "$fnv_web" ]

lab_agent_stop
lab_agent || exit 1
lab_wait web "d['weight'] == 20" 5
s2=$(seed_of "$LAB_BPFFS")
check "after a restart on the same bpffs the seed is the same ($s1 = $s2)" [ -n "$s2" -a "$s1" = "$s2" ]
check "the secret was created once, at the first start" \
	expect "$(grep -c "hash seeds' secret created" "$LAB_DIR/canaryd.log") == 1"

# rm -rf of the pins (which the agent survives): the secret is pinned again too,
# so the next restart still splits as before.
rm -rf "$LAB_BPFFS"
for i in $(seq 1 50); do
	[ -e "$LAB_BPFFS/$(pin_name secret)" ] && break
	sleep 0.1
done
check "after rm -rf of the bpffs the agent pins the secret again" [ -e "$LAB_BPFFS/$(pin_name secret)" ]
lab_agent_stop
lab_agent || exit 1
lab_wait web "d['weight'] == 20" 5
s4=$(seed_of "$LAB_BPFFS")
check "and a restart after that keeps the seed ($s1 = $s4)" [ -n "$s4" -a "$s1" = "$s4" ]

# Another node: its own bpffs, state and socket, same configuration, attaching nothing.
mkdir -p "$OTHER_DIR"
nsenter --net=/run/netns/"$(ns up)" "$LAB_BUILD/canaryd" --bpffs "$OTHER_BPFFS" \
	--host-cgroup off --interfaces 'nomatch*' --config "$LAB_CONFIG_DIR" --state-dir "$OTHER_DIR/state" \
	--api-socket "$OTHER_DIR/api.sock" --tick-ms 100 >"$OTHER_DIR/canaryd.log" 2>&1 &
echo $! >"$LAB_DIR/other.pid"
s3=
for i in $(seq 1 100); do
	s3=$(seed_of "$OTHER_BPFFS")
	[ -n "$s3" ] && break
	kill -0 "$(cat "$LAB_DIR/other.pid")" 2>/dev/null || break
	sleep 0.1
done
check "on another bpffs web has a seed ($s3)" [ -n "$s3" ]
check "and it differs from the first node's ($s1 != $s3)" [ -n "$s3" -a "$s1" != "$s3" ]
other=$(cat "$LAB_DIR/other.pid")
kill "$other" 2>/dev/null
for i in $(seq 1 40); do
	kill -0 "$other" 2>/dev/null || break
	sleep 0.05
done
wait "$other" 2>/dev/null
rm -f "$LAB_DIR/other.pid"
lab_finish
