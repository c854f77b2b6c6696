#!/usr/bin/env bash
# tools/bench/scale.sh [--quick] [--json FILE]: how canaryd scales.
#
#   1. build/scale (tools/bench/scale.c): conntrack filled to 100k and 1M
#      flows: every map's memory (memlock), fill time, the agent's own
#      conntrack walk (dp_flow_count, run in the tick every 40 ticks), and
#      the established path's per-packet cost at that fill.
#   2. the real agent in a lab node namespace with N configured Rollouts
#      (distinct VIPs 198.19.x.y, the lab's backends, steps
#      [{setWeight: 10}, {pause: {}}], no traffic): start-up time, tick CPU
#      time (per-thread schedstat over a window with no API calls, divided
#      by the ticks run), canaryd_tick_duration_seconds sampled through
#      /metrics, /metrics render time (curl over the UNIX socket, median of
#      20) and size (plain and gzip), RSS, and the pinned maps' memlock.
#      N = 0 (idle) and 100; the full run adds 256 and 1000.
#
# --quick (CI): 100k flows only, N = 0 and 100, short windows, 10 renders; < 30 s.
# Speed figures are reported, never judged. Everything it starts (lab
# namespaces, agents, pins, temp files) is removed on exit and on INT/TERM.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

QUICK=0
JSON=build/bench/scale.json
TICK_MS=250 # canaryd's default
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--json)
		[ $# -ge 2 ] || { echo "usage: $0 [--quick] [--json FILE]" >&2; exit 2; }
		JSON=$2
		shift
		;;
	-h | --help)
		echo "usage: $0 [--quick] [--json FILE]"
		exit 0
		;;
	*)
		echo "usage: $0 [--quick] [--json FILE]" >&2
		exit 2
		;;
	esac
	shift
done

source tests/e2e/lib.sh
lab_require_root

if [ "$QUICK" = 1 ]; then
	LEVELS="0 100"
	CPU_WINDOW_S=2
	GAUGE_SAMPLES=10
	SETTLE_S=1
else
	LEVELS="0 100 256 1000"
	CPU_WINDOW_S=10
	GAUGE_SAMPLES=100
	SETTLE_S=2
fi
RENDERS=20
[ "$QUICK" = 1 ] && RENDERS=10

for b in canaryd canaryctl; do
	[ -x "$LAB_BUILD/$b" ] || { echo "scale: $LAB_BUILD/$b missing: run make" >&2; exit 1; }
done
# The Makefile includes tools/bench/scale.mk; its targets are relative to the repository.
make -s -C "$LAB_ROOT" build/scale >&2 || { echo "scale: cannot build build/scale" >&2; exit 1; }

WORK=$(mktemp -d /tmp/canaryd-scale.XXXXXX)
AGENT_PID=
stop_agent() {
	local i
	[ -n "$AGENT_PID" ] || return 0
	kill "$AGENT_PID" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}
cleanup() {
	stop_agent
	lab_down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "== scale: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== conntrack fill (build/scale$([ "$QUICK" = 1 ] && echo ' --quick'))"
SCALE_ARGS=(--json "$WORK/conntrack.json")
[ "$QUICK" = 1 ] && SCALE_ARGS+=(--quick)
if ! "$LAB_BUILD/scale" "${SCALE_ARGS[@]}"; then
	echo "scale: build/scale failed" >&2
	exit 1
fi
[ -f "$WORK/conntrack.json" ] || exit 0 # skipped (not root)

ANALYSIS="{interval: 1s, minRequests: 30, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.02}, {name: compareErrorRate},
                      {name: compareLatency, maxIncrease: 0.5}]}"

