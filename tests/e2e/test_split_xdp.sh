#!/usr/bin/env bash
# The same checks as test_split.sh, asked with --attach xdp. The lab's links
# are veths, where the agent refuses XDP (CHECKSUM_PARTIAL packets, see
# test_xdp_csum_partial.sh) and attaches tc ingress: the split must not change.
exec bash "$(dirname "$0")/test_split.sh" xdp
