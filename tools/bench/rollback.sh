#!/usr/bin/env bash
# tools/bench/rollback.sh [--quick] [--json FILE] [--trials N] [--tick-ms N] [--rate N] [--latency-gate MS]
#
# Rollback speed: how long a bad canary keeps taking traffic, and how many
# requests fail, under steady load in the lab (client -> node with canaryd ->
# st1, st2 stable, cn1 canary; traffic stays inside the lab's namespaces).
#
# One lab, one agent (tick 250 ms, canaryd's default), rollout "web" at 10%:
#   steps [{setWeight: 10}, {pause: {}}], analysis interval 1s, minRequests 30,
#   failureLimit 1, confidence 0.99, errorRate max 0.02, compareErrorRate,
#   compareLatency maxIncrease 0.5 (and latencyP95 max MS with --latency-gate MS).
# Each trial: cn1 good; labload starts (newconn, 64 workers, 1200 req/s or --rate,
# a snapshot every ~100 ms on SIGUSR1); a new canary revision is written
# (LAB_CANARY_REVISION=vN lab_rollout), so a new rollout starts; once it is
# Paused at 10% (its analysis passed) cn1 turns bad: HTTP 503 on every
# request (error_rate=1) or +150 ms (latency_ms=150). The time of that write
# is the "flip". The trial ends 1.5 s after the agent reports Degraded.
# A good canary aborted before the flip (a false abort) is recorded with its
# reason, and the trial starts again with a new revision (at most 3 times).
#
# Per trial:
#   first error      the time cn1's labsrv logs sending its first bad answer
#                    (503 or slowed) after the flip, wall clock like the
#                    agent's log. Without that line, client-side bounds: 5xx,
#                    the first labload snapshot holding a cn1 503 (the error
#                    lies between it and the one before, ~100 ms apart);
#                    latency, flip + 150 ms, the earliest a slowed answer can
#                    arrive (labsrv applies the flip within 100 ms).
#   weight 0         the timestamp of the abort's last "msg=verdict" log
#                    line: the agent logs the failing verdicts and then, as
#                    its next step, writes the service with weight 0; it then
#                    resets canary connections, fsyncs the state file and
#                    logs "msg=aborted" (kept as an upper bound, "logged").
#   detection        weight 0 - first error (with client-side bounds, the
#                    earliest the first error can have been: an upper
#                    bound); also weight 0 - flip.
#   last canary      the first snapshot whose cn1 response count equals the
#   response         run's final one (an upper bound on the last response).
#   failed           requests - ok + 5xx over the trial's whole load run
#                    (from the new revision until 1.5 s after the abort), and
#                    as a share of all requests in that run.
# Then medians and p90s, and the Argo Rollouts / Flagger arithmetic for the
# documented defaults (Prometheus scrape 15 s, analysis interval 1 m).
#
# Speed figures are reported, never judged: the exit status is non-zero only
# when the benchmark itself could not run (lab, agent, a trial that never
# reached its 10% pause or never aborted). Everything is removed on exit.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

usage() { echo "usage: $0 [--quick] [--json FILE] [--trials N] [--tick-ms N] [--rate N] [--latency-gate MS]"; }
QUICK=0
JSON=build/bench/rollback.json
TRIALS=
TICK_MS=250
RATE=1200
LATENCY_GATE_MS=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--json | --trials | --tick-ms | --rate | --latency-gate)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		case $1 in
		--json) JSON=$2 ;;
		--trials) TRIALS=$2 ;;
		--tick-ms) TICK_MS=$2 ;;
		--rate) RATE=$2 ;;
		--latency-gate) LATENCY_GATE_MS=$2 ;;
		esac
		shift
		;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
[ -n "$TRIALS" ] || TRIALS=$([ "$QUICK" = 1 ] && echo 2 || echo 10)
case "$TRIALS$TICK_MS$RATE$LATENCY_GATE_MS" in *[!0-9]*) usage >&2; exit 2 ;; esac
if [ "$TRIALS" -lt 1 ] || [ "$TRIALS" -gt 100 ]; then
	echo "rollback: --trials 1..100" >&2
	exit 2
fi

