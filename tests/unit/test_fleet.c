// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The fleet's pure parts: the etcd gateway's codec (base64, 64-bit
 * strings, watch lines), the coordinator's keys, the shared and evidence
 * records, pooling, the alpha split, the fence, following the shared
 * state; and a seeded simulation of healthy fleet rollouts judged by the
 * real analysis code, counting false aborts.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "coord.h"
#include "base64.h"
#include "etcd.h"
#include "fleet.h"

/* ---- etcd codec ---- */

static void test_b64_known(void **state)
{
	/* RFC 4648, section 10. */
	static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *coded[] = { "",	   "Zg==",     "Zm8=",	  "Zm9v",
				       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char *enc = base64_encode(plain[i], strlen(plain[i])), *dec = NULL;

		assert_string_equal(enc, coded[i]);
		assert_int_equal(base64_decode(coded[i], &dec, &len), 0);
		assert_int_equal(len, strlen(plain[i]));
		assert_string_equal(dec, plain[i]);
		free(enc);
		free(dec);
	}
}

static void test_b64_binary_and_bad(void **state)
{
	unsigned char bytes[256];
	char *enc, *dec = NULL;
	size_t len, i;

	(void)state;
	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(255 - i);
	enc = base64_encode(bytes, sizeof(bytes));
	assert_int_equal(base64_decode(enc, &dec, &len), 0);
	assert_int_equal(len, sizeof(bytes));
	assert_memory_equal(dec, bytes, sizeof(bytes));
	free(enc);
	free(dec);
	dec = NULL;
	assert_int_equal(base64_decode("Zm9v!", &dec, &len), -EINVAL);
	assert_int_equal(base64_decode("Z", &dec, &len), -EINVAL);
	assert_null(dec);
}

