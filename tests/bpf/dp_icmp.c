// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ICMP errors about translated flows, both ways.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* ICMP errors about translated flows, both ways. */

#define ROUTER	     PKT_IP4(172, 16, 0, 1) /* a router between client and node */
#define NODE_ADDR    PKT_IP4(10, 0, 0, 1)   /* the node's own address */
#define QUOTE_LINUX  548		    /* what Linux quotes */
#define QUOTE_RFC792 (PKT_IP_MIN + 8)	    /* IP header and 8 bytes */

static const char icmp_big[1200] = "a large response segment";

/* A flow through the programs, with its handshake where it has one. */
static void icmp_flow(struct flow *f, struct path *p, const struct svc_def *d, __u16 cport)
{
	flow_init(f, p, d, CLIENT_A, cport);
	if (d->key.proto == IPPROTO_TCP)
		flow_establish(f);
	else
		flow_open(f);
}

/*
 * The frame must be exactly the error built from scratch about the datagram
 * as the other side sent it: every address, port and checksum (outer IP,
 * ICMP, quoted IP, quoted TCP/UDP where quoted) recomputed, nothing else moved.
 */
static void assert_icmp_frame(const struct xfer *x, int ret, __be32 osrc, __be32 odst, __u8 type,
			      __u8 code, const struct pkt_spec *quoted, size_t quote_max)
{
	__u8 want[PKT_MAX];
	size_t len =
		pkt_build_icmp_about(want, sizeof(want), osrc, odst, type, code, quoted, quote_max);

	assert_int_equal(x->ret, ret);
	assert_int_equal(x->out_len, len);
	assert_true(pkt_ipv4_csum_ok(x->out, x->out_len));
	assert_true(pkt_l4_csum_ok(x->out, x->out_len));
	assert_memory_equal(x->out, want, len);
}

/*
 * Ingress: an error sent to the VIP about a reply (VIP -> client) reaches
 * the backend, quoting what the backend sent.
 */
static void icmp_in_case(struct path *p, const struct svc_def *d, __u16 cport, __u8 type, __u8 code,
			 size_t quote_max)
{
	__u64 before = reason(CANARY_R_ICMP_ERROR_IN), others;
	struct pkt_spec reply;
	struct xfer x = { 0 };
	struct flow f;

	icmp_flow(&f, p, d, cport);
	flow_spec(&f, true, PKT_TCP_ACK, icmp_big, sizeof(icmp_big), &reply);
	reply.saddr = d->key.vip; /* as the client's side saw it */
	reply.sport = d->key.port;
	x.in_len = (__u32)pkt_build_icmp_about(x.in, sizeof(x.in), ROUTER, d->key.vip, type, code,
					       &reply, quote_max);
	assert_true(x.in_len > 0);
	others = reasons_total() - before;
	prog_run(*p->fd, &x, 1);
	reply.saddr = f.be_addr;
	reply.sport = f.be_port;
	assert_icmp_frame(&x, p->pass, ROUTER, f.be_addr, type, code, &reply, quote_max);
	assert_int_equal(reason(CANARY_R_ICMP_ERROR_IN), before + 1);
	assert_int_equal(reasons_total() - reason(CANARY_R_ICMP_ERROR_IN), others);
}

/*
 * Egress: an error about a request (client -> backend) from src quotes what
 * the client sent (client -> VIP); sent by the backend itself, it comes
 * from the VIP.
 */
static void icmp_out_case(struct path *p, const struct svc_def *d, __u16 cport, __be32 src,
			  __u8 type, __u8 code, size_t quote_max)
{
	__u64 before = reason(CANARY_R_ICMP_ERROR_OUT);
	struct pkt_spec req;
	struct xfer x = { 0 };
	struct flow f;
	bool from_be;

	icmp_flow(&f, p, d, cport);
	from_be = src == 0;
	if (from_be)
		src = f.be_addr;
	flow_spec(&f, false, PKT_TCP_ACK, icmp_big, sizeof(icmp_big), &req);
	req.daddr = f.be_addr; /* as the node forwarded it */
	req.dport = f.be_port;
	x.in_len = (__u32)pkt_build_icmp_about(x.in, sizeof(x.in), src, f.client, type, code, &req,
					       quote_max);
	assert_true(x.in_len > 0);
	prog_run(fx.tc_eg_fd, &x, 1);
	req.daddr = d->key.vip;
	req.dport = d->key.port;
	assert_icmp_frame(&x, TC_ACT_OK, from_be ? d->key.vip : src, f.client, type, code, &req,
			  quote_max);
	assert_int_equal(reason(CANARY_R_ICMP_ERROR_OUT), before + 1);
}