source tests/e2e/lib.sh
lab_require_root
for b in canaryd canaryctl labload labsrv; do
	[ -x "$LAB_BUILD/$b" ] || { echo "rollback: $LAB_BUILD/$b missing: run make all lab" >&2; exit 1; }
done

# 64 workers: enough that 10% of requests taking 150 ms hold the rate down
# only a little; here, 96 or more newconn workers at this rate made labload
# and labsrv themselves take most of the 2 CPUs.
CONNECTIONS=64
POST_ABORT_S=1.5
STEPS="[{setWeight: 10}, {pause: {}}]"
# --latency-gate MS adds {name: latencyP95, max: MS ms}: an SLO-style limit
# that fails inside its window once enough responses lie above it.
GATE=
[ -n "$LATENCY_GATE_MS" ] && GATE=", {name: latencyP95, max: ${LATENCY_GATE_MS}ms}"
ANALYSIS="{interval: 1s, minRequests: 30, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.02}, {name: compareErrorRate},
                      {name: compareLatency, maxIncrease: 0.5}$GATE]}"

WORK=$(mktemp -d /tmp/canaryd-rollback.XXXXXX)
SAMPLER=
LOAD=
stop_bg() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
	SAMPLER=
	[ -n "$LOAD" ] && kill -TERM "$LOAD" 2>/dev/null && wait "$LOAD" 2>/dev/null
	LOAD=
}
cleanup() {
	stop_bg
	lab_down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== rollback: $TRIALS trials per regression, tick $TICK_MS ms, load $RATE req/s over $CONNECTIONS workers; load average $LOADAVG_START"
lab_up
# 1,200 new connections a second from one client namespace leave more ports
# in TIME_WAIT (60 s) than connect() has: it then scans the whole range on
# every call, the client takes both CPUs in system time and sends half the
# rate. TIME_WAIT reuse, in the client namespace only, keeps the load what
# it says.
in_ns cl sysctl -qw net.ipv4.tcp_tw_reuse=1
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
LAB_CANARY_REVISION=v1 lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"
: >"$LAB_DIR/canaryd.log"
lab_agent --tick-ms "$TICK_MS" || exit 1
lab_wait web "d['weight'] == 10" 10 || exit 1

# wait_web SECONDS PHASE [REVISION]: poll the API (curl over the socket, no
# python: this runs every 50 ms during the measurement) until rollout "web"
# is in PHASE (and, with REVISION, has that canary revision at weight 10).
# Prints the last answer on failure.
wait_web() {
	local secs=$1 want=$2 rev=${3:-} j phase crev weight i
	for i in $(seq 1 $((secs * 20))); do
		j=$(curl -s --max-time 2 --unix-socket "$LAB_SOCKET" http://canaryd/api/v1/rollouts/web)
		phase='' crev='' weight=''
		[[ $j =~ \"phase\":[[:space:]]*\"([A-Za-z]+)\" ]] && phase=${BASH_REMATCH[1]}
		[[ $j =~ \"canary\":[[:space:]]*\{\"revision\":[[:space:]]*\"([^\"]*)\" ]] && crev=${BASH_REMATCH[1]}
		[[ $j =~ \"weight\":[[:space:]]*([0-9.]+) ]] && weight=${BASH_REMATCH[1]}
		if [ "$phase" = "$want" ]; then
			[ -z "$rev" ] && return 0
			[ "$crev" = "$rev" ] && [[ $weight =~ ^10(\.0*)?$ ]] && return 0
		fi
		sleep 0.05
	done
	echo "phase $phase, canary $crev, weight $weight after ${secs}s: ${j:0:300}"
	return 1
}

# cpu_stat: total and idle (+iowait) jiffies of the machine, for its busy share.
cpu_stat() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat; }

REV=1
MAX_ATTEMPTS=3
# start_load FILE: labload in the client namespace, with a snapshot sampler.
start_load() {
	local cgt
	lab_load_bg "$1" --mode newconn --connections "$CONNECTIONS" --rate "$RATE" \
		--duration-s 60 --timeout-ms 2000 --snapshot-on-usr1
	LOAD=$LAB_LOAD_PID
	# SIGUSR1 kills labload until it has installed its handler: wait for that.
	# (Before its exec the PID is a bash or nsenter image: check the name too.)
	for _ in $(seq 1 500); do
		cgt=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$LOAD/status" 2>/dev/null)
		[ "$(cat "/proc/$LOAD/comm" 2>/dev/null)" = labload ] && [ -n "$cgt" ] &&
			(((0x$cgt >> 9) & 1)) && break # bit 9: SIGUSR1 (10)
		sleep 0.01
	done
	# A snapshot every ~100 ms; bounded by count (600 = 60 s) and by labload's life.
	(for _ in $(seq 1 600); do kill -USR1 "$LOAD" 2>/dev/null || exit 0; sleep 0.1; done) &
	SAMPLER=$!
}

# run_trial SCENARIO K BAD_SETTING: one trial; a line of facts in $WORK/trials.jsonl.
# A good canary the analysis aborts before the flip is a measurement too (a
# false abort): it is recorded and the trial starts again with a new
# revision, at most MAX_ATTEMPTS times.
run_trial() {
	local scen=$1 k=$2 bad=$3 dir=$WORK/$1-$2 rev load_start_ms flip_ms=0 seen_ms=0 ok=true why="" attempt
	mkdir -p "$dir"
	: >"$dir/false_aborts.txt"
	for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
		REV=$((REV + 1))
		rev=v$REV
		lab_backend_set cn1 error_rate=0 latency_ms=0
		sleep 0.2 # labsrv re-reads its control file every 100 ms
		load_start_ms=$(date +%s%3N)
		start_load "$dir/load.out"
		LAB_CANARY_REVISION=$rev lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"
		# At its 10% pause, and still there after the half second before the
		# flip: a good canary aborted in that half second is a false abort too.
		wait_web 20 Paused "$rev" >"$dir/wait.txt" && sleep 0.5 &&
			wait_web 1 Paused "$rev" >"$dir/wait.txt" && break
		stop_bg
		if grep -q "^phase Degraded, canary $rev," "$dir/wait.txt"; then
			head -c 400 "$dir/wait.txt" | tr '\n' ' ' >>"$dir/false_aborts.txt"
			echo >>"$dir/false_aborts.txt"
			echo "   $scen trial $k: the GOOD canary $rev was aborted before the flip (recorded; starting again)"
			[ "$attempt" -lt "$MAX_ATTEMPTS" ] && continue
		fi
		ok=false
		why="the good canary never reached its 10% pause: $(head -c 300 "$dir/wait.txt")"
		break
	done
	cpu_stat >"$dir/cpu0"
	if [ "$ok" = true ]; then
		flip_ms=$(date +%s%3N)
		lab_backend_set cn1 "$bad"
		cut -d' ' -f1 /proc/loadavg >"$dir/loadavg"
		if wait_web 15 Degraded >"$dir/wait.txt"; then
			seen_ms=$(date +%s%3N)
			sleep "$POST_ABORT_S"
		else
			ok=false
			why="not aborted within 15 s: $(head -c 300 "$dir/wait.txt")"
		fi
	fi
	cpu_stat >"$dir/cpu1"
	stop_bg
	python3 -c 'import json,sys; print(json.dumps(dict(scenario=sys.argv[1], trial=int(sys.argv[2]),
		revision=sys.argv[3], bad=sys.argv[4], load_start_ms=int(sys.argv[5]), flip_ms=int(sys.argv[6]),
		degraded_seen_ms=int(sys.argv[7]), ok=sys.argv[8] == "true", why=sys.argv[9], dir=sys.argv[10],
		false_aborts=[l.strip() for l in open(sys.argv[10] + "/false_aborts.txt") if l.strip()])))' \
		"$scen" "$k" "$rev" "$bad" "$load_start_ms" "$flip_ms" "$seen_ms" "$ok" "$why" "$dir" \
		>>"$WORK/trials.jsonl"
	printf '   %-8s trial %2d (%s): %s\n' "$scen" "$k" "$rev" "$([ $ok = true ] && echo "aborted" || echo "FAILED: $why")"
}

for k in $(seq 1 "$TRIALS"); do run_trial 5xx "$k" error_rate=1; done
for k in $(seq 1 "$TRIALS"); do run_trial latency "$k" latency_ms=150; done
cp "$LAB_DIR/canaryd.log" "$WORK/canaryd.log"
cp "$LAB_DIR/cn1.log" "$WORK/cn1.log"

mkdir -p "$(dirname "$JSON")"
python3 - "$WORK" "$JSON" "$QUICK" "$TICK_MS" "$CONNECTIONS" "$RATE" "$LOADAVG_START" "$STEPS" "$ANALYSIS" <<'EOF'
import datetime, json, os, platform, re, statistics, sys

work, out, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
tick_ms, conns, rate = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
loadavg_start, steps, analysis = sys.argv[7].split(), sys.argv[8], " ".join(sys.argv[9].split())

def ts_ms(line):
    m = re.match(r"ts=(\S+)", line)
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(round(t.timestamp() * 1000))

log = open(os.path.join(work, "canaryd.log")).read().splitlines()
aborts = []  # (ms, line, verdict metrics, reset count)
for i, l in enumerate(log):
    if "msg=aborted" not in l or "rollout=web" not in l:
        continue
    # Before it (tick_rollout, apply_effects): the failing verdicts, the
    # weight-0 map write, the canary connection reset, the state file.
    metrics, reset, first_verdict = [], None, None
    for l2 in reversed(log[max(0, i - 16):i]):
        if "msg=aborted" in l2:
            break
        if "msg=verdict" in l2 and "rollout=web" in l2:
            m = re.search(r"metric=(\S+)", l2)
            metrics.insert(0, m.group(1) if m else "?")
            first_verdict = ts_ms(l2)
        m = re.search(r'canary connections reset.*connections="?(\d+)', l2)
        if m and reset is None:
            reset = int(m.group(1))
    aborts.append((ts_ms(l), l, metrics, reset, first_verdict))

# labsrv logs when it sends its first bad answer after each behaviour change.
first_bad = []
for l in open(os.path.join(work, "cn1.log")):
    m = re.search(r"first bad answer realtime_ms=(\d+)", l)
    if m:
        first_bad.append(int(m.group(1)))

def failed(d):
    return d["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")

def cn1_5xx(d):
    return sum(v for k, v in d["backend_status"].get("cn1", {}).items() if k[0] == "5")

def pct(v, p):  # nearest rank
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    return v[max(0, -(-p * len(v) // 100) - 1)]

def cpu_busy(d):  # share of both CPUs busy from the flip's setup to the trial's end
    try:
        t0, i0 = map(int, open(os.path.join(d, "cpu0")).read().split())
        t1, i1 = map(int, open(os.path.join(d, "cpu1")).read().split())
        return round(1 - (i1 - i0) / (t1 - t0), 3) if t1 > t0 else None
    except (OSError, ValueError):
        return None

trials = {"5xx": [], "latency": []}
for line in open(os.path.join(work, "trials.jsonl")):
    t = json.loads(line)
    la = os.path.join(t["dir"], "loadavg")
    r = {"trial": t["trial"], "revision": t["revision"], "bad": t["bad"], "ok": t["ok"], "why": t["why"],
         "loadavg_1m_at_flip": float(open(la).read()) if os.path.exists(la) else None,
         "machine_cpu_busy_during_trial": cpu_busy(t["dir"]),
         "good_canaries_aborted_before_flip": t["false_aborts"]}
    trials[t["scenario"]].append(r)
    lines = [json.loads(l) for l in open(os.path.join(t["dir"], "load.out")) if l.strip()]
    if not lines:
        r["ok"], r["why"] = False, "no labload output"
    if not r["ok"]:
        continue
    snaps, final = lines[:-1], lines[-1]
    start, flip = t["load_start_ms"], t["flip_ms"]
    at = lambda d: start + d["duration_s"] * 1000.0
    ab = next((a for a in aborts if a[0] >= flip), None)
    early = [a for a in aborts if start <= a[0] < flip]
    if ab is None:
        r["ok"], r["why"] = False, "no msg=aborted after the flip in the log"
        continue
    logged_ms = ab[0]
    decided_ms = ab[4] if ab[4] is not None else ab[0]
    base = None
    for d in snaps:
        if at(d) <= flip:
            base = d
    zero = {"requests": 0, "ok": 0, "status": {}, "backend_status": {}, "backends": {}, "latency_us": {"max": 0}, "duration_s": 0.0}
    base = base or zero
    if t["scenario"] == "5xx":
        hit = lambda d: cn1_5xx(d) > cn1_5xx(base)
    else:
        hit = lambda d: d["latency_us"]["max"] >= 150000 and base["latency_us"]["max"] < 150000
    seen_lo = seen_hi = None
    prev = base
    for d in snaps:
        if at(d) <= flip:
            prev = d
            continue
        if hit(d):
            seen_lo, seen_hi = max(at(prev), flip), at(d)
            break
        prev = d
    if t["scenario"] == "5xx":
        first_lo, first_hi = seen_lo, seen_hi
    else:
        # The first slow answer cannot come before flip + 150 ms (and comes by
        # flip + 100 ms control poll + 150 ms): take the earliest.
        first_lo, first_hi = flip + 150, flip + 250
    # The server's own log of its first bad answer is exact (same clock as
    # the agent's log); the client-side bounds stay as a cross-check.
    sent = next((b for b in first_bad if flip <= b <= decided_ms), None)
    if sent is not None:
        first_lo = first_hi = sent
    final_cn1 = final["backends"].get("cn1", 0)
    last_hi = next((at(d) for d in snaps if at(d) > flip and d["backends"].get("cn1", 0) == final_cn1), at(final))
    before_abort = base
    for d in snaps:
        if at(d) <= decided_ms:
            before_abort = d
    win_s = (final["duration_s"] - base["duration_s"]) or 1e-9
    r.update({
        "flip_ms_after_load_start": flip - start,
        "first_error_after_flip_ms": [round(first_lo - flip), round(first_hi - flip)] if first_lo is not None else None,
        "first_error_source": "labsrv log (exact)" if sent is not None else "client snapshots (bounds)",
        "first_error_seen_in_snapshots_after_flip_ms": [round(seen_lo - flip), round(seen_hi - flip)] if seen_lo is not None else None,
        "weight0_after_first_error_ms": round(decided_ms - first_lo) if first_lo is not None else None,
        "weight0_after_first_error_ms_lower": round(decided_ms - first_hi) if first_hi is not None else None,
        "weight0_logged_after_first_error_ms": round(logged_ms - first_lo) if first_lo is not None else None,
        "weight0_after_flip_ms": decided_ms - flip,
        "weight0_logged_after_flip_ms": logged_ms - flip,
        "last_canary_response_after_weight0_ms": round(last_hi - decided_ms),
        "last_canary_response_after_first_error_ms": round(last_hi - first_lo) if first_lo is not None else None,
        "degraded_seen_by_api_after_flip_ms": t["degraded_seen_ms"] - flip,
        "requests": final["requests"],
        "failed": failed(final),
        "failed_share": failed(final) / final["requests"] if final["requests"] else None,
        "failed_before_flip": failed(base),
        "failed_after_weight0": failed(final) - failed(before_abort),
        "errors_by_kind": {k: v for k, v in final["errors"].items() if v},
        "canary_responses": final_cn1,
        "trial_load_s": final["duration_s"],
        "rps_after_flip": round((final["requests"] - base["requests"]) / win_s, 1),
        "abort_verdict_metrics": ab[2],
        "canary_connections_reset": ab[3],
        "aborts_before_flip": len(early),
    })

def summary(rs):
    good = [r for r in rs if r["ok"]]
    s = {"trials": len(rs), "ok": len(good),
         "good_canaries_started": len(rs) + sum(len(r["good_canaries_aborted_before_flip"]) for r in rs),
         "good_canaries_aborted_before_flip": sum(len(r["good_canaries_aborted_before_flip"]) for r in rs)}
    for k in ("weight0_after_first_error_ms", "weight0_logged_after_first_error_ms", "weight0_after_flip_ms",
              "weight0_logged_after_flip_ms", "last_canary_response_after_weight0_ms",
              "last_canary_response_after_first_error_ms", "failed", "failed_share", "rps_after_flip",
              "failed_after_weight0"):
        v = [r.get(k) for r in good if r.get(k) is not None]
        s[k] = {"median": statistics.median(v) if v else None, "p90": pct(v, 90), "p95": pct(v, 95),
                "min": min(v) if v else None, "max": max(v) if v else None}
    return s

# Argo Rollouts / Flagger, from documented parameters. Detection after the
# canary turns bad = scrape delay (0..15 s, typical 7.5) + wait for the next
# measurement (0..interval, typical interval/2) + (failures needed - 1) x interval.
SCRAPE, INTERVAL, CANARY_RPS = 15.0, 60.0, 1000 * 0.10
def tool(name, needed, note):
    typical = SCRAPE / 2 + INTERVAL / 2 + (needed - 1) * INTERVAL
    worst = SCRAPE + INTERVAL * needed
    best = (needed - 1) * INTERVAL
    return {"setup": name, "failed_measurements_needed": needed, "note": note,
            "best_s": best, "typical_s": typical, "worst_s": worst,
            "failed_requests_typical": int(typical * CANARY_RPS), "failed_requests_worst": int(worst * CANARY_RPS),
            "arithmetic": "typical = %g/2 + %g/2 + (%d-1)x%g = %g s; worst = %g + %gx%d = %g s; x %g failing req/s"
                          % (SCRAPE, INTERVAL, needed, INTERVAL, typical, SCRAPE, INTERVAL, needed, worst, CANARY_RPS)}
comparison = {
    "assumptions": {"prometheus_scrape_interval_s": SCRAPE, "analysis_interval_s": INTERVAL,
                    "service_rps": 1000, "canary_weight": 0.10, "canary_rps_failing": CANARY_RPS,
                    "regression": "every canary request fails (like error_rate=1); one scrape of bad data already fails the query"},
    "rows": [
        tool("Argo Rollouts, failureLimit 1 (this benchmark's failureLimit)", 2, "aborts after failureLimit+1 failed measurements"),
        tool("Argo Rollouts, failureLimit 0 (its default)", 1, "the first failed measurement aborts"),
        tool("Argo Rollouts, failureLimit 3 (its docs' example)", 4, ""),
        tool("Flagger, threshold 1", 1, "rolls back after `threshold` failed checks, one check per interval"),
        tool("Flagger, threshold 5 (its docs' examples)", 5, ""),
    ],
}
sums = {k: summary(v) for k, v in trials.items()}
med = sums["5xx"]["weight0_after_first_error_ms"]["median"]
comparison["canaryd_measured"] = {
    "weight0_after_first_error_ms_median": med,
    "failed_requests_at_1000rps_10pct": round(med / 1000 * CANARY_RPS, 1) if med is not None else None,
}

res = {
    "tool": "rollback", "quick": quick,
    "machine": {"kernel": platform.release(), "nproc": os.cpu_count(), "loadavg_start": loadavg_start,
                "loadavg_end": open("/proc/loadavg").read().split()[:3]},
    "config": {"tick_ms": tick_ms, "labload": {"mode": "newconn", "connections": conns, "rate": rate, "timeout_ms": 2000},
               "steps": steps, "analysis": analysis, "post_abort_s": 1.5},
    "method": {
        "first_error": "the time labsrv (cn1) logs sending its first bad answer after the flip (wall clock, ms, like "
                       "the agent's log; first_error_source says so). Without that line, the client-side bounds: 5xx, "
                       "the first labload snapshot (every ~100 ms) with a cn1 5xx, the error lying between it and the "
                       "previous one; latency, flip + 150..250 ms. weight0_after_first_error_ms then uses the earliest "
                       "first-error time (an upper bound), _lower the latest.",
        "flip": "the time the cn1 control file was written; labsrv applies it within 100 ms",
        "weight0": "the timestamp of the agent's last msg=verdict line of the abort: tick_rollout logs the failing "
                   "verdicts, then apply_effects writes the weight-0 service (the next syscall), resets canary "
                   "connections, saves the state file (fsync) and logs msg=aborted. *_logged_* use the msg=aborted "
                   "timestamp instead (an upper bound).",
        "last_canary_response": "first snapshot whose cn1 response count equals the final one (upper bound)",
        "failed": "requests - ok + 5xx over the trial's load run (new revision written .. 1.5 s after the abort)",
    },
    "scenarios": {
        "5xx": {"bad": "error_rate=1", "trials": trials["5xx"], "summary": sums["5xx"]},
        "latency": {"bad": "latency_ms=150", "trials": trials["latency"], "summary": sums["latency"]},
    },
    "comparison": comparison,
}
json.dump(res, open(out, "w"), indent=2)

def f(v, fmt="%d"):
    return "-" if v is None else fmt % v
print("\n| regression | trial | CPU busy | load avg (1 min) | first error after flip ms | weight 0 after first error ms (logged) | weight 0 after flip ms | last canary response after weight 0 ms | failed / requests (share) | failed after weight 0 | failing metrics |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for sc, rs in trials.items():
    for r in rs:
        if not r["ok"]:
            print("| %s | %d | - | - | FAILED: %s |||||||" % (sc, r["trial"], r["why"][:80]))
            continue
        fe = r["first_error_after_flip_ms"]
        bound = "<= " if fe and fe[0] != fe[1] else ""
        print("| %s | %d | %s | %s | %s | %s%s (%s) | %d | <= %d | %d / %d (%.3f%%) | %d | %s |" % (
            sc, r["trial"], f(r["machine_cpu_busy_during_trial"] and 100 * r["machine_cpu_busy_during_trial"], "%.0f%%"),
            f(r["loadavg_1m_at_flip"], "%.1f"), ("%d..%d" % tuple(fe) if fe[0] != fe[1] else "%d" % fe[0]) if fe else "-",
            bound, f(r["weight0_after_first_error_ms"]),
            f(r["weight0_logged_after_first_error_ms"]), r["weight0_after_flip_ms"],
            r["last_canary_response_after_weight0_ms"], r["failed"], r["requests"],
            100 * r["failed_share"], r["failed_after_weight0"], ",".join(r["abort_verdict_metrics"])))
def mp(s, k, fmt="%.0f", scale=1, tail=("p90",)):
    vals = [s[k]["median"]] + [s[k][t] for t in tail]
    return " / ".join(f(None if v is None else v * scale, fmt) for v in vals)
print("\n| regression | trials ok | weight 0 after first error ms, median / p90 / p95 | (logged) | after flip | last canary response after weight 0 ms | failed requests | failed share | req/s after flip (median) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for sc, s in sums.items():
    print("| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s |" % (
        sc, s["ok"], s["trials"], mp(s, "weight0_after_first_error_ms", tail=("p90", "p95")), mp(s, "weight0_logged_after_first_error_ms"),
        mp(s, "weight0_after_flip_ms"), mp(s, "last_canary_response_after_weight0_ms"), mp(s, "failed"),
        mp(s, "failed_share", "%.3f%%", 100), f(s["rps_after_flip"]["median"], "%.0f")))
for sc, s in sums.items():
    if s["good_canaries_aborted_before_flip"]:
        print("\n%s: %d of %d GOOD canaries were aborted before the flip (false aborts):" % (
            sc, s["good_canaries_aborted_before_flip"], s["good_canaries_started"]))
        for r in trials[sc]:
            for m in r["good_canaries_aborted_before_flip"]:
                print("  trial %d: %s" % (r["trial"], m[:300]))
print("\nArgo Rollouts / Flagger (arithmetic, not measured): scrape 15 s, interval 1 m, 1,000 req/s, 10% canary, every canary request failing")
print("| setup | failed measurements to abort | typical s | worst s | failed requests typical / worst | arithmetic |")
print("|---|---:|---:|---:|---:|---|")
for t in comparison["rows"]:
    print("| %s | %d | %.1f | %.0f | %d / %d | %s |" % (t["setup"], t["failed_measurements_needed"], t["typical_s"], t["worst_s"],
          t["failed_requests_typical"], t["failed_requests_worst"], t["arithmetic"]))
c = comparison["canaryd_measured"]
if c["weight0_after_first_error_ms_median"] is not None:
    print("| canaryd (measured above, 5xx median) | - | %.2f | - | %.0f | weight 0 %.0f ms after the first error x 100 req/s |" % (
        c["weight0_after_first_error_ms_median"] / 1000, c["failed_requests_at_1000rps_10pct"], c["weight0_after_first_error_ms_median"]))
print("\nrollback: JSON in %s; load average %s at start, %s at end" % (out, " ".join(loadavg_start), " ".join(res["machine"]["loadavg_end"])))
sys.exit(0 if all(r["ok"] for rs in trials.values() for r in rs) else 1)
EOF
