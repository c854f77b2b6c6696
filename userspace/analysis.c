// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Canary analysis: absolute gates measured once per interval window, and
 * canary-vs-stable comparisons evaluated every tick with tests whose error
 * guarantee holds however often they are looked at. docs/analysis.md has
 * the formulas and the simulation results that back the constants below.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis.h"
#include "canary_hist.h"
#include "stats.h"
#include "utf8text.h"

/*
 * compareErrorRate mixes the likelihood ratios of these canary/stable
 * error-rate ratios with equal weights. Small ratios keep a late or mild
 * regression detectable, large ones make a gross one fail within a second.
 */
static const double err_ratio[ANALYSIS_ERR_GRID] = { 1.25, 1.5, 2, 3, 5, 8, 13, 20 };

/*
 * compareLatency: standard deviation of the normal mixing distribution over
 * theta = P(canary > (1+f) stable) - 1/2. 0.15 puts the weight on shifts a
 * person would call a regression (theta 0.1..0.3) without losing big ones.
 */
#define LAT_TAU		    0.15

#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_CONFIDENCE  0.99

const char *verdict_result_name(enum verdict_result r)
{
	switch (r) {
	case VERDICT_PASS:
		return "pass";
	case VERDICT_FAIL:
		return "fail";
	case VERDICT_INCONCLUSIVE:
		return "inconclusive";
	}
	return "unknown";
}

const char *analysis_decision_name(enum analysis_decision d)
{
	switch (d) {
	case ANALYSIS_HOLD:
		return "hold";
	case ANALYSIS_PASS:
		return "pass";
	case ANALYSIS_FAIL:
		return "fail";
	}
	return "unknown";
}

/* config.c owns metric_kind_name(); these are for our own sentences. */
static const char *gate_label(enum metric_kind kind)
{
	switch (kind) {
	case METRIC_ERROR_RATE:
		return "error rate";
	case METRIC_RESET_RATE:
		return "reset rate";
	case METRIC_LATENCY_P50:
		return "p50";
	case METRIC_LATENCY_P95:
		return "p95";
	case METRIC_LATENCY_P99:
		return "p99";
	default:
		return "value";
	}
}

static bool is_comparison(enum metric_kind kind)
{
	return kind == METRIC_COMPARE_ERROR_RATE || kind == METRIC_COMPARE_LATENCY;
}

/* Absolute gates: limits on the canary's own numbers, judged per window. */
static bool is_gate(enum metric_kind kind)
{
	return !is_comparison(kind) && kind != METRIC_PROMETHEUS;
}

/*
 * HTTP services count requests and responses; plain TCP ones only
 * connections. Decided from both versions together so that a canary which
 * refuses every connection (and so answers nothing) is still judged on the
 * same footing as a stable that does answer.
 */
static bool http_mode(const struct canary_metrics d[CANARY_V_COUNT])
{
	int v;

	for (v = 0; v < CANARY_V_COUNT; v++)
		if (d[v].requests || stats_responses(&d[v]))
			return true;
	return false;
}

/* Exposures (things that could fail) and failures of one version. */
static void error_counts(const struct canary_metrics *d, bool http, __u64 *n, __u64 *err)
{
	*err = d->conns_reset + d->conns_refused;
	if (http) {
		*err += d->responses[5];
		*n = stats_responses(d) + d->conns_reset + d->conns_refused;
	} else {
		*n = d->conns_opened;
	}
}

static double ratio(__u64 num, __u64 den)
{
	return den ? (double)num / (double)den : 0;
}

/* Canary samples that count towards minRequests since the restart. */
static __u64 canary_samples(const struct canary_metrics since[CANARY_V_COUNT], bool http)
{
	__u64 n, err;

	error_counts(&since[CANARY_V_CANARY], http, &n, &err);
	return n;
}

static void deltas(const struct canary_metrics now[CANARY_V_COUNT],
		   const struct canary_metrics from[CANARY_V_COUNT],
		   struct canary_metrics out[CANARY_V_COUNT])
{
	int v;

	for (v = 0; v < CANARY_V_COUNT; v++)
		stats_delta(&now[v], &from[v], &out[v]);
}

