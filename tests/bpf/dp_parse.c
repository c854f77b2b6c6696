// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Parsing: frames that are not ours pass untouched with their reason
 * counted, and tc and XDP ingress give byte-identical results.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* Robustness: what is not ours passes untouched, with the reason counted. */

enum frame_kind {
	FK_SPEC = 0,
	FK_ARP,
	FK_IPV6,
};

struct frame_def {
	const char *name;
	enum frame_kind kind;
	struct pkt_spec s;
	size_t keep;		     /* 0: whole frame, else a capture cut to this many bytes */
	void (*mangle)(__u8 *frame); /* break a header field after building */
	int reason;		     /* what tc/XDP ingress must count */
	bool short_l3;		     /* less than 20 bytes of IPv4 header: see prog_try() */
	const char *bug;	     /* known program bug that makes this case fail */
};

static void mangle_version(__u8 *f)
{
	f[PKT_IP_OFF] = (__u8)(0x50 | (f[PKT_IP_OFF] & 0x0f));
}

static void mangle_ihl_4(__u8 *f)
{
	f[PKT_IP_OFF] = 0x44;
}

static void mangle_tot_len(__u8 *f)
{
	pkt_put16(f + PKT_IP_OFF + PKT_IP_TOT_LEN, 16);
}

static void mangle_doff_4(__u8 *f)
{
	f[PKT_IP_OFF + PKT_IP_MIN + 12] = 0x40;
}

static void mangle_doff_15(__u8 *f)
{
	f[PKT_IP_OFF + PKT_IP_MIN + 12] = 0xf0;
}

/* A table entry: name, reason counted on ingress, then the pkt_spec fields. */
#define FRAME(name_, reason_, ...) .name = (name_), .reason = (reason_), .s = { __VA_ARGS__ }
static const struct frame_def odd_frames[] = {
	{ FRAME("unknown VIP", CANARY_R_NO_SERVICE, SYN_TO(NOT_A_VIP, 80)) },
	{ FRAME("VIP, other port", CANARY_R_NO_SERVICE, SYN_TO(VIP_WEB, 8080)) },
	{ FRAME("VIP, other proto", CANARY_R_NO_SERVICE, UDP_TO(VIP_WEB, 80, 43001), QUERY) },
	{ FRAME("UDP to a non-VIP", CANARY_R_NO_SERVICE, UDP_TO(NOT_A_VIP, 53, 43001), QUERY) },
	{ FRAME("ICMP echo to VIP", CANARY_R_NOT_TCP_UDP, .proto = IPPROTO_ICMP, .saddr = CLIENT_A,
		.daddr = VIP_WEB, .payload = "ping", .payload_len = 4) },
	{ FRAME("GRE to VIP", CANARY_R_NOT_TCP_UDP, .proto = 47, .saddr = CLIENT_A,
		.daddr = VIP_WEB, .payload = "\0\0\x08\0", .payload_len = 4) },
	{ FRAME("Ethernet header only", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)),
	  .keep = PKT_ETH_LEN, .short_l3 = true },
	{ FRAME("IP header cut", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)), .keep = PKT_ETH_LEN + 10,
	  .short_l3 = true },
	{ FRAME("IP options cut", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80), .ip_opts = ip_opt_40,
		.ip_opts_len = 40),
	  .keep = PKT_ETH_LEN + PKT_IP_MIN + 30 },
	{ FRAME("TCP header cut", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)),
	  .keep = PKT_ETH_LEN + PKT_IP_MIN + 12 },
	{ FRAME("UDP header cut", CANARY_R_MALFORMED, UDP_TO(VIP_DNS, 53, 43001), QUERY),
	  .keep = PKT_ETH_LEN + PKT_IP_MIN + 6 },
	{ FRAME("IP version 5", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)),
	  .mangle = mangle_version },
	{ FRAME("IHL 4", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)), .mangle = mangle_ihl_4 },
	{ FRAME("tot_len < IHL", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)),
	  .mangle = mangle_tot_len },
	{ FRAME("TCP doff 4", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)), .mangle = mangle_doff_4 },
	{ FRAME("TCP doff past datagram", CANARY_R_MALFORMED, SYN_TO(VIP_WEB, 80)),
	  .mangle = mangle_doff_15 },
	/* Fragments whose first fragment was never seen (test_udp_fragments has the rest). */
	{ FRAME("middle fragment", CANARY_R_FRAGMENT, SYN_TO(VIP_WEB, 80), .frag = PKT_IP_MF | 10,
		FRAG_DATA) },
	{ FRAME("last fragment", CANARY_R_FRAGMENT, UDP_TO(VIP_DNS, 53, 43001), .frag = 185,
		FRAG_DATA) },
	{ FRAME("VIP without backends", CANARY_R_NO_BACKEND, SYN_TO(VIP_EMPTY, 80)) },
};

