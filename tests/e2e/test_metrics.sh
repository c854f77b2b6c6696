#!/usr/bin/env bash
# /metrics tells the truth: after known traffic (new connections, the canary
# answering 20% of its requests with 503, each after 30 ms) the exposition passes promtool,
# gzip works, the histogram is consistent, every counter equals what the
# client saw, and a real Prometheus scraping the TCP listener stores the
# same totals. Scraped concurrently on both listeners, counters hold still.
set -u
source "$(dirname "$0")/lib.sh"

PORT=9464      # the agent's TCP listener, on the node namespace's loopback
PROM_PORT=9091 # Prometheus' own HTTP API, same loopback
REQUESTS=2000
PROMETHEUS=${PROMETHEUS:-prometheus}
PROMTOOL=${PROMTOOL:-promtool}

if ! command -v "$PROMETHEUS" >/dev/null || ! command -v "$PROMTOOL" >/dev/null; then
	# Root without the tools is a broken setup (tools/install-deps.sh installs them).
	lab_require_root
	echo "not ok - prometheus and promtool are installed (tools/install-deps.sh)"
	exit 1
fi

lab_standard 30 --listen 127.0.0.1:$PORT
lab_backend_set cn1 error_rate=0.2 latency_ms=30

# A real Prometheus in the node namespace, scraping the agent every second.
cat >"$LAB_DIR/prometheus.yml" <<YAML
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: canaryd
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
YAML
"$PROMTOOL" check config "$LAB_DIR/prometheus.yml" >/dev/null 2>&1 ||
	echo "not ok - promtool check config on our prometheus.yml"
# nsenter execs prometheus, so $! is its own PID; lab_down kills every *.pid.
nsenter --net=/run/netns/"$(ns node)" "$PROMETHEUS" --config.file="$LAB_DIR/prometheus.yml" \
	--storage.tsdb.path="$LAB_DIR/prom" --web.listen-address=127.0.0.1:$PROM_PORT \
	>>"$LAB_DIR/prometheus.log" 2>&1 &
echo $! >"$LAB_DIR/prometheus.pid"

# promql QUERY: the instant query's result array, as JSON.
promql() {
	in_ns node curl -sS -m 3 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
		--data-urlencode "query=$1" | jget 'json.dumps(d["data"]["result"])'
}

# ---- known traffic ----
out=$(lab_load --mode newconn --connections 16 --requests $REQUESTS --timeout-ms 2000)
t_end=$(date +%s.%N)
echo "# client: $out"
ok=$(echo "$out" | jget 'd["ok"]')
cn=$(echo "$out" | jget 'd["backends"].get("cn1", 0)')
st=$(echo "$out" | jget 'd["backends"].get("st1", 0) + d["backends"].get("st2", 0)')
c503=$(echo "$out" | jget 'd["backend_status"].get("cn1", {}).get("503", 0)')
s503=$(echo "$out" | jget 'sum(v.get("503", 0) for k, v in d["backend_status"].items() if k != "cn1")')
max_us=$(echo "$out" | jget 'd["latency_us"]["max"]')
check "client: all $REQUESTS requests answered ($ok)" expect "$ok == $REQUESTS"
check "client: both versions answered (stable $st, canary $cn) and the canary's 503s are there ($c503)" \
	expect "$st > 0 and $cn > 0 and $st + $cn == $ok and $c503 > 0 and $s503 == 0"

# ---- the exposition, plain and gzip ----
in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" -D "$LAB_DIR/plain.hdr" \
	-o "$LAB_DIR/metrics.txt" http://x/metrics
in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" -D "$LAB_DIR/gzip.hdr" \
	-H 'Accept-Encoding: gzip' -o "$LAB_DIR/metrics.gz" http://x/metrics
hdr() { tr -d '\r' <"$1" | sed -n "s/^$2: //Ip" | tail -1; }
check "Content-Type is text/plain; version=0.0.4 ($(hdr "$LAB_DIR/plain.hdr" Content-Type))" \
	grep -q '^text/plain; version=0\.0\.4' <<<"$(hdr "$LAB_DIR/plain.hdr" Content-Type)"
check "no Content-Encoding without Accept-Encoding" [ -z "$(hdr "$LAB_DIR/plain.hdr" Content-Encoding)" ]

"$PROMTOOL" check metrics <"$LAB_DIR/metrics.txt" >"$LAB_DIR/promtool.out" 2>&1
rc=$?
sed 's/^/# promtool: /' "$LAB_DIR/promtool.out"
check "promtool check metrics: exit 0 and no lint output (rc $rc)" \
	[ $rc -eq 0 -a ! -s "$LAB_DIR/promtool.out" ]