void analysis_restart(struct analysis_state *st, const struct canary_metrics now[CANARY_V_COUNT],
		      __u64 now_ms)
{
	memset(st, 0, sizeof(*st));
	memcpy(st->base, now, sizeof(st->base));
	memcpy(st->window_base, now, sizeof(st->window_base));
	memcpy(st->prev, now, sizeof(st->prev));
	st->window_start_ms = now_ms;
	st->started_ms = now_ms;
}

/*
 * Pooled two-proportion z (canary minus stable). Shown to people; the
 * decision uses the likelihood-ratio mixture, which stays exact with the
 * handful of errors a young canary has.
 */
static double two_prop_z(__u64 n_c, __u64 e_c, __u64 n_s, __u64 e_s)
{
	double p, se;

	if (!n_c || !n_s)
		return 0;
	p = (double)(e_c + e_s) / (double)(n_c + n_s);
	se = sqrt(p * (1 - p) * (1 / (double)n_c + 1 / (double)n_s));
	return se > 0 ? (ratio(e_c, n_c) - ratio(e_s, n_s)) / se : 0;
}

/*
 * One tick of the compareErrorRate evidence. Given the exposures of this
 * tick and its total errors T, under "same error probability" the canary's
 * share of T is hypergeometric, close to Binomial(T, n_c / (n_c + n_s)); if
 * the canary's rate is r times stable's, each error is the canary's with
 * probability r n_c / (r n_c + n_s). The product of these ratios over ticks
 * is a (super)martingale under the null, for any r >= 1.
 */
static void err_update(struct analysis_state *st, const struct canary_metrics tick[CANARY_V_COUNT],
		       bool http)
{
	__u64 n_c, e_c, n_s, e_s;
	double t, n;
	int k;

	error_counts(&tick[CANARY_V_CANARY], http, &n_c, &e_c);
	error_counts(&tick[CANARY_V_STABLE], http, &n_s, &e_s);
	if (!n_c || !n_s || !(e_c + e_s))
		return; /* one version idle: who erred tells nothing */
	t = (double)(e_c + e_s);
	n = (double)(n_c + n_s);
	for (k = 0; k < ANALYSIS_ERR_GRID; k++) {
		double r = err_ratio[k];

		st->err_llr[k] +=
			(double)e_c * log(r) - t * log((r * (double)n_c + (double)n_s) / n);
	}
}

/* log of the equally weighted mean of exp(llr[k]), without overflow. */
static double log_mean_exp(const double *llr, int n)
{
	double m = llr[0], s = 0;
	int k;

	for (k = 1; k < n; k++)
		m = fmax(m, llr[k]);
	for (k = 0; k < n; k++)
		s += exp(llr[k] - m);
	return m + log(s / n);
}

/* log of the standard normal CDF, also far in the lower tail. */
static double log_ndtr(double x)
{
	if (x > -30)
		return log(0.5 * erfc(-x / M_SQRT2));
	return -0.5 * x * x - log(-x) - 0.5 * log(2 * M_PI);
}

/*
 * Always-valid one-sided test of a roughly normal estimate theta (variance
 * var) against theta = 0: the likelihood ratio mixed over a half-normal
 * N(0, tau^2) on theta > 0 (Johari et al., "Always valid inference", with
 * the mixture folded onto the alternative). Ville's inequality bounds the
 * chance it ever reaches 1/alpha under the null by alpha.
 */
static double half_normal_mixture_llr(double theta, double var, double tau)
{
	double t2 = tau * tau;

	return log(2) + 0.5 * log(var / (var + t2)) + theta * theta * t2 / (2 * var * (var + t2)) +
	       log_ndtr(theta * tau / sqrt(var * (var + t2)));
}

/* Where a bucket's samples sit for ranking: its midpoint. */
static double bucket_mid(__u32 i)
{
	if (i == CANARY_HIST_BUCKETS - 1)
		return (double)canary_hist_lower(i); /* open-ended */
	return (double)canary_hist_lower(i) + (double)canary_hist_width(i) / 2;
}

static __u32 next_bucket(const __u64 *h, __u32 i)
{
	while (i < CANARY_HIST_BUCKETS && !h[i])
		i++;
	return i;
}

struct rank_sum {
	double n_c, n_s;
	double u;   /* pairs with canary > scaled stable, ties count 1/2 */
	double var; /* variance of u under the null, tie-corrected */
};

/*
 * Mann-Whitney U of canary over stable with stable's positions scaled by
 * `scale`, straight from the bucket counts: one merge of the two sorted
 * bucket lists. A bucket is a group of tied values.
 */
