// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Resetting canary flows: the per-flow reset flag and the service's reset
 * epoch.
 */
#include "harness.h"

/* ------------------------------------------------------------------------ */
/* An aborted canary's flow is re-steered to stable to provoke a RST. */

/* What the agent does: read the entry, set the flag, write it back. */
static void agent_request_reset(const struct flow *f)
{
	struct canary_ct_key k = flow_fwd_key(f);
	struct canary_ct_entry e;

	assert_true(ct_get(&k, &e));
	e.flags |= CANARY_CT_F_RESET_REQ;
	assert_int_equal(bpf_map_update_elem(fx.ct_fd, &k, &e, BPF_EXIST), 0);
}

static void assert_resteered(const struct flow *f)
{
	struct canary_ct_key k = flow_fwd_key(f);
	struct canary_ct_entry e;

	assert_true(ct_get(&k, &e));
	assert_int_equal(e.nat_addr, f->be_addr);
	assert_int_equal(e.nat_port, f->be_port);
	assert_true(e.flags & CANARY_CT_F_RESTEERED);
	k = flow_rev_key(f);
	assert_true(ct_get(&k, &e));
	assert_true(e.flags & CANARY_CT_F_REVERSE);
	assert_int_equal(e.nat_addr, f->svc->key.vip);
	assert_int_equal(e.nat_port, f->svc->key.port);
}

static void test_reset_canary_flow(void **state)
{
	struct canary_metrics m;
	struct flow f;
	struct xfer x;
	int v;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 48000);
	flow_establish(&f);
	assert_int_equal(f.version, CANARY_V_CANARY);
	svc_set_weight(&web_def, 0);
	agent_request_reset(&f);

	flow_in(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get), &x);
	assert_int_equal(x.ret, f.path->pass);
	f.be_addr = out_daddr(&x);
	f.be_port = out_dport(&x);
	assert_int_equal(be_version(&web_def, f.be_addr, f.be_port), CANARY_V_STABLE);
	assert_nat(&x, true, f.be_addr, f.be_port);
	assert_int_equal(reason(CANARY_R_RESET_STEERED), 1);
	assert_resteered(&f);

	/* The stable backend knows no such connection and resets it. */
	flow_reply(&f, PKT_TCP_RST, NULL, 0);
	assert_true(flow_flags(&f) & CANARY_CT_F_RST_SEEN);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_RESET_STEERED), 1);
	for (v = 0; v < CANARY_V_COUNT; v++) {
		metrics_get(SVC_WEB_ID, v, &m);
		assert_int_equal(m.conns_reset + m.conns_refused, 0);
	}
}

/* ------------------------------------------------------------------------ */
/* Resetting canary flows by the service's reset epoch. */

/* The agent's reset, through dataplane.c on the fixture's pins. */
static void test_reset_epoch(void **state)
{
	struct canary_ct_entry before, after;
	struct canary_service s, fresh;
	struct canary_dp *dp;
	struct canary_ct_key k;
	unsigned int n = 0;
	struct flow f, g;
	struct xfer x;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 53000);
	flow_establish(&f);
	assert_int_equal(f.version, CANARY_V_CANARY);
	svc_set_weight(&web_def, 0);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &before));

	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	assert_int_equal(dp_reset_canary_flows(dp, SVC_WEB_ID, &n), 0);
	assert_int_equal(n, 1);
	/* User space wrote no conntrack entry: nothing of the data path's to undo. */
	assert_true(ct_get(&k, &after));
	assert_memory_equal(&before, &after, sizeof(before));
	svc_read(&web_def, &s);
	assert_true(s.reset_ns >= before.created_ns);

	/* The agent's next write of the service (a fresh value) keeps the epoch. */
	svc_fill(&fresh, &web_def, CANARY_WEIGHT_MAX);
	assert_int_equal(dp_service_put(dp, &web_def.key, &fresh), 0);
	svc_read(&web_def, &fresh);
	assert_int_equal(fresh.reset_ns, s.reset_ns);
	dp_close(dp);

	flow_in(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get), &x);
	assert_int_equal(x.ret, f.path->pass);
	f.be_addr = out_daddr(&x);
	f.be_port = out_dport(&x);
	assert_int_equal(be_version(&web_def, f.be_addr, f.be_port), CANARY_V_STABLE);
	assert_int_equal(reason(CANARY_R_RESET_STEERED), 1);
	assert_resteered(&f);

	/* A canary flow that begins after the epoch is not reset. */
	sleep_us(20000); /* past the coarse clock's tick */
	flow_init(&g, test_path(state), &web_def, CLIENT_B, 53001);
	flow_establish(&g);
	assert_int_equal(g.version, CANARY_V_CANARY);
	flow_send(&g, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_int_equal(reason(CANARY_R_RESET_STEERED), 1);
	assert_int_equal(flow_flags(&g) & CANARY_CT_F_RESTEERED, 0);
}

/*
 * The count the abort and emergency-rollback report takes in the canary
 * flows still in their handshake: they are reset too, once the client's
 * ACK moves them to conntrack.
 */
static void test_reset_count_half_open(void **state)
{
	struct canary_dp *dp;
	unsigned int n = 0;
	struct flow f, g;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 53100);
	flow_establish(&f);
	flow_init(&g, test_path(state), &web_def, CLIENT_B, 53101);
	assert_int_equal(flow_open(&g), CANARY_V_CANARY); /* SYN only: half-open */
	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	assert_int_equal(dp_reset_canary_flows(dp, SVC_WEB_ID, &n), 0);
	dp_close(dp);
	assert_int_equal(n, 2);
}

/* clang-format off */
DP_SUITE(reset,
	BOTH(test_reset_canary_flow),
	BOTH(test_reset_epoch),
	BOTH(test_reset_count_half_open));
/* clang-format on */
