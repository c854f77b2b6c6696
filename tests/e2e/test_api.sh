#!/usr/bin/env bash
# The HTTP API answers what docs/api.md promises: every route's status code
# and body shape on the UNIX socket (mode 0600), the TCP listener read-only
# without --token-file and guarded by the bearer token with it (never
# logged), canaryctl --server, and a slow client that delays neither the
# API nor the agent's ticks.
set -u
source "$(dirname "$0")/lib.sh"

PORT=9464
TCP=http://127.0.0.1:$PORT
lab_standard 20

# req METHOD URL [curl args...]: one request from the node namespace; sets
# CODE (HTTP status, 000 if none) and BODY, headers in $LAB_DIR/hdr.
req() {
	local method=$1 url=$2
	shift 2
	CODE=$(in_ns node curl -sS -m 5 -o "$LAB_DIR/body" -D "$LAB_DIR/hdr" -w '%{http_code}' \
		-X "$method" "$@" "$url" 2>"$LAB_DIR/curl.err")
	BODY=$(cat "$LAB_DIR/body" 2>/dev/null)
}
# sock METHOD PATH [curl args...]: req over the agent's UNIX socket.
sock() {
	local method=$1 path=$2
	shift 2
	req "$method" "http://x$path" --unix-socket "$LAB_SOCKET" "$@"
}
# is_error: BODY is {"error": "non-empty string"} and nothing else.
is_error() {
	[ "$(echo "$BODY" | jget 'list(d) == ["error"] and isinstance(d["error"], str) and len(d["error"]) > 0' 2>/dev/null)" = True ]
}
body_is() { [ "$(echo "$BODY" | jget "bool($1)" 2>/dev/null)" = True ]; }
header() { tr -d '\r' <"$LAB_DIR/hdr" | sed -n "s/^$1: //Ip" | tail -1; }
allow_has() { header Allow | tr -d ' ' | tr ',' '\n' | grep -qx "$1"; }
# status CODE DESC: check the last request's status code.
status() { check "$2 -> $1 (got $CODE${BODY:+: $(echo "$BODY" | tr '\n' ' ' | head -c 160)})" [ "$CODE" = "$1" ]; }

# ---- UNIX socket ----
check "socket file mode is 0600 ($(stat -c %a "$LAB_SOCKET"))" [ "$(stat -c %a "$LAB_SOCKET")" = 600 ]
check "socket is a socket owned by root" [ -S "$LAB_SOCKET" -a "$(stat -c %u "$LAB_SOCKET")" = 0 ]

sock GET /healthz
status 200 "GET /healthz"
check "/healthz body is ok" [ "$BODY" = ok ]
sock GET /readyz
status 200 "GET /readyz"
check "/readyz body is ready" [ "$BODY" = ready ]

sock GET /api/v1/rollouts
status 200 "GET /api/v1/rollouts"
# No traffic: the setWeight step waits for the analysis, so step 0, Progressing.
check "rollouts list: one rollout, web, Progressing at weight 20" \
	body_is 'len(d["rollouts"]) == 1 and d["rollouts"][0]["name"] == "web" and d["rollouts"][0]["phase"] == "Progressing" and d["rollouts"][0]["weight"] == 20'
check "Content-Type is application/json" [ "$(header Content-Type)" = application/json ]

sock GET /api/v1/rollouts/web
status 200 "GET /api/v1/rollouts/web"
check "ROLLOUT shape: fields of docs/api.md with the lab's values" body_is '
	d["name"] == "web" and d["phase"] == "Progressing" and d["step"] == 0 and d["step_count"] == 2
	and d["steps"] == [{"setWeight": 20}, {"pause": {}}] and d["weight"] == 20
	and d["paused_by_operator"] is False and d["pause_remaining_s"] is None and d["aborts"] == 0
	and d["service"] == {"vip": "198.19.0.10", "port": 80, "protocol": "http"}
	and d["stable"]["revision"] == "v1"
	and d["stable"]["endpoints"] == ["198.18.1.2:8080", "198.18.2.2:8080"]
	and d["canary"]["revision"] == "v2" and d["canary"]["endpoints"] == ["198.18.3.2:8080"]
	and all(k in d[v] for v in ("stable", "canary") for k in ("rps", "error_ratio",
		"latency_p50_ms", "latency_p99_ms", "requests_total", "errors_total",
		"connections_total", "responses_5xx_total"))
	and d["analysis"]["decision"] in ("hold", "pass", "fail")
	and isinstance(d["analysis"]["verdicts"], list) and isinstance(d["abort_verdicts"], list)
	and isinstance(d["message"], str)'

