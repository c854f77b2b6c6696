// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * HTTP metrics: requests, responses, status classes and time to first
 * byte, with options, retransmissions, keep-alive, interim responses,
 * upgrades, TCP Fast Open and opaque (TLS, HTTP/2) flows.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* HTTP requests, responses and time to first byte. */

#define HTTP_WAIT_US 2000

static int other(int version)
{
	return version == CANARY_V_CANARY ? CANARY_V_STABLE : CANARY_V_CANARY;
}

/* Exactly one sample, in [HTTP_WAIT_US, max_us], filed in its own bucket. */
static void assert_one_sample(const struct canary_metrics *m, __u64 max_us)
{
	__u64 us = m->latency_sum_us, total = 0;
	__u32 idx = canary_hist_bucket(us), i;

	assert_int_equal(m->latency_count, 1);
	assert_in_range(us, HTTP_WAIT_US, max_us);
	for (i = 0; i < CANARY_HIST_BUCKETS; i++)
		total += m->latency_hist[i];
	assert_int_equal(total, 1);
	assert_int_equal(m->latency_hist[idx], 1);
	assert_true(canary_hist_lower(idx) <= us);
	assert_true(us < canary_hist_lower(idx) + canary_hist_width(idx));
	/* The bucket holds a value of [wait, wait + slack]. */
	assert_true(canary_hist_lower(idx) <= max_us);
	assert_true(canary_hist_lower(idx) + canary_hist_width(idx) > HTTP_WAIT_US);
}

/* One request/response turn on a flow forced to version want. */
static void http_turn_case(struct path *p, int want, __u16 cport)
{
	struct canary_metrics m, o;
	struct flow f;
	__u64 t0, t1;
	int i;

	metrics_zero(SVC_WEB_ID);
	svc_set_weight(&web_def, want == CANARY_V_CANARY ? CANARY_WEIGHT_MAX : 0);
	flow_init(&f, p, &web_def, CLIENT_A, cport);
	flow_establish(&f);
	assert_int_equal(f.version, want);
	t0 = monotonic_ns();
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	metrics_get(SVC_WEB_ID, want, &m);
	assert_int_equal(m.requests, 1);
	assert_true(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	sleep_us(HTTP_WAIT_US);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));
	t1 = monotonic_ns();
	assert_false(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);

	metrics_get(SVC_WEB_ID, want, &m);
	metrics_get(SVC_WEB_ID, other(want), &o);
	for (i = 0; i < CANARY_STATUS_CLASSES; i++)
		assert_int_equal(m.responses[i], i == 5 ? 1 : 0);
	assert_one_sample(&m, (t1 - t0) / 1000 + 1);
	assert_int_equal(o.requests + o.responses[5] + o.latency_count + o.conns_opened, 0);
	assert_flow_traffic(&f);
}

static void test_http_turn(void **state)
{
	http_turn_case(test_path(state), CANARY_V_CANARY, 46000);
	http_turn_case(test_path(state), CANARY_V_STABLE, 46001);
}

/* Request and response carried by IP and TCP options: offsets must follow them. */
static void test_http_with_options(void **state)
{
	static const __u8 ts[12] = { 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7 };
	struct canary_metrics m;
	struct flow f;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46100);
	f.ip_opts = ip_opt_40;
	f.ip_opts_len = sizeof(ip_opt_40);
	f.tcp_opts = tcp_opt_40;
	f.tcp_opts_len = sizeof(tcp_opt_40);
	flow_establish(&f);
	f.tcp_opts = ts;
	f.tcp_opts_len = sizeof(ts);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	f.tcp_opts = tcp_opt_40;
	f.tcp_opts_len = sizeof(tcp_opt_40);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 1);
	assert_int_equal(m.responses[2], 1);
	assert_int_equal(m.latency_count, 1);
	assert_int_equal(reason(CANARY_R_OPAQUE), 0);
}

