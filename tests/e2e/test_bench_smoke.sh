#!/usr/bin/env bash
# run-all: alone (benchmarks load both CPUs)
# The end-to-end benchmark runs: tools/bench/e2e.sh --quick exits 0 (bounded
# by a 3-minute timeout, not judged by its time), its JSON has the 16 rows
# (direct, direct3, canaryd, canaryd3, canaryd3tcx, canaryd1, iptables,
# haproxy; each keep-alive and new connection per request) with traffic in
# each, the canaryd variants' rows saw no errors, the three wrk processes of
# direct3, canaryd3 and canaryd3tcx each reported, canaryd1 sent everything
# to st1, and the fair comparisons (canaryd, canaryd3 and canaryd3tcx vs
# direct3, canaryd1 vs direct) carry their ratios, each run's lab CPU is
# split by part (wrk, each nginx, the agent...), and --profile's table
# covers direct3, canaryd3, canaryd3tcx and iptables with samples in
# canaryd's programs for the two canaryd3 runs only. E2E_VARIANTS: an
# unknown or repeated name is refused before any set-up (exit 2, the name
# in the message), as is an unknown E2E_ORDER; "canaryd3 direct3" runs those two, in that order, and
# reports their rows and their one fair comparison only. Speed is reported
# by the benchmark, never checked here.
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
timeout -k 10 180 "$LAB_ROOT/tools/bench/e2e.sh" --quick --json "$json" --profile "$tmp/prof" \
	>"$tmp/out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/out"

check "e2e.sh --quick exits 0 (exit $rc, ${secs} s)" expect "$rc == 0"
check "JSON written" test -s "$json"

# jrows EXPR: the Python expression over the JSON (d), printed.
jrows() { jget "$1" <"$json" 2>/dev/null; }
want="sorted((v, m) for v in ('direct', 'direct3', 'canaryd', 'canaryd3', 'canaryd3tcx', 'canaryd1', 'iptables', 'haproxy') for m in ('keepalive', 'newconn'))"
check "JSON has the 16 rows (8 variants x keep-alive/new connection)" \
	test "$(jrows "len(d['rows']) == 16 and sorted((r['variant'], r['mode']) for r in d['rows']) == $want")" = True
check "every row has rps > 0 ($(jrows "', '.join('%s/%s %.0f' % (r['variant'], r['mode'], r['rps']) for r in d['rows'])"))" \
	test "$(jrows "all(r['rps'] > 0 for r in d['rows'])")" = True
check "the canaryd variants' rows had no errors ($(jrows "[r['errors'] for r in d['rows'] if r['variant'].startswith('canaryd')]"))" \
	test "$(jrows "[r['errors'] for r in d['rows'] if r['variant'].startswith('canaryd')] == [0] * 8")" = True
check "direct3's, canaryd3's and canaryd3tcx's runs have three wrk parts, each with requests" \
	test "$(jrows "all(len(x['parts']) == 3 and all(p['requests'] > 0 for p in x['parts']) for r in d['rows'] if r['variant'] in ('direct3', 'canaryd3', 'canaryd3tcx') for x in r['runs'])")" = True
check "canaryd1 sent its requests to st1 only ($(jrows "[x['backend_requests'] for r in d['rows'] if r['variant'] == 'canaryd1' for x in r['runs']]"))" \
	test "$(jrows "all(x['backend_requests']['st1'] > 100 and x['backend_requests']['st2'] + x['backend_requests']['cn1'] <= 2 for r in d['rows'] if r['variant'] == 'canaryd1' for x in r['runs'])")" = True
check "fair comparisons carry rps and p99 ratios ($(jrows "['%s/%s/%s %s %s' % (f['variant'], f['baseline'], f['mode'], f['rps'], f['p99']) for f in d['fair']]"))" \
	test "$(jrows "sorted((f['variant'], f['baseline'], f['mode']) for f in d['fair'] if f['rps'] and f['p99']) == sorted((v, b, m) for v, b in (('canaryd', 'direct3'), ('canaryd3', 'direct3'), ('canaryd3tcx', 'direct3'), ('canaryd1', 'direct')) for m in ('keepalive', 'newconn'))")" = True
