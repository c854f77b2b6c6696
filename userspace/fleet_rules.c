// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The fleet's pure rules and its JSON records; no I/O, no threads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"

double fleet_node_confidence(double confidence, unsigned int nodes)
{
	if (!(confidence > 0 && confidence < 1))
		return confidence; /* the analysis' own default applies */
	/* Bonferroni: N nodes each at alpha/N abort a healthy canary at most alpha of the time. */
	return 1.0 - (1.0 - confidence) / (nodes ? nodes : 1);
}

static void add_metrics(struct canary_metrics *to, const struct canary_metrics *m)
{
	int i;

	to->conns_opened += m->conns_opened;
	to->conns_refused += m->conns_refused;
	to->conns_reset += m->conns_reset;
	to->requests += m->requests;
	for (i = 0; i < CANARY_STATUS_CLASSES; i++)
		to->responses[i] += m->responses[i];
	to->bytes_in += m->bytes_in;
	to->bytes_out += m->bytes_out;
	to->packets_in += m->packets_in;
	to->packets_out += m->packets_out;
	to->latency_count += m->latency_count;
	to->latency_sum_us += m->latency_sum_us;
	for (i = 0; i < (int)CANARY_HIST_BUCKETS; i++)
		to->latency_hist[i] += m->latency_hist[i];
}

void fleet_pool(const struct fleet_evidence *ev, int n, __u64 fingerprint, __u32 epoch,
		struct canary_metrics out[CANARY_V_COUNT])
{
	int i, v;

	memset(out, 0, sizeof(*out) * CANARY_V_COUNT);
	for (i = 0; i < n; i++) {
		if (ev[i].fingerprint != fingerprint || ev[i].epoch != epoch)
			continue; /* another canary, or counts of another weight */
		for (v = 0; v < CANARY_V_COUNT; v++)
			add_metrics(&out[v], &ev[i].delta[v]);
	}
}

bool fleet_may_lead(__s64 my_leader_rev, __s64 seen_leader_rev, __u64 now_ms,
		    __u64 session_valid_until_ms)
{
	return my_leader_rev > 0 && seen_leader_rev == my_leader_rev &&
	       now_ms < session_valid_until_ms;
}

/* Do two states differ in what a node must follow? */
static bool differs(const struct rollout_state *a, const struct rollout_state *b)
{
	return a->phase != b->phase || a->step != b->step || a->weight_bp != b->weight_bp ||
	       a->step_started != b->step_started || a->pause_until_ms != b->pause_until_ms ||
	       a->pause_left_ms != b->pause_left_ms || a->user_paused != b->user_paused ||
	       a->aborts != b->aborts || a->rejudge != b->rejudge ||
	       strcmp(a->message, b->message) != 0;
}

void fleet_adopt_effects(const struct rollout_state *local, __u32 local_epoch,
			 const struct fleet_shared *shared, const struct rollout_cfg *cfg,
			 struct rollout_effects *fx)
{
	const struct rollout_state *s = &shared->st;

	memset(fx, 0, sizeof(*fx));
	if (s->canary_fingerprint != local->canary_fingerprint)
		return; /* about another canary: not ours to follow */
	fx->changed = differs(local, s) || local_epoch != shared->epoch;
	if (!fx->changed)
		return;
	fx->apply_weight = rollout_effective_weight(local) != rollout_effective_weight(s);
	fx->restart_analysis = local_epoch != shared->epoch;
	if (s->phase == PHASE_DEGRADED && local->phase != PHASE_DEGRADED) {
		fx->apply_weight = true;
		fx->reset_canary_flows = cfg->abort_connections == ABORT_CONNECTIONS_RESET;
		fx->event = "aborted by the fleet";
	} else if (s->phase == PHASE_HEALTHY && local->phase != PHASE_HEALTHY) {
		fx->promoted = true;
		fx->event = "promoted by the fleet";
	} else if (fx->apply_weight || s->step != local->step || s->phase != local->phase) {
		fx->event = "step from the fleet";
	}
}

