/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header-only packet builder for the BPF test suites: Ethernet + IPv4 (with
 * options, fragments) + TCP/UDP/ICMP, plus IPv6, ARP and truncated frames.
 * Every field is written byte by byte in network order so a frame means the
 * same on any host. The verifiers recompute checksums from scratch over the
 * final bytes (pseudo-header included) and never trust an incremental update,
 * which is exactly what the programs under test do.
 */
#ifndef CANARY_TEST_PKT_H
#define CANARY_TEST_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#define PKT_MAX	       2048
#define PKT_ETH_LEN    14
#define PKT_IP_OFF     PKT_ETH_LEN
#define PKT_IP_MIN     20
#define PKT_IPV6_LEN   40
#define PKT_TCP_MIN    20
#define PKT_UDP_LEN    8
#define PKT_ICMP_LEN   8
#define PKT_ARP_LEN    28

#define PKT_ETH_P_IP   0x0800
#define PKT_ETH_P_ARP  0x0806
#define PKT_ETH_P_IPV6 0x86dd

/* Offsets inside the IPv4 header. */
#define PKT_IP_TOT_LEN 2
#define PKT_IP_FRAG    6
#define PKT_IP_TTL     8
#define PKT_IP_PROTO   9
#define PKT_IP_CHECK   10
#define PKT_IP_SADDR   12
#define PKT_IP_DADDR   16

/* Offsets inside the TCP/UDP header. */
#define PKT_L4_SPORT  0
#define PKT_L4_DPORT  2
#define PKT_TCP_SEQ   4
#define PKT_TCP_CHECK 16
#define PKT_UDP_CHECK 6

/* IPv4 flags, in the host-order 16-bit word that holds the fragment offset. */
#define PKT_IP_DF      0x4000
#define PKT_IP_MF      0x2000
#define PKT_IP_OFFMASK 0x1fff

#define PKT_TCP_FIN    0x01
#define PKT_TCP_SYN    0x02
#define PKT_TCP_RST    0x04
#define PKT_TCP_PSH    0x08
#define PKT_TCP_ACK    0x10

/* Network-order constants usable in static initializers (gcc folds the builtins). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PKT_BE16(x) ((uint16_t)__builtin_bswap16((uint16_t)(x)))
#define PKT_BE32(x) ((uint32_t)__builtin_bswap32((uint32_t)(x)))
#else
#define PKT_BE16(x) ((uint16_t)(x))
#define PKT_BE32(x) ((uint32_t)(x))
#endif
#define PKT_IP4(a, b, c, d) \
	PKT_BE32(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* One IPv4 frame. Addresses and ports in network order, the rest host order. */
struct pkt_spec {
	uint16_t eth_proto; /* 0: IPv4 */
	uint32_t saddr;
	uint32_t daddr;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP; else raw payload */
	uint8_t ttl;   /* 0: 64 */
	uint8_t tos;
	uint16_t ip_id;
	uint16_t frag; /* PKT_IP_DF | PKT_IP_MF | offset in 8-byte units */
	const uint8_t *ip_opts;
	uint8_t ip_opts_len; /* multiple of 4, at most 40 */
	uint32_t seq;
	uint32_t ack;
	uint8_t tcp_flags;
	uint16_t window; /* 0: 64240 */
	const uint8_t *tcp_opts;
	uint8_t tcp_opts_len; /* multiple of 4, at most 40 */
	const void *payload;
	size_t payload_len;
	bool udp_no_csum; /* send UDP checksum 0 ("none") */
	size_t pad_to;	  /* Ethernet padding after the datagram, up to this frame size */
};

static inline void pkt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void pkt_put32(uint8_t *p, uint32_t v)
{
	pkt_put16(p, (uint16_t)(v >> 16));
	pkt_put16(p + 2, (uint16_t)v);
}

static inline uint16_t pkt_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t pkt_get32(const uint8_t *p)
{
	return ((uint32_t)pkt_get16(p) << 16) | pkt_get16(p + 2);
}

