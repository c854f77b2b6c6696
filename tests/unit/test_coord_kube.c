// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Kubernetes coordinator's pure parts (userspace/coord_kube.c), and a
 * kubeconfig of several clusters (userspace/kubeconfig.c), on recorded objects: the
 * Leases and status patches it writes, the records it reads back from
 * Leases and Rollouts, and the expiry rule that turns a stale Lease into
 * the deletion etcd would have made.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "coord_kube.h"
#include "kubeconfig.h"

/* 2026-12-05T21:00:00.250000Z */
#define T0 (1796504400LL * 1000000 + 250000)

/* A leader Lease as a 1.20 server returns it after its holder's first renewal. */
static const char leader_lease[] =
	"{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\","
	"\"metadata\":{\"name\":\"canaryd-web.leader\",\"namespace\":\"canaryd-system\","
	"\"uid\":\"0b9c6a0e-3d51-4d2e-9a7d-6f6e2f3b1c11\",\"resourceVersion\":\"912\","
	"\"labels\":{\"app.kubernetes.io/managed-by\":\"canaryd\",\"canaryd.io/role\":\"leader\","
	"\"canaryd.io/rollout\":\"web\"},\"annotations\":{\"canaryd.io/tenure\":\"870\"}},"
	"\"spec\":{\"holderIdentity\":\"n2\",\"leaseDurationSeconds\":15,"
	"\"acquireTime\":\"2026-12-05T20:59:50.000000Z\","
	"\"renewTime\":\"2026-12-05T21:00:00.250000Z\",\"leaseTransitions\":1}}";

static const char node_lease[] =
	"{\"kind\":\"Lease\",\"metadata\":{\"name\":\"canaryd-web.node.n1\",\"resourceVersion\":\"915\","
	"\"labels\":{\"app.kubernetes.io/managed-by\":\"canaryd\",\"canaryd.io/role\":\"node\","
	"\"canaryd.io/rollout\":\"web\",\"canaryd.io/node\":\"n1\"},"
	"\"annotations\":{\"canaryd.io/evidence\":\"{\\\"epoch\\\":3}\"}},"
	"\"spec\":{\"holderIdentity\":\"n1\",\"leaseDurationSeconds\":15,"
	"\"renewTime\":\"2026-12-05T21:00:00.250000Z\"}}";

static const char rollout_obj[] =
	"{\"apiVersion\":\"canaryd.io/v1alpha1\",\"kind\":\"Rollout\","
	"\"metadata\":{\"name\":\"web\",\"namespace\":\"canaryd-system\",\"resourceVersion\":\"920\","
	"\"generation\":1},\"spec\":{},"
	"\"status\":{\"phase\":\"Progressing\",\"step\":2,\"weight\":25,"
	"\"shared\":\"{\\\"phase\\\":\\\"Progressing\\\",\\\"step\\\":2}\"}}";

static json_t *load(const char *text)
{
	json_t *o = json_loads(text, 0, NULL);

	assert_non_null(o);
	return o;
}

static void test_rv_and_time(void **state)
{
	char buf[48];
	__s64 us;

	(void)state;
	assert_int_equal(coord_kube_rv("912"), 912);
	assert_int_equal(coord_kube_rv(""), -1);
	assert_int_equal(coord_kube_rv("0"), -1);
	assert_int_equal(coord_kube_rv("12a"), -1);
	assert_int_equal(coord_kube_rv("-3"), -1);
	assert_int_equal(coord_kube_rv(NULL), -1);
	assert_int_equal(coord_kube_time_parse("2026-12-05T21:00:00.250000Z", &us), 0);
	assert_int_equal(us, T0);
	/* A Time (seconds) and a MicroTime with fewer digits both read. */
	assert_int_equal(coord_kube_time_parse("2026-12-05T21:00:00Z", &us), 0);
	assert_int_equal(us, T0 - 250000);
	assert_int_equal(coord_kube_time_parse("2026-12-05T21:00:00.25Z", &us), 0);
	assert_int_equal(us, T0);
	assert_int_equal(coord_kube_time_parse("2026-12-05T21:00:00+01:00", &us), -EINVAL);
	assert_int_equal(coord_kube_time_parse("yesterday", &us), -EINVAL);
	coord_kube_time_format(T0, buf, sizeof(buf));
	assert_string_equal(buf, "2026-12-05T21:00:00.250000Z");
}