int fleet_verb_next(const struct fleet_shared *cur, const struct rollout_cfg *cfg,
		    enum rollout_verb verb, __u16 weight_bp, const char *writer, __s64 now_ms,
		    struct fleet_shared *next, char *err, size_t errlen)
{
	struct rollout_effects fx;
	int rc;

	*next = *cur;
	rc = rollout_verb(&next->st, cfg, verb, weight_bp, now_ms, &fx, err, errlen);
	if (rc)
		return rc;
	/* A retried rollout is judged afresh on every node, as a new weight is. */
	if (fx.apply_weight || fx.restart_analysis || verb == VERB_RETRY) {
		next->epoch++;
		next->epoch_wall_ms = now_ms;
	}
	snprintf(next->writer, sizeof(next->writer), "%s", writer);
	next->written_ms = now_ms;
	return 0;
}

/* ---- records ---- */

static int set_int(json_t *o, const char *k, long long v)
{
	return json_object_set_new(o, k, json_integer(v));
}

static long long get_int(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

json_t *fleet_shared_to_json(const struct fleet_shared *s)
{
	const struct rollout_state *st = &s->st;
	json_t *o = json_object();
	char fp[24];
	int err;

	if (!o)
		return NULL;
	snprintf(fp, sizeof(fp), "%llx", (unsigned long long)st->canary_fingerprint);
	err = json_object_set_new(o, "fingerprint", json_string(fp));
	err |= json_object_set_new(o, "canaryRevision", json_string(st->canary_revision));
	err |= json_object_set_new(o, "phase", json_string(rollout_phase_name(st->phase)));
	err |= set_int(o, "step", st->step);
	err |= set_int(o, "weightBp", st->weight_bp);
	err |= json_object_set_new(o, "stepStarted", json_boolean(st->step_started));
	err |= set_int(o, "pauseUntilMs", st->pause_until_ms);
	err |= set_int(o, "pauseLeftMs", st->pause_left_ms);
	err |= json_object_set_new(o, "userPaused", json_boolean(st->user_paused));
	err |= set_int(o, "aborts", st->aborts);
	err |= json_object_set_new(o, "rejudge", json_boolean(st->rejudge));
	err |= json_object_set_new(o, "message", json_string(st->message));
	err |= set_int(o, "epoch", s->epoch);
	err |= set_int(o, "epochWallMs", s->epoch_wall_ms);
	err |= json_object_set_new(o, "writer", json_string(s->writer));
	err |= set_int(o, "writtenMs", s->written_ms);
	if (st->phase == PHASE_HEALTHY)
		err |= json_object_set_new(o, "promotedRevision", json_string(st->canary_revision));
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void copy_str(char *dst, size_t len, const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	snprintf(dst, len, "%s", s ? s : "");
}

int fleet_shared_from_json(const char *text, struct fleet_shared *s)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *fp = json_string_value(json_object_get(o, "fingerprint"));
	const char *phase = json_string_value(json_object_get(o, "phase"));
	struct rollout_state *st = &s->st;
	int err = -EINVAL;
	char *end = NULL;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(o) || !fp || !phase || rollout_phase_parse(phase, &st->phase))
		goto out;
	st->canary_fingerprint = strtoull(fp, &end, 16);
	if (*end || get_int(o, "step") < 0 || get_int(o, "weightBp") > 10000 ||
	    get_int(o, "weightBp") < 0)
		goto out;
	copy_str(st->canary_revision, sizeof(st->canary_revision), o, "canaryRevision");
	copy_str(st->message, sizeof(st->message), o, "message");
	copy_str(s->writer, sizeof(s->writer), o, "writer");
	st->step = (int)get_int(o, "step");
	st->weight_bp = (__u16)get_int(o, "weightBp");
	st->step_started = json_is_true(json_object_get(o, "stepStarted"));
	st->pause_until_ms = get_int(o, "pauseUntilMs");
	st->pause_left_ms = get_int(o, "pauseLeftMs");
	st->user_paused = json_is_true(json_object_get(o, "userPaused"));
	st->aborts = (__u32)get_int(o, "aborts");
	st->rejudge = json_is_true(json_object_get(o, "rejudge"));
	s->epoch = (__u32)get_int(o, "epoch");
	s->epoch_wall_ms = get_int(o, "epochWallMs");
	s->written_ms = get_int(o, "writtenMs");
	err = 0;
out:
	json_decref(o);
	return err;
}

