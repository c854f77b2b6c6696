#!/usr/bin/env bash
# Path MTU discovery through the VIP, both ways.
#
#   cl 198.18.0.2 ── rt ══ node ── st1, st2, cn1
#   eth0 MTU 1500   to-cl MTU 1280     to-cn1 MTU 1280
#
# Downloads: the client's own link says 1500, so it announces an MSS of
# 1460; the router's side of that link carries only 1280 bytes. A backend's
# full-size segments reach the router with DF set, and the router answers
# each with "fragmentation needed" (MTU 1280) sent to their source: the VIP.
# The node must send that error on to the backend that sent the segments,
# quoting what the backend sent, or the backend never lowers its path MTU
# and the response stalls (a path-MTU black hole). The VIP fetch goes first,
# through st1; the direct one through st2: a backend remembers a path MTU
# per destination, so a direct fetch from st1 first would hide the hole.
#
# Uploads: the node's own link to cn1 carries 1280 bytes. The node's
# "fragmentation needed" goes back to the client quoting cn1's address; the
# egress program must restore the VIP in it, or the client finds no socket
# for it and the upload stalls. A second service, VIP 198.19.0.11, leads
# to cn1. Straight to a backend, no error needs translating: those fetches
# prove the topology.
set -u
source "$(dirname "$0")/lib.sh"

SIZE=307200 # the response, 300 KB
RT_NET=198.18.11
UPLOAD_VIP=198.19.0.11

lab_require_root
pmtu_down() {
	ip netns pids "$(ns rt)" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$(ns rt)" 2>/dev/null
	lab_down
}
trap pmtu_down EXIT
lab_up

# Move the client behind a router: cl ── rt ── node.
ip -n "$(ns node)" link del to-cl
ip netns add "$(ns rt)"
lab_link rt 11
in_ns rt sysctl -qw net.ipv4.ip_forward=1
ip -n "$(ns rt)" link add to-cl type veth peer name eth0 netns "$(ns cl)"
ip -n "$(ns rt)" addr add 198.18.0.1/24 dev to-cl
ip -n "$(ns rt)" link set to-cl mtu 1280 up
ip -n "$(ns cl)" addr add "$LAB_CLIENT/24" dev eth0
ip -n "$(ns cl)" link set eth0 up
ip -n "$(ns cl)" route add default via 198.18.0.1
ip -n "$(ns node)" route add 198.18.0.0/24 via "$RT_NET.2"
# Uploads: the node's link to cn1 carries 1280 bytes (cn1's side says 1500,
# so cn1 announces an MSS of 1460): the node's own "fragmentation needed"
# goes back to the client quoting cn1's address, to be restored to the VIP.
ip -n "$(ns node)" link set to-cn1 mtu 1280

# Each backend answers a GET with SIZE bytes, and a POST with the number of
# body bytes it received; for 40 s at most.
cat >"$LAB_DIR/bigsrv.py" <<'PY'
import socket, sys, time
addr, size = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, 8080))
s.listen(8)
s.settimeout(1)
print("listening", flush=True)
body = b"x" * size
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(15)
    try:
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = c.recv(65536)
            if not chunk:
                break
            req += chunk
        head, _, got = req.partition(b"\r\n\r\n")
        want = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                want = int(line.split(b":")[1])
        while len(got) < want:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        out = str(len(got)).encode() if want else body
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
    except OSError:
        pass
    c.close()
PY
for b in st1 st2 cn1; do
	nsenter --net=/run/netns/"$(ns "$b")" python3 "$LAB_DIR/bigsrv.py" "$(backend_addr "$b")" \
		"$SIZE" >"$LAB_DIR/$b.log" 2>&1 &
	echo $! >"$LAB_DIR/$b.pid"
done
for b in st1 st2 cn1; do
	for _ in $(seq 1 100); do
		grep -qs listening "$LAB_DIR/$b.log" && break
		sleep 0.05
	done
done

mkdir -p "$LAB_CONFIG_DIR"
cat >"$LAB_CONFIG_DIR/web.yaml" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  service: {vip: $LAB_VIP, port: $LAB_PORT, protocol: tcp}
  stable: {revision: v1, endpoints: ["$(backend_addr st1):8080"]}
  canary: {revision: v2, endpoints: ["$(backend_addr st1):8080"]}
  strategy:
    steps: [{setWeight: 50}, {pause: {}}]
YAML
cat >"$LAB_CONFIG_DIR/upload.yaml" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: upload
spec:
  service: {vip: $UPLOAD_VIP, port: $LAB_PORT, protocol: tcp}
  stable: {revision: v1, endpoints: ["$(backend_addr cn1):8080"]}
  canary: {revision: v2, endpoints: ["$(backend_addr cn1):8080"]}
  strategy:
    steps: [{setWeight: 50}, {pause: {}}]
YAML
lab_agent --interfaces to-rt
lab_wait web "d['weight'] == 50" 5 || true
lab_wait upload "d['weight'] == 50" 5 || true

# fetch ADDR PORT: bytes received (curl gives up after 10 s).
fetch() {
	in_ns cl curl -s -o /dev/null --max-time 10 -w '%{size_download}' "http://$1:$2/" || true
}

via_vip=$(fetch "$LAB_VIP" "$LAB_PORT")
echo "# through the VIP: $via_vip of $((SIZE)) body bytes"
check "a 300 KB response through the VIP completes behind a 1280-byte link" \
	expect "'$via_vip' == '$SIZE'"
direct=$(fetch "$(backend_addr st2)" 8080)
echo "# straight to st2: $direct body bytes"
check "the same fetch straight to a backend completes (topology)" expect "'$direct' == '$SIZE'"

# post ADDR PORT: what the backend says it received (curl gives up after 10 s).
head -c "$SIZE" /dev/zero >"$LAB_DIR/upload.bin"
post() {
	in_ns cl curl -s --max-time 10 --data-binary "@$LAB_DIR/upload.bin" \
		-H 'Content-Type: application/octet-stream' "http://$1:$2/" || true
}
up_vip=$(post "$UPLOAD_VIP" "$LAB_PORT")
echo "# upload through the VIP: the backend received ${up_vip:-nothing} of $SIZE bytes"
check "a 300 KB upload through the VIP completes behind the node's 1280-byte link" \
	expect "'$up_vip' == '$SIZE'"
up_direct=$(post "$(backend_addr cn1)" 8080)
echo "# upload straight to cn1: ${up_direct:-nothing} bytes received"
check "the same upload straight to the backend completes (topology)" \
	expect "'$up_direct' == '$SIZE'"

# One read of the counters (canaryctl maps is slow on a large conntrack).
reasons=$(canaryctl -o json maps | jget "d['reasons']['icmp_error_in'], d['reasons']['icmp_error_out']")
check "the router's fragmentation-needed went on to the backend, the node's back to the client (icmp_error_in, icmp_error_out: $reasons)" \
	expect "min($reasons) >= 1"
lab_finish