check "each run's lab CPU is split by part, the parts add up, wrk and the backends it loaded used CPU" \
	test "$(jrows "all(abs(sum(x['lab_cpu_s_by_role'].values()) - x['lab_cpu_s']) < 0.01 and x['lab_cpu_s_by_role']['wrk'] > 0 and x['lab_cpu_s_by_role']['nginx-st1'] > 0 and ('agent' in x['lab_cpu_s_by_role']) == r['variant'].startswith('canaryd') for r in d['rows'] for x in r['runs'])")" = True
check "JSON reports the goals" test "$(jrows "len(d['goals']) > 0 and all('holds' in g for g in d['goals'])")" = True
# prof EXPR: the Python expression over --profile's profile.json (d), printed.
prof() { jget "$1" <"$tmp/prof/profile.json" 2>/dev/null; }
check "profile covers direct3, canaryd3, canaryd3tcx, iptables, each with requests and samples" \
	test "$(prof "[r['variant'] for r in d['runs'] if r['requests'] > 0 and r['samples'] > 0] == ['direct3', 'canaryd3', 'canaryd3tcx', 'iptables']")" = True
check "canaryd's programs sampled in canaryd3's and canaryd3tcx's runs only ($(prof "{r['variant']: round(r['us_per_req']['canaryd programs'], 3) for r in d['runs']}"))" \
	test "$(prof "[r['us_per_req']['canaryd programs'] > 0 for r in d['runs']] == [False, True, True, False]")" = True

# E2E_VARIANTS: refused names, then a subset in another order.
msg=$(E2E_VARIANTS="direct3 nosuch" timeout 30 "$LAB_ROOT/tools/bench/e2e.sh" --quick 2>&1)
rc=$?
check "E2E_VARIANTS with an unknown name: exit 2 naming it ($rc: $msg)" \
	expect "$rc == 2 and $(grep -c "unknown variant 'nosuch'" <<<"$msg") == 1"
msg=$(E2E_VARIANTS="canaryd3 direct3 canaryd3" timeout 30 "$LAB_ROOT/tools/bench/e2e.sh" --quick 2>&1)
rc=$?
check "E2E_VARIANTS with a name twice: exit 2 naming it ($rc: $msg)" \
	expect "$rc == 2 and $(grep -c "'canaryd3' given twice" <<<"$msg") == 1"
msg=$(E2E_ORDER=random timeout 30 "$LAB_ROOT/tools/bench/e2e.sh" --quick 2>&1)
rc=$?
check "E2E_ORDER other than alternate or fixed: exit 2 naming it ($rc: $msg)" \
	expect "$rc == 2 and $(grep -c "E2E_ORDER: 'random'" <<<"$msg") == 1"
E2E_VARIANTS="canaryd3 direct3" timeout -k 10 120 "$LAB_ROOT/tools/bench/e2e.sh" --quick --json "$json.sub" \
	>"$tmp/out.sub" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out.sub"
check "E2E_VARIANTS=\"canaryd3 direct3\" --quick exits 0 (exit $rc)" expect "$rc == 0"
json=$json.sub
check "that run has their 4 rows, in that order, and one fair comparison ($(jrows "[d['config']['variants'], [(f['variant'], f['baseline'], f['mode']) for f in d['fair']]]"))" \
	test "$(jrows "d['config']['variants'] == ['canaryd3', 'direct3'] and [(r['variant'], r['mode']) for r in d['rows']] == [('direct3', 'keepalive'), ('direct3', 'newconn'), ('canaryd3', 'keepalive'), ('canaryd3', 'newconn')] and [(f['variant'], f['baseline']) for f in d['fair'] if f['rps']] == [('canaryd3', 'direct3')] * 2")" = True
check "its runs came in that order (canaryd3's keep-alive run first)" \
	test "$(grep -m1 -oE '(canaryd3|direct3) +keepalive' "$tmp/out.sub" | cut -d' ' -f1)" = canaryd3
lab_finish
