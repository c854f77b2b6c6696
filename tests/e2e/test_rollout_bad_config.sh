#!/usr/bin/env bash
# A broken configuration written while a rollout runs never replaces the
# running one: the agent logs "config rejected" with file:line:column, the
# rollout goes on unchanged (and still obeys promote), and a later valid
# edit is applied. canaryd --check-config says the same (exit 1 / 0). A
# second agent on the same --bpffs refuses to start.
set -u
source "$(dirname "$0")/lib.sh"

STEPS="[{setWeight: 10}, {pause: {}}, {setWeight: 50}, {pause: {}}, {setWeight: 100}]"
ANALYSIS="{minRequests: 20, metrics: [{name: errorRate, max: 0.05}, {name: compareErrorRate}]}"
VIP2=198.19.0.11

lab_require_root
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
lab_rollout web "$LAB_VIP" "$STEPS" "$ANALYSIS"
cp "$LAB_CONFIG_DIR/web.yaml" "$LAB_DIR/web.good.yaml"
lab_agent
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 4 --rate 300 --duration-s 40 \
	--timeout-ms 3000
load=$LAB_LOAD_PID
check "the rollout holds at 10% (indefinite pause)" \
	lab_wait web "d['step'] == 1 and d['weight'] == 10 and d['phase'] == 'Paused'" 10

