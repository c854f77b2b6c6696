#!/usr/bin/env bash
# The same checks as test_split.sh with XDP doing the ingress half.
exec bash "$(dirname "$0")/test_split.sh" xdp