#define N_ODD (sizeof(odd_frames) / sizeof(odd_frames[0]))

/* Frames that are not IPv4 at all. */
#define NOT_IPV4_BUG "CANARY_R_NOT_IPV4 is 0, parse_ipv4()'s success value"

static const struct frame_def non_ipv4_frames[] = {
	{ FRAME("ARP", CANARY_R_NOT_IPV4, .saddr = CLIENT_A, .daddr = VIP_WEB), .kind = FK_ARP,
	  .bug = NOT_IPV4_BUG },
	{ FRAME("IPv6 TCP", CANARY_R_NOT_IPV4, SYN_TO(0, 80)), .kind = FK_IPV6,
	  .bug = NOT_IPV4_BUG },
	{ FRAME("VLAN-tagged", CANARY_R_NOT_IPV4, SYN_TO(VIP_WEB, 80), .eth_proto = 0x8100),
	  .bug = NOT_IPV4_BUG },
};

#define N_NON_IPV4 (sizeof(non_ipv4_frames) / sizeof(non_ipv4_frames[0]))

static void frame_build(const struct frame_def *d, struct xfer *x)
{
	static const __u8 v6_src[16] = { 0xfd, 0, [15] = 1 };
	static const __u8 v6_dst[16] = { 0xfd, 0, [15] = 2 };
	size_t len;

	if (d->kind == FK_ARP)
		len = pkt_build_arp(x->in, sizeof(x->in), d->s.saddr, d->s.daddr);
	else if (d->kind == FK_IPV6)
		len = pkt_build_ipv6_tcp(x->in, sizeof(x->in), v6_src, v6_dst, d->s.sport,
					 d->s.dport, d->s.tcp_flags);
	else if (d->keep)
		len = pkt_build_truncated(x->in, sizeof(x->in), &d->s, d->keep);
	else
		len = pkt_build(x->in, sizeof(x->in), &d->s);
	assert_true(len > 0);
	if (d->mangle)
		d->mangle(x->in);
	x->in_len = (__u32)len;
}

#define ODD_REPEAT 4

/* clang-format off */
static const char *const reason_names[CANARY_R_COUNT] = {
	"NOT_IPV4", "MALFORMED", "FRAGMENT", "NOT_TCP_UDP", "NO_SERVICE", "NO_BACKEND",
	"CT_MISS_NON_SYN", "CT_FULL", "NEW_FLOW", "FORWARD", "REPLY", "OPAQUE",
	"RESET_STEERED", "REPLY_NO_FORWARD", "CT_RESTEERED", "SVC_STALE", "ICMP_ERROR_IN",
	"ICMP_ERROR_OUT", "ICMP_NO_FLOW",
};

