#!/usr/bin/env bash
# An idle keep-alive connection keeps its backend across a weight change,
# for as long as the established lifetime, and not longer. The agent runs
# with short lifetimes (--conntrack-lifetimes reply=3s,syn=3s,established=8s):
#   keep: one request at weight 0 (stable), idle until its reverse entry
#         has expired (reply lifetime), then a second request on the same
#         connection after the weight went to 100: same backend, no reset.
#   gone: the same, idle past the established lifetime: its entries are
#         gone, the next segment is chosen again (weight 100: the canary),
#         which has no such connection and resets it.
# A flow still in the half-open table (never promoted to conntrack) would
# expire after 3 s as well, and be moved: "keep" fails then too.
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 0 --conntrack-lifetimes reply=3s,syn=3s,established=8s

# client NAME: one keep-alive connection through the VIP; its first answer's
# backend goes to NAME.out, then it waits (15 s at most) for NAME.go and
# sends again on the same connection.
client() {
	local name=$1
	nsenter --net=/run/netns/"$(ns cl)" python3 - "$LAB_VIP" "$LAB_PORT" "$LAB_DIR/$name" \
		>"$LAB_DIR/$name.out" 2>&1 <<'PY' &
import os, socket, sys, time

vip, port, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed by the peer")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    fields = dict(l.split(b":", 1) for l in head.split(b"\r\n")[1:] if b":" in l)
    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
    while len(body) < int(fields.get(b"content-length", b"0")):
        body += s.recv(4096)
    return fields[b"x-backend"].decode()

s = socket.create_connection((vip, port), timeout=5)
s.settimeout(5)
print("first", request(s), s.getsockname()[1], flush=True)
deadline = time.monotonic() + 15
while not os.path.exists(base + ".go") and time.monotonic() < deadline:
    time.sleep(0.05)
try:
    print("second", request(s), flush=True)
except OSError as e:
    print("second error", type(e).__name__, flush=True)
PY
	echo $! >"$LAB_DIR/$name-client.pid"
}

# wait_line FILE PREFIX SECONDS: wait until FILE has a line starting with PREFIX.
wait_line() {
	local deadline=$(($(date +%s%N) + $3 * 1000000000))
	while [ "$(date +%s%N)" -lt "$deadline" ]; do
		grep -q "^$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

entries() {
	in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" http://x/metrics |
		sed -n 's/^canaryd_conntrack_entries //p'
}

# tracked PORT: whether the client port's forward entry is in conntrack.
tracked() {
	canaryctl -o json flows web | python3 -c '
import json, sys
d = json.load(sys.stdin)
flows = d if isinstance(d, list) else d.get("flows", [])
print(sum(1 for f in flows if f["client"].endswith(":" + sys.argv[1])))' "$1"
}

client keep
client gone
wait_line "$LAB_DIR/keep.out" first 10
wait_line "$LAB_DIR/gone.out" first 10
start=$(date +%s%N)
read -r _ first_keep keep_port <"$LAB_DIR/keep.out"
read -r _ first_gone gone_port <"$LAB_DIR/gone.out"
check "both connections start on stable at weight 0 ($first_keep, $first_gone)" \
	expect "'$first_keep' in ('st1', 'st2') and '$first_gone' in ('st1', 'st2')"
n=$(entries)
check "4 conntrack entries: both handshakes moved to conntrack ($n)" expect "'$n' == '4'"

canaryctl set-weight web 100 >/dev/null
lab_wait web "d['weight'] == 100" 5

# Past the reply lifetime: only the two forward entries are left (7 s at
# most, inside the established lifetime of 8 s from the last packet).
deadline=$((start + 7000000000))
while [ "$(date +%s%N)" -lt "$deadline" ] && [ "$(entries)" != 2 ]; do sleep 0.1; done
idle_ms=$((($(date +%s%N) - start) / 1000000))
n=$(entries)
check "reverse entries expired while idle: $n entries after ${idle_ms} ms" expect "'$n' == '2'"
touch "$LAB_DIR/keep.go"
wait_line "$LAB_DIR/keep.out" second 10
second_keep=$(sed -n 's/^second //p' "$LAB_DIR/keep.out")
check "idle ${idle_ms} ms (reply 3 s < idle < established 8 s): same backend, no reset ($first_keep -> $second_keep)" \
	expect "'$second_keep' == '$first_keep'"

# Past the established lifetime: the idle flow's forward entry goes too.
deadline=$((start + 15000000000))
while [ "$(date +%s%N)" -lt "$deadline" ] && [ "$(tracked "$gone_port")" != 0 ]; do
	sleep 0.2
done
idle_ms=$((($(date +%s%N) - start) / 1000000))
check "idle ${idle_ms} ms, past established 8 s: its entries are gone" \
	expect "'$(tracked "$gone_port")' == '0'"
touch "$LAB_DIR/gone.go"
wait_line "$LAB_DIR/gone.out" second 10
second_gone=$(sed -n 's/^second //p' "$LAB_DIR/gone.out")
check "its next segment is chosen again and reset by the canary ($second_gone)" \
	expect "'$second_gone'.startswith('error')"
lab_finish
