#!/usr/bin/env bash
# run-all: alone (the agent under Valgrind is CPU-bound and slow to start)
# The agent under Valgrind through a whole rollout with traffic, the API and
# /metrics, a health check, Prometheus queries (http, and https with a
# bearer token file), a SIGHUP reload, the TCP
# listener with its token and a token rotation: zero invalid accesses and
# zero leaks. Suppressions cover only
# Valgrind's incomplete model of the bpf() syscall and libbpf's netlink code
# (tests/valgrind/libbpf.supp).
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root
command -v valgrind >/dev/null || { echo "not ok - valgrind is not installed"; exit 1; }
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
lab_rollout web "$LAB_VIP" "[{setWeight: 20}, {pause: {duration: 2s}}, {setWeight: 100}]" \
	"{minRequests: 20, metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}, {name: compareLatency, maxIncrease: 1}]}" \
	"  healthCheck: {interval: 300ms, timeout: 200ms, failureThreshold: 2}"
# A second rollout whose Prometheus does not answer: the query path (curl,
# its errors) runs every second; it never passes, so it holds. Its second
# metric is an https source with a CA and a bearer token file: the token is
# read and its header built for every query (the connection is refused
# before any TLS handshake, which Valgrind is not run over).
(umask 077 && echo "prom-token" >"$LAB_DIR/prom-token")
: >"$LAB_DIR/prom-ca.pem"
lab_rollout kpi 198.19.0.11 "[{setWeight: 10}, {pause: {}}]" \
	"{interval: 1s, minRequests: 1, metrics: [{name: kpi, prometheus: {address: \"http://127.0.0.1:1\", query: up}, successCondition: \"result == 1\", consecutiveErrorLimit: 1000}, {name: kpi-https, prometheus: {address: \"https://127.0.0.1:1\", query: up, tls: {caFile: $LAB_DIR/prom-ca.pem}, bearerTokenFile: $LAB_DIR/prom-token}, successCondition: \"result == 1\", consecutiveErrorLimit: 1000}]}"
TOKEN_FILE=$LAB_DIR/token
(umask 077 && echo "token-one" >"$TOKEN_FILE")
PORT=9467
mkdir -p "$LAB_STATE_DIR"
nsenter --net=/run/netns/"$(ns node)" valgrind --leak-check=full \
	--show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect \
	--suppressions="$LAB_ROOT/tests/valgrind/libbpf.supp" --error-exitcode=3 \
	--log-file="$LAB_DIR/valgrind.log" "$LAB_BUILD/canaryd" --bpffs "$LAB_BPFFS" \
	--host-cgroup off --interfaces 'to-*' --config "$LAB_CONFIG_DIR" --state-dir "$LAB_STATE_DIR" \
	--api-socket "$LAB_SOCKET" --tick-ms 100 --listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE" \
	>>"$LAB_DIR/canaryd.log" 2>&1 &
vg=$!
echo "$vg" >"$LAB_DIR/valgrind.pid"
# Up to 90 s: under Valgrind, verifying and loading the programs is slow.
for i in $(seq 1 900); do grep -q msg=ready "$LAB_DIR/canaryd.log" 2>/dev/null && break; sleep 0.1; done
check "the agent starts under valgrind" grep -q msg=ready "$LAB_DIR/canaryd.log"
grep -q msg=ready "$LAB_DIR/canaryd.log" || tail -n 5 "$LAB_DIR/canaryd.log" "$LAB_DIR/valgrind.log" | sed 's/^/# /'
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 2 --rate 200 --duration-s 20
check "the rollout is promoted under valgrind" lab_wait web "d['phase'] == 'Healthy'" 20
# The TCP listener with the token: refused, accepted, then a rotated token.
tcp_pause() {
	in_ns node curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -d '' \
		-H "Authorization: Bearer $1" "http://127.0.0.1:$PORT/api/v1/rollouts/kpi/pause"
}
check "TCP: wrong token 403" [ "$(tcp_pause nope)" = 403 ]
check "TCP: the token 200" [ "$(tcp_pause token-one)" = 200 ]
(umask 077 && echo "token-two" >"$TOKEN_FILE.new") && mv "$TOKEN_FILE.new" "$TOKEN_FILE"
ok=0
for i in $(seq 1 30); do [ "$(tcp_pause token-two)" = 200 ] && { ok=1; break; }; sleep 0.2; done
check "TCP: the rotated token is taken" [ $ok = 1 ]
# A configuration reload (SIGHUP) and a query error in the verdict.
kill -HUP "$vg"
check "the Prometheus query path ran (its error is in the verdict)" \
	lab_wait kpi "any('query failed' in v['detail'] for v in d['analysis']['verdicts'])" 10
check "the https query path with its token file ran (refused, not the token)" \
	lab_wait kpi "any(v['metric'] == 'kpi-https' and 'https://127.0.0.1:1' in v['detail'] for v in d['analysis']['verdicts'])" 10
in_ns node curl -s --unix-socket "$LAB_SOCKET" -H 'Accept-Encoding: gzip' http://canaryd/metrics >/dev/null
canaryctl set-weight web 5 >/dev/null 2>&1 # 409 on a complete rollout: an error path too
kill "$LAB_LOAD_PID" 2>/dev/null
kill -TERM "$vg"
wait "$vg"
rc=$?
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|no leaks are possible' "$LAB_DIR/valgrind.log" |
	sed 's/^==[0-9]*== /# /'
check "valgrind exit status 0 (no error, no leak)" [ "$rc" -eq 0 ]
check "zero errors" grep -q 'ERROR SUMMARY: 0 errors' "$LAB_DIR/valgrind.log"
check "zero leaks" grep -qE 'no leaks are possible|definitely lost: 0 bytes' "$LAB_DIR/valgrind.log"
lab_finish
