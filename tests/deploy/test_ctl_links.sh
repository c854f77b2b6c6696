#!/usr/bin/env bash
# canaryctl links only what it uses (docs/architecture.md, "Module map"):
# no libmicrohttpd or libseccomp in its ldd, and none of the daemon's own
# modules (the agent's tick, its API server, the fleet's threads, reading
# configuration files). It does link the configuration schema and libyaml
# (kubectl canary reads a Rollout's spec as the agents read it) and the
# Kubernetes client. Offline. Prints TAP; exits non-zero on a failure.
#
#   bash tests/deploy/test_ctl_links.sh      (needs build/canaryctl: make)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PASS=0 FAIL=0 SKIP=0
ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
not_ok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }

CTL=${CANARYCTL:-build/canaryctl} # another binary, to check this test itself
if [ ! -x "$CTL" ] || ! command -v ldd >/dev/null || ! command -v nm >/dev/null; then
	if [ "${CI:-}" = true ]; then
		not_ok "canaryctl's links: $CTL not built or no ldd/nm (run make)"
	else
		echo "ok - canaryctl's links # SKIP $CTL not built or no ldd/nm"
		SKIP=1
	fi
else
	libs=$(ldd "$CTL" 2>/dev/null | awk '{print $1}')
	for so in libmicrohttpd libseccomp; do
		hit=$(grep -E "^${so}[-.]" <<<"$libs")
		if [ -z "$hit" ]; then
			ok "canaryctl: no $so in ldd"
		else
			not_ok "canaryctl: ldd lists $hit"
		fi
	done
	syms=$(nm "$CTL" 2>/dev/null | awk '{print $NF}')
	# A function each object defines: the daemon's own modules and the file loader.
	for sym in config_load agent_tick api_start fleet_start; do
		if grep -qx "$sym" <<<"$syms"; then
			not_ok "canaryctl: links $sym"
		else
			ok "canaryctl: does not link $sym"
		fi
	done
	# kubectl canary: the spec through the schema, the API server through kube.c.
	for sym in config_parse_buffer kube_get kuberollout_verb_patch; do
		if grep -qx "$sym" <<<"$syms"; then
			ok "canaryctl: links $sym (kubectl canary)"
		else
			not_ok "canaryctl: $sym missing (kubectl canary)"
		fi
	done
	if grep -qx metric_kind_name <<<"$syms"; then
		ok "canaryctl: links metric_kind_name (canaryctl plan)"
	else
		not_ok "canaryctl: metric_kind_name missing: is nm reading the right binary?"
	fi
fi

echo "1..$((PASS + FAIL + SKIP))"
echo "# ctl links: $PASS ok, $FAIL not ok, $SKIP skipped"
[ "$FAIL" -eq 0 ]
