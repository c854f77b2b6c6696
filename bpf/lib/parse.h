/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing with direct packet access, for tc and XDP alike. */
#ifndef CANARY_BPF_PARSE_H
#define CANARY_BPF_PARSE_H

#include "frag.h"

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/*
 * parse_ipv4() returns this for a packet we may translate; any other value
 * is the canary_reason why not. It is not a reason itself, so it cannot be
 * mistaken for one (CANARY_R_NOT_IPV4 is 0).
 */
#define PARSE_OK CANARY_R_COUNT

/* What the programs need to know of one IPv4 TCP/UDP packet. */
struct canary_pkt {
	struct canary_ct_key tuple; /* as carried by the packet */
	__u32 l3_off;
	__u32 l4_off;
	__u32 payload_off;
	__u32 payload_len;
	__u32 ip_len;	/* whole datagram, from the IP header */
	__u32 seq;	/* TCP sequence number, host order */
	__u32 ack_seq;	/* TCP acknowledgment number, host order */
	__u16 ip_check; /* the IPv4 header checksum, as carried */
	__u8 tcp_flags;
	__u8 no_l4_hdr; /* a later fragment: ports from its first one, none here */
};

/* Offsets of the checksum inside the L4 header. */
__canary_inline __u32 l4_csum_off(const struct canary_pkt *pkt)
{
	return pkt->l4_off + (pkt->tuple.proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) :
								offsetof(struct udphdr, check));
}

__canary_inline int parse_tcp(void *l4, void *data_end, struct canary_pkt *pkt)
{
	struct tcphdr *tcp = l4;
	__u32 hdr_len;

	if ((void *)(tcp + 1) > data_end)
		return CANARY_R_MALFORMED;
	hdr_len = tcp->doff * 4;
	if (hdr_len < sizeof(*tcp))
		return CANARY_R_MALFORMED;
	pkt->tuple.sport = tcp->source;
	pkt->tuple.dport = tcp->dest;
	pkt->seq = bpf_ntohl(tcp->seq);
	pkt->ack_seq = bpf_ntohl(tcp->ack_seq);
	pkt->tcp_flags = ((__u8 *)tcp)[13];
	pkt->payload_off = pkt->l4_off + hdr_len;
	return PARSE_OK;
}

__canary_inline int parse_udp(void *l4, void *data_end, struct canary_pkt *pkt)
{
	struct udphdr *udp = l4;

	if ((void *)(udp + 1) > data_end)
		return CANARY_R_MALFORMED;
	pkt->tuple.sport = udp->source;
	pkt->tuple.dport = udp->dest;
	pkt->payload_off = pkt->l4_off + sizeof(*udp);
	return PARSE_OK;
}

/* A fragment past the first: its ports are those its first fragment left. */
__canary_inline int parse_later_fragment(const struct iphdr *ip, struct canary_pkt *pkt)
{
	const struct canary_frag_ports *ports = frag_recall(ip);

	if (!ports)
		return CANARY_R_FRAGMENT;
	pkt->tuple.sport = ports->sport;
	pkt->tuple.dport = ports->dport;
	pkt->no_l4_hdr = 1;
	pkt->payload_off = pkt->l4_off;
	return PARSE_OK;
}

/*
 * Length of the IP datagram. IPv4 BIG TCP (GRO or TSO past 64 KB) sets the
 * total length to 0 and lets the skb's length say it, as the kernel's
 * iph_totlen() reads it: accepted only on a TCP GSO skb, whose length
 * gso_len is (0 for a packet that is not GSO, and in XDP, which sees wire
 * frames only).
 */
__canary_inline __u32 parse_ip_len(const struct iphdr *ip, __u32 gso_len)
{
	__u32 len = bpf_ntohs(ip->tot_len);

	if (len == 0 && ip->protocol == IPPROTO_TCP && gso_len > ETH_HLEN)
		return gso_len - ETH_HLEN;
	return len;
}

/*
 * Fill pkt from an Ethernet frame of gso_len bytes if it is a GSO packet
 * (else 0). Returns PARSE_OK for an IPv4 TCP/UDP packet we may translate,
 * otherwise the canary_reason that explains why not.
 */
__canary_inline int parse_ipv4(void *data, void *data_end, __u32 gso_len, struct canary_pkt *pkt)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl, end;
	int err, frag;

	if ((void *)(eth + 1) > data_end)
		return CANARY_R_MALFORMED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return CANARY_R_NOT_IPV4;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return CANARY_R_MALFORMED;
	ihl = ip->ihl * 4;
	pkt->ip_len = parse_ip_len(ip, gso_len);
	if (ip->version != 4 || ihl < sizeof(*ip) || pkt->ip_len < ihl)
		return CANARY_R_MALFORMED;
	frag = ip_is_fragment(ip);
	if (frag && ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return CANARY_R_FRAGMENT;

	pkt->tuple.saddr = ip->saddr;
	pkt->tuple.daddr = ip->daddr;
	pkt->tuple.proto = ip->protocol;
	pkt->ip_check = ip->check;
	pkt->l3_off = sizeof(*eth);
	pkt->l4_off = sizeof(*eth) + ihl;
	if (frag && ip_is_later_fragment(ip))
		return (void *)ip + ihl > data_end ? CANARY_R_MALFORMED :
						     parse_later_fragment(ip, pkt);
	if (ip->protocol == IPPROTO_TCP)
		err = parse_tcp((void *)ip + ihl, data_end, pkt);
	else if (ip->protocol == IPPROTO_UDP)
		err = parse_udp((void *)ip + ihl, data_end, pkt);
	else
		return CANARY_R_NOT_TCP_UDP;
	if (err != PARSE_OK)
		return err;

	end = pkt->l3_off + pkt->ip_len;
	if (pkt->payload_off > end)
		return CANARY_R_MALFORMED;
	pkt->payload_len = end - pkt->payload_off;
	if (frag) {
		frag_remember(ip, pkt->tuple.sport, pkt->tuple.dport);
		pkt->payload_len = 0; /* only part of the segment: nothing to sniff */
	}
	return PARSE_OK;
}

#endif /* CANARY_BPF_PARSE_H */