/* clang-format on */
/* Exactly ODD_REPEAT counts of the frame's reason and nothing else, or say what was counted. */
static void assert_only_reason(const struct frame_def *d)
{
	int want = d->reason;
	__u64 all[CANARY_R_COUNT];
	char got[256] = "";
	size_t used = 0;
	bool ok = true;
	int r;

	reasons_read(all);
	for (r = 0; r < CANARY_R_COUNT; r++) {
		if (all[r] != (r == want ? ODD_REPEAT : 0))
			ok = false;
		if (all[r] && used < sizeof(got))
			used += (size_t)snprintf(got + used, sizeof(got) - used, " %s=%llu",
						 reason_names[r], (unsigned long long)all[r]);
	}
	if (!ok)
		fail_msg("%s: want %s=%d only, counted:%s%s%s", d->name, reason_names[want],
			 ODD_REPEAT, got, d->bug ? " -- known bug: " : "", d->bug ? d->bug : "");
}

/* A short frame the kernel refused for fd: tell, and check nothing happened. */
static bool refused_short(const struct frame_def *d, int fd, struct xfer *x, __u32 repeat)
{
	int err = prog_try(fd, x, repeat);

	if (!err)
		return false;
	assert_true(d->short_l3);
	assert_int_equal(err, -EINVAL);
	print_message("    (kernel refuses this frame for tc test runs)\n");
	return true;
}

static void odd_frame_ingress(struct path *p, const struct frame_def *d)
{
	struct xfer x;

	print_message("  %s\n", d->name);
	reset_maps(NULL);
	frame_build(d, &x);
	if (refused_short(d, *p->fd, &x, ODD_REPEAT)) {
		assert_int_equal(reasons_total(), 0);
		return;
	}
	assert_untouched(&x, p->pass);
	assert_only_reason(d);
	assert_nothing_tracked();
}

static void test_odd_frames_ingress(void **state)
{
	size_t i;

	for (i = 0; i < N_ODD; i++)
		odd_frame_ingress(test_path(state), &odd_frames[i]);
}

/*
 * BUG (bpf/lib/parse.h + canary_consts.h): CANARY_R_NOT_IPV4 is 0, which is
 * also parse_ipv4()'s "parsed, go on" value. A non-IPv4 frame is therefore
 * treated as parsed with an all-zero tuple: it is looked up in conntrack and
 * services and counted as NO_SERVICE, never as NOT_IPV4. This test fails
 * until the program is fixed.
 */
static void test_non_ipv4_ingress(void **state)
{
	size_t i;

	for (i = 0; i < N_NON_IPV4; i++)
		odd_frame_ingress(test_path(state), &non_ipv4_frames[i]);
}

/* Egress restores only what has a reverse entry; the rest is not even counted. */
/*
 * Egress leaves what it cannot read untouched too. An IPv4 TCP/UDP packet
 * it cannot parse (even after pulling the skb's data) would leave with a
 * backend's address if it were a reply: it counts its reason, so that shows.
 * Everything else egress sees is not a reply and counts nothing.
 */
static bool egress_counts(int reason)
{
	return reason == CANARY_R_MALFORMED || reason == CANARY_R_FRAGMENT;
}

static void odd_frames_egress(const struct frame_def *d, size_t n)
{
	struct xfer x;
	size_t i;

	for (i = 0; i < n; i++) {
		reset_maps(NULL);
		frame_build(&d[i], &x);
		if (refused_short(&d[i], fx.tc_eg_fd, &x, ODD_REPEAT))
			continue;
		assert_untouched(&x, TC_ACT_OK);
		assert_int_equal(reasons_total(), ODD_REPEAT * egress_counts(d[i].reason));
		assert_int_equal(reason(d[i].reason), ODD_REPEAT * egress_counts(d[i].reason));
		assert_nothing_tracked();
	}
}

static void test_odd_frames_egress(void **state)
{
	(void)state;
	odd_frames_egress(odd_frames, N_ODD);
	odd_frames_egress(non_ipv4_frames, N_NON_IPV4);
}

/*
 * Frames shorter than an Ethernet header cannot reach the programs through
 * BPF_PROG_TEST_RUN (6.18 refuses them for tc and XDP, metadata or not).
 * Should a kernel let one through, it must pass untouched as MALFORMED.
 */
