#!/usr/bin/env bash
# Webhooks that decide (Flagger's confirm-promotion and rollout hooks):
#  1. strategy.prePromotion answering 409 holds a rollout whose every step
#     passed, at its last weight, saying so; once it answers 200 the
#     rollout completes;
#  2. a webhook metric that starts answering 500 fails its checks and aborts
#     the rollout, with the answer in the verdict.
# The endpoints run in the lab's upstream namespace; their answer is read
# from a file at every request.
set -u
source "$(dirname "$0")/lib.sh"

UP=198.18.255.2

# hook PORT: answer every POST with the status in $LAB_DIR/hook-PORT.status.
hook() {
	echo 200 >"$LAB_DIR/hook-$1.status"
	nsenter --net=/run/netns/"$(ns up)" python3 - "$1" "$LAB_DIR/hook-$1.status" <<'PY' &
import http.server, sys
port, status_file = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(int(open(status_file).read()))
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
PY
	echo $! >"$LAB_DIR/hook-$1.pid"
	local i
	for i in $(seq 1 50); do
		in_ns up bash -c "exec 3<>/dev/tcp/$UP/$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
answer() { echo "$2" >"$LAB_DIR/hook-$1.status"; }

lab_with_warm_backends
hook 9010
hook 9011
answer 9010 409
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 400 --duration-s 60 \
	--timeout-ms 3000
load=$LAB_LOAD_PID

# ---- 1. pre-promotion
lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {duration: 1s}}, {setWeight: 100}]
    prePromotion: {url: \"http://$UP:9010/confirm\", timeout: 1s}" \
	"{interval: 500ms, minRequests: 20, metrics: [{name: errorRate, max: 0.05}]}"
lab_agent
check "1: every step passed, the rollout waits for the pre-promotion hook's yes" \
	lab_wait web "d['weight'] == 100 and 'waiting for the pre-promotion hook (it answered HTTP 409)' in d['message']" 20
sleep 1
check "1: and stays at its last weight while the hook says 409" \
	expect "$(lab_status web 'd["phase"] == "Progressing" and d["weight"] == 100')"
answer 9010 200
check "1: the hook answers 200: promoted" lab_wait web "d['phase'] == 'Healthy'" 10
check "1: the hook's answers are logged" grep -q 'msg="pre-promotion hook" rollout=web answer="it answered HTTP 200"' \
	"$LAB_DIR/canaryd.log"

# ---- 2. a webhook metric
LAB_CANARY_REVISION=v3 lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}]" \
	"{interval: 500ms, minRequests: 20, metrics: [{name: errorRate, max: 0.05},
	  {name: legacy-check, webhook: {url: \"http://$UP:9011/check\", timeout: 1s}}]}"
check "2: the webhook metric passes and the rollout reaches its pause" \
	lab_wait web "d['weight'] == 10 and d['phase'] == 'Paused' and d['canary']['revision'] == 'v3'" 20
answer 9011 500
check "2: the webhook answers 500: aborted" lab_wait web "d['phase'] == 'Degraded'" 10
echo "# $(lab_status web 'd["message"]')"
check "2: the verdict names the webhook's answer" \
	expect "$(lab_status web 'any(v["metric"] == "legacy-check" and "HTTP 500" in v["detail"] for v in d["abort_verdicts"])')"
kill -TERM "$load" 2>/dev/null
wait "$load" 2>/dev/null
lab_agent_stop 2>/dev/null
lab_finish
