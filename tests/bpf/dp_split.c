// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Choosing a version: the weighted split over many connections, client-ip
 * affinity, source overrides and the fallback when a version has no backend.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* Split accuracy over many distinct connections. */

#define SPLIT_N 100000

/* Run SPLIT_N SYNs from distinct tuples; return how many went to the canary. */
static __u32 split_run(const struct path *p, __u16 weight)
{
	struct pkt_spec s = { SYN_TO(VIP_WEB, 80) };
	struct xfer x;
	__u32 i, canary = 0;

	ct_clear();
	metrics_zero(SVC_WEB_ID);
	svc_set_weight(&web_def, weight);
	for (i = 0; i < SPLIT_N; i++) {
		s.saddr = htonl(0xac100000U + (i >> 9)); /* 172.16.x.y */
		s.sport = htons((__u16)(20000 + (i & 511)));
		build(&x, &s);
		if (prog_run(*p->fd, &x, 1) != p->pass)
			fail_msg("SYN %u: verdict %d", i, x.ret);
		int v = be_version(&web_def, out_daddr(&x), out_dport(&x));

		if (v < 0)
			fail_msg("SYN %u: sent to no backend", i);
		canary += (__u32)v;
	}
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), canary);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), SPLIT_N - canary);
	return canary;
}

static void split_check(const struct path *p, __u16 weight)
{
	__u32 canary = split_run(p, weight);
	double share = 100.0 * canary / SPLIT_N;
	double want = weight / 100.0;

	print_message("  split %-3s weight %5u bp: canary %7.3f%% (%u of %u), want %.2f%%\n",
		      p->name, weight, share, canary, SPLIT_N, want);
	if (weight == 0)
		assert_int_equal(canary, 0);
	else if (weight == CANARY_WEIGHT_MAX)
		assert_int_equal(canary, SPLIT_N);
	else if (share < want - 0.5 || share > want + 0.5)
		fail_msg("share %.3f%% outside %.2f%% +- 0.5", share, want);
}

static void test_split_accuracy(void **state)
{
	static const __u16 weights[] = { 0, 1, 1000, 5000, 10000 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(weights) / sizeof(weights[0]); i++)
		split_check(&tc_path, weights[i]);
	split_check(&xdp_path, 5000);
	split_check(&xdp_path, 1000);
}

/* ------------------------------------------------------------------------ */
/* Client-ip affinity and source overrides. */

/* Open n connections from one client; all must land on one version. */
static int client_version(struct path *p, __be32 client, int n)
{
	struct flow f;
	int i, v = -1;

	for (i = 0; i < n; i++) {
		flow_init(&f, p, &web_def, client, (__u16)(30000 + i));
		flow_open(&f);
		if (v >= 0 && f.version != v)
			fail_msg("client %08x: connection %d on version %d, earlier ones on %d",
				 ntohl(client), i, f.version, v);
		v = f.version;
	}
	return v;
}

static void test_client_ip_affinity(void **state)
{
	struct path *p = test_path(state);
	int seen[CANARY_V_COUNT] = { 0, 0 };
	__u32 i, canary = 0;

	svc_install(&web_def, 5000, CANARY_AFFINITY_CLIENT_IP);
	for (i = 0; i < 16; i++)
		seen[client_version(p, htonl(0xc0a80200U + i), 200)]++;
	assert_true(seen[0] > 0 && seen[1] > 0);
	ct_clear();
	for (i = 0; i < 10000; i++)
		canary += (__u32)client_version(p, htonl(0x0a400000U + i * 7), 1);
	print_message("  client-ip %s: canary %.2f%% of 10000 clients\n", p->name, canary / 100.0);
	assert_in_range(canary, 4800, 5200);
}

static void test_overrides(void **state)
{
	struct path *p = test_path(state);

	override_add(SVC_WEB_ID, PKT_IP4(10, 20, 0, 0), 16, CANARY_V_CANARY);
	override_add(SVC_WEB_ID, PKT_IP4(10, 30, 0, 0), 16, CANARY_V_STABLE);
	override_add(SVC_SOLO_ID, PKT_IP4(10, 40, 0, 0), 16, CANARY_V_CANARY);

	svc_set_weight(&web_def, 0);
	assert_int_equal(client_version(p, PKT_IP4(10, 20, 0, 1), 20), CANARY_V_CANARY);
	assert_int_equal(client_version(p, PKT_IP4(10, 20, 255, 254), 20), CANARY_V_CANARY);
	assert_int_equal(client_version(p, PKT_IP4(10, 21, 0, 1), 20), CANARY_V_STABLE);
	/* An override belongs to its service only. */
	assert_int_equal(client_version(p, PKT_IP4(10, 40, 0, 1), 20), CANARY_V_STABLE);

	svc_set_weight(&web_def, 10000);
	assert_int_equal(client_version(p, PKT_IP4(10, 30, 7, 7), 20), CANARY_V_STABLE);
	assert_int_equal(client_version(p, PKT_IP4(10, 31, 7, 7), 20), CANARY_V_CANARY);
	assert_int_equal(client_version(p, PKT_IP4(10, 20, 7, 7), 20), CANARY_V_CANARY);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 80);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 60);
}

/* A version without backends falls back to the other; a corrupt count is refused. */
static void test_backend_fallback(void **state)
{
	struct canary_service svc;
	struct flow f;
	struct xfer x;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	svc_set_backends(&web_def, web_stable, N_OF(web_stable), NULL, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 51200);
	assert_int_equal(flow_open(&f), CANARY_V_STABLE);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);

	svc_read(&web_def, &svc);
	svc.n_backends[CANARY_V_STABLE] = CANARY_MAX_BACKENDS + 1;
	assert_int_equal(fixture_svc_put(&fx, &web_def.key, &svc, BPF_EXIST), 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 51201);
	flow_in(&f, PKT_TCP_SYN, NULL, 0, &x);
	assert_untouched(&x, f.path->pass);
	assert_int_equal(reason(CANARY_R_NO_BACKEND), 1);
	assert_int_equal(ct_count(), 2);
}

/* clang-format off */
DP_SUITE(split,
	ONCE(test_split_accuracy),
	BOTH(test_client_ip_affinity),
	BOTH(test_overrides),
	BOTH(test_backend_fallback));
/* clang-format on */
