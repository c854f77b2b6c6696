// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kubectl canary's pure parts: its command line
 * (tools/canaryctl/plugin_args.c), and a Rollout object as the plugin reads
 * and writes it (userspace/kuberollout.c): the spec through the config
 * module, the table of `get`, and each verb's next state, judged by the
 * fleet's rule (fleet_verb_next) as an agent's fleet_verb judges it, written
 * as a status patch at the version read.
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

#include "kuberollout.h"
#include "../../tools/canaryctl/plugin_args.h"

/* ---- the command line ---- */

#define MAX_ARGS 16

struct cmdline {
	char buf[MAX_ARGS][64];
	char *argv[MAX_ARGS + 1];
	int argc;
};

/* "get -n shop" -> argv, with the plugin's name first; getopt permutes it. */
static void split(struct cmdline *c, const char *line)
{
	char tmp[512], *save = NULL, *tok;

	snprintf(tmp, sizeof(tmp), "kubectl-canary %s", line);
	c->argc = 0;
	for (tok = strtok_r(tmp, " ", &save); tok && c->argc < MAX_ARGS;
	     tok = strtok_r(NULL, " ", &save)) {
		snprintf(c->buf[c->argc], sizeof(c->buf[0]), "%s", tok);
		c->argv[c->argc] = c->buf[c->argc];
		c->argc++;
	}
	c->argv[c->argc] = NULL;
}

static int parse(const char *line, struct plugin_args *a, char *err, size_t errlen)
{
	static struct cmdline c; /* argv outlives the call: a->name points into it */

	split(&c, line);
	err[0] = '\0';
	return plugin_parse_args(c.argc, c.argv, a, err, errlen);
}

static void test_args_verbs(void **state)
{
	struct plugin_args a;
	char err[256];

	(void)state;
	assert_int_equal(parse("get", &a, err, sizeof(err)), 0);
	assert_int_equal(a.verb, PLUGIN_GET);
	assert_null(a.name);
	assert_null(a.ns);
	assert_int_equal(parse("get web -o json -n shop", &a, err, sizeof(err)), 0);
	assert_string_equal(a.name, "web");
	assert_string_equal(a.ns, "shop");
	assert_true(a.json);
	assert_int_equal(
		parse("--kubeconfig /k/c --namespace prod status web --watch --timeout 90s", &a,
		      err, sizeof(err)),
		0);
	assert_int_equal(a.verb, PLUGIN_STATUS);
	assert_string_equal(a.kubeconfig, "/k/c");
	assert_string_equal(a.ns, "prod");
	assert_true(a.watch);
	assert_int_equal(a.timeout_ms, 90000);
	assert_int_equal(parse("promote web --full", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_PROMOTE_FULL);
	assert_int_equal(parse("promote web", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_PROMOTE);
	assert_int_equal(parse("set-weight web 12.5", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_SET_WEIGHT);
	assert_int_equal(a.weight_bp, 1250);
	assert_int_equal(parse("abort web", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_ABORT);
	assert_int_equal(parse("retry web", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_RETRY);
	assert_int_equal(parse("pause web", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_PAUSE);
	assert_int_equal(parse("resume web", &a, err, sizeof(err)), 0);
	assert_int_equal(plugin_rollout_verb(&a), VERB_RESUME);
	assert_int_equal(parse("--help", &a, err, sizeof(err)), 0);
	assert_true(a.help);
}

/* Each bad command line is refused, and the message names what is wrong. */
static void test_args_refused(void **state)
{
	static const struct {
		const char *line, *says;
	} cases[] = {
		{ "", "a verb is needed" },
		{ "rollback web", "unknown verb \"rollback\"" },
		{ "pause", "one Rollout NAME" },
		{ "pause web api", "one Rollout NAME" },
		{ "status", "one Rollout NAME" },
		{ "get a b", "usage: get [NAME]" },
		{ "set-weight web", "usage: set-weight NAME PERCENT" },
		{ "set-weight web 101", "set-weight:" },
		{ "set-weight web 1.234", "set-weight:" },
		{ "pause Web", "not a Rollout name" },
		{ "pause ../../secrets", "not a Rollout name" },
		{ "status web --timeout 5x --watch", "--timeout: not a duration" },
		{ "status web --timeout 5s", "--timeout needs --watch" },
		{ "pause web --watch", "belong to status" },
		{ "abort web --full", "--full belongs to promote" },
		{ "abort web -o json", "-o json belongs to get and status" },
		{ "get -o yaml", "only json" },
		{ "get --frobnicate", "unknown option" },
		{ "get -n", "missing value" },
	};
	struct plugin_args a;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].line, &a, err, sizeof(err));

		if (rc != -1 || !strstr(err, cases[i].says))
			fail_msg("\"%s\": rc %d, \"%s\", wanted \"%s\"", cases[i].line, rc, err,
				 cases[i].says);
	}
}

/* ---- a Rollout object ---- */

#define SPEC                                                                             \
	"{\"service\":{\"vip\":\"10.96.0.10\",\"port\":80,\"protocol\":\"http\"},"       \
	"\"stable\":{\"revision\":\"v1\",\"endpoints\":[\"10.0.1.11:8080\"]},"           \
	"\"canary\":{\"revision\":\"v2\",\"endpoints\":[\"10.0.2.21:8080\"]},"           \
	"\"strategy\":{\"steps\":[{\"setWeight\":20},{\"pause\":{}},{\"setWeight\":40}," \
	"{\"pause\":{\"duration\":\"1s\"}},{\"setWeight\":60},{\"pause\":{}}]}}"

/* As the API server returns it: metadata the config module never sees, a status. */
static json_t *rollout_obj(const char *spec, const char *shared, bool abort_flag)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:[{s:s}]}, s:o}",
			      "apiVersion", "canaryd.io/v1alpha1", "kind", "Rollout", "metadata",
			      "name", "web", "namespace", "canaryd-system", "uid",
			      "6c1f8d2e-0000-4000-8000-000000000001", "resourceVersion", "4711",
			      "creationTimestamp", "2026-12-05T21:00:00Z", "managedFields",
			      "manager", "kubectl", "spec", json_loads(spec, 0, NULL));
	json_t *status = json_object();

	assert_non_null(o);
	if (shared)
		json_object_set_new(status, "shared", json_string(shared));
	json_object_set_new(status, "abort", json_boolean(abort_flag));
	json_object_set_new(o, "status", status);
	return o;
}