check "gzip: Content-Encoding is gzip ($(hdr "$LAB_DIR/gzip.hdr" Content-Encoding))" \
	[ "$(hdr "$LAB_DIR/gzip.hdr" Content-Encoding)" = gzip ]
check "gzip: the body is a valid gzip stream" gzip -t "$LAB_DIR/metrics.gz"
gzip -dc "$LAB_DIR/metrics.gz" >"$LAB_DIR/metrics-gz.txt" 2>/dev/null
check "gzip: the body gunzips to an exposition promtool accepts" \
	bash -c "'$PROMTOOL' check metrics <'$LAB_DIR/metrics-gz.txt' >/dev/null 2>&1 && [ -s '$LAB_DIR/metrics-gz.txt' ]"
# The two scrapes differ only in values that move on their own (ticks).
series() { grep -v '^#' "$1" | sed 's/ [^ ]*$//' | sort; }
check "gzip: the same series as the plain scrape" \
	[ "$(series "$LAB_DIR/metrics.txt")" = "$(series "$LAB_DIR/metrics-gz.txt")" ]
check "gzip: the same counters as the plain scrape (no traffic since)" \
	[ "$(grep '^canaryd_re' "$LAB_DIR/metrics.txt")" = "$(grep '^canaryd_re' "$LAB_DIR/metrics-gz.txt")" ]

# ---- values against the client ----
phase=$(lab_status web 'd["phase"]')
weight=$(lab_status web 'd["weight"]')
aborts=$(lab_status web 'd["aborts"]')
while IFS=$'\t' read -r res desc; do
	check "$desc" [ "$res" = 1 ]
done < <(python3 - "$LAB_DIR/metrics.txt" "$st" "$cn" "$c503" "$max_us" "$phase" "$weight" "$aborts" <<'PY'
import re, sys
path, st, cn, c503, max_us, phase, weight, aborts = sys.argv[1:]
st, cn, c503, max_us, weight, aborts = int(st), int(cn), int(c503), int(max_us), float(weight), int(aborts)
line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
samples, types = [], {}
for line in open(path):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, typ = line.split(" ", 3)
        types[name] = typ
        continue
    if not line or line.startswith("#"):
        continue
    m = line_re.match(line)
    if not m:
        print(f"0\tparsable sample line: {line!r}")
        continue
    labels = dict(label_re.findall(m.group(2) or ""))
    samples.append((m.group(1), labels, float(m.group(3))))

def get(name, **want):
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in want.items())]
    return vals[0] if len(vals) == 1 else None

def out(ok, desc):
    print(f"{1 if ok else 0}\t{desc}")

expect_req = {"stable": st, "canary": cn}
expect_5xx = {"stable": 0, "canary": c503}
svc = {"rollout": "web", "service": "198.19.0.10:80"}
for ver in ("stable", "canary"):
    lv = dict(svc, version=ver)
    n = expect_req[ver]
    r = get("canaryd_requests_total", **lv)
    out(r == n, f"{ver}: canaryd_requests_total {r} == client's {n}")
    r = get("canaryd_responses_total", code_class="5xx", **lv)
    out(r == expect_5xx[ver], f"{ver}: canaryd_responses_total{{code_class=5xx}} {r} == client's 503s {expect_5xx[ver]}")
    r = get("canaryd_responses_total", code_class="2xx", **lv)
    out(r == n - expect_5xx[ver], f"{ver}: canaryd_responses_total{{code_class=2xx}} {r} == client's 200s {n - expect_5xx[ver]}")
    others = [get("canaryd_responses_total", code_class=c, **lv) for c in ("other", "1xx", "3xx", "4xx")]
    out(others == [0, 0, 0, 0], f"{ver}: no other/1xx/3xx/4xx responses {others}")
    r = get("canaryd_errors_total", **lv)
    out(r == expect_5xx[ver], f"{ver}: canaryd_errors_total {r} == 5xx {expect_5xx[ver]} (no resets, no refusals)")
    conns = [get("canaryd_connections_total", outcome=o, **lv) for o in ("opened", "refused", "reset")]
    out(conns == [n, 0, 0], f"{ver}: connections opened/refused/reset {conns} == [{n}, 0, 0] (one per request)")
    tb, tc = get("canaryd_bytes_total", direction="to_backend", **lv), get("canaryd_bytes_total", direction="to_client", **lv)
    # Each connection carries at least its request line / status line, plus SYN..FIN.
    out(tb is not None and tc is not None and tb >= 60 * n and tc >= 60 * n,
        f"{ver}: bytes to_backend {tb} and to_client {tc} at least 60 per connection")

    name = "canaryd_request_duration_seconds"
    buckets = sorted(((float(l["le"]), v) for nm, l, v in samples
                      if nm == name + "_bucket" and all(l.get(k) == w for k, w in lv.items())))
    les = [le for le, _ in buckets]
    otel = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, float("inf")]
    out(les == otel, f"{ver}: histogram buckets are OpenTelemetry's 5 ms .. 10 s and +Inf ({les})")
    counts = [v for _, v in buckets]
    out(all(a <= b for a, b in zip(counts, counts[1:])), f"{ver}: buckets cumulative, non-decreasing {counts}")
    out(all(v == int(v) and v >= 0 for v in counts), f"{ver}: bucket counts are whole numbers")
    inf, cnt, sm = (counts[-1] if counts else None), get(name + "_count", **lv), get(name + "_sum", **lv)
    out(inf == cnt == n, f"{ver}: +Inf {inf} == _count {cnt} == requests answered {n}")
    mean = sm / cnt if sm is not None and cnt else None
    out(mean is not None and 1e-6 <= mean <= max_us / 1e6,
        f"{ver}: _sum {sm} s: mean {mean} s between 1 us and the client's max latency {max_us / 1e6} s")
    bk = dict(buckets)
    if ver == "stable":
        # The stable backends answer at once; 90%, not all: on a loaded machine a
        # few answers wait for a CPU longer than 25 ms.
        out(bk.get(0.025, 0) >= 0.9 * n, f"stable: le=0.025 bucket {bk.get(0.025)} holds >= 90% of {n}")
        out(mean is not None and mean < 0.025, f"stable: mean {mean} s < 25 ms")
    else:
        # The canary answers after 30 ms: none at or under 25 ms (kernel buckets are
        # at most 6.25% wide, none straddling 25 ms holds a 30 ms answer), nearly all
        # (90%, as for stable) by 100 ms.
        out(bk.get(0.025) == 0 and bk.get(0.005) == 0, f"canary: le=0.005 {bk.get(0.005)} and le=0.025 {bk.get(0.025)} buckets are 0")
        out(bk.get(0.1, 0) >= 0.9 * n, f"canary: le=0.1 bucket {bk.get(0.1)} holds >= 90% of {n}")
        out(mean is not None and 0.030 <= mean < 0.1, f"canary: mean {mean} s within [30 ms, 100 ms)")