/* Retransmissions of either side never make a second request or sample. */
static void test_http_retransmits(void **state)
{
	struct canary_metrics m;
	struct flow f;
	__u32 req_seq, resp_seq;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46200);
	flow_establish(&f);
	req_seq = f.cseq;
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	f.cseq = req_seq; /* lost ACK: the client sends the request again */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	resp_seq = f.sseq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	f.sseq = resp_seq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	f.cseq = req_seq; /* a late duplicate of the request, after the response */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	f.sseq = resp_seq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	/* The rest of the response body is not a new turn either. */
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("more body"));

	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 1);
	assert_int_equal(m.responses[2], 1);
	assert_int_equal(m.latency_count, 1);
	assert_flow_traffic(&f);
}

/*
 * Keep-alive: each turn is one request and one sample. The client's
 * sequence numbers wrap around zero in the middle of the flow, and a stale
 * response retransmitted during the second turn must not end it.
 */
static void test_http_keepalive(void **state)
{
	struct canary_metrics m;
	struct flow f;
	__u32 resp_seq;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46300);
	f.cseq = 0xffffffe0U;
	f.sseq = 0xfffffff0U;
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	resp_seq = f.sseq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 2);

	f.sseq = resp_seq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.latency_count, 1);
	f.sseq = resp_seq + sizeof(http_200) - 1;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));

	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 2);
	assert_int_equal(m.responses[2], 1);
	assert_int_equal(m.responses[5], 1);
	assert_int_equal(m.latency_count, 2);
}

/*
 * Each direction writes its sequence mark into the entry its own program
 * holds: a response segment that ends no turn leaves the forward entry as
 * it was, a request segment the reverse entry; the end of a turn changes
 * only the forward entry's flags.
 */
static void test_http_marks_per_direction(void **state)
{
	struct canary_ct_entry fwd, rev, before;
	struct canary_ct_key fk, rk;
	struct flow f;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46350);
	flow_establish(&f);
	fk = flow_fwd_key(&f);
	rk = flow_rev_key(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));

	assert_true(ct_get(&fk, &before));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("more body"));
	assert_true(ct_get(&fk, &fwd));
	assert_memory_equal(&fwd, &before, sizeof(fwd));
	assert_true(ct_get(&rk, &rev));
	assert_true(rev.flags & CANARY_CT_F_SSEQ_VALID);
	assert_int_equal(rev.server_seq_end, f.sseq);

	before = rev;
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_true(ct_get(&rk, &rev));
	assert_memory_equal(&rev, &before, sizeof(rev));
	assert_true(ct_get(&fk, &before));
	assert_int_equal(before.client_seq_end, f.cseq);

	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));
	assert_true(ct_get(&fk, &fwd));
	assert_int_equal(fwd.flags, before.flags & ~CANARY_CT_F_IN_REQUEST);
	fwd.flags = before.flags;
	assert_memory_equal(&fwd, &before, sizeof(fwd));
	assert_turns(&f, 2, 0, 1, 1);
}

/* TLS and HTTP/2 flows get TCP-level metrics only. */
static void opaque_case(struct path *p, __u16 cport, const void *first, size_t len)
{
	struct canary_metrics m;
	struct canary_ct_entry e;
	struct canary_ct_key k;
	struct flow f;
	__u32 flags;
	int r;

	flow_init(&f, p, &web_def, CLIENT_A, cport);
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, first, len);
	flags = flow_flags(&f);
	assert_true(flags & CANARY_CT_F_OPAQUE);
	assert_true(flags & CANARY_CT_F_PROBED);
	assert_false(flags & CANARY_CT_F_IN_REQUEST);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));
	k = flow_rev_key(&f);
	assert_true(ct_get(&k, &e));
	assert_true(e.flags & CANARY_CT_F_PLAIN); /* no turns to end: test_http_upgrade */

	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 0);
	for (r = 0; r < CANARY_STATUS_CLASSES; r++)
		assert_int_equal(m.responses[r], 0);
	assert_int_equal(m.latency_count, 0);
	assert_int_equal(m.conns_opened, 1);
	assert_flow_traffic(&f);
}

