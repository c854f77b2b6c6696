#!/usr/bin/env bash
# A full state directory (ENOSPC) under steady traffic: the agent logs a
# clear error, the rollout holds where it was, the last state file stays
# whole, and no client request fails. Once space is freed the rollout goes
# on and its state is saved again.
set -u
source "$(dirname "$0")/lib.sh"
lab_require_root

FS=canaryd-test-$LAB_ID # the tmpfs's source name: findmnt shows any left behind
# The mount goes before lab_down, whose rm -rf cannot remove a mount point;
# the agent before the mount, so that nothing holds it.
cleanup() {
	lab_agent_stop
	if mountpoint -q "$LAB_STATE_DIR"; then
		umount "$LAB_STATE_DIR" 2>/dev/null || umount -l "$LAB_STATE_DIR"
	fi
	lab_down
}
trap cleanup EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends

# A save attempt makes NAME.json.tmp for an instant before it unlinks it:
# "left behind" means still there after a while, not seen once.
no_tmp_left() {
	for _ in $(seq 1 20); do
		compgen -G "$LAB_STATE_DIR/*.tmp" >/dev/null || return 0
		sleep 0.05
	done
	find "$LAB_STATE_DIR" -maxdepth 1 -name '*.tmp' | sed 's/^/# left behind: /'
	return 1
}
# Fill every block: dd stops at ENOSPC. tmpfs hands out whole pages, so a
# file of even one byte no longer fits.
fill() {
	dd if=/dev/zero of="$LAB_STATE_DIR/fill" bs=4k status=none 2>/dev/null
	! head -c 1 /dev/zero 2>/dev/null >"$LAB_STATE_DIR/probe"
}
map_weight() { canaryctl -o json maps | jget '[s["weight"] for s in d["services"]]'; }

# A small filesystem of its own, so that filling it harms nothing else.
mkdir -p "$LAB_STATE_DIR"
mount -t tmpfs -o size=256k,mode=0700 "$FS" "$LAB_STATE_DIR" || exit 1

lab_rollout web "$LAB_VIP" "[{setWeight: 10}, {pause: {}}, {setWeight: 30}, {pause: {}}]" \
	"{minRequests: 10}"
lab_agent
lab_load_bg "$LAB_DIR/full.out" --mode newconn --connections 2 --rate 200 --duration-s 60
load=$LAB_LOAD_PID
check "the rollout reaches its pause at 10%" \
	lab_wait web "d['step'] == 1 and d['phase'] == 'Paused' and d['weight'] == 10" 10
check "its state is saved (weight 10)" grep -q '"weight_basis_points": 1000' "$LAB_STATE_DIR/web.json"
cp "$LAB_STATE_DIR/web.json" "$LAB_DIR/web.json.before"

check "the state directory fills up (then even a 1-byte file gets no space)" fill
rm -f "$LAB_STATE_DIR/probe"
df -k "$LAB_STATE_DIR" | tail -1 | sed 's/^/# df: /'
promote_out=$(canaryctl promote web 2>&1)
promote_rc=$?
echo "# promote: $promote_out"
check "promote is refused: the state cannot be saved, nothing changed" \
	expect "$promote_rc != 0 and 'No space left on device' in '''$promote_out''' and 'nothing changed' in '''$promote_out'''"
sleep 1.5 # 15 ticks: each retries the save, none may move the rollout
grep 'cannot save rollout state' "$LAB_DIR/canaryd.log" | sed 's/^/# /'
check "a clear error names the state directory and ENOSPC" \
	grep -q "cannot save rollout state: holding the rollout.*$LAB_STATE_DIR.*No space left on device" \
	"$LAB_DIR/canaryd.log"
check "the rollout holds where it was (step 1, Paused, weight 10)" \
	expect "$(lab_status web '(d["step"], d["phase"], d["weight"])') == (1, 'Paused', 10)"
check "and so does the kernel's map (weight 10)" expect "$(map_weight) == [10]"
check "the state file is untouched" cmp -s "$LAB_STATE_DIR/web.json" "$LAB_DIR/web.json.before"
check "and still valid JSON at weight 10" \
	expect "$(jget 'd["weight_basis_points"]' <"$LAB_STATE_DIR/web.json") == 1000"
check "no .tmp file is left behind" no_tmp_left
echo "# while full: $(canaryctl -o json status web | jget '"phase %s, step %s, weight %s: %s" % (d["phase"], d["step"], d["weight"], d["message"])')"

rm -f "$LAB_STATE_DIR/fill"
check "once space is freed, the state is saved again" \
	bash -c "for i in \$(seq 1 30); do grep -q 'rollout state saved again' '$LAB_DIR/canaryd.log' && exit 0; sleep 0.1; done; exit 1"
check "and promote goes through" canaryctl promote web
check "the rollout goes on (weight 30)" lab_wait web "d['weight'] == 30" 5
check "the kernel's map follows (weight 30)" expect "$(map_weight) == [30]"
check "its state is saved" grep -q '"weight_basis_points": 3000' "$LAB_STATE_DIR/web.json"
check "no .tmp file is left behind after the save" no_tmp_left
check "the error was logged once, not once per tick" \
	expect "$(grep -c 'cannot save rollout state' "$LAB_DIR/canaryd.log") == 1"
kill "$load"
wait "$load"
check "no client request failed meanwhile ($(tail -1 "$LAB_DIR/full.out" | jget 'd["requests"]') requests)" \
	expect "$(lab_failed "$LAB_DIR/full.out") == 0"
lab_finish