# install FILE NAME: put FILE into the config dir as NAME in one rename.
install_cfg() {
	cp "$1" "$LAB_DIR/install.tmp"
	mv "$LAB_DIR/install.tmp" "$LAB_CONFIG_DIR/$2"
}
# wait_log PATTERN COUNT SECONDS: until PATTERN has more than COUNT lines in the log.
wait_log() {
	for _ in $(seq 1 $(($3 * 20))); do
		[ "$(grep -c -- "$1" "$LAB_DIR/canaryd.log")" -gt "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
rejected() { grep -c 'msg="config rejected' "$LAB_DIR/canaryd.log"; }
applied() { grep -c 'msg="config applied"' "$LAB_DIR/canaryd.log"; }
view() { canaryctl -o json status web | jget '(d["phase"], d["step"], d["weight"])'; }

# 1. A weight out of range.
sed 's/{setWeight: 10}/{setWeight: 150}/' "$LAB_DIR/web.good.yaml" >"$LAB_DIR/web.bad.yaml"
pos=$(python3 -c '
import sys
for n, l in enumerate(open(sys.argv[1]), 1):
    if "setWeight: 150" in l:
        print("%d:%d" % (n, l.index("150") + 1))' "$LAB_DIR/web.bad.yaml")
before=$(view)
n_rej=$(rejected)
n_app=$(applied)
install_cfg "$LAB_DIR/web.bad.yaml" web.yaml
check "setWeight 150: the agent logs 'config rejected'" wait_log 'msg="config rejected' "$n_rej" 3
line=$(grep 'msg="config rejected' "$LAB_DIR/canaryd.log" | tail -1)
echo "# $line"
check "with file:line:column and the field ($pos)" \
	grep -q "error=\"$LAB_CONFIG_DIR/web.yaml:$pos: spec.strategy.steps\[0\].setWeight: invalid weight \\\\\"150\\\\\"" <<<"$line"
sleep 0.5 # a few ticks with the broken file in place
check "and applies nothing" expect "$(applied) == $n_app"
after=$(view)
echo "# rollout before: $before, after: $after"
check "the rollout goes on unchanged (phase, step, weight)" expect "$before == $after == ('Paused', 1, 10.0)"
check "the kernel keeps weight 10" \
	expect "$(canaryctl -o json maps | jget '[s["weight"] for s in d["services"]] == [10]')"

in_ns node "$LAB_BUILD/canaryd" --check-config --config "$LAB_CONFIG_DIR" >"$LAB_DIR/check.out" 2>&1
rc=$?
echo "# check-config on the broken dir: rc $rc: $(cat "$LAB_DIR/check.out")"
check "canaryd --check-config exits 1 on the broken file, with the same position" \
	expect "$rc == 1 and '$LAB_CONFIG_DIR/web.yaml:$pos: spec.strategy.steps[0].setWeight' in '''$(cat "$LAB_DIR/check.out")'''"
in_ns node "$LAB_BUILD/canaryd" --check-config --config "$LAB_DIR/web.good.yaml" >"$LAB_DIR/check.out" 2>&1
rc=$?
echo "# check-config on a good file: rc $rc: $(cat "$LAB_DIR/check.out")"
check "canaryd --check-config exits 0 on a good one" \
	expect "$rc == 0 and '1 rollout(s), valid' in '''$(cat "$LAB_DIR/check.out")'''"

# The running configuration still drives the rollout.
canaryctl promote web | sed 's/^/# /'
check "promote still works: the rollout moves on to 50% and the next pause" \
	lab_wait web "d['step'] == 3 and d['weight'] == 50 and d['phase'] == 'Paused'" 10

# 2. A later valid edit is applied (the same rollout: it keeps its state).
n_app=$(applied)
install_cfg "$LAB_DIR/web.good.yaml" web.yaml
check "the valid file is applied ('config applied')" wait_log 'msg="config applied"' "$n_app" 3
sleep 0.3
check "and the rollout keeps its place (step 3, weight 50)" \
	expect "$(view) == ('Paused', 3, 50.0)"

# 3. A YAML syntax error in another file.
printf 'apiVersion: canaryd.io/v1alpha1\nkind: Rollout\nspec: {service: [\n' >"$LAB_DIR/broken.yaml"
n_rej=$(rejected)
n_app=$(applied)
install_cfg "$LAB_DIR/broken.yaml" broken.yaml
check "a YAML syntax error is rejected" wait_log 'msg="config rejected' "$n_rej" 3
line=$(grep 'msg="config rejected' "$LAB_DIR/canaryd.log" | tail -1)
echo "# $line"
check "with file:line:column" grep -Eq "error=\"$LAB_CONFIG_DIR/broken.yaml:[0-9]+:[0-9]+: " <<<"$line"
sleep 0.3
check "nothing applied, the rollout unchanged" expect "$(applied) == $n_app and $(view) == ('Paused', 3, 50.0)"

# 4. Remove it and add a second rollout: applied, and both are there.
rm "$LAB_CONFIG_DIR/broken.yaml"
lab_rollout api "$VIP2" "[{setWeight: 20}, {pause: {}}]" "{minRequests: 20}"
check "the new rollout is applied" lab_wait api "d['weight'] == 20" 5
grep 'msg="config applied"' "$LAB_DIR/canaryd.log" | tail -1 | sed 's/^/# /'
check "the last 'config applied' has both rollouts" \
	grep -q 'rollouts=2$' <<<"$(grep 'msg="config applied"' "$LAB_DIR/canaryd.log" | tail -1)"
check "web still in its place" expect "$(view) == ('Paused', 3, 50.0)"

# 5. A second agent on the same bpffs refuses to start.
timeout 10 nsenter --net=/run/netns/"$(ns node)" "$LAB_BUILD/canaryd" --bpffs "$LAB_BPFFS" --host-cgroup off \
	--config "$LAB_CONFIG_DIR" --state-dir "$LAB_DIR/state2" --api-socket "$LAB_DIR/api2.sock" \
	>"$LAB_DIR/agent2.log" 2>&1
rc=$?
echo "# second agent: rc $rc: $(cat "$LAB_DIR/agent2.log")"
check "a second agent on the same --bpffs exits 1" expect "$rc == 1"
check "saying 'another canaryd is running on this bpffs'" \
	grep -q 'another canaryd is running on this bpffs' "$LAB_DIR/agent2.log"
check "and the first agent serves on" expect "$(view) == ('Paused', 3, 50.0)"

kill -TERM "$load"
wait "$load"
echo "# load: $(cat "$LAB_DIR/load.out")"
failed_expr='d["requests"] - d["ok"] + sum(v for k, v in d["status"].items() if k[0] == "5")'
check "zero failed client requests throughout" \
	expect "$(jget "$failed_expr" <"$LAB_DIR/load.out") == 0 and $(jget 'd["requests"]' <"$LAB_DIR/load.out") > 500"
lab_finish
