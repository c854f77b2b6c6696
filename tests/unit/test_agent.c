// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent over an in-memory data plane: reconcile, resume from the state
 * directory, reload, and a rollback found in the map at start-up. The fake
 * below is a double of struct dp_ops (dpops.h), not of the kernel: the BPF
 * suite and the labs run the real maps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>

#include "agent.h"
#include "config.h"
#include "dpops.h"
#include "state.h"

/* ---- the fake data plane ---- */

#define FAKE_SERVICES 8

struct fake_dp {
	struct canary_service_key keys[FAKE_SERVICES];
	struct canary_service svcs[FAKE_SERVICES];
	bool used[FAKE_SERVICES];
	__u32 next_id;
	struct canary_metrics metrics[FAKE_SERVICES][CANARY_V_COUNT]; /* by service id */
	unsigned int puts;
	unsigned int ct_entries; /* what ct_read, ct_expired say */
	long long ct_created;
	__u64 ct_expired;
};

static int fake_find(const struct fake_dp *f, const struct canary_service_key *key)
{
	int i;

	for (i = 0; i < FAKE_SERVICES; i++)
		if (f->used[i] && !memcmp(&f->keys[i], key, sizeof(*key)))
			return i;
	return -1;
}

static int fake_service_put(void *dp, const struct canary_service_key *key,
			    struct canary_service *svc)
{
	struct fake_dp *f = dp;
	int i = fake_find(f, key);

	if (i >= 0) {
		svc->id = f->svcs[i].id;
		svc->generation = f->svcs[i].generation + 1;
	} else {
		for (i = 0; i < FAKE_SERVICES && f->used[i]; i++)
			;
		if (i == FAKE_SERVICES)
			return -ENOSPC;
		svc->id = f->next_id++ % FAKE_SERVICES;
		svc->generation = 1;
	}
	f->used[i] = true;
	f->keys[i] = *key;
	f->svcs[i] = *svc;
	f->puts++;
	return 0;
}

static int fake_service_get(void *dp, const struct canary_service_key *key,
			    struct canary_service *svc)
{
	struct fake_dp *f = dp;
	int i = fake_find(f, key);

	if (i < 0)
		return -ENOENT;
	*svc = f->svcs[i];
	return 0;
}

static int fake_service_delete(void *dp, const struct canary_service_key *key)
{
	struct fake_dp *f = dp;
	int i = fake_find(f, key);

	if (i < 0)
		return -ENOENT;
	f->used[i] = false;
	return 0;
}

