#!/usr/bin/env bash
# Host-local clients: a process on the node itself, whose packets to the VIP
# never cross an attached interface's ingress, is split at connect() by the
# cgroup programs (bpf/sock.bpf.c): 400 new connections at weight 20 land
# 20 +- 7% on the canary with no failure, getpeername() shows the VIP, the
# kernel counts each connection for its version, UDP answers come from the
# VIP, and an abort (reset) moves the established canary connections and
# sends every new one to stable.
#
# The programs go on a child cgroup made for this test, never on the root:
# the root holds every process of the machine, other tests' too. Only the
# client processes are moved into it; it is removed on exit.
set -u
source "$(dirname "$0")/lib.sh"

lab_require_root
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$CG_ROOT" ] || { lab_fail "no cgroup v2 mount"; exit 1; }
CG=$CG_ROOT/canaryd-lab-$LAB_ID

host_down() {
	local pid i
	# Whatever is still in the cgroup is ours: end it, then remove the cgroup.
	for i in $(seq 1 20); do
		[ -s "$CG/cgroup.procs" ] || break
		while read -r pid; do kill -9 "$pid" 2>/dev/null; done <"$CG/cgroup.procs"
		sleep 0.05
	done
	rmdir "$CG" 2>/dev/null
	lab_down
}
trap host_down EXIT

lab_up
for b in "${LAB_BACKENDS[@]}"; do lab_backend "$b"; done
lab_wait_backends
mkdir "$CG"
lab_rollout web "$LAB_VIP" "[{setWeight: 20}, {pause: {}}]" "{minRequests: 20}" \
	"  abort: {connections: reset}"
# A UDP service too (sendmsg4/recvmsg4): each backend answers with its name.
LAB_UDP_VIP=198.19.0.11
cat >"$LAB_CONFIG_DIR/dns.yaml" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata: {name: dns}
spec:
  service: {vip: $LAB_UDP_VIP, port: 53, protocol: udp}
  stable: {revision: v1, endpoints: [$(lab_endpoints_yaml st1 st2)]}
  canary: {revision: v2, endpoints: [$(lab_endpoints_yaml cn1)]}
  strategy: {steps: [{setWeight: 50}, {pause: {}}]}
  analysis: {minRequests: 20}
YAML
UDP_SERVER='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(sys.argv[3].encode(), a)'
for b in "${LAB_BACKENDS[@]}"; do
	in_ns "$b" python3 -c "$UDP_SERVER" "$(backend_addr "$b")" "$LAB_BACKEND_PORT" "$b" &
	echo $! >"$LAB_DIR/udp-$b.pid"
done
lab_agent --host-cgroup "$CG"
lab_wait web "d['weight'] == 20" 5
lab_wait dns "d['weight'] == 50" 5
for b in "${LAB_BACKENDS[@]}"; do
	for i in $(seq 1 100); do
		in_ns "$b" ss -Hlun "sport = :$LAB_BACKEND_PORT" | grep -q . && break
		sleep 0.05
	done
done

# in_cg CMD...: run CMD in the node namespace, inside the lab cgroup.
in_cg() { in_ns node sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }
host_load() { in_cg "$LAB_BUILD/labload" --target "$LAB_VIP:$LAB_PORT" "$@"; }

# Python starts slowly on a loaded machine: one JSON read per result, and
# integer checks in the shell.
# fields JSON EXPR...: the values of the Python expressions over d, one line.
fields() {
	local json=$1
	shift
	echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(str(eval(e)) for e in sys.argv[1:]))' "$@"
}
HOST_COUNTS=('d["ok"]' 'd["requests"] - d["ok"]' 'd["backends"].get("cn1", 0)')

out=$(host_load --mode newconn --connections 4 --requests 400 --timeout-ms 1000 --duration-s 15)
echo "# host newconn: $out"
read -r n failed cn <<<"$(fields "$out" "${HOST_COUNTS[@]}")"
echo "# canary share $((100 * cn / (n > 0 ? n : 1)))% at weight 20% over $n host-local connections"
check "400 host-local connections answered, 0 failures ($n ok, $failed failed)" \
	test "$n" -eq 400 -a "$failed" -eq 0
# Binomial sd at n=400, p=0.2 is 2 points: +-7 points is 3.5 sd.
check "canary share $cn/$n within 20 +- 7%" \
	test "$n" -gt 0 -a $((100 * cn)) -ge $((13 * n)) -a $((100 * cn)) -le $((27 * n))
WEB='[s for s in d["services"] if s["name"] == "web"][0]'
read -r k_cn k_st <<<"$(fields "$(canaryctl -o json maps)" \
	"$WEB[\"canary\"][\"metrics\"][\"conns_opened\"]" \
	"$WEB[\"stable\"][\"metrics\"][\"conns_opened\"]")"
check "kernel canary connections == client's ($k_cn, $cn)" test "$k_cn" -eq "$cn"
check "kernel stable connections == client's ($k_st, $((n - cn)))" test "$k_st" -eq $((n - cn))

