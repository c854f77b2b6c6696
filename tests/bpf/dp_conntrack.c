// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection tracking: refused and reset connections, port reuse, SYN
 * retransmissions, misses, accounting, LRU pressure and eviction, failed
 * inserts and the agent's expiry pass.
 */
#include "harness.h"
#include "svcindex.h"

/* ------------------------------------------------------------------------ */
/* Refused and reset connections, each counted once. */

static void test_refused_and_reset(void **state)
{
	struct canary_metrics m;
	struct flow a, b;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_init(&a, test_path(state), &web_def, CLIENT_A, 47000);
	flow_open(&a);
	flow_reply(&a, PKT_TCP_RST | PKT_TCP_ACK, NULL, 0);
	assert_true(flow_flags(&a) & CANARY_CT_F_RST_SEEN);
	flow_reply(&a, PKT_TCP_RST | PKT_TCP_ACK, NULL, 0);
	metrics_get(SVC_WEB_ID, CANARY_V_CANARY, &m);
	assert_int_equal(m.conns_refused, 1);
	assert_int_equal(m.conns_reset, 0);

	flow_init(&b, test_path(state), &web_def, CLIENT_A, 47001);
	flow_establish(&b);
	flow_send(&b, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&b, PKT_TCP_RST, NULL, 0);
	flow_reply(&b, PKT_TCP_RST, NULL, 0);
	metrics_get(SVC_WEB_ID, CANARY_V_CANARY, &m);
	assert_int_equal(m.conns_refused, 1);
	assert_int_equal(m.conns_reset, 1);
	assert_int_equal(m.conns_opened, 2);
	metrics_get(SVC_WEB_ID, CANARY_V_STABLE, &m);
	assert_int_equal(m.conns_refused + m.conns_reset + m.conns_opened, 0);
}

/* ------------------------------------------------------------------------ */
/* Port reuse makes a fresh choice; a retransmitted SYN does not. */

static void test_port_reuse_after_fin(void **state)
{
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct flow f;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 49000);
	flow_establish(&f);
	flow_send(&f, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	flow_reply(&f, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	f.cseq += 0x10000;
	assert_int_equal(flow_open(&f), CANARY_V_CANARY);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	assert_int_equal(e.version, CANARY_V_CANARY);
	assert_int_equal(e.flags, CANARY_CT_F_HTTP | CANARY_CT_F_CSEQ_VALID);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 1);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 2);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
}

/*
 * A client port reused for a flow to the backend of an older flow that
 * lost its forward entry but kept its reverse one: the two age apart, and
 * the old backend of a re-steered flow keeps retransmitting into its
 * reverse entry. The new flow's handshake is in the half-open table under
 * the same reverse key; its SYN-ACK must reach that entry, not the older
 * flow's. Otherwise the flow is never promoted, its response is never
 * seen, and the client's FIN after it counts a 5xx no client saw.
 */
static void test_port_reuse_stale_reverse(void **state)
{
	struct canary_ct_key k;
	struct flow old, f;

	svc_set_weight(&web_def, 0);
	flow_init(&old, test_path(state), &web_def, CLIENT_A, 49150);
	flow_establish(&old);
	flow_send(&old, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&old, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	k = flow_fwd_key(&old);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &k), 0);
	assert_int_equal(fixture_flow_cache_flush(&fx), 0);
	metrics_zero(SVC_WEB_ID);

	f = old;
	f.cseq += 0x10000;
	f.sseq -= 0x10000; /* the backend's new ISN, behind its old mark */
	flow_open(&f);
	assert_int_equal(f.be_addr, old.be_addr);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	flow_send(&f, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	assert_turns(&f, 1, 0, 1, 0);
	assert_true(flow_flags(&f) & CANARY_CT_F_ESTABLISHED); /* promoted to conntrack */
	assert_int_equal(ct_count(), 2);
}

/*
 * A client that gave up on a handshake nobody answered connects again from
 * the same port with another initial sequence number: a new connection, not
 * a retransmitted SYN. Taken for a retransmission, it kept the first SYN's
 * sequence mark, and a request behind that mark was never counted.
 */
static void test_port_reuse_unanswered_syn(void **state)
{
	struct flow f;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 49160);
	flow_open(&f);	    /* never answered */
	f.cseq -= 0x100000; /* the next connect()'s ISN, 1 MiB behind the first one */
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_turns(&f, 1, 0, 1, 0);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 2);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 2);
}

static void test_port_reuse_after_refusal(void **state)
{
	struct flow f;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 49100);
	flow_open(&f);
	flow_reply(&f, PKT_TCP_RST | PKT_TCP_ACK, NULL, 0);
	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	assert_int_equal(flow_open(&f), CANARY_V_CANARY);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 1);
	assert_false(flow_flags(&f) & CANARY_CT_F_RST_SEEN);
}

