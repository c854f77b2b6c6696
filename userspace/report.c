// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netparse.h"
#include "report.h"
#include "stats.h"

static json_t *json_u64(__u64 v)
{
	/* Counters stay far below 2^63. */
	return json_integer((json_int_t)v);
}

json_t *report_verdict(const struct verdict *v)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:f, s:f, s:f, s:f, s:f, s:s, s:i, s:b}", "metric",
			 verdict_metric_name(v), "result", verdict_result_name(v->result),
			 "canary_samples", json_u64(v->canary_samples), "stable_samples",
			 json_u64(v->stable_samples), "canary_value", v->canary_value,
			 "stable_value", v->stable_value, "limit", v->limit, "statistic",
			 v->statistic, "threshold", v->threshold, "detail", v->detail, "failures",
			 (int)v->failures, "dry_run", v->dry_run);
}

static json_t *verdicts_json(const struct verdict *vs, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < n; i++)
		json_array_append_new(arr, report_verdict(&vs[i]));
	return arr;
}

/* The analysis settings, for `canaryctl plan` to simulate the same analysis. */
static json_t *analysis_config_json(const struct analysis_cfg *a)
{
	json_t *metrics = json_array();
	int i;

	for (i = 0; metrics && i < a->n_metrics && i < CONFIG_MAX_METRICS; i++) {
		const struct metric_cfg *m = &a->metrics[i];

		json_array_append_new(
			metrics,
			json_pack("{s:s, s:s, s:f, s:f, s:f, s:I, s:b}", "name", m->name, "kind",
				  metric_kind_name(m->kind), "max", m->max, "max_increase",
				  m->max_increase, "quantile", m->quantile, "failure_limit",
				  (json_int_t)m->failure_limit, "dry_run", m->dry_run));
	}
	return json_pack("{s:I, s:I, s:i, s:f, s:I, s:o}", "interval_ms",
			 (json_int_t)a->interval_ms, "min_requests", (json_int_t)a->min_requests,
			 "failure_limit", (int)a->failure_limit, "confidence", a->confidence,
			 "inconclusive_limit", (json_int_t)a->inconclusive_limit, "metrics",
			 metrics);
}

json_t *report_steps(const struct rollout_cfg *cfg)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < cfg->n_steps; i++) {
		const struct step_cfg *s = &cfg->steps[i];

		if (s->kind == STEP_SET_WEIGHT)
			json_array_append_new(
				arr, json_pack("{s:f}", "setWeight", s->weight_bp / 100.0));
		else if (s->pause_ms == CONFIG_PAUSE_INDEFINITE)
			json_array_append_new(arr, json_pack("{s:{}}", "pause"));
		else
			json_array_append_new(arr, json_pack("{s:{s:f}}", "pause", "duration_s",
							     (double)s->pause_ms / 1000.0));
	}
	return arr;
}

static json_t *endpoints_json(const struct version_cfg *v)
{
	json_t *arr = json_array();
	char ep[32];
	int i;

	for (i = 0; i < v->n_endpoints; i++)
		json_array_append_new(
			arr, json_string(format_endpoint(v->endpoints[i].addr, v->endpoints[i].port,
							 ep, sizeof(ep))));
	return arr;
}

/* Errors as the analysis counts them: 5xx, resets and refusals. */
static __u64 errors_of(const struct canary_metrics *m)
{
	return m->responses[5] + m->conns_reset + m->conns_refused;
}

/* A latency quantile in ms, or null when there is no sample. */
static json_t *latency_ms(const struct canary_metrics *m, double q)
{
	double us = stats_latency_quantile_us(m, q);

	return us < 0 ? json_null() : json_real(us / 1000.0);
}

