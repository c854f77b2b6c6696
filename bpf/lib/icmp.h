/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP errors about translated flows (destination unreachable, among them
 * "fragmentation needed", time exceeded, parameter problem). Such an error
 * quotes the IP header and the first bytes of the datagram it is about, and
 * that datagram carried addresses the other side never sees:
 *
 *   ingress: an error sent to the VIP about a reply (VIP -> client), e.g. a
 *     router before a client with a smaller MTU. It goes on to the backend
 *     that sent the reply, quoting what the backend sent (backend -> client),
 *     or the backend never learns the path MTU and large responses stall.
 *   egress: an error from the node or a backend about a request
 *     (client -> backend), e.g. the node's own "fragmentation needed" when
 *     the backend's link is the smaller one, or a backend's UDP port
 *     unreachable. The client must see it quote what it sent
 *     (client -> VIP), and from the VIP if the backend sent it.
 *
 * As Cilium's NAT does, the quoted address and port, the quoted IP checksum
 * and the quoted TCP/UDP checksum are rewritten (the latter only where the
 * error quotes it: RFC 792 asks for 8 bytes only, which hold a UDP checksum
 * but not a TCP one), then the ICMP checksum and the outer address and IP
 * checksum. Every checksum is updated for exactly the 16-bit words changed
 * under it (RFC 1624), so the packet's total sum is unchanged, which keeps a
 * CHECKSUM_COMPLETE skb's csum right. The new values are computed here and
 * written with bpf_skb_store_bytes (tc) or in place (XDP): no tc program does
 * direct writes, which would make the verifier unclone every cloned skb.
 * IPv4 only, as is the data path.
 */
#ifndef CANARY_BPF_ICMP_H
#define CANARY_BPF_ICMP_H

#include "maps.h"
#include "metrics.h"
#include "nat.h"
#include "parse.h"

/*
 * <linux/icmp.h> pulls in libc's socket headers, which a BPF target cannot
 * build: the few definitions needed, as RFC 792 has them.
 */
#define ICMP_DEST_UNREACH  3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be32 un; /* unused, or the next-hop MTU, or a pointer */
};

/* Last byte an ICMP error's rewrite may touch: a quoted TCP checksum. */
#define ICMP_QUOTE_END (MAX_L4_OFF + sizeof(struct icmphdr) + 60 + 18)

/* What an ICMP error quotes, where, and the checksums the rewrite updates. */
struct icmp_quote {
	struct canary_ct_key tuple; /* the quoted datagram's, as it carries it */
	__u32 ip_off;		    /* the quoted IP header */
	__u32 l4_off;		    /* its TCP/UDP header */
	__u32 csum_off;		    /* its TCP/UDP checksum; 0: not quoted, or UDP's "none" */
	__u16 outer_check;
	__u16 icmp_check;
	__u16 ip_check;
	__u16 l4_check;
};

/* The new values of one ICMP error's rewrite. */
struct icmp_edit {
	__be32 outer_addr;
	__be32 addr;
	__be16 port;
	__u16 outer_check;
	__u16 icmp_check;
	__u16 ip_check;
	__u16 l4_check;
	__u8 outer; /* the outer address changes too */
};

/* RFC 1624 eqn. 3: checksum check after a covered 16-bit word went from -> to. */
__canary_inline __u16 csum16_update(__u16 check, __u16 from, __u16 to)
{
	__u32 sum = (__u32)(__u16)~check + (__u16)~from + to;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The same for a 32-bit word (an address): its two 16-bit halves. */
__canary_inline __u16 csum32_update(__u16 check, __be32 from, __be32 to)
{
	check = csum16_update(check, (__u16)from, (__u16)to);
	return csum16_update(check, (__u16)(from >> 16), (__u16)(to >> 16));
}

__canary_inline int icmp_type_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

/* The quoted TCP/UDP header's ports, and its checksum where quoted. */
__canary_inline int icmp_parse_quoted_l4(void *l4, void *quote_end, void *data_end,
					 struct icmp_quote *q, __u32 l4_off)
{
	__u32 csum_rel = q->tuple.proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) :
							 offsetof(struct udphdr, check);
	__u16 *check = l4 + csum_rel;
	__be16 *ports = l4;

	if ((void *)(ports + 2) > data_end || (void *)(ports + 2) > quote_end)
		return CANARY_R_MALFORMED;
	q->tuple.sport = ports[0];
	q->tuple.dport = ports[1];
	q->l4_off = l4_off;
	if ((void *)(check + 1) > data_end || (void *)(check + 1) > quote_end)
		return PARSE_OK;
	q->l4_check = *check;
	/* A UDP checksum of 0 means "none" and stays so. */
	if (q->tuple.proto == IPPROTO_TCP || q->l4_check)
		q->csum_off = l4_off + csum_rel;
	return PARSE_OK;
}

