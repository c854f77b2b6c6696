/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address and port translation with checksum fix-ups. tc uses the kernel's
 * csum_replace helpers, which also handle CHECKSUM_PARTIAL skbs; XDP edits
 * the packet in place and recomputes with bpf_csum_diff.
 */
#ifndef CANARY_BPF_NAT_H
#define CANARY_BPF_NAT_H

#include "csum.h"
#include "parse.h"

/* L4 ports sit at the same offsets in TCP and UDP. */
#define L4_SPORT_OFF 0
#define L4_DPORT_OFF 2
/* Ethernet + the longest IPv4 header, a bound the verifier can see. */
#define MAX_L4_OFF (ETH_HLEN + 60)

enum nat_side {
	NAT_DST = 0, /* ingress: VIP -> backend */
	NAT_SRC = 1, /* egress: backend -> VIP */
};

__canary_inline int nat_rewrite_tc(struct __sk_buff *skb, const struct canary_pkt *pkt,
				   enum nat_side side, __be32 addr, __be16 port)
{
	__u32 addr_off = pkt->l3_off + (side == NAT_SRC ? offsetof(struct iphdr, saddr) :
							  offsetof(struct iphdr, daddr));
	__u32 port_off = pkt->l4_off + (side == NAT_SRC ? L4_SPORT_OFF : L4_DPORT_OFF);
	__be32 old_addr = side == NAT_SRC ? pkt->tuple.saddr : pkt->tuple.daddr;
	__be16 old_port = side == NAT_SRC ? pkt->tuple.sport : pkt->tuple.dport;
	__u64 l4_flags = pkt->tuple.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = l4_csum_off(pkt);

	/* A later fragment has no L4 header: its first fragment's checksum covers it. */
	if (!pkt->no_l4_hdr && bpf_l4_csum_replace(skb, csum_off, old_addr, addr,
						   l4_flags | BPF_F_PSEUDO_HDR | sizeof(addr)))
		return -1;
	if (bpf_l3_csum_replace(skb, pkt->l3_off + offsetof(struct iphdr, check), old_addr, addr,
				sizeof(addr)))
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &addr, sizeof(addr), 0))
		return -1;
	if (pkt->no_l4_hdr || port == old_port)
		return 0;
	if (bpf_l4_csum_replace(skb, csum_off, old_port, port, l4_flags | sizeof(port)))
		return -1;
	return bpf_skb_store_bytes(skb, port_off, &port, sizeof(port), 0);
}

/* XDP runs only on ingress, so it only ever rewrites the destination. */
__canary_inline int nat_rewrite_dst_xdp(struct xdp_md *ctx, const struct canary_pkt *pkt,
					__be32 addr, __be16 port)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 l4_off = pkt->l4_off;
	__be32 old_ports, new_ports, old_addr;
	__u16 *check;
	__u32 *ports;

	if (l4_off > MAX_L4_OFF || (void *)(ip + 1) > data_end)
		return -1;
	if (pkt->no_l4_hdr) { /* a later fragment: its first one carries the ports */
		old_addr = ip->daddr;
		ip->daddr = addr;
		ip->check = csum_replace4(ip->check, old_addr, addr);
		return 0;
	}
	ports = data + l4_off;
	if ((void *)(ports + 1) > data_end)
		return -1;
	if (pkt->tuple.proto == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)ports;

		if ((void *)(tcp + 1) > data_end)
			return -1;
		check = &tcp->check;
	} else {
		struct udphdr *udp = (void *)ports;

		if ((void *)(udp + 1) > data_end)
			return -1;
		check = &udp->check;
	}

	old_addr = ip->daddr;
	old_ports = *ports;
	new_ports = old_ports;
	((__be16 *)&new_ports)[1] = port;

	ip->daddr = addr;
	ip->check = csum_replace4(ip->check, old_addr, addr);
	*ports = new_ports;
	/* A zero UDP checksum means "none" and must stay so. */
	if (pkt->tuple.proto == IPPROTO_UDP && *check == 0)
		return 0;
	*check = csum_replace4(csum_replace4(*check, old_addr, addr), old_ports, new_ports);
	if (pkt->tuple.proto == IPPROTO_UDP && *check == 0)
		*check = 0xffff;
	return 0;
}

#endif /* CANARY_BPF_NAT_H */
