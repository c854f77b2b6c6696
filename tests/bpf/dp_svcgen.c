// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Service generations: established flows after the service changed
 * (weights, backends, a reused id, a recreated VIP).
 */
#include "harness.h"
#include "canary_svcindex.h"
#include "svcindex.h"

/* ------------------------------------------------------------------------ */
/* A flow keeps its backend whatever happens to the service afterwards. */

static void flow_follow_resteer(struct flow *f, __u8 flags, const void *data, size_t len);

/*
 * A flow keeps its version and backend through weight changes. An endpoint
 * change that removes its backend moves it to a backend of the same version
 * (test_backend_removed_rechosen has the details).
 */
static void test_flow_sticky(void **state)
{
	struct flow st, ca;
	struct canary_ct_entry e;
	struct canary_ct_key k;

	svc_set_weight(&web_def, 0);
	flow_init(&st, test_path(state), &web_def, CLIENT_A, 42000);
	flow_establish(&st);
	assert_int_equal(st.version, CANARY_V_STABLE);
	svc_set_weight(&web_def, 10000);
	flow_init(&ca, test_path(state), &web_def, CLIENT_A, 42001);
	flow_establish(&ca);
	assert_int_equal(ca.version, CANARY_V_CANARY);

	flow_send(&st, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	svc_set_weight(&web_def, 0);
	flow_send(&ca, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	svc_set_backends(&web_def, web_stable_alt, 1, web_canary_alt, 1);
	flow_follow_resteer(&st, PKT_TCP_ACK, NULL, 0);
	flow_follow_resteer(&ca, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(st.be_addr, web_stable_alt[0].addr);
	assert_int_equal(ca.be_addr, web_canary_alt[0].addr);
	svc_set_weight(&web_def, 10000);
	flow_send(&st, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_send(&ca, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));

	k = flow_fwd_key(&st);
	assert_true(ct_get(&k, &e));
	assert_int_equal(e.version, CANARY_V_STABLE);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_STABLE), 1);
	assert_int_equal(opened(SVC_WEB_ID, CANARY_V_CANARY), 1);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 2);
	assert_int_equal(reason(CANARY_R_FORWARD), 2 + 6);
	assert_int_equal(reason(CANARY_R_CT_MISS_NON_SYN), 0);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 2);
	assert_flow_traffic(&st);
	assert_flow_traffic(&ca);
}

/* ------------------------------------------------------------------------ */
/* Service generations: established flows after the service changed. */

/* Service d's list of version v without the flow's backend; returns its length. */
static __u8 list_without(const struct svc_def *d, int v, const struct flow *f,
			 struct canary_backend *out)
{
	__u8 i, n = 0;

	for (i = 0; i < d->n_be[v]; i++)
		if (d->be[v][i].addr != f->be_addr || d->be[v][i].port != f->be_port)
			out[n++] = d->be[v][i];
	return n;
}

/* Take the flow's backend out of its list, as a health check or a config change does. */
static void remove_flow_backend(const struct flow *f)
{
	struct canary_backend st[CANARY_MAX_BACKENDS], ca[CANARY_MAX_BACKENDS];
	__u8 n_st = list_without(f->svc, CANARY_V_STABLE, f, st);
	__u8 n_ca = list_without(f->svc, CANARY_V_CANARY, f, ca);

	assert_int_equal(n_st + n_ca, f->svc->n_be[0] + f->svc->n_be[1] - 1);
	svc_set_backends(f->svc, st, n_st, ca, n_ca);
}

/* The flow's next client packet goes elsewhere: learn where, with the reply path. */
static void flow_follow_resteer(struct flow *f, __u8 flags, const void *data, size_t len)
{
	struct xfer x;
	__be32 old_addr = f->be_addr;
	__be16 old_port = f->be_port;

	flow_in(f, flags, data, len, &x);
	assert_int_equal(x.ret, f->path->pass);
	f->be_addr = out_daddr(&x);
	f->be_port = out_dport(&x);
	assert_false(f->be_addr == old_addr && f->be_port == old_port);
	assert_nat(&x, true, f->be_addr, f->be_port);
}

