// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The flow cache in front of conntrack (bpf/lib/flowcache.h): which flows
 * get a copy, what a copy serves, and every way a copy is dropped.
 */
#include "harness.h"
#include "canary_flowcache.h"

/* A plain TCP service (no HTTP): its flows may be copied. */
static const struct svc_def fc_def = {
	.name = "fc",
	.key = { .vip = PKT_IP4(10, 96, 0, 42), .port = PKT_BE16(6380), .proto = IPPROTO_TCP },
	.id = 6,
	.be = { solo_stable, solo_canary },
	.n_be = { N_OF(solo_stable), N_OF(solo_canary) },
};

/* Every CPU's value of slot of key k; the caller frees it. */
static struct canary_flow_cache *fc_slot_read(const struct canary_ct_key *k, __u32 *slot)
{
	int fd = bpf_map__fd(fx.skel->maps.CANARY_MAP(flow_cache));
	struct canary_flow_cache *v = calloc((size_t)fx.ncpus, sizeof(*v));

	assert_non_null(v);
	*slot = canary_flow_cache_slot(k);
	assert_int_equal(bpf_map_lookup_elem(fd, slot, v), 0);
	return v;
}

/*
 * Whether some CPU holds a copy of the entry of key k under its slot's
 * generation now, a copy the programs would use; *out is it. (Copies of
 * earlier tests stay in the slots, under older generations.)
 */
static bool fc_copy_of(const struct canary_ct_key *k, struct canary_flow_cache *out)
{
	struct canary_flow_cache *v;
	bool found = false;
	__u32 slot, gen;

	v = fc_slot_read(k, &slot);
	assert_int_equal(bpf_map_lookup_elem(fx.fc_gens_fd, &slot, &gen), 0);
	for (int cpu = 0; cpu < fx.ncpus && !found; cpu++) {
		if (canary_ct_key_equal(&v[cpu].key, k) && v[cpu].slot_gen == gen) {
			*out = v[cpu];
			found = true;
		}
	}
	free(v);
	return found;
}

/* The same for flow f's forward entry (ingress's copy). */
static bool fc_copy_get(const struct flow *f, struct canary_flow_cache *out)
{
	struct canary_ct_key k = flow_fwd_key(f);

	return fc_copy_of(&k, out) && out->reverse == 0;
}

/* The same for flow f's reverse entry (egress's copy). */
static bool fc_reverse_copy_get(const struct flow *f, struct canary_flow_cache *out)
{
	struct canary_ct_key k = flow_rev_key(f);

	return fc_copy_of(&k, out) && out->reverse == 1;
}

/* Make the copies of the entry of key k as old as a flow quiet since boot. */
static void fc_key_age(const struct canary_ct_key *k)
{
	int fd = bpf_map__fd(fx.skel->maps.CANARY_MAP(flow_cache));
	struct canary_flow_cache *v;
	__u32 slot;

	v = fc_slot_read(k, &slot);
	for (int cpu = 0; cpu < fx.ncpus; cpu++)
		if (canary_ct_key_equal(&v[cpu].key, k))
			v[cpu].last_seen_ns = 0;
	assert_int_equal(bpf_map_update_elem(fd, &slot, v, BPF_EXIST), 0);
	free(v);
}

/* Make flow f's forward copies due for the refresh. */
static void fc_copy_age(const struct flow *f)
{
	struct canary_ct_key k = flow_fwd_key(f);

	fc_key_age(&k);
}

/* An established plain flow to fc_def's stable backend, with a copy made. */
static void fc_flow_copied(struct flow *f, void **state, __u16 cport)
{
	struct canary_flow_cache c;

	flow_init(f, test_path(state), &fc_def, CLIENT_A, cport);
	flow_establish(f);
	/* The handshake's last packet promotes the flow: no copy of a changing entry. */
	assert_false(fc_copy_get(f, &c));
	flow_send(f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n"));
	assert_true(fc_copy_get(f, &c));
	assert_int_equal(c.nat_addr, f->be_addr);
	assert_int_equal(c.nat_port, f->be_port);
	assert_int_equal(c.version, f->version);
	assert_int_equal(c.svc_id, fc_def.id);
}

/*
 * A copy serves the flow's next packets without conntrack: an entry
 * evicted meanwhile (here by hand, as the LRU would) is not noticed, and
 * the packets are counted all the same. Once the copy is due for its
 * once-a-second refresh, the packet goes to conntrack again, which finds
 * the entry gone and writes it again from the reverse one.
 */
static void test_flow_cache_serves_until_refresh(void **state)
{
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct flow f;

	svc_install(&fc_def, 0, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47000);
	k = flow_fwd_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &k), 0);

	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n"));
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 0);
	assert_false(ct_get(&k, &e));
	assert_flow_traffic(&f);

	fc_copy_age(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n"));
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 1);
	assert_true(ct_get(&k, &e));
	assert_int_equal(e.nat_addr, f.be_addr);
	assert_true(e.flags & CANARY_CT_F_MIDFLOW);
	assert_flow_traffic(&f);
}