sock GET /api/v1/rollouts/nope
status 404 "GET unknown rollout"
check "404 body is {\"error\": ...}" is_error
sock GET /nope
status 404 "GET unknown route"
check "unknown route body is {\"error\": ...}" is_error

sock POST /api/v1/rollouts/web -d ''
status 405 "POST /api/v1/rollouts/web (no action)"
check "405 body is {\"error\": ...}" is_error
check "405 sets Allow, with GET in it ($(header Allow))" allow_has GET
sock GET /api/v1/rollouts/web/promote
status 405 "GET .../promote"
check "405 body is {\"error\": ...}" is_error
check "405 sets Allow, with POST in it ($(header Allow))" allow_has POST
sock POST /healthz -d ''
status 405 "POST /healthz"

J=(-H 'Content-Type: application/json')
sock POST /api/v1/rollouts/web/weight "${J[@]}" -d '{"weight": "x"}'
status 400 'POST .../weight {"weight": "x"}'
check "400 body is {\"error\": ...}" is_error
sock POST /api/v1/rollouts/web/weight "${J[@]}" -d '{"weight": 12.345}'
status 400 'POST .../weight {"weight": 12.345} (3 decimals)'
check "400 body is {\"error\": ...}" is_error
sock POST /api/v1/rollouts/web/weight "${J[@]}" -d '{"weight": 100.01}'
status 400 'POST .../weight {"weight": 100.01} (out of range)'
sock POST /api/v1/rollouts/web/weight "${J[@]}" -d '{"weight": -1}'
status 400 'POST .../weight {"weight": -1} (out of range)'
sock POST /api/v1/rollouts/web/weight "${J[@]}" -d 'not json'
status 400 'POST .../weight with a body that is not JSON'
sock POST /api/v1/rollouts/web/weight "${J[@]}" -d ''
status 400 'POST .../weight with no body'

# Body limit: 64 KiB is accepted as a body (and then is not JSON), one more byte is 413.
head -c 65536 /dev/zero | tr '\0' ' ' >"$LAB_DIR/64k"
head -c $((70 * 1024)) /dev/zero | tr '\0' ' ' >"$LAB_DIR/70k"
sock POST /api/v1/rollouts/web/weight "${J[@]}" --data-binary @"$LAB_DIR/70k"
status 413 "POST .../weight with a 70 KiB body"
check "413 body is {\"error\": ...}" is_error
sock POST /api/v1/rollouts/web/weight "${J[@]}" --data-binary @"$LAB_DIR/64k"
status 400 "POST .../weight with exactly 64 KiB of blanks (within the limit)"
check "weight unchanged by the rejected bodies" lab_wait web "d['weight'] == 20" 1

sock POST /api/v1/rollouts/web/weight "${J[@]}" -d '{"weight": 12.5}'
status 200 'POST .../weight {"weight": 12.5}'
check "200 body is the rollout at weight 12.5" body_is 'd["name"] == "web" and d["weight"] == 12.5'
check "GET shows weight 12.5" lab_wait web "d['weight'] == 12.5" 2

sock POST /api/v1/rollouts/web/abort -d ''
status 200 "POST .../abort"
check "abort answers the rollout Degraded at weight 0" \
	body_is 'd["phase"] == "Degraded" and d["weight"] == 0 and d["aborts"] == 1'
