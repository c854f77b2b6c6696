#!/usr/bin/env bash
# Runs canaryd's libFuzzer targets for SECONDS each (default 60), side by side.
#
#   tests/fuzz/run.sh [SECONDS]
#
#   fuzz_config  config_parse_buffer() on tests/fuzz/config_seeds/
#   fuzz_api     the API's request path (two rollouts on a real dataplane as
#                root) on tests/fuzz/api_seeds/
#   fuzz_text    outside text into JSON on tests/fuzz/text_seeds/
#
# Each fuzzer works on a copy of its seed corpus in a temp dir (the seeds in
# the repository are never changed; fuzz_config also gets one seed written
# here with the sections config_seeds/ lacks: Prometheus metrics, health
# checks), with a dictionary of the YAML keys or API routes written there
# too, and
#   -max_total_time=SECONDS -timeout=5 -rss_limit_mb=2048
# Per fuzzer it prints libFuzzer's final stats line (executions, coverage,
# corpus) as a "# " comment and one TAP line:
#   ok - fuzz_config: N runs in S s, no crash
#   not ok - fuzz_config: crash after N runs: tests/fuzz/crashes/fuzz_config-crash-...
# A crash, timeout, leak or OOM input is copied to tests/fuzz/crashes/ (with
# the sanitizer's report next to it, .log) and the stack is printed.
# Reproduce with: build/fuzz/fuzz_config tests/fuzz/crashes/FILE
# Exit 0 only if every fuzzer ran and none crashed.
set -u
cd "$(dirname "$0")/../.." || exit 1

SECONDS_EACH=${1:-60}
case $SECONDS_EACH in
'' | *[!0-9]*)
	echo "usage: tests/fuzz/run.sh [SECONDS]" >&2
	exit 2
	;;
esac

FUZZ_BUILD=build/fuzz
CRASH_DIR=tests/fuzz/crashes
FUZZERS=(fuzz_config fuzz_api fuzz_text)
# fuzz_config: past libFuzzer's 4096-byte default, so documents reach the
# node limit without the amplifying mode (tests/fuzz/fuzz_config.c).
declare -A MAX_LEN=([fuzz_config]=20000)
declare -A SEEDS=([fuzz_config]=tests/fuzz/config_seeds [fuzz_api]=tests/fuzz/api_seeds
	[fuzz_text]=tests/fuzz/text_seeds)

