#!/usr/bin/env bash
# Prometheus as an analysis source: a real Prometheus (Debian's package)
# scrapes a small test exporter in the node namespace; a rollout's metric
# queries it with a successCondition. Flipping the exporter's KPI aborts the
# rollout. A second rollout points at a Prometheus that does not answer: it
# never passes, and aborts after consecutiveErrorLimit errors in a row.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root
command -v prometheus >/dev/null || { echo "not ok - prometheus is not installed"; exit 1; }
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

EXPORTER_PORT=19101
PROM_PORT=19090
echo 1.0 >"$LAB_DIR/kpi"
# The exporter: one gauge whose value is the content of $LAB_DIR/kpi.
nsenter --net=/run/netns/"$(ns node)" python3 -c '
import http.server, sys
path = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("# TYPE kpi_success_ratio gauge\nkpi_success_ratio %s\n" % open(path).read().strip()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$EXPORTER_PORT" "$LAB_DIR/kpi" >"$LAB_DIR/exporter.log" 2>&1 &
echo $! >"$LAB_DIR/exporter.pid"
cat >"$LAB_DIR/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: kpi
    static_configs: [{targets: ["127.0.0.1:$EXPORTER_PORT"]}]
YAML
nsenter --net=/run/netns/"$(ns node)" prometheus --config.file="$LAB_DIR/prometheus.yml" \
	--storage.tsdb.path="$LAB_DIR/prom" --web.listen-address="127.0.0.1:$PROM_PORT" \
	>"$LAB_DIR/prometheus.log" 2>&1 &
echo $! >"$LAB_DIR/prometheus.pid"

query_ok() {
	in_ns node curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/query?query=kpi_success_ratio" |
		grep -q '"value"'
}
for i in $(seq 1 100); do query_ok && break; sleep 0.2; done
check "Prometheus scrapes the test exporter" query_ok

KPI="[{name: checkout-kpi, prometheus: {address: \"http://127.0.0.1:$PROM_PORT\",
        query: kpi_success_ratio}, successCondition: \"result >= 0.95\"}]"
lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}]" \
	"{interval: 1s, minRequests: 20, failureLimit: 1, metrics: $KPI}"
DOWN="[{name: down-kpi, prometheus: {address: \"http://127.0.0.1:1\", query: up},
         successCondition: \"result == 1\", consecutiveErrorLimit: 2}]"
lab_rollout down 198.19.0.11 "[{setWeight: 10}, {pause: {}}]" \
	"{interval: 1s, minRequests: 1, failureLimit: 1, metrics: $DOWN}"
lab_agent
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 2 --rate 200 --duration-s 40

check "a passing KPI lets the rollout reach its pause at 10%" \
	lab_wait web "d['phase'] == 'Paused' and d['weight'] == 10" 15
kpi=$(lab_status web '[v for v in d["analysis"]["verdicts"] if v["metric"] == "checkout-kpi"][0]')
echo "# verdict while healthy: $kpi"
check "the KPI's verdict is a pass with its value" \
	expect "$(lab_status web '[v for v in d["analysis"]["verdicts"] if v["metric"] == "checkout-kpi"][0]["result"] == "pass"')"

echo 0.5 >"$LAB_DIR/kpi.tmp" && mv "$LAB_DIR/kpi.tmp" "$LAB_DIR/kpi"
start=$(date +%s%N)
check "flipping the KPI aborts the rollout" lab_wait web "d['phase'] == 'Degraded'" 20
echo "# KPI flipped -> Degraded in $((($(date +%s%N) - start) / 1000000)) ms (1 s scrape + 1 s query interval, failureLimit 1)"
check "the abort names the KPI and its value" \
	expect "$(lab_status web 'any(v["metric"] == "checkout-kpi" and "0.5" in v["detail"] for v in d["abort_verdicts"])')"
check "weight went back to 0" lab_wait web "d['weight'] == 0" 2

check "an unreachable Prometheus is never a pass: the rollout holds at its first step" \
	expect "$(lab_status down 'd["step"] == 0 and d["phase"] in ("Progressing", "Degraded")')"
check "and it aborts after consecutiveErrorLimit errors in a row" \
	lab_wait down "d['phase'] == 'Degraded'" 15
echo "# $(lab_status down 'd["message"]')"
check "the abort says the query failed" \
	expect "$(lab_status down '"query failed" in d["message"]')"
kill "$LAB_LOAD_PID" 2>/dev/null
lab_finish
