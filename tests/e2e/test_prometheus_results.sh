#!/usr/bin/env bash
# What a real Prometheus (Debian's package) answers, and what the agent
# makes of it: +Inf and -Inf are not values, a result of several series is
# an error unless the query reduces it to one, and Prometheus servers that
# accept connections but never answer (black holes) do not hold up the
# queries of other rollouts, even when more of them are due than there are
# query workers.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root
command -v prometheus >/dev/null || { echo "not ok - prometheus is not installed"; exit 1; }
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

PROM_PORT=19091
PROXY_PORT=19092
HOLE_PORT=19093
cat >"$LAB_DIR/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
YAML
nsenter --net=/run/netns/"$(ns node)" prometheus --config.file="$LAB_DIR/prometheus.yml" \
	--storage.tsdb.path="$LAB_DIR/prom" --web.listen-address="127.0.0.1:$PROM_PORT" \
	>"$LAB_DIR/prometheus.log" 2>&1 &
echo $! >"$LAB_DIR/prometheus.pid"
# A counting relay in front of Prometheus (every byte passes through), and
# a black hole: a listener that accepts and never answers.
nsenter --net=/run/netns/"$(ns node)" python3 -c '
import socket, sys, threading, time
relay, upstream, hole, log = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
held = []
def black_hole():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", hole)); s.listen(64)
    while True:
        held.append(s.accept()[0])
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for x in (a, b):
        try: x.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(c):
    u = socket.create_connection(("127.0.0.1", upstream))
    with open(log, "a") as f:
        f.write("%.3f\n" % time.monotonic())
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
threading.Thread(target=black_hole, daemon=True).start()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", relay)); s.listen(64)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
' $PROXY_PORT $PROM_PORT $HOLE_PORT "$LAB_DIR/relay.log" >"$LAB_DIR/relay.out" 2>&1 &
echo $! >"$LAB_DIR/relay.pid"
query_ok() { in_ns node curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query?query=vector(1)" | grep -q '"value"'; }
for i in $(seq 1 100); do query_ok && break; sleep 0.2; done
check "Prometheus answers" query_ok

PROM="http://127.0.0.1:$PROM_PORT"
TWO='label_replace(vector(1), "s", "a", "", "") or label_replace(vector(2), "s", "b", "", "")'
metric() { # metric NAME ADDRESS QUERY
	echo "{name: $1, prometheus: {address: \"$2\", query: '$3'}, successCondition: \"result >= 0\", consecutiveErrorLimit: 1000}"
}
rollout() { # rollout NAME VIP METRICS
	lab_rollout "$1" "$2" "[{setWeight: 10}, {pause: {}}]" \
		"{interval: 1s, minRequests: 1000000, failureLimit: 1000, metrics: [$3]}"
}
rollout inf 198.19.0.11 "$(metric pos-inf "$PROM" 'vector(1) / 0'), $(metric neg-inf "$PROM" '-vector(1) / 0')"
rollout two 198.19.0.12 "$(metric two-series "$PROM" "$TWO"), $(metric reduced "$PROM" "sum($TWO)")"
rollout good 198.19.0.30 "$(metric good "http://127.0.0.1:$PROXY_PORT" 'vector(1)')"
lab_agent

verdict() { lab_status "$1" "[v for v in d['analysis']['verdicts'] if v['metric'] == '$2'][0]$3"; }
for r in inf two; do
	lab_wait $r "all(v['detail'] != 'waiting for the first query result' for v in d['analysis']['verdicts'])" 10
done
for m in pos-inf neg-inf; do
	echo "# $m: $(verdict inf $m '')"
	check "$m: never a pass, an error that says why ($(verdict inf $m "['detail']"))" \
		expect "'$(verdict inf $m "['result']")' == 'inconclusive' and 'not a finite number' in '''$(verdict inf $m "['detail']")'''"
done
echo "# two-series: $(verdict two two-series '')"
check "a result of 2 series is an error naming the count" \
	expect "'$(verdict two two-series "['result']")' == 'inconclusive' and '2 series' in '''$(verdict two two-series "['detail']")'''"
check "the same query reduced with sum() passes with 3 ($(verdict two reduced "['detail']"))" \
	expect "'$(verdict two reduced "['result']")' == 'pass' and $(verdict two reduced "['canary_value']") == 3"

# Three black holes (2 s timeout each) join the good rollout, all every 1 s:
# the good one's queries must keep their pace.
: >"$LAB_DIR/relay.log"
sleep 5
echo "# the good rollout's queries in 5 s alone: $(wc -l <"$LAB_DIR/relay.log")"
for h in 1 2 3; do
	rollout hole$h 198.19.0.2$h "$(metric hole "http://127.0.0.1:$HOLE_PORT" 'vector(1)')"
done
lab_wait hole3 "d['name'] == 'hole3'" 5
sleep 1
: >"$LAB_DIR/relay.log"
sleep 10
n=$(wc -l <"$LAB_DIR/relay.log")
check "with 3 black-holed Prometheus servers, the good rollout's query ran $n times in 10 s (at least 7)" \
	expect "$n >= 7"
# Four more, named to come before the good one (a free worker takes the
# first due query in name order): 7 queries of one black-holed address
# every second, each holding a worker 2 s. One address never gets every
# worker, so the good rollout's queries keep their pace.
for h in 1 2 3 4; do
	rollout bad$h 198.19.0.4$h "$(metric hole "http://127.0.0.1:$HOLE_PORT" 'vector(1)')"
done
lab_wait bad4 "d['name'] == 'bad4'" 5
sleep 1
: >"$LAB_DIR/relay.log"
sleep 10
n=$(wc -l <"$LAB_DIR/relay.log")
check "with 7 rollouts on a black-holed Prometheus, 4 of them queried first, the good query ran $n times in 10 s (at least 7)" \
	expect "$n >= 7"
lab_finish
