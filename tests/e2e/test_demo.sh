#!/usr/bin/env bash
# The README's main command must never silently break: run the demo's story
# (tools/demo.sh, what "make demo" runs) with its own checks, and report them.
set -u
cd "$(dirname "$0")/../.."
source tests/e2e/lib.sh
lab_require_root

log=$(mktemp)
timeout 240 bash tools/demo.sh >"$log" 2>&1
rc=$?
# The demo's own checks, as TAP lines; its summary table as comments.
sed -n 's/^   ✔ \(.*\)/ok - demo: \1/p; s/^   ✘ \(.*\)/not ok - demo: \1/p' "$log"
sed -n '/== summary/,$p' "$log" | sed 's/\x1b\[[0-9;]*m//g; s/^/# /'
check "make demo's story held (exit status $rc)" [ "$rc" -eq 0 ]
rm -f "$log"
lab_finish