static void test_http_opaque(void **state)
{
	svc_set_weight(&web_def, 0);
	opaque_case(test_path(state), 46400, tls_hello, sizeof(tls_hello));
	assert_int_equal(reason(CANARY_R_OPAQUE), 1);
	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	opaque_case(test_path(state), 46401, TXT(h2_preface));
	assert_int_equal(reason(CANARY_R_OPAQUE), 2);
}

/* Status classes from "HTTP/1.x NNN"; anything else is "other" (1xx: test_http_interim). */
static const struct {
	const char *text;
	int class;
} statuses[] = {
	{ "HTTP/1.1 204 No Content\r\n\r\n", 2 },
	{ "HTTP/1.0 302 Found\r\n\r\n", 3 },
	{ "HTTP/1.1 404 Not Found\r\n\r\n", 4 },
	{ "HTTP/1.1 599 Whatever\r\n\r\n", 5 },
	{ "HTTP/1.1 600 Beyond\r\n\r\n", 0 },
	{ "HTTP/1.1 2x0 Broken\r\n\r\n", 0 },
	{ "SSH-2.0-OpenSSH_9.2\r\n", 0 },
	{ "HTTP/1.1 20", 0 }, /* shorter than the sniffed prefix */
};

static void test_http_status_classes(void **state)
{
	__u64 want[CANARY_STATUS_CLASSES] = { 0 };
	struct canary_metrics m;
	struct flow f;
	size_t i;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 51300);
	flow_establish(&f);
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
		flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, statuses[i].text,
			   strlen(statuses[i].text));
		want[statuses[i].class]++;
	}
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_memory_equal(m.responses, want, sizeof(want));
	assert_int_equal(m.requests, i);
	assert_int_equal(m.latency_count, i);
}

/* ------------------------------------------------------------------------ */
/* HTTP turns: interim responses, upgrades, TCP Fast Open. */

static const char http_post_expect[] = "POST /upload HTTP/1.1\r\nHost: x\r\n"
				       "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n";
static const char http_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char http_103[] = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
static const char http_500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
static const char http_upgrade[] = "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
				   "Connection: Upgrade\r\n\r\n";
static const char http_101[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\n\r\n";
static const char ws_frame[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58 and more bytes";

/*
 * An interim response (100 Continue, 103 Early Hints) does not end the
 * request: the final status does, and it is the one counted. Counting the
 * 1xx would turn one request into two and hide the final 5xx.
 */
static void test_http_interim(void **state)
{
	struct flow f;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46600);
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_post_expect));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_100));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("body"));
	assert_true(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_500));
	assert_turns(&f, 1, 0, 0, 1);

	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_103));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_turns(&f, 2, 0, 1, 1);
	assert_false(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	assert_flow_traffic(&f);
}

/*
 * 101 Switching Protocols answers the upgrade request; what follows is
 * another protocol (WebSocket, h2c), whose frames are neither requests nor
 * responses: the flow goes opaque, and its reverse entry PLAIN.
 */
static void test_http_upgrade(void **state)
{
	struct canary_ct_entry e;
	struct canary_ct_key rk, fk;
	struct flow f;
	int i;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46700);
	flow_establish(&f);
	rk = flow_rev_key(&f);
	assert_true(ct_get(&rk, &e));
	assert_false(e.flags & CANARY_CT_F_PLAIN); /* its replies end turns */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_upgrade));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_101));
	assert_turns(&f, 1, 1, 0, 0);
	for (i = 0; i < 5; i++) {
		flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(ws_frame));
		flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(ws_frame));
	}
	assert_turns(&f, 1, 1, 0, 0);
	assert_true(flow_flags(&f) & CANARY_CT_F_OPAQUE);

	/* No more turns: its data replies leave the forward entry alone, as a plain flow's. */
	assert_true(ct_get(&rk, &e));
	assert_true(e.flags & CANARY_CT_F_PLAIN);
	fk = flow_fwd_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &fk), 0);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(ws_frame));
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 0);
	assert_false(ct_get(&fk, &e));
	assert_flow_traffic(&f);
}

