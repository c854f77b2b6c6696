#!/usr/bin/env bash
# make demo: canaryd in a lab of network namespaces, with real traffic.
#
#   1. builds a client, a node (where canaryd attaches), 2 stable backends
#      and a canary backend;
#   2. moves the canary weight 10% -> 50% -> 100% under steady traffic,
#      showing the observed split and the kernel's per-version counters;
#   3. turns the canary bad (HTTP 503) at 10% and rolls it back with
#      "canaryctl emergency-rollback", straight into the pinned maps;
#   4. prints a summary and removes the lab. Exits non-zero if any of it did
#      not happen as shown.
set -uo pipefail
cd "$(dirname "$0")/.."
source tests/e2e/lib.sh

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
failures=0
expect_or_fail() {
	local desc=$1
	shift
	if expect "$@"; then echo "   ✔ $desc"; else echo "   ✘ $desc"; failures=$((failures + 1)); fi
}

lab_require_root
trap lab_down EXIT
bold "== building the lab: client, node (rp_filter=1), stable st1+st2, canary cn1"
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

start_agent() {
	lab_agent_stop
	lab_agent --service "checkout=$LAB_VIP:$LAB_PORT/http" --stable "$(lab_endpoints st1 st2)" \
		--canary "$(lab_endpoints cn1)" --weight "$1"
}

declare -a rows
# phase WEIGHT SECONDS: traffic on new connections, then the observed split.
phase() {
	local weight=$1 secs=$2 out n cn err share p99
	start_agent "$weight"
	out=$(lab_load --mode newconn --connections 4 --rate 800 --duration-s "$secs")
	n=$(echo "$out" | jget 'd["ok"]')
	cn=$(echo "$out" | jget 'd["backends"].get("cn1", 0)')
	err=$(echo "$out" | jget 'd["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k.startswith("5"))')
	p99=$(echo "$out" | jget 'd["latency_us"]["p99"]')
	share=$(python3 -c "print(round(100.0 * $cn / max($n, 1), 1))")
	printf '   weight %5s%%  requests %6d  canary share %5.1f%%  failed %d  p99 %d us\n' \
		"$weight" "$n" "$share" "$err" "$p99"
	rows+=("$(printf '| %s%% | %d | %.1f%% | %d |' "$weight" "$n" "$share" "$err")")
	expect_or_fail "canary share $share% is near $weight%" "abs($share - $weight) <= 5"
	expect_or_fail "no failed request" "$err == 0"
}

bold "== a good canary: 10% -> 50% -> 100% (canaryd restarted with each weight; flows keep their backend)"
phase 10 3
phase 50 3
phase 100 3

bold "== kernel counters (canaryctl maps, read from the pinned maps)"
canaryctl maps | sed 's/^/   /'

bold "== a bad canary: v2 answers 503 at 10%"
start_agent 10
lab_backend_set cn1 error_rate=1
lab_load_bg "$LAB_DIR/bad.out" --mode keepalive --connections 8 --rate 800 --duration-s 4 \
	--snapshot-on-usr1
sleep 1.5
c5xx=$(metric canary responses.5xx)
echo "   kernel sees canary 5xx: $c5xx, stable 5xx: $(metric stable responses.5xx)"
expect_or_fail "the kernel counted the canary's 5xx" "$c5xx > 0"
t0=$(date +%s%N)
canaryctl emergency-rollback checkout | sed 's/^/   /'
t1=$(date +%s%N)
kill -USR1 "$LAB_LOAD_PID"
sleep 1
kill -USR1 "$LAB_LOAD_PID"
wait "$LAB_LOAD_PID"
before=$(sed -n 1p "$LAB_DIR/bad.out" | jget 'd["backends"].get("cn1", 0)')
after=$(sed -n 2p "$LAB_DIR/bad.out" | jget 'd["backends"].get("cn1", 0)')
total=$(tail -1 "$LAB_DIR/bad.out" | jget 'd["requests"]')
failed=$(tail -1 "$LAB_DIR/bad.out" | jget 'd["requests"] - d["ok"] + d["status"].get("503", 0)')
echo "   rollback applied in $(((t1 - t0) / 1000000)) ms; canary responses after it settled: $((after - before))"
echo "   failed requests: $failed of $total (503s before the rollback, plus one reset per canary connection)"
expect_or_fail "no canary response once the rollback settled" "$after == $before"
rows+=("$(printf '| 10%% (bad, rolled back) | %d | - | %d |' "$total" "$failed")")

bold "== summary"
echo "| weight | requests | canary share | failed |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ "$failures" -ne 0 ]; then
	bold "demo: $failures check(s) did not hold"
	exit 1
fi
bold "demo: every check held"