static void test_syn_retransmit(void **state)
{
	struct flow f;
	__u32 isn;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 49200);
	isn = f.cseq;
	flow_open(&f);
	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	f.cseq = isn;
	flow_send(&f, PKT_TCP_SYN, NULL, 0); /* checks it still goes to the same backend */
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 0);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
	assert_int_equal(reason(CANARY_R_FORWARD), 1);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
}

/*
 * CANARY_CT_F_ESTABLISHED is set when the SYN-ACK leaves through egress, so
 * when that SYN-ACK is lost on its way to the client, the client's
 * retransmitted SYN (same ISN) finds an established entry. It is a
 * retransmission, not port reuse (ct_is_port_reuse(): its seq is
 * client_seq_end - 1): chosen again, the flow could move to another
 * backend once the weight has moved, conns_opened would count it twice,
 * and the first backend's retransmitted SYN-ACK would be restored by the
 * stale reverse entry into the new flow's server_seq_end.
 */
/*
 * The stable flow f's SYN, sent again with its initial sequence number isn
 * and no data once the weight says canary, keeps its backend: one stable
 * connection, one new flow.
 */
static void assert_syn_retransmit_kept(struct flow *f, __u32 isn)
{
	struct xfer x;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	f->cseq = isn;
	flow_in(f, PKT_TCP_SYN, NULL, 0, &x);
	if (out_daddr(&x) != f->be_addr)
		fail_msg("retransmitted SYN re-chosen: sent to %08x, the flow is on %08x -- "
			 "ct_is_port_reuse() took it for port reuse",
			 ntohl(out_daddr(&x)), ntohl(f->be_addr));
	assert_nat(&x, true, f->be_addr, f->be_port);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 0);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
}

static void test_syn_retransmit_after_synack(void **state)
{
	struct flow f;
	__u32 isn;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 49300);
	isn = f.cseq;
	flow_open(&f);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0); /* lost after egress */
	assert_syn_retransmit_kept(&f, isn);
}

/*
 * A Fast Open SYN's retransmission may come without its data: it is the
 * same flow's SYN still (its sequence number is the first one's), not a new
 * connection, and keeps its backend.
 */
static void test_syn_retransmit_without_fast_open_data(void **state)
{
	struct flow f;
	struct xfer x;
	__u32 isn;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 49400);
	isn = f.cseq;
	flow_in(&f, PKT_TCP_SYN, TXT(http_get), &x);
	f.be_addr = out_daddr(&x);
	f.be_port = out_dport(&x);
	assert_syn_retransmit_kept(&f, isn);
}

/* ------------------------------------------------------------------------ */
/* A mid-flow packet without an entry is placed again, where a SYN would go. */

static void test_ct_miss_non_syn(void **state)
{
	int seen[CANARY_V_COUNT] = { 0, 0 };
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct flow f, g;
	__u16 i;

	for (i = 0; i < 32; i++) {
		flow_init(&f, test_path(state), &web_def, CLIENT_B, (__u16)(50000 + i));
		flow_open_with(&f, PKT_TCP_ACK | PKT_TCP_PSH);
		k = flow_fwd_key(&f);
		assert_true(ct_get(&k, &e));
		assert_int_equal(e.nat_addr, f.be_addr);
		assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), i + 1);
		assert_int_equal(opened(SVC_WEB_ID, 0) + opened(SVC_WEB_ID, 1), 0);
		flow_reply(&f, PKT_TCP_ACK, NULL, 0);

		ct_clear();
		flow_init(&g, test_path(state), &web_def, CLIENT_B, (__u16)(50000 + i));
		flow_open(&g);
		assert_int_equal(g.be_addr, f.be_addr);
		assert_int_equal(g.be_port, f.be_port);
		assert_int_equal(g.version, f.version);
		seen[f.version]++;
		ct_clear();
		metrics_zero(SVC_WEB_ID);
	}
	assert_true(seen[0] > 0 && seen[1] > 0);
}

/* ------------------------------------------------------------------------ */
/* Conntrack accounting, and more flows than it holds. */

static struct canary_ct_stats ct_stats_get(void)
{
	struct canary_ct_stats st;

	pcpu_sum(fx.ct_stats_fd, 0, (__u64 *)&st, sizeof(st) / sizeof(__u64));
	return st;
}

/* Every entry written is counted once: created if its key was new, else replaced. */
static void test_ct_entries_counted(void **state)
{
	struct canary_ct_stats st;
	struct flow f, g;
	__u64 same;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52000);
	flow_establish(&f);
	st = ct_stats_get();
	assert_int_equal(st.entries_created, 2);
	assert_int_equal(st.entries_replaced, 0);
	flow_send(&f, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);

	/* The port opens a new flow: its forward key is reused, its reverse key if same backend. */
	flow_init(&g, test_path(state), &web_def, CLIENT_A, 52000);
	flow_open(&g);
	same = g.be_addr == f.be_addr && g.be_port == f.be_port;
	st = ct_stats_get();
	assert_int_equal(st.entries_replaced, 1 + same);
	assert_int_equal(st.entries_created, 3 - same);
	assert_int_equal(ct_count(), st.entries_created);
}

