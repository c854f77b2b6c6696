// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packets of real networks: GRO and BIG TCP, and IPv4 fragments.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* Packets of real networks: GRO and BIG TCP, fragments, failed inserts. */

/* Run a tc program on x as a GSO packet of gso_size bytes a segment. */
static int prog_run_gso(int fd, struct xfer *x, __u32 gso_size)
{
	struct __sk_buff ctx = { .gso_size = gso_size, .gso_segs = 2 };
	struct bpf_test_run_opts o = {
		.sz = sizeof(o),
		.data_in = x->in,
		.data_size_in = x->in_len,
		.data_out = x->out,
		.data_size_out = sizeof(x->out),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = 1,
	};

	assert_int_equal(bpf_prog_test_run_opts(fd, &o), 0);
	x->out_len = o.data_size_out;
	x->ret = (int)o.retval;
	return x->ret;
}

/*
 * An IPv4 BIG TCP packet (GRO or TSO beyond 64 KB) carries total length 0:
 * its length is the skb's. Checked with the real length put back, since
 * pkt.h's verifiers read the segment length from the header.
 */
static void assert_nat_big_tcp(const struct xfer *x, bool dst, __be32 addr, __be16 port)
{
	struct xfer real = *x;
	__u16 len = (__u16)(x->in_len - PKT_ETH_LEN);
	__u8 *ips[2] = { real.in + PKT_IP_OFF, real.out + PKT_IP_OFF };
	int i;

	for (i = 0; i < 2; i++) {
		pkt_put16(ips[i] + PKT_IP_TOT_LEN, len);
		pkt_put16(ips[i] + PKT_IP_CHECK, 0);
		pkt_put16(ips[i] + PKT_IP_CHECK, pkt_fold(pkt_sum(0, ips[i], PKT_IP_MIN)));
	}
	assert_nat(&real, dst, addr, port);
	assert_int_equal(pkt_get16(x->out + PKT_IP_OFF + PKT_IP_TOT_LEN), 0);
	assert_true(pkt_ipv4_csum_ok(x->out, x->out_len));
}

/* A frame of flow f, as flow_spec() makes it, with total length 0. */
static void big_tcp_frame(const struct flow *f, bool egress, struct xfer *x)
{
	static char data[1200];
	struct pkt_spec s;
	__u8 *ip;

	memset(data, 'b', sizeof(data));
	flow_spec(f, egress, PKT_TCP_ACK, data, sizeof(data), &s);
	build(x, &s);
	ip = x->in + PKT_IP_OFF;
	pkt_put16(ip + PKT_IP_TOT_LEN, 0);
	pkt_put16(ip + PKT_IP_CHECK, 0);
	pkt_put16(ip + PKT_IP_CHECK, pkt_fold(pkt_sum(0, ip, PKT_IP_MIN)));
}

static void test_big_tcp(void **state)
{
	struct canary_metrics m;
	struct flow f;
	struct xfer x;

	(void)state;
	flow_init(&f, &tc_path, &web_def, CLIENT_A, 53000);
	flow_establish(&f);
	big_tcp_frame(&f, false, &x);
	assert_int_equal(prog_run_gso(fx.tc_in_fd, &x, 1448), TC_ACT_OK);
	assert_nat_big_tcp(&x, true, f.be_addr, f.be_port);
	assert_int_equal(reason(CANARY_R_MALFORMED), 0);
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.bytes_in, f.bytes_in + x.in_len - PKT_ETH_LEN);

	big_tcp_frame(&f, true, &x);
	assert_int_equal(prog_run_gso(fx.tc_eg_fd, &x, 1448), TC_ACT_OK);
	assert_nat_big_tcp(&x, false, f.svc->key.vip, f.svc->key.port);
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.bytes_out, f.bytes_out + x.in_len - PKT_ETH_LEN);

	/* Without GSO, total length 0 is a broken header. */
	big_tcp_frame(&f, false, &x);
	prog_run(fx.tc_in_fd, &x, 1);
	assert_untouched(&x, TC_ACT_OK);
	assert_int_equal(reason(CANARY_R_MALFORMED), 1);
}

static void ip_csum_fix(__u8 *frame)
{
	__u8 *ip = frame + PKT_IP_OFF;
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;

	pkt_put16(ip + PKT_IP_CHECK, 0);
	pkt_put16(ip + PKT_IP_CHECK, pkt_fold(pkt_sum(0, ip, ihl)));
}

/* Fragment of the L4 bytes [off, off + len) of the unfragmented frame whole. */
static void frag_cut(const struct xfer *whole, size_t off, size_t len, bool more, struct xfer *x)
{
	size_t l4 = pkt_l4_off(whole->in, whole->in_len);
	__u8 *ip;

	assert_true(l4 > 0 && off % 8 == 0 && l4 + off + len <= whole->in_len);
	memcpy(x->in, whole->in, l4);
	ip = x->in + PKT_IP_OFF;
	memcpy(x->in + l4, whole->in + l4 + off, len);
	x->in_len = (__u32)(l4 + len);
	pkt_put16(ip + PKT_IP_TOT_LEN, (__u16)(l4 - PKT_IP_OFF + len));
	pkt_put16(ip + PKT_IP_FRAG, (__u16)((more ? PKT_IP_MF : 0) | off / 8));
	ip_csum_fix(x->in);
}

