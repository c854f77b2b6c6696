#!/usr/bin/env bash
# The agent under rollout churn for SOAK_CHURN_S seconds (default 600): the
# configuration rewritten (new canary revisions start new rollouts) and
# reloaded, operator verbs, API polling over the socket and TCP, and a
# stable backend dying and coming back (health check), all under traffic.
# Checked: the ticks go on all the time, and the agent's memory (RSS) and
# open file descriptors stay flat (the second half grows by less than the
# bounds below over the first). Long, so it runs in "make soak".
set -u
source "$(dirname "$0")/../e2e/lib.sh"
DURATION_S=${SOAK_CHURN_S:-600}
PORT=9468
HC="  healthCheck: {interval: 300ms, timeout: 100ms, failureThreshold: 2}"
ANALYSIS="{interval: 500ms, minRequests: 20, metrics: [{name: errorRate, max: 0.5}]}"

lab_require_root
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
lab_rollout web "$LAB_VIP" "[{setWeight: 20}, {pause: {duration: 2s}}, {setWeight: 50}, {pause: {}}]" \
	"$ANALYSIS" "$HC"
lab_agent --listen 127.0.0.1:$PORT || exit 1
agent=$(cat "$LAB_DIR/canaryd.pid")
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 2 --rate 100 \
	--duration-s "$DURATION_S" --timeout-ms 3000

# sample: "SECONDS TICKS RSS_KB FDS"
ticks() {
	in_ns node curl -sS -m 2 --unix-socket "$LAB_SOCKET" http://x/metrics |
		sed -n 's/^canaryd_ticks_total \([0-9]*\)$/\1/p'
}
sample() {
	echo "$1 $(ticks) $(awk '/^VmRSS/ {print $2}' "/proc/$agent/status") $(ls "/proc/$agent/fd" | wc -l)"
}

start=$(date +%s)
round=0
: >"$LAB_DIR/samples"
while [ $(($(date +%s) - start)) -lt "$DURATION_S" ]; do
	round=$((round + 1))
	case $((round % 6)) in
	0) LAB_CANARY_REVISION=v$round lab_rollout web "$LAB_VIP" \
		"[{setWeight: 20}, {pause: {duration: 2s}}, {setWeight: 50}, {pause: {}}]" "$ANALYSIS" "$HC" ;;
	1) canaryctl pause web >/dev/null 2>&1; canaryctl resume web >/dev/null 2>&1 ;;
	2) canaryctl set-weight web 30 >/dev/null 2>&1; canaryctl promote web >/dev/null 2>&1 ;;
	3) kill -HUP "$agent" ;;
	4) # health flap: st2 dies and comes back two rounds later
		kill "$(cat "$LAB_DIR/st2.pid")" 2>/dev/null
		st2_down=$round ;;
	5) canaryctl abort web >/dev/null 2>&1; canaryctl retry web >/dev/null 2>&1 ;;
	esac
	if [ -n "${st2_down:-}" ] && [ $((round - st2_down)) -ge 2 ]; then
		lab_backend st2
		st2_down=
	fi
	for i in 1 2 3; do
		in_ns node curl -s -m 2 --unix-socket "$LAB_SOCKET" http://x/api/v1/rollouts >/dev/null
		in_ns node curl -s -m 2 "http://127.0.0.1:$PORT/metrics" >/dev/null
	done
	sample $(($(date +%s) - start)) >>"$LAB_DIR/samples"
	sleep 1
done
kill "$LAB_LOAD_PID" 2>/dev/null

n=$(wc -l <"$LAB_DIR/samples")
echo "# $n samples over ${DURATION_S} s (seconds ticks rss_kb fds): first $(head -1 "$LAB_DIR/samples"), last $(tail -1 "$LAB_DIR/samples")"
ev() { grep -c "msg=\"\?$1" "$LAB_DIR/canaryd.log"; }
echo "# churn: $(ev 'rollout started') rollouts started, $(ev 'config applied') configs applied, $(ev aborted) aborts, $(ev retry) retries, $(ev 'stable endpoint down') stable endpoints down"
check "the churn happened (new rollouts, reloads, aborts, health flaps)" \
	expect "$(ev 'rollout started') >= 2 and $(ev 'config applied') >= 3 and $(ev aborted) >= 1 and $(ev 'stable endpoint down') >= 1"
check "the agent is alive at the end" kill -0 "$agent"
# Ticks: every sample saw more ticks than the one before (at most ~3 s apart).
check "the ticks went on between every two samples" \
	awk 'NR > 1 && $2 <= prev { bad = 1 } { prev = $2 } END { exit bad }' "$LAB_DIR/samples"
# Flat: medians of the last quarter against the second quarter (warm-up excluded).
read -r rss_a rss_b fd_a fd_b <<<"$(python3 -c '
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 4]
q = max(len(rows) // 4, 1)
a, b = rows[q:2 * q], rows[-q:]
print(int(statistics.median(r[2] for r in a)), int(statistics.median(r[2] for r in b)),
      int(statistics.median(r[3] for r in a)), int(statistics.median(r[3] for r in b)))
' "$LAB_DIR/samples")"
check "RSS flat: ${rss_a} KiB -> ${rss_b} KiB (grows by less than 2 MiB)" expect "$rss_b - $rss_a < 2048"
check "open descriptors flat: $fd_a -> $fd_b (grow by less than 5)" expect "$fd_b - $fd_a < 5"
lab_finish
