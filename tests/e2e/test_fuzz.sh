#!/usr/bin/env bash
# run-all: alone (CPU-bound: three fuzzers side by side, each needs its CPU time)
# CI entry for the libFuzzer targets (tests/fuzz/): fuzz_config over
# config_parse_buffer(), fuzz_api over the API's request path (with two
# rollouts on a real dataplane as root) and fuzz_text, FUZZ_SECONDS each
# (default 60, the floor for CI), side by side. Builds them if needed.
# Passes tests/fuzz/run.sh's TAP lines through ("ok - fuzz_config: N runs in
# S s, no crash"); a crash leaves its input in tests/fuzz/crashes/.
# Without root fuzz_api has no rollout (and under CI=true refuses to run).
set -u
cd "$(dirname "$0")/../.." || exit 1
exec tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
