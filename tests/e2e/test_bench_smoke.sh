#!/usr/bin/env bash
# run-all: alone (benchmarks load both CPUs)
# The end-to-end benchmark runs: tools/bench/e2e.sh --quick exits 0 (bounded
# by a 3-minute timeout, not judged by its time), its JSON has the 8 rows
# (direct, canaryd, iptables, haproxy; each keep-alive and new connection per
# request) with traffic in each, and canaryd's rows saw no errors. Speed is reported by the benchmark, never
# checked here.
set -u
# One lab name for the benchmark and this script, so the trap below can
# remove the lab even if the benchmark was killed before its own clean-up.
export LAB_ID=benchsmoke$$
source "$(dirname "$0")/lib.sh"
lab_require_root

tmp=$(mktemp -d)
trap 'lab_down; rm -rf "$tmp"' EXIT
json=$tmp/e2e.json

start=$(date +%s)
timeout -k 10 180 "$LAB_ROOT/tools/bench/e2e.sh" --quick --json "$json" >"$tmp/out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/out"

check "e2e.sh --quick exits 0 (exit $rc, ${secs} s)" expect "$rc == 0"
check "JSON written" test -s "$json"

# jrows EXPR: the Python expression over the JSON (d), printed.
jrows() { jget "$1" <"$json" 2>/dev/null; }
want="sorted((v, m) for v in ('direct', 'canaryd', 'iptables', 'haproxy') for m in ('keepalive', 'newconn'))"
check "JSON has the 8 rows (4 variants x keep-alive/new connection)" \
	test "$(jrows "len(d['rows']) == 8 and sorted((r['variant'], r['mode']) for r in d['rows']) == $want")" = True
check "every row has rps > 0 ($(jrows "', '.join('%s/%s %.0f' % (r['variant'], r['mode'], r['rps']) for r in d['rows'])"))" \
	test "$(jrows "all(r['rps'] > 0 for r in d['rows'])")" = True
check "canaryd's rows had no errors ($(jrows "[r['errors'] for r in d['rows'] if r['variant'] == 'canaryd']"))" \
	test "$(jrows "[r['errors'] for r in d['rows'] if r['variant'] == 'canaryd'] == [0, 0]")" = True
check "JSON reports the goals" test "$(jrows "len(d['goals']) > 0 and all('holds' in g for g in d['goals'])")" = True
lab_finish
