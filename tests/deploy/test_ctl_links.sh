#!/usr/bin/env bash
# canaryctl links only what it uses (docs/architecture.md, "Module map"):
# no libyaml, libmicrohttpd or libseccomp in its ldd, no yaml_* import
# (it reads no configuration: of the rollout library it takes metric_kind.o,
# not the YAML tree), and none of the agent library's objects. Offline.
# Prints TAP; exits non-zero on a failure.
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
	for so in libyaml libmicrohttpd libseccomp; do
		hit=$(grep -E "^${so}[-.]" <<<"$libs")
		if [ -z "$hit" ]; then
			ok "canaryctl: no $so in ldd"
		else
			not_ok "canaryctl: ldd lists $hit"
		fi
	done
	syms=$(nm "$CTL" 2>/dev/null | awk '{print $NF}')
	# libyaml's functions, as the binary imports them (yamlout.c's own
	# yaml_print is defined, not imported).
	imports=$(nm -u "$CTL" 2>/dev/null | awk '{print $NF}' | grep -E '^yaml_')
	if [ -z "$imports" ]; then
		ok "canaryctl: imports no yaml_* function"
	else
		not_ok "canaryctl: imports $(wc -l <<<"$imports") yaml_* functions ($(head -3 <<<"$imports" | tr '\n' ' '))"
	fi
	# A function each object defines: the parser's entry points and the agent's.
	for sym in config_parse_buffer config_load ystream_next agent_tick api_start; do
		if grep -qx "$sym" <<<"$syms"; then
			not_ok "canaryctl: links $sym"
		else
			ok "canaryctl: does not link $sym"
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