/* Counters of one version: the histogram sparse, as {"bucket": count}. */
static json_t *metrics_to_json(const struct canary_metrics *m)
{
	json_t *o = json_object(), *resp = json_array(), *hist = json_object();
	int i, err = !o || !resp || !hist;

	for (i = 0; !err && i < CANARY_STATUS_CLASSES; i++)
		err |= json_array_append_new(resp, json_integer((long long)m->responses[i]));
	for (i = 0; !err && i < (int)CANARY_HIST_BUCKETS; i++) {
		char idx[8];

		if (!m->latency_hist[i])
			continue;
		snprintf(idx, sizeof(idx), "%d", i);
		err |= set_int(hist, idx, (long long)m->latency_hist[i]);
	}
	if (err) {
		json_decref(o);
		json_decref(resp);
		json_decref(hist);
		return NULL;
	}
	err |= set_int(o, "opened", (long long)m->conns_opened);
	err |= set_int(o, "refused", (long long)m->conns_refused);
	err |= set_int(o, "reset", (long long)m->conns_reset);
	err |= set_int(o, "requests", (long long)m->requests);
	err |= json_object_set_new(o, "responses", resp);
	err |= set_int(o, "latencyCount", (long long)m->latency_count);
	err |= set_int(o, "latencySumUs", (long long)m->latency_sum_us);
	err |= json_object_set_new(o, "latencyHist", hist);
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int metrics_from_json(const json_t *o, struct canary_metrics *m)
{
	const json_t *hist = json_object_get(o, "latencyHist"), *v;
	const char *idx;
	int i;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(o))
		return -EINVAL;
	m->conns_opened = (__u64)get_int(o, "opened");
	m->conns_refused = (__u64)get_int(o, "refused");
	m->conns_reset = (__u64)get_int(o, "reset");
	m->requests = (__u64)get_int(o, "requests");
	for (i = 0; i < CANARY_STATUS_CLASSES; i++)
		m->responses[i] = (__u64)json_integer_value(
			json_array_get(json_object_get(o, "responses"), (size_t)i));
	m->latency_count = (__u64)get_int(o, "latencyCount");
	m->latency_sum_us = (__u64)get_int(o, "latencySumUs");
	json_object_foreach((json_t *)hist, idx, v)
	{
		long b = strtol(idx, NULL, 10);

		if (b < 0 || b >= (long)CANARY_HIST_BUCKETS)
			return -EINVAL;
		m->latency_hist[b] = (__u64)json_integer_value(v);
	}
	return 0;
}

