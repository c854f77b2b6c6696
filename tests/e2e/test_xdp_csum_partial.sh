#!/usr/bin/env bash
# XDP is refused on devices whose packets may carry CHECKSUM_PARTIAL, and tc
# ingress serves there instead.
#
# A client's TCP segments cross a veth with their checksum still to be
# completed (CHECKSUM_PARTIAL: the field holds only the pseudo-header sum).
# An XDP program cannot see that and patches the field as a full checksum;
# the packet is fine as long as nobody computes the checksum, and broken as
# soon as something does: a NIC, or here the node's backend-facing veths
# with transmit checksumming off, where the kernel completes it in software.
# The backends then drop every segment. Asked for XDP on veths, the agent
# must attach tc ingress and say so.
set -u
source "$(dirname "$0")/lib.sh"

lab_require_root
trap lab_down EXIT
lab_up
for b in "${LAB_BACKENDS[@]}"; do
	in_ns node ethtool -K "to-$b" tx off >/dev/null
	lab_backend "$b"
done
lab_wait_backends
lab_rollout web "$LAB_VIP" "[{setWeight: 30}, {pause: {}}]"
lab_agent --attach xdp
lab_wait web "d['weight'] == 30" 5 || true

out=$(lab_load --mode newconn --connections 4 --requests 200 --duration-s 10)
echo "# newconn through the VIP: $out"
ok=$(echo "$out" | jget 'd["ok"]')
check "every request through the VIP answered ($ok/200)" expect "$ok == 200"
check "the agent says why it attached tc instead of XDP" \
	grep -q 'msg="xdp refused: tc ingress attached instead" ifname=to-cl .*driver=veth' \
	"$LAB_DIR/canaryd.log"
xdp=$(ip -n "$(ns node)" -d link show to-cl | grep -c 'prog/xdp')
check "no XDP program on the client's veth" expect "$xdp == 0"
tc_in=$(in_ns node tc filter show dev to-cl ingress | grep -c 'name canary_tc_ingre')
check "tc ingress filter on the client's veth" expect "$tc_in == 1"
lab_finish