/* A flow that lost only its reverse entry gets it back when it speaks after a quiet second. */
static void test_reverse_entry_restored(void **state)
{
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct flow f;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52100);
	flow_establish(&f);
	k = flow_rev_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &k), 0);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	e.last_seen_ns = 0; /* quiet since boot */
	assert_int_equal(bpf_map_update_elem(fx.ct_fd, &k, &e, BPF_EXIST), 0);

	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	k = flow_rev_key(&f);
	assert_true(ct_get(&k, &e));
	assert_int_equal(e.flags, CANARY_CT_F_REVERSE);
	assert_int_equal(e.nat_addr, f.svc->key.vip);
	assert_int_equal(e.nat_port, f.svc->key.port);
	assert_int_equal(e.version, f.version);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200)); /* restored to the VIP */
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 0);
	assert_int_equal(ct_stats_get().entries_created, 3);
}

/* 1.25 times the flows the conntrack holds (two entries a flow). */
#define PRESSURE_FLOWS	  (CANARY_CT_MAX_ENTRIES / 2 + CANARY_CT_MAX_ENTRIES / 8)
#define PRESSURE_SAMPLE	  (PRESSURE_FLOWS / 10)
#define PRESSURE_CLIENT0  0x0a800000U /* 10.128.0.0, one client address a flow */
#define PRESSURE_PORT	  40000
#define PRESSURE_OLD_KEPT 0.05 /* at most this share of the oldest tenth is whole */
#define PRESSURE_NEW_KEPT 0.95 /* at least this share of the newest tenth is */

/* Where each pressure flow went: its backend. */
static struct canary_backend pressure_be[PRESSURE_FLOWS + 1];

static void pressure_packet(__u32 i, __u8 flags, int fd, struct xfer *x)
{
	struct pkt_spec s = {
		.saddr = htonl(PRESSURE_CLIENT0 + i),
		.sport = htons(PRESSURE_PORT),
		.daddr = web_def.key.vip,
		.dport = web_def.key.port,
		.proto = IPPROTO_TCP,
		.ttl = 64,
		.seq = 1000 + i + !(flags & PKT_TCP_SYN),
		.ack = (flags & PKT_TCP_ACK) ? 1001 + i : 0, /* both sides' ISN is 1000 + i */
		.tcp_flags = flags,
	};

	if (fd == fx.tc_eg_fd) { /* the backend's reply */
		s.saddr = pressure_be[i].addr;
		s.sport = pressure_be[i].port;
		s.daddr = htonl(PRESSURE_CLIENT0 + i);
		s.dport = htons(PRESSURE_PORT);
	}
	build(x, &s);
	assert_int_equal(prog_run(fd, x, 1), TC_ACT_OK);
}

static bool pressure_has(__u32 i, bool reverse)
{
	struct canary_ct_entry e;
	struct canary_ct_key k;

	if (reverse)
		k = ct_key(pressure_be[i].addr, pressure_be[i].port, htonl(PRESSURE_CLIENT0 + i),
			   htons(PRESSURE_PORT), IPPROTO_TCP);
	else
		k = ct_key(htonl(PRESSURE_CLIENT0 + i), htons(PRESSURE_PORT), web_def.key.vip,
			   web_def.key.port, IPPROTO_TCP);
	return ct_get(&k, &e);
}

/* Share of flows first..first+n-1 with their forward entry, and with both. */
static void pressure_kept(__u32 first, __u32 n, double *forward, double *whole)
{
	__u32 i, fwd = 0, both = 0;

	for (i = first; i < first + n; i++) {
		bool f = pressure_has(i, false);

		fwd += f;
		both += f && pressure_has(i, true);
	}
	*forward = (double)fwd / n;
	*whole = (double)both / n;
}

/*
 * More flows than the conntrack holds: every insert succeeds, the LRU evicts
 * the least recently used entries (the oldest flows'; a new flow's two
 * entries are both read once after their write), the counters say how
 * many, an evicted flow that speaks again after a quiet second gets its
 * entries back and its replies restored, and new flows still get in.
 */