static void rank_sum_hist(const __u64 *c, const __u64 *s, double scale, struct rank_sum *out)
{
	__u32 i = next_bucket(c, 0), j = next_bucket(s, 0);
	double below = 0, ties = 0, n;

	memset(out, 0, sizeof(*out));
	while (i < CANARY_HIST_BUCKETS || j < CANARY_HIST_BUCKETS) {
		double pc = i < CANARY_HIST_BUCKETS ? bucket_mid(i) : INFINITY;
		double ps = j < CANARY_HIST_BUCKETS ? scale * bucket_mid(j) : INFINITY;
		double t;

		if (pc < ps) {
			t = (double)c[i];
			out->u += t * below;
			out->n_c += t;
			i = next_bucket(c, i + 1);
		} else if (ps < pc) {
			t = (double)s[j];
			below += t;
			out->n_s += t;
			j = next_bucket(s, j + 1);
		} else {
			out->u += (double)c[i] * (below + (double)s[j] / 2);
			below += (double)s[j];
			out->n_c += (double)c[i];
			out->n_s += (double)s[j];
			t = (double)(c[i] + s[j]);
			i = next_bucket(c, i + 1);
			j = next_bucket(s, j + 1);
		}
		ties += t * t * t - t;
	}
	n = out->n_c + out->n_s;
	if (n >= 2)
		out->var = out->n_c * out->n_s / 12 * ((n + 1) - ties / (n * (n - 1)));
}

/* Everything one tick's judgement needs. */
struct tick_ctx {
	const struct analysis_cfg *cfg;
	struct canary_metrics since[CANARY_V_COUNT]; /* since the restart */
	struct canary_metrics win[CANARY_V_COUNT];   /* this gate window */
	bool http;
	bool window_closed;
	__u64 window_ms;
	double log_inv_alpha; /* boundary of each comparison */
};

static double gate_quantile(enum metric_kind kind)
{
	if (kind == METRIC_LATENCY_P50)
		return 0.50;
	return kind == METRIC_LATENCY_P95 ? 0.95 : 0.99;
}

static void gate_value(const struct metric_cfg *m, const struct tick_ctx *cx, __u64 *n,
		       double *value)
{
	const struct canary_metrics *w = &cx->win[CANARY_V_CANARY];
	__u64 err;

	switch (m->kind) {
	case METRIC_ERROR_RATE:
		error_counts(w, cx->http, n, &err);
		*value = ratio(err, *n);
		return;
	case METRIC_RESET_RATE:
		/* Per connection: a reset ends a connection, not a request. */
		*n = w->conns_opened;
		*value = ratio(w->conns_reset, *n);
		return;
	default:
		*n = w->latency_count;
		*value = stats_latency_quantile_us(w, gate_quantile(m->kind));
		return;
	}
}

/* "1.25%" or "182.3 ms", for sentences. */
static void fmt_value(char *buf, size_t len, enum metric_kind kind, double v)
{
	if (kind == METRIC_ERROR_RATE || kind == METRIC_RESET_RATE)
		snprintf(buf, len, "%.2f%%", 100 * v);
	else
		snprintf(buf, len, "%.1f ms", v / 1000);
}

/* An absolute gate over the window that just closed. */
static void judge_gate(struct verdict *v, const struct metric_cfg *m, const struct tick_ctx *cx)
{
	const char *what = m->kind == METRIC_ERROR_RATE || m->kind == METRIC_RESET_RATE ?
				   "samples" :
				   "responses";
	char val[32], lim[32];
	__u64 n;
	double value;

	gate_value(m, cx, &n, &value);
	v->canary_samples = n;
	v->canary_value = n ? value : 0;
	v->statistic = v->canary_value;
	v->threshold = m->max;
	fmt_value(val, sizeof(val), m->kind, v->canary_value);
	fmt_value(lim, sizeof(lim), m->kind, m->max);
	if (n < cx->cfg->min_requests) {
		v->result = VERDICT_INCONCLUSIVE;
		snprintf(v->detail, sizeof(v->detail),
			 "only %llu canary %s in the last %llu ms (%llu needed): not judged",
			 (unsigned long long)n, what, (unsigned long long)cx->window_ms,
			 (unsigned long long)cx->cfg->min_requests);
		return;
	}
	v->result = value > m->max ? VERDICT_FAIL : VERDICT_PASS;
	snprintf(v->detail, sizeof(v->detail),
		 "canary %s %s over %llu %s in the last %llu ms %s %s", gate_label(m->kind), val,
		 (unsigned long long)n, what, (unsigned long long)cx->window_ms,
		 v->result == VERDICT_FAIL ? "exceeds the limit" : "is within the limit", lim);
}

