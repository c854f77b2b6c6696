// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Address translation: SYNs translated and tracked in every header layout,
 * replies restored, UDP flows and their checksums.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* A new connection: SYN translated and tracked, SYN-ACK restored. */

static void assert_new_flow_entries(const struct flow *f, __u32 syn_seq)
{
	struct canary_ct_key k = flow_fwd_key(f);
	struct canary_ct_entry e;

	assert_true(ct_get(&k, &e));
	assert_int_equal(e.nat_addr, f->be_addr);
	assert_int_equal(e.nat_port, f->be_port);
	assert_int_equal(e.version, f->version);
	assert_int_equal(e.svc_id, f->svc->id);
	assert_int_equal(e.flags, CANARY_CT_F_HTTP | CANARY_CT_F_CSEQ_VALID);
	assert_int_equal(e.client_seq_end, syn_seq + 1);
	assert_true(e.created_ns > 0 && e.last_seen_ns >= e.created_ns);

	k = flow_rev_key(f);
	assert_true(ct_get(&k, &e));
	assert_int_equal(e.flags, CANARY_CT_F_REVERSE);
	assert_int_equal(e.nat_addr, f->svc->key.vip);
	assert_int_equal(e.nat_port, f->svc->key.port);
	assert_int_equal(e.version, f->version);
	assert_int_equal(e.svc_id, f->svc->id);
	assert_int_equal(ct_count(), 2);
}

static void test_syn_translated(void **state)
{
	struct flow f;
	__u32 syn_seq;
	int v;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 40000);
	syn_seq = f.cseq;
	v = flow_open(&f);
	assert_new_flow_entries(&f, syn_seq);
	assert_int_equal(opened(SVC_WEB_ID, v), 1);
	assert_int_equal(opened(SVC_WEB_ID, !v), 0);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
	assert_int_equal(reasons_total(), 1);
	assert_flow_traffic(&f);
}

static void test_synack_restored(void **state)
{
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct flow f;
	__u32 server_isn;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 40001);
	flow_open(&f);
	server_isn = f.sseq;
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	assert_true(e.flags & CANARY_CT_F_ESTABLISHED);
	assert_true(e.flags & CANARY_CT_F_SSEQ_VALID);
	assert_int_equal(e.server_seq_end, server_isn + 1);
	assert_int_equal(reason(CANARY_R_REPLY), 1);
	assert_int_equal(reasons_total(), 2);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_FORWARD), 1);
	assert_flow_traffic(&f);
}

/*
 * SYNs in unusual but valid layouts are translated just the same (the IP
 * options and the 40 bytes of TCP NOPs are in harness.c).
 */
static const __u8 tcp_opt_syn[20] = {
	0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

struct layout {
	const char *name;
	const __u8 *ip_opts;
	__u8 ip_opts_len;
	const __u8 *tcp_opts;
	__u8 tcp_opts_len;
	size_t pad_to;
};

static const struct layout syn_layouts[] = {
	{ "plain", NULL, 0, NULL, 0, 0 },
	{ "ethernet padding", NULL, 0, NULL, 0, 60 },
	{ "ihl 6", ip_opt_ra, sizeof(ip_opt_ra), tcp_opt_syn, sizeof(tcp_opt_syn), 0 },
	{ "ihl 15", ip_opt_40, sizeof(ip_opt_40), NULL, 0, 0 },
	{ "ihl 15 doff 15", ip_opt_40, sizeof(ip_opt_40), tcp_opt_40, sizeof(tcp_opt_40), 0 },
};

static void syn_layout_case(struct path *p, const struct layout *l, __u16 cport)
{
	struct pkt_spec s;
	struct flow f;
	struct xfer x;

	flow_init(&f, p, &web_def, CLIENT_A, cport);
	f.ip_opts = l->ip_opts;
	f.ip_opts_len = l->ip_opts_len;
	f.tcp_opts = l->tcp_opts;
	f.tcp_opts_len = l->tcp_opts_len;
	flow_spec(&f, false, PKT_TCP_SYN, NULL, 0, &s);
	s.pad_to = l->pad_to;
	build(&x, &s);
	prog_run(*p->fd, &x, 1);
	assert_int_equal(x.ret, p->pass);
	f.be_addr = out_daddr(&x);
	f.be_port = out_dport(&x);
	f.version = be_version(&web_def, f.be_addr, f.be_port);
	assert_true(f.version >= 0);
	assert_nat(&x, true, f.be_addr, f.be_port);
	assert_int_equal(x.out_len, l->pad_to ? l->pad_to : x.in_len);
	f.cseq++;
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
}

static void test_syn_layouts(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(syn_layouts) / sizeof(syn_layouts[0]); i++) {
		print_message("  layout: %s\n", syn_layouts[i].name);
		syn_layout_case(test_path(state), &syn_layouts[i], (__u16)(41000 + i));
	}
	assert_int_equal(opened(SVC_WEB_ID, 0) + opened(SVC_WEB_ID, 1), 5);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 5);
	assert_int_equal(reason(CANARY_R_REPLY), 5);
}