static void test_ct_lru_pressure(void **state)
{
	double old_fwd, old_whole, new_fwd, new_whole;
	struct canary_ct_stats st;
	unsigned int entries, walked;
	struct canary_dp *dp;
	bool had_forward;
	__u64 evicted;
	struct xfer x;
	__u32 i;

	(void)state;
	for (i = 0; i < PRESSURE_FLOWS; i++) {
		pressure_packet(i, PKT_TCP_SYN, fx.tc_in_fd, &x);
		pressure_be[i].addr = out_daddr(&x);
		pressure_be[i].port = out_dport(&x);
		assert_int_not_equal(pressure_be[i].addr, web_def.key.vip);
		/* Handshake completed: the flow moves to conntrack. */
		pressure_packet(i, PKT_TCP_SYN | PKT_TCP_ACK, fx.tc_eg_fd, &x);
		pressure_packet(i, PKT_TCP_ACK, fx.tc_in_fd, &x);
	}
	assert_int_equal(reason(CANARY_R_NEW_FLOW), PRESSURE_FLOWS);
	assert_int_equal(reason(CANARY_R_CT_FULL), 0);
	st = ct_stats_get();
	assert_int_equal(st.entries_created, 2 * PRESSURE_FLOWS);
	assert_int_equal(st.entries_replaced, 0);

	/* The agent's own reading: the kernel's O(1) count must agree with a walk. */
	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	assert_true(dp_flow_count_is_cheap(dp));
	assert_int_equal(dp_ct_capacity(dp), CANARY_CT_MAX_ENTRIES);
	assert_int_equal(dp_flow_count(dp, &entries), 0);
	assert_int_equal(dp_flow_count_walked(dp, &walked), 0);
	assert_int_equal(entries, walked);
	assert_true(entries <= CANARY_CT_MAX_ENTRIES);
	assert_true(entries >= CANARY_CT_MAX_ENTRIES * 9 / 10);
	evicted = dp_ct_evictions(st.entries_created, entries, 0);
	assert_int_equal(evicted, st.entries_created - entries);
	dp_close(dp);

	pressure_kept(0, PRESSURE_SAMPLE, &old_fwd, &old_whole);
	pressure_kept(PRESSURE_FLOWS - PRESSURE_SAMPLE, PRESSURE_SAMPLE, &new_fwd, &new_whole);
	printf("# %u flows into %u entries: %u left, %llu evicted; with both entries: "
	       "oldest tenth %.1f%% (forward %.1f%%), newest tenth %.1f%% (forward %.1f%%)\n",
	       (unsigned int)PRESSURE_FLOWS, (unsigned int)CANARY_CT_MAX_ENTRIES, entries,
	       (unsigned long long)evicted, 100 * old_whole, 100 * old_fwd, 100 * new_whole,
	       100 * new_fwd);
	assert_true(old_whole <= PRESSURE_OLD_KEPT);
	assert_true(new_whole >= PRESSURE_NEW_KEPT);
	/*
	 * A flow's two entries age together: both are read when written. A
	 * reverse entry left unread would be evicted before anything that was
	 * read, however new (the oldest flows would keep their forward entry
	 * alone), and a new flow could lose it before its first reply.
	 */
	assert_true(old_fwd <= PRESSURE_OLD_KEPT);

	/* The oldest flow that lost an entry speaks again after a quiet second. */
	for (i = 0; i < PRESSURE_SAMPLE && pressure_has(i, false) && pressure_has(i, true); i++)
		;
	assert_true(i < PRESSURE_SAMPLE);
	had_forward = pressure_has(i, false);
	sleep_us(1100000);
	pressure_packet(i, PKT_TCP_ACK, fx.tc_in_fd, &x);
	assert_int_equal(out_daddr(&x), pressure_be[i].addr); /* the backend it had */
	assert_int_equal(out_dport(&x), pressure_be[i].port);
	assert_true(pressure_has(i, false) && pressure_has(i, true));
	pressure_packet(i, PKT_TCP_ACK, fx.tc_eg_fd, &x);
	assert_nat(&x, false, web_def.key.vip, web_def.key.port); /* its reply restored */

	/* And a new flow still gets in. */
	pressure_packet(PRESSURE_FLOWS, PKT_TCP_SYN, fx.tc_in_fd, &x);
	assert_int_not_equal(out_daddr(&x), web_def.key.vip);
	/* A flow without its forward entry was chosen again: a new flow, and a miss. */
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), !had_forward);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), PRESSURE_FLOWS + 1 + !had_forward);
}

/*
 * A reply whose forward entry is gone is still restored, says so, and
 * writes the forward entry again from its reverse one: the flow keeps its
 * backend and version whatever the weight is when the client speaks next.
 */
static void test_reply_without_forward(void **state)
{
	struct canary_metrics m;
	struct canary_ct_entry e;
	struct canary_ct_key k;
	struct flow f;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 51000);
	flow_establish(&f); /* in conntrack from the client's ACK on */
	k = flow_fwd_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &k), 0);
	flow_reply(&f, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_REPLY), 2);
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 1);
	assert_int_equal(ct_count(), 2);
	assert_true(ct_get(&k, &e));
	assert_int_equal(e.nat_addr, f.be_addr);
	assert_int_equal(e.nat_port, f.be_port);
	assert_int_equal(e.version, CANARY_V_STABLE);
	assert_int_equal(e.svc_id, SVC_WEB_ID);
	assert_true(e.flags & CANARY_CT_F_MIDFLOW);
	assert_true(e.flags & CANARY_CT_F_HTTP);

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 0);
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 1);
	metrics_get(SVC_WEB_ID, CANARY_V_STABLE, &m);
	assert_int_equal(m.requests, 1);
	assert_int_equal(m.responses[2], 1);
}