# fuzz_api loads the BPF programs (root or CAP_BPF) to fuzz with rollouts.
if [ "$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi

WORK=$(mktemp -d /tmp/canaryd-fuzz.XXXXXX) || exit 1
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	# The fuzzers themselves too, should a subshell not have passed it on.
	for p in "$WORK"/*/fuzzer.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build (a no-op when up to date). Until the top-level Makefile includes
# fuzz.mk, name it on the command line.
if ! make -s "$FUZZ_BUILD/fuzz_config" "$FUZZ_BUILD/fuzz_api" "$FUZZ_BUILD/fuzz_text" \
	>"$WORK/make.log" 2>&1; then
	for f in "${FUZZERS[@]}"; do echo "not ok - $f: does not build"; done
	tail -n 30 "$WORK/make.log" | sed 's/^/# /'
	exit 1
fi

write_dicts() {
	# YAML: the schema's keys and words, and syntax libyaml treats specially.
	local k
	for k in apiVersion kind metadata name spec service vip port protocol stable canary \
		revision endpoints affinity overrides cidr version strategy steps setWeight pause \
		duration analysis interval minRequests failureLimit confidence metrics max \
		maxIncrease successCondition prometheus address query consecutiveErrorLimit abort \
		connections healthCheck timeout failureThreshold tls caFile certFile keyFile \
		insecureSkipVerify bearerTokenFile https://127.0.0.1:9090 /etc/ca.pem \
		canaryd.io/v1alpha1 Rollout tcp http udp client-ip none reset drain \
		errorRate latencyP50 latencyP95 latencyP99 resetRate compareErrorRate compareLatency \
		compareLatencyTail quantile \
		ms s m h 10.96.0.10 10.0.1.1:80 10.20.0.0/16 http://127.0.0.1:9090 \
		"result < 0.05" "result >= 1" '---' '...' ': ' '- ' '{' '}' '[' ']' '&a' '*a' '!!str' \
		'!!int' '!Ref' '%YAML 1.1' '%TAG ! tag:x,2000:' '"\u0000"' "'" '|' '>' '#' '~' null; do
		printf '"%s"\n' "$(printf '%s' "$k" | sed 's/\\/\\\\/g; s/"/\\"/g')"
	done >"$WORK/fuzz_config.dict"
	# API: routes, actions and the weight body.
	for k in /healthz /readyz /metrics /api/v1/rollouts /api/v1/rollouts/ promote promote-full \
		pause resume abort retry set-weight weight '{"weight": ' '12.5' '1e309' '-0' '}' \
		'null' 'true' '[' ']' ',' '"' '\u0000' '%00' '//' '/..'; do
		printf '"%s"\n' "$(printf '%s' "$k" | sed 's/\\/\\\\/g; s/"/\\"/g')"
	done >"$WORK/fuzz_api.dict"
	# Text: the bytes that make UTF-8 interesting (leads, continuations, the
	# edges of the valid ranges: overlongs, surrogates, past U+10FFFF).
	for k in '\xc3\xbc' '\xc2' '\xc0\x80' '\xe0\xa0\x80' '\xe0\x80' '\xed\x9f\xbf' '\xed\xa0\x80' \
		'\xef\xbf\xbf' '\xf0\x90\x80\x80' '\xf0\x8f' '\xf4\x8f\xbf\xbf' '\xf4\x90' '\xf5' '\x80' \
		'\xbf' '\xff'; do
		printf '"%s"\n' "$k"
	done >"$WORK/fuzz_text.dict"
}

# One fuzzer for SECONDS_EACH in total. libFuzzer stops at its first finding;
# a "timeout" whose input then runs well within -timeout on its own was the
# machine being busy (other suites running), not a hang: it is set aside and
# the fuzzer resumes on the same corpus for the time left.
run_one() {
	local f=$1 dir=$WORK/$1 start left rc runs=0 seg=0 n a real fuzzer
	mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/busy"
	cp "${SEEDS[$f]}"/* "$dir/corpus/"
	[ -d "$WORK/extra-$f" ] && cp "$WORK/extra-$f"/* "$dir/corpus/"
	start=$(date +%s)
	left=$SECONDS_EACH
	while :; do
		seg=$((seg + 1))
		TMPDIR=$dir "$FUZZ_BUILD/$f" -max_total_time="$left" -timeout=5 -rss_limit_mb=2048 \
			${MAX_LEN[$f]:+-max_len=${MAX_LEN[$f]}} \
			-print_final_stats=1 -dict="$WORK/$f.dict" \
			-artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 &
		fuzzer=$!
		echo "$fuzzer" >"$dir/fuzzer.pid"
		trap 'kill "$fuzzer" 2>/dev/null; exit 143' TERM
		wait "$fuzzer"
		rc=$?
		rm -f "$dir/fuzzer.pid"
		# fuzz_api's pins, should it have stopped without removing them.
		rm -rf "/sys/fs/bpf/canaryd-fuzz-api-$fuzzer"
		cat "$dir/log" >>"$dir/log.all"
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
		runs=$((runs + ${n:-0}))
		[ "$rc" -eq 0 ] && break
		real=0
		for a in "$dir"/artifacts/*; do
			[ -f "$a" ] || continue
			case $(basename "$a") in
			timeout-*)
				if "$FUZZ_BUILD/$f" -timeout=5 -runs=3 "$a" >"$a.rerun" 2>&1; then
					mv "$a" "$a.rerun" "$dir/busy/"
				else
					real=1
				fi
				;;
			*) real=1 ;;
			esac
		done
		[ "$real" -eq 1 ] && break
		left=$((SECONDS_EACH - ($(date +%s) - start)))
		[ "$left" -ge 1 ] || { rc=0; break; }
	done
	echo "$rc $runs $(($(date +%s) - start)) $seg" >"$dir/summary"
}

report_one() {
	local f=$1 dir=$WORK/$1 rc runs secs segs stats art dest a busy known
	read -r rc runs secs segs <"$dir/summary" 2>/dev/null || { rc=1 runs=0 secs=0 segs=0; }
	stats=$(grep -E '^#[0-9]+.*cov: ' "$dir/log" | tail -1)
	[ -n "$stats" ] && echo "# $f final stats: $(echo "$stats" | tr -s '\t ' ' ')"
	echo "# $f: $runs runs in $secs s ($((runs / (secs > 0 ? secs : 1))) exec/s)"
	busy=$(find "$dir/busy" -name 'timeout-*' ! -name '*.rerun' | wc -l)
	[ "$busy" -gt 0 ] &&
		echo "# $f: $busy timeout(s) not reproducible alone (machine busy); fuzzing resumed"

	art=()
	for a in "$dir"/artifacts/*; do [ -f "$a" ] && [[ $a != *.rerun ]] && art+=("$a"); done
	if [ "$rc" -eq 0 ] && [ ${#art[@]} -eq 0 ] && [ "$runs" -gt 0 ]; then
		echo "ok - $f: $runs runs in $secs s, no crash"
		return 0
	fi
	if [ ${#art[@]} -eq 0 ]; then
		echo "not ok - $f: libFuzzer exited $rc without a reproducer (runs: $runs)"
		tail -n 40 "$dir/log" | sed 's/^/# /'
		return 1
	fi
	mkdir -p "$CRASH_DIR"
	for a in "${art[@]}"; do
		dest=$CRASH_DIR/$f-$(basename "$a")
		cp "$a" "$dest"
		cp "$dir/log" "$dest.log"
		echo "not ok - $f: $(basename "$a" | cut -d- -f1) after $runs runs: $dest (reproduce: $FUZZ_BUILD/$f $dest)"
	done
	# The sanitizer's report: the error line and the stack.
	grep -a -E '^==[0-9]+==|^SUMMARY|runtime error|contract broken|^ *#[0-9]+ 0x' "$dir/log" |
		head -n 40 | sed 's/^/# /'
	return 1
}

# Seeds for what tests/fuzz/config_seeds/ does not show (yet): Prometheus
# metrics, health checks, every built-in metric. Written to the temp dir only.
write_extra_seeds() {
	mkdir -p "$WORK/extra-fuzz_config"
	cat >"$WORK/extra-fuzz_config/extra_every_section.yaml" <<'YAML'
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: checkout}
spec:
  service: {vip: 10.96.0.10, port: 80, protocol: http}
  stable: {revision: "v1", endpoints: ["10.0.1.11:8080", "10.0.1.12:8080"]}
  canary: {revision: "v2", endpoints: ["10.0.2.21:8080"]}
  affinity: none
  healthCheck: {interval: 1s, timeout: 200ms, failureThreshold: 2}
  overrides:
    - {cidr: 10.20.0.0/16, version: canary}
    - {cidr: 10.21.3.4/32, version: stable}
  strategy:
    steps:
      - setWeight: 0.5
      - pause: {duration: 1h}
      - setWeight: 99.99
  analysis:
    interval: 30s
    minRequests: 1
    failureLimit: 3
    confidence: 0.95
    metrics:
      - {name: errorRate, max: 0.05}
      - {name: resetRate, max: 0.01}
      - {name: latencyP50, max: 10ms}
      - {name: latencyP95, max: 1.5s}
      - {name: latencyP99, max: 2m}
      - {name: compareErrorRate}
      - {name: compareLatency, maxIncrease: 0.25}
      - name: checkout-success
        prometheus:
          address: "http://prometheus.monitoring:9090"
          query: sum(rate(orders_ok_total[1m])) / sum(rate(orders_total[1m]))
        successCondition: "result >= 0.95"
        consecutiveErrorLimit: 2
      - name: p99_kpi
        prometheus: {address: "https://prom:9090", query: "up"}
        successCondition: "result != 0"
  abort: {connections: drain}
---
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: dns-2}
spec:
  service: {vip: 10.96.0.53, port: 53, protocol: udp}
  stable: {endpoints: ["10.0.1.31:5353"]}
  canary: {endpoints: ["10.0.2.41:5354"]}
  affinity: client-ip
  strategy: {steps: [{pause: {}}, {setWeight: 100}]}
YAML
}

write_dicts
write_extra_seeds
for f in "${FUZZERS[@]}"; do
	run_one "$f" &
	PIDS+=($!)
done
wait "${PIDS[@]}"
PIDS=()

status=0
for f in "${FUZZERS[@]}"; do
	report_one "$f" || status=1
done
exit $status