/* The shared JSON of a state of this spec, as an agent wrote it. */
static char *shared_text(enum rollout_phase phase, int step, __u16 bp, bool user_paused)
{
	json_t *o = rollout_obj(SPEC, NULL, false), *j;
	struct fleet_shared s = { .epoch = 7, .epoch_wall_ms = 1000 };
	struct config cfg;
	char err[256], *text;

	assert_int_equal(kuberollout_config(o, &cfg, err, sizeof(err)), 0);
	rollout_init(&s.st, &cfg.rollouts[0]);
	s.st.phase = phase;
	s.st.step = step;
	s.st.weight_bp = bp;
	s.st.user_paused = user_paused;
	s.st.step_started = true;
	snprintf(s.writer, sizeof(s.writer), "n2");
	j = fleet_shared_to_json(&s);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	json_decref(o);
	config_free(&cfg);
	return text;
}

/* Apply a verb: the patch's status.shared, read back. */
static int verb(json_t *obj, enum rollout_verb v, __u16 bp, struct fleet_shared *next,
		json_t **patch_out, char *err)
{
	char *patch = NULL;
	json_t *p;
	int rc = kuberollout_verb_patch(obj, v, bp, 5000, &patch, err, 256);

	if (rc)
		return rc;
	p = json_loads(patch, 0, NULL);
	free(patch);
	assert_non_null(p);
	assert_int_equal(fleet_shared_from_json(json_string_value(json_object_get(
							json_object_get(p, "status"), "shared")),
						next),
			 0);
	if (patch_out)
		*patch_out = p;
	else
		json_decref(p);
	return 0;
}

