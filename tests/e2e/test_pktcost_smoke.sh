#!/usr/bin/env bash
# run-all: alone (benchmarks load both CPUs)
# The per-packet benchmark runs: build/pktcost --quick exits 0 (it checks
# every path's branch itself and aborts on a wrong one), and its JSON has
# every path on every hook it is timed on, each with an empty program's
# figure next to it, and every single operation of primitives.bpf.c, each
# with a time. Speed is reported by the benchmark, never judged here.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json=$tmp/pktcost.json

start=$(date +%s)
timeout -k 5 120 "$LAB_BUILD/pktcost" --quick --json "$json" >"$tmp/out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
sed 's/^/# /' "$tmp/out"
check "pktcost --quick exits 0 (exit $rc, ${secs} s)" expect "$rc == 0"
check "JSON written" test -s "$json"

j() { jget "$1" <"$json" 2>/dev/null; }
paths="[('nomatch', 'tc ingress'), ('nomatch', 'xdp'), ('nomatch', 'tc egress'), ('syn', 'tc ingress'), ('syn', 'xdp'), ('established', 'tc ingress'), ('established', 'xdp'), ('established (identity NAT)', 'tc ingress'), ('established (identity NAT)', 'xdp'), ('reply (identity NAT)', 'tc egress'), ('established_http', 'tc ingress'), ('established_http', 'xdp'), ('reply_status', 'tc egress')]"
check "every path on its hooks, each with a time and the empty program's ($(j "sorted(set((r['path'], r['hook']) for r in d['rows'] if r['above_empty_ns'] is not None))"))" \
	test "$(j "all(any(r['path'] == p and r['hook'] == h and r['median_ns'] > 0 and r['empty_ns'] > 0 for r in d['rows']) for p, h in $paths)")" = True
# The programs primitives.bpf.c defines, as Python list items: 'prim_a', 'prim_b', ...
prims=$(sed -n "s/^int \(prim_[a-z0-9_]*\)(.*/'\1'/p" "$LAB_ROOT/tools/bench/primitives.bpf.c" | paste -sd, -)
check "primitives.bpf.c defines programs ($prims)" test -n "$prims"
check "every single operation timed ($(j "[p['program'] for p in d['primitives']]"))" \
	test "$(j "sorted(p['program'] for p in d['primitives'] if p['median_ns'] > 0) == sorted([$prims])")" = True
lab_finish