/* Fragmentation needed, quoted at length and as RFC 792 asks, to the VIP. */
static void test_icmp_frag_needed_in(void **state)
{
	icmp_in_case(test_path(state), &web_def, 41001, 3, 4, QUOTE_LINUX);
	icmp_in_case(test_path(state), &web_def, 41002, 3, 4, QUOTE_RFC792);
	icmp_in_case(test_path(state), &web_def, 41003, 11, 0, QUOTE_LINUX);
	icmp_in_case(test_path(state), &web_def, 41004, 12, 0, QUOTE_LINUX);
}

/* The node's own fragmentation needed (the backend's link is smaller). */
static void test_icmp_frag_needed_out(void **state)
{
	(void)state;
	icmp_out_case(&tc_path, &web_def, 41011, NODE_ADDR, 3, 4, QUOTE_LINUX);
	icmp_out_case(&tc_path, &web_def, 41012, NODE_ADDR, 3, 4, QUOTE_RFC792);
	icmp_out_case(&tc_path, &web_def, 41013, NODE_ADDR, 11, 0, QUOTE_LINUX);
}

/*
 * Port unreachable on UDP: from the client's host about a reply, and from
 * the backend about a request (the outer source becomes the VIP).
 */
static void test_icmp_port_unreachable_udp(void **state)
{
	icmp_in_case(test_path(state), &dns_def, 41021, 3, 3, QUOTE_LINUX);
	icmp_in_case(test_path(state), &dns_def, 41022, 3, 3, QUOTE_RFC792);
	icmp_out_case(test_path(state), &dns_def, 41023, 0, 3, 3, QUOTE_LINUX);
	icmp_out_case(test_path(state), &dns_def, 41024, 0, 3, 3, QUOTE_RFC792);
}

/* An error quoting no flow of ours passes untouched, counted; so does one about ICMP. */
static void test_icmp_unknown_flow(void **state)
{
	struct path *p = test_path(state);
	struct pkt_spec q = {
		.saddr = web_def.key.vip,
		.daddr = CLIENT_B,
		.sport = web_def.key.port,
		.dport = htons(9999),
		.proto = IPPROTO_TCP,
		.tcp_flags = PKT_TCP_ACK,
		.payload = icmp_big,
		.payload_len = 100,
	};
	struct xfer x = { 0 };

	x.in_len = (__u32)pkt_build_icmp_about(x.in, sizeof(x.in), ROUTER, web_def.key.vip, 3, 4,
					       &q, QUOTE_LINUX);
	prog_run(*p->fd, &x, 1);
	assert_untouched(&x, p->pass);
	assert_int_equal(reason(CANARY_R_ICMP_NO_FLOW), 1);
	assert_int_equal(reasons_total(), 1);
	prog_run(fx.tc_eg_fd, &x, 1);
	assert_untouched(&x, TC_ACT_OK);
	assert_int_equal(reason(CANARY_R_ICMP_NO_FLOW), 2);
	assert_int_equal(reasons_total(), 2);

	q.proto = IPPROTO_ICMP;
	x.in_len = (__u32)pkt_build_icmp_about(x.in, sizeof(x.in), ROUTER, web_def.key.vip, 3, 4,
					       &q, QUOTE_LINUX);
	prog_run(*p->fd, &x, 1);
	assert_untouched(&x, p->pass);
	assert_int_equal(reason(CANARY_R_NOT_TCP_UDP), 1);
	assert_int_equal(reasons_total(), 3);
	assert_nothing_tracked();
}

/* clang-format off */
DP_SUITE(icmp,
	BOTH(test_icmp_frag_needed_in),
	ONCE(test_icmp_frag_needed_out),
	BOTH(test_icmp_port_unreachable_udp),
	BOTH(test_icmp_unknown_flow));
/* clang-format on */