/* Recent traffic of one version: rates over the last 5..10 s, totals. */
static json_t *version_json(const struct version_cfg *v, const struct canary_metrics *now,
			    const struct canary_metrics *prev, double window_s)
{
	struct canary_metrics *d = calloc(1, sizeof(*d));
	__u64 answered, errors;
	json_t *obj;

	if (!d)
		return json_null();
	stats_delta(now, prev, d);
	answered = stats_responses(d) + d->conns_reset + d->conns_refused;
	errors = errors_of(d);
	obj = json_pack("{s:s, s:o, s:f, s:f, s:o, s:o, s:o, s:o, s:o, s:o}", "revision",
			v->revision, "endpoints", endpoints_json(v), "rps",
			window_s > 0 ? (double)d->requests / window_s : 0.0, "error_ratio",
			answered ? (double)errors / (double)answered : 0.0, "latency_p50_ms",
			latency_ms(d, 0.50), "latency_p99_ms", latency_ms(d, 0.99),
			"requests_total", json_u64(now->requests), "errors_total",
			json_u64(errors_of(now)), "connections_total", json_u64(now->conns_opened),
			"responses_5xx_total", json_u64(now->responses[5]));
	free(d);
	return obj;
}

json_t *report_rollout(const struct rollout_view *r,
		       const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms, __s64 wall_ms)
{
	const struct rollout_state *st = r->st;
	const struct rate_window *w = r->rates;
	double window_s = w->prev_ms ? (double)(now_ms - w->prev_ms) / 1000.0 : 0;
	json_t *pause_left = json_null();
	char vip[32];

	/* Time left of a timed pause; null when there is none. */
	if (st->user_paused && st->pause_left_ms > 0)
		pause_left = json_real((double)st->pause_left_ms / 1000.0);
	else if (st->phase == PHASE_PAUSED && st->pause_until_ms > 0)
		pause_left = json_real(st->pause_until_ms > wall_ms ?
					       (double)(st->pause_until_ms - wall_ms) / 1000.0 :
					       0.0);
	format_ipv4(r->cfg->service.key.vip, vip, sizeof(vip));
	return json_pack(
		"{s:s, s:s, s:s, s:i, s:i, s:o, s:f, s:b, s:o, s:i, s:{s:s, s:i, s:s}, s:o, s:o, "
		"s:{s:s, s:s, s:o, s:o}, s:o, s:{s:f, s:b}}",
		"name", r->cfg->name, "phase", rollout_phase_name(st->phase), "message",
		st->message, "step", st->step, "step_count", r->cfg->n_steps, "steps",
		report_steps(r->cfg), "weight", rollout_effective_weight(st) / 100.0,
		"paused_by_operator", st->user_paused, "pause_remaining_s", pause_left, "aborts",
		(int)st->aborts, "service", "vip", vip, "port", ntohs(r->cfg->service.key.port),
		"protocol", service_protocol_name(&r->cfg->service.key, r->cfg->service.svc_flags),
		"stable",
		version_json(st->phase == PHASE_HEALTHY ? &r->cfg->canary : &r->cfg->stable,
			     &now[CANARY_V_STABLE], &w->prev[CANARY_V_STABLE], window_s),
		"canary",
		version_json(&r->cfg->canary, &now[CANARY_V_CANARY], &w->prev[CANARY_V_CANARY],
			     window_s),
		"analysis", "decision", analysis_decision_name(r->decision), "reason",
		r->an->reason, "config", analysis_config_json(&r->cfg->analysis), "verdicts",
		verdicts_json(r->an->last, r->an->n_last), "abort_verdicts",
		verdicts_json(r->abort_verdicts, r->n_abort_verdicts), "traffic", "rps",
		r->service_rps, "peak", r->at_peak);
}

void rate_window_roll(struct rate_window *w, const struct canary_metrics now[CANARY_V_COUNT],
		      __u64 now_ms)
{
	if (w->base_ms && now_ms - w->base_ms < 5000)
		return;
	memcpy(w->prev, w->base, sizeof(w->prev));
	w->prev_ms = w->base_ms ? w->base_ms : now_ms;
	memcpy(w->base, now, sizeof(w->base));
	w->base_ms = now_ms;
}

double rate_window_rps(const struct rate_window *w, const struct canary_metrics now[CANARY_V_COUNT],
		       __u64 now_ms)
{
	__u64 requests = 0, conns = 0;
	int v;

	if (!w->prev_ms || now_ms <= w->prev_ms)
		return 0;
	for (v = 0; v < CANARY_V_COUNT; v++) {
		struct canary_metrics d;

		stats_delta(&now[v], &w->prev[v], &d);
		requests += d.requests;
		conns += d.conns_opened;
	}
	return (double)(requests ? requests : conns) * 1000 / (double)(now_ms - w->prev_ms);
}