# gen_configs N: N Rollouts, one file each (lab_rollout's format), distinct
# VIPs 198.19.(1+i/250).(1+i%250), the lab's backends.
gen_configs() {
	rm -rf "$LAB_CONFIG_DIR" "$LAB_STATE_DIR"
	mkdir -p "$LAB_CONFIG_DIR"
	python3 - "$1" "$LAB_CONFIG_DIR" "$(lab_endpoints_yaml st1 st2)" "$(lab_endpoints_yaml cn1)" \
		"$LAB_PORT" "$ANALYSIS" <<'EOF'
import sys
n, d, stable, canary, port, analysis = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
for i in range(n):
    name = "svc-%04d" % i
    with open("%s/%s.yaml" % (d, name), "w") as f:
        f.write("""apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: %s
spec:
  service: {vip: 198.19.%d.%d, port: %s, protocol: http}
  stable: {revision: v1, endpoints: [%s]}
  canary: {revision: v2, endpoints: [%s]}
  strategy:
    steps: [{setWeight: 10}, {pause: {}}]
  analysis: %s
""" % (name, 1 + i // 250, 1 + i % 250, port, stable, canary, analysis))
EOF
}

scrape() { curl -s --max-time 10 --unix-socket "$LAB_SOCKET" http://canaryd/metrics; }
metric_value() { scrape | awk -v m="$1" '$1 == m { print $2; exit }'; }

# CPU of the agent: schedstat (ns on CPU) of every thread and of the main
# (tick) thread, and utime+stime in clock ticks.
cpu_json() {
	python3 - "$1" <<'EOF'
import glob, json, os, sys
pid = sys.argv[1]
tasks = {}
for p in glob.glob("/proc/%s/task/*/schedstat" % pid):
    try:
        tasks[p.split("/")[4]] = int(open(p).read().split()[0])
    except (OSError, ValueError):
        pass
st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
print(json.dumps({"all_ns": sum(tasks.values()), "main_ns": tasks.get(pid, 0),
                  "utime_stime_ticks": int(st[11]) + int(st[12]),
                  "clk_tck": os.sysconf("SC_CLK_TCK"), "threads": len(tasks)}))
EOF
}

# start_agent BIN N: canaryd in the node namespace, until ready and until its
# first tick has set the weight of all N rollouts; sets AGENT_PID and START_S.
start_agent() {
	local bin=$1 i t0 t1
	: >"$LAB_DIR/canaryd.log"
	t0=$(date +%s%N)
	nsenter --net=/run/netns/"$(ns node)" "$bin" --bpffs "$LAB_BPFFS" --host-cgroup off --interfaces 'to-*' \
		--config "$LAB_CONFIG_DIR" --state-dir "$LAB_STATE_DIR" --api-socket "$LAB_SOCKET" \
		--tick-ms "$TICK_MS" >>"$LAB_DIR/canaryd.log" 2>&1 &
	AGENT_PID=$!
	for i in $(seq 1 1200); do # 60 s
		grep -q 'msg=ready' "$LAB_DIR/canaryd.log" && break
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	t1=$(date +%s%N)
	if ! grep -q 'msg=ready' "$LAB_DIR/canaryd.log"; then
		tail -5 "$LAB_DIR/canaryd.log" >&2
		echo "scale: canaryd did not become ready" >&2
		return 1
	fi
	START_S=$(python3 -c "print(($t1 - $t0) / 1e9)")
	# The first tick applies every rollout's first weight ("weight set", one
	# state file written and fsynced each): wait for all of them.
	for i in $(seq 1 2400); do # 120 s
		[ "$(grep -c 'msg="weight set"' "$LAB_DIR/canaryd.log")" -ge "$2" ] && break
		sleep 0.05
	done
}

# measure_level N: everything about the agent with N rollouts, into $WORK/level-N.json.
measure_level() {
	local n=$1 bin=$LAB_BUILD/canaryd out=$WORK/level-$1 i
	mkdir -p "$out"
	in_ns node "$LAB_BUILD/canaryd" --cleanup --bpffs "$LAB_BPFFS" >/dev/null 2>&1
	gen_configs "$n"
	echo "== agent with $n rollouts"
	start_agent "$bin" "$n" || return 1
	sleep "$SETTLE_S" # settle: state files written, first ticks run
	canaryctl -o json status >"$out/status.json" 2>/dev/null
	# CPU over a window with no API calls at all; the ticks from /metrics around it.
	metric_value canaryd_ticks_total >"$out/ticks0"
	cpu_json "$AGENT_PID" >"$out/cpu0"
	sleep "$CPU_WINDOW_S"
	cpu_json "$AGENT_PID" >"$out/cpu1"
	metric_value canaryd_ticks_total >"$out/ticks1"
	grep -E '^(VmRSS|VmHWM):' "/proc/$AGENT_PID/status" >"$out/rss"
	# The tick gauge, sampled (each sample renders /metrics, spaced off the tick period).
	for i in $(seq 1 "$GAUGE_SAMPLES"); do
		metric_value canaryd_tick_duration_seconds >>"$out/gauge"
		sleep 0.15
	done
	for i in $(seq 1 "$RENDERS"); do
		curl -s --max-time 10 --unix-socket "$LAB_SOCKET" -o /dev/null \
			-w '%{time_total} %{size_download}\n' http://canaryd/metrics >>"$out/render_plain"
		curl -s --max-time 10 --unix-socket "$LAB_SOCKET" -o /dev/null -H 'Accept-Encoding: gzip' \
			-w '%{time_total} %{size_download}\n' http://canaryd/metrics >>"$out/render_gzip"
	done
	scrape >"$out/metrics.txt"
	for m in services conntrack overrides metrics reasons; do
		m=$(pin_name "$m")
		bpftool -j map show pinned "$LAB_BPFFS/$m" 2>/dev/null
		echo
	done >"$out/maps.jsonl"
	cp "$LAB_DIR/canaryd.log" "$out/canaryd.log"
	echo "$n $bin $START_S" >"$out/meta"
	stop_agent
}

lab_up
for n in $LEVELS; do
	measure_level "$n" || exit 1
done

mkdir -p "$(dirname "$JSON")"
CT_PIN=$(pin_name conntrack) python3 - "$WORK" "$JSON" "$QUICK" "$TICK_MS" "$CPU_WINDOW_S" <<'EOF'
import datetime, glob, json, os, platform, statistics, sys

work, out, quick, tick_ms, window_s = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])

def pct(v, p):
    v = sorted(v)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]