/*
 * A SYN on the tuple of a flow that has a copy opens a new flow (port
 * reuse), chosen again: the new flow's packets must not go where the old
 * copy says. An override, not a weight, sends it elsewhere: the service's
 * generation stays, so only the slot's generation can drop the copy.
 */
static void test_flow_cache_port_reuse(void **state)
{
	struct canary_flow_cache c;
	struct flow f;

	svc_install(&fc_def, 0, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47100);
	assert_int_equal(f.version, CANARY_V_STABLE);
	override_add(fc_def.id, CLIENT_A, 32, CANARY_V_CANARY);
	f.cseq += 0x10000;
	assert_int_equal(flow_open(&f), CANARY_V_CANARY);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 2);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0); /* to the canary backend */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n"));
	assert_true(fc_copy_get(&f, &c));
	assert_int_equal(c.nat_addr, f.be_addr);
	assert_int_equal(c.version, CANARY_V_CANARY);
}

/* A change of the service drops the copy: a removed backend's flow is re-steered. */
static void test_flow_cache_backend_removed(void **state)
{
	struct flow f;
	struct xfer x;

	svc_install(&fc_def, 0, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47200);
	svc_set_backends(&fc_def, web_stable_alt, N_OF(web_stable_alt), solo_canary,
			 N_OF(solo_canary));
	flow_in(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n"), &x);
	assert_int_equal(x.ret, f.path->pass);
	assert_nat(&x, true, web_stable_alt[0].addr, web_stable_alt[0].port);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 1);
}

/* The service's reset epoch covers a copied canary flow: it is re-steered. */
static void test_flow_cache_reset_epoch(void **state)
{
	struct canary_flow_cache c;
	struct canary_service s;
	struct canary_dp *dp;
	unsigned int n = 0;
	struct flow f;
	struct xfer x;

	svc_install(&fc_def, CANARY_WEIGHT_MAX, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47300);
	assert_int_equal(f.version, CANARY_V_CANARY);
	svc_set_weight(&fc_def, 0);
	/* The first packet re-checks the entry against the new generation, the next copies it. */
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	svc_read(&fc_def, &s);
	assert_true(fc_copy_get(&f, &c));
	assert_int_equal(c.svc_gen, s.generation);
	assert_int_equal(dp_open_pinned(fx.pin_dir, &dp), 0);
	assert_int_equal(dp_reset_canary_flows(dp, fc_def.id, &n), 0);
	dp_close(dp);
	assert_int_equal(n, 1);
	svc_read(&fc_def, &s);
	assert_true(s.reset_ns != 0);

	flow_in(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("GET k\r\n"), &x);
	assert_nat(&x, true, solo_stable[0].addr, solo_stable[0].port);
	assert_int_equal(reason(CANARY_R_RESET_STEERED), 1);
}

/*
 * Packets that change the flow go to conntrack whatever the copy: a FIN
 * is recorded there, and a closing flow is not copied again.
 */
static void test_flow_cache_fin(void **state)
{
	struct canary_flow_cache c;
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct flow f;

	svc_install(&fc_def, 0, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47400);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_FIN, NULL, 0);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	assert_true(e.flags & CANARY_CT_F_CLIENT_FIN);

	/*
	 * The copy made before the FIN serves until its refresh (a closing
	 * flow's packets need no more than an open one's), then is not made
	 * again.
	 */
	fc_copy_age(&f);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_true(fc_copy_get(&f, &c));
	assert_int_equal(c.last_seen_ns, 0); /* still the aged copy: not filled again */
}

