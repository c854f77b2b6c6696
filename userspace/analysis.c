// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Canary analysis: absolute gates measured once per interval window, and
 * canary-vs-stable comparisons evaluated every tick with tests whose error
 * guarantee holds however often they are looked at. docs/analysis.md has
 * the formulas and the simulation results that back the constants below.
 */
#include <math.h>
#include <stdarg.h>
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

/*
 * A gate's window lasts at least one interval and grows until it holds the
 * samples the gate needs, up to this many intervals (and at least
 * GATE_WINDOW_MAX_MS): low traffic is judged more slowly, not never.
 */
#define GATE_WINDOW_MAX_INTERVALS 60
#define GATE_WINDOW_MAX_MS	  60000

/*
 * A q-quantile is measured only over windows in which about this many
 * samples lie above it: over fewer than 1/(1 - q) samples "p99" is the
 * window's maximum, which a healthy canary exceeds now and then.
 */
#define QUANTILE_TAIL_SAMPLES 10

/*
 * The dispersion of per-tick counts (errors, latencies over a line) and of
 * per-tick latency placements is estimated from the data and shrunk toward
 * these priors as if they had been seen over DISPERSION_PRIOR_TICKS ticks,
 * so that the few ticks of a young step cannot make it look smaller than
 * clustered traffic really is. docs/analysis.md has what each costs.
 */
#define COUNT_DISPERSION_PRIOR	   1.5
#define PLACEMENT_DISPERSION_PRIOR 2.0
#define DISPERSION_PRIOR_TICKS	   8.0

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
	case ANALYSIS_INCONCLUSIVE:
		return "inconclusive";
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
	return kind == METRIC_COMPARE_ERROR_RATE || kind == METRIC_COMPARE_LATENCY ||
	       kind == METRIC_COMPARE_LATENCY_TAIL;
}

/* Absolute gates: limits on the canary's own numbers, judged per window. */
/* Results that arrive on their own, from a worker: Prometheus queries, webhooks. */
static bool is_external(enum metric_kind kind)
{
	return kind == METRIC_PROMETHEUS || kind == METRIC_WEBHOOK;
}