static void gate_pending(struct verdict *v, const struct metric_cfg *m, const struct tick_ctx *cx)
{
	v->result = VERDICT_INCONCLUSIVE;
	v->limit = m->max;
	v->threshold = m->max;
	snprintf(
		v->detail, sizeof(v->detail), "first %lld ms window still open: not judged yet",
		(long long)(cx->cfg->interval_ms > 0 ? cx->cfg->interval_ms : DEFAULT_INTERVAL_MS));
}

/*
 * A comparison has failed once its statistic crossed the boundary with
 * enough samples on both sides; it stays failed (the always-valid p-value is
 * a running minimum), which also makes the failureLimit count consecutive.
 */
static void settle_comparison(struct analysis_state *st, int idx, struct verdict *v,
			      const struct tick_ctx *cx, bool worse)
{
	bool enough = v->canary_samples >= cx->cfg->min_requests &&
		      v->stable_samples >= cx->cfg->min_requests;

	if (enough && worse && v->statistic >= v->threshold && !st->crossed[idx]) {
		st->crossed[idx] = true;
		st->crossed_at[idx] = v->statistic;
	}
	if (st->crossed[idx])
		v->result = VERDICT_FAIL;
	else
		v->result = enough ? VERDICT_PASS : VERDICT_INCONCLUSIVE;
}

/*
 * "log LR S >= T" for the detail line. A comparison that crossed on an
 * earlier tick and has since fallen back under the boundary is still failed:
 * say so with the value it crossed with, not "S < T: canary is worse".
 */
static void format_llr(char *buf, size_t len, const struct analysis_state *st, int idx,
		       const struct verdict *v)
{
	if (st->crossed[idx] && v->statistic < v->threshold)
		snprintf(buf, len, "log LR crossed %.2f >= %.2f (now %.2f)", st->crossed_at[idx],
			 v->threshold, v->statistic);
	else
		snprintf(buf, len, "log LR %.2f %s %.2f", v->statistic,
			 v->statistic >= v->threshold ? ">=" : "<", v->threshold);
}

static void judge_cmp_error(struct analysis_state *st, int idx, struct verdict *v,
			    const struct tick_ctx *cx)
{
	char llr[64];

	__u64 n_c, e_c, n_s, e_s;

	error_counts(&cx->since[CANARY_V_CANARY], cx->http, &n_c, &e_c);
	error_counts(&cx->since[CANARY_V_STABLE], cx->http, &n_s, &e_s);
	v->canary_samples = n_c;
	v->stable_samples = n_s;
	v->canary_value = ratio(e_c, n_c);
	v->stable_value = ratio(e_s, n_s);
	v->z = two_prop_z(n_c, e_c, n_s, e_s);
	v->statistic = log_mean_exp(st->err_llr, ANALYSIS_ERR_GRID);
	v->threshold = cx->log_inv_alpha;
	settle_comparison(st, idx, v, cx, true);
	if (v->result == VERDICT_INCONCLUSIVE)
		snprintf(v->detail, sizeof(v->detail),
			 "%llu canary and %llu stable samples, %llu each needed before judging",
			 (unsigned long long)n_c, (unsigned long long)n_s,
			 (unsigned long long)cx->cfg->min_requests);
	else {
		format_llr(llr, sizeof(llr), st, idx, v);
		snprintf(v->detail, sizeof(v->detail),
			 "canary %.2f%% vs stable %.2f%% errors (z %.2f); %s: %s",
			 100 * v->canary_value, 100 * v->stable_value, v->z, llr,
			 v->result == VERDICT_FAIL ? "canary errs more" :
						     "no evidence canary errs more");
	}
}