for name, typ in (("canaryd_requests_total", "counter"), ("canaryd_responses_total", "counter"),
                  ("canaryd_errors_total", "counter"), ("canaryd_connections_total", "counter"),
                  ("canaryd_bytes_total", "counter"), ("canaryd_request_duration_seconds", "histogram"),
                  ("canaryd_rollout_canary_weight_ratio", "gauge"), ("canaryd_rollout_step", "gauge"),
                  ("canaryd_rollout_phase", "gauge"), ("canaryd_rollout_aborts_total", "counter"),
                  ("canaryd_build_info", "gauge"), ("target_info", "gauge"),
                  ("canaryd_packets_total", "counter"), ("canaryd_conntrack_entries", "gauge"),
                  ("canaryd_conntrack_capacity_entries", "gauge"),
                  ("canaryd_tick_duration_seconds", "gauge"), ("canaryd_ticks_total", "counter")):
    out(types.get(name) == typ, f"# TYPE {name} {typ} (got {types.get(name)})")

w = get("canaryd_rollout_canary_weight_ratio", **svc)
out(w is not None and abs(w - weight / 100) < 1e-9, f"weight ratio {w} == API weight {weight}% / 100")
ph = {l["phase"]: v for n, l, v in samples if n == "canaryd_rollout_phase" and l.get("rollout") == "web"}
out(sorted(ph) == ["Degraded", "Healthy", "Paused", "Progressing"] and ph.get(phase) == 1 and sum(ph.values()) == 1,
    f"rollout_phase: 1 for the API's phase {phase}, 0 for the others {ph}")
r = get("canaryd_rollout_aborts_total", **svc)
out(r == aborts, f"canaryd_rollout_aborts_total {r} == API aborts {aborts}")
out(get("canaryd_build_info") == 1, "canaryd_build_info is 1")
out(get("target_info", service_name="canaryd") == 1, "target_info{service_name=canaryd} is 1")
t = get("canaryd_ticks_total")
out(t is not None and t > 0, f"canaryd_ticks_total {t} > 0")
td = get("canaryd_tick_duration_seconds")
out(td is not None and 0 < td < 0.1, f"canaryd_tick_duration_seconds {td} within (0, 0.1) s")
cap = get("canaryd_conntrack_capacity_entries")
out(cap is not None and cap > 0, f"canaryd_conntrack_capacity_entries {cap} > 0")
PY
)