static void test_json_i64(void **state)
{
	json_t *o = json_pack("{s:s, s:I, s:s, s:s}", "rev", "9007199254740993", "num",
			      (json_int_t)42, "bad", "12x", "neg", "-5");
	__s64 v;

	(void)state;
	/* Beyond 2^53: a double would round it; the string keeps it. */
	assert_int_equal(etcd_json_i64(o, "rev", &v), 0);
	assert_true(v == 9007199254740993LL);
	assert_int_equal(etcd_json_i64(o, "num", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(etcd_json_i64(o, "absent", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(etcd_json_i64(o, "bad", &v), -EINVAL);
	assert_int_equal(etcd_json_i64(o, "neg", &v), 0);
	assert_int_equal(v, -5);
	json_decref(o);
}

static void test_prefix_end(void **state)
{
	char end[64];

	(void)state;
	etcd_prefix_end("/canaryd/rollouts/", end, sizeof(end));
	assert_string_equal(end, "/canaryd/rollouts0");
	etcd_prefix_end("a", end, sizeof(end));
	assert_string_equal(end, "b");
}

/* Lines as etcd 3.4's gateway streams them (keys /k1, /k2; values v1). */
static void test_watch_parse(void **state)
{
	static const char created[] =
		"{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":"
		"\"7\",\"raft_term\":\"2\"},\"created\":true}}";
	static const char events[] =
		"{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":[{\"kv\":{\"key\":"
		"\"L2sx\",\"create_revision\":\"8\",\"mod_revision\":\"9\",\"version\":\"2\","
		"\"value\":\"djE=\",\"lease\":\"7587899351052785421\"}},{\"type\":\"DELETE\","
		"\"kv\":{\"key\":\"L2sy\",\"mod_revision\":\"9\"}}]}}";
	static const char compacted[] =
		"{\"result\":{\"header\":{\"revision\":\"30\"},\"canceled\":true,"
		"\"compact_revision\":\"25\"}}";
	struct etcd_watch_batch b;

	(void)state;
	assert_int_equal(etcd_watch_parse(created, strlen(created), &b), 0);
	assert_true(b.created);
	assert_int_equal(b.revision, 7);
	assert_int_equal(b.n_events, 0);
	etcd_watch_batch_free(&b);

	assert_int_equal(etcd_watch_parse(events, strlen(events), &b), 0);
	assert_int_equal(b.n_events, 2);
	assert_string_equal(b.events[0].key, "/k1");
	assert_string_equal(b.events[0].value, "v1");
	assert_int_equal(b.events[0].create_revision, 8);
	assert_int_equal(b.events[0].mod_revision, 9);
	assert_true(b.events[0].lease == 7587899351052785421LL);
	assert_false(b.deleted[0]);
	assert_string_equal(b.events[1].key, "/k2");
	assert_true(b.deleted[1]);
	etcd_watch_batch_free(&b);

	assert_int_equal(etcd_watch_parse(compacted, strlen(compacted), &b), 0);
	assert_true(b.canceled);
	assert_int_equal(b.compact_revision, 25);
	etcd_watch_batch_free(&b);

	assert_int_equal(etcd_watch_parse("{\"error\":{}}", 12, &b), -EINVAL);
}

static void test_coord_keys(void **state)
{
	struct coord_record r;

	(void)state;
	assert_int_equal(coord_parse_key("/canaryd", "/canaryd/rollouts/web/state", &r), 0);
	assert_int_equal(r.kind, COORD_STATE);
	assert_string_equal(r.rollout, "web");
	assert_int_equal(coord_parse_key("/canaryd", "/canaryd/rollouts/web/leader", &r), 0);
	assert_int_equal(r.kind, COORD_LEADER);
	assert_int_equal(coord_parse_key("/canaryd", "/canaryd/rollouts/web/nodes/n-1", &r), 0);
	assert_int_equal(r.kind, COORD_NODE);
	assert_string_equal(r.node, "n-1");
	assert_int_equal(coord_parse_key("/canaryd", "/other/rollouts/web/state", &r), -EINVAL);
	assert_int_equal(coord_parse_key("/canaryd", "/canaryd/rollouts/web/else", &r), -EINVAL);
	assert_int_equal(coord_parse_key("/canaryd", "/canaryd/rollouts//state", &r), -EINVAL);
	assert_int_equal(coord_parse_key("/canaryd", "/canaryd/rollouts/web/nodes/", &r), -EINVAL);
}

/* ---- fleet rules ---- */

static void test_node_confidence(void **state)
{
	(void)state;
	assert_float_equal(fleet_node_confidence(0.99, 1), 0.99, 1e-12);
	assert_float_equal(fleet_node_confidence(0.99, 10), 0.999, 1e-12);
	assert_float_equal(fleet_node_confidence(0.95, 4), 1 - 0.05 / 4, 1e-12);
	assert_float_equal(fleet_node_confidence(0.99, 0), 0.99, 1e-12);
}

static void test_pool(void **state)
{
	struct fleet_evidence ev[3];
	struct canary_metrics out[CANARY_V_COUNT];

	(void)state;
	memset(ev, 0, sizeof(ev));
	for (int i = 0; i < 3; i++) {
		ev[i].fingerprint = 0xabc;
		ev[i].epoch = 4;
		ev[i].delta[CANARY_V_CANARY].requests = 10 * (__u64)(i + 1);
		ev[i].delta[CANARY_V_CANARY].responses[5] = (__u64)i;
		ev[i].delta[CANARY_V_STABLE].latency_hist[7] = 100;
	}
	ev[1].live = false; /* departed: its last counts of the epoch still count */
	ev[2].epoch = 3;    /* counts of the weight before: not these */
	fleet_pool(ev, 3, 0xabc, 4, out);
	assert_int_equal(out[CANARY_V_CANARY].requests, 30);
	assert_int_equal(out[CANARY_V_CANARY].responses[5], 1);
	assert_int_equal(out[CANARY_V_STABLE].latency_hist[7], 200);
	fleet_pool(ev, 3, 0xdef, 4, out); /* another canary */
	assert_int_equal(out[CANARY_V_CANARY].requests, 0);
}

static void test_may_lead(void **state)
{
	(void)state;
	assert_true(fleet_may_lead(17, 17, 1000, 2000));
	assert_false(fleet_may_lead(0, 0, 1000, 2000));	  /* never won */
	assert_false(fleet_may_lead(17, 23, 1000, 2000)); /* someone else's key now */
	assert_false(fleet_may_lead(17, 0, 1000, 2000));  /* the key is gone */
	assert_false(fleet_may_lead(17, 17, 2000, 2000)); /* session may have expired */
}

static void cfg_for(struct rollout_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "web");
	snprintf(cfg->canary.revision, sizeof(cfg->canary.revision), "v2");
	cfg->n_steps = 2;
	cfg->steps[0].kind = STEP_SET_WEIGHT;
	cfg->steps[0].weight_bp = 1000;
	cfg->steps[1].kind = STEP_PAUSE;
	cfg->steps[1].pause_ms = CONFIG_PAUSE_INDEFINITE;
	cfg->abort_connections = ABORT_CONNECTIONS_RESET;
}

static void test_adopt(void **state)
{
	struct rollout_state local;
	struct fleet_shared shared;
	struct rollout_effects fx;
	struct rollout_cfg cfg;

	(void)state;
	cfg_for(&cfg);
	rollout_init(&local, &cfg);
	local.step_started = true;
	local.weight_bp = 1000;
	shared.st = local;
	shared.epoch = 2;
	/* The same state and epoch: nothing to do. */
	fleet_adopt_effects(&local, 2, &shared, &cfg, &fx);
	assert_false(fx.changed);
	/* A new epoch (a weight elsewhere restarted): judge afresh, weight unchanged. */
	fleet_adopt_effects(&local, 1, &shared, &cfg, &fx);
	assert_true(fx.changed);
	assert_true(fx.restart_analysis);
	assert_false(fx.apply_weight);
	/* The fleet aborted: weight 0 and reset flows here too. */
	shared.st.phase = PHASE_DEGRADED;
	shared.st.weight_bp = 0;
	shared.epoch = 3;
	fleet_adopt_effects(&local, 2, &shared, &cfg, &fx);
	assert_true(fx.changed && fx.apply_weight && fx.reset_canary_flows);
	assert_string_equal(fx.event, "aborted by the fleet");
	/* Promoted: the canary's endpoints become the stable set. */
	shared.st.phase = PHASE_HEALTHY;
	fleet_adopt_effects(&local, 2, &shared, &cfg, &fx);
	assert_true(fx.promoted);
	/* A state about another canary is never followed. */
	shared.st.canary_fingerprint ^= 1;
	fleet_adopt_effects(&local, 2, &shared, &cfg, &fx);
	assert_false(fx.changed);
}

static void test_shared_round_trip(void **state)
{
	struct fleet_shared a, b;
	struct rollout_cfg cfg;
	json_t *j;
	char *text;

	(void)state;
	cfg_for(&cfg);
	memset(&a, 0, sizeof(a));
	rollout_init(&a.st, &cfg);
	a.st.phase = PHASE_PAUSED;
	a.st.step = 1;
	a.st.weight_bp = 1250;
	a.st.step_started = true;
	a.st.pause_until_ms = 1765000000123LL;
	a.st.aborts = 2;
	snprintf(a.st.message, sizeof(a.st.message), "waiting \"here\"");
	a.epoch = 9;
	a.epoch_wall_ms = 1765000000000LL;
	snprintf(a.writer, sizeof(a.writer), "n2");
	a.written_ms = 1765000000456LL;
	j = fleet_shared_to_json(&a);
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(fleet_shared_from_json(text, &b), 0);
	assert_true(b.st.canary_fingerprint == a.st.canary_fingerprint);
	assert_int_equal(b.st.phase, PHASE_PAUSED);
	assert_int_equal(b.st.step, 1);
	assert_int_equal(b.st.weight_bp, 1250);
	assert_true(b.st.step_started);
	assert_true(b.st.pause_until_ms == a.st.pause_until_ms);
	assert_int_equal(b.st.aborts, 2);
	assert_string_equal(b.st.message, a.st.message);
	assert_string_equal(b.st.canary_revision, "v2");
	assert_int_equal(b.epoch, 9);
	assert_string_equal(b.writer, "n2");
	assert_true(b.written_ms == a.written_ms);
	free(text);
	json_decref(j);
	assert_int_equal(fleet_shared_from_json("{\"phase\":\"Nope\"}", &b), -EINVAL);
	assert_int_equal(fleet_shared_from_json("not json", &b), -EINVAL);
}

static void test_evidence_round_trip(void **state)
{
	struct fleet_evidence a, b;
	json_t *j;
	char *text;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.fingerprint = 0x0123456789abcdefULL;
	a.epoch = 5;
	a.weight_bp = 5000;
	a.decision = ANALYSIS_PASS;
	a.delta[CANARY_V_CANARY].requests = 1234;
	a.delta[CANARY_V_CANARY].responses[2] = 1200;
	a.delta[CANARY_V_CANARY].responses[5] = 34;
	a.delta[CANARY_V_CANARY].latency_hist[0] = 3;
	a.delta[CANARY_V_CANARY].latency_hist[CANARY_HIST_BUCKETS - 1] = 1;
	a.delta[CANARY_V_STABLE].conns_reset = 2;
	a.delta[CANARY_V_STABLE].latency_count = 99;
	j = fleet_evidence_to_json(&a);
	text = json_dumps(j, JSON_COMPACT);
	assert_int_equal(fleet_evidence_from_json(text, &b), 0);
	assert_true(b.fingerprint == a.fingerprint);
	assert_int_equal(b.epoch, 5);
	assert_int_equal(b.weight_bp, 5000);
	assert_int_equal(b.decision, ANALYSIS_PASS);
	assert_memory_equal(b.delta, a.delta, sizeof(a.delta));
	/* Compact: the histogram is sparse, one entry per bucket with counts. */
	assert_true(strlen(text) < 700);
	free(text);
	json_decref(j);
}

static const char *item_str(const json_t *arr, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(arr, i), k));
}

static json_int_t item_int(const json_t *arr, size_t i, const char *k)
{
	return json_integer_value(json_object_get(json_array_get(arr, i), k));
}

/* The leader's view: its verdicts as text, each node's evidence in short. */
static void test_view_json(void **state)
{
	struct verdict v[2];
	struct fleet_evidence n[2];
	json_t *o, *vs, *ns;

	(void)state;
	memset(v, 0, sizeof(v));
	memset(n, 0, sizeof(n));
	v[0].metric = METRIC_ERROR_RATE;
	v[0].result = VERDICT_FAIL;
	v[0].canary_value = 0.125;
	v[0].limit = 0.05;
	snprintf(v[0].detail, sizeof(v[0].detail), "12.5%% errors over 5%%");
	v[1].metric = METRIC_COMPARE_ERROR_RATE;
	v[1].result = VERDICT_INCONCLUSIVE;
	snprintf(n[0].node, sizeof(n[0].node), "n1");
	n[0].live = true;
	n[0].epoch = 4;
	n[0].weight_bp = 2050;
	n[0].decision = ANALYSIS_HOLD;
	n[0].wall_ms = 1700000000123LL;
	n[0].delta[CANARY_V_CANARY].requests = 800;
	n[0].delta[CANARY_V_CANARY].responses[5] = 90;
	n[0].delta[CANARY_V_CANARY].conns_reset = 7;
	n[0].delta[CANARY_V_CANARY].conns_refused = 3;
	n[0].delta[CANARY_V_STABLE].requests = 3000;
	n[0].delta[CANARY_V_STABLE].responses[5] = 2;
	snprintf(n[1].node, sizeof(n[1].node), "n2");
	o = fleet_view_json(v, 2, n, 2, 7, 1700000001500LL);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "observedGeneration")), 7);
	vs = json_object_get(o, "verdicts");
	ns = json_object_get(o, "nodes");
	assert_int_equal(json_array_size(vs), 2);
	assert_string_equal(item_str(vs, 0, "metric"), "errorRate");
	assert_string_equal(item_str(vs, 0, "result"), "fail");
	assert_string_equal(item_str(vs, 0, "value"), "0.125");
	assert_string_equal(item_str(vs, 0, "limit"), "0.05");
	assert_string_equal(item_str(vs, 0, "detail"), "12.5% errors over 5%");
	assert_string_equal(item_str(vs, 0, "time"), "2023-11-14T22:13:21.500Z");
	assert_string_equal(item_str(vs, 1, "result"), "inconclusive");
	assert_int_equal(json_array_size(ns), 2);
	assert_string_equal(item_str(ns, 0, "node"), "n1");
	assert_true(json_is_true(json_object_get(json_array_get(ns, 0), "live")));
	assert_true(json_real_value(json_object_get(json_array_get(ns, 0), "weight")) == 20.5);
	assert_string_equal(item_str(ns, 0, "decision"), "hold");
	assert_int_equal(item_int(ns, 0, "epoch"), 4);
	assert_int_equal(item_int(ns, 0, "requests"), 800);
	assert_int_equal(item_int(ns, 0, "errors"), 100); /* 5xx, resets, refused */
	assert_int_equal(item_int(ns, 0, "stableRequests"), 3000);
	assert_int_equal(item_int(ns, 0, "stableErrors"), 2);
	assert_string_equal(item_str(ns, 0, "lastUpdate"), "2023-11-14T22:13:20.123Z");
	assert_false(json_is_true(json_object_get(json_array_get(ns, 1), "live")));
	json_decref(o);
	/* Nothing judged yet: empty lists, not absent ones (a merge patch clears them). */
	o = fleet_view_json(v, 0, n, 0, 0, 0);
	assert_null(json_object_get(o, "observedGeneration")); /* a spec from a file */
	assert_int_equal(json_array_size(json_object_get(o, "verdicts")), 0);
	assert_true(json_is_array(json_object_get(o, "nodes")));
	json_decref(o);
}