/*
 * Read an ICMP error (pkt parsed by parse_ipv4 up to its L4 offset). Returns
 * PARSE_OK for an error quoting the first fragment of a TCP/UDP datagram,
 * CANARY_R_NOT_TCP_UDP for any other ICMP message, CANARY_R_MALFORMED for
 * one cut short.
 */
__canary_inline int icmp_parse_error(void *data, void *data_end, const struct canary_pkt *pkt,
				     struct icmp_quote *q)
{
	__u32 off = pkt->l4_off, end = pkt->l3_off + pkt->ip_len, ihl;
	struct iphdr *outer = data + ETH_HLEN;
	struct icmphdr *icmp;
	void *quote_end;
	struct iphdr *in;

	/* Nothing past the IP datagram (Ethernet padding) is quoted. */
	if (end > ICMP_QUOTE_END)
		end = ICMP_QUOTE_END;
	quote_end = data + end;
	if (off > MAX_L4_OFF || (void *)(outer + 1) > data_end)
		return CANARY_R_MALFORMED;
	icmp = data + off;
	if ((void *)(icmp + 1) > data_end || (void *)(icmp + 1) > quote_end)
		return CANARY_R_MALFORMED;
	if (!icmp_type_is_error(icmp->type))
		return CANARY_R_NOT_TCP_UDP;
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > data_end || (void *)(in + 1) > quote_end)
		return CANARY_R_MALFORMED;
	ihl = in->ihl * 4;
	if (in->version != 4 || ihl < sizeof(*in))
		return CANARY_R_MALFORMED;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return CANARY_R_NOT_TCP_UDP;
	if (ip_is_later_fragment(in))
		return CANARY_R_NOT_TCP_UDP; /* no ports quoted */
	q->tuple.saddr = in->saddr;
	q->tuple.daddr = in->daddr;
	q->tuple.proto = in->protocol;
	q->ip_off = off + sizeof(*icmp);
	q->outer_check = outer->check;
	q->icmp_check = icmp->checksum;
	q->ip_check = in->check;
	return icmp_parse_quoted_l4((void *)in + ihl, quote_end, data_end, q, q->ip_off + ihl);
}

/*
 * The new values when the quoted side's address and port become addr and
 * port. The outer address on the other side changes with them when it was
 * the quoted one: the error was sent to (ingress) or by (egress) the address
 * that is being translated.
 */
__canary_inline void icmp_plan(const struct canary_pkt *pkt, const struct icmp_quote *q,
			       enum nat_side side, __be32 addr, __be16 port, struct icmp_edit *ed)
{
	__be32 old_addr = side == NAT_SRC ? q->tuple.saddr : q->tuple.daddr;
	__be16 old_port = side == NAT_SRC ? q->tuple.sport : q->tuple.dport;
	__be32 outer_old = side == NAT_SRC ? pkt->tuple.daddr : pkt->tuple.saddr;
	__u16 icmp_check = q->icmp_check;

	ed->addr = addr;
	ed->port = port;
	ed->ip_check = csum32_update(q->ip_check, old_addr, addr);
	icmp_check = csum32_update(icmp_check, old_addr, addr);
	icmp_check = csum16_update(icmp_check, q->ip_check, ed->ip_check);
	icmp_check = csum16_update(icmp_check, old_port, port);
	if (q->csum_off) {
		ed->l4_check = csum32_update(q->l4_check, old_addr, addr);
		ed->l4_check = csum16_update(ed->l4_check, old_port, port);
		if (q->tuple.proto == IPPROTO_UDP && !ed->l4_check)
			ed->l4_check = 0xffff;
		icmp_check = csum16_update(icmp_check, q->l4_check, ed->l4_check);
	}
	ed->icmp_check = icmp_check;
	ed->outer = outer_old == old_addr;
	ed->outer_addr = addr;
	ed->outer_check = csum32_update(q->outer_check, outer_old, addr);
}

/* Write size (2 or 4) bytes at off: helper in tc, in place in XDP. */
__canary_inline int icmp_store(void *ctx, enum canary_ctx_kind kind, __u32 off, const void *val,
			       __u32 size)
{
	if (kind == CANARY_CTX_TC)
		return bpf_skb_store_bytes(ctx, off, val, size, 0);

	struct xdp_md *xdp = ctx;
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	__u8 *p;

	if (off > ICMP_QUOTE_END)
		return -1;
	p = data + off;
	if ((void *)(p + size) > data_end)
		return -1;
	if (size == 4)
		__builtin_memcpy(p, val, 4);
	else
		__builtin_memcpy(p, val, 2);
	return 0;
}

