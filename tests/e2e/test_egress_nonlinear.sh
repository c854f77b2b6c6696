#!/usr/bin/env bash
# Replies whose TCP header is not in the skb's linear part are restored too.
#
# Drivers that build skbs from page fragments (napi_gro_frags) and tunnel
# decapsulation leave the L4 header in the fragments; the egress program must
# pull it before it can read the ports, or the reply leaves with the
# backend's address and the client resets the connection. The backend here
# is a responder behind a tap device opened with IFF_NAPI_FRAGS: the frames
# it writes reach the node as skbs whose linear part ends after the IP header
# (GRO and TCP early demux, which would pull the TCP header, are off, as on
# many routers), and are forwarded to the client as they are. The agent
# manages only the client's interface, as when backends sit behind an
# overlay device it does not manage: nothing of ours pulls the reply before
# egress.
set -u
source "$(dirname "$0")/lib.sh"

TAP=to-tap
TAP_NET=198.18.9
BACKEND=$TAP_NET.2
BACKEND_MAC=02:00:00:00:09:02
CONNECTIONS=20

lab_require_root
trap lab_down EXIT
lab_up

# The responder: answers every SYN to BACKEND:8080 with a SYN-ACK written as
# two pieces (Ethernet + IP header, then TCP header), so the TCP header lands
# in a page fragment. It stops on its own after 60 s.
cat >"$LAB_DIR/responder.py" <<'PY'
import fcntl, os, select, struct, sys, time

tap, backend, mac = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(":", ""))
IFF_TAP, IFF_NO_PI, IFF_NAPI, IFF_NAPI_FRAGS = 0x0002, 0x1000, 0x0010, 0x0020
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", tap.encode(),
                                        IFF_TAP | IFF_NO_PI | IFF_NAPI | IFF_NAPI_FRAGS))
print("tap ready", flush=True)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

be = bytes(int(x) for x in backend.split("."))
deadline = time.monotonic() + 60
answered = 0
while time.monotonic() < deadline:
    if not select.select([fd], [], [], 0.5)[0]:
        continue
    f = os.read(fd, 2048)
    if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6 or f[30:34] != be:
        continue
    ihl = (f[14] & 15) * 4
    tcp = f[14 + ihl:]
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    if dport != 8080 or tcp[13] & 0x12 != 0x02:
        continue  # only SYNs are answered
    client = f[26:30]
    th = struct.pack("!HHIIBBHHH", 8080, sport, 0x5EED0000 + answered, seq + 1,
                     5 << 4, 0x12, 64240, 0, 0)
    pseudo = be + client + struct.pack("!BBH", 0, 6, len(th))
    th = th[:16] + struct.pack("!H", csum(pseudo + th)) + th[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th), answered & 0xFFFF, 0x4000,
                     64, 6, 0, be, client)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = f[6:12] + mac + b"\x08\x00"
    os.writev(fd, [eth + ip, th])
    answered += 1
print("answered", answered, flush=True)
PY

nsenter --net=/run/netns/"$(ns node)" python3 "$LAB_DIR/responder.py" "$TAP" "$BACKEND" \
	"$BACKEND_MAC" >"$LAB_DIR/responder.log" 2>&1 &
echo $! >"$LAB_DIR/responder.pid"
for _ in $(seq 1 100); do
	grep -q 'tap ready' "$LAB_DIR/responder.log" && break
	sleep 0.05
done
check "tap with IFF_NAPI_FRAGS opened" grep -q 'tap ready' "$LAB_DIR/responder.log"
ip -n "$(ns node)" addr add "$TAP_NET.1/24" dev "$TAP"
ip -n "$(ns node)" link set "$TAP" up
in_ns node ethtool -K "$TAP" gro off
# TCP early demux (on by default) pulls the TCP header of every received
# segment; routers often turn it off (it only helps local sockets).
in_ns node sysctl -qw net.ipv4.tcp_early_demux=0
in_ns node sysctl -qw "net.ipv4.conf.$TAP.rp_filter=1"
ip -n "$(ns node)" neigh replace "$BACKEND" lladdr "$BACKEND_MAC" dev "$TAP" nud permanent

mkdir -p "$LAB_CONFIG_DIR"
cat >"$LAB_CONFIG_DIR/web.yaml" <<YAML
apiVersion: canaryd.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  service: {vip: $LAB_VIP, port: $LAB_PORT, protocol: tcp}
  stable: {revision: v1, endpoints: ["$BACKEND:8080"]}
  canary: {revision: v2, endpoints: ["$BACKEND:8080"]}
  strategy:
    steps: [{setWeight: 50}, {pause: {}}]
YAML
lab_agent --interfaces to-cl
lab_wait web "d['weight'] == 50" 5 || true

# connect() from the client: OK only if the SYN-ACK comes back from the address dialled.
connects() {
	in_ns cl python3 -c '
import socket, sys
ok = 0
for i in range(int(sys.argv[3])):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
        ok += 1
    except OSError:
        pass
print(ok)' "$1" "$2" "$3"
}

direct=$(connects "$BACKEND" 8080 3)
check "the topology works: $direct/3 connections straight to the backend" expect "$direct == 3"
reasons_before=$(canaryctl -o json maps | jget 'd["reasons"]["malformed"]')
via_vip=$(connects "$LAB_VIP" "$LAB_PORT" "$CONNECTIONS")
echo "# $via_vip of $CONNECTIONS connections through the VIP completed"
check "every connection through the VIP completes ($via_vip/$CONNECTIONS)" \
	expect "$via_vip == $CONNECTIONS"
reasons_after=$(canaryctl -o json maps | jget 'd["reasons"]["malformed"]')
check "no reply left unread at egress (malformed $reasons_before -> $reasons_after)" \
	expect "$reasons_after == $reasons_before"
lab_finish