static void test_spec_is_read_by_the_config_module(void **state)
{
	json_t *o = rollout_obj(SPEC, NULL, false), *bad;
	struct config cfg;
	char err[256];

	(void)state;
	assert_int_equal(kuberollout_config(o, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.rollouts[0].name, "web");
	assert_int_equal(cfg.rollouts[0].n_steps, 6);
	config_free(&cfg);
	/* What the schema of 1.20 lets through and the agents refuse: a weight's third decimal. */
	bad = rollout_obj("{\"service\":{\"vip\":\"10.96.0.10\",\"port\":80},"
			  "\"stable\":{\"endpoints\":[\"10.0.1.11:8080\"]},"
			  "\"canary\":{\"endpoints\":[\"10.0.2.21:8080\"]},"
			  "\"strategy\":{\"steps\":[{\"setWeight\":12.345}]}}",
			  NULL, false);
	assert_int_equal(kuberollout_config(bad, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Rollout web (spec)"));
	assert_non_null(strstr(err, "setWeight"));
	json_decref(bad);
	json_decref(o);
}

static void test_verbs_next_state(void **state)
{
	char *paused = shared_text(PHASE_PAUSED, 1, 2000, false), err[256];
	json_t *o = rollout_obj(SPEC, paused, false), *patch;
	struct fleet_shared next;

	(void)state;
	/* set-weight: the weight pinned, a new epoch, the writer named, at the version read. */
	assert_int_equal(verb(o, VERB_SET_WEIGHT, 3300, &next, &patch, err), 0);
	assert_int_equal(next.st.weight_bp, 3300);
	assert_int_equal(next.epoch, 8);
	assert_int_equal(next.epoch_wall_ms, 5000);
	assert_string_equal(next.writer, KUBEROLLOUT_WRITER);
	assert_string_equal(json_string_value(json_object_get(json_object_get(patch, "metadata"),
							      "resourceVersion")),
			    "4711");
	/* The printer columns beside it, as the agents write them. */
	assert_true(json_is_false(json_object_get(json_object_get(patch, "status"), "abort")));
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(patch, "status"), "phase")),
		rollout_phase_name(next.st.phase));
	json_decref(patch);
	/* promote from the indefinite pause: the next step, same epoch rule as fleet_verb. */
	assert_int_equal(verb(o, VERB_PROMOTE, 0, &next, NULL, err), 0);
	assert_int_equal(next.st.step, 2);
	assert_int_equal(next.st.phase, PHASE_PROGRESSING);
	/* pause: held by the operator, the weight unchanged, so no new epoch. */
	assert_int_equal(verb(o, VERB_PAUSE, 0, &next, NULL, err), 0);
	assert_true(next.st.user_paused);
	assert_int_equal(next.st.weight_bp, 2000);
	assert_int_equal(next.epoch, 7);
	/* promote --full: straight to 100% and done. */
	assert_int_equal(verb(o, VERB_PROMOTE_FULL, 0, &next, NULL, err), 0);
	assert_int_equal(next.st.phase, PHASE_HEALTHY);
	/* retry makes no sense on a running rollout: refused, and the reason says so. */
	assert_int_equal(verb(o, VERB_RETRY, 0, &next, NULL, err), -EPERM);
	assert_non_null(strstr(err, "Paused"));
	/* abort is not a versioned write: the status.abort patch. */
	assert_int_equal(verb(o, VERB_ABORT, 0, &next, NULL, err), -EINVAL);
	json_decref(o);
	free(paused);
}

/* An operator's status.abort reads as Degraded, as every agent reads it: retry runs it again. */
static void test_retry_after_an_operators_abort(void **state)
{
	char *paused = shared_text(PHASE_PAUSED, 1, 2000, false), err[256];
	json_t *o = rollout_obj(SPEC, paused, true), *patch;
	struct fleet_shared cur, next;

	(void)state;
	assert_int_equal(kuberollout_shared(o, &cur), 0);
	assert_int_equal(cur.st.phase, PHASE_DEGRADED);
	assert_int_equal(kuberollout_outcome(o), KUBEROLLOUT_DEGRADED);
	assert_int_equal(verb(o, VERB_RESUME, 0, &next, NULL, err), -EPERM);
	assert_int_equal(verb(o, VERB_RETRY, 0, &next, &patch, err), 0);
	assert_int_equal(next.st.phase, PHASE_PROGRESSING);
	assert_int_equal(next.epoch, 8); /* judged afresh on every node */
	assert_true(json_is_false(json_object_get(json_object_get(patch, "status"), "abort")));
	json_decref(patch);
	json_decref(o);
	free(paused);
}

static void test_verb_refusals(void **state)
{
	char *paused = shared_text(PHASE_PAUSED, 1, 2000, false), err[256];
	char *other;
	json_t *none = rollout_obj(SPEC, NULL, false), *o, *j;
	struct fleet_shared next, s;

	(void)state;
	/* No agent has written: said so, nothing written. */
	assert_int_equal(verb(none, VERB_PAUSE, 0, &next, NULL, err), -ENOENT);
	assert_non_null(strstr(err, "no agent has written status.shared"));
	assert_int_equal(kuberollout_outcome(none), KUBEROLLOUT_RUNNING);
	/* A state of another canary (the spec changed, the agents not there yet). */
	assert_int_equal(fleet_shared_from_json(paused, &s), 0);
	s.st.canary_fingerprint ^= 1;
	snprintf(s.st.canary_revision, sizeof(s.st.canary_revision), "v1");
	j = fleet_shared_to_json(&s);
	other = json_dumps(j, JSON_COMPACT);
	o = rollout_obj(SPEC, other, false);
	assert_int_equal(verb(o, VERB_PAUSE, 0, &next, NULL, err), -ESTALE);
	assert_non_null(strstr(err, "canary revision \"v1\", not the spec's \"v2\""));
	json_decref(o);
	/* Not JSON canaryd wrote. */
	o = rollout_obj(SPEC, "{\"phase\":\"Sideways\"}", false);
	assert_int_equal(verb(o, VERB_PAUSE, 0, &next, NULL, err), -EINVAL);
	assert_non_null(strstr(err, "status.shared"));
	json_decref(o);
	json_decref(j);
	free(other);
	json_decref(none);
	free(paused);
}