/* Apply the plan; returns nonzero when a write failed (the packet is then dropped). */
__canary_inline int icmp_apply(void *ctx, enum canary_ctx_kind kind, const struct canary_pkt *pkt,
			       const struct icmp_quote *q, enum nat_side side,
			       const struct icmp_edit *ed)
{
	__u32 addr_off =
		side == NAT_SRC ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr);
	__u32 outer_addr_off =
		side == NAT_SRC ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr);
	__u32 port_off = side == NAT_SRC ? L4_SPORT_OFF : L4_DPORT_OFF;
	int err;

	err = icmp_store(ctx, kind, q->ip_off + addr_off, &ed->addr, 4);
	err |= icmp_store(ctx, kind, q->ip_off + offsetof(struct iphdr, check), &ed->ip_check, 2);
	err |= icmp_store(ctx, kind, q->l4_off + port_off, &ed->port, 2);
	if (q->csum_off)
		err |= icmp_store(ctx, kind, q->csum_off, &ed->l4_check, 2);
	err |= icmp_store(ctx, kind, pkt->l4_off + offsetof(struct icmphdr, checksum),
			  &ed->icmp_check, 2);
	if (!ed->outer)
		return err;
	err |= icmp_store(ctx, kind, pkt->l3_off + outer_addr_off, &ed->outer_addr, 4);
	err |= icmp_store(ctx, kind, pkt->l3_off + offsetof(struct iphdr, check), &ed->outer_check,
			  2);
	return err;
}

/*
 * Ingress: an error sent to the VIP about a reply (VIP -> client) goes to
 * the flow's backend, quoting the backend's address and port. The flow is
 * the quoted tuple turned around: its forward entry. Returns whether the
 * packet is to be dropped (a write failed).
 */
__canary_inline int icmp_ingress(void *ctx, enum canary_ctx_kind kind, void *data, void *data_end,
				 const struct canary_pkt *pkt)
{
	const struct canary_ct_entry *e;
	struct icmp_quote q = {};
	struct icmp_edit ed = {};
	struct canary_ct_key fkey;
	int reason;

	reason = icmp_parse_error(data, data_end, pkt, &q);
	if (reason != PARSE_OK) {
		reason_count(reason);
		return 0;
	}
	fkey = (struct canary_ct_key){
		.saddr = q.tuple.daddr,
		.daddr = q.tuple.saddr,
		.sport = q.tuple.dport,
		.dport = q.tuple.sport,
		.proto = q.tuple.proto,
	};
	e = bpf_map_lookup_elem(&CANARY_MAP(conntrack), &fkey);
	if (!e || (e->flags & CANARY_CT_F_REVERSE) || pkt->tuple.daddr != q.tuple.saddr) {
		reason_count(CANARY_R_ICMP_NO_FLOW);
		return 0;
	}
	icmp_plan(pkt, &q, NAT_SRC, e->nat_addr, e->nat_port, &ed);
	reason_count(CANARY_R_ICMP_ERROR_IN);
	return icmp_apply(ctx, kind, pkt, &q, NAT_SRC, &ed);
}

/*
 * Egress: an error about a request (client -> backend) quotes the VIP the
 * client sent to, and comes from the VIP if the backend sent it. The flow is
 * the quoted tuple turned around: its reverse entry, which holds the VIP.
 */
__canary_inline int icmp_egress(struct __sk_buff *skb, const struct canary_pkt *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	const struct canary_ct_entry *rev;
	struct icmp_quote q = {};
	struct icmp_edit ed = {};
	struct canary_ct_key rkey;

	if (icmp_parse_error(data, data_end, pkt, &q) != PARSE_OK)
		return 0; /* egress counts only what concerns replies */
	rkey = (struct canary_ct_key){
		.saddr = q.tuple.daddr,
		.daddr = q.tuple.saddr,
		.sport = q.tuple.dport,
		.dport = q.tuple.sport,
		.proto = q.tuple.proto,
	};
	rev = bpf_map_lookup_elem(&CANARY_MAP(conntrack), &rkey);
	if (!rev || !(rev->flags & CANARY_CT_F_REVERSE)) {
		reason_count(CANARY_R_ICMP_NO_FLOW);
		return 0;
	}
	icmp_plan(pkt, &q, NAT_DST, rev->nat_addr, rev->nat_port, &ed);
	reason_count(CANARY_R_ICMP_ERROR_OUT);
	return icmp_apply(skb, CANARY_CTX_TC, pkt, &q, NAT_DST, &ed);
}

/*
 * tc: the rewrite reads the quote by direct access, so it must be linear up
 * to a quoted TCP checksum. Returns whether the data pointers moved.
 */
__canary_inline int icmp_pull_tc(struct __sk_buff *skb)
{
	__u32 linear = skb->data_end - skb->data;

	if (linear >= skb->len || linear >= ICMP_QUOTE_END)
		return 0;
	return !bpf_skb_pull_data(skb, skb->len < ICMP_QUOTE_END ? skb->len : ICMP_QUOTE_END);
}

#endif /* CANARY_BPF_ICMP_H */