static void test_truncated_ethernet(void **state)
{
	static const __u8 frame[PKT_ETH_LEN] = { 0x02, [5] = 0x01, 0x02, [11] = 0x02, 0x08 };
	struct path *paths[] = { &tc_path, &xdp_path };
	struct xfer x;
	size_t i, len;
	int err;

	(void)state;
	memset(&x, 0, sizeof(x));
	for (i = 0; i < 2; i++)
		for (len = 1; len < PKT_ETH_LEN; len++) {
			memcpy(x.in, frame, len);
			x.in_len = (__u32)len;
			err = prog_try(*paths[i]->fd, &x, 1);
			if (err) {
				assert_int_equal(err, -EINVAL);
				continue;
			}
			assert_untouched(&x, paths[i]->pass);
			assert_int_equal(reason(CANARY_R_MALFORMED), 1);
			reset_maps(NULL);
		}
	print_message("  frames of 1..13 bytes: refused by BPF_PROG_TEST_RUN for tc and XDP\n");
	assert_nothing_tracked();
}

/* Client FIN and RST of a tracked flow are translated like any packet of it. */
static void test_fin_rst_forwarded(void **state)
{
	struct flow a, b;

	flow_init(&a, test_path(state), &web_def, CLIENT_A, 44000);
	flow_establish(&a);
	flow_send(&a, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	assert_true(flow_flags(&a) & CANARY_CT_F_FIN_SEEN);
	flow_send(&a, PKT_TCP_ACK, NULL, 0); /* the last ACK still goes to the backend */

	flow_init(&b, test_path(state), &web_def, CLIENT_B, 44001);
	flow_establish(&b);
	flow_send(&b, PKT_TCP_RST, NULL, 0);
	assert_false(flow_flags(&b) & CANARY_CT_F_FIN_SEEN);
	/* A client's RST is not the backend resetting the connection. */
	assert_int_equal(flow_conns_reset(&b), 0);
	assert_int_equal(reason(CANARY_R_FORWARD), 2 + 2 + 1);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 2);
	assert_int_equal(opened(SVC_WEB_ID, 0) + opened(SVC_WEB_ID, 1), 2);
	assert_int_equal(reasons_total(), 2 + 2 + 5);
}

/* ------------------------------------------------------------------------ */
/* XDP and tc ingress: byte-identical output, identical map effects. */

struct step {
	bool egress;
	struct frame_def f;
};

struct scenario {
	const char *name;
	__u16 solo_weight;
	const struct step *steps;
	size_t n;
};

#define SOLO_IN(flags_, seq_, ack_)                                                           \
	.proto = IPPROTO_TCP, .saddr = CLIENT_A, .sport = PKT_BE16(40001), .daddr = VIP_SOLO, \
	.dport = PKT_BE16(80), .tcp_flags = (flags_), .seq = (seq_), .ack = (ack_)
#define SOLO_OUT(be, port, flags_, seq_, ack_)                                           \
	.proto = IPPROTO_TCP, .saddr = (be), .sport = PKT_BE16(port), .daddr = CLIENT_A, \
	.dport = PKT_BE16(40001), .tcp_flags = (flags_), .seq = (seq_), .ack = (ack_)
/* clang-format off */
#define IN(...) { .egress = false, .f = { .s = { __VA_ARGS__ } } }
#define OUT(...) { .egress = true, .f = { .s = { __VA_ARGS__ } } }
/* clang-format on */
#define GET   .payload = http_get, .payload_len = sizeof(http_get) - 1
#define OK200 .payload = http_200, .payload_len = sizeof(http_200) - 1