/* Network-order field accessors, to compare with map keys and values. */
static inline uint32_t pkt_be32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint16_t pkt_be16_at(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Ones'-complement sum of big-endian 16-bit words; an odd tail is zero padded. */
static inline uint32_t pkt_sum(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += pkt_get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static inline uint16_t pkt_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* IPv4 pseudo-header sum for an L4 segment of len bytes. */
static inline uint32_t pkt_pseudo_sum(const uint8_t *ip, uint8_t proto, size_t len)
{
	uint32_t sum = pkt_sum(0, ip + PKT_IP_SADDR, 8);

	return sum + proto + (uint32_t)len;
}

static inline size_t pkt_eth(uint8_t *buf, uint16_t proto)
{
	static const uint8_t dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
	static const uint8_t src[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };

	memcpy(buf, dst, sizeof(dst));
	memcpy(buf + 6, src, sizeof(src));
	pkt_put16(buf + 12, proto);
	return PKT_ETH_LEN;
}

/* A later fragment carries no L4 header: its bytes are raw payload. */
static inline bool pkt_spec_has_l4(const struct pkt_spec *s)
{
	if (s->frag & PKT_IP_OFFMASK)
		return false;
	return s->proto == IPPROTO_TCP || s->proto == IPPROTO_UDP || s->proto == IPPROTO_ICMP;
}

static inline size_t pkt_l4_hdr_len(const struct pkt_spec *s)
{
	if (!pkt_spec_has_l4(s))
		return 0;
	if (s->proto == IPPROTO_TCP)
		return PKT_TCP_MIN + s->tcp_opts_len;
	return s->proto == IPPROTO_UDP ? PKT_UDP_LEN : PKT_ICMP_LEN;
}

static inline void pkt_tcp_hdr(uint8_t *l4, const struct pkt_spec *s)
{
	uint8_t hlen = PKT_TCP_MIN + s->tcp_opts_len;

	pkt_put32(l4 + PKT_TCP_SEQ, s->seq);
	pkt_put32(l4 + 8, s->ack);
	l4[12] = (uint8_t)((hlen / 4) << 4);
	l4[13] = s->tcp_flags;
	pkt_put16(l4 + 14, s->window ? s->window : 64240);
	if (s->tcp_opts_len)
		memcpy(l4 + PKT_TCP_MIN, s->tcp_opts, s->tcp_opts_len);
}

/* Write the L4 header and its checksum; the segment (with payload) is in place. */
static inline void pkt_l4_finish(uint8_t *ip, uint8_t *l4, size_t seg_len, const struct pkt_spec *s)
{
	uint16_t csum;

	if (s->proto == IPPROTO_ICMP) {
		l4[0] = 8; /* echo request */
		csum = pkt_fold(pkt_sum(0, l4, seg_len));
		pkt_put16(l4 + 2, csum);
		return;
	}
	memcpy(l4 + PKT_L4_SPORT, &s->sport, 2);
	memcpy(l4 + PKT_L4_DPORT, &s->dport, 2);
	if (s->proto == IPPROTO_TCP) {
		pkt_tcp_hdr(l4, s);
		csum = pkt_fold(pkt_sum(pkt_pseudo_sum(ip, s->proto, seg_len), l4, seg_len));
		pkt_put16(l4 + PKT_TCP_CHECK, csum);
		return;
	}
	pkt_put16(l4 + 4, (uint16_t)seg_len);
	if (s->udp_no_csum)
		return;
	csum = pkt_fold(pkt_sum(pkt_pseudo_sum(ip, s->proto, seg_len), l4, seg_len));
	/* A computed zero is sent as all ones: zero means "no checksum". */
	pkt_put16(l4 + PKT_UDP_CHECK, csum ? csum : 0xffff);
}

static inline void pkt_ip_hdr(uint8_t *ip, const struct pkt_spec *s, size_t ihl, size_t tot)
{
	ip[0] = (uint8_t)(0x40 | (ihl / 4));
	ip[1] = s->tos;
	pkt_put16(ip + PKT_IP_TOT_LEN, (uint16_t)tot);
	pkt_put16(ip + 4, s->ip_id);
	pkt_put16(ip + PKT_IP_FRAG, s->frag);
	ip[PKT_IP_TTL] = s->ttl ? s->ttl : 64;
	ip[PKT_IP_PROTO] = s->proto;
	memcpy(ip + PKT_IP_SADDR, &s->saddr, 4);
	memcpy(ip + PKT_IP_DADDR, &s->daddr, 4);
	if (s->ip_opts_len)
		memcpy(ip + PKT_IP_MIN, s->ip_opts, s->ip_opts_len);
	pkt_put16(ip + PKT_IP_CHECK, pkt_fold(pkt_sum(0, ip, ihl)));
}

/*
 * Build the frame described by s into buf. Returns its length, or 0 when it
 * does not fit in cap or the options are not a multiple of 4 bytes.
 */
static inline size_t pkt_build(uint8_t *buf, size_t cap, const struct pkt_spec *s)
{
	size_t ihl = PKT_IP_MIN + s->ip_opts_len;
	size_t l4_hdr = pkt_l4_hdr_len(s);
	size_t seg_len = l4_hdr + s->payload_len;
	size_t frame = PKT_ETH_LEN + ihl + seg_len;
	uint8_t *ip = buf + PKT_IP_OFF;
	uint8_t *l4 = ip + ihl;

	if ((s->ip_opts_len | s->tcp_opts_len) & 3 || s->ip_opts_len > 40 || s->tcp_opts_len > 40 ||
	    ihl + seg_len > 0xffff)
		return 0;
	if (frame > cap || s->pad_to > cap)
		return 0;
	memset(buf, 0, frame > s->pad_to ? frame : s->pad_to);
	pkt_eth(buf, s->eth_proto ? s->eth_proto : PKT_ETH_P_IP);
	if (s->payload_len)
		memcpy(l4 + l4_hdr, s->payload, s->payload_len);
	pkt_ip_hdr(ip, s, ihl, ihl + seg_len);
	if (l4_hdr)
		pkt_l4_finish(ip, l4, seg_len, s);
	return frame > s->pad_to ? frame : s->pad_to;
}

/* The first keep bytes of the frame of s: a capture cut short. */
static inline size_t pkt_build_truncated(uint8_t *buf, size_t cap, const struct pkt_spec *s,
					 size_t keep)
{
	size_t len = pkt_build(buf, cap, s);

	return len < keep ? len : keep;
}

/* Ethernet + IPv6 + a bare TCP header (checksum over the IPv6 pseudo-header). */
static inline size_t pkt_build_ipv6_tcp(uint8_t *buf, size_t cap, const uint8_t saddr[16],
					const uint8_t daddr[16], uint16_t sport, uint16_t dport,
					uint8_t flags)
{
	const struct pkt_spec tcp = { .sport = sport, .dport = dport, .tcp_flags = flags };
	uint8_t *ip = buf + PKT_ETH_LEN;
	uint8_t *l4 = ip + PKT_IPV6_LEN;
	size_t len = PKT_ETH_LEN + PKT_IPV6_LEN + PKT_TCP_MIN;
	uint32_t sum;

	if (len > cap)
		return 0;
	memset(buf, 0, len);
	pkt_eth(buf, PKT_ETH_P_IPV6);
	ip[0] = 0x60;
	pkt_put16(ip + 4, PKT_TCP_MIN);
	ip[6] = IPPROTO_TCP;
	ip[7] = 64;
	memcpy(ip + 8, saddr, 16);
	memcpy(ip + 24, daddr, 16);
	memcpy(l4 + PKT_L4_SPORT, &sport, 2);
	memcpy(l4 + PKT_L4_DPORT, &dport, 2);
	pkt_tcp_hdr(l4, &tcp);
	sum = pkt_sum(0, ip + 8, 32) + IPPROTO_TCP + PKT_TCP_MIN;
	pkt_put16(l4 + PKT_TCP_CHECK, pkt_fold(pkt_sum(sum, l4, PKT_TCP_MIN)));
	return len;
}

/* Ethernet + ARP request "who has target_ip" (addresses in network order). */
static inline size_t pkt_build_arp(uint8_t *buf, size_t cap, uint32_t sender_ip, uint32_t target_ip)
{
	static const uint8_t hdr[8] = { 0, 1, 0x08, 0, 6, 4, 0, 1 };
	uint8_t *arp = buf + PKT_ETH_LEN;
	size_t len = PKT_ETH_LEN + PKT_ARP_LEN;

	if (len > cap)
		return 0;
	memset(buf, 0, len);
	pkt_eth(buf, PKT_ETH_P_ARP);
	memcpy(arp, hdr, sizeof(hdr));
	memcpy(arp + 8, buf + 6, 6); /* sender MAC */
	memcpy(arp + 14, &sender_ip, 4);
	memcpy(arp + 24, &target_ip, 4);
	return len;
}

/* Ethernet + IPv4 + ICMP echo request with payload. */
static inline size_t pkt_build_icmp_echo(uint8_t *buf, size_t cap, uint32_t saddr, uint32_t daddr,
					 const void *payload, size_t len)
{
	const struct pkt_spec s = {
		.saddr = saddr,
		.daddr = daddr,
		.proto = IPPROTO_ICMP,
		.payload = payload,
		.payload_len = len,
	};

	return pkt_build(buf, cap, &s);
}

/*
 * Ethernet + IPv4 + an ICMP error (type, code, the 32-bit word after the
 * checksum: a next-hop MTU for "fragmentation needed") quoting quote_len
 * bytes of an IP datagram. The ICMP checksum is computed over all of it.
 */
static inline size_t pkt_build_icmp_error(uint8_t *buf, size_t cap, uint32_t saddr, uint32_t daddr,
					  uint8_t type, uint8_t code, uint32_t rest,
					  const uint8_t *quote, size_t quote_len)
{
	const struct pkt_spec s = {
		.saddr = saddr,
		.daddr = daddr,
		.proto = IPPROTO_ICMP,
		.payload = quote,
		.payload_len = quote_len,
	};
	size_t len = pkt_build(buf, cap, &s);
	uint8_t *icmp = buf + PKT_IP_OFF + PKT_IP_MIN;

	if (!len)
		return 0;
	icmp[0] = type;
	icmp[1] = code;
	pkt_put16(icmp + 2, 0);
	pkt_put32(icmp + 4, rest);
	pkt_put16(icmp + 2, pkt_fold(pkt_sum(0, icmp, PKT_ICMP_LEN + quote_len)));
	return len;
}

/*
 * An ICMP error about the datagram of q, quoting at most quote_max bytes of
 * it (RFC 792 asks for its IP header and 8 bytes; Linux quotes up to 548).
 */
static inline size_t pkt_build_icmp_about(uint8_t *buf, size_t cap, uint32_t saddr, uint32_t daddr,
					  uint8_t type, uint8_t code, const struct pkt_spec *q,
					  size_t quote_max)
{
	uint8_t dgram[PKT_MAX];
	size_t len = pkt_build(dgram, sizeof(dgram), q);
	size_t quote;

	if (!len)
		return 0;
	quote = len - PKT_ETH_LEN;
	if (quote > quote_max)
		quote = quote_max;
	return pkt_build_icmp_error(buf, cap, saddr, daddr, type, code,
				    type == 3 && code == 4 ? 1280 : 0, dgram + PKT_ETH_LEN, quote);
}

/* One fragment of a datagram: offset in 8-byte units, more = MF set. */
static inline size_t pkt_build_fragment(uint8_t *buf, size_t cap, const struct pkt_spec *s,
					uint16_t offset, bool more)
{
	struct pkt_spec frag = *s;

	frag.frag = (uint16_t)((s->frag & PKT_IP_DF) | (more ? PKT_IP_MF : 0) |
			       (offset & PKT_IP_OFFMASK));
	return pkt_build(buf, cap, &frag);
}

/* Offset of the L4 header of an IPv4 frame, 0 if the header is not all there. */
static inline size_t pkt_l4_off(const uint8_t *f, size_t len)
{
	size_t ihl;

	if (len < PKT_ETH_LEN + PKT_IP_MIN || pkt_get16(f + 12) != PKT_ETH_P_IP)
		return 0;
	ihl = (size_t)(f[PKT_IP_OFF] & 0x0f) * 4;
	if ((f[PKT_IP_OFF] >> 4) != 4 || ihl < PKT_IP_MIN || len < PKT_ETH_LEN + ihl)
		return 0;
	return PKT_ETH_LEN + ihl;
}

/* Does the IPv4 header checksum of frame f verify? */
static inline bool pkt_ipv4_csum_ok(const uint8_t *f, size_t len)
{
	size_t l4 = pkt_l4_off(f, len);

	if (!l4)
		return false;
	return pkt_fold(pkt_sum(0, f + PKT_IP_OFF, l4 - PKT_IP_OFF)) == 0;
}

/*
 * Does the TCP, UDP or ICMP checksum of frame f verify, over the whole
 * segment the IP header announces? A UDP checksum of 0 means "none" and
 * passes; callers that care about it look at the field itself.
 */
static inline bool pkt_l4_csum_ok(const uint8_t *f, size_t len)
{
	size_t l4 = pkt_l4_off(f, len);
	const uint8_t *ip = f + PKT_IP_OFF;
	uint8_t proto;
	size_t seg;
	uint32_t sum;

	if (!l4 || pkt_get16(ip + PKT_IP_TOT_LEN) < l4 - PKT_IP_OFF)
		return false;
	seg = pkt_get16(ip + PKT_IP_TOT_LEN) - (l4 - PKT_IP_OFF);
	proto = ip[PKT_IP_PROTO];
	if (l4 + seg > len)
		return false;
	if (proto == IPPROTO_ICMP)
		return pkt_fold(pkt_sum(0, f + l4, seg)) == 0;
	if (proto == IPPROTO_UDP && seg >= PKT_UDP_LEN && pkt_get16(f + l4 + PKT_UDP_CHECK) == 0)
		return true;
	if (proto == IPPROTO_TCP ? seg < PKT_TCP_MIN : proto != IPPROTO_UDP || seg < PKT_UDP_LEN)
		return false;
	sum = pkt_pseudo_sum(ip, proto, seg);
	return pkt_fold(pkt_sum(sum, f + l4, seg)) == 0;
}

/* Raw L4 checksum field of an IPv4 TCP/UDP frame (host order). */
static inline uint16_t pkt_l4_csum_field(const uint8_t *f, size_t len)
{
	size_t l4 = pkt_l4_off(f, len);
	size_t off = f[PKT_IP_OFF + PKT_IP_PROTO] == IPPROTO_TCP ? PKT_TCP_CHECK : PKT_UDP_CHECK;

	return l4 && l4 + off + 2 <= len ? pkt_get16(f + l4 + off) : 0;
}

#endif /* CANARY_TEST_PKT_H */
