// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollouts from the Kubernetes API (userspace/kubespecs.c) on recorded
 * JSON: an object as a 1.20 API server sends it becomes the same
 * rollout_cfg as the file with that spec; what the CRD's schema lets
 * through but the agent refuses is refused naming the object and the
 * field; and the set keeps each object's last accepted spec across a
 * refused change, ignores status-only changes, drops deleted objects and
 * takes a 410's re-list wholesale.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kubespecs.h"

/* As `kubectl get rollout web -o json` prints it from the labs' 1.20 server. */
#define OBJECT_HEAD(name, rv)                                                                  \
	"{\"apiVersion\":\"canaryd.io/v1alpha1\",\"kind\":\"Rollout\","                        \
	"\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":" \
	"\"{}\\n\"},\"creationTimestamp\":\"2026-12-06T02:30:00Z\",\"generation\":2,"          \
	"\"name\":\"" name "\",\"namespace\":\"shop\",\"resourceVersion\":\"" rv "\","         \
	"\"uid\":\"8e7a3c52-1c2f-4b8e-9d57-5b0f1b2a9c11\"},"

#define SPEC_WEB(weight, canary)                                                                  \
	"\"spec\":{\"service\":{\"vip\":\"10.96.0.10\",\"port\":80,\"protocol\":\"http\"},"       \
	"\"stable\":{\"revision\":\"v1\",\"endpoints\":[\"10.0.1.11:8080\","                      \
	"\"10.0.1.12:8080\"]},"                                                                   \
	"\"canary\":{\"revision\":\"v2\",\"endpoints\":[\"" canary "\"]},"                        \
	"\"affinity\":\"client-ip\","                                                             \
	"\"strategy\":{\"steps\":[{\"setWeight\":" weight "},{\"pause\":{\"duration\":\"30s\"}}," \
	"{\"setWeight\":100}]},"                                                                  \
	"\"analysis\":{\"interval\":\"1s\",\"minRequests\":50,\"confidence\":0.99,"               \
	"\"metrics\":[{\"name\":\"errorRate\",\"max\":0.02},"                                     \
	"{\"name\":\"latencyP99\",\"max\":\"250ms\"}]}}"

#define STATUS(phase) ",\"status\":{\"phase\":\"" phase "\",\"step\":1,\"weight\":10}}"

static const char web_v1[] = OBJECT_HEAD("web", "1001") SPEC_WEB("10", "10.0.2.21:8080") "}";
static const char web_status[] =
	OBJECT_HEAD("web", "1002") SPEC_WEB("10", "10.0.2.21:8080") STATUS("Paused");
static const char web_canary2[] = OBJECT_HEAD("web", "1003") SPEC_WEB("10", "10.0.2.22:8080") "}";
/* What the schema (number, 0..100) lets through: the agent wants two decimals. */
static const char web_three_decimals[] =
	OBJECT_HEAD("web", "1004") SPEC_WEB("12.345", "10.0.2.22:8080") "}";
static const char web_two_decimals[] =
	OBJECT_HEAD("web", "1005") SPEC_WEB("12.34", "10.0.2.22:8080") "}";

static const char api_v1[] = OBJECT_HEAD(
	"api", "1010") "\"spec\":{\"service\":{\"vip\":\"10.96.0.20\",\"port\":80},"
		       "\"stable\":{\"revision\":\"a1\",\"endpoints\":[\"10.0.3.1:80\"]},"
		       "\"canary\":{\"revision\":\"a2\",\"endpoints\":[\"10.0.3.2:80\"]},"
		       "\"strategy\":{\"steps\":[{\"setWeight\":50}]}}}";
/* Another Rollout on web's VIP, port and protocol. */
static const char clash[] = OBJECT_HEAD(
	"clash", "1011") "\"spec\":{\"service\":{\"vip\":\"10.96.0.10\",\"port\":80},"
			 "\"stable\":{\"revision\":\"c1\",\"endpoints\":[\"10.0.4.1:80\"]},"
			 "\"canary\":{\"revision\":\"c2\",\"endpoints\":[\"10.0.4.2:80\"]},"
			 "\"strategy\":{\"steps\":[{\"setWeight\":50}]}}}";

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *obj = json_loads(text, 0, &e);

	if (!obj)
		fail_msg("bad fixture: %s at %d:%d", e.text, e.line, e.column);
	return obj;
}