/* ------------------------------------------------------------------------ */
/* UDP: per-flow affinity, checksums, and checksum 0 left alone. */

static void test_udp_affinity(void **state)
{
	struct flow f, g;
	int i;

	flow_init(&f, test_path(state), &dns_def, CLIENT_A, 45000);
	flow_open(&f);
	for (i = 1; i < 100; i++) {
		flow_send(&f, 0, TXT("query"));
		if (i % 10 == 0)
			flow_reply(&f, 0, TXT("answer"));
	}
	assert_int_equal(opened(SVC_DNS_ID, f.version), 1);
	assert_int_equal(opened(SVC_DNS_ID, !f.version), 0);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
	assert_int_equal(reason(CANARY_R_FORWARD), 99);
	assert_int_equal(reason(CANARY_R_REPLY), 9);
	assert_flow_traffic(&f);

	/* Other client ports are other flows: they spread over the backends. */
	for (i = 1; i < 64; i++) {
		flow_init(&g, test_path(state), &dns_def, CLIENT_A, (__u16)(45000 + i));
		flow_open(&g);
	}
	assert_int_equal(opened(SVC_DNS_ID, 0) + opened(SVC_DNS_ID, 1), 64);
	assert_true(opened(SVC_DNS_ID, 0) > 0 && opened(SVC_DNS_ID, 1) > 0);
}

static void udp_csum_zero_case(struct flow *f)
{
	struct pkt_spec s;
	struct xfer x;

	flow_spec(f, false, 0, TXT("no checksum"), &s);
	build(&x, &s);
	assert_int_equal(pkt_l4_csum_field(x.in, x.in_len), 0);
	prog_run(*f->path->fd, &x, 1);
	assert_int_equal(x.ret, f->path->pass);
	assert_nat(&x, true, f->be_addr, f->be_port);
	assert_int_equal(pkt_l4_csum_field(x.out, x.out_len), 0);

	flow_spec(f, true, 0, TXT("no checksum back"), &s);
	build(&x, &s);
	prog_run(fx.tc_eg_fd, &x, 1);
	assert_int_equal(x.ret, TC_ACT_OK);
	assert_nat(&x, false, f->svc->key.vip, f->svc->key.port);
	assert_int_equal(pkt_l4_csum_field(x.out, x.out_len), 0);
}

static void test_udp_csum_zero(void **state)
{
	struct flow f;

	flow_init(&f, test_path(state), &dns_def, CLIENT_B, 45100);
	f.udp_no_csum = true;
	flow_open(&f);
	udp_csum_zero_case(&f);
	udp_csum_zero_case(&f);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
	assert_int_equal(reason(CANARY_R_FORWARD), 2);
	assert_int_equal(reason(CANARY_R_REPLY), 2);
}

/* clang-format off */
DP_SUITE(nat,
	BOTH(test_syn_translated),
	BOTH(test_synack_restored),
	BOTH(test_syn_layouts),
	BOTH(test_udp_affinity),
	BOTH(test_udp_csum_zero));
/* clang-format on */
