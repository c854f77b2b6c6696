#!/usr/bin/env bash
# /healthz and /readyz follow the tick loop: with only the agent's main
# thread stopped (ptrace on that one thread: the API's threads go on
# answering, as they would while the loop is deadlocked), both answer 503
# once the last completed tick is older than the limit, and the exec probes
# fail; when the thread runs again they answer 200. Every answer carries the
# age of the last completed tick.
set -u
source "$(dirname "$0")/lib.sh"

FREEZE_S=11
lab_standard 20

cat >"$LAB_DIR/freeze.py" <<'PY'
# Stops one thread (not its process) for a while: PTRACE_SEIZE + INTERRUPT
# act on the thread alone; PTRACE_DETACH lets it run again.
import ctypes, os, sys, time
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, WALL = 17, 0x4206, 0x4207, 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid, hold = int(sys.argv[1]), float(sys.argv[2])
if libc.ptrace(PTRACE_SEIZE, tid, None, None) or libc.ptrace(PTRACE_INTERRUPT, tid, None, None):
    sys.exit("ptrace: " + os.strerror(ctypes.get_errno()))
os.waitpid(tid, WALL)
print("stopped", flush=True)
time.sleep(hold)
libc.ptrace(PTRACE_DETACH, tid, None, None)
print("running", flush=True)
PY

# get PATH: status code and the tick-age header of one GET on the UNIX socket.
get() {
	in_ns node curl -sS -m 2 -o /dev/null -D "$LAB_DIR/hdr" -w '%{http_code}' \
		--unix-socket "$LAB_SOCKET" "http://x$1" 2>/dev/null
	echo " $(tr -d '\r' <"$LAB_DIR/hdr" | sed -n 's/^canaryd-last-tick-age-seconds: //Ip')"
}
probe() {
	in_ns node "$LAB_BUILD/canaryd" --probe "$1" --api-socket "$LAB_SOCKET" >/dev/null 2>&1
	echo $?
}

read -r code age <<<"$(get /healthz)"
check "running: /healthz 200 (got $code), last tick ${age:-?} s ago (under 1 s)" \
	expect "'$code' == '200' and '${age:-x}' != 'x' and float('${age:-9}') < 1"
check "running: the liveness probe succeeds" [ "$(probe /healthz)" = 0 ]

agent=$(cat "$LAB_DIR/canaryd.pid")
python3 "$LAB_DIR/freeze.py" "$agent" $FREEZE_S >"$LAB_DIR/freeze.out" 2>&1 &
echo $! >"$LAB_DIR/freeze.pid"
for i in $(seq 1 50); do
	grep -q stopped "$LAB_DIR/freeze.out" && break
	sleep 0.1
done
check "the agent's main thread is stopped ($(head -1 "$LAB_DIR/freeze.out"))" \
	grep -q stopped "$LAB_DIR/freeze.out"
t0=$(date +%s%N)
: >"$LAB_DIR/during"
while ! grep -q running "$LAB_DIR/freeze.out"; do
	s=$((($(date +%s%N) - t0) / 1000000))
	echo "$s $(get /healthz) $(get /readyz | cut -d' ' -f1) $(probe /healthz) $(probe /readyz)" \
		>>"$LAB_DIR/during"
	sleep 0.5
done
wait "$(cat "$LAB_DIR/freeze.pid")"
rm -f "$LAB_DIR/freeze.pid"
# Columns: ms since the stop, /healthz status, its age, /readyz status, probe exits.
first_503=$(awk '$2 == 503 { print $1; exit }' "$LAB_DIR/during")
stale=$(awk '$2 == 503 && $4 == 503 && $5 == 1 && $6 == 1' "$LAB_DIR/during" | wc -l)
early_ok=$(awk '$1 < 4000 && $2 == 200' "$LAB_DIR/during" | wc -l)
api_up=$(awk '$2 == 200 || $2 == 503' "$LAB_DIR/during" | wc -l)
all=$(wc -l <"$LAB_DIR/during")
check "frozen: the API still answers ($api_up of $all rounds)" expect "$api_up == $all and $all >= 5"
check "frozen: /healthz still 200 while the last tick is recent ($early_ok rounds in the first 4 s)" \
	expect "$early_ok >= 1"
check "frozen: /healthz and /readyz 503 and both probes fail once the tick is stale ($stale rounds, first 503 after ${first_503:-never} ms)" \
	expect "$stale >= 2 and ${first_503:-0} >= 4000"
# The oldest age reported: the last round can land just after the thread
# is let go, when a fresh tick has already run.
max_age=$(awk '$3 + 0 > m { m = $3 + 0 } END { print m + 0 }' "$LAB_DIR/during")
check "frozen: the reported tick age grows with the stop (up to ${max_age:-?} s)" \
	expect "float('${max_age:-0}') >= 6"
ok_again=0
for i in $(seq 1 20); do
	read -r code age <<<"$(get /healthz)"
	[ "$code" = 200 ] && [ "$(probe /readyz)" = 0 ] && { ok_again=1; break; }
	sleep 0.1
done
check "running again: /healthz 200 and the readiness probe succeeds (last tick ${age:-?} s ago)" \
	[ $ok_again = 1 ]
lab_finish