conntrack = json.load(open(os.path.join(work, "conntrack.json")))
levels = []
for d in sorted(glob.glob(os.path.join(work, "level-*")), key=lambda p: int(p.rsplit("-", 1)[1])):
    if not os.path.exists(os.path.join(d, "meta")):
        continue
    n, binary, start_s = open(os.path.join(d, "meta")).read().split()
    c0 = json.load(open(os.path.join(d, "cpu0")))
    c1 = json.load(open(os.path.join(d, "cpu1")))
    t0 = float(open(os.path.join(d, "ticks0")).read() or 0)
    t1 = float(open(os.path.join(d, "ticks1")).read() or 0)
    ticks = t1 - t0
    gauge = [float(x) * 1000 for x in open(os.path.join(d, "gauge")).read().split()]
    rp = [l.split() for l in open(os.path.join(d, "render_plain")) if l.strip()]
    rg = [l.split() for l in open(os.path.join(d, "render_gzip")) if l.strip()]
    rss = dict(l.replace(":", "").split()[:2] for l in open(os.path.join(d, "rss")))
    maps = []
    for l in open(os.path.join(d, "maps.jsonl")):
        l = l.strip()
        if l:
            m = json.loads(l)
            maps.append({k: m.get(k) for k in ("name", "type", "max_entries", "bytes_key", "bytes_value", "bytes_memlock")})
    try:
        st = json.load(open(os.path.join(d, "status.json")))
        rollouts = len(st) if isinstance(st, list) else len(st.get("rollouts", []))
    except (OSError, ValueError):
        rollouts = None
    lines = open(os.path.join(d, "metrics.txt")).read().splitlines()
    def ts_ms(l):
        t = datetime.datetime.strptime(l.split()[0][3:], "%Y-%m-%dT%H:%M:%S.%fZ")
        return t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
    log = open(os.path.join(d, "canaryd.log")).read().splitlines()
    ready = [ts_ms(l) for l in log if "msg=ready" in l]
    wset = [ts_ms(l) for l in log if 'msg="weight set"' in l]
    first_tick_ms = round(wset[-1] - ready[0]) if ready and wset else None
    levels.append({
        "rollouts": int(n),
        "rollouts_seen_by_api": rollouts,
        "startup_to_ready_s": round(float(start_s), 3),
        "weights_set_after_ready_ms": first_tick_ms,
        "weight_set_events": len(wset),
        "ticks_in_window": ticks,
        "cpu_window_s": window_s,
        "tick_cpu_ms_main_thread": round((c1["main_ns"] - c0["main_ns"]) / 1e6 / ticks, 4) if ticks else None,
        "cpu_ms_per_tick_all_threads": round((c1["all_ns"] - c0["all_ns"]) / 1e6 / ticks, 4) if ticks else None,
        "cpu_share_of_one_core": round((c1["all_ns"] - c0["all_ns"]) / 1e9 / window_s, 5),
        "utime_stime_ticks_in_window": c1["utime_stime_ticks"] - c0["utime_stime_ticks"],
        "tick_gauge_ms": {"samples": len(gauge), "median": pct(gauge, 50), "p99": pct(gauge, 99),
                          "max": max(gauge) if gauge else None},
        "metrics_render_ms": {"median": pct([float(r[0]) * 1000 for r in rp], 50),
                              "p90": pct([float(r[0]) * 1000 for r in rp], 90), "n": len(rp)},
        "metrics_render_gzip_ms": {"median": pct([float(r[0]) * 1000 for r in rg], 50), "n": len(rg)},
        "metrics_bytes_plain": int(pct([int(r[1]) for r in rp], 50)) if rp else None,
        "metrics_bytes_gzip": int(pct([int(r[1]) for r in rg], 50)) if rg else None,
        "metrics_lines": len(lines),
        "vmrss_kib": int(rss.get("VmRSS", 0)),
        "vmhwm_kib": int(rss.get("VmHWM", 0)),
        "maps": maps,
        "maps_memlock_bytes": sum(m["bytes_memlock"] or 0 for m in maps),
    })

