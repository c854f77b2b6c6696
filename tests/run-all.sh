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
# Count one finished script: LOG holds its output, RC its exit status.
count_tap() {
	local suite=$1 t=$2 log=$3 rc=$4 secs=$5 p f
	cat "$log"
	# Durations are reported, never judged: they show where CI time goes.
	durations+=("$secs $suite/$(basename "$t")")
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ]; then
		failed_names+=("$suite/$(basename "$t")")
		# A script that died before reporting counts as one failure.
		[ "$f" -eq 0 ] && failed=$((failed + 1))
	fi
}

# Run one script into LOG; its header line goes first so that output
# from lanes running side by side stays readable once printed.
run_script() {
	local suite=$1 t=$2 log=$3 t0=$SECONDS rc
	echo "== $suite: $(basename "$t")" >"$log"
	timeout 300 bash "$t" >>"$log" 2>&1
	rc=$?
	echo "$rc $((SECONDS - t0))" >"$log.rc"
}

# A script whose header says "# run-all: alone" is CPU-bound or judges
# timing loosely enough that a neighbour could upset it: it runs by itself.
runs_alone() { grep -q '^# run-all: alone' "$1"; }
# "# run-all: needs kube-apiserver": it runs last, once the build is done.
needs_kube() { grep -q '^# run-all: needs kube-apiserver' "$1"; }

# The Kubernetes labs run a kube-apiserver built from Debian's source package
# (tools/kube-apiserver.sh, about 10 CPU-minutes, cached once built). A
# machine without it starts that build here, at the lowest priority, so that
# it uses what the other suites leave idle; the labs that need it wait.
kube_build_pid=
kube_build_log=build/tests/kube-apiserver-build.log
start_kube_build() {
	is_privileged || return 0
	tools/kube-apiserver.sh --check && return 0
	mkdir -p "$(dirname "$kube_build_log")"
	echo "== kube-apiserver: not cached; building it in the background ($kube_build_log)"
	# A session of its own, so that a stuck build is stopped with its children.
	setsid nice -n 19 tools/kube-apiserver.sh >"$kube_build_log" 2>&1 &
	kube_build_pid=$!
}
kube_build_rc=0
# Bounded: a build stuck (say on the package archive) is stopped after 40 min.
KUBE_BUILD_MAX_S=2400
wait_kube_build() {
	local waited=0
	if [ -n "$kube_build_pid" ]; then
		echo "== kube-apiserver: waiting for its build to end"
		while kill -0 "$kube_build_pid" 2>/dev/null && [ $waited -lt $KUBE_BUILD_MAX_S ]; do
			sleep 2
			waited=$((waited + 2))
		done
		kill -0 "$kube_build_pid" 2>/dev/null && kill -- -"$kube_build_pid" 2>/dev/null
		wait "$kube_build_pid"
		kube_build_rc=$?
		kube_build_pid=
	fi
	[ "$kube_build_rc" -eq 0 ] && return 0
	echo "== kube-apiserver: the build failed (exit $kube_build_rc); the end of its log:"
	tail -20 "$kube_build_log"
	return "$kube_build_rc"
}
# wait -n in the lanes reaps any child, the build included: keep its status.
other_child_ended() {
	if [ "$1" = "$kube_build_pid" ]; then
		kube_build_rc=$2
		kube_build_pid=
	fi
}

# run_tap SUITE NEEDS_ROOT SCRIPT...
# Lab scripts name their namespaces, pins and directories after their PID,
# so up to TEST_JOBS of them run side by side; the rest run one at a time.
run_tap() {
	local suite=$1 needs_root=$2 t jobs=${TEST_JOBS:-$default_jobs}
	local -a lanes=() alone=()
	shift 2
	if [ "$needs_root" = yes ]; then
		is_privileged || { skip_or_fail "$suite"; return; }
		ensure_bpffs
	fi
	local -a kube=()
	for t in "$@"; do
		[ -f "$t" ] || continue
		if needs_kube "$t"; then
			kube+=("$t")
		elif [ "$jobs" -gt 1 ] && ! runs_alone "$t"; then
			lanes+=("$t")
		else
			alone+=("$t")
		fi
	done
	local pid log
	for t in "${lanes[@]}"; do
		while [ ${#lane_log[@]} -ge "$jobs" ]; do reap_lane "$suite" || break; done
		log=$(mktemp)
		run_script "$suite" "$t" "$log" &
		pid=$!
		lane_log[$pid]="$t $log"
	done
	while [ ${#lane_log[@]} -gt 0 ]; do reap_lane "$suite" || break; done
	# Nothing left to wait for: whatever is still listed has ended.
	for pid in "${!lane_log[@]}"; do
		finish_lane "$suite" "${lane_log[$pid]}"
		unset "lane_log[$pid]"
	done
	for t in "${alone[@]}"; do run_alone "$suite" "$t"; done
	[ ${#kube[@]} -eq 0 ] && return
	# A failed build leaves no binary: each script then reports that itself.
	wait_kube_build || true
	for t in "${kube[@]}"; do run_alone "$suite" "$t"; done
}

# The scripts running in lanes: PID -> "SCRIPT LOG".
declare -A lane_log=()

# Wait for one child to end and count it if it ran a script; 1: no child left.
reap_lane() {
	local suite=$1 done_pid= rc
	wait -n -p done_pid
	rc=$?
	[ -n "$done_pid" ] || return 1
	if [ -z "${lane_log[$done_pid]:-}" ]; then
		other_child_ended "$done_pid" "$rc"
		return 0
	fi
	finish_lane "$suite" "${lane_log[$done_pid]}"
	unset "lane_log[$done_pid]"
}

run_alone() {
	local suite=$1 t=$2 log rc secs
	log=$(mktemp)
	run_script "$suite" "$t" "$log"
	read -r rc secs <"$log.rc"
	count_tap "$suite" "$t" "$log" "$rc" "$secs"
	rm -f "$log" "$log.rc"
}

# finish_lane SUITE "SCRIPT LOG": count a script that ran in a lane.
finish_lane() {
	local suite=$1 t=${2% *} log=${2#* } rc secs
	read -r rc secs <"$log.rc"
	count_tap "$suite" "$t" "$log" "$rc" "$secs"
	rm -f "$log" "$log.rc"
}

# Two lanes by default where there are two CPUs: the lab scripts mostly
# wait on timers, so two overlap well; more starve the timing-sensitive ones.
default_jobs=$(($(nproc) >= 2 ? 2 : 1))

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit bpf e2e deploy docs)
case " ${suites[*]} " in *" e2e "*) start_kube_build ;; esac
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