static void judge_cmp_latency(struct analysis_state *st, int idx, struct verdict *v,
			      const struct metric_cfg *m, const struct tick_ctx *cx)
{
	const struct canary_metrics *c = &cx->since[CANARY_V_CANARY],
				    *s = &cx->since[CANARY_V_STABLE];
	double scale = 1 + fmax(m->max_increase, 0), theta = 0, pairs;
	struct rank_sum rs;
	char llr[64];

	rank_sum_hist(c->latency_hist, s->latency_hist, scale, &rs);
	pairs = rs.n_c * rs.n_s;
	v->canary_samples = (__u64)rs.n_c;
	v->stable_samples = (__u64)rs.n_s;
	v->canary_value = rs.n_c > 0 ? stats_latency_quantile_us(c, 0.5) : 0;
	v->stable_value = rs.n_s > 0 ? stats_latency_quantile_us(s, 0.5) : 0;
	v->limit = m->max_increase;
	v->rank_u = rs.u;
	v->threshold = cx->log_inv_alpha;
	if (rs.var > 0) { /* else every sample is tied: no evidence, log LR 0 */
		theta = rs.u / pairs - 0.5;
		v->z = (rs.u - pairs / 2) / sqrt(rs.var);
		v->statistic = half_normal_mixture_llr(theta, rs.var / (pairs * pairs), LAT_TAU);
	}
	settle_comparison(st, idx, v, cx, theta > 0);
	if (v->result == VERDICT_INCONCLUSIVE)
		snprintf(v->detail, sizeof(v->detail),
			 "%llu canary and %llu stable latencies, %llu each needed before judging",
			 (unsigned long long)v->canary_samples,
			 (unsigned long long)v->stable_samples,
			 (unsigned long long)cx->cfg->min_requests);
	else {
		format_llr(llr, sizeof(llr), st, idx, v);
		snprintf(v->detail, sizeof(v->detail),
			 "P(canary > %.2f x stable) %.3f (z %.2f); %s: %s", scale,
			 pairs > 0 ? rs.u / pairs : 0.5, v->z, llr,
			 v->result == VERDICT_FAIL ? "canary is slower beyond the tolerance" :
						     "no evidence canary is slower");
	}
}

/* Metrics we judge: the parser bounds n_metrics, but never trust an index. */
static int n_metrics(const struct analysis_cfg *cfg)
{
	if (cfg->n_metrics < 0)
		return 0;
	return cfg->n_metrics < ANALYSIS_MAX_VERDICTS ? cfg->n_metrics : ANALYSIS_MAX_VERDICTS;
}

/* alpha = 1 - confidence, split evenly (Bonferroni) over the comparisons. */
static double log_inv_alpha(const struct analysis_cfg *cfg)
{
	double conf =
		cfg->confidence > 0 && cfg->confidence < 1 ? cfg->confidence : DEFAULT_CONFIDENCE;
	int i, n = 0;

	for (i = 0; i < n_metrics(cfg); i++)
		n += is_comparison(cfg->metrics[i].kind);
	return log((n > 0 ? n : 1) / (1 - conf));
}

/* Judges metric idx; returns whether it is a failed measurement of this tick. */
static bool judge_metric(struct analysis_state *st, int idx, const struct tick_ctx *cx)
{
	const struct metric_cfg *m = &cx->cfg->metrics[idx];
	struct verdict *v = &st->last[idx];
	bool kept = idx < st->n_last && v->metric == m->kind;

	/* External results arrive on their own (analysis_external); keep the last. */
	if (m->kind == METRIC_PROMETHEUS) {
		if (!kept) {
			memset(v, 0, sizeof(*v));
			v->metric = m->kind;
			v->result = VERDICT_INCONCLUSIVE;
			snprintf(v->name, sizeof(v->name), "%s", m->name);
			snprintf(v->detail, sizeof(v->detail),
				 "waiting for the first query result");
		}
		return false;
	}

	if (is_gate(m->kind) && !cx->window_closed) {
		if (!kept) {
			memset(v, 0, sizeof(*v));
			v->metric = m->kind;
			gate_pending(v, m, cx);
		}
		return false; /* the last window's verdict stands, counted once */
	}
	memset(v, 0, sizeof(*v));
	v->metric = m->kind;
	if (m->kind == METRIC_COMPARE_ERROR_RATE) {
		judge_cmp_error(st, idx, v, cx);
	} else if (m->kind == METRIC_COMPARE_LATENCY) {
		judge_cmp_latency(st, idx, v, m, cx);
	} else {
		v->limit = m->max;
		judge_gate(v, m, cx);
		if (v->result != VERDICT_INCONCLUSIVE)
			st->gate_windows++;
	}
	return v->result == VERDICT_FAIL;
}