# ---- a real Prometheus ----
# Wait (bounded) for a scrape that started after the traffic ended.
last=0
for i in $(seq 1 100); do
	last=$(promql 'max(timestamp(canaryd_requests_total{rollout="web"}))' 2>/dev/null |
		jget 'd[0]["value"][1] if d else 0' 2>/dev/null)
	expect "${last:-0} > $t_end" && break
	sleep 0.2
done
check "Prometheus scraped the agent after the traffic ended (last $last > $t_end)" \
	expect "${last:-0} > $t_end"
check "Prometheus: up{job=canaryd} is 1" \
	[ "$(promql 'up{job="canaryd"}' | jget 'd[0]["value"][1] if d else None')" = 1 ]
pq() { promql "$1" | jget "{r['metric']['version']: float(r['value'][1]) for r in d}"; }
req=$(pq 'canaryd_requests_total{rollout="web"}')
check "Prometheus: canaryd_requests_total $req == client's {stable: $st, canary: $cn}" \
	expect "$req == {'stable': $st, 'canary': $cn}"
r5=$(pq 'canaryd_responses_total{rollout="web",code_class="5xx"}')
check "Prometheus: 5xx $r5 == client's 503s {stable: 0, canary: $c503}" \
	expect "$r5 == {'stable': 0, 'canary': $c503}"
hc=$(pq 'canaryd_request_duration_seconds_count{rollout="web"}')
check "Prometheus: histogram _count $hc == client's" expect "$hc == {'stable': $st, 'canary': $cn}"
hi=$(pq 'canaryd_request_duration_seconds_bucket{rollout="web",le="+Inf"}')
check "Prometheus: +Inf bucket $hi == client's" expect "$hi == {'stable': $st, 'canary': $cn}"
tot=$(promql 'sum(canaryd_requests_total{rollout="web"})' | jget 'float(d[0]["value"][1]) if d else None')
check "Prometheus: sum(canaryd_requests_total) $tot == $REQUESTS sent" expect "$tot == $REQUESTS"
q() { promql "histogram_quantile($1, canaryd_request_duration_seconds_bucket{rollout=\"web\",version=\"$2\"})" |
	jget 'float(d[0]["value"][1]) if d else -1'; }
p50=$(q 0.5 canary)
p90=$(q 0.9 stable) # 90th, as for the buckets above: a loaded machine delays a few answers
check "Prometheus: canary histogram_quantile(0.5) $p50 s within [25 ms, 50 ms] (backend waits 30 ms)" \
	expect "0.025 <= $p50 <= 0.05"
check "Prometheus: stable histogram_quantile(0.9) $p90 s within (0, 25 ms]" expect "0 < $p90 <= 0.025"

# ---- concurrent scrapes on the UNIX socket and the TCP listener ----
# No traffic now: every scrape must show the same counters.
grep -E '^canaryd_(requests|responses|connections|errors)_total\{' "$LAB_DIR/metrics.txt" |
	sort >"$LAB_DIR/counters.want"
cat >"$LAB_DIR/hammer.py" <<'PY'
import http.client, socket, sys, threading, time
sock, port, want_file, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
want = sorted(open(want_file).read().splitlines())
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(sock)
stats = {"scrapes": 0, "bad": 0, "failed": 0, "example": ""}
lock = threading.Lock()
def run(conn):
    end = time.time() + secs
    while time.time() < end:
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode()
        except Exception as e:
            with lock:
                stats["failed"] += 1
            conn.close()
            continue
        got = sorted(l for l in body.splitlines()
                     if l.startswith(("canaryd_requests_total{", "canaryd_responses_total{",
                                      "canaryd_connections_total{", "canaryd_errors_total{")))
        with lock:
            stats["scrapes"] += 1
            if got != want:
                stats["bad"] += 1
                if not stats["example"]:
                    stats["example"] = "; ".join(sorted(set(got) - set(want)))[:300]
ts = [threading.Thread(target=run, args=(c,)) for c in
      (Unix("x", timeout=5), http.client.HTTPConnection("127.0.0.1", port, timeout=5))]
[t.start() for t in ts]
[t.join() for t in ts]
print(f'{stats["scrapes"]} {stats["bad"]} {stats["failed"]} {stats["example"]}')
PY
read -r scrapes bad failed example < <(in_ns node python3 "$LAB_DIR/hammer.py" "$LAB_SOCKET" $PORT \
	"$LAB_DIR/counters.want" 3)
echo "# concurrent scrapes: $scrapes, with other counters: $bad, failed: $failed${example:+; e.g. $example}"
check "concurrent scrapes (socket + TCP, 3 s): all answered ($scrapes, $failed failed)" \
	expect "${scrapes:-0} > 100 and ${failed:-1} == 0"
check "concurrent scrapes: the counters never change without traffic ($bad of $scrapes differ)" \
	expect "${bad:-1} == 0"
lab_finish