static void test_lease_names(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(coord_kube_lease_name(buf, sizeof(buf), "web", NULL), 0);
	assert_string_equal(buf, "canaryd-web.leader");
	assert_int_equal(coord_kube_lease_name(buf, sizeof(buf), "web", "n1"), 0);
	assert_string_equal(buf, "canaryd-web.node.n1");
	/* Rollout names have no dot: "web-x" and node "x" of "web" cannot meet. */
	assert_int_equal(coord_kube_lease_name(buf, sizeof(buf), "web-x", NULL), 0);
	assert_string_equal(buf, "canaryd-web-x.leader");
	assert_int_equal(coord_kube_lease_name(buf, 8, "web", NULL), -ENAMETOOLONG);
}

static void test_node_names(void **state)
{
	static const char *const good[] = { "n1", "worker-3", "ip-10-0-0-1.ec2.internal", "a",
					    "0.1.2" };
	static const char *const bad[] = { "",	 "N1",	 "a_b",	 "-a",	 "a-",	"a.",
					   ".a", "a..b", "a.-b", "a-.b", "a b", "x/y" };
	char longest[COORD_NODE_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(coord_kube_node_name_ok(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(coord_kube_node_name_ok(bad[i]));
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_true(coord_kube_node_name_ok(longest)); /* 63: a label value's limit */
	longest[sizeof(longest) - 2] = '.';
	assert_false(coord_kube_node_name_ok(longest));
	{
		char over[COORD_NODE_LEN + 1];

		memset(over, 'a', sizeof(over) - 1);
		over[sizeof(over) - 1] = '\0';
		assert_false(coord_kube_node_name_ok(over));
	}
}

static void test_expiry(void **state)
{
	json_t *l = load(leader_lease);

	(void)state;
	assert_false(coord_kube_lease_expired(l, T0));
	assert_false(coord_kube_lease_expired(l, T0 + 15 * 1000000LL));
	assert_true(coord_kube_lease_expired(l, T0 + 15 * 1000000LL + 1));
	/* Released (no holder): free at once. */
	json_object_set_new(json_object_get(l, "spec"), "holderIdentity", json_string(""));
	assert_true(coord_kube_lease_expired(l, T0));
	json_object_del(json_object_get(l, "spec"), "holderIdentity");
	assert_true(coord_kube_lease_expired(l, T0));
	json_decref(l);
	l = load("{\"spec\":{\"holderIdentity\":\"n1\",\"leaseDurationSeconds\":15}}");
	assert_true(coord_kube_lease_expired(l, T0)); /* no renewTime */
	json_decref(l);
}

static void test_lease_records(void **state)
{
	json_t *l = load(leader_lease), *n = load(node_lease);
	struct coord_record rec;

	(void)state;
	assert_int_equal(coord_kube_lease_record(l, T0, &rec), 0);
	assert_int_equal(rec.kind, COORD_LEADER);
	assert_string_equal(rec.rollout, "web");
	assert_string_equal(rec.value, "n2");
	assert_int_equal(rec.create_revision, 870); /* the tenure: the fence */
	assert_int_equal(rec.mod_revision, 912);
	/* Expired: the same record, as a deletion at its own revision. */
	assert_int_equal(coord_kube_lease_record(l, T0 + 16 * 1000000LL, &rec), 0);
	assert_null(rec.value);
	assert_int_equal(rec.mod_revision, 912);
	/* Before its first renewal a tenure is the Lease's own version. */
	json_object_del(json_object_get(json_object_get(l, "metadata"), "annotations"),
			"canaryd.io/tenure");
	assert_int_equal(coord_kube_lease_record(l, T0, &rec), 0);
	assert_int_equal(rec.create_revision, 912);
	assert_int_equal(coord_kube_lease_record(n, T0, &rec), 0);
	assert_int_equal(rec.kind, COORD_NODE);
	assert_string_equal(rec.node, "n1");
	assert_string_equal(rec.value, "{\"epoch\":3}");
	/* Not one of ours: no labels. */
	json_object_del(json_object_get(n, "metadata"), "labels");
	assert_int_equal(coord_kube_lease_record(n, T0, &rec), -EINVAL);
	json_decref(l);
	json_decref(n);
}

static void test_rollout_record(void **state)
{
	json_t *r = load(rollout_obj);
	struct coord_record rec;
	char *owned;

	(void)state;
	assert_int_equal(coord_kube_rollout_record(r, &rec, &owned), 0);
	assert_null(owned);
	assert_int_equal(rec.kind, COORD_STATE);
	assert_string_equal(rec.rollout, "web");
	assert_string_equal(rec.value, "{\"phase\":\"Progressing\",\"step\":2}");
	assert_int_equal(rec.mod_revision, 920);
	/* Applied by the operator, no fleet state yet: no record. */
	json_object_del(r, "status");
	assert_int_equal(coord_kube_rollout_record(r, &rec, &owned), -ENOENT);
	assert_null(owned);
	json_decref(r);
}

/* status.abort set by someone beside a running phase: the state read is aborted. */
static void test_operator_abort(void **state)
{
	json_t *r = load(rollout_obj), *st, *got;
	struct coord_record rec;
	char *owned;

	(void)state;
	st = json_object_get(r, "status");
	json_object_set_new(st, "shared",
			    json_string("{\"phase\":\"Paused\",\"step\":3,\"weightBp\":5000,"
					"\"aborts\":1,\"userPaused\":true,\"epoch\":4}"));
	json_object_set_new(st, "abort", json_true());
	assert_int_equal(coord_kube_rollout_record(r, &rec, &owned), 0);
	assert_non_null(owned);
	assert_ptr_equal(rec.value, owned);
	got = json_loads(rec.value, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(got, "phase")), "Degraded");
	assert_int_equal(json_integer_value(json_object_get(got, "weightBp")), 0);
	assert_int_equal(json_integer_value(json_object_get(got, "aborts")), 2);
	assert_int_equal(json_integer_value(json_object_get(got, "step")), 3);
	assert_true(json_is_false(json_object_get(got, "userPaused")));
	assert_non_null(strstr(json_string_value(json_object_get(got, "message")), "status.abort"));
	json_decref(got);
	free(owned);
	/* A finished rollout has nothing to abort: its state is read as it is. */
	json_object_set_new(st, "shared", json_string("{\"phase\":\"Healthy\",\"step\":5}"));
	assert_int_equal(coord_kube_rollout_record(r, &rec, &owned), 0);
	assert_null(owned);
	assert_string_equal(rec.value, "{\"phase\":\"Healthy\",\"step\":5}");
	/* abort false (what the agents write beside a running phase): as it is. */
	json_object_set_new(st, "shared", json_string("{\"phase\":\"Paused\"}"));
	json_object_set_new(st, "abort", json_false());
	assert_int_equal(coord_kube_rollout_record(r, &rec, &owned), 0);
	assert_null(owned);
	json_decref(r);
}

static void test_lease_json(void **state)
{
	struct coord_kube_lease l = { .ns = "ns1",
				      .rollout = "web",
				      .holder = "n1",
				      .duration_s = 15,
				      .acquire_us = T0,
				      .renew_us = T0 + 1,
				      .transitions = 2,
				      .rv = 912,
				      .tenure = 870 };
	json_t *o = coord_kube_lease_json(&l), *back;
	struct coord_record rec;
	char *text;

	(void)state;
	assert_non_null(o);
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(
		text,
		"{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":"
		"{\"annotations\":{\"canaryd.io/tenure\":\"870\"},\"labels\":"
		"{\"app.kubernetes.io/managed-by\":\"canaryd\",\"canaryd.io/role\":\"leader\","
		"\"canaryd.io/rollout\":\"web\"},\"name\":\"canaryd-web.leader\",\"namespace\":\"ns1\","
		"\"resourceVersion\":\"912\"},\"spec\":{\"acquireTime\":\"2026-12-05T21:00:00.250000Z\","
		"\"holderIdentity\":\"n1\",\"leaseDurationSeconds\":15,\"leaseTransitions\":2,"
		"\"renewTime\":\"2026-12-05T21:00:00.250001Z\"}}");
	free(text);
	/* What it writes reads back as the record it means. */
	assert_int_equal(coord_kube_lease_record(o, T0, &rec), 0);
	assert_int_equal(rec.create_revision, 870);
	assert_string_equal(rec.value, "n1");
	json_decref(o);
	/* Released: no holder, no times; a node's Lease carries its evidence. */
	l.holder = NULL;
	o = coord_kube_lease_json(&l);
	assert_null(json_object_get(json_object_get(o, "spec"), "holderIdentity"));
	assert_true(coord_kube_lease_expired(o, T0));
	json_decref(o);
	l = (struct coord_kube_lease){ .ns = "ns1",
				       .rollout = "web",
				       .node = "n1",
				       .holder = "n1",
				       .duration_s = 15,
				       .acquire_us = T0,
				       .renew_us = T0,
				       .evidence = "{\"epoch\":1}" };
	back = coord_kube_lease_json(&l);
	assert_null(json_object_get(json_object_get(back, "metadata"), "resourceVersion"));
	/* The server gives it a version; without one it is no record. */
	assert_int_equal(coord_kube_lease_record(back, T0, &rec), -EINVAL);
	json_object_set_new(json_object_get(back, "metadata"), "resourceVersion",
			    json_string("930"));
	assert_int_equal(coord_kube_lease_record(back, T0, &rec), 0);
	assert_int_equal(rec.kind, COORD_NODE);
	assert_string_equal(rec.value, "{\"epoch\":1}");
	json_decref(back);
}

static const char *status_str(const json_t *patch, const char *key)
{
	return json_string_value(json_object_get(json_object_get(patch, "status"), key));
}

static void test_status_patch(void **state)
{
	char *p = coord_kube_status_patch(
		"{\"phase\":\"Progressing\",\"step\":3,\"weightBp\":2550}", 920);
	json_t *o;

	(void)state;
	assert_non_null(p);
	o = load(p);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "metadata"),
							      "resourceVersion")),
			    "920");
	assert_string_equal(status_str(o, "phase"), "Progressing");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "status"), "step")),
			 3);
	assert_true(json_real_value(json_object_get(json_object_get(o, "status"), "weight")) ==
		    25.5);
	assert_false(json_is_true(json_object_get(json_object_get(o, "status"), "abort")));
	json_decref(o);
	free(p);
	/* An abort: no precondition, and the printer's abort column set. */
	p = coord_kube_status_patch("{\"phase\":\"Degraded\",\"step\":3,\"weightBp\":0}", 0);
	o = load(p);
	assert_null(json_object_get(o, "metadata"));
	assert_true(json_is_true(json_object_get(json_object_get(o, "status"), "abort")));
	assert_string_equal(status_str(o, "shared"),
			    "{\"phase\":\"Degraded\",\"step\":3,\"weightBp\":0}");
	json_decref(o);
	free(p);
	/* Healthy: the message and the promoted revision are copied for people. */
	p = coord_kube_status_patch("{\"phase\":\"Healthy\",\"step\":3,\"weightBp\":10000,"
				    "\"message\":\"promoted\",\"promotedRevision\":\"v2\"}",
				    0);
	o = load(p);
	assert_string_equal(status_str(o, "promotedRevision"), "v2");
	assert_string_equal(status_str(o, "message"), "promoted");
	json_decref(o);
	free(p);
	/* No message: a null, which the merge patch takes as "remove the old one". */
	p = coord_kube_status_patch("{\"phase\":\"Paused\",\"message\":\"\"}", 0);
	o = load(p);
	assert_true(json_is_null(json_object_get(json_object_get(o, "status"), "message")));
	assert_null(json_object_get(json_object_get(o, "status"), "promotedRevision"));
	json_decref(o);
	free(p);
	/* Text the agent cannot read is still stored, without the columns. */
	p = coord_kube_status_patch("not json", 0);
	o = load(p);
	assert_null(json_object_get(json_object_get(o, "status"), "phase"));
	json_decref(o);
	free(p);
}

