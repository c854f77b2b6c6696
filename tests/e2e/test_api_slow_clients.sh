#!/usr/bin/env bash
# 200 slow connections from one address (each sends a header line every
# 4 s and never finishes its request) against the TCP listener. Promised
# (docs/reliability.md, "The API under slow clients"): the exec probes of
# the DaemonSet (canaryd --probe, through the UNIX socket) and the UNIX
# socket itself keep answering, and so does the TCP listener for any other
# address; no slow connection outlives the request deadline.
# The 1 s bound below is a functional bound on availability (a probe that
# takes longer than the kubelet's timeout counts as down), not a speed goal.
set -u
source "$(dirname "$0")/lib.sh"

PORT=9465
SLOW=200
DURATION_S=24
lab_standard 20 --listen 127.0.0.1:$PORT

cat >"$LAB_DIR/slow.py" <<'PY'
# Opens N connections, sends half a request and then one header line every
# 4 s; prints, as JSON, how many the server refused at once (closed within
# 1 s) and how long the others lived.
import json, select, socket, sys, time
port, n, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
start = time.monotonic()
conns = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        conns.append([s, time.monotonic(), None])
    except OSError:
        conns.append([None, time.monotonic(), time.monotonic()])
print(json.dumps({"opened": n}), flush=True)

def note_closed():
    """Mark the connections the server has closed (readable with EOF or error)."""
    live = [c for c in conns if c[2] is None]
    if not live:
        return
    readable, _, _ = select.select([c[0] for c in live], [], [], 0)
    for c in live:
        if c[0] in readable:
            try:
                closed = c[0].recv(4096, socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                c[2] = time.monotonic()

line, next_line = 0, start + 4
while time.monotonic() - start < duration:
    time.sleep(0.1)
    note_closed()
    if time.monotonic() < next_line:
        continue
    line += 1
    next_line += 4
    for c in conns:
        if c[2] is None:
            try:
                c[0].sendall(b"X-Slow-%d: 1\r\n" % line)
            except OSError:
                c[2] = time.monotonic()
lives = [(c[2] or time.monotonic()) - c[1] for c in conns]
print(json.dumps({"refused_at_once": sum(1 for l in lives if l < 1.0),
                  "longest_life_s": round(max(lives), 1),
                  "alive_at_end": sum(1 for c in conns if c[2] is None)}), flush=True)
PY

# probe_ms CMD...: run a probe in the node namespace, print "RC MS".
probe_ms() {
	local t0 rc
	t0=$(date +%s%N)
	timeout 5 nsenter --net=/run/netns/"$(ns node)" "$@" >/dev/null 2>&1
	rc=$?
	echo "$rc $((($(date +%s%N) - t0) / 1000000))"
}

nsenter --net=/run/netns/"$(ns node)" python3 "$LAB_DIR/slow.py" $PORT $SLOW $DURATION_S \
	>"$LAB_DIR/slow.out" 2>&1 &
echo $! >"$LAB_DIR/slow.pid"
for i in $(seq 1 100); do
	grep -q opened "$LAB_DIR/slow.out" && break
	sleep 0.1
done
check "the slow client opened its $SLOW connections" grep -q opened "$LAB_DIR/slow.out"

# Probes every 0.5 s while the slow client runs: the DaemonSet's exec probes,
# the UNIX socket, and the TCP listener from another address.
: >"$LAB_DIR/probes"
end=$(($(date +%s) + DURATION_S - 2))
while [ "$(date +%s)" -lt "$end" ]; do
	echo "liveness $(probe_ms "$LAB_BUILD/canaryd" --probe /healthz \
		--api-socket "$LAB_SOCKET")" >>"$LAB_DIR/probes"
	echo "readiness $(probe_ms "$LAB_BUILD/canaryd" --probe /readyz \
		--api-socket "$LAB_SOCKET")" >>"$LAB_DIR/probes"
	echo "socket $(probe_ms curl -sf -m 4 --unix-socket "$LAB_SOCKET" \
		http://x/api/v1/rollouts/web)" >>"$LAB_DIR/probes"
	echo "tcp-other-address $(probe_ms curl -sf -m 4 --interface 127.0.0.2 \
		http://127.0.0.1:$PORT/healthz)" >>"$LAB_DIR/probes"
	sleep 0.5
done
wait "$(cat "$LAB_DIR/slow.pid")"
rm -f "$LAB_DIR/slow.pid"

for kind in liveness readiness socket tcp-other-address; do
	n=$(grep -c "^$kind " "$LAB_DIR/probes")
	bad=$(awk -v k="$kind" '$1 == k && ($2 != 0 || $3 >= 1000)' "$LAB_DIR/probes" | wc -l)
	worst=$(awk -v k="$kind" '$1 == k && $3 > m { m = $3 } END { print m + 0 }' "$LAB_DIR/probes")
	check "$kind: $n probes during the slow connections, $bad failed or took 1 s or more (slowest ${worst} ms)" \
		expect "$n >= 10 and $bad == 0"
done
result=$(tail -1 "$LAB_DIR/slow.out")
echo "# slow client: $result"
check "one address gets at most 8 connections: the other $((SLOW - 8)) or more are refused at once" \
	expect "$(echo "$result" | jget 'd["refused_at_once"]') >= $((SLOW - 8))"
check "no slow connection outlives the 10 s request deadline by more than 2 s" \
	expect "$(echo "$result" | jget 'd["longest_life_s"]') <= 12 and $(echo "$result" | jget 'd["alive_at_end"]') == 0"
ticks=$(in_ns node curl -sS -m 2 --unix-socket "$LAB_SOCKET" http://x/metrics |
	sed -n 's/^canaryd_ticks_total \([0-9]*\)$/\1/p')
check "the agent ticked on (${ticks:-?} ticks)" expect "${ticks:-0} > 100"
lab_finish
