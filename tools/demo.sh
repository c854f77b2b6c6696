#!/usr/bin/env bash
# make demo: canaryd in a lab of network namespaces, with real traffic.
#
#   1. builds a client, a node (where canaryd attaches), 2 stable backends
#      and a canary backend;
#   2. a good canary (v2) walks 10% -> 50% -> 100% under steady traffic and
#      is promoted, judged all the way by the analysis;
#   3. a bad release (v3, answering HTTP 503) starts at 10% and is rolled
#      back automatically; the demo prints how long detection took and how
#      many client requests failed;
#   4. prints a summary and removes the lab. Exits non-zero if any of it did
#      not happen as shown.
#
# DEMO=interactive (make demo DEMO=interactive) keeps the lab afterwards, with
# a new canary paused at 10% under light traffic, and prints the commands to
# explore it; make demo-clean removes it.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${DEMO:-}" = interactive ]; then
	export LAB_ID=demo # a fixed name, so make demo-clean finds it
fi
source tests/e2e/lib.sh

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
failures=0
expect_or_fail() {
	local desc=$1
	shift
	if expect "$@"; then echo "   ✔ $desc"; else echo "   ✘ $desc"; failures=$((failures + 1)); fi
}

STEPS="[{setWeight: 10}, {pause: {duration: 4s}}, {setWeight: 50}, {pause: {duration: 4s}},
          {setWeight: 100}, {pause: {duration: 2s}}]"
ANALYSIS="{interval: 1s, minRequests: 30, failureLimit: 1, confidence: 0.99,
            metrics: [{name: errorRate, max: 0.02}, {name: latencyP95, max: 250ms},
                      {name: compareErrorRate}, {name: compareLatency, maxIncrease: 0.5}]}"


lab_require_root
if [ "${DEMO:-}" = interactive ]; then
	lab_down # a lab left by an earlier interactive demo
	trap 'echo "demo: failed; make demo-clean removes the lab"' EXIT
else
	trap lab_down EXIT
fi
bold "== the lab: client, node (rp_filter=1), stable v1 on st1+st2, canary on cn1"
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

bold "== a good canary: v2 walks 10% -> 50% -> 100% under 600 requests/s"
LAB_CANARY_REVISION=v2 lab_rollout checkout "$LAB_VIP" "$STEPS" "$ANALYSIS"
sed 's/^/   /' "$LAB_CONFIG_DIR/checkout.yaml"
lab_agent
lab_load_bg "$LAB_DIR/good.out" --mode newconn --connections 4 --rate 600 --duration-s 60
good_load=$LAB_LOAD_PID
canaryctl status checkout --until-done
good_rc=$?
kill -TERM "$good_load"
wait "$good_load"
good_total=$(jget 'd["requests"]' <"$LAB_DIR/good.out")
good_failed=$(jget 'd["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")' \
	<"$LAB_DIR/good.out")
echo
expect_or_fail "v2 was promoted (phase Healthy)" "$good_rc == 0"
expect_or_fail "no client request failed ($good_failed of $good_total)" "$good_failed == 0"

bold "== a bad release: v3 starts at 10%, then answers 503"
ts_ms() { sed -n 's/^ts=\([^ ]*\) .*/\1/p' | tail -1 | xargs -r -I{} date -d {} +%s%3N; }
lab_load_bg "$LAB_DIR/bad.out" --mode newconn --connections 4 --rate 600 --duration-s 60 \
	--snapshot-on-usr1
bad_load=$LAB_LOAD_PID
LAB_CANARY_REVISION=v3 lab_rollout checkout "$LAB_VIP" "$STEPS" "$ANALYSIS"
lab_wait checkout "d['canary']['revision'] == 'v3' and d['weight'] == 10" 10
bad_ms=$(date +%s%3N)
lab_backend_set cn1 error_rate=1
canaryctl status checkout --until-done
bad_rc=$?
kill -USR1 "$bad_load" # failures up to here ...
sleep 2
kill -TERM "$bad_load" # ... and none after
wait "$bad_load"
abort_ms=$(grep 'msg=aborted' "$LAB_DIR/canaryd.log" | ts_ms)
detect_ms=$((abort_ms - bad_ms))
bad_total=$(tail -1 "$LAB_DIR/bad.out" | jget 'd["requests"]')
failed_expr='d["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")'
bad_failed=$(tail -1 "$LAB_DIR/bad.out" | jget "$failed_expr")
failed_at_rollback=$(head -1 "$LAB_DIR/bad.out" | jget "$failed_expr")
echo
echo "   v3 turned bad; its weight was back to 0 ${detect_ms} ms later"
echo "   failed client requests: $bad_failed of $bad_total, all answered by v3 before the rollback"
grep 'msg=verdict' "$LAB_DIR/canaryd.log" | tail -3 | sed 's/^/   /'
expect_or_fail "v3 was rolled back (phase Degraded)" "$bad_rc == 1"
expect_or_fail "detected and rolled back in under 3 s (${detect_ms} ms)" "0 < $detect_ms < 3000"
expect_or_fail "no request failed after the rollback" "$bad_failed == $failed_at_rollback"

bold "== summary"
echo "| release | outcome | requests | failed | detection |"
echo "|---|---|---|---|---|"
echo "| v2 (good) | promoted 10% → 50% → 100% | $good_total | $good_failed | - |"
echo "| v3 (503s) | rolled back at 10% | $bad_total | $bad_failed | ${detect_ms} ms |"
if [ "$failures" -ne 0 ]; then
	bold "demo: $failures check(s) did not hold"
	exit 1
fi
bold "demo: every check held"

[ "${DEMO:-}" = interactive ] || exit 0
# Keep exploring: a good v4 at 10%, held by an indefinite pause, under light traffic.
lab_backend_set cn1 error_rate=0
LAB_CANARY_REVISION=v4 lab_rollout checkout "$LAB_VIP" \
	"[{setWeight: 10}, {pause: {}}, {setWeight: 50}, {pause: {duration: 10s}}, {setWeight: 100}]" \
	"$ANALYSIS"
lab_wait checkout "d['canary']['revision'] == 'v4' and d['weight'] == 10" 10
lab_load_bg "$LAB_DIR/explore.out" --mode newconn --connections 2 --rate 50 --duration-s 600
trap - EXIT
node="nsenter --net=/run/netns/$(ns node)"
ctl="$node $LAB_BUILD/canaryctl --socket $LAB_SOCKET --bpffs $LAB_BPFFS"
cat <<EOF

The lab stays up (light traffic for 10 minutes): canary v4 of "checkout" is
paused at 10%. Try, as root:

  $ctl status checkout --watch
  $ctl promote checkout                 # on to 50%, then 100% after 10 s
  $ctl set-weight checkout 25
  $ctl abort checkout
  $ctl retry checkout
  $ctl maps
  $ctl flows checkout
  $ctl emergency-rollback checkout
  $ctl emergency-clear checkout          # release the kill switch, then retry
  $node curl -s --unix-socket $LAB_SOCKET http://canaryd/metrics | grep canaryd_requests_total
  bpftool map dump pinned $LAB_BPFFS/$(pin_name services)
  bpftool map dump pinned $LAB_BPFFS/$(pin_name reasons)
  nsenter --net=/run/netns/$(ns cl) curl -s http://$LAB_VIP/     # a request through the VIP
  tail -f $LAB_DIR/canaryd.log

Remove the lab with:  make demo-clean
EOF