static void ct_evict(const struct canary_ct_key *k)
{
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, k), 0);
}

/* A plain TCP service: no HTTP, so its replies touch no request turn. */
static const struct svc_def plain_def = {
	.name = "plain",
	.key = { .vip = PKT_IP4(10, 96, 0, 41), .port = PKT_BE16(6379), .proto = IPPROTO_TCP },
	.id = 5,
	.be = { solo_stable, solo_canary },
	.n_be = { N_OF(solo_stable), N_OF(solo_canary) },
};

/*
 * A plain flow's data replies do not read its forward entry: egress looks
 * for it once a second per flow, when it refreshes the reverse entry's
 * age, and writes it again then if it was evicted alone. In between, the
 * client's own packets find their backend through the reverse entry. A
 * FIN (or SYN-ACK, or RST) always reads it: its TCP state is kept there.
 */
static void test_plain_reply_reads_forward_once_a_second(void **state)
{
	struct canary_ct_entry e;
	struct canary_ct_key fk, rk;
	struct flow f;

	svc_install(&plain_def, 0, CANARY_AFFINITY_NONE);
	flow_init(&f, test_path(state), &plain_def, CLIENT_A, 51100);
	flow_establish(&f);
	rk = flow_rev_key(&f);
	assert_true(ct_get(&rk, &e));
	assert_int_equal(e.flags, CANARY_CT_F_REVERSE | CANARY_CT_F_PLAIN);
	fk = flow_fwd_key(&f);
	ct_evict(&fk);

	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("+OK\r\n")); /* restored to the VIP */
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 0);
	assert_false(ct_get(&fk, &e));
	svc_set_weight(&plain_def, CANARY_WEIGHT_MAX);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n")); /* to its own backend */
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 1);
	assert_true(ct_get(&fk, &e));
	assert_int_equal(e.version, CANARY_V_STABLE);

	/* Evicted again, and a quiet second later: looked for, and written again. */
	ct_evict(&fk);
	assert_true(ct_get(&rk, &e));
	e.last_seen_ns = 0;
	assert_int_equal(bpf_map_update_elem(fx.ct_fd, &rk, &e, BPF_EXIST), 0);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("+OK\r\n"));
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 1);
	assert_true(ct_get(&fk, &e));
	assert_int_equal(e.nat_addr, f.be_addr);
	assert_int_equal(e.version, CANARY_V_STABLE);
	assert_true(e.flags & CANARY_CT_F_MIDFLOW);
	assert_false(e.flags & CANARY_CT_F_HTTP);

	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_FIN, NULL, 0);
	assert_true(ct_get(&fk, &e));
	assert_true(e.flags & CANARY_CT_F_SERVER_FIN);
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 1);
	assert_int_equal(opened(plain_def.id, CANARY_V_CANARY), 0);
}

/*
 * A backend's own packet seen on ingress is not ours: untouched. Its
 * destination is a client, which the VIP filter does not know: counted as
 * for no service. Where the client's address and port do have a bit (a
 * service listens there too), the reverse entry is found and the packet is
 * left alone without a count.
 */
static void test_reply_on_ingress(void **state)
{
	struct canary_service_key client_key = { .proto = IPPROTO_TCP };
	struct canary_service client_svc;
	struct pkt_spec s;
	struct flow f;
	struct xfer x;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 51100);
	flow_open(&f);
	flow_spec(&f, true, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, &s);
	build(&x, &s);
	prog_run(*f.path->fd, &x, 1);
	assert_untouched(&x, f.path->pass);
	/*
	 * The SYN's NEW_FLOW, and the reply as a packet for no service: its
	 * destination (the client) has no bit in the VIP filter, so it never
	 * reaches the reverse entry.
	 */
	assert_int_equal(reasons_total(), 2);
	assert_int_equal(reason(CANARY_R_NO_SERVICE), 1);
	assert_false(flow_flags(&f) & CANARY_CT_F_ESTABLISHED);

	svc_fill(&client_svc, &web_def, 0);
	client_svc.id = N_TEST_SVC; /* a slot no standard service uses */
	client_key.vip = s.daddr;
	client_key.port = s.dport;
	assert_int_equal(fixture_svc_put(&fx, &client_key, &client_svc, BPF_NOEXIST), 0);
	build(&x, &s);
	prog_run(*f.path->fd, &x, 1);
	assert_untouched(&x, f.path->pass);
	assert_int_equal(reasons_total(), 2);
	assert_int_equal(fixture_svc_delete(&fx, &client_key, client_svc.id), 0);
}

/*
 * A second skeleton whose conntrack is a plain hash with room for one flow,
 * not pinned: there the next flow's insert fails, which the LRU of the real
 * map almost never lets a test see.
 */