static void test_backend_removed_rechosen(void **state)
{
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct canary_service svc;
	struct flow f;
	int version;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52000);
	flow_establish(&f);
	version = f.version;
	remove_flow_backend(&f);

	flow_follow_resteer(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	/* Same version first: both versions have other backends left. */
	assert_int_equal(be_version(&web_def, f.be_addr, f.be_port), version);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 1);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	svc_read(&web_def, &svc);
	assert_int_equal(e.svc_gen, svc.generation);
	assert_int_equal(e.nat_addr, f.be_addr);
	assert_true(e.flags & CANARY_CT_F_RESTEERED);
	/* The new backend's reset comes back from the VIP and is not a refusal. */
	flow_reply(&f, PKT_TCP_RST, NULL, 0);
	assert_int_equal(flow_conns_reset(&f), 0);
	flow_send(&f, PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 1);
}

static void test_backend_kept(void **state)
{
	struct canary_ct_key k;
	struct canary_ct_entry e;
	struct canary_service svc;
	struct flow f;

	svc_set_weight(&web_def, CANARY_WEIGHT_MAX);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52100);
	flow_establish(&f);
	assert_int_equal(f.version, CANARY_V_CANARY);
	/* A promotion step and a list change that keeps the flow's backend. */
	svc_set_weight(&web_def, 0);
	svc_set_backends(&web_def, web_stable, N_OF(web_stable), web_canary, N_OF(web_canary));
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_200));
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 0);
	assert_int_equal(reason(CANARY_R_SVC_STALE), 0);
	k = flow_fwd_key(&f);
	assert_true(ct_get(&k, &e));
	svc_read(&web_def, &svc);
	assert_int_equal(e.svc_gen, svc.generation);
	assert_int_equal(e.version, CANARY_V_CANARY);
	assert_flow_traffic(&f);
}

/* UDP with a fixed source port never opens a new flow: only the check moves it. */
static void test_udp_fixed_port_rechosen(void **state)
{
	struct flow f;
	int i;

	svc_set_weight(&dns_def, 0);
	flow_init(&f, test_path(state), &dns_def, CLIENT_B, 53);
	assert_int_equal(flow_open(&f), CANARY_V_STABLE);
	flow_reply(&f, 0, TXT("answer"));
	remove_flow_backend(&f);
	flow_follow_resteer(&f, 0, TXT("query"));
	assert_int_equal(be_version(&dns_def, f.be_addr, f.be_port), CANARY_V_STABLE);
	for (i = 0; i < 10; i++) {
		flow_send(&f, 0, TXT("query"));
		flow_reply(&f, 0, TXT("answer"));
	}
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 1);
	assert_int_equal(reason(CANARY_R_NEW_FLOW), 1);
	assert_int_equal(flow_flags(&f) & CANARY_CT_F_RESTEERED, 0);
}

/* Another service with the id of web, behind another VIP. */
static const struct svc_def reuse_def = {
	.name = "reuse",
	.key = { .vip = PKT_IP4(10, 96, 0, 40), .port = PKT_BE16(81), .proto = IPPROTO_TCP },
	.id = SVC_WEB_ID,
	.flags = CANARY_SVC_F_HTTP,
	.be = { solo_stable, solo_canary },
	.n_be = { N_OF(solo_stable), N_OF(solo_canary) },
};

/* A deleted service's flows must not count into the service that takes its id. */
static void test_svc_id_reuse(void **state)
{
	struct canary_metrics m;
	struct flow f;
	int v;

	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52200);
	flow_establish(&f);
	assert_int_equal(fixture_svc_delete(&fx, &web_def.key, web_def.id), 0);
	metrics_zero(SVC_WEB_ID);
	svc_install(&reuse_def, 5000, CANARY_AFFINITY_NONE);

	/* The old flow goes on to its backend, to end, but is counted nowhere. */
	flow_send(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	flow_reply(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_503));
	flow_reply(&f, PKT_TCP_RST, NULL, 0);
	for (v = 0; v < CANARY_V_COUNT; v++) {
		metrics_get(SVC_WEB_ID, v, &m);
		assert_int_equal(m.packets_in + m.packets_out + m.requests + m.responses[5], 0);
		assert_int_equal(m.conns_reset + m.conns_refused, 0);
	}
	assert_int_equal(reason(CANARY_R_SVC_STALE), 3);
}

