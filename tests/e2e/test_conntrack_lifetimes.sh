#!/usr/bin/env bash
# Conntrack entries end when their flows do. 3,000 short connections that
# close cleanly leave 6,000 entries; the agent's expiry pass (once a second)
# removes a closed flow's two entries 10 s after its last packet, so within
# 15 s at most 20% of them may be left. Without lifetimes they stayed until
# the LRU evicted them to make room, which made the table always full and
# its turnover depend on the rate of new connections. The expired entries
# are not counted as evictions.
set -u
source "$(dirname "$0")/lib.sh"

CONNECTIONS=3000
lab_standard 30

metric() {
	in_ns node curl -sS -m 5 --unix-socket "$LAB_SOCKET" http://x/metrics |
		sed -n "s/^$1 //p"
}

out=$(lab_load --mode newconn --connections 4 --requests $CONNECTIONS)
ok=$(echo "$out" | jget 'd["ok"]')
check "every short connection answered ($ok/$CONNECTIONS)" expect "$ok == $CONNECTIONS"
peak=$(metric canaryd_conntrack_entries)
created=$(metric canaryd_conntrack_entries_created_total)
echo "# after $CONNECTIONS connections: $peak entries in the map, $created created"

# Poll the agent's own gauge, for 15 s at most.
deadline=$(($(date +%s%N) + 15000000000))
start=$(date +%s%N)
entries=$peak
while [ "$(date +%s%N)" -lt "$deadline" ]; do
	entries=$(metric canaryd_conntrack_entries)
	[ -n "$entries" ] && [ "$entries" -le $((2 * CONNECTIONS / 5)) ] && break
	sleep 0.5
done
waited=$((($(date +%s%N) - start) / 1000000))
echo "# conntrack entries: $peak -> $entries after ${waited} ms"
check "entries fell to at most 20% of $((2 * CONNECTIONS)) within 15 s ($entries)" \
	expect "$entries <= $((2 * CONNECTIONS / 5))"
evictions=$(metric canaryd_conntrack_evictions_total)
check "expired entries are not counted as evictions ($evictions)" expect "$evictions == 0"
lab_finish