static int fake_service_each(void *dp, dp_service_fn fn, void *arg)
{
	struct fake_dp *f = dp;
	int i, rc;

	for (i = 0; i < FAKE_SERVICES; i++) {
		if (!f->used[i])
			continue;
		rc = fn(&f->keys[i], &f->svcs[i], arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int fake_override_sync(void *dp, __u32 svc_id, const __be32 *addrs, const __u8 *lens,
			      const enum canary_version *versions, int n)
{
	(void)dp, (void)svc_id, (void)addrs, (void)lens, (void)versions, (void)n;
	return 0;
}

static int fake_reset_canary_flows(void *dp, __u32 svc_id, unsigned int *count)
{
	(void)dp, (void)svc_id;
	*count = 0;
	return 0;
}

static bool fake_killswitch_engaged(void *dp, const struct canary_service_key *key)
{
	(void)dp, (void)key;
	return false;
}

static int fake_metrics_read(void *dp, __u32 svc_id, enum canary_version version,
			     struct canary_metrics *out)
{
	struct fake_dp *f = dp;

	if (svc_id >= FAKE_SERVICES)
		return -EINVAL;
	*out = f->metrics[svc_id][version];
	return 0;
}

static __u32 fake_ct_capacity(void *dp)
{
	(void)dp;
	return 1024;
}

static bool fake_flow_count_is_cheap(void *dp)
{
	(void)dp;
	return true;
}

static int fake_ct_read(void *dp, unsigned int *entries, long long *created)
{
	struct fake_dp *f = dp;

	*entries = f->ct_entries;
	*created = f->ct_created;
	return 0;
}

static int fake_ct_expire(void *dp, unsigned int *expired)
{
	(void)dp;
	*expired = 0;
	return 0;
}

static __u64 fake_ct_expired(void *dp)
{
	return ((struct fake_dp *)dp)->ct_expired;
}

static int fake_repin_missing(void *dp, const char *bpffs, unsigned int *restored)
{
	(void)dp, (void)bpffs;
	*restored = 0;
	return 0;
}

static const struct dp_ops fake_ops = {
	.service_put = fake_service_put,
	.service_get = fake_service_get,
	.service_delete = fake_service_delete,
	.service_each = fake_service_each,
	.override_sync = fake_override_sync,
	.reset_canary_flows = fake_reset_canary_flows,
	.killswitch_engaged = fake_killswitch_engaged,
	.metrics_read = fake_metrics_read,
	.ct_capacity = fake_ct_capacity,
	.flow_count_is_cheap = fake_flow_count_is_cheap,
	.ct_read = fake_ct_read,
	.ct_expire = fake_ct_expire,
	.ct_expired = fake_ct_expired,
	.repin_missing = fake_repin_missing,
};

/* ---- configurations ---- */

#define HEAD(name)                          \
	"apiVersion: canaryd.io/v1alpha1\n" \
	"kind: Rollout\n"                   \
	"metadata:\n"                       \
	"  name: " name "\n"                \
	"spec:\n"
#define BODY(vip)                                                  \
	"  service: {vip: " vip ", port: 80}\n"                    \
	"  stable: {revision: v1, endpoints: [\"10.0.1.1:80\"]}\n" \
	"  canary: {revision: v2, endpoints: [\"10.0.2.1:80\"]}\n"
#define STEPS	  "  strategy: {steps: [{setWeight: 10}, {pause: {}}, {setWeight: 50}]}\n"
#define STEPS_NEW "  strategy: {steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}]}\n"
#define ANALYSIS(min)                \
	"  analysis:\n"              \
	"    interval: 1s\n"         \
	"    minRequests: " min "\n" \
	"    metrics: [{name: errorRate, max: 0.02}]\n"
#define WEB HEAD("web") BODY("10.96.0.20") STEPS ANALYSIS("50")
#define API HEAD("api") BODY("10.96.0.21") STEPS ANALYSIS("50")

static struct fake_dp fake;
static struct agent agent;
static char state_dir[64];
static char err[AGENT_ERR_LEN];

static int setup(void **state)
{
	(void)state;
	memset(&fake, 0, sizeof(fake));
	snprintf(state_dir, sizeof(state_dir), "/tmp/test_agent.XXXXXX");
	assert_non_null(mkdtemp(state_dir));
	assert_int_equal(agent_init_ops(&agent, &fake_ops, &fake, NULL, state_dir), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	agent_destroy(&agent);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
	return system(cmd) ? -1 : 0;
}

static int apply(const char *yaml)
{
	char cerr[CONFIG_ERR_LEN];
	struct config cfg;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(
		config_parse_buffer("t.yaml", yaml, strlen(yaml), &cfg, cerr, sizeof(cerr)), 0);
	rc = agent_apply_config(&agent, &cfg, err, sizeof(err));
	config_free(&cfg);
	return rc;
}

/* The agent destroyed and started again over the same maps and state directory. */
static void restart_agent(void)
{
	agent_destroy(&agent);
	assert_int_equal(agent_init_ops(&agent, &fake_ops, &fake, NULL, state_dir), 0);
}

static struct agent_rollout *rollout(const char *name)
{
	size_t i;

	for (i = 0; i < agent.n_rollouts; i++)
		if (!strcmp(agent.rollouts[i].cfg.name, name))
			return &agent.rollouts[i];
	fail_msg("no rollout %s", name);
	return NULL;
}

static struct canary_service *service_of(const char *vip)
{
	struct canary_service_key key = { .port = htons(80), .proto = IPPROTO_TCP };
	int i;

	assert_int_equal(inet_pton(AF_INET, vip, &key.vip), 1);
	i = fake_find(&fake, &key);
	return i < 0 ? NULL : &fake.svcs[i];
}

static bool file_exists(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", state_dir, name);
	return access(path, F_OK) == 0;
}

/* ---- reconcile ---- */

static void test_reconcile_writes_and_removes(void **state)
{
	struct canary_service *web;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	web = service_of("10.96.0.20");
	assert_non_null(web);
	assert_string_equal(web->name, "web");
	assert_int_equal(web->n_backends[CANARY_V_STABLE], 1);
	assert_int_equal(web->n_backends[CANARY_V_CANARY], 1);
	assert_int_equal(web->backends[CANARY_V_CANARY][0].port, htons(80));
	assert_true(file_exists("web.json"));

	/* A tick applies the first step's weight to the map. */
	agent_tick(&agent);
	assert_int_equal(rollout("web")->st.weight_bp, 1000);
	assert_int_equal(service_of("10.96.0.20")->weight, 1000);

	assert_int_equal(apply(WEB "---\n" API), 0);
	assert_int_equal(agent.n_rollouts, 2);
	assert_non_null(service_of("10.96.0.21"));
	assert_int_equal(service_of("10.96.0.20")->weight, 1000); /* web kept its weight */

	/* web leaves the config: out of the map, its state set aside. */
	assert_int_equal(apply(API), 0);
	assert_int_equal(agent.n_rollouts, 1);
	assert_null(service_of("10.96.0.20"));
	assert_non_null(service_of("10.96.0.21"));
	assert_false(file_exists("web.json"));
	assert_true(file_exists("web.json.removed"));
}

static void test_reconcile_refuses_empty(void **state)
{
	(void)state;
	assert_int_equal(apply(WEB), 0);
	assert_int_equal(apply("---\n"), -ECANCELED);
	assert_non_null(strstr(err, "--allow-empty-config"));
	assert_int_equal(agent.n_rollouts, 1);
	assert_non_null(service_of("10.96.0.20"));

	agent.allow_empty_config = true;
	assert_int_equal(apply("---\n"), 0);
	assert_int_equal(agent.n_rollouts, 0);
	assert_null(service_of("10.96.0.20"));
}

/* ---- resume from disk ---- */

static void test_resume_from_state_file(void **state)
{
	struct rollout_state before;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	assert_int_equal(agent_verb(&agent, "web", VERB_SET_WEIGHT, 3000, err, sizeof(err)), 0);
	before = rollout("web")->st;
	assert_int_equal(service_of("10.96.0.20")->weight, 3000);

	restart_agent();
	assert_int_equal(apply(WEB), 0);
	assert_int_equal(rollout("web")->st.phase, before.phase);
	assert_int_equal(rollout("web")->st.step, before.step);
	assert_int_equal(rollout("web")->st.weight_bp, 3000);
	assert_int_equal(service_of("10.96.0.20")->weight, 3000);
}

/* No state file but the map holds the service: hold at the map's weight. */
static void test_resume_without_state_file(void **state)
{
	char path[128];

	(void)state;
	assert_int_equal(apply(WEB), 0);
	assert_int_equal(agent_verb(&agent, "web", VERB_SET_WEIGHT, 2500, err, sizeof(err)), 0);
	restart_agent();
	snprintf(path, sizeof(path), "%s/web.json", state_dir);
	assert_int_equal(unlink(path), 0);

	assert_int_equal(apply(WEB), 0);
	assert_int_equal(rollout("web")->st.phase, PHASE_PAUSED);
	assert_true(rollout("web")->st.user_paused);
	assert_int_equal(rollout("web")->st.weight_bp, 2500);
	assert_int_equal(service_of("10.96.0.20")->weight, 2500);
	assert_non_null(strstr(rollout("web")->st.message, "state file missing"));
}

/* ---- reload ---- */

static void raise_counters(__u32 svc_id)
{
	fake.metrics[svc_id][CANARY_V_CANARY].requests += 100;
	fake.metrics[svc_id][CANARY_V_STABLE].requests += 900;
}

static void test_reload_unchanged_keeps_analysis(void **state)
{
	struct analysis_state an;
	__u32 id;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	id = rollout("web")->svc_id;
	an = rollout("web")->an;
	raise_counters(id);

	assert_int_equal(apply(WEB), 0);
	assert_memory_equal(&rollout("web")->an, &an, sizeof(an));
	assert_int_equal(rollout("web")->an.base[CANARY_V_CANARY].requests, 0);
}

static void test_reload_changed_analysis_restarts(void **state)
{
	__u32 id;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	id = rollout("web")->svc_id;
	raise_counters(id);

	assert_int_equal(apply(HEAD("web") BODY("10.96.0.20") STEPS ANALYSIS("10")), 0);
	/* Judged afresh: the baseline is what the counters say now. */
	assert_int_equal(rollout("web")->an.base[CANARY_V_CANARY].requests, 100);
	assert_int_equal(rollout("web")->an.base[CANARY_V_STABLE].requests, 900);
}

static void test_reload_changed_steps_restarts(void **state)
{
	__u32 id;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	id = rollout("web")->svc_id;
	raise_counters(id);

	assert_int_equal(apply(HEAD("web") BODY("10.96.0.20") STEPS_NEW ANALYSIS("50")), 0);
	assert_int_equal(rollout("web")->an.base[CANARY_V_CANARY].requests, 100);
	assert_int_equal(rollout("web")->st.steps_fingerprint,
			 rollout_steps_fingerprint(&rollout("web")->cfg));
}

/* ---- map rollback ---- */

static void test_map_rollback_while_down_aborts(void **state)
{
	struct rollout_state disk;
	json_t *ev = NULL;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	assert_int_equal(service_of("10.96.0.20")->weight, 1000);
	restart_agent();
	/* canaryctl emergency-rollback while the agent was down. */
	service_of("10.96.0.20")->weight = 0;

	assert_int_equal(apply(WEB), 0);
	assert_int_equal(rollout("web")->st.phase, PHASE_DEGRADED);
	assert_non_null(strstr(rollout("web")->st.message, "emergency rollback"));
	assert_int_equal(service_of("10.96.0.20")->weight, 0);
	assert_int_equal(state_load(state_dir, "web", &disk, &ev), 0);
	json_decref(ev);
	assert_int_equal(disk.phase, PHASE_DEGRADED);
}

static void test_map_weight_kept_resumes(void **state)
{
	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	restart_agent();
	assert_int_equal(apply(WEB), 0);
	assert_int_equal(rollout("web")->st.phase, PHASE_PROGRESSING);
	assert_int_equal(service_of("10.96.0.20")->weight, 1000);
}

/* ---- health checks ---- */

#define STABLE2 "  stable: {revision: v1, endpoints: [\"10.0.1.1:80\", \"10.0.1.2:80\"]}\n"
#define HC_WEB                                                           \
	HEAD("web")                                                      \
	"  service: {vip: 10.96.0.20, port: 80}\n" STABLE2               \
	"  canary: {revision: v2, endpoints: [\"10.0.2.1:80\"]}\n" STEPS \
	"  healthCheck: {interval: 1s, failureThreshold: 2}\n"

static void health_round(bool ok0, bool ok1)
{
	struct health_job job;
	bool ok[2] = { ok0, ok1 };

	rollout("web")->health.next_ms = 0; /* due now */
	assert_int_equal(agent_health_next(&agent, &job), 1);
	assert_string_equal(job.rollout, "web");
	assert_int_equal(job.n, 2);
	agent_health_result(&agent, &job, ok);
}

static void test_health_routes_around_down_endpoint(void **state)
{
	struct health_job job;

	(void)state;
	assert_int_equal(apply(HC_WEB), 0);
	assert_int_equal(agent_health_next(&agent, &job), 1);
	assert_int_equal(agent_health_next(&agent, &job), 0); /* the next one a second later */
	assert_int_equal(service_of("10.96.0.20")->n_backends[CANARY_V_STABLE], 2);

	health_round(true, false);
	assert_int_equal(service_of("10.96.0.20")->n_backends[CANARY_V_STABLE], 2);
	health_round(true, false); /* the threshold: out of new connections */
	assert_int_equal(service_of("10.96.0.20")->n_backends[CANARY_V_STABLE], 1);
	assert_int_equal(service_of("10.96.0.20")->backends[CANARY_V_STABLE][0].addr,
			 htonl(0x0a000101));

	/* Reloaded with the same endpoints: still out. */
	assert_int_equal(apply(HC_WEB), 0);
	assert_true(rollout("web")->health.down[1]);
	assert_int_equal(service_of("10.96.0.20")->n_backends[CANARY_V_STABLE], 1);

	health_round(true, true); /* one pass brings it back */
	assert_int_equal(service_of("10.96.0.20")->n_backends[CANARY_V_STABLE], 2);
}

/* ---- endpoints from a Kubernetes Service ---- */

/*
 * A Service's draining endpoints go after the ready ones in the map (slots
 * past n_backends), the rest of the list zero; they go when the Service
 * drops them. A version whose endpoints come from a file has none.
 */
static void test_service_draining_endpoints(void **state)
{
	const struct canary_backend ready[] = { { htonl(0x0a000103), htons(80), 0 } };
	const struct canary_backend draining[] = { { htonl(0x0a000101), htons(80), 0 },
						   { htonl(0x0a000102), htons(80), 0 } };
	struct agent_rollout *r;
	struct canary_service *web;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	web = service_of("10.96.0.20");
	assert_int_equal(web->backends[CANARY_V_STABLE][1].addr, 0);
	/* As if spec.stable named a Service (kubeeps_fill sets ns and service). */
	r = rollout("web");
	snprintf(r->cfg.ns, sizeof(r->cfg.ns), "shop");
	snprintf(r->cfg.stable.service, sizeof(r->cfg.stable.service), "web-stable");

	agent_set_service_endpoints(&agent, "shop", "web-stable", ready, 1, draining, 2);
	web = service_of("10.96.0.20");
	assert_int_equal(web->n_backends[CANARY_V_STABLE], 1);
	assert_int_equal(web->backends[CANARY_V_STABLE][0].addr, ready[0].addr);
	assert_int_equal(web->backends[CANARY_V_STABLE][1].addr, draining[0].addr);
	assert_int_equal(web->backends[CANARY_V_STABLE][2].addr, draining[1].addr);
	assert_int_equal(web->backends[CANARY_V_STABLE][3].addr, 0);
	/* The canary's file endpoints: nothing after them. */
	assert_int_equal(web->n_backends[CANARY_V_CANARY], 1);
	assert_int_equal(web->backends[CANARY_V_CANARY][1].addr, 0);

	/* One drained away: only the other stays behind the ready one. */
	agent_set_service_endpoints(&agent, "shop", "web-stable", ready, 1, draining + 1, 1);
	web = service_of("10.96.0.20");
	assert_int_equal(web->backends[CANARY_V_STABLE][1].addr, draining[1].addr);
	assert_int_equal(web->backends[CANARY_V_STABLE][2].addr, 0);
	/* Too many for one list: refused, the map keeps what it had. */
	agent_set_service_endpoints(&agent, "shop", "web-stable", ready, 1, draining,
				    CANARY_MAX_BACKENDS);
	assert_int_equal(service_of("10.96.0.20")->backends[CANARY_V_STABLE][1].addr,
			 draining[1].addr);
}

/*
 * Promoted: the canary's endpoints are the stable set, and the old stable
 * endpoints drain behind them, so a connection on one finishes there
 * instead of being moved to the new set (whose backend would reset it).
 */
static void test_promoted_old_stable_drains(void **state)
{
	struct canary_service *web;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	assert_int_equal(agent_verb(&agent, "web", VERB_PROMOTE_FULL, 0, err, sizeof(err)), 0);
	agent_tick(&agent);
	assert_int_equal(rollout("web")->st.phase, PHASE_HEALTHY);
	web = service_of("10.96.0.20");
	assert_int_equal(web->n_backends[CANARY_V_STABLE], 1);
	assert_int_equal(web->backends[CANARY_V_STABLE][0].addr, htonl(0x0a000201));
	assert_int_equal(web->backends[CANARY_V_STABLE][1].addr, htonl(0x0a000101));
	assert_int_equal(web->backends[CANARY_V_STABLE][1].port, htons(80));
	assert_int_equal(web->backends[CANARY_V_STABLE][2].addr, 0);
}

/* ---- external metrics ---- */

#define PROM_WEB(interval)                                                             \
	HEAD("web")                                                                    \
	BODY("10.96.0.20")                                                             \
	STEPS "  analysis:\n"                                                          \
	      "    interval: " interval "\n"                                           \
	      "    metrics:\n"                                                         \
	      "      - {name: errorRate, max: 0.02}\n"                                 \
	      "      - name: success\n"                                                \
	      "        prometheus: {address: \"http://127.0.0.1:9\", query: \"up\"}\n" \
	      "        successCondition: \"result >= 1\"\n"

static void test_external_schedule(void **state)
{
	struct external_job job;

	(void)state;
	assert_int_equal(apply(PROM_WEB("60s")), 0);
	assert_int_equal(agent_external_next(&agent, &job), 1);
	assert_string_equal(job.rollout, "web");
	assert_int_equal(job.metric, 1);
	assert_string_equal(job.query, "up");
	/* Next due an interval later, and a reload of the same spec keeps that. */
	assert_int_equal(agent_external_next(&agent, &job), 0);
	assert_int_equal(apply(PROM_WEB("60s")), 0);
	assert_int_equal(agent_external_next(&agent, &job), 0);
	assert_true(rollout("web")->ext.next_ms[1] > 0);
	assert_int_equal(rollout("web")->ext.next_ms[0], 0); /* not an external metric */
}

/* ---- rates and the report ---- */

static void test_rate_window(void **state)
{
	struct canary_metrics now[CANARY_V_COUNT] = { 0 };
	struct rate_window w = { 0 };

	(void)state;
	rate_window_roll(&w, now, 1000);
	assert_true(rate_window_rps(&w, now, 1000) == 0); /* nothing measured yet */
	now[CANARY_V_STABLE].requests = 400;
	now[CANARY_V_CANARY].requests = 100;
	rate_window_roll(&w, now, 3000); /* too soon: the base stays */
	assert_int_equal(w.base_ms, 1000);
	assert_true(rate_window_rps(&w, now, 3000) == 250.0); /* 500 requests in 2 s */
	rate_window_roll(&w, now, 6000);
	assert_int_equal(w.prev_ms, 1000);
	assert_int_equal(w.base_ms, 6000);
	/* Without requests, new connections count. */
	memset(now, 0, sizeof(now));
	now[CANARY_V_STABLE].conns_opened = 50;
	w = (struct rate_window){ .prev_ms = 1000 };
	assert_true(rate_window_rps(&w, now, 6000) == 10.0);
}

static void test_report_reads_the_view(void **state)
{
	json_t *obj;

	(void)state;
	assert_int_equal(apply(WEB), 0);
	agent_tick(&agent);
	fake.metrics[rollout("web")->svc_id][CANARY_V_CANARY].requests = 7;
	obj = agent_rollout_json(&agent, "web");
	assert_non_null(obj);
	assert_string_equal(json_string_value(json_object_get(obj, "name")), "web");
	assert_true(json_real_value(json_object_get(obj, "weight")) == 10.0);
	assert_int_equal(json_integer_value(
				 json_object_get(json_object_get(obj, "canary"), "requests_total")),
			 7);
	json_decref(obj);
	assert_null(agent_rollout_json(&agent, "nope"));
}

/* ---- the data-path watcher ---- */

static void test_watch_counts_conntrack(void **state)
{
	struct agent_stats st;

	(void)state;
	assert_int_equal(agent.watch.conntrack_capacity, 1024);
	fake.ct_entries = 10;
	fake.ct_created = 30;
	fake.ct_expired = 5;
	agent_tick(&agent);
	assert_int_equal(agent.watch.conntrack_entries, 10);
	assert_int_equal(agent.watch.conntrack_created, 30);
	/* Created, less what the expiry removed, less what is still there. */
	assert_int_equal(agent.watch.conntrack_evictions, 15);
	agent_stats(&agent, &st);
	assert_int_equal(st.conntrack_entries, 10);
	assert_int_equal(st.conntrack_created, 30);
	assert_int_equal(st.conntrack_evictions, 15);
	assert_int_equal(st.conntrack_capacity, 1024);
	assert_int_equal(st.ticks, 1);
	/* A counter never goes down, whatever two reads that are not one snapshot say. */
	fake.ct_created = 20;
	agent_tick(&agent);
	assert_int_equal(agent.watch.conntrack_evictions, 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reconcile_writes_and_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_refuses_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_from_state_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_without_state_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_unchanged_keeps_analysis, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reload_changed_analysis_restarts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reload_changed_steps_restarts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_map_rollback_while_down_aborts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_map_weight_kept_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_draining_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promoted_old_stable_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_routes_around_down_endpoint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_external_schedule, setup, teardown),
		cmocka_unit_test(test_rate_window),
		cmocka_unit_test_setup_teardown(test_report_reads_the_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_counts_conntrack, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