static bool is_gate(enum metric_kind kind)
{
	return !is_comparison(kind) && !is_external(kind);
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
	int i;

	memset(st, 0, sizeof(*st));
	memcpy(st->base, now, sizeof(st->base));
	memcpy(st->prev, now, sizeof(st->prev));
	for (i = 0; i < ANALYSIS_MAX_VERDICTS; i++) {
		st->gate_base[i] = now[CANARY_V_CANARY];
		st->gate_start_ms[i] = now_ms;
	}
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

static void dispersion_add(struct count_dispersion *d, __u64 events, __u64 exposures)
{
	if (!exposures)
		return;
	d->events += (double)events;
	d->exposures += (double)exposures;
	d->sq_per_exp += (double)events * (double)events / (double)exposures;
	d->ticks++;
}

/*
 * Pearson's X^2 of one version's per-tick counts around its own rate, and
 * its degrees of freedom. Around its own rate, so that a canary worse than
 * stable does not look dispersed; a version with no spread to measure
 * (no events yet, or every exposure an event) adds nothing.
 */
static void pearson(const struct count_dispersion *d, double *x2, double *df)
{
	double p;

	*x2 = 0;
	*df = 0;
	if (d->ticks < 2 || d->exposures <= 0)
		return;
	p = d->events / d->exposures;
	if (p <= 0 || p >= 1)
		return;
	*x2 = (d->sq_per_exp - 2 * p * d->events + p * p * d->exposures) / (p * (1 - p));
	*df = d->ticks - 1;
}

/* Quasi-likelihood dispersion of both versions' counts: 1 for independent events. */
static double count_dispersion(const struct count_dispersion d[CANARY_V_COUNT])
{
	double x2 = COUNT_DISPERSION_PRIOR * DISPERSION_PRIOR_TICKS, df = DISPERSION_PRIOR_TICKS;
	int v;

	for (v = 0; v < CANARY_V_COUNT; v++) {
		double x, f;

		pearson(&d[v], &x, &f);
		x2 += x;
		df += f;
	}
	return fmax(1, x2 / df);
}

/*
 * One tick of a rate-ratio mixture (compareErrorRate, compareLatencyTail).
 * Given the exposures of this tick and its total events T, under "same
 * rate" the canary's share of T is hypergeometric, close to Binomial(T,
 * n_c / (n_c + n_s)); if the canary's rate is r times stable's, each event
 * is the canary's with probability r n_c / (r n_c + n_s). With a tolerance
 * (compareErrorRate's maxIncrease f) the null is "rate <= r0 = 1 + f times
 * stable's" and the mixture is over r0 times the grid: the same argument, the
 * likelihood ratio of pi(r) against pi(r0). Events that come
 * in clusters of m (one bad connection, one slow pod) multiply this log
 * likelihood ratio by m; dividing it by the dispersion estimated before
 * this tick (about m) keeps the product a supermartingale under the null.
 */
static void ratio_update(double *llr, struct count_dispersion disp[CANARY_V_COUNT], double r0,
			 __u64 n_c, __u64 x_c, __u64 n_s, __u64 x_s)
{
	double t, phi = count_dispersion(disp), n0;
	int k;

	dispersion_add(&disp[CANARY_V_CANARY], x_c, n_c);
	dispersion_add(&disp[CANARY_V_STABLE], x_s, n_s);
	if (!n_c || !n_s || !(x_c + x_s))
		return; /* one version idle: who erred tells nothing */
	t = (double)(x_c + x_s);
	n0 = r0 * (double)n_c + (double)n_s;
	for (k = 0; k < ANALYSIS_ERR_GRID; k++) {
		double r = r0 * err_ratio[k];

		llr[k] += ((double)x_c * log(r / r0) -
			   t * log((r * (double)n_c + (double)n_s) / n0)) /
			  phi;
	}
}

/* compareErrorRate's tolerated ratio, 1 + maxIncrease (1 without the metric). */
static double err_null_ratio(const struct analysis_cfg *cfg)
{
	int i;

	for (i = 0; i < cfg->n_metrics && i < ANALYSIS_MAX_VERDICTS; i++)
		if (cfg->metrics[i].kind == METRIC_COMPARE_ERROR_RATE)
			return 1 + fmax(cfg->metrics[i].max_increase, 0);
	return 1;
}

/* One tick of the compareErrorRate evidence. */
static void err_update(struct analysis_state *st, const struct analysis_cfg *cfg,
		       const struct canary_metrics tick[CANARY_V_COUNT], bool http)
{
	__u64 n_c, e_c, n_s, e_s;

	error_counts(&tick[CANARY_V_CANARY], http, &n_c, &e_c);
	error_counts(&tick[CANARY_V_STABLE], http, &n_s, &e_s);
	ratio_update(st->err_llr, st->err_disp, err_null_ratio(cfg), n_c, e_c, n_s, e_s);
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

/* Samples of a histogram, and how many of them sit above a latency (us). */
static __u64 hist_above(const __u64 *h, double us, __u64 *total)
{
	__u64 above = 0;
	__u32 i;

	*total = 0;
	for (i = 0; i < CANARY_HIST_BUCKETS; i++) {
		*total += h[i];
		if (bucket_mid(i) > us)
			above += h[i];
	}
	return above;
}

/* Everything one tick's judgement needs. */
struct tick_ctx {
	const struct analysis_cfg *cfg;
	const struct canary_metrics *now;	     /* cumulative counters */
	struct canary_metrics since[CANARY_V_COUNT]; /* since the restart */
	struct canary_metrics tick[CANARY_V_COUNT];  /* this tick */
	bool http;
	__u64 now_ms;
	__u64 interval_ms;
	double log_inv_alpha; /* boundary of each comparison */
};

static double gate_quantile(enum metric_kind kind)
{
	if (kind == METRIC_LATENCY_P50)
		return 0.50;
	return kind == METRIC_LATENCY_P95 ? 0.95 : 0.99;
}

/* Samples that put about QUANTILE_TAIL_SAMPLES of them above the q-quantile. */
static __u64 quantile_need(double q)
{
	return (__u64)ceil(QUANTILE_TAIL_SAMPLES / (1 - q) - 1e-9);
}

static bool is_quantile_gate(enum metric_kind kind)
{
	return kind == METRIC_LATENCY_P50 || kind == METRIC_LATENCY_P95 ||
	       kind == METRIC_LATENCY_P99;
}

/* Canary samples a gate's window must hold before it is judged. */
static __u64 gate_need(const struct metric_cfg *m, const struct analysis_cfg *cfg)
{
	__u64 need = cfg->min_requests;

	if (is_quantile_gate(m->kind) && quantile_need(gate_quantile(m->kind)) > need)
		need = quantile_need(gate_quantile(m->kind));
	return need;
}

/* The longest a gate's window may grow before it is given up as inconclusive. */
static __u64 gate_window_max_ms(const struct tick_ctx *cx)
{
	__u64 max = GATE_WINDOW_MAX_INTERVALS * cx->interval_ms;

	return max > GATE_WINDOW_MAX_MS ? max : GATE_WINDOW_MAX_MS;
}

static void gate_value(const struct metric_cfg *m, const struct canary_metrics *w, bool http,
		       __u64 *n, double *value)
{
	__u64 err;

	switch (m->kind) {
	case METRIC_ERROR_RATE:
		error_counts(w, http, n, &err);
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

/* The window's counts, as a gate needs them. */
struct gate_window {
	struct canary_metrics counts; /* the canary's, in the window */
	__u64 ms;		      /* its length */
	__u64 need;		      /* samples it needs to be judged */
};

static const char *gate_unit(enum metric_kind kind)
{
	return kind == METRIC_ERROR_RATE || kind == METRIC_RESET_RATE ? "samples" : "responses";
}

/* An absolute gate over a window that just ended. */
static void judge_gate(struct verdict *v, const struct metric_cfg *m, const struct tick_ctx *cx,
		       const struct gate_window *w)
{
	char val[32], lim[32];
	__u64 n;
	double value;

	gate_value(m, &w->counts, cx->http, &n, &value);
	v->canary_samples = n;
	v->canary_value = n ? value : 0;
	v->statistic = v->canary_value;
	v->threshold = m->max;
	fmt_value(val, sizeof(val), m->kind, v->canary_value);
	fmt_value(lim, sizeof(lim), m->kind, m->max);
	if (n < w->need) {
		v->result = VERDICT_INCONCLUSIVE;
		snprintf(v->detail, sizeof(v->detail),
			 "only %llu canary %s in the last %llu ms (%llu needed): not judged",
			 (unsigned long long)n, gate_unit(m->kind), (unsigned long long)w->ms,
			 (unsigned long long)w->need);
		return;
	}
	v->result = value > m->max ? VERDICT_FAIL : VERDICT_PASS;
	snprintf(v->detail, sizeof(v->detail),
		 "canary %s %s over %llu %s in the last %llu ms %s %s", gate_label(m->kind), val,
		 (unsigned long long)n, gate_unit(m->kind), (unsigned long long)w->ms,
		 v->result == VERDICT_FAIL ? "exceeds the limit" : "is within the limit", lim);
}

static void gate_pending(struct verdict *v, const struct metric_cfg *m, __u64 n,
			 const struct gate_window *w)
{
	v->result = VERDICT_INCONCLUSIVE;
	v->limit = m->max;
	v->threshold = m->max;
	v->canary_samples = n;
	snprintf(v->detail, sizeof(v->detail),
		 "first window open for %llu ms with %llu of %llu canary %s: not judged yet",
		 (unsigned long long)w->ms, (unsigned long long)n, (unsigned long long)w->need,
		 gate_unit(m->kind));
}

/*
 * Early failure of a gate inside an open window. A gate says "the canary's
 * share of bad samples is at most p0" (errors per request, resets per
 * connection, or latencies above the limit for a quantile gate: a q-quantile
 * over the limit means more than 1 - q of the samples lie above it). The
 * likelihood ratio of a share p > p0 against p0 is a test martingale under
 * any share <= p0, so the mixture over a grid of p may be looked at on every
 * tick and the gate failed once it crosses log(1/alpha), with however few
 * samples: a canary answering 503 to everything fails a 5% gate after a few
 * errors instead of after minRequests of them and the window's end.
 */
static const double early_fraction[ANALYSIS_ERR_GRID] = { .02, .05, .1, .2, .35, .5, .7, .9 };

/* The window as a share of bad samples: n samples, x bad, p0 the gate's share. */
static bool gate_as_share(const struct metric_cfg *m, const struct canary_metrics *w, bool http,
			  __u64 *n, __u64 *x, double *p0)
{
	switch (m->kind) {
	case METRIC_ERROR_RATE:
		error_counts(w, http, n, x);
		*p0 = m->max;
		break;
	case METRIC_RESET_RATE:
		*n = w->conns_opened;
		*x = w->conns_reset;
		*p0 = m->max;
		break;
	default:
		*x = hist_above(w->latency_hist, m->max, n);
		*p0 = 1 - gate_quantile(m->kind);
		break;
	}
	if (*x > *n) /* counters read at slightly different moments */
		*x = *n;
	return *p0 > 0 && *p0 < 1 && *n > 0;
}

static double gate_share_llr(__u64 n, __u64 x, double p0)
{
	double llr[ANALYSIS_ERR_GRID];
	int k;

	for (k = 0; k < ANALYSIS_ERR_GRID; k++) {
		double p = p0 + (1 - p0) * early_fraction[k];

		llr[k] = (double)x * log(p / p0) + (double)(n - x) * log((1 - p) / (1 - p0));
	}
	return log_mean_exp(llr, ANALYSIS_ERR_GRID);
}

/* Fails v if the open window already proves the gate exceeded. */
static bool gate_fails_early(struct verdict *v, const struct metric_cfg *m,
			     const struct tick_ctx *cx, const struct gate_window *w)
{
	char val[32], lim[32];
	__u64 n, x, n_value;
	double p0, llr;

	if (!gate_as_share(m, &w->counts, cx->http, &n, &x, &p0))
		return false;
	llr = gate_share_llr(n, x, p0);
	if (llr < cx->log_inv_alpha)
		return false;
	v->result = VERDICT_FAIL;
	v->canary_samples = n;
	gate_value(m, &w->counts, cx->http, &n_value, &v->canary_value);
	v->statistic = v->canary_value; /* as for a closed window; the evidence is in the detail */
	v->threshold = m->max;
	fmt_value(lim, sizeof(lim), m->kind, m->max);
	snprintf(val, sizeof(val), "%llu of %llu", (unsigned long long)x, (unsigned long long)n);
	snprintf(v->detail, sizeof(v->detail),
		 "canary %s: %s %s over the limit %s in %llu ms (log LR %.1f)", gate_label(m->kind),
		 val, gate_unit(m->kind), lim, (unsigned long long)w->ms, llr);
	return true;
}

/* A gate window closed: measured (pass or fail), or one more inconclusive in a row. */
static void count_gate_window(struct analysis_state *st, int idx, const struct verdict *v)
{
	if (v->result == VERDICT_INCONCLUSIVE) {
		st->inconclusive_run[idx]++;
		return;
	}
	st->inconclusive_run[idx] = 0;
	st->measured[idx]++;
}

/* Counts gate idx's window as judged and opens the next; returns whether it failed. */
static bool close_gate_window(struct analysis_state *st, int idx, const struct tick_ctx *cx)
{
	count_gate_window(st, idx, &st->last[idx]);
	st->gate_base[idx] = cx->now[CANARY_V_CANARY];
	st->gate_start_ms[idx] = cx->now_ms;
	return st->last[idx].result == VERDICT_FAIL;
}

/*
 * Gate idx's window: it ends on the first tick at least one interval after
 * it began on which it holds the samples the gate needs, or, without them,
 * when it reached its longest; then the gate is judged and a new window
 * begins. Returns whether the gate failed on this tick.
 */
static bool judge_gate_window(struct analysis_state *st, int idx, const struct tick_ctx *cx,
			      bool kept)
{
	const struct metric_cfg *m = &cx->cfg->metrics[idx];
	struct verdict *v = &st->last[idx];
	struct gate_window w;
	double value;
	__u64 n;

	stats_delta(&cx->now[CANARY_V_CANARY], &st->gate_base[idx], &w.counts);
	w.ms = cx->now_ms - st->gate_start_ms[idx];
	w.need = gate_need(m, cx->cfg);
	gate_value(m, &w.counts, cx->http, &n, &value);
	if (w.ms < cx->interval_ms || (n < w.need && w.ms < gate_window_max_ms(cx))) {
		struct verdict early = { .metric = m->kind, .limit = m->max };

		if (gate_fails_early(&early, m, cx, &w)) {
			*v = early;
			return close_gate_window(st, idx, cx);
		}
		/* The last window's verdict stands, counted once; the first one says how it fills. */
		if (!kept || st->gate_start_ms[idx] == st->started_ms) {
			memset(v, 0, sizeof(*v));
			v->metric = m->kind;
			gate_pending(v, m, n, &w);
		}
		return false;
	}
	memset(v, 0, sizeof(*v));
	v->metric = m->kind;
	v->limit = m->max;
	judge_gate(v, m, cx, &w);
	return close_gate_window(st, idx, cx);
}

/*
 * A comparison has failed once its statistic crossed the boundary, with
 * however few samples (Ville's inequality holds at every look); it stays
 * failed (the always-valid p-value is a running minimum), which also makes
 * the failureLimit count consecutive.
 */
static void settle_comparison(struct analysis_state *st, int idx, struct verdict *v,
			      const struct tick_ctx *cx, bool worse)
{
	bool enough = v->canary_samples >= cx->cfg->min_requests &&
		      v->stable_samples >= cx->cfg->min_requests;

	/* Always valid: strong evidence fails at once; minRequests only gates passing. */
	if (worse && v->statistic >= v->threshold && !st->crossed[idx]) {
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
	v->limit = cx->cfg->metrics[idx].max_increase;
	settle_comparison(st, idx, v, cx, true);
	if (v->result == VERDICT_INCONCLUSIVE)
		snprintf(v->detail, sizeof(v->detail),
			 "%llu canary and %llu stable samples, %llu each needed before judging",
			 (unsigned long long)n_c, (unsigned long long)n_s,
			 (unsigned long long)cx->cfg->min_requests);
	else {
		char llr[64];

		format_llr(llr, sizeof(llr), st, idx, v);
		snprintf(v->detail, sizeof(v->detail),
			 "canary %.2f%% vs stable %.2f%% errors (z %.2f); %s: %s",
			 100 * v->canary_value, 100 * v->stable_value, v->z, llr,
			 v->result == VERDICT_FAIL ? "canary errs more" :
						     "no evidence canary errs more");
	}
}

static void placement_add(struct placement_dispersion *d, double n, double a)
{
	d->samples += n;
	d->sum += n * a;
	d->sum_sq += n * a * a;
	d->ticks++;
}

/*
 * Dispersion of a version's per-tick placements: one sample's placement
 * against the other version varies with variance 1/12 when samples are
 * independent, so 12 sum n_t (a_t - mean)^2 is chi-square with ticks - 1
 * degrees of freedom, times the dispersion when a tick's samples move
 * together. Shrunk toward the prior, never below 1.
 */
static double placement_dispersion(const struct placement_dispersion *d)
{
	double x2 = PLACEMENT_DISPERSION_PRIOR * DISPERSION_PRIOR_TICKS,
	       df = DISPERSION_PRIOR_TICKS;

	if (d->ticks >= 2 && d->samples > 0) {
		x2 += 12 * (d->sum_sq - d->sum * d->sum / d->samples);
		df += d->ticks - 1;
	}
	return fmax(1, x2 / df);
}

/* This tick's samples of each version placed against the other's samples so far. */
static void latency_dispersion_update(struct analysis_state *st, const struct tick_ctx *cx,
				      double scale)
{
	const __u64 *c = cx->since[CANARY_V_CANARY].latency_hist,
		    *s = cx->since[CANARY_V_STABLE].latency_hist;
	const __u64 *tc = cx->tick[CANARY_V_CANARY].latency_hist,
		    *ts = cx->tick[CANARY_V_STABLE].latency_hist;
	struct rank_sum rs;

	/* The share of pairs in which the canary is slower, ties 1/2. */
	rank_sum_hist(tc, s, scale, &rs);
	if (rs.n_c > 0 && rs.n_s > 0)
		placement_add(&st->lat_disp[CANARY_V_CANARY], rs.n_c, rs.u / (rs.n_c * rs.n_s));
	rank_sum_hist(c, ts, scale, &rs);
	if (rs.n_c > 0 && rs.n_s > 0)
		placement_add(&st->lat_disp[CANARY_V_STABLE], rs.n_s, rs.u / (rs.n_c * rs.n_s));
}

/*
 * Var(U / pairs) scaled by the versions' dispersions: under independence
 * each version's share of it is about proportional to 1 / its samples.
 */
static double dispersed_variance(const struct analysis_state *st, const struct rank_sum *rs)
{
	double pairs = rs->n_c * rs->n_s, w_c = 1 / rs->n_c, w_s = 1 / rs->n_s;
	double phi = (placement_dispersion(&st->lat_disp[CANARY_V_CANARY]) * w_c +
		      placement_dispersion(&st->lat_disp[CANARY_V_STABLE]) * w_s) /
		     (w_c + w_s);

	return phi * rs->var / (pairs * pairs);
}

static void judge_cmp_latency(struct analysis_state *st, int idx, struct verdict *v,
			      const struct metric_cfg *m, const struct tick_ctx *cx)
{
	const struct canary_metrics *c = &cx->since[CANARY_V_CANARY],
				    *s = &cx->since[CANARY_V_STABLE];
	double scale = 1 + fmax(m->max_increase, 0), theta = 0, pairs;
	struct rank_sum rs;

	latency_dispersion_update(st, cx, scale);
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
		v->statistic = half_normal_mixture_llr(theta, dispersed_variance(st, &rs), LAT_TAU);
	}
	settle_comparison(st, idx, v, cx, theta > 0);
	if (v->result == VERDICT_INCONCLUSIVE)
		snprintf(v->detail, sizeof(v->detail),
			 "%llu canary and %llu stable latencies, %llu each needed before judging",
			 (unsigned long long)v->canary_samples,
			 (unsigned long long)v->stable_samples,
			 (unsigned long long)cx->cfg->min_requests);
	else {
		char llr[64];

		format_llr(llr, sizeof(llr), st, idx, v);
		snprintf(v->detail, sizeof(v->detail),
			 "P(canary > %.2f x stable) %.3f (z %.2f); %s: %s", scale,
			 pairs > 0 ? rs.u / pairs : 0.5, v->z, llr,
			 v->result == VERDICT_FAIL ? "canary is slower beyond the tolerance" :
						     "no evidence canary is slower");
	}
}

static double tail_quantile(const struct metric_cfg *m)
{
	return m->quantile > 0 && m->quantile < 1 ? m->quantile : CONFIG_DEFAULT_TAIL_QUANTILE;
}

/*
 * One tick of the compareLatencyTail evidence. The line is stable's
 * q-quantile as known before this tick (so it does not depend on the tick
 * it judges); the canary's "events" are its latencies above (1 +
 * maxIncrease) x the line, stable's those above the line. A canary no
 * slower than (1 + maxIncrease) x stable has at most stable's rate, so the
 * rate-ratio mixture of compareErrorRate applies unchanged.
 */
static void tail_update(struct analysis_state *st, const struct metric_cfg *m,
			const struct tick_ctx *cx)
{
	struct canary_metrics before;
	__u64 n_c, x_c, n_s, x_s;
	double line;

	stats_delta(&cx->since[CANARY_V_STABLE], &cx->tick[CANARY_V_STABLE], &before);
	hist_above(before.latency_hist, 0, &n_s); /* stable's latencies before this tick */
	if (n_s < quantile_need(tail_quantile(m)))
		return; /* stable's quantile is not known well enough yet */
	line = stats_latency_quantile_us(&before, tail_quantile(m));
	x_c = hist_above(cx->tick[CANARY_V_CANARY].latency_hist,
			 (1 + fmax(m->max_increase, 0)) * line, &n_c);
	x_s = hist_above(cx->tick[CANARY_V_STABLE].latency_hist, line, &n_s);
	ratio_update(st->tail_llr, st->tail_disp, 1, n_c, x_c, n_s, x_s);
}

static void judge_cmp_tail(struct analysis_state *st, int idx, struct verdict *v,
			   const struct metric_cfg *m, const struct tick_ctx *cx)
{
	const struct count_dispersion *dc = &st->tail_disp[CANARY_V_CANARY],
				      *ds = &st->tail_disp[CANARY_V_STABLE];
	double q = tail_quantile(m), share_c, share_s;
	char llr[64];

	tail_update(st, m, cx);
	v->canary_samples = cx->since[CANARY_V_CANARY].latency_count;
	v->stable_samples = cx->since[CANARY_V_STABLE].latency_count;
	v->canary_value = fmax(stats_latency_quantile_us(&cx->since[CANARY_V_CANARY], q), 0);
	v->stable_value = fmax(stats_latency_quantile_us(&cx->since[CANARY_V_STABLE], q), 0);
	v->limit = m->max_increase;
	share_c = dc->exposures > 0 ? dc->events / dc->exposures : 0;
	share_s = ds->exposures > 0 ? ds->events / ds->exposures : 0;
	v->z = two_prop_z((__u64)dc->exposures, (__u64)dc->events, (__u64)ds->exposures,
			  (__u64)ds->events);
	v->statistic = log_mean_exp(st->tail_llr, ANALYSIS_ERR_GRID);
	v->threshold = cx->log_inv_alpha;
	settle_comparison(st, idx, v, cx, true);
	format_llr(llr, sizeof(llr), st, idx, v);
	snprintf(v->detail, sizeof(v->detail),
		 "p%.1f %.1f vs %.1f ms, %.2f%% vs %.2f%% over stable's; %s: %s", 100 * q,
		 v->canary_value / 1000, v->stable_value / 1000, 100 * share_c, 100 * share_s, llr,
		 v->result == VERDICT_FAIL ? "tail slower" : "no evidence tail slower");
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
	if (is_external(m->kind)) {
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

	if (is_gate(m->kind))
		return judge_gate_window(st, idx, cx, kept);
	memset(v, 0, sizeof(*v));
	v->metric = m->kind;
	if (m->kind == METRIC_COMPARE_ERROR_RATE) {
		judge_cmp_error(st, idx, v, cx);
	} else if (m->kind == METRIC_COMPARE_LATENCY) {
		judge_cmp_latency(st, idx, v, m, cx);
	} else {
		judge_cmp_tail(st, idx, v, m, cx);
	}
	return v->result == VERDICT_FAIL;
}

/* The metric's name as configured (tests build configs without names). */
static const char *label(const struct metric_cfg *m)
{
	return m->name[0] ? m->name : metric_kind_name(m->kind);
}

static __u32 failure_limit(const struct analysis_cfg *cfg, const struct metric_cfg *m)
{
	return m->failure_limit == CONFIG_INHERIT ? cfg->failure_limit : (__u32)m->failure_limit;
}

/* Sets st->reason; returns d, so that a decision and its reason go together. */
__attribute__((format(printf, 3, 4))) static enum analysis_decision
hold(struct analysis_state *st, enum analysis_decision d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* clang-analyzer 14 loses the va_start of a function defined after its attribute. */
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
	return d;
}

/* "12 of 20 canary samples (4.8/s: about 1.7 s more)" for hold reasons. */
static void samples_eta(char *buf, size_t len, __u64 have, __u64 need, __u64 elapsed_ms)
{
	double rate = elapsed_ms ? (double)have * 1000 / (double)elapsed_ms : 0;

	if (rate > 0)
		snprintf(buf, len, "%llu of %llu canary samples (%.1f/s: about %.1f s more)",
			 (unsigned long long)have, (unsigned long long)need, rate,
			 (double)(need - have) / rate);
	else
		snprintf(buf, len, "%llu of %llu canary samples (no canary traffic yet)",
			 (unsigned long long)have, (unsigned long long)need);
}

/* A metric that fails now, or has failed too often, decides on its own. */
static enum analysis_decision decide_failures(struct analysis_state *st,
					      const struct analysis_cfg *cfg, bool *failing)
{
	int i;

	*failing = false;
	for (i = 0; i < n_metrics(cfg); i++) {
		const struct metric_cfg *m = &cfg->metrics[i];

		if (m->dry_run)
			continue;
		if (st->failures[i] > failure_limit(cfg, m))
			return hold(st, ANALYSIS_FAIL, "%s failed %u times (failureLimit %u)",
				    label(m), st->failures[i], failure_limit(cfg, m));
		if (!*failing && st->last[i].result == VERDICT_FAIL) {
			*failing = true;
			hold(st, ANALYSIS_HOLD, "%s is failing (%u of %u failures tolerated)",
			     label(m), st->failures[i], failure_limit(cfg, m));
		}
	}
	return ANALYSIS_HOLD;
}

/*
 * Does metric i vouch for the canary? Sets *stable_short for a comparison
 * that lacks only stable samples; returns false (with the reason set) when
 * the metric holds the decision.
 */
static bool metric_vouches(struct analysis_state *st, const struct analysis_cfg *cfg, int i,
			   bool *stable_short)
{
	const struct metric_cfg *m = &cfg->metrics[i];
	const struct verdict *v = &st->last[i];

	if (m->dry_run)
		return true;
	if (is_external(m->kind)) {
		if (st->ext_passed[i])
			return true;
		hold(st, ANALYSIS_HOLD, "%s: waiting for a passing %s", label(m),
		     m->kind == METRIC_WEBHOOK ? "webhook answer" : "query result");
		return false;
	}
	if (is_gate(m->kind)) {
		if (st->measured[i])
			return true;
		hold(st, ANALYSIS_HOLD, "%s: no window with %llu canary samples yet", label(m),
		     (unsigned long long)cfg->min_requests);
		return false;
	}
	if (v->result == VERDICT_PASS)
		return true;
	if (v->canary_samples >= cfg->min_requests) {
		*stable_short = true; /* the gates may carry the decision */
		return true;
	}
	hold(st, ANALYSIS_HOLD, "%s: %llu of %llu canary samples", label(m),
	     (unsigned long long)v->canary_samples, (unsigned long long)cfg->min_requests);
	return false;
}

/* Names of the gates that carry a decision, "errorRate, latencyP99". */
static void gate_names(const struct analysis_cfg *cfg, char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n_metrics(cfg) && off < len; i++) {
		const struct metric_cfg *m = &cfg->metrics[i];

		if (!is_gate(m->kind) || m->dry_run)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", label(m));
	}
}

static bool has_gate(const struct analysis_cfg *cfg)
{
	int i;

	for (i = 0; i < n_metrics(cfg); i++)
		if (is_gate(cfg->metrics[i].kind) && !cfg->metrics[i].dry_run)
			return true;
	return false;
}

static bool inconclusive_exceeded(struct analysis_state *st, const struct analysis_cfg *cfg)
{
	int i;

	if (!cfg->inconclusive_limit)
		return false;
	for (i = 0; i < n_metrics(cfg); i++) {
		if (cfg->metrics[i].dry_run || st->inconclusive_run[i] <= cfg->inconclusive_limit)
			continue;
		hold(st, ANALYSIS_INCONCLUSIVE,
		     "%s: %u inconclusive windows in a row (inconclusiveLimit %u)",
		     label(&cfg->metrics[i]), st->inconclusive_run[i], cfg->inconclusive_limit);
		return true;
	}
	return false;
}

static enum analysis_decision decide(struct analysis_state *st, const struct analysis_cfg *cfg,
				     const struct tick_ctx *cx, __u64 now_ms)
{
	__u64 have = canary_samples(cx->since, cx->http);
	bool failing, stable_short = false;
	enum analysis_decision d;
	char buf[160];
	int i;

	d = decide_failures(st, cfg, &failing);
	if (d == ANALYSIS_FAIL || failing)
		return d;
	if (inconclusive_exceeded(st, cfg))
		return ANALYSIS_INCONCLUSIVE;
	if (have < cfg->min_requests) {
		samples_eta(buf, sizeof(buf), have, cfg->min_requests, now_ms - st->started_ms);
		return hold(st, ANALYSIS_HOLD, "waiting for %s", buf);
	}
	for (i = 0; i < n_metrics(cfg); i++)
		if (!metric_vouches(st, cfg, i, &stable_short))
			return ANALYSIS_HOLD;
	if (!stable_short)
		return hold(st, ANALYSIS_PASS, "no metric failing, %llu canary samples",
			    (unsigned long long)have);
	if (!has_gate(cfg))
		return hold(st, ANALYSIS_HOLD,
			    "stable has fewer than %llu samples to compare with and no absolute "
			    "gate is configured: nothing can vouch for the canary",
			    (unsigned long long)cfg->min_requests);
	gate_names(cfg, buf, sizeof(buf));
	return hold(st, ANALYSIS_PASS,
		    "stable has fewer than %llu samples to compare with: passed on the absolute "
		    "gates (%s)",
		    (unsigned long long)cfg->min_requests, buf);
}

enum analysis_decision analysis_tick(struct analysis_state *st, const struct analysis_cfg *cfg,
				     const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms)
{
	struct tick_ctx cx = { .cfg = cfg, .now = now };
	int i, n = n_metrics(cfg);

	cx.now_ms = now_ms;
	cx.interval_ms = cfg->interval_ms > 0 ? (__u64)cfg->interval_ms : DEFAULT_INTERVAL_MS;
	deltas(now, st->base, cx.since);
	cx.http = http_mode(cx.since);
	deltas(now, st->prev, cx.tick);
	err_update(st, cfg, cx.tick, cx.http);
	memcpy(st->prev, now, sizeof(st->prev));
	cx.log_inv_alpha = log_inv_alpha(cfg);

	for (i = 0; i < n; i++) {
		if (judge_metric(st, i, &cx))
			st->failures[i]++;
		st->last[i].failures = st->failures[i];
		st->last[i].dry_run = cfg->metrics[i].dry_run;
	}
	st->n_last = n;
	return decide(st, cfg, &cx, now_ms);
}

void analysis_external(struct analysis_state *st, const struct analysis_cfg *cfg, int idx, bool ok,
		       double value, const char *err)
{
	const struct metric_cfg *m;
	struct verdict *v;
	char cond[64];

	if (idx < 0 || idx >= n_metrics(cfg) || !is_external(cfg->metrics[idx].kind))
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
			st->failures[idx] = failure_limit(cfg, m) + 1; /* too many errors: abort */
		}
		snprintf(v->detail, sizeof(v->detail), "%s failed (%u in a row, limit %u): %s",
			 m->kind == METRIC_WEBHOOK ? "webhook" : "query", st->ext_errors[idx],
			 m->consecutive_error_limit, err ? err : "error");
		utf8_repair(v->detail); /* err is Prometheus' or libcurl's text, cut anywhere */
		return;
	}
	st->ext_errors[idx] = 0;
	v->canary_value = value;
	v->canary_samples = 1;
	if (m->kind == METRIC_WEBHOOK ? value >= 200 && value < 300 :
					metric_condition_holds(m, value)) {
		v->result = VERDICT_PASS;
		st->ext_passed[idx] = true;
	} else {
		v->result = VERDICT_FAIL;
		st->failures[idx]++;
	}
	if (m->kind == METRIC_WEBHOOK)
		snprintf(v->detail, sizeof(v->detail), "the webhook answered HTTP %g: %s", value,
			 v->result == VERDICT_PASS ? "pass" : "a failed check");
	else
		snprintf(v->detail, sizeof(v->detail), "result %g %s %s", value,
			 v->result == VERDICT_PASS ? "meets" : "fails", cond);
	v->failures = st->failures[idx];
	v->dry_run = m->dry_run;
}

const char *verdict_metric_name(const struct verdict *v)
{
	return v->name[0] ? v->name : metric_kind_name(v->metric);
}