static const char *evstr(const json_t *ev, const char *a, const char *b)
{
	const json_t *o = b ? json_object_get(ev, a) : ev;

	return json_string_value(json_object_get(o, b ? b : a));
}

/* An operator's write recorded as the agents record theirs: by kubectl-canary. */
static void test_events(void **state)
{
	char *paused = shared_text(PHASE_PAUSED, 1, 2000, true);
	json_t *o = rollout_obj(SPEC, paused, false), *aborted = rollout_obj(SPEC, paused, true);
	json_t *none = rollout_obj(SPEC, NULL, false), *ev;

	(void)state;
	ev = kuberollout_event(o, false, 1796504400LL * 1000000);
	assert_non_null(ev);
	assert_string_equal(evstr(ev, "reason", NULL), "Paused");
	assert_string_equal(evstr(ev, "type", NULL), "Normal");
	assert_string_equal(evstr(ev, "source", "host"), KUBEROLLOUT_WRITER);
	assert_string_equal(evstr(ev, "involvedObject", "uid"),
			    "6c1f8d2e-0000-4000-8000-000000000001");
	assert_string_equal(evstr(ev, "involvedObject", "namespace"), "canaryd-system");
	assert_string_equal(evstr(ev, "firstTimestamp", NULL), "2026-12-05T21:00:00Z");
	json_decref(ev);
	/* The abort patch: the aborted state, not the running one beside abort: true. */
	ev = kuberollout_event(aborted, true, 1796504400LL * 1000000);
	assert_non_null(ev);
	assert_string_equal(evstr(ev, "reason", NULL), "Aborted");
	assert_string_equal(evstr(ev, "type", NULL), "Warning");
	assert_non_null(
		strstr(evstr(ev, "message", NULL), "step 1, weight 0%: aborted: status.abort"));
	json_decref(ev);
	assert_null(kuberollout_event(none, false, 1));
	json_decref(o);
	json_decref(aborted);
	json_decref(none);
	free(paused);
}

static char *render(const json_t *obj, __s64 now_s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	kuberollout_table_header(f);
	kuberollout_table_row(f, obj, now_s);
	fclose(f);
	return buf;
}

static void test_table(void **state)
{
	char *paused = shared_text(PHASE_PAUSED, 1, 2050, false);
	json_t *o = rollout_obj(SPEC, paused, false), *none = rollout_obj(SPEC, NULL, false);
	json_t *aborted = rollout_obj(SPEC, paused, true);
	/* 2026-12-05T21:00:00Z + 5m3s */
	__s64 t = 1796504400LL + 303;
	char *out;

	(void)state;
	out = render(o, t);
	assert_string_equal(out,
			    "NAME                            PHASE        STEP  WEIGHT  AGE\n"
			    "web                             Paused       1     20.50   5m3s\n");
	free(out);
	/* An operator's abort shows as the agents act on it, at weight 0. */
	out = render(aborted, t);
	assert_non_null(
		strstr(out, "web                             Degraded     1     0.00    5m3s\n"));
	free(out);
	out = render(none, t + 3 * 86400LL);
	assert_non_null(
		strstr(out, "web                             -            -     -       3d0h\n"));
	free(out);
	json_decref(o);
	json_decref(none);
	json_decref(aborted);
	free(paused);
}

static void test_age(void **state)
{
	static const struct {
		__s64 s;
		const char *want;
	} cases[] = { { -5, "0s" },	    { 59, "59s" },	     { 119, "119s" },
		      { 303, "5m3s" },	    { 900, "15m" },	     { 3 * 3600 + 60, "3h1m" },
		      { 9 * 3600LL, "9h" }, { 3 * 86400LL, "3d0h" }, { 30 * 86400LL, "30d" } };
	char buf[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kuberollout_age(cases[i].s, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args_verbs),
		cmocka_unit_test(test_args_refused),
		cmocka_unit_test(test_spec_is_read_by_the_config_module),
		cmocka_unit_test(test_verbs_next_state),
		cmocka_unit_test(test_retry_after_an_operators_abort),
		cmocka_unit_test(test_verb_refusals),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_age),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