peer=$(in_cg python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print("%s:%d" % s.getpeername())' "$LAB_VIP" "$LAB_PORT" 2>&1)
check "getpeername() returns the VIP ($peer)" test "$peer" = "$LAB_VIP:$LAB_PORT"

# UDP, unconnected sockets: 100 sockets, 3 datagrams each. Every answer
# comes from the VIP (recvmsg4), each socket keeps its backend, and the
# kernel counts each socket once for its version.
read -r u_cn u_n u_badsrc u_moved u_fail <<<"$(in_cg python3 -c '
import collections, socket, sys
vip, port = sys.argv[1], int(sys.argv[2])
got, bad_src, moved, fail = collections.Counter(), 0, 0, 0
for i in range(100):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    names = set()
    for j in range(3):
        try:
            s.sendto(b"q", (vip, port))
            d, a = s.recvfrom(100)
        except OSError:
            fail += 1
            continue
        bad_src += a != (vip, port)
        names.add(d.decode())
    if len(names) == 1:
        got[names.pop()] += 1
    moved += len(names) > 1
    s.close()
print(got["cn1"], sum(got.values()), bad_src, moved, fail)' "$LAB_UDP_VIP" 53)"
echo "# UDP: $u_cn of $u_n sockets on the canary at weight 50, $u_badsrc answers not from the VIP, $u_moved sockets moved, $u_fail failed"
check "UDP: 100 sockets answered, every answer from the VIP, none moved ($u_n, $u_badsrc, $u_moved, $u_fail)" \
	test "$u_n" -eq 100 -a "$u_badsrc" -eq 0 -a "$u_moved" -eq 0 -a "$u_fail" -eq 0
# Binomial sd at n=100, p=0.5 is 5 points: +-17 is 3.4 sd.
check "UDP: canary share $u_cn/100 within 50 +- 17%" test "$u_cn" -ge 33 -a "$u_cn" -le 67
read -r k_ucn <<<"$(fields "$(canaryctl -o json maps)" \
	'[s for s in d["services"] if s["name"] == "dns"][0]["canary"]["metrics"]["conns_opened"]')"
check "UDP: kernel canary connections == client's sockets ($k_ucn, $u_cn)" test "$k_ucn" -eq "$u_cn"

# Fail static: the links are pinned, so with the agent stopped host clients
# are still split, and a restarted agent takes the links over.
lab_agent_stop
out=$(host_load --mode newconn --connections 4 --requests 100 --timeout-ms 1000 --duration-s 10)
read -r n failed cn <<<"$(fields "$out" "${HOST_COUNTS[@]}")"
check "agent stopped: 100 host-local connections answered ($n), some on the canary ($cn)" \
	test "$n" -eq 100 -a "$cn" -gt 0
lab_agent --host-cgroup "$CG"
check "the restarted agent took the pinned links over" \
	test "$(grep -c 'msg="host sockets attached"' "$LAB_DIR/canaryd.log")" -eq 2
check "one link per program on the lab cgroup" \
	test "$(bpftool cgroup show "$CG" | grep -c canary_sock_)" -eq 4

# Abort with reset: established canary keep-alive connections are destroyed
# (the client reconnects, to stable), and new connections all go to stable.
nsenter --net=/run/netns/"$(ns node)" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
	"$CG" "$LAB_BUILD/labload" --target "$LAB_VIP:$LAB_PORT" --mode keepalive \
	--connections 48 --duration-s 5 --rate 1000 --timeout-ms 1000 --snapshot-on-usr1 \
	>"$LAB_DIR/ka.out" &
load=$!
echo "$load" >"$LAB_DIR/labload-$load.pid"
sleep 1
canaryctl abort web | sed 's/^/# /'
lab_wait web "d['phase'] == 'Degraded'" 5
sleep 0.5
kill -USR1 "$load" # A: the abort has settled; B: labload's final count
wait "$load"
sed 's/^/# /' "$LAB_DIR/ka.out"
read -r cn_a cn_b ok_a ok_b <<<"$(fields "[$(sed -n '1p;$p' "$LAB_DIR/ka.out" | paste -sd,)]" \
	'd[0]["backends"].get("cn1", 0)' 'd[1]["backends"].get("cn1", 0)' 'd[0]["ok"]' 'd[1]["ok"]')"
check "some keep-alive connections were on the canary before the abort ($cn_a)" \
	test "$cn_a" -gt 0
check "no canary answer after the abort settled ($cn_a -> $cn_b), stable serves ($ok_a -> $ok_b)" \
	test "$cn_a" -eq "$cn_b" -a "$ok_b" -gt "$ok_a"
grep 'msg="host sockets reset"' "$LAB_DIR/canaryd.log" | sed 's/^/# /'

out=$(host_load --mode newconn --connections 4 --requests 200 --timeout-ms 1000 --duration-s 10)
echo "# after the abort: $out"
read -r n failed cn <<<"$(fields "$out" "${HOST_COUNTS[@]}")"
check "after the abort: 200 new connections ($n), 0 failures ($failed), 0 on the canary ($cn)" \
	test "$n" -eq 200 -a "$failed" -eq 0 -a "$cn" -eq 0

# canaryd --cleanup removes the pinned links, which detaches the programs.
lab_agent_stop
in_ns node "$LAB_BUILD/canaryd" --cleanup --bpffs "$LAB_BPFFS" >>"$LAB_DIR/canaryd.log" 2>&1
check "--cleanup detached the host programs" \
	test "$(bpftool cgroup show "$CG" | grep -c canary_sock_)" -eq 0
lab_finish
