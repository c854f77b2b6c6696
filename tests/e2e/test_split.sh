#!/usr/bin/env bash
# The canary share follows the weight, and the kernel's per-version counts
# equal what the client saw, for new connections and keep-alive ones.
# usage: test_split.sh [tc|xdp]
set -u
source "$(dirname "$0")/lib.sh"
MODE=${1:-tc}

lab_standard 30 --attach "$MODE"
lab_backend_set cn1 error_rate=0.2

out=$(lab_load --mode newconn --connections 4 --requests 3000)
echo "# [$MODE] newconn: $out"
n=$(echo "$out" | jget 'd["ok"]')
cn=$(echo "$out" | jget 'd["backends"].get("cn1", 0)')
c503=$(echo "$out" | jget 'd["backend_status"].get("cn1", {}).get("503", 0)')
share=$(python3 -c "print(round(100.0 * $cn / $n, 2))")
echo "# [$MODE] canary share $share% at weight 30% over $n new connections"
# Binomial sd at n=3000, p=0.3 is 0.84 points: +-3.5 points is over 4 sd.
check "[$MODE] every request answered" expect "$n == 3000"
check "[$MODE] canary share $share% within 30 +- 3.5" expect "abs($share - 30) <= 3.5"
check "[$MODE] kernel canary requests == client's ($cn)" expect "$(metric canary requests) == $cn"
check "[$MODE] kernel stable requests == client's ($((n - cn)))" \
	expect "$(metric stable requests) == $((n - cn))"
check "[$MODE] kernel canary 5xx == client's ($c503)" expect "$(metric canary responses.5xx) == $c503"
check "[$MODE] kernel stable 5xx == 0" expect "$(metric stable responses.5xx) == 0"
check "[$MODE] kernel canary connections == client's ($cn)" \
	expect "$(metric canary conns_opened) == $cn"
check "[$MODE] one latency sample per response" \
	expect "$(metric canary latency_count) + $(metric stable latency_count) == $n"

# Keep-alive: a version per connection, so count requests, not the share.
before_c=$(metric canary requests)
before_s=$(metric stable requests)
out=$(lab_load --mode keepalive --connections 16 --requests 6000)
echo "# [$MODE] keepalive: $out"
cn=$(echo "$out" | jget 'd["backends"].get("cn1", 0)')
n=$(echo "$out" | jget 'd["ok"]')
check "[$MODE] keep-alive requests all answered" expect "$n == 6000"
check "[$MODE] kernel canary keep-alive requests == client's ($cn)" \
	expect "$(metric canary requests) - $before_c == $cn"
check "[$MODE] kernel stable keep-alive requests == client's ($((n - cn)))" \
	expect "$(metric stable requests) - $before_s == $((n - cn))"
lab_finish