json_t *fleet_evidence_to_json(const struct fleet_evidence *e)
{
	json_t *o = json_object();
	char fp[24];
	int err;

	if (!o)
		return NULL;
	snprintf(fp, sizeof(fp), "%llx", (unsigned long long)e->fingerprint);
	err = json_object_set_new(o, "fingerprint", json_string(fp));
	err |= set_int(o, "epoch", e->epoch);
	err |= set_int(o, "weightBp", e->weight_bp);
	err |= json_object_set_new(o, "decision", json_string(analysis_decision_name(e->decision)));
	err |= set_int(o, "wallMs", e->wall_ms);
	err |= json_object_set_new(o, "stable", metrics_to_json(&e->delta[CANARY_V_STABLE]));
	err |= json_object_set_new(o, "canary", metrics_to_json(&e->delta[CANARY_V_CANARY]));
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static enum analysis_decision decision_parse(const char *s)
{
	int d;

	for (d = ANALYSIS_HOLD; d <= ANALYSIS_INCONCLUSIVE; d++)
		if (s && !strcmp(s, analysis_decision_name((enum analysis_decision)d)))
			return (enum analysis_decision)d;
	return ANALYSIS_HOLD;
}

int fleet_evidence_from_json(const char *text, struct fleet_evidence *e)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *fp = json_string_value(json_object_get(o, "fingerprint"));
	char *end = NULL;
	int err = -EINVAL;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(o) || !fp)
		goto out;
	e->fingerprint = strtoull(fp, &end, 16);
	if (*end)
		goto out;
	e->epoch = (__u32)get_int(o, "epoch");
	e->weight_bp = (__u16)get_int(o, "weightBp");
	e->decision = decision_parse(json_string_value(json_object_get(o, "decision")));
	e->wall_ms = get_int(o, "wallMs");
	err = metrics_from_json(json_object_get(o, "stable"), &e->delta[CANARY_V_STABLE]);
	if (!err)
		err = metrics_from_json(json_object_get(o, "canary"), &e->delta[CANARY_V_CANARY]);
out:
	json_decref(o);
	return err;
}

__u64 fleet_errors(const struct canary_metrics *m)
{
	return m->responses[5] + m->conns_reset + m->conns_refused;
}

/* RFC 3339 in UTC with milliseconds, as Kubernetes' date-time format reads it. */
static void time_text(__s64 ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char sec[24];

	gmtime_r(&t, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", sec, (int)(ms % 1000));
}

/* Values as text: a rate 0..1 or a latency in us, as GET /v1/rollouts/NAME gives them. */
static json_t *verdict_view(const struct verdict *v, const char *when)
{
	char value[32], limit[32];

	snprintf(value, sizeof(value), "%.6g", v->canary_value);
	snprintf(limit, sizeof(limit), "%.6g", v->limit);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "metric", verdict_metric_name(v),
			 "result", verdict_result_name(v->result), "value", value, "limit", limit,
			 "detail", v->detail, "time", when);
}

static json_t *node_view(const struct fleet_evidence *e)
{
	const struct canary_metrics *c = &e->delta[CANARY_V_CANARY],
				    *s = &e->delta[CANARY_V_STABLE];
	char when[40];

	time_text(e->wall_ms, when, sizeof(when));
	return json_pack("{s:s, s:b, s:I, s:f, s:s, s:I, s:I, s:I, s:I, s:s}", "node", e->node,
			 "live", e->live, "epoch", (json_int_t)e->epoch, "weight",
			 e->weight_bp / 100.0, "decision", analysis_decision_name(e->decision),
			 "requests", (json_int_t)c->requests, "errors", (json_int_t)fleet_errors(c),
			 "stableRequests", (json_int_t)s->requests, "stableErrors",
			 (json_int_t)fleet_errors(s), "lastUpdate", when);
}

json_t *fleet_view_json(const struct verdict *v, int n_verdicts, const struct fleet_evidence *nodes,
			int n_nodes, __s64 generation, __s64 now_ms)
{
	json_t *verdicts = json_array(), *ns = json_array(), *view;
	char when[40];
	int i, err = !verdicts || !ns;

	time_text(now_ms, when, sizeof(when));
	for (i = 0; !err && i < n_verdicts; i++)
		err = json_array_append_new(verdicts, verdict_view(&v[i], when));
	for (i = 0; !err && i < n_nodes; i++)
		err = json_array_append_new(ns, node_view(&nodes[i]));
	if (err) {
		json_decref(verdicts);
		json_decref(ns);
		return NULL;
	}
	view = json_pack("{s:o, s:o}", "verdicts", verdicts, "nodes", ns);
	if (view && generation > 0 &&
	    json_object_set_new(view, "observedGeneration", json_integer(generation))) {
		json_decref(view);
		return NULL;
	}
	return view;
}
