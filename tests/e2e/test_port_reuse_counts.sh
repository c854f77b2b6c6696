#!/usr/bin/env bash
# The data path counts what clients see, also when a client reuses its
# ports at once (TIME_WAIT reuse, as busy clients and NAT gateways do):
# every 5xx counted for a version is a 503 the client received from one of
# its backends, or a request the client gave up on, and every 200 the
# client received is counted.
#
# Why the abort: its reset moves the canary's open connections to stable,
# and their old backend keeps retransmitting into their old reverse entries
# after the forward entries have expired (closed=1s here). A client port
# reused for a new flow to that backend then finds an older flow's reverse
# entry under the new flow's key. Before egress read the half-open table
# first for a SYN-ACK, such flows were never promoted and their responses
# never seen: each client FIN after a 200 counted a 5xx (a false abort of a
# good canary in tools/bench/rollback.sh).
set -u
source "$(dirname "$0")/lib.sh"

lab_standard 50 --conntrack-lifetimes closed=1s
# 1,000 client ports at 600 new connections a second: each is reused about
# every 1.7 s, once its TIME_WAIT is 1 s old.
in_ns cl sysctl -qw net.ipv4.tcp_tw_reuse=1
in_ns cl sysctl -qw net.ipv4.ip_local_port_range="40000 40999"
lab_backend_set cn1 latency_ms=200 # canary connections open when the abort resets them
lab_load_bg "$LAB_DIR/load.out" --mode newconn --connections 64 --rate 600 --duration-s 18 \
	--timeout-ms 3000 --snapshot-on-usr1
load=$LAB_LOAD_PID
sleep 3
canaryctl abort web | sed 's/^/# /'
lab_backend_set cn1 latency_ms=0
sleep 1
canaryctl retry web | sed 's/^/# /'
check "the canary takes new connections again" lab_wait web "d['weight'] == 50" 5
sleep 1 # the reset connections' own errors are over
kill -USR1 "$load"
maps_a=$(canaryctl -o json maps)
wait "$load"
maps_b=$(canaryctl -o json maps)
client_a=$(sed -n 1p "$LAB_DIR/load.out")
client_b=$(tail -1 "$LAB_DIR/load.out")

echo "# client, whole run: $(jget '(d["requests"], d["errors"], d["backend_status"])' <<<"$client_b")"
echo "# reasons: $(jget '{k: v for k, v in d["reasons"].items() if k in ("new_flow", "reset_steered", "reply_no_forward")}' <<<"$maps_b")"
reused=$(in_ns cl ss -tan state time-wait | wc -l)
check "the client reused its ports ($reused in TIME_WAIT, of 1,000)" expect "$reused > 300"
check "the abort reset canary connections" expect "$(jget 'd["reasons"]["reset_steered"]' <<<"$maps_b") > 0"
# From the snapshot after the retry to the end: counted against seen.
delta() { # delta DOC_A DOC_B EXPR
	echo $(($(jget "$3" <<<"$2") - $(jget "$3" <<<"$1")))
}
requests=$(delta "$client_a" "$client_b" 'd["requests"]')
gave_up=$(delta "$client_a" "$client_b" 'sum(d["errors"].values())')
check "requests after the retry ($requests)" expect "$requests > 3000"
for v in stable canary; do
	case $v in stable) backends="st1 st2" ;; canary) backends="cn1" ;; esac
	seen=$(delta "$client_a" "$client_b" \
		"sum(d['backend_status'].get(b, {}).get('503', 0) for b in '$backends'.split())")
	counted=$(delta "$maps_a" "$maps_b" "d['services'][0]['$v']['metrics']['responses']['5xx']")
	# At most 2 beyond them: one CI run of several counted 1 for the canary,
	# cause not yet found (see docs/testing.md); the stale reverse entry
	# this test was written for counted hundreds.
	check "$v, after the retry: 5xx counted by the data path ($counted) <= 503s the client saw ($seen) + requests it gave up ($gave_up) + 2" \
		expect "$counted <= $seen + $gave_up + 2"
	# The snapshots are not taken at one instant: up to one request per
	# client connection (64) may sit on either side.
	seen=$(delta "$client_a" "$client_b" \
		"sum(d['backend_status'].get(b, {}).get('200', 0) for b in '$backends'.split())")
	counted=$(delta "$maps_a" "$maps_b" "d['services'][0]['$v']['metrics']['responses']['2xx']")
	check "$v, after the retry: 2xx counted by the data path ($counted) within 64 of the 200s the client saw ($seen)" \
		expect "abs($counted - $seen) <= 64"
done
lab_finish