/* The refusal of one object: its message, which must name what is asked for. */
static void expect_refused(const char *text, const char *object, const char *field)
{
	char err[CONFIG_ERR_LEN] = "";
	struct rollout_cfg r;
	json_t *obj = parse(text);

	assert_int_equal(kubespecs_from_object(obj, &r, err, sizeof(err)), -1);
	json_decref(obj);
	if (!strstr(err, object) || !strstr(err, field))
		fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err, object, field);
}

static void test_object_to_config(void **state)
{
	char err[CONFIG_ERR_LEN] = "";
	struct rollout_cfg r;
	json_t *obj = parse(web_status);

	(void)state;
	assert_int_equal(kubespecs_from_object(obj, &r, err, sizeof(err)), 0);
	json_decref(obj);
	assert_string_equal(r.name, "web");
	assert_string_equal(r.ns, "shop");
	assert_string_equal(r.stable.revision, "v1");
	assert_int_equal(r.stable.n_endpoints, 2);
	assert_string_equal(r.canary.revision, "v2");
	assert_int_equal(r.canary.n_endpoints, 1);
	assert_int_equal(r.affinity, CANARY_AFFINITY_CLIENT_IP);
	assert_int_equal(r.n_steps, 3);
	assert_int_equal(r.steps[0].kind, STEP_SET_WEIGHT);
	assert_int_equal(r.steps[0].weight_bp, 1000);
	assert_int_equal(r.steps[1].kind, STEP_PAUSE);
	assert_int_equal(r.steps[1].pause_ms, 30000);
	assert_int_equal(r.analysis.interval_ms, 1000);
	assert_int_equal(r.analysis.n_metrics, 2);
	assert_int_equal(r.analysis.metrics[0].kind, METRIC_ERROR_RATE);
	assert_true(r.analysis.metrics[0].max > 0.0199 && r.analysis.metrics[0].max < 0.0201);
	assert_int_equal(r.analysis.metrics[1].kind, METRIC_LATENCY_P99);
	assert_true(r.analysis.metrics[1].max > 249999 && r.analysis.metrics[1].max < 250001);
	assert_non_null(strstr(r.origin, "Rollout shop/web"));
	assert_int_equal(r.generation, 2); /* metadata.generation, for observedGeneration */
}

/* Reals are written back with 15 digits: 12.34 is 12.34, not 12.339999999999999. */
static void test_weight_decimals(void **state)
{
	char err[CONFIG_ERR_LEN] = "";
	struct rollout_cfg r;
	json_t *obj = parse(web_two_decimals);

	(void)state;
	assert_int_equal(kubespecs_from_object(obj, &r, err, sizeof(err)), 0);
	json_decref(obj);
	assert_int_equal(r.steps[0].weight_bp, 1234);
	expect_refused(web_three_decimals, "Rollout shop/web", "spec.strategy.steps[0].setWeight");
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refused("{\"metadata\":{\"namespace\":\"shop\"},\"spec\":{}}", "Rollout shop/",
		       "metadata.name");
	expect_refused(OBJECT_HEAD("nospec", "1") "\"status\":{}}", "Rollout shop/nospec", "spec");
	/* The canary is the VIP itself: a loop the schema's pattern cannot see. */
	expect_refused(OBJECT_HEAD("loop", "1") SPEC_WEB("10", "10.96.0.10:80") "}",
		       "Rollout shop/loop", "spec.canary.endpoints");
	/* A field the agent does not know (a server without pruning would keep it). */
	expect_refused(OBJECT_HEAD("extra", "1") "\"spec\":{\"service\":{\"vip\":\"10.96.0.10\","
						 "\"port\":80,\"colour\":\"blue\"},"
						 "\"stable\":{\"revision\":\"a1\",\"endpoints\":"
						 "[\"10.0.3.1:80\"]},\"canary\":{\"revision\":"
						 "\"a2\",\"endpoints\":[\"10.0.3.2:80\"]},"
						 "\"strategy\":{\"steps\":[{\"setWeight\":50}]}}}",
		       "Rollout shop/extra", "colour");
	/* Longer than the data path's names (31 characters). */
	expect_refused(OBJECT_HEAD("a-rollout-name-longer-than-the-map-allows", "1")
			       SPEC_WEB("10", "10.0.2.21:8080") "}",
		       "Rollout shop/a-rollout-name", "metadata.name");
}