/* ---- simulation: healthy fleet rollouts, real analysis ---- */

static uint64_t rng_state = 0x5eed2026ULL;

static double uniform(void)
{
	/* splitmix64: plenty for Bernoulli draws, and seeded, so runs repeat. */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

static __u64 binomial(__u64 n, double p)
{
	__u64 k = 0, i;

	for (i = 0; i < n; i++)
		k += uniform() < p;
	return k;
}

static void serve(struct canary_metrics *m, __u64 n, double err)
{
	__u64 bad = binomial(n, err);

	m->requests += n;
	m->responses[2] += n - bad;
	m->responses[5] += bad;
}

#define SIM_NODES    10
#define SIM_ROLLOUTS 200
#define SIM_STEP_S   30
#define SIM_NODE_RPS 100
#define SIM_ERR	     0.005

/* Does any node of a healthy fleet abort a rollout of weights 10% then 50%? */
static bool sim_rollout(const struct analysis_cfg *node_cfg)
{
	static struct analysis_state an[SIM_NODES];
	static struct canary_metrics now[SIM_NODES][CANARY_V_COUNT];
	static const __u16 weights[] = { 1000, 5000 };
	int s, n, t;

	memset(now, 0, sizeof(now));
	for (s = 0; s < 2; s++) {
		for (n = 0; n < SIM_NODES; n++)
			analysis_restart(&an[n], now[n], 0);
		for (t = 1; t <= SIM_STEP_S; t++) {
			for (n = 0; n < SIM_NODES; n++) {
				__u64 c = SIM_NODE_RPS * weights[s] / 10000;

				serve(&now[n][CANARY_V_CANARY], c, SIM_ERR);
				serve(&now[n][CANARY_V_STABLE], SIM_NODE_RPS - c, SIM_ERR);
				if (analysis_tick(&an[n], node_cfg, now[n], (__u64)t * 1000) ==
				    ANALYSIS_FAIL)
					return true;
			}
		}
	}
	return false;
}

static int sim_fleet(double node_confidence)
{
	struct analysis_cfg cfg;
	int i, aborts = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.interval_ms = 1000;
	cfg.min_requests = 20;
	cfg.failure_limit = 1;
	cfg.confidence = node_confidence;
	/* The sequential test, whose false-alarm rate alpha governs (gates are plain limits). */
	cfg.n_metrics = 1;
	cfg.metrics[0].kind = METRIC_COMPARE_ERROR_RATE;
	cfg.metrics[0].failure_limit = CONFIG_INHERIT;
	rng_state = 0x5eed2026ULL;
	for (i = 0; i < SIM_ROLLOUTS; i++)
		aborts += sim_rollout(&cfg);
	return aborts;
}

static void test_sim_fleet_false_aborts(void **state)
{
	int split, alone;

	(void)state;
	split = sim_fleet(fleet_node_confidence(0.99, SIM_NODES));
	alone = sim_fleet(0.99);
	printf("  %d healthy rollouts of %d nodes (%d req/s each, %.1f%% errors on both "
	       "versions, 10%% then 50%%, %d s each): %d aborted with alpha/N per node (%.1f%%), "
	       "%d with alpha per node (%.1f%%)\n",
	       SIM_ROLLOUTS, SIM_NODES, SIM_NODE_RPS, SIM_ERR * 100, SIM_STEP_S, split,
	       100.0 * split / SIM_ROLLOUTS, alone, 100.0 * alone / SIM_ROLLOUTS);
	assert_true(split * 100 <= SIM_ROLLOUTS);
	assert_true(split <= alone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_known),
		cmocka_unit_test(test_b64_binary_and_bad),
		cmocka_unit_test(test_json_i64),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_watch_parse),
		cmocka_unit_test(test_coord_keys),
		cmocka_unit_test(test_node_confidence),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_may_lead),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_shared_round_trip),
		cmocka_unit_test(test_evidence_round_trip),
		cmocka_unit_test(test_view_json),
		cmocka_unit_test(test_sim_fleet_false_aborts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