res = {
    "tool": "scale", "quick": quick,
    "machine": {"kernel": platform.release(), "nproc": os.cpu_count(),
                "loadavg_end": open("/proc/loadavg").read().split()[:3]},
    "agent": {"tick_ms": tick_ms, "max_rollouts": 1024},
    "conntrack": conntrack,
    "agent_levels": levels,
}
json.dump(res, open(out, "w"), indent=2)

print("\n## conntrack (build/scale)\n")
print("| fill | conntrack max_entries | memlock conntrack MiB | memlock all maps MiB | fill s | agent walk s (entries counted) |")
print("|---|---:|---:|---:|---:|---:|")
for lv in conntrack["levels"]:
    ct = next(m for m in lv["maps"] if m["name"] == os.environ["CT_PIN"])
    print("| %s | %d | %.1f | %.1f | %.2f | %.2f (%d) |" % (lv["name"], lv["conntrack_max_entries"],
          ct["memlock_after_fill"] / 2**20, lv["memlock_total_bytes"] / 2**20, lv["fill_s"],
          lv["agent_walk_s"], lv["agent_walk_counted"]))
print("\n| fill | path | hook | method | median ns | above empty |")
print("|---|---|---|---|---:|---:|")
for lv in conntrack["levels"]:
    for r in lv["rows"]:
        print("| %s | %s | %s | %s | %.0f | %+.0f |" % (lv["name"], r["path"].replace("established (identity NAT), ", ""),
              r["hook"], r["method"], r["median_ns"], r["above_empty_ns"] if r["above_empty_ns"] is not None else float("nan")))
print("\n## agent (tick %d ms, no traffic)\n" % tick_ms)
print("| rollouts | start-up s (to ready) | first weights set, ms after ready | tick CPU ms (main thread) | CPU ms/tick (process) | tick gauge median / p99 ms | /metrics ms (median) | /metrics KiB plain / gzip | RSS MiB |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for l in levels:
    print("| %d | %.2f | %s | %.3f | %.3f | %.2f / %.2f | %.1f | %.0f / %.0f | %.1f |" % (
        l["rollouts"],
        l["startup_to_ready_s"], "-" if l["weights_set_after_ready_ms"] is None else l["weights_set_after_ready_ms"],
        l["tick_cpu_ms_main_thread"] or 0, l["cpu_ms_per_tick_all_threads"] or 0,
        l["tick_gauge_ms"]["median"] or 0, l["tick_gauge_ms"]["p99"] or 0,
        l["metrics_render_ms"]["median"] or 0, (l["metrics_bytes_plain"] or 0) / 1024,
        (l["metrics_bytes_gzip"] or 0) / 1024, l["vmrss_kib"] / 1024))
print("\nscale: JSON in %s; load average at end: %s" % (out, " ".join(res["machine"]["loadavg_end"])))
EOF
