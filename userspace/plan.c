// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "canary_hist.h"
#include "plan.h"

#define TICK_MS 250
#define Z99	2.3263478740408408 /* the standard normal's 99th percentile */

/* xoshiro256** seeded by splitmix64: reproducible plans. */
struct rng {
	__u64 s[4];
};

static __u64 splitmix64(__u64 *x)
{
	__u64 z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __u64 rotl(__u64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static __u64 rng_next(struct rng *r)
{
	__u64 *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

static double uniform(struct rng *r)
{
	return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

static double normal(struct rng *r)
{
	return sqrt(-2 * log(uniform(r))) * cos(2 * M_PI * uniform(r));
}

/* Poisson: exact for small means, normal beyond (counts per tick). */
static __u64 poisson(struct rng *r, double mean)
{
	double l, p = 1;
	__u64 k = 0;

	if (mean <= 0)
		return 0;
	if (mean > 50) {
		double x = mean + sqrt(mean) * normal(r);

		return x > 0 ? (__u64)(x + 0.5) : 0;
	}
	l = exp(-mean);
	do {
		k++;
		p *= uniform(r);
	} while (p > l && k < 1000);
	return k - 1;
}

static __u64 binomial(struct rng *r, __u64 n, double p)
{
	__u64 k = 0, i;

	if ((double)n * p > 50) {
		double x = (double)n * p + sqrt((double)n * p * (1 - p)) * normal(r);

		return x <= 0 ? 0 : x >= (double)n ? n : (__u64)(x + 0.5);
	}
	for (i = 0; i < n; i++)
		k += uniform(r) < p;
	return k;
}

/* Lognormal latencies: each bucket's share, for one version. */
struct shape {
	double share[CANARY_HIST_BUCKETS];
};

static void shape_build(struct shape *sh, double median_us, double p99_us, double scale)
{
	double sigma = p99_us > median_us && median_us > 0 ? log(p99_us / median_us) / Z99 : 0.5;
	double mu = log(fmax(median_us, 1) * scale), prev = 0;
	__u32 i;

	memset(sh, 0, sizeof(*sh));
	for (i = 0; i < CANARY_HIST_BUCKETS; i++) {
		double hi = (double)canary_hist_lower(i) + (double)canary_hist_width(i);
		double cdf = i == CANARY_HIST_BUCKETS - 1 ?
				     1 :
				     0.5 * erfc(-(log(fmax(hi, 1e-9)) - mu) / (sigma * M_SQRT2));

		sh->share[i] = cdf - prev;
		prev = cdf;
	}
}

/* One tick of one version: requests, errors, latencies per bucket (Poisson). */
static void tick_version(struct rng *r, double rps, double err_p, const struct shape *sh,
			 struct canary_metrics *m)
{
	__u64 n = poisson(r, rps * TICK_MS / 1000), e = binomial(r, n, fmin(err_p, 1));
	__u32 i;

	m->requests += n;
	m->conns_opened += n;
	m->responses[2] += n - e;
	m->responses[5] += e;
	for (i = 0; i < CANARY_HIST_BUCKETS; i++) {
		__u64 k;

		if (sh->share[i] < 1e-7)
			continue;
		k = poisson(r, (double)n * sh->share[i]);
		m->latency_hist[i] += k;
		m->latency_count += k;
		m->latency_sum_us += k * canary_hist_lower(i);
	}
}

/* Seconds until the analysis aborted one simulated step, or -1 within max_s. */
static double one_step(struct rng *r, const struct analysis_cfg *cfg, const struct plan_traffic *t,
		       const double err_p[2], const struct shape sh[2], double max_s,
		       struct analysis_state *st)
{
	struct canary_metrics now[CANARY_V_COUNT];
	double rps[2] = { t->rps * (1 - t->canary_share), t->rps * t->canary_share };
	__u64 ms;
	int v;

	memset(now, 0, sizeof(now));
	analysis_restart(st, now, 0);
	for (ms = TICK_MS; ms <= (__u64)(max_s * 1000); ms += TICK_MS) {
		for (v = 0; v < CANARY_V_COUNT; v++)
			tick_version(r, rps[v], err_p[v], &sh[v], &now[v]);
		if (analysis_tick(st, cfg, now, ms) == ANALYSIS_FAIL)
			return (double)ms / 1000;
	}
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double plan_detect_time(const struct analysis_cfg *cfg, const struct plan_traffic *t,
			const struct plan_regression *reg, double power, int runs, double max_s,
			__u64 seed)
{
	struct analysis_state *st = calloc(1, sizeof(*st));
	struct shape *sh = calloc(2, sizeof(*sh));
	double *times = calloc((size_t)(runs > 0 ? runs : 1), sizeof(*times));
	double err_p[2] = { t->err_p, t->err_p * reg->err_ratio }, result = -1;
	struct rng r;
	int i, k;

	if (!st || !sh || !times || runs <= 0)
		goto out;
	for (i = 0; i < 4; i++)
		r.s[i] = splitmix64(&seed);
	shape_build(&sh[CANARY_V_STABLE], t->p50_us, t->p99_us, 1);
	shape_build(&sh[CANARY_V_CANARY], t->p50_us, t->p99_us, 1 + reg->lat_increase);
	for (i = 0; i < runs; i++) {
		times[i] = one_step(&r, cfg, t, err_p, sh, max_s, st);
		if (times[i] < 0)
			times[i] = INFINITY; /* not caught: sorts last */
	}
	qsort(times, (size_t)runs, sizeof(*times), cmp_double);
	k = (int)ceil(power * runs) - 1;
	k = k < 0 ? 0 : k >= runs ? runs - 1 : k;
	result = isfinite(times[k]) ? times[k] : -1;
out:
	free(times);
	free(sh);
	free(st);
	return result;
}