static const struct step http_canary_steps[] = {
	IN(SOLO_IN(PKT_TCP_SYN, 100, 0)),
	OUT(SOLO_OUT(PKT_IP4(10, 0, 2, 50), 9090, PKT_TCP_SYN | PKT_TCP_ACK, 5000, 101)),
	IN(SOLO_IN(PKT_TCP_ACK, 101, 5001)),
	IN(SOLO_IN(PKT_TCP_ACK | PKT_TCP_PSH, 101, 5001), GET),
	OUT(SOLO_OUT(PKT_IP4(10, 0, 2, 50), 9090, PKT_TCP_ACK, 5001, 128), OK200),
	IN(SOLO_IN(PKT_TCP_ACK | PKT_TCP_PSH, 101, 5001), GET),
	IN(SOLO_IN(PKT_TCP_FIN | PKT_TCP_ACK, 128, 5041)),
	OUT(SOLO_OUT(PKT_IP4(10, 0, 2, 50), 9090, PKT_TCP_RST, 5041, 0)),
	IN(SOLO_IN(PKT_TCP_SYN, 9000, 0)),
};

static const struct step tls_stable_steps[] = {
	IN(SOLO_IN(PKT_TCP_SYN, 100, 0), .ip_opts = ip_opt_ra, .ip_opts_len = 4),
	OUT(SOLO_OUT(PKT_IP4(10, 0, 1, 50), 8080, PKT_TCP_SYN | PKT_TCP_ACK, 5000, 101)),
	IN(SOLO_IN(PKT_TCP_ACK | PKT_TCP_PSH, 101, 5001), .payload = tls_hello,
	   .payload_len = sizeof(tls_hello)),
	OUT(SOLO_OUT(PKT_IP4(10, 0, 1, 50), 8080, PKT_TCP_RST | PKT_TCP_ACK, 5001, 125)),
	IN(SOLO_IN(PKT_TCP_ACK, 125, 5001), .pad_to = 60),
};

static const struct step mixed_steps[] = {
	IN(SYN_TO(VIP_WEB, 80), .ip_opts = ip_opt_40, .ip_opts_len = 40, .tcp_opts = tcp_opt_40,
	   .tcp_opts_len = 40),
	IN(TCP_TO(VIP_WEB, 80, 43002, PKT_TCP_SYN), .pad_to = 60),
	IN(TCP_TO(VIP_WEB, 80, 43003, PKT_TCP_ACK), GET),
	IN(UDP_TO(VIP_DNS, 53, 43001), QUERY),
	IN(UDP_TO(VIP_DNS, 53, 43001), QUERY),
	IN(UDP_TO(VIP_DNS, 53, 43004), QUERY, .udp_no_csum = true),
	IN(SYN_TO(VIP_EMPTY, 80)),
};

/* clang-format off */
#define SCENARIO(name, weight, steps) { name, weight, steps, sizeof(steps) / sizeof(steps[0]) }
/* clang-format on */

static const struct scenario scenarios[] = {
	SCENARIO("http canary flow", CANARY_WEIGHT_MAX, http_canary_steps),
	SCENARIO("tls stable flow", 0, tls_stable_steps),
	SCENARIO("mixed", 5000, mixed_steps),
};

#define MAX_STEPS (N_ODD + N_NON_IPV4 > 16 ? N_ODD + N_NON_IPV4 : 16)
#define MAX_CT	  64

struct ct_pair {
	struct canary_ct_key k;
	struct canary_ct_entry e;
};

struct snapshot {
	struct xfer x[MAX_STEPS];
	bool pass[MAX_STEPS];
	__u64 reasons[CANARY_R_COUNT];
	struct canary_metrics m[N_TEST_SVC][CANARY_V_COUNT];
	struct ct_pair ct[MAX_CT];
	size_t n_ct;
};

static int ct_pair_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct ct_pair *)a)->k, &((const struct ct_pair *)b)->k,
		      sizeof(struct canary_ct_key));
}