/* A list page or a watch event, as kube.c applies them. */
static void list_of(struct kube_objects *objs, const char *rv, const char *const *items, size_t n)
{
	json_t *list = json_pack("{s:{s:s}, s:[]}", "metadata", "resourceVersion", rv, "items");
	char cont[64];
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(json_object_get(list, "items"), parse(items[i]));
	memset(objs, 0, sizeof(*objs));
	assert_int_equal(kube_objects_add_page(objs, list, cont, sizeof(cont)), 0);
	assert_string_equal(cont, "");
	json_decref(list);
}

static int event(struct kube_objects *objs, const char *type, const char *object)
{
	char line[8192];
	struct kube_event ev;
	int rc;

	snprintf(line, sizeof(line), "{\"type\":\"%s\",\"object\":%s}", type, object);
	assert_int_equal(kube_event_parse(line, strlen(line), &ev), 0);
	rc = kube_objects_apply(objs, &ev);
	kube_event_free(&ev);
	return rc;
}

static const struct rollout_cfg *find(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_rollouts; i++)
		if (!strcmp(cfg->rollouts[i].name, name))
			return &cfg->rollouts[i];
	return NULL;
}

/* The canary endpoint the set runs for web now. */
static __be32 web_canary(const struct kr_set *set)
{
	struct config cfg;
	const struct rollout_cfg *r;
	__be32 addr;

	assert_int_equal(kr_set_config(set, &cfg), 0);
	r = find(&cfg, "web");
	assert_non_null(r);
	addr = r->canary.endpoints[0].addr;
	config_free(&cfg);
	return addr;
}

/*
 * The one Event a refusal queued: a Warning SpecRejected on the Rollout,
 * named after its version (every node of a fleet makes the same one).
 */
static void expect_event(struct kr_set *set, const char *name, const char *what)
{
	const json_t *ev = json_array_get(set->events, 0), *inv;
	const char *msg;

	assert_int_equal(json_array_size(set->events), 1);
	inv = json_object_get(ev, "involvedObject");
	msg = json_string_value(json_object_get(ev, "message"));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(ev, "metadata"), "name")), name);
	assert_string_equal(json_string_value(json_object_get(ev, "type")), "Warning");
	assert_string_equal(json_string_value(json_object_get(ev, "reason")), "SpecRejected");
	assert_string_equal(json_string_value(json_object_get(inv, "kind")), "Rollout");
	assert_string_equal(json_string_value(json_object_get(inv, "namespace")), "shop");
	assert_string_equal(json_string_value(json_object_get(inv, "uid")),
			    "8e7a3c52-1c2f-4b8e-9d57-5b0f1b2a9c11");
	assert_non_null(msg);
	if (!strstr(msg, what) || !strstr(msg, "spec."))
		fail_msg("event message \"%s\" lacks \"%s\" or the field", msg, what);
	json_decref(set->events);
	set->events = NULL;
}