/*
 * Egress writing a lost forward entry again (from the reverse one, on a
 * reply due for its once-a-second check) drops the copy too: every writer
 * of a forward entry does.
 */
static void test_flow_cache_rebuilt_by_egress(void **state)
{
	struct canary_flow_cache c;
	struct canary_ct_entry e;
	struct canary_ct_key fk, rk;
	struct flow f;

	svc_install(&fc_def, 0, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47600);
	fk = flow_fwd_key(&f);
	rk = flow_rev_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &fk), 0);
	assert_true(ct_get(&rk, &e));
	e.last_seen_ns = 0;
	assert_int_equal(bpf_map_update_elem(fx.ct_fd, &rk, &e, BPF_EXIST), 0);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("+OK\r\n"));
	assert_int_equal(reason(CANARY_R_REPLY_NO_FORWARD), 1);
	assert_true(ct_get(&fk, &e));
	assert_false(fc_copy_get(&f, &c));
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_true(fc_copy_get(&f, &c));
	assert_int_equal(c.nat_addr, f.be_addr);
}

/*
 * Egress keeps copies too, of a plain flow's reverse entry: a reply goes
 * back to the client with the VIP as its source without conntrack, and
 * counts as a reply of its version. An evicted reverse entry is not
 * noticed until the copy is due for its refresh; from then on the reply
 * goes to conntrack, which has no entry for it: passed untouched, as
 * without the cache.
 */
static void test_flow_cache_reply_until_refresh(void **state)
{
	struct canary_flow_cache c;
	struct canary_ct_key rk;
	struct pkt_spec s;
	struct flow f;
	struct xfer x;

	svc_install(&fc_def, 0, CANARY_AFFINITY_NONE);
	fc_flow_copied(&f, state, 47700);
	assert_false(fc_reverse_copy_get(&f, &c)); /* the handshake's reply was half-open */
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("+OK\r\n"));
	assert_true(fc_reverse_copy_get(&f, &c));
	assert_int_equal(c.nat_addr, fc_def.key.vip);
	assert_int_equal(c.nat_port, fc_def.key.port);
	assert_int_equal(c.version, f.version);
	assert_int_equal(c.svc_id, fc_def.id);

	rk = flow_rev_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &rk), 0);
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT("+OK\r\n")); /* restored all the same */
	assert_int_equal(reason(CANARY_R_REPLY), 3);		   /* with the SYN-ACK's */
	assert_flow_traffic(&f);

	fc_key_age(&rk);
	flow_spec(&f, true, PKT_TCP_ACK | PKT_TCP_PSH, TXT("+OK\r\n"), &s);
	build(&x, &s);
	prog_run(fx.tc_eg_fd, &x, 1);
	assert_untouched(&x, TC_ACT_OK);
	assert_int_equal(reason(CANARY_R_REPLY), 3);
}

/*
 * An HTTP flow keeps its request turns in conntrack: its copy serves only
 * packets without payload (a client's pure ACK), and a request goes to
 * conntrack, which counts it. Its replies are not copied at all.
 */
static void test_flow_cache_http_acks_only(void **state)
{
	struct canary_flow_cache c;
	struct canary_ct_key k;
	struct flow f;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 47500);
	flow_establish(&f);
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_true(fc_copy_get(&f, &c));
	assert_int_equal(c.http, 1);
	assert_false(fc_reverse_copy_get(&f, &c));

	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get)); /* counted by conntrack's path */
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_turns(&f, 2, 0, 2, 0);
	assert_false(fc_reverse_copy_get(&f, &c));

	/* A pure ACK needs nothing of the entry: the copy serves it, eviction or not. */
	k = flow_fwd_key(&f);
	assert_int_equal(bpf_map_delete_elem(fx.ct_fd, &k), 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 0);
	assert_flow_traffic(&f);
}

DP_SUITE(flowcache, BOTH(test_flow_cache_serves_until_refresh), BOTH(test_flow_cache_port_reuse),
	 BOTH(test_flow_cache_backend_removed), BOTH(test_flow_cache_reset_epoch),
	 BOTH(test_flow_cache_fin), BOTH(test_flow_cache_rebuilt_by_egress),
	 BOTH(test_flow_cache_reply_until_refresh), BOTH(test_flow_cache_http_acks_only));