static struct canary *tiny;

static int tiny_teardown(void **state)
{
	(void)state;
	canary__destroy(tiny);
	tiny = NULL;
	return 0;
}

static void tiny_load(void)
{
	struct bpf_map *map = NULL;

	tiny = canary__open();
	assert_non_null(tiny);
	while ((map = bpf_object__next_map(tiny->obj, map)))
		assert_int_equal(bpf_map__set_pin_path(map, NULL), 0);
	assert_int_equal(bpf_map__set_type(tiny->maps.CANARY_MAP(conntrack), BPF_MAP_TYPE_HASH), 0);
	assert_int_equal(bpf_map__set_max_entries(tiny->maps.CANARY_MAP(conntrack), 2), 0);
	/* A SYN is first written to the half-open table: the same there. */
	assert_int_equal(bpf_map__set_type(tiny->maps.CANARY_MAP(ct_syn), BPF_MAP_TYPE_HASH), 0);
	assert_int_equal(bpf_map__set_max_entries(tiny->maps.CANARY_MAP(ct_syn), 2), 0);
	assert_int_equal(canary__load(tiny), 0);
}

static void tiny_syn(int prog_fd, __u16 cport, struct xfer *x)
{
	struct pkt_spec s = { TCP_TO(VIP_WEB, 80, cport, PKT_TCP_SYN) };

	build(x, &s);
	prog_run(prog_fd, x, 1);
}

/*
 * A flow whose conntrack entries cannot be written is dropped, not sent to
 * the VIP untranslated (where nothing answers, or kube-proxy picks another
 * backend than the one counted): the client retransmits its SYN, by when
 * the table may have room. Cilium drops such packets too.
 */
static void test_ct_insert_fails(void **state)
{
	int progs[2], drops[2] = { TC_ACT_SHOT, XDP_DROP };
	struct svcindex_fds tiny_fds;
	struct canary_service svc;
	__u64 full[64] = { 0 };
	__u32 key = CANARY_R_CT_FULL;
	struct xfer x;
	int i, n = libbpf_num_possible_cpus(), cpu;

	(void)state;
	assert_true(n > 0 && n <= 64);
	tiny_load();
	progs[0] = bpf_program__fd(tiny->progs.canary_tc_ingress);
	progs[1] = bpf_program__fd(tiny->progs.canary_xdp_ingress);
	tiny_fds.services = bpf_map__fd(tiny->maps.CANARY_MAP(services));
	tiny_fds.filter = bpf_map__fd(tiny->maps.CANARY_MAP(vip_filter));
	tiny_fds.backends = bpf_map__fd(tiny->maps.CANARY_MAP(be_filter));
	tiny_fds.gens = bpf_map__fd(tiny->maps.CANARY_MAP(svc_gens));
	svc_fill(&svc, &web_def, 5000);
	assert_int_equal(svcindex_put(&tiny_fds, &web_def.key, &svc, BPF_ANY), 0);
	tiny_syn(progs[0], 47000, &x); /* fills the table */
	assert_int_equal(x.ret, TC_ACT_OK);
	assert_int_not_equal(out_daddr(&x), VIP_WEB);
	for (i = 0; i < 2; i++) {
		tiny_syn(progs[i], (__u16)(47001 + i), &x);
		assert_int_equal(x.ret, drops[i]);
	}
	assert_int_equal(bpf_map__lookup_elem(tiny->maps.CANARY_MAP(reasons), &key, sizeof(key),
					      full, sizeof(full[0]) * (size_t)n, 0),
			 0);
	for (cpu = 1; cpu < n; cpu++)
		full[0] += full[cpu];
	assert_int_equal(full[0], 2);
}

/* ------------------------------------------------------------------------ */
/* Conntrack entries lost mid-flow (LRU eviction): what comes back. */

/*
 * A flow whose forward entry was evicted gets a new one from its next
 * packet; that entry never saw the handshake. A RST from the backend on it
 * resets an established connection: counted as a reset, never as a refusal
 * (which would read as a backend refusing new connections, and abort a
 * healthy canary).
 */
static void test_rst_on_recreated_entry(void **state)
{
	struct canary_metrics m;
	struct canary_ct_key k;
	struct flow f;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 54000);
	flow_establish(&f);
	k = flow_fwd_key(&f);
	ct_evict(&k);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 1);
	flow_reply(&f, PKT_TCP_RST | PKT_TCP_ACK, NULL, 0);
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.conns_refused, 0);
	assert_int_equal(m.conns_reset, 1);
}

/*
 * A flow that lost only its forward entry still has its reverse one, keyed
 * by its backend: its next packet goes back to that backend, whatever the
 * weight says now. Chosen again, a stable flow went to the canary after an
 * eviction and a weight change, and the canary reset it.
 */
