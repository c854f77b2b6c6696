#!/usr/bin/env bash
# make soak: the long tests (at most 30 minutes in all), with the same TAP
# counting as make test.
set -uo pipefail
cd "$(dirname "$0")/../.."
passed=0 failed=0
for t in tests/soak/test_*.sh; do
	echo "== soak: $(basename "$t")"
	log=$(mktemp)
	timeout 1800 bash "$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	passed=$((passed + $(grep -c '^ok ' "$log")))
	f=$(grep -c '^not ok ' "$log")
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	failed=$((failed + f))
	rm -f "$log"
done
echo "soak: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