sock POST /api/v1/rollouts/web/promote -d ''
status 409 "POST .../promote of the aborted rollout"
check "409 body is {\"error\": ...}" is_error
sock POST /api/v1/rollouts/web/retry -d ''
status 200 "POST .../retry"
check "retry answers the rollout out of Degraded" body_is 'd["phase"] != "Degraded"'
check "after retry: step 0 again, Progressing at weight 20" \
	lab_wait web "d['phase'] == 'Progressing' and d['step'] == 0 and d['weight'] == 20" 5
# canaryd_rollout_aborts_total is a counter: a retry must not take it back to 0.
aborts_metric=$(in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" http://x/metrics |
	sed -n 's/^canaryd_rollout_aborts_total{rollout="web",[^}]*} \([0-9]*\)$/\1/p')
check "retry keeps the abort count: API aborts $(lab_status web 'd["aborts"]'), canaryd_rollout_aborts_total ${aborts_metric:-?} (want 1)" \
	expect "$(lab_status web 'd["aborts"]') == 1 and ${aborts_metric:-0} == 1"
sock POST /api/v1/rollouts/web/retry -d ''
status 409 "POST .../retry of a rollout that is not aborted"
sock POST /api/v1/rollouts/web/unknown -d ''
status 404 "POST .../unknown (no such verb)"
check "404 body is {\"error\": ...}" is_error
sock POST /api/v1/rollouts/nope/pause -d ''
status 404 "POST .../pause of an unknown rollout"

# ---- TCP listener, no token file: read-only ----
lab_agent_stop
lab_agent --listen 127.0.0.1:$PORT || exit 1
req GET "$TCP/metrics"
status 200 "TCP: GET /metrics"
check "TCP: /metrics is Prometheus text 0.0.4 ($(header Content-Type))" \
	grep -q '^text/plain; version=0\.0\.4' <<<"$(header Content-Type)"
check "TCP: /metrics has canaryd_ticks_total" grep -q '^canaryd_ticks_total [0-9]' "$LAB_DIR/body"
req GET "$TCP/healthz"
status 200 "TCP: GET /healthz"
req GET "$TCP/api/v1/rollouts/web"
status 200 "TCP: GET /api/v1/rollouts/web"
req POST "$TCP/api/v1/rollouts/web/pause" -d ''
status 403 "TCP without --token-file: POST .../pause"
check "403 body is {\"error\": ...}" is_error
req POST "$TCP/api/v1/rollouts/web/pause" -d '' -H 'Authorization: Bearer anything'
status 403 "TCP without --token-file: POST .../pause with some bearer token"
check "TCP read-only: the rollout was not paused" lab_wait web "not d['paused_by_operator']" 1

# ---- TCP listener with a token ----
TOKEN=tok-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN_FILE=$LAB_DIR/token
(umask 077 && echo "$TOKEN" >"$TOKEN_FILE")
echo "wrong-$TOKEN" >"$LAB_DIR/wrong-token"
lab_agent_stop
lab_agent --listen 127.0.0.1:$PORT --token-file "$TOKEN_FILE" || exit 1
req POST "$TCP/api/v1/rollouts/web/pause" -d ''
status 401 "TCP with token: POST without Authorization"
check "401 body is {\"error\": ...}" is_error
req POST "$TCP/api/v1/rollouts/web/pause" -d '' -H "Authorization: Bearer x$TOKEN"
status 403 "TCP with token: wrong token"
check "403 body is {\"error\": ...}" is_error
req POST "$TCP/api/v1/rollouts/web/pause" -d '' -H "Authorization: Bearer ${TOKEN%?}"
status 403 "TCP with token: the token less its last character"
req POST "$TCP/api/v1/rollouts/web/pause" -d '' -H "Authorization: Bearer ${TOKEN}x"
status 403 "TCP with token: the token and one more character"
req POST "$TCP/api/v1/rollouts/web/pause" -d '' -H "Authorization: $TOKEN"
status 403 "TCP with token: the token without 'Bearer '"
check "no wrong token paused the rollout" lab_wait web "not d['paused_by_operator']" 1
req GET "$TCP/api/v1/rollouts/web"
status 200 "TCP with token: GET needs no token"
req POST "$TCP/api/v1/rollouts/web/pause" -d '' -H "Authorization: Bearer $TOKEN"
status 200 "TCP with token: right token, POST .../pause"
check "pause answers the rollout paused by the operator" body_is 'd["paused_by_operator"] is True'
req POST "$TCP/api/v1/rollouts/web/resume" -d '' -H "Authorization: Bearer $TOKEN"
status 200 "TCP with token: right token, POST .../resume"
check "resume answers the rollout no longer paused by the operator" body_is 'd["paused_by_operator"] is False'