/* The output fragments put back together, as the receiver reassembles them. */
static void frag_join(const struct xfer *parts, size_t n, struct xfer *joined)
{
	size_t l4 = pkt_l4_off(parts[0].out, parts[0].out_len);
	size_t i, len = l4;

	memcpy(joined->out, parts[0].out, l4);
	for (i = 0; i < n; i++) {
		size_t off = (size_t)(pkt_get16(parts[i].out + PKT_IP_OFF + PKT_IP_FRAG) &
				      PKT_IP_OFFMASK) *
			     8;
		size_t part = parts[i].out_len - l4;

		assert_true(l4 + off + part <= sizeof(joined->out));
		memcpy(joined->out + l4 + off, parts[i].out + l4, part);
		len = len > l4 + off + part ? len : l4 + off + part;
	}
	joined->out_len = (__u32)len;
	pkt_put16(joined->out + PKT_IP_OFF + PKT_IP_TOT_LEN, (__u16)(len - PKT_IP_OFF));
	pkt_put16(joined->out + PKT_IP_OFF + PKT_IP_FRAG, 0);
	ip_csum_fix(joined->out);
}

#define N_FRAGS 3

/*
 * One UDP datagram of flow f in N_FRAGS fragments through prog: each is
 * rewritten (address and IP checksum; ports and L4 checksum in the first),
 * and the reassembled datagram carries addr:port with a valid checksum.
 */
static void frag_datagram_case(struct flow *f, bool egress, int prog, int pass)
{
	static const size_t cut[N_FRAGS + 1] = { 0, 80, 160, 8 + 200 };
	struct xfer whole, parts[N_FRAGS], joined;
	__be32 addr = egress ? f->svc->key.vip : f->be_addr;
	__be16 port = egress ? f->svc->key.port : f->be_port;
	char data[200];
	struct pkt_spec s;
	size_t i, a_off = PKT_IP_OFF + (egress ? PKT_IP_SADDR : PKT_IP_DADDR);

	memset(data, 'f', sizeof(data));
	flow_spec(f, egress, 0, data, sizeof(data), &s);
	s.frag = 0;
	s.ip_id = (__u16)(0x4000 + f->pkts_in + f->pkts_out);
	build(&whole, &s);
	for (i = 0; i < N_FRAGS; i++) {
		frag_cut(&whole, cut[i], cut[i + 1] - cut[i], i + 1 < N_FRAGS, &parts[i]);
		prog_run(prog, &parts[i], 1);
		assert_int_equal(parts[i].ret, pass);
		assert_int_equal(parts[i].out_len, parts[i].in_len);
		assert_int_equal(pkt_be32_at(parts[i].out + a_off), addr);
		assert_true(pkt_ipv4_csum_ok(parts[i].out, parts[i].out_len));
		if (i > 0) /* past the IP header, a later fragment is left as it was */
			assert_memory_equal(parts[i].out + PKT_ETH_LEN + PKT_IP_MIN,
					    parts[i].in + PKT_ETH_LEN + PKT_IP_MIN,
					    parts[i].in_len - PKT_ETH_LEN - PKT_IP_MIN);
	}
	frag_join(parts, N_FRAGS, &joined);
	memcpy(joined.in, whole.in, whole.in_len);
	joined.in_len = whole.in_len;
	assert_nat(&joined, !egress, addr, port);
	if (egress) {
		f->pkts_out += N_FRAGS;
		f->bytes_out += whole.in_len - PKT_ETH_LEN + (N_FRAGS - 1) * PKT_IP_MIN;
	} else {
		f->pkts_in += N_FRAGS;
		f->bytes_in += whole.in_len - PKT_ETH_LEN + (N_FRAGS - 1) * PKT_IP_MIN;
	}
}

/*
 * A UDP datagram larger than the path MTU arrives in fragments; only the
 * first carries the ports. All of them go to the flow's backend, and the
 * fragments of the answer all get the VIP back. A later fragment whose first
 * one was never seen cannot be placed and passes untouched.
 */
static void test_udp_fragments(void **state)
{
	struct pkt_spec s;
	struct xfer whole, x;
	struct flow f;

	flow_init(&f, test_path(state), &dns_def, CLIENT_A, 45200);
	flow_open(&f);
	frag_datagram_case(&f, false, *f.path->fd, f.path->pass);
	frag_datagram_case(&f, true, fx.tc_eg_fd, TC_ACT_OK);
	frag_datagram_case(&f, false, *f.path->fd, f.path->pass);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
	assert_int_equal(reason(CANARY_R_FORWARD), 2 * N_FRAGS);
	assert_int_equal(reason(CANARY_R_REPLY), N_FRAGS);
	assert_int_equal(reason(CANARY_R_FRAGMENT), 0);
	assert_flow_traffic(&f);

	flow_spec(&f, false, 0, frag_data, sizeof(frag_data), &s);
	s.frag = 0;
	s.ip_id = 0x7777;
	build(&whole, &s);
	frag_cut(&whole, 16, 32, true, &x);
	prog_run(*f.path->fd, &x, 1);
	assert_untouched(&x, f.path->pass);
	assert_int_equal(reason(CANARY_R_FRAGMENT), 1);
}

/* clang-format off */
DP_SUITE(frags,
	ONCE(test_big_tcp),
	BOTH(test_udp_fragments));
/* clang-format on */
