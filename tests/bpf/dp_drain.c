// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Draining backends: the slots after a version's n_backends that hold an
 * address. New flows never go there; established flows to them stay; a
 * backend that leaves the slots altogether is re-chosen as before.
 */
#include "harness.h"

/* Flows opened by the selection test: enough hashes to land on every slot. */
#define DRAIN_FLOWS 512

/*
 * Write d's lists as ready[v] followed by its draining tail drain[v]
 * (n_backends = the ready count), one atomic update, a new generation.
 */
static void svc_set_draining(const struct svc_def *d,
			     const struct canary_backend *ready[CANARY_V_COUNT],
			     const __u8 n_ready[CANARY_V_COUNT],
			     const struct canary_backend *drain[CANARY_V_COUNT],
			     const __u8 n_drain[CANARY_V_COUNT])
{
	struct canary_service s;
	int v;

	svc_read(d, &s);
	memset(s.backends, 0, sizeof(s.backends));
	for (v = 0; v < CANARY_V_COUNT; v++) {
		assert_true(n_ready[v] + n_drain[v] <= CANARY_MAX_BACKENDS);
		if (n_ready[v])
			memcpy(s.backends[v], ready[v], n_ready[v] * sizeof(*ready[v]));
		if (n_drain[v])
			memcpy(&s.backends[v][n_ready[v]], drain[v],
			       n_drain[v] * sizeof(*drain[v]));
		s.n_backends[v] = n_ready[v];
	}
	s.generation++;
	assert_int_equal(fixture_svc_put(&fx, &d->key, &s, BPF_EXIST), 0);
}

/* The flow's backend moves from its version's list to the draining tail. */
static void drain_flow_backend(const struct flow *f)
{
	struct canary_backend ready[CANARY_V_COUNT][CANARY_MAX_BACKENDS];
	struct canary_backend drain[CANARY_V_COUNT][CANARY_MAX_BACKENDS];
	const struct canary_backend *rp[CANARY_V_COUNT] = { ready[0], ready[1] };
	const struct canary_backend *dp[CANARY_V_COUNT] = { drain[0], drain[1] };
	__u8 n_ready[CANARY_V_COUNT] = { 0 }, n_drain[CANARY_V_COUNT] = { 0 };
	int v, i;

	for (v = 0; v < CANARY_V_COUNT; v++)
		for (i = 0; i < f->svc->n_be[v]; i++) {
			const struct canary_backend *b = &f->svc->be[v][i];

			if (b->addr == f->be_addr && b->port == f->be_port)
				drain[v][n_drain[v]++] = *b;
			else
				ready[v][n_ready[v]++] = *b;
		}
	assert_int_equal(n_drain[0] + n_drain[1], 1);
	svc_set_draining(f->svc, rp, n_ready, dp, n_drain);
}

/* The flow's next client packet goes to another backend: learn which. */
static void flow_send_expect_moved(struct flow *f, __u8 flags, const void *data, size_t len)
{
	struct xfer x;

	flow_in(f, flags, data, len, &x);
	assert_int_equal(x.ret, f->path->pass);
	f->be_addr = out_daddr(&x);
	f->be_port = out_dport(&x);
	assert_nat(&x, true, f->be_addr, f->be_port);
}

static bool is_backend(const struct canary_backend *b, __be32 addr, __be16 port)
{
	return b->addr == addr && b->port == port;
}

/*
 * web's first stable and first canary backend stay ready, the others
 * drain: no new flow, whatever its hash or version, goes to one of them.
 */
static void test_new_flows_avoid_draining(void **state)
{
	const struct canary_backend *ready[CANARY_V_COUNT] = { &web_stable[0], &web_canary[0] };
	const struct canary_backend *drain[CANARY_V_COUNT] = { &web_stable[1], &web_canary[1] };
	const __u8 n_ready[CANARY_V_COUNT] = { 1, 1 };
	const __u8 n_drain[CANARY_V_COUNT] = { 2, 1 };
	int per_version[CANARY_V_COUNT] = { 0 };
	struct flow f;
	int i;

	svc_set_draining(&web_def, ready, n_ready, drain, n_drain);
	for (i = 0; i < DRAIN_FLOWS; i++) {
		flow_init(&f, test_path(state), &web_def, i % 2 ? CLIENT_A : CLIENT_B,
			  (__u16)(20000 + i));
		per_version[flow_open(&f)]++;
		assert_true(is_backend(&web_stable[0], f.be_addr, f.be_port) ||
			    is_backend(&web_canary[0], f.be_addr, f.be_port));
	}
	/* Both versions were chosen: the tails of both were passed over. */
	assert_true(per_version[CANARY_V_STABLE] > 0 && per_version[CANARY_V_CANARY] > 0);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), DRAIN_FLOWS);
	assert_int_equal(reason(CANARY_R_NO_BACKEND), 0);
}