static void test_lost_forward_keeps_backend(void **state)
{
	struct canary_ct_entry e;
	struct canary_ct_key k;
	struct flow f;
	int i;

	for (i = 0; i < 8; i++) {
		svc_set_weight(&web_def, 0);
		flow_init(&f, test_path(state), &web_def, CLIENT_A, (__u16)(54100 + i));
		flow_establish(&f);
		assert_int_equal(f.version, CANARY_V_STABLE);
		k = flow_fwd_key(&f);
		ct_evict(&k);
		svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
		flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get)); /* to its own backend */
		assert_true(ct_get(&k, &e));
		assert_int_equal(e.version, CANARY_V_STABLE);
		flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	}
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 8);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 0);
}

/* ------------------------------------------------------------------------ */
/* Conntrack lifetimes: the agent's expiry pass (bpf/ct_count.bpf.c). */

/* The entries' clock (bpf_ktime_get_coarse_ns). */
static __u64 coarse_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* Make every entry of table fd look idle for age_ns (no older than boot). */
static void ct_age_table(int fd, __u64 age_ns)
{
	static struct canary_ct_key keys[64];
	struct canary_ct_entry e;
	size_t i, n = fixture_map_keys(fd, keys, sizeof(keys[0]), 64);
	__u64 now = coarse_now_ns();

	for (i = 0; i < n; i++) {
		assert_int_equal(bpf_map_lookup_elem(fd, &keys[i], &e), 0);
		e.last_seen_ns = now > age_ns ? now - age_ns : 0;
		assert_int_equal(bpf_map_update_elem(fd, &keys[i], &e, BPF_EXIST), 0);
	}
}

/* The same for conntrack and the half-open table. */
static void ct_age_all(__u64 age_ns)
{
	ct_age_table(fx.ct_fd, age_ns);
	ct_age_table(fx.ct_syn_fd, age_ns);
}

/* One expiry pass, as the agent runs it; returns the entries it removed. */
static unsigned int ct_expire_pass(void)
{
	struct canary_dp *dp;
	unsigned int expired;

	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	assert_int_equal(dp_ct_expire(dp, &expired), 0);
	dp_close(dp);
	return expired;
}

static bool flow_tracked(const struct flow *f)
{
	struct canary_ct_key fk = flow_fwd_key(f), rk = flow_rev_key(f);
	struct canary_ct_entry e;
	bool fwd = ct_get(&fk, &e), rev = ct_get(&rk, &e);

	assert_int_equal(fwd, rev); /* the two entries of a flow go together */
	return fwd;
}

#define SEC_NS 1000000000ULL

/*
 * Entries end: a closed TCP flow's after 10 s, a handshake never answered
 * and a UDP flow's after 60 s idle, an established TCP flow's after 6 h; a
 * reverse entry after 60 s without a reply (an established flow's comes
 * back with the client's next packet). Without lifetimes the table was
 * always full and turnover depended on the insert rate.
 */
/*
 * Entries are stamped with CLOCK_MONOTONIC_COARSE, the agent's expiry
 * clock, also when it comes from the per-CPU cache (bpf/lib/clock.h): a
 * cache left from another jiffy (here a forged one) is read again, never
 * used.
 */
static void test_conntrack_clock(void **state)
{
	int fd = bpf_map__fd(fx.skel->maps.CANARY_MAP(clock_cache));
	struct canary_clock_cache *stale = calloc((size_t)fx.ncpus, sizeof(*stale));
	struct canary_ct_entry e;
	struct canary_ct_key k;
	__u64 before, after;
	struct flow f;
	__u32 zero = 0;
	int cpu;

	(void)state;
	assert_non_null(stale);
	for (cpu = 0; cpu < fx.ncpus; cpu++)
		stale[cpu] = (struct canary_clock_cache){ .jiffies = 1, .coarse_ns = 1 };
	assert_int_equal(bpf_map_update_elem(fd, &zero, stale, BPF_ANY), 0);
	free(stale);

	flow_init(&f, &tc_path, &web_def, CLIENT_A, 55100);
	before = coarse_now_ns();
	flow_establish(&f);
	after = coarse_now_ns();
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	/* One tick of lag at most (clock.h); 50 ms is far above any HZ's tick. */
	assert_true(e.created_ns + 50000000ULL >= before);
	assert_true(e.created_ns <= after);
}