/* Everything the programs wrote, without the clock readings. */
static void snapshot_maps(struct snapshot *s)
{
	struct canary_ct_key keys[MAX_CT];
	__u32 id;
	size_t i;
	int v;

	reasons_read(s->reasons);
	for (id = 0; id < N_TEST_SVC; id++)
		for (v = 0; v < CANARY_V_COUNT; v++) {
			metrics_get(id, v, &s->m[id][v]);
			s->m[id][v].latency_sum_us = 0;
			memset(s->m[id][v].latency_hist, 0, sizeof(s->m[id][v].latency_hist));
		}
	s->n_ct = fixture_map_keys(fx.ct_fd, keys, sizeof(keys[0]), MAX_CT);
	assert_true(s->n_ct < MAX_CT);
	for (i = 0; i < s->n_ct; i++) {
		s->ct[i].k = keys[i];
		assert_true(ct_get(&keys[i], &s->ct[i].e));
		s->ct[i].e.created_ns = s->ct[i].e.last_seen_ns = s->ct[i].e.req_start_ns = 0;
	}
	qsort(s->ct, s->n_ct, sizeof(s->ct[0]), ct_pair_cmp);
}

static void scenario_run(const struct scenario *sc, struct path *p, struct snapshot *s)
{
	size_t i;

	reset_maps(NULL);
	svc_set_weight(&solo_def, sc->solo_weight);
	for (i = 0; i < sc->n; i++) {
		const struct step *st = &sc->steps[i];

		frame_build(&st->f, &s->x[i]);
		prog_run(st->egress ? fx.tc_eg_fd : *p->fd, &s->x[i], 1);
		s->pass[i] = s->x[i].ret == (st->egress ? TC_ACT_OK : p->pass);
	}
	snapshot_maps(s);
}

static void scenario_compare(const struct scenario *sc)
{
	static struct snapshot tc, xdp;
	size_t i;

	scenario_run(sc, &tc_path, &tc);
	scenario_run(sc, &xdp_path, &xdp);
	for (i = 0; i < sc->n; i++) {
		if (tc.pass[i] != xdp.pass[i] || tc.x[i].out_len != xdp.x[i].out_len ||
		    memcmp(tc.x[i].out, xdp.x[i].out, tc.x[i].out_len))
			fail_msg("%s, step %zu: tc and XDP output differ", sc->name, i);
	}
	if (memcmp(tc.reasons, xdp.reasons, sizeof(tc.reasons)))
		fail_msg("%s: reasons differ", sc->name);
	if (memcmp(tc.m, xdp.m, sizeof(tc.m)))
		fail_msg("%s: metrics differ", sc->name);
	if (tc.n_ct != xdp.n_ct || memcmp(tc.ct, xdp.ct, tc.n_ct * sizeof(tc.ct[0])))
		fail_msg("%s: conntrack differs", sc->name);
	print_message("  %-16s %zu frames, %zu conntrack entries: identical\n", sc->name, sc->n,
		      tc.n_ct);
}

/* The table frames the kernel lets tc see, as one scenario. */
static size_t odd_scenario(struct step *steps, const struct frame_def *d, size_t n, size_t at)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!d[i].short_l3)
			steps[at++].f = d[i];
	return at;
}

static void test_tc_xdp_identical(void **state)
{
	static struct step odd_steps[N_ODD + N_NON_IPV4];
	struct scenario odd = { "odd frames", 5000, odd_steps, 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		scenario_compare(&scenarios[i]);
	odd.n = odd_scenario(odd_steps, odd_frames, N_ODD, 0);
	odd.n = odd_scenario(odd_steps, non_ipv4_frames, N_NON_IPV4, odd.n);
	scenario_compare(&odd);
}

/* clang-format off */
DP_SUITE(parse,
	BOTH(test_odd_frames_ingress),
	BOTH(test_non_ipv4_ingress),
	ONCE(test_odd_frames_egress),
	ONCE(test_truncated_ethernet),
	BOTH(test_fin_rst_forwarded),
	ONCE(test_tc_xdp_identical));
/* clang-format on */