/*
 * A TCP flow whose backend starts draining keeps it: no re-steer, no
 * reset, and its packets both ways count for its version as before.
 */
static void test_established_flow_kept(void **state)
{
	struct canary_ct_entry e;
	struct canary_service svc;
	struct canary_ct_key k;
	struct flow f;
	int i;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 53000);
	flow_establish(&f);
	drain_flow_backend(&f);
	for (i = 0; i < 5; i++) {
		flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
		flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	}
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 0);
	assert_int_equal(reason(CANARY_R_SVC_STALE), 0);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	svc_read(&web_def, &svc);
	assert_int_equal(e.svc_gen, svc.generation);
	assert_int_equal(e.nat_addr, f.be_addr);
	assert_int_equal(e.version, CANARY_V_STABLE);
	assert_int_equal(e.flags & CANARY_CT_F_RESTEERED, 0);
	assert_flow_traffic(&f);
}

/* A UDP flow on a fixed port (DNS) keeps a draining backend the same way. */
static void test_udp_flow_kept(void **state)
{
	struct flow f;
	__be32 addr;
	int i;

	svc_set_weight(&dns_def, 0);
	flow_init(&f, test_path(state), &dns_def, CLIENT_B, 53);
	assert_int_equal(flow_open(&f), CANARY_V_STABLE);
	flow_reply(&f, 0, TXT("answer"));
	addr = f.be_addr;
	drain_flow_backend(&f);
	for (i = 0; i < 5; i++) {
		flow_send(&f, 0, TXT("query"));
		flow_reply(&f, 0, TXT("answer"));
	}
	assert_int_equal(f.be_addr, addr);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 0);
	assert_int_equal(reason(CANARY_R_SVC_STALE), 0);
}

/* Draining first, then gone from the slots: the flow is re-chosen as today. */
static void test_removed_after_draining_rechosen(void **state)
{
	struct canary_backend st[CANARY_MAX_BACKENDS];
	__u8 n = 0;
	struct flow f;
	__be32 old;
	int i;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 53100);
	flow_establish(&f);
	drain_flow_backend(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 0);

	for (i = 0; i < N_OF(web_stable); i++)
		if (!is_backend(&web_stable[i], f.be_addr, f.be_port))
			st[n++] = web_stable[i];
	svc_set_backends(&web_def, st, n, web_canary, N_OF(web_canary));
	old = f.be_addr;
	flow_send_expect_moved(&f, PKT_TCP_ACK, NULL, 0);
	assert_true(f.be_addr != old);
	assert_int_equal(be_version(&web_def, f.be_addr, f.be_port), CANARY_V_STABLE);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 1);
	assert_true(flow_flags(&f) & CANARY_CT_F_RESTEERED);
}

/*
 * Every stable backend draining: a new flow takes the canary list, as for
 * an empty stable list (the agent never writes this from Kubernetes: it
 * keeps the last list then); the established stable flow stays.
 */
static void test_all_draining(void **state)
{
	const struct canary_backend *ready[CANARY_V_COUNT] = { NULL, web_canary };
	const struct canary_backend *drain[CANARY_V_COUNT] = { web_stable, NULL };
	const __u8 n_ready[CANARY_V_COUNT] = { 0, N_OF(web_canary) };
	const __u8 n_drain[CANARY_V_COUNT] = { N_OF(web_stable), 0 };
	struct flow old, f;

	svc_set_weight(&web_def, 0);
	flow_init(&old, test_path(state), &web_def, CLIENT_A, 53200);
	flow_establish(&old);
	svc_set_draining(&web_def, ready, n_ready, drain, n_drain);
	flow_init(&f, test_path(state), &web_def, CLIENT_B, 53201);
	assert_int_equal(flow_open(&f), CANARY_V_CANARY);
	flow_send(&old, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&old, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 0);
	assert_int_equal(reason(CANARY_R_SVC_STALE), 0);
}

/* clang-format off */
DP_SUITE(drain,
	BOTH(test_new_flows_avoid_draining),
	BOTH(test_established_flow_kept),
	BOTH(test_udp_flow_kept),
	BOTH(test_removed_after_draining_rechosen),
	BOTH(test_all_draining));
/* clang-format on */