canaryctl --server "$TCP" pause web >"$LAB_DIR/ctl.out" 2>&1
rc=$?
check "canaryctl --server without --token-file: pause fails with exit 1 (got $rc: $(head -c 120 "$LAB_DIR/ctl.out"))" [ $rc -eq 1 ]
canaryctl --server "$TCP" --token-file "$LAB_DIR/wrong-token" pause web >"$LAB_DIR/ctl.out" 2>&1
rc=$?
check "canaryctl --server with a wrong token: pause fails with exit 1 (got $rc)" [ $rc -eq 1 ]
check "the failed pauses changed nothing" lab_wait web "not d['paused_by_operator']" 1
canaryctl --server "$TCP" --token-file "$TOKEN_FILE" pause web >"$LAB_DIR/ctl.out" 2>&1
rc=$?
check "canaryctl --server --token-file: pause web exits 0 (got $rc: $(head -c 120 "$LAB_DIR/ctl.out"))" [ $rc -eq 0 ]
check "the rollout is paused by the operator" lab_wait web "d['paused_by_operator']" 2
canaryctl --server "$TCP" --token-file "$TOKEN_FILE" resume web >/dev/null 2>&1
check "canaryctl --server --token-file: resume web" lab_wait web "not d['paused_by_operator']" 2
check "the token never appears in the agent's log" bash -c "! grep -qF -- '$TOKEN' '$LAB_DIR/canaryd.log'"

# ---- a slow client delays nothing ----
ticks() {
	in_ns node curl -sS -m 2 --unix-socket "$LAB_SOCKET" http://x/metrics |
		sed -n 's/^canaryd_ticks_total \([0-9]*\)$/\1/p'
}
nsenter --net=/run/netns/"$(ns node)" timeout 15 bash -c \
	"exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'GET /metr' >&3; sleep 12" &
echo $! >"$LAB_DIR/slowclient.pid"
sleep 1
slow_conns=$(in_ns node ss -Htn state established "( dport = :$PORT )" | wc -l)
check "the slow client is connected, half a request line sent ($slow_conns connection)" \
	[ "$slow_conns" -eq 1 ]
t0=$(date +%s%N)
canaryctl status web >/dev/null 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "during the slow request: canaryctl status web answers (rc $rc) within 2 s (${ms} ms)" \
	expect "$rc == 0 and $ms < 2000"
t0=$(date +%s%N)
req GET "$TCP/metrics" -m 2
ms=$((($(date +%s%N) - t0) / 1000000))
status 200 "during the slow request: TCP /metrics (${ms} ms)"
t0=$(date +%s%N)
canaryctl --server "$TCP" --token-file "$TOKEN_FILE" status web >/dev/null 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "during the slow request: canaryctl --server status web answers (rc $rc) within 2 s (${ms} ms)" \
	expect "$rc == 0 and $ms < 2000"
t1=$(ticks)
sleep 1
t2=$(ticks)
# --tick-ms 100: about 10 ticks a second; at least 5 leaves room for a loaded machine.
check "during the slow request: the agent ticks on (${t1:-?} -> ${t2:-?} in 1 s)" \
	expect "${t2:-0} - ${t1:-0} >= 5"
slow=$(cat "$LAB_DIR/slowclient.pid")
check "the slow client is still hanging (it did not get an answer)" kill -0 "$slow"
# Ours to end: a stale PID in a .pid file could be someone else's by lab_down.
kill "$slow" 2>/dev/null
wait "$slow" 2>/dev/null
rm -f "$LAB_DIR/slowclient.pid"
lab_finish
