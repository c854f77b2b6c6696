#!/usr/bin/env bash
# CI entry for the libFuzzer targets (tests/fuzz/): fuzz_config over
# config_parse_buffer() and fuzz_api over api_handle(), FUZZ_SECONDS each
# (default 60, the floor for CI), side by side. Builds them if needed.
# Passes tests/fuzz/run.sh's TAP lines through ("ok - fuzz_config: N runs in
# S s, no crash"); a crash leaves its input in tests/fuzz/crashes/.
# Needs no privileges.
set -u
cd "$(dirname "$0")/../.." || exit 1
exec tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