/* The same VIP made again, with a new first generation and other backends. */
static void test_svc_recreated(void **state)
{
	struct canary_service s;
	struct flow f;

	svc_set_weight(&web_def, 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52300);
	flow_establish(&f);
	assert_int_equal(fixture_svc_delete(&fx, &web_def.key, web_def.id), 0);
	svc_fill(&s, &web_def, 0);
	s.generation = 0x7a11e5U;
	/* Slots after the lists are draining backends (backends.h): clear them. */
	memset(s.backends, 0, sizeof(s.backends));
	s.n_backends[CANARY_V_STABLE] = N_OF(web_stable_alt);
	memcpy(s.backends[CANARY_V_STABLE], web_stable_alt, sizeof(web_stable_alt));
	s.n_backends[CANARY_V_CANARY] = N_OF(web_canary_alt);
	memcpy(s.backends[CANARY_V_CANARY], web_canary_alt, sizeof(web_canary_alt));
	assert_int_equal(fixture_svc_put(&fx, &web_def.key, &s, BPF_NOEXIST), 0);

	flow_follow_resteer(&f, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get));
	assert_int_equal(f.be_addr, web_stable_alt[0].addr);
	assert_int_equal(f.be_port, web_stable_alt[0].port);
	assert_int_equal(reason(CANARY_R_CT_RESTEERED), 1);
}

/* Updates replace a service's value under RCU: a program never reads it torn. */
static void test_services_no_prealloc(void **state)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	(void)state;
	assert_int_equal(bpf_obj_get_info_by_fd(fx.svc_fd, &info, &len), 0);
	assert_true(info.map_flags & BPF_F_NO_PREALLOC);
}

/*
 * The VIP filter gates everything: a service written without its filter bit
 * (a raw map write, not svcindex_put) is invisible to the programs.
 */
static void test_raw_service_write_unseen(void **state)
{
	struct canary_service s;
	struct flow f;
	struct xfer x;

	assert_int_equal(fixture_svc_delete(&fx, &web_def.key, web_def.id), 0);
	vip_filter_clear();
	svc_fill(&s, &web_def, 5000);
	assert_int_equal(bpf_map_update_elem(fx.svc_fd, &web_def.key, &s, BPF_ANY), 0);
	flow_init(&f, test_path(state), &web_def, CLIENT_A, 52400);
	flow_in(&f, PKT_TCP_SYN, NULL, 0, &x);
	assert_untouched(&x, f.path->pass);
	assert_int_equal(reason(CANARY_R_NO_SERVICE), 1);

	/* Written with its index, the same service takes the next SYN. */
	assert_int_equal(fixture_svc_put(&fx, &web_def.key, &s, BPF_ANY), 0);
	flow_open(&f);
	assert_true(be_version(&web_def, f.be_addr, f.be_port) >= 0);
}

/* Is the VIP:port/proto's bit set in the filter map fd? */
static bool filter_has(int fd, const struct canary_service_key *k)
{
	__u64 h = canary_vip_hash(k->vip, k->port, k->proto), bits = 0;
	__u32 word = canary_vip_word(h);

	assert_int_equal(bpf_map_lookup_elem(fd, &word, &bits), 0);
	return (bits & canary_vip_bit(h)) != 0;
}

/*
 * Pins of an agent older than the map named map: a flow f of web, from
 * client port cport, established; web deleted (the flow stays pinned); the
 * map's pin removed. Then the agent's load on those pins.
 */
static struct canary_dp *load_on_older_pins(struct flow *f, __u16 cport, const char *map)
{
	char path[sizeof(fx.pin_dir) + 32];
	struct canary_dp *dp = NULL;

	flow_init(f, &tc_path, &web_def, CLIENT_A, cport);
	flow_establish(f);
	assert_int_equal(fixture_svc_delete(&fx, &web_def.key, web_def.id), 0);
	snprintf(path, sizeof(path), "%s/%s", fx.pin_dir, map);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(dp_load(fx.pin_dir, 0, &dp), 0);
	return dp;
}

