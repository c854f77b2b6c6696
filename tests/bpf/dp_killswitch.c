// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The operator's kill switch (killswitch_v<N>).
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* The operator's kill switch (killswitch_v<N>). */

static void killswitch(const struct svc_def *d, bool on)
{
	struct canary_killswitch ks = { .engaged = 1 };

	if (on)
		assert_int_equal(bpf_map_update_elem(fx.killswitch_fd, &d->key, &ks, BPF_ANY), 0);
	else
		assert_int_equal(bpf_map_delete_elem(fx.killswitch_fd, &d->key), 0);
}

static void test_killswitch(void **state)
{
	struct flow f;
	struct xfer x;
	int i;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	override_add(SVC_WEB_ID, CLIENT_B, 32, CANARY_V_CANARY);
	killswitch(&web_def, true);
	/* Weight 100%, an override to the canary: still no new flow reaches it. */
	for (i = 0; i < 40; i++) {
		flow_init(&f, test_path(state), &web_def, i % 2 ? CLIENT_A : CLIENT_B,
			  (__u16)(54000 + i));
		assert_int_equal(flow_open(&f), CANARY_V_STABLE);
	}
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 0);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 40);

	/* No stable backend: no fallback to the canary either. */
	svc_set_backends(&web_def, NULL, 0, web_canary, N_OF(web_canary));
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 54100);
	flow_in(&f, PKT_TCP_SYN, NULL, 0, &x);
	assert_untouched(&x, f.path->pass);
	assert_int_equal(reason(CANARY_R_NO_BACKEND), 1);

	/* Cleared by the operator: the weight applies again. */
	killswitch(&web_def, false);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 54101);
	assert_int_equal(flow_open(&f), CANARY_V_CANARY);
}

/* clang-format off */
DP_SUITE(killswitch,
	BOTH(test_killswitch));
/* clang-format on */