static enum analysis_decision decide(const struct analysis_state *st,
				     const struct analysis_cfg *cfg, const struct tick_ctx *cx)
{
	int i;

	if (st->failures > cfg->failure_limit)
		return ANALYSIS_FAIL;
	if (canary_samples(cx->since, cx->http) < cfg->min_requests)
		return ANALYSIS_HOLD;
	/* Gates configured but none measured yet: nothing vouches for the canary. */
	for (i = 0; i < n_metrics(cfg); i++) {
		if (is_gate(cfg->metrics[i].kind) && !st->gate_windows)
			return ANALYSIS_HOLD;
		/* An external metric vouches only with a passing last result. */
		if (cfg->metrics[i].kind == METRIC_PROMETHEUS && !st->ext_passed[i])
			return ANALYSIS_HOLD;
	}
	return ANALYSIS_PASS;
}

enum analysis_decision analysis_tick(struct analysis_state *st, const struct analysis_cfg *cfg,
				     const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms)
{
	struct canary_metrics tick[CANARY_V_COUNT];
	__u64 interval = cfg->interval_ms > 0 ? (__u64)cfg->interval_ms : DEFAULT_INTERVAL_MS;
	struct tick_ctx cx = { .cfg = cfg };
	bool failed = false;
	int i, n = n_metrics(cfg);

	deltas(now, st->base, cx.since);
	cx.http = http_mode(cx.since);
	deltas(now, st->prev, tick);
	err_update(st, tick, cx.http);
	memcpy(st->prev, now, sizeof(st->prev));

	cx.window_closed = now_ms >= st->window_start_ms + interval;
	cx.window_ms = now_ms - st->window_start_ms;
	if (cx.window_closed)
		deltas(now, st->window_base, cx.win);
	cx.log_inv_alpha = log_inv_alpha(cfg);

	for (i = 0; i < n; i++)
		failed |= judge_metric(st, i, &cx);
	st->n_last = n;
	if (cx.window_closed) {
		memcpy(st->window_base, now, sizeof(st->window_base));
		st->window_start_ms = now_ms;
	}
	if (failed)
		st->failures++; /* once per tick, however many metrics failed */
	return decide(st, cfg, &cx);
}

void analysis_external(struct analysis_state *st, const struct analysis_cfg *cfg, int idx, bool ok,
		       double value, const char *err)
{
	const struct metric_cfg *m;
	struct verdict *v;
	char cond[64];

	if (idx < 0 || idx >= n_metrics(cfg) || cfg->metrics[idx].kind != METRIC_PROMETHEUS)
		return;
	m = &cfg->metrics[idx];
	v = &st->last[idx];
	memset(v, 0, sizeof(*v));
	v->metric = m->kind;
	snprintf(v->name, sizeof(v->name), "%s", m->name);
	metric_condition_format(m, cond, sizeof(cond));
	v->limit = m->cond_value;
	st->ext_passed[idx] = false;
	if (!ok) {
		st->ext_errors[idx]++;
		v->statistic = st->ext_errors[idx];
		v->threshold = m->consecutive_error_limit;
		v->result = VERDICT_INCONCLUSIVE;
		if (st->ext_errors[idx] > m->consecutive_error_limit) {
			v->result = VERDICT_FAIL;
			st->failures = cfg->failure_limit + 1; /* too many errors: abort */
		}
		snprintf(v->detail, sizeof(v->detail), "query failed (%u in a row, limit %u): %s",
			 st->ext_errors[idx], m->consecutive_error_limit, err ? err : "error");
		utf8_repair(v->detail); /* err is Prometheus' text, cut anywhere */
		return;
	}
	st->ext_errors[idx] = 0;
	v->canary_value = value;
	v->canary_samples = 1;
	if (metric_condition_holds(m, value)) {
		v->result = VERDICT_PASS;
		st->ext_passed[idx] = true;
		snprintf(v->detail, sizeof(v->detail), "result %g meets %s", value, cond);
	} else {
		v->result = VERDICT_FAIL;
		st->failures++;
		snprintf(v->detail, sizeof(v->detail), "result %g fails %s", value, cond);
	}
}

const char *verdict_metric_name(const struct verdict *v)
{
	return v->name[0] ? v->name : metric_kind_name(v->metric);
}