/*
 * An agent started on pins of an agent older than the filter (no
 * vip_filter_v<N> pin, conntrack kept): the new filter must let the pinned
 * flows through, also those of a service deleted meanwhile, and the
 * generation records must describe the pinned services.
 */
static void test_index_built_on_load(void **state)
{
	struct canary_service_key gone = web_def.key;
	struct canary_svc_gen g;
	struct canary_dp *dp;
	struct pkt_spec spec;
	struct flow f;
	struct xfer x;

	(void)state;
	dp = load_on_older_pins(&f, 52500, CANARY_MAP_NAME("vip_filter"));
	assert_true(filter_has(dp_map_fd(dp, DP_MAP_VIP_FILTER), &gone));
	assert_int_equal(bpf_map_lookup_elem(dp_map_fd(dp, DP_MAP_SVC_GENS), &dns_def.id, &g), 0);
	assert_int_equal(g.generation, 1);
	assert_memory_equal(&g.key, &dns_def.key, sizeof(g.key));
	assert_int_equal(bpf_map_lookup_elem(dp_map_fd(dp, DP_MAP_SVC_GENS), &web_def.id, &g), 0);
	assert_int_equal(g.generation, 0);

	/* The flow of the deleted service still reaches its backend through the new programs. */
	flow_spec(&f, false, PKT_TCP_ACK | PKT_TCP_PSH, TXT(http_get), &spec);
	build(&x, &spec);
	prog_run(dp_prog_fd(dp, DP_PROG_TC_INGRESS), &x, 1);
	assert_int_equal(x.ret, TC_ACT_OK);
	assert_int_equal(out_daddr(&x), f.be_addr);
	dp_close(dp);
}

/*
 * The backend filter gates egress: a reply whose source has no bit (as a
 * raw write of a reverse entry would leave it) is neither looked up,
 * translated nor counted. Once its backend is marked, as svcindex_put()
 * marks every backend of a service, the same reply is restored to the VIP.
 */
static void test_reply_of_unmarked_backend_unseen(void **state)
{
	struct pkt_spec spec;
	struct flow f;
	struct xfer x;

	(void)state;
	flow_init(&f, &tc_path, &web_def, CLIENT_A, 52600);
	flow_open(&f);
	backend_filter_clear();
	flow_spec(&f, true, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0, &spec);
	build(&x, &spec);
	prog_run(fx.tc_eg_fd, &x, 1);
	assert_untouched(&x, TC_ACT_OK);
	assert_int_equal(reason(CANARY_R_REPLY), 0);

	assert_int_equal(svcindex_mark(fx.backend_filter_fd, f.be_addr, f.be_port, IPPROTO_TCP), 0);
	flow_reply(&f, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0);
	assert_int_equal(reason(CANARY_R_REPLY), 1);
}

/*
 * The same upgrade for the backend filter (no be_filter_v<N> pin):
 * the replies of a pinned flow whose service was deleted meanwhile are
 * still restored to the VIP by the new programs.
 */
static void test_backend_index_built_on_load(void **state)
{
	static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct canary_dp *dp;
	struct pkt_spec spec;
	struct flow f;
	struct xfer x;

	(void)state;
	dp = load_on_older_pins(&f, 52700, CANARY_MAP_NAME("be_filter"));
	flow_spec(&f, true, PKT_TCP_ACK | PKT_TCP_PSH, TXT(response), &spec);
	build(&x, &spec);
	prog_run(dp_prog_fd(dp, DP_PROG_TC_EGRESS), &x, 1);
	assert_int_equal(x.ret, TC_ACT_OK);
	assert_nat(&x, false, web_def.key.vip, web_def.key.port);
	dp_close(dp);
}

/* clang-format off */
DP_SUITE(svcgen,
	BOTH(test_flow_sticky),
	BOTH(test_backend_removed_rechosen),
	BOTH(test_backend_kept),
	BOTH(test_udp_fixed_port_rechosen),
	BOTH(test_svc_id_reuse),
	BOTH(test_svc_recreated),
	ONCE(test_services_no_prealloc),
	BOTH(test_raw_service_write_unseen),
	ONCE(test_index_built_on_load),
	ONCE(test_reply_of_unmarked_backend_unseen),
	ONCE(test_backend_index_built_on_load));
/* clang-format on */