/* The leader's view goes under status, as it is; anything but an object is refused. */
static void test_view_patch(void **state)
{
	char *p = coord_kube_view_patch("{\"verdicts\":[],\"nodes\":[{\"node\":\"n1\"}]}");
	json_t *o;

	(void)state;
	assert_non_null(p);
	o = load(p);
	assert_null(json_object_get(o, "metadata")); /* never a precondition */
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(json_object_get(o, "status"), "nodes"), 0),
			"node")),
		"n1");
	assert_null(json_object_get(json_object_get(o, "status"), "shared"));
	json_decref(o);
	free(p);
	assert_null(coord_kube_view_patch("[1]"));
	assert_null(coord_kube_view_patch("not json"));
}

static const char *ev_str(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);

	return json_string_value(b ? json_object_get(v, b) : v);
}

static void test_event_json(void **state)
{
	struct coord_kube_event e = {
		.ns = "canaryd-system",
		.rollout = "web",
		.uid = "1f0e-42",
		.node = "n2",
		.shared = "{\"phase\":\"Paused\",\"step\":1,\"weightBp\":2050,\"message\":\"\"}",
		.write = COORD_KUBE_WRITE_STEP,
		.now_us = 1700000000123456LL
	};
	char key[128];
	json_t *o = coord_kube_event_json(&e, key, sizeof(key));

	(void)state;
	assert_non_null(o);
	assert_string_equal(ev_str(o, "kind", NULL), "Event");
	assert_string_equal(ev_str(o, "apiVersion", NULL), "v1");
	assert_string_equal(ev_str(o, "metadata", "namespace"), "canaryd-system");
	assert_non_null(strstr(ev_str(o, "metadata", "name"), "web."));
	assert_string_equal(ev_str(o, "involvedObject", "kind"), "Rollout");
	assert_string_equal(ev_str(o, "involvedObject", "apiVersion"), "canaryd.io/v1alpha1");
	assert_string_equal(ev_str(o, "involvedObject", "name"), "web");
	assert_string_equal(ev_str(o, "involvedObject", "namespace"), "canaryd-system");
	assert_string_equal(ev_str(o, "involvedObject", "uid"), "1f0e-42");
	assert_string_equal(ev_str(o, "reason", NULL), "Paused");
	assert_string_equal(ev_str(o, "type", NULL), "Normal");
	assert_string_equal(ev_str(o, "message", NULL), "step 1, weight 20.5%: Paused");
	assert_string_equal(ev_str(o, "source", "component"), "canaryd");
	assert_string_equal(ev_str(o, "source", "host"), "n2");
	assert_string_equal(ev_str(o, "firstTimestamp", NULL), "2023-11-14T22:13:20Z");
	assert_string_equal(ev_str(o, "lastTimestamp", NULL), "2023-11-14T22:13:20Z");
	assert_int_equal(json_integer_value(json_object_get(o, "count")), 1);
	assert_string_equal(key, "web/Paused/step 1, weight 20.5%: Paused");
	json_decref(o);
	/* A step on: StepAdvanced; an abort: a Warning with the message. */
	e.shared = "{\"phase\":\"Progressing\",\"step\":2,\"message\":\"\"}";
	o = coord_kube_event_json(&e, key, sizeof(key));
	assert_string_equal(ev_str(o, "reason", NULL), "StepAdvanced");
	json_decref(o);
	e.shared = "{\"phase\":\"Degraded\",\"step\":2,\"message\":\"aborted: errorRate\"}";
	e.write = COORD_KUBE_WRITE_ABORT;
	o = coord_kube_event_json(&e, key, sizeof(key));
	assert_string_equal(ev_str(o, "reason", NULL), "Aborted");
	assert_string_equal(ev_str(o, "type", NULL), "Warning");
	assert_string_equal(ev_str(o, "message", NULL), "step 2, weight 0%: aborted: errorRate");
	json_decref(o);
	/* Verbs: a resume, a promote; the end of the steps is Promoted too. */
	e.write = COORD_KUBE_WRITE_VERB;
	e.shared = "{\"phase\":\"Progressing\",\"step\":2,\"message\":\"\"}";
	o = coord_kube_event_json(&e, key, sizeof(key));
	assert_string_equal(ev_str(o, "reason", NULL), "Resumed");
	json_decref(o);
	e.shared = "{\"phase\":\"Progressing\",\"step\":3,"
		   "\"message\":\"promoted to step 3 by an operator\"}";
	o = coord_kube_event_json(&e, key, sizeof(key));
	assert_string_equal(ev_str(o, "reason", NULL), "Promoted");
	json_decref(o);
	e.write = COORD_KUBE_WRITE_STEP;
	e.shared = "{\"phase\":\"Healthy\",\"step\":6}";
	o = coord_kube_event_json(&e, key, sizeof(key));
	assert_string_equal(ev_str(o, "reason", NULL), "Promoted");
	json_decref(o);
	/* A state that cannot be read records nothing. */
	e.shared = "not json";
	assert_null(coord_kube_event_json(&e, key, sizeof(key)));
}

