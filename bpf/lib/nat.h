/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Address and port translation with checksum fix-ups, one path for both
 * hooks through the packet operations of ctx.h.
 */
#ifndef CANARY_BPF_NAT_H
#define CANARY_BPF_NAT_H

#include "csum.h"
#include "ctx.h"
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

/*
 * Write the new address and the IPv4 header checksum in one store, with the
 * ports when with_ports (a header without options, where they follow the
 * addresses: on tc one bpf_skb_store_bytes() fewer when the port changes,
 * as VIP:80 -> backend:8080). The header checksum is always complete (no
 * device finishes it, whatever the skb's ip_summed), so it is computed here
 * rather than by bpf_l3_csum_replace(): on tc that saves a helper call per
 * packet.
 */
__canary_inline int nat_store_ip(void *ctx, enum canary_ctx_kind kind, const struct canary_pkt *pkt,
				 enum nat_side side, __be32 addr, __be16 port, int with_ports)
{
	struct ipv4_check_addrs_ports hdr = {
		.ip.saddr = side == NAT_SRC ? addr : pkt->tuple.saddr,
		.ip.daddr = side == NAT_SRC ? pkt->tuple.daddr : addr,
		.sport = side == NAT_SRC ? port : pkt->tuple.sport,
		.dport = side == NAT_SRC ? pkt->tuple.dport : port,
	};
	__be32 old_addr = side == NAT_SRC ? pkt->tuple.saddr : pkt->tuple.daddr;
	__u32 off = pkt->l3_off + offsetof(struct iphdr, check);

	hdr.ip.check = csum_replace4(pkt->ip_check, old_addr, addr);
	/* Two calls, not one with a computed length: XDP's copy needs a constant. */
	if (with_ports)
		return ctx_store_bytes(ctx, kind, off, &hdr, sizeof(hdr));
	return ctx_store_bytes(ctx, kind, off, &hdr.ip, sizeof(hdr.ip));
}

/*
 * Rewrite the destination (ingress) or source (egress) address and port to
 * addr:port, with the IPv4 and L4 checksums, on either hook: ctx.h gives tc
 * the kernel's helpers for the L4 checksum and the stores (non-linear and
 * CHECKSUM_PARTIAL skbs) and XDP the same operations in place. Returns
 * nonzero when a write failed.
 */
__canary_inline int nat_rewrite(void *ctx, enum canary_ctx_kind kind, const struct canary_pkt *pkt,
				enum nat_side side, __be32 addr, __be16 port)
{
	__u32 port_off = pkt->l4_off + (side == NAT_SRC ? L4_SPORT_OFF : L4_DPORT_OFF);
	__be32 old_addr = side == NAT_SRC ? pkt->tuple.saddr : pkt->tuple.daddr;
	__be16 old_port = side == NAT_SRC ? pkt->tuple.sport : pkt->tuple.dport;
	__u64 l4_flags = pkt->tuple.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = l4_csum_off(pkt);

	/* A later fragment has no L4 header: its first fragment's checksum covers it. */
	if (!pkt->no_l4_hdr && ctx_l4_csum_replace(ctx, kind, csum_off, old_addr, addr,
						   l4_flags | BPF_F_PSEUDO_HDR | sizeof(addr)))
		return -1;
	if (pkt->no_l4_hdr || port == old_port)
		return nat_store_ip(ctx, kind, pkt, side, addr, port, 0);
	/* Two L4 updates: only the address is part of the pseudo-header. */
	if (ctx_l4_csum_replace(ctx, kind, csum_off, old_port, port, l4_flags | sizeof(port)))
		return -1;
	if (pkt->l4_off == pkt->l3_off + sizeof(struct iphdr))
		return nat_store_ip(ctx, kind, pkt, side, addr, port, 1);
	if (nat_store_ip(ctx, kind, pkt, side, addr, port, 0))
		return -1;
	return ctx_store_bytes(ctx, kind, port_off, &port, sizeof(port));
}

#endif /* CANARY_BPF_NAT_H */
