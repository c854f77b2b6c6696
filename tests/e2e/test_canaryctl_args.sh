#!/usr/bin/env bash
# canaryctl's command line against a real agent: options after the verb
# (`status web -o json`), -o yaml (read back with PyYAML, the same document
# as -o json), --until-done --timeout (exit 3 when the rollout stays
# Paused, 0 once it is Healthy), flows --track and its deprecated old
# spelling --version (a warning, the same filter), and usage errors (exit 2).
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 30

yaml_eq_json() {
	python3 -c '
import json, sys, yaml
y = yaml.safe_load(open(sys.argv[1]))
j = json.load(open(sys.argv[2]))
sys.exit(0 if y == j else 1)' "$1" "$2"
}

# Options after the verb, in any order, mean what they mean before it.
before=$(canaryctl -o json status web | jget '(d["name"], d["phase"], d["weight"])')
after=$(canaryctl status web -o json | jget '(d["name"], d["phase"], d["weight"])')
echo "# before the verb: $before; after it: $after"
check "status web -o json equals -o json status web ($after)" \
	expect "$after == $before and $after[0] == 'web' and $after[2] == 30"
check "--output=json between the verb and its NAME" \
	expect "$(canaryctl status --output=json web | jget 'd["name"] == "web"')"

canaryctl -o yaml status web >"$LAB_DIR/status.yaml"
check "status -o yaml is a YAML mapping with the rollout's name and weight" \
	python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
sys.exit(0 if (d["name"], d["weight"]) == ("web", 30) else 1)' "$LAB_DIR/status.yaml"

# --until-done --timeout: the rollout is held by an indefinite pause.
start=$(date +%s%N)
canaryctl status web --until-done --timeout 1500ms >/dev/null 2>"$LAB_DIR/timeout.err"
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
echo "# --until-done --timeout 1500ms: exit $rc after $ms ms: $(cat "$LAB_DIR/timeout.err")"
check "--until-done --timeout on a paused rollout exits 3 ($rc) after the timeout ($ms ms)" \
	expect "$rc == 3 and 1400 <= $ms < 6000"

# Flows: some traffic, then the canary's and the stable's.
lab_load --mode newconn --connections 4 --requests 200 --duration-s 2 >"$LAB_DIR/load.out"
canaryctl flows web --track canary -o json >"$LAB_DIR/track.json"
canaryctl -o json flows --version canary web >"$LAB_DIR/old.json" 2>"$LAB_DIR/old.err"
rc=$?
canaryctl flows -o json web --track stable >"$LAB_DIR/stable.json"
n_track=$(jget 'len(d)' <"$LAB_DIR/track.json")
n_old=$(jget 'len(d)' <"$LAB_DIR/old.json")
n_stable=$(jget 'len(d)' <"$LAB_DIR/stable.json")
echo "# flows: --track canary $n_track, --version canary $n_old, --track stable $n_stable"
check "flows --track canary lists only canary flows ($n_track)" \
	expect "$(jget 'len(d) > 0 and all(f["version"] == "canary" for f in d)' <"$LAB_DIR/track.json")"
check "flows --track stable lists only stable flows ($n_stable)" \
	expect "$(jget 'len(d) > 0 and all(f["version"] == "stable" for f in d)' <"$LAB_DIR/stable.json")"
check "flows --version canary (deprecated) still works: exit 0, only canary flows" \
	expect "$rc == 0 and $(jget 'len(d) > 0 and all(f["version"] == "canary" for f in d)' <"$LAB_DIR/old.json")"
check "flows --version warns that it is deprecated" grep -q 'deprecated: use --track' "$LAB_DIR/old.err"

# -o yaml: the same document as -o json. The services' counters hold still
# without traffic (the conntrack's counts may not: expiry runs meanwhile).
canaryctl maps -o yaml | python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)["services"])' \
	>"$LAB_DIR/maps.yaml"
canaryctl maps -o json | python3 -c 'import sys, json; print(json.load(sys.stdin)["services"])' \
	>"$LAB_DIR/maps.json"
check "maps -o yaml reads back equal to maps -o json (services, counters, latencies)" \
	expect "$(cat "$LAB_DIR/maps.yaml") == $(cat "$LAB_DIR/maps.json") and len($(cat "$LAB_DIR/maps.json")) == 1"
canaryctl history web -o yaml >"$LAB_DIR/history.yaml"
canaryctl history web -o json >"$LAB_DIR/history.json"
check "history -o yaml reads back equal to history -o json" \
	yaml_eq_json "$LAB_DIR/history.yaml" "$LAB_DIR/history.json"

# Usage errors: exit 2, nothing done.
canaryctl status web --bogus >/dev/null 2>&1
rc_flag=$?
canaryctl status web --timeout 5s >/dev/null 2>&1
rc_alone=$?
canaryctl flows web --track both >/dev/null 2>&1
rc_track=$?
canaryctl -o xml status web >/dev/null 2>&1
rc_out=$?
check "usage errors exit 2 (unknown flag $rc_flag, --timeout without --until-done $rc_alone, --track both $rc_track, -o xml $rc_out)" \
	expect "($rc_flag, $rc_alone, $rc_track, $rc_out) == (2, 2, 2, 2)"

# promote --full after the NAME; then --until-done ends with 0 and, in YAML,
# prints the final document.
canaryctl promote web --full >/dev/null
canaryctl status web -o yaml --until-done --timeout 30s >"$LAB_DIR/done.yaml"
rc=$?
check "promote web --full; status --until-done -o yaml exits 0 with phase Healthy ($rc)" \
	python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
sys.exit(0 if int(sys.argv[2]) == 0 and d["phase"] == "Healthy" else 1)' "$LAB_DIR/done.yaml" "$rc"

# Both binaries carry the version stamped at build time (tools/version.sh).
v_ctl=$(canaryctl --version)
v_agent=$("$LAB_BUILD/canaryd" --version)
echo "# $v_ctl; $v_agent"
check "canaryctl --version and canaryd --version print the same stamped version" \
	expect "'${v_ctl#canaryctl }' == '${v_agent#canaryd }' and '${v_ctl#canaryctl }'[:1].isdigit()"
lab_finish
