#!/usr/bin/env bash
# run-all: alone (CPU-bound: a million frames through the program)
# CI entry for the packet fuzzer (tests/bpf/test_bpf_fuzz.c): at least
# 1,000,000 random and mutated frames through canary_tc_ingress,
# canary_xdp_ingress and canary_tc_egress with BPF_PROG_TEST_RUN, every
# output checked (rewrite targets, checksums, untouched bytes, return codes,
# counters). Builds the binary if needed and passes its TAP lines through.
# BPF_FUZZ_PACKETS / BPF_FUZZ_SECONDS / BPF_FUZZ_SEED override its defaults
# (3000000 frames, stop after 75 s once 1000000 ran, a clock seed); failing
# frames go to tests/fuzz/crashes/. Needs root/CAP_BPF: skipped without, a
# failure when CI=true.
set -u
cd "$(dirname "$0")/../.." || exit 1

if [ "$(id -u)" -ne 0 ]; then
	if [ "${CI:-}" = true ]; then
		echo "not ok - bpf_fuzz: needs root/CAP_BPF, and CI=true: failing instead of skipping"
		exit 1
	fi
	echo "skipped: needs root/CAP_BPF"
	exit 0
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# Until the top-level Makefile includes tests/fuzz/fuzz.mk, name it here.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! make -s build/fuzz/test_bpf_fuzz >"$log" 2>&1; then
	echo "not ok - bpf_fuzz: build/fuzz/test_bpf_fuzz does not build"
	tail -n 30 "$log" | sed 's/^/# /'
	exit 1
fi

args=(--save-dir tests/fuzz/crashes)
[ -n "${BPF_FUZZ_PACKETS:-}" ] && args+=(--packets "$BPF_FUZZ_PACKETS")
[ -n "${BPF_FUZZ_SECONDS:-}" ] && args+=(--max-seconds "$BPF_FUZZ_SECONDS")
[ -n "${BPF_FUZZ_SEED:-}" ] && args+=(--seed "$BPF_FUZZ_SEED")
build/fuzz/test_bpf_fuzz "${args[@]}"