/*
 * TCP Fast Open: the request rides on the SYN, after the SYN's own sequence
 * number. A retransmission of that SYN (same ISN, same data) keeps its
 * backend, also after the SYN-ACK went out; a later retransmission of the
 * same data as a plain segment is not a new request.
 */
static void test_http_fast_open(void **state)
{
	struct flow f;
	struct xfer x;
	__u32 isn, resp_seq;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46800);
	isn = f.cseq;
	flow_in(&f, PKT_TCP_SYN, TXT(http_get), &x);
	f.be_addr = out_daddr(&x);
	f.be_port = out_dport(&x);
	f.version = be_version(&web_def, f.be_addr, f.be_port);
	assert_int_equal(f.version, CANARY_V_STABLE);
	assert_nat(&x, true, f.be_addr, f.be_port);
	assert_turns(&f, 1, 0, 0, 0);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	f.cseq = isn; /* the SYN-ACK was lost: the client sends its SYN again */
	flow_send(&f, PKT_TCP_SYN, TXT(http_get));
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 0);
	resp_seq = f.sseq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	f.cseq = isn + 1; /* a spurious retransmission of the request's bytes */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_turns(&f, 1, 0, 1, 0);
	assert_false(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);

	/*
	 * The response went out in the handshake: its mark moved into
	 * conntrack with the flow, so its retransmission during the next
	 * request ends nothing.
	 */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	f.sseq = resp_seq;
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_true(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));
	assert_turns(&f, 2, 0, 1, 1);
}

/*
 * A request the client gives up on (FIN or RST while it is unanswered)
 * counts as a failed turn of its version: a 5xx with the time waited as
 * its latency. A response after the close ends nothing; a close between
 * turns, or one carried by the request itself, is no failure.
 */
static void abandoned_case(struct path *p, __u16 cport, __u8 close_flags)
{
	struct canary_metrics m;
	struct flow f;
	__u64 t0, t1;

	metrics_zero(SVC_WEB_ID);
	flow_init(&f, p, &web_def, CLIENT_A, cport);
	flow_establish(&f);
	t0 = monotonic_ns();
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	sleep_us(HTTP_WAIT_US);
	flow_send(&f, close_flags, NULL, 0);
	t1 = monotonic_ns();
	assert_false(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 2);
	assert_int_equal(m.responses[2], 1);
	assert_int_equal(m.responses[5], 1);
	assert_int_equal(m.latency_count, 2);
	assert_true(m.latency_sum_us >= HTTP_WAIT_US);
	assert_true(m.latency_sum_us <= (t1 - t0) / 1000 + 2); /* both samples */
	/* The backend's late answer and the client's retransmitted close: no turn. */
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	f.cseq -= seq_len(close_flags, 0);
	flow_send(&f, close_flags, NULL, 0);
	assert_turns(&f, 2, 0, 1, 1);
	assert_flow_traffic(&f);
}

static void test_http_abandoned(void **state)
{
	struct flow f;

	abandoned_case(test_path(state), 46900, PKT_TCP_ACK | PKT_TCP_FIN);
	abandoned_case(test_path(state), 46901, PKT_TCP_ACK | PKT_TCP_RST);

	/* A close between turns, and a request sent with the FIN: no failure. */
	metrics_zero(SVC_WEB_ID);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 46902);
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH | PKT_TCP_FIN, TXT(http_get));
	assert_true(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_FIN, NULL, 0);
	assert_turns(&f, 2, 0, 2, 0);
}

/* clang-format off */
DP_SUITE(http,
	BOTH(test_http_turn),
	BOTH(test_http_with_options),
	BOTH(test_http_retransmits),
	BOTH(test_http_keepalive),
	BOTH(test_http_marks_per_direction),
	BOTH(test_http_opaque),
	BOTH(test_http_status_classes),
	BOTH(test_http_interim),
	BOTH(test_http_upgrade),
	BOTH(test_http_fast_open),
	BOTH(test_http_abandoned));
/* clang-format on */