static const char kubeconfig_text[] =
	"apiVersion: v1\nkind: Config\ncurrent-context: agent\n"
	"clusters:\n- name: other\n  cluster: {server: \"https://10.9.9.9:6443\"}\n"
	"- name: lab\n  cluster: {server: \"https://198.18.110.1:6443\", "
	"certificate-authority: /tmp/ca.pem}\n"
	"contexts:\n- name: agent\n  context: {cluster: lab, user: agent}\n"
	"users:\n- name: agent\n  user: {token: s3cret}\n";

/* Write text to a new temporary file; its path goes to path (PATH_MAX). */
static void temp_file(const char *text, char *path)
{
	int fd;

	snprintf(path, PATH_MAX, "/tmp/test_coord_kube.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The current context picks its cluster among several (the reader is kubeconfig.c's). */
static void test_kubeconfig(void **state)
{
	char path[PATH_MAX], err[CONFIG_ERR_LEN];
	struct kube_conn k;

	(void)state;
	temp_file(kubeconfig_text, path);
	assert_int_equal(kubeconfig_load(path, &k, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(k.server, "https://198.18.110.1:6443");
	assert_string_equal(k.ca_file, "/tmp/ca.pem");
	assert_string_equal(k.token, "s3cret");
	assert_string_equal(k.token_file, "");
	temp_file("current-context: nope\n", path);
	assert_int_equal(kubeconfig_load(path, &k, err, sizeof(err)), -1);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rv_and_time),    cmocka_unit_test(test_lease_names),
		cmocka_unit_test(test_expiry),	       cmocka_unit_test(test_lease_records),
		cmocka_unit_test(test_rollout_record), cmocka_unit_test(test_operator_abort),
		cmocka_unit_test(test_lease_json),     cmocka_unit_test(test_status_patch),
		cmocka_unit_test(test_view_patch),     cmocka_unit_test(test_node_names),
		cmocka_unit_test(test_kubeconfig),     cmocka_unit_test(test_event_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
