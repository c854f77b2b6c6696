#!/usr/bin/env bash
# Housekeeping, offline: the licenses the sources name are in the tree, and
# the files the sources cite exist. Prints TAP; exits non-zero on a failure.
#
#   bash tests/deploy/test_licenses.sh
#
#  1. Every SPDX-License-Identifier of a tracked file names licenses whose
#     text is LICENSES/<identifier>.txt, and LICENSE exists.
#  2. Every *.md a source, script, manifest or makefile cites resolves: from
#     the repository root, from the citing file's directory, or in docs/.
#  3. The pinned map name canary_consts.h gives as an example (NAME_v1 or
#     NAME_v<N>) is a map that bpf/lib/maps.h declares.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PASS=0 FAIL=0
ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
not_ok() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }

if [ -f LICENSE ]; then ok "LICENSE exists"; else not_ok "LICENSE missing"; fi

ids=$(git ls-files -z | xargs -0 grep -hoE 'SPDX-License-Identifier: *[^*]*' 2>/dev/null |
	sed 's/SPDX-License-Identifier: *//' | tr '()' '  ' |
	tr -s ' ' '\n' | grep -vxE 'OR|AND|WITH|' | sort -u)
if [ -z "$ids" ]; then
	not_ok "no SPDX identifiers found"
fi
for id in $ids; do
	if [ -f "LICENSES/$id.txt" ]; then
		ok "SPDX $id: LICENSES/$id.txt"
	else
		not_ok "SPDX $id: LICENSES/$id.txt missing"
	fi
done

missing=$(git ls-files '*.c' '*.h' '*.yaml' '*.yml' '*.sh' '*.mk' '*.py' Makefile |
	xargs grep -noE '[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b' |
	while IFS=: read -r f line ref; do
		[ -e "$ref" ] || [ -e "$(dirname "$f")/$ref" ] || [ -e "docs/$ref" ] ||
			[ -e ".$ref" ] || echo "$f:$line cites $ref"
	done)
if [ -z "$missing" ]; then
	ok "every cited .md file exists"
else
	not_ok "cited files missing:"
	echo "$missing" | sed 's/^/# /'
fi

# The example is NAME_v1 or NAME_v<N>; maps.h declares NAME_vN or CANARY_MAP(NAME).
example=$(sed -n 's/.*pinned map name, e\.g\. "\([^"]*\)".*/\1/p' headers/canary_consts.h)
base=${example%_v*}
if [ -n "$example" ] && [ "$base" != "$example" ] &&
	grep -qE "^\} (${base}_v[0-9]+|CANARY_MAP\($base\)) SEC\(\"\.maps\"\);" bpf/lib/maps.h; then
	ok "canary_consts.h's map name example ($example) is a map of bpf/lib/maps.h"
else
	not_ok "canary_consts.h's map name example (\"$example\") is no map of bpf/lib/maps.h"
fi

echo "1..$((PASS + FAIL))"
echo "# licenses: $PASS ok, $FAIL not ok"
[ "$FAIL" -eq 0 ]