static void test_ct_expiry(void **state)
{
	struct flow closed, open, syn, udp, orphan;
	struct canary_ct_key k;
	struct canary_dp *dp;

	(void)state;
	flow_init(&closed, &tc_path, &web_def, CLIENT_A, 55000);
	flow_establish(&closed);
	flow_send(&closed, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	flow_reply(&closed, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
	flow_send(&closed, PKT_TCP_ACK, NULL, 0);
	flow_init(&open, &tc_path, &web_def, CLIENT_A, 55001);
	flow_establish(&open);
	flow_init(&syn, &tc_path, &web_def, CLIENT_A, 55002);
	flow_open(&syn);
	flow_init(&udp, &tc_path, &dns_def, CLIENT_A, 55003);
	flow_open(&udp);
	flow_init(&orphan, &tc_path, &web_def, CLIENT_A, 55004);
	flow_establish(&orphan);
	k = flow_fwd_key(&orphan);
	ct_evict(&k);
	assert_int_equal(ct_count(), 9);

	ct_age_all(11 * SEC_NS);
	assert_int_equal(ct_expire_pass(), 2);
	assert_false(flow_tracked(&closed));
	assert_true(flow_tracked(&open) && flow_tracked(&syn) && flow_tracked(&udp));
	ct_age_all(61 * SEC_NS);
	/* The handshake's 2 entries go from the half-open table, not counted here. */
	assert_int_equal(ct_expire_pass(), 4);
	assert_false(flow_tracked(&syn) || flow_tracked(&udp));
	assert_int_equal(ct_count(), 1); /* the established flow's forward entry */
	flow_send(&open, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_true(flow_tracked(&open));
	flow_reply(&open, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200)); /* restored to the VIP */
	/* An established flow needs 6 h idle: only a machine up that long can show it. */
	if (coarse_now_ns() > 21601 * SEC_NS) {
		ct_age_all(21601 * SEC_NS);
		assert_int_equal(ct_expire_pass(), 2);
		assert_int_equal(ct_count(), 0);
	} else {
		print_message(
			"  up for less than 6 h: the established flow's lifetime is not shown\n");
		ct_age_all(coarse_now_ns());
		assert_int_equal(ct_expire_pass(),
				 1); /* its reverse entry; the forward one stays */
		assert_int_equal(ct_count(), 1);
	}

	/* Expired entries are not evictions: created = expired + in the map + the one we deleted. */
	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	assert_int_equal(dp_ct_expired(dp), 2 + 4 + (ct_count() ? 1 : 2));
	assert_int_equal(dp_ct_evictions(ct_stats_get().entries_created - dp_ct_expired(dp),
					 ct_count() + 1, 0),
			 0);
	dp_close(dp);
}

/*
 * A request never answered while its client stays connected: the expiry
 * pass ends it as a failed turn (5xx, the time waited as latency) once it
 * is older than the HTTP timeout, and only once; a younger one it leaves.
 */
static void test_http_request_timeout(void **state)
{
	struct canary_metrics m;
	struct canary_ct_entry e;
	struct canary_ct_key k;
	struct flow f;
	__u64 age = CANARY_HTTP_TIMEOUT_NS + 5 * SEC_NS;

	(void)state;
	metrics_zero(SVC_WEB_ID);
	flow_init(&f, &tc_path, &web_def, CLIENT_A, 55100);
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	ct_expire_pass();
	assert_true(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.requests, 1);
	assert_int_equal(m.responses[5] + m.latency_count, 0);

	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	e.req_start_ns -= age; /* the request started age ago */
	assert_int_equal(bpf_map_update_elem(fx.ct_fd, &k, &e, BPF_EXIST), 0);
	ct_expire_pass();
	ct_expire_pass();
	assert_false(flow_flags(&f) & CANARY_CT_F_IN_REQUEST);
	metrics_get(SVC_WEB_ID, f.version, &m);
	assert_int_equal(m.responses[5], 1);
	assert_int_equal(m.latency_count, 1);
	assert_true(m.latency_sum_us >= age / 1000);
	assert_true(m.latency_sum_us < (age + 10 * SEC_NS) / 1000);
	assert_true(flow_tracked(&f)); /* the connection itself lives on */
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200)); /* too late: no turn */
	assert_turns(&f, 1, 0, 0, 1);
}

/* clang-format off */
DP_SUITE(conntrack,
	BOTH(test_refused_and_reset),
	BOTH(test_port_reuse_after_fin),
	BOTH(test_port_reuse_after_refusal),
	BOTH(test_port_reuse_stale_reverse),
	BOTH(test_port_reuse_unanswered_syn),
	BOTH(test_syn_retransmit),
	BOTH(test_syn_retransmit_after_synack),
	BOTH(test_syn_retransmit_without_fast_open_data),
	BOTH(test_ct_miss_non_syn),
	BOTH(test_ct_entries_counted),
	BOTH(test_reverse_entry_restored),
	ONCE(test_ct_lru_pressure),
	BOTH(test_reply_without_forward),
	BOTH(test_plain_reply_reads_forward_once_a_second),
	BOTH(test_reply_on_ingress),
	{ "test_ct_insert_fails", test_ct_insert_fails, reset_maps, tiny_teardown, NULL },
	BOTH(test_rst_on_recreated_entry),
	BOTH(test_lost_forward_keeps_backend),
	ONCE(test_conntrack_clock),
	ONCE(test_ct_expiry),
	ONCE(test_http_request_timeout));
/* clang-format on */