static void test_set_follows_objects(void **state)
{
	const char *const items[] = { web_v1, api_v1 };
	struct kube_objects objs;
	struct kr_set set = { 0 };
	struct config cfg;
	__be32 first;

	(void)state;
	list_of(&objs, "1010", items, 2);
	assert_int_equal(kr_set_update(&set, &objs), 1);
	assert_int_equal(kr_set_config(&set, &cfg), 0);
	assert_int_equal(cfg.n_rollouts, 2);
	assert_string_equal(cfg.rollouts[0].name, "api"); /* sorted */
	assert_string_equal(cfg.rollouts[1].name, "web");
	config_free(&cfg);
	first = web_canary(&set);

	/* The coordinator's status write: not a change. */
	assert_int_equal(event(&objs, "MODIFIED", web_status), 0);
	assert_int_equal(kr_set_update(&set, &objs), 0);
	assert_string_equal(objs.rv, "1002");

	/* A new canary endpoint: a change of web only. */
	assert_int_equal(event(&objs, "MODIFIED", web_canary2), 0);
	assert_int_equal(kr_set_update(&set, &objs), 1);
	assert_int_not_equal(web_canary(&set), first);
	first = web_canary(&set);

	/* Refused: web keeps its last accepted spec, and says so once. */
	assert_int_equal(event(&objs, "MODIFIED", web_three_decimals), 0);
	assert_int_equal(kr_set_update(&set, &objs), 0);
	assert_int_equal(set.rejected, 1);
	assert_int_equal(web_canary(&set), first);
	assert_int_equal(kr_set_update(&set, &objs), 0);
	assert_int_equal(set.rejected, 1);
	expect_event(&set, "web.rejected.1004", "the last accepted spec keeps running");

	/* Deleted: gone from the set. */
	assert_int_equal(event(&objs, "DELETED", api_v1), 0);
	assert_int_equal(kr_set_update(&set, &objs), 1);
	assert_int_equal(kr_set_config(&set, &cfg), 0);
	assert_int_equal(cfg.n_rollouts, 1);
	assert_null(find(&cfg, "api"));
	config_free(&cfg);

	kube_objects_free(&objs);
	kr_set_free(&set);
}

/* A 410, then a re-list: what the list lacks is gone, whatever events were lost. */
static void test_gone_then_relist(void **state)
{
	const char *const before[] = { web_v1, api_v1 }, *const after[] = { web_canary2 };
	struct kube_objects objs, fresh;
	struct kr_set set = { 0 };
	struct config cfg;

	(void)state;
	list_of(&objs, "1010", before, 2);
	assert_int_equal(kr_set_update(&set, &objs), 1);
	assert_int_equal(event(&objs, "ERROR",
			       "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Expired\","
			       "\"code\":410}"),
			 -ESTALE);
	list_of(&fresh, "2000", after, 1);
	kube_objects_replace(&objs, &fresh);
	assert_string_equal(objs.rv, "2000");
	assert_int_equal(kr_set_update(&set, &objs), 1);
	assert_int_equal(kr_set_config(&set, &cfg), 0);
	assert_int_equal(cfg.n_rollouts, 1);
	assert_string_equal(cfg.rollouts[0].name, "web");
	config_free(&cfg);
	kube_objects_free(&objs);
	kr_set_free(&set);
}

/* Two Rollouts on one service: the one running keeps it, the newcomer is refused. */
static void test_service_clash(void **state)
{
	const char *const items[] = { web_v1 };
	struct kube_objects objs;
	struct kr_set set = { 0 };
	struct config cfg;

	(void)state;
	list_of(&objs, "1001", items, 1);
	assert_int_equal(kr_set_update(&set, &objs), 1);
	assert_int_equal(event(&objs, "ADDED", clash), 0);
	assert_int_equal(kr_set_update(&set, &objs), 0);
	assert_int_equal(set.rejected, 1);
	expect_event(&set, "clash.rejected.1011", "the rollout does not run");
	assert_int_equal(kr_set_config(&set, &cfg), 0);
	assert_int_equal(cfg.n_rollouts, 1);
	assert_string_equal(cfg.rollouts[0].name, "web");
	config_free(&cfg);
	kube_objects_free(&objs);
	kr_set_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_to_config), cmocka_unit_test(test_weight_decimals),
		cmocka_unit_test(test_refusals),	 cmocka_unit_test(test_set_follows_objects),
		cmocka_unit_test(test_gone_then_relist), cmocka_unit_test(test_service_clash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
