#!/usr/bin/env bash
# Runs canaryd's test suites and ends with one total line:
#   "tests: N passed, N failed, N skipped"
# usage: tests/run-all.sh [unit|bpf|e2e|deploy|docs]...   (default: all, in that order)
#
# Unit tests run under ASan+UBSan. The BPF and lab suites need root (or
# CAP_BPF + CAP_NET_ADMIN): run unprivileged they are skipped, and under
# CI=true that is a failure instead.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=build/tests
passed=0 failed=0 skipped=0
failed_names=()
durations=()

# Count cmocka's summary lines in a log.
count_cmocka() {
	local log=$1 name=$2 p f
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log" | sed -n 1p)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if [ -n "$f" ] && [ "$f" -gt 0 ]; then failed_names+=("$name"); fi
}

is_privileged() { [ "$(id -u)" -eq 0 ]; }

skip_or_fail() {
	local what=$1
	if [ "${CI:-}" = true ]; then
		echo "$what: needs root/CAP_BPF, and CI=true: failing instead of skipping"
		failed=$((failed + 1))
		failed_names+=("$what")
	else
		echo "$what: skipped: needs root/CAP_BPF"
		skipped=$((skipped + 1))
	fi
}

ensure_bpffs() {
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

run_unit() {
	local t log
	for t in "$BUILD"/unit/test_*; do
		[ -x "$t" ] || continue
		log=$(mktemp)
		echo "== unit: $(basename "$t")"
		"$t" >"$log" 2>&1
		local rc=$?
		grep -E '^\[  (FAILED|PASSED)  \]|^\[  ERROR   \]|^\[  FAILED  \] test_|ERROR|runtime error' "$log"
		count_cmocka "$log" "unit/$(basename "$t")"
		if [ $rc -ne 0 ] && ! grep -q '^\[  FAILED  \]' "$log"; then
			cat "$log"  # a crash or sanitizer report, not a cmocka failure
			failed=$((failed + 1))
			failed_names+=("unit/$(basename "$t")")
		fi
		rm -f "$log"
	done
}

run_bpf() {
	local log rc
	if ! is_privileged; then skip_or_fail "bpf"; return; fi
	ensure_bpffs
	log=$(mktemp)
	echo "== bpf: BPF_PROG_TEST_RUN suite"
	"$BUILD"/test_bpf >"$log" 2>&1
	rc=$?
	grep -vE '^\[ RUN      \]|^\[       OK \]' "$log"
	count_cmocka "$log" bpf
	if [ $rc -ne 0 ] && ! grep -q '^\[  FAILED  \]' "$log"; then
		failed=$((failed + 1))
		failed_names+=("bpf")
	fi
	rm -f "$log"
}

# Scripts print "ok - NAME" / "not ok - NAME" per check (TAP style).
# run_tap SUITE NEEDS_ROOT SCRIPT...
run_tap() {
	local suite=$1 needs_root=$2 t log rc p f
	shift 2
	if [ "$needs_root" = yes ]; then
		is_privileged || { skip_or_fail "$suite"; return; }
		ensure_bpffs
	fi
	for t in "$@"; do
		[ -f "$t" ] || continue
		log=$(mktemp)
		echo "== $suite: $(basename "$t")"
		local t0=$SECONDS
		timeout 300 bash "$t" >"$log" 2>&1
		rc=$?
		cat "$log"
		# Durations are reported, never judged: they show where CI time goes.
		durations+=("$((SECONDS - t0)) $suite/$(basename "$t")")
		p=$(grep -c '^ok ' "$log")
		f=$(grep -c '^not ok ' "$log")
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$f" -gt 0 ] || [ $rc -ne 0 ]; then
			failed_names+=("$suite/$(basename "$t")")
			# A script that died before reporting counts as one failure.
			[ "$f" -eq 0 ] && failed=$((failed + 1))
		fi
		rm -f "$log"
	done
}

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf e2e deploy docs)
for s in "${suites[@]}"; do
	case $s in
	unit) run_unit ;;
	bpf) run_bpf ;;
	e2e) run_tap e2e yes tests/e2e/test_*.sh ;;
	deploy) run_tap deploy no tests/deploy/test_*.sh ;;
	docs) run_tap docs yes tests/docs/test_*.sh ;;
	*) echo "run-all: unknown suite '$s' (unit, bpf, e2e, deploy, docs)" >&2; exit 2 ;;
	esac
done

echo
if [ ${#durations[@]} -gt 0 ]; then
	echo "slowest scripts (seconds):"
	printf '%s\n' "${durations[@]}" | sort -rn | head -8 | sed 's/^/  /'
fi
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
