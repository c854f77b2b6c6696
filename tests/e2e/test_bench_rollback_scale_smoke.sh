#!/usr/bin/env bash
# run-all: alone (benchmarks load both CPUs)
# The rollback-speed and scale benchmarks run: tools/bench/rollback.sh --quick
# and tools/bench/scale.sh --quick each exit 0, and their JSON has the
# expected fields with sane values (a detection time between 0 and 10 s,
# a tick time above 0, ...). Speed is reported by the benchmarks, never
# judged here: the bounds only catch a benchmark that measured nothing.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root

tmp=$(mktemp -d)
RB_ID=rbsmoke$$
SC_ID=scsmoke$$
# Each benchmark removes its own lab; this is for one killed by the timeout.
down() { LAB_ID=$1 bash -c 'source "$1" && lab_down' _ "$LAB_ROOT/tests/e2e/lib.sh" >/dev/null 2>&1; }
trap 'down "$RB_ID"; down "$SC_ID"; rm -rf "$tmp"' EXIT

# run ID SECONDS NAME SCRIPT ARGS...: one benchmark under a time limit.
run() {
	local id=$1 limit=$2 name=$3 start rc
	shift 3
	start=$(date +%s)
	LAB_ID=$id timeout -k 5 "$limit" "$@" >"$tmp/$name.out" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	sed 's/^/# /' "$tmp/$name.out"
	check "$name --quick exits 0 (exit $rc, ${secs} s)" expect "$rc == 0"
}
# j FILE EXPR: the Python expression over the JSON document (d), printed.
j() { jget "$2" <"$1" 2>/dev/null; }
jcheck() {
	local desc=$1 file=$2 expr=$3
	check "$desc" test "$(j "$file" "$expr")" = True
}

total_start=$(date +%s)

rb=$tmp/rollback.json
run "$RB_ID" 120 rollback.sh "$LAB_ROOT/tools/bench/rollback.sh" --quick --json "$rb"
check "rollback JSON written" test -s "$rb"
for sc in 5xx latency; do
	jcheck "rollback $sc: 2 trials, every one aborted and measured" "$rb" \
		"len(d['scenarios']['$sc']['trials']) == 2 and all(t['ok'] for t in d['scenarios']['$sc']['trials'])"
	# The upper bound is the benchmark's own: a trial not aborted within 15 s
	# of the flip is a failed trial. How fast is reported, not judged.
	jcheck "rollback $sc: weight 0 after the first error, within the trial's limit (15 s after the flip, +1 s of its polling) ($(j "$rb" "[t.get('weight0_after_first_error_ms') for t in d['scenarios']['$sc']['trials']]") ms)" "$rb" \
		"all(0 < t['weight0_after_first_error_ms'] <= t['weight0_after_flip_ms'] <= 16000 for t in d['scenarios']['$sc']['trials'])"
	jcheck "rollback $sc: median and p90 reported" "$rb" \
		"all(d['scenarios']['$sc']['summary'][k][q] is not None for k in ('weight0_after_first_error_ms', 'weight0_after_flip_ms', 'last_canary_response_after_weight0_ms', 'failed', 'failed_share') for q in ('median', 'p90'))"
	jcheck "rollback $sc: last canary response within 10 s of weight 0" "$rb" \
		"all(-1000 < t['last_canary_response_after_weight0_ms'] < 10000 for t in d['scenarios']['$sc']['trials'])"
	jcheck "rollback $sc: load ran after the flip, req/s ($(j "$rb" "[t.get('rps_after_flip') for t in d['scenarios']['$sc']['trials']]"))" "$rb" \
		"all(t['requests'] > 0 and t['rps_after_flip'] > 0 for t in d['scenarios']['$sc']['trials'])"
done
jcheck "rollback 5xx: the bad canary failed some requests, a share below 1 ($(j "$rb" "[(t['failed'], t['requests']) for t in d['scenarios']['5xx']['trials']]"))" "$rb" \
	"all(t['failed'] > 0 and 0 < t['failed_share'] < 1 for t in d['scenarios']['5xx']['trials'])"
jcheck "rollback: Argo Rollouts / Flagger arithmetic present" "$rb" \
	"len(d['comparison']['rows']) >= 2 and all(r['typical_s'] > 0 and r['worst_s'] >= r['typical_s'] and r['failed_requests_worst'] > 0 for r in d['comparison']['rows'])"
jcheck "rollback: machine and configuration recorded" "$rb" \
	"d['config']['tick_ms'] > 0 and d['config']['labload']['rate'] >= 1000 and len(d['machine']['loadavg_start']) == 3"

sc=$tmp/scale.json
run "$SC_ID" 90 scale.sh "$LAB_ROOT/tools/bench/scale.sh" --quick --json "$sc"
check "scale JSON written" test -s "$sc"
jcheck "scale: conntrack filled to 100k flows (200,000 entries), counted by the agent's walk too" "$sc" \
	"any(l['flows'] == 100000 and l['entries'] == 200000 and l['agent_walk_counted'] == 200000 for l in d['conntrack']['levels'])"
jcheck "scale: every map's memlock reported, conntrack's > 0" "$sc" \
	"all(len(l['maps']) == 8 and any(m['name'] == '$(pin_name conntrack)' and m['memlock_after_fill'] > 0 for m in l['maps']) for l in d['conntrack']['levels'])"
jcheck "scale: per-packet rows at the 100k fill, each > 0 ns" "$sc" \
	"all(len(l['rows']) >= 4 and all(r['median_ns'] > 0 for r in l['rows']) for l in d['conntrack']['levels'] if l['flows'] == 100000)"
jcheck "scale: agent measured idle and with 100 rollouts (all seen by the API)" "$sc" \
	"sorted(a['rollouts'] for a in d['agent_levels']) == [0, 100] and all(a['rollouts_seen_by_api'] == a['rollouts'] for a in d['agent_levels'])"
a100="[a for a in d['agent_levels'] if a['rollouts'] == 100][0]"
jcheck "scale: tick time > 0 with 100 rollouts (CPU $(j "$sc" "${a100}['tick_cpu_ms_main_thread']") ms, gauge median $(j "$sc" "${a100}['tick_gauge_ms']['median']") ms)" "$sc" \
	"${a100}['tick_cpu_ms_main_thread'] > 0 and ${a100}['tick_gauge_ms']['median'] > 0 and ${a100}['ticks_in_window'] > 0"
jcheck "scale: /metrics render time and sizes (plain > gzip > 0)" "$sc" \
	"${a100}['metrics_render_ms']['median'] > 0 and ${a100}['metrics_bytes_plain'] > ${a100}['metrics_bytes_gzip'] > 0"
jcheck "scale: RSS reported idle and with rollouts" "$sc" \
	"all(a['vmrss_kib'] > 0 for a in d['agent_levels'])"

# Each run is bounded by its timeout above; how long they took is reported, not judged.
echo "# both benchmarks ran in $(($(date +%s) - total_start)) s"
lab_finish
