#!/usr/bin/env bash
# Webhook notifications: a generic receiver gets every transition of a
# rollout in order (the abort with its verdicts), a Slack-format one only
# the abort as {"text": ...}; a receiver that is down at first gets the abort
# by a retry once it is up; a receiver that answers after 5 s (timeout 1 s)
# holds up nothing: the bad canary is still rolled back at once. Receivers
# run in the lab's upstream namespace.
set -u
source "$(dirname "$0")/lib.sh"

UP=198.18.255.2
ANALYSIS="{interval: 500ms, minRequests: 20, failureLimit: 1,
            metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"
NOTIFY="  notifications:
    - {url: \"http://$UP:9000/hook\"}
    - {url: \"http://$UP:9001/slack\", format: slack, events: [aborted]}
    - {url: \"http://$UP:9002/late\", events: [aborted]}
    - {url: \"http://$UP:9003/slow\", timeout: 1s}"

# receiver PORT DELAY_S: log every POST body (one line) to $LAB_DIR/recv-PORT.log.
receiver() {
	nsenter --net=/run/netns/"$(ns up)" python3 - "$1" "$2" "$LAB_DIR/recv-$1.log" <<'PY' &
import http.server, sys, time
port, delay, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(delay)
        with open(out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
PY
	echo $! >"$LAB_DIR/recv-$1.pid"
}

lab_with_warm_backends
receiver 9000 0
receiver 9001 0
receiver 9003 5
for port in 9000 9001 9003; do # listening before the agent starts
	for i in $(seq 1 50); do
		in_ns up bash -c "exec 3<>/dev/tcp/$UP/$port" 2>/dev/null && break
		sleep 0.1
	done
done
lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {duration: 1s}}, {setWeight: 50}, {pause: {}}]" \
	"$ANALYSIS" "$NOTIFY"
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 400 --duration-s 40 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
lab_agent
check "the rollout reaches its pause at 50%" \
	lab_wait web "d['weight'] == 50 and d['phase'] == 'Paused' and d['step'] == 3" 20
bad_ms=$(date +%s%3N)
lab_backend_set cn1 error_rate=1
# Deliveries run on the notifier's own thread: the rollback does not wait for
# the down receiver or for the slow one's 1 s timeouts. How long it took is
# printed, not judged (a loaded machine detects more slowly).
check "the bad canary is aborted, with a receiver down and one taking 5 s" \
	lab_wait web "d['phase'] == 'Degraded'" 10
took=$(($(date +%s%3N) - bad_ms))
echo "# aborted ${took} ms after the canary turned bad"
receiver 9002 0 # up only now: the abort reaches it by a retry

wait_file_lines() { # FILE N SECONDS
	local i
	for i in $(seq 1 $(($3 * 10))); do
		[ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
check "the generic receiver got 6 notifications" wait_file_lines "$LAB_DIR/recv-9000.log" 6 5
got=$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["event"] for l in open(sys.argv[1])))' \
	"$LAB_DIR/recv-9000.log")
echo "# generic receiver: $got"
check "in order: started step paused step paused aborted" \
	test "$got" = "started step paused step paused aborted"
check "the abort carries its verdicts and weight" \
	expect "$(tail -1 "$LAB_DIR/recv-9000.log" | jget 'd["event"] == "aborted" and d["rollout"] == "web" and d["revision"] == "v2" and len(d["verdicts"]) > 0 and d["phase"] == "Degraded"')"
check "the Slack receiver got only the abort, as text" \
	expect "$(jget '"aborted" in d["text"] and "web" in d["text"]' <"$LAB_DIR/recv-9001.log") and $(wc -l <"$LAB_DIR/recv-9001.log") == 1"
check "the receiver that was down got the abort by a retry" wait_file_lines "$LAB_DIR/recv-9002.log" 1 10
# The slow receiver logs each POST when its 5 s are up, whether or not the
# agent (timeout 1 s) still waits: a retry shows as the same body twice.
wait_repeated_line() { # FILE SECONDS
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ -n "$(sort "$1" 2>/dev/null | uniq -d)" ] && return 0
		sleep 0.1
	done
	return 1
}
check "the slow receiver's notifications failed and were retried (one received twice, no 200 within 1 s)" \
	wait_repeated_line "$LAB_DIR/recv-9003.log" 20
metrics=$(in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" http://x/metrics)
echo "# $(grep '^canaryd_notifications' <<<"$metrics" | tr '\n' ' ')"
check "/metrics counts the delivered notifications" \
	expect "$(sed -n 's/^canaryd_notifications_total{result="sent"} //p' <<<"$metrics") >= 8"
kill -TERM "$load" 2>/dev/null
wait "$load" 2>/dev/null
lab_agent_stop 2>/dev/null
lab_finish
