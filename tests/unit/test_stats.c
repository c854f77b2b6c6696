// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The latency histogram layout and the percentiles read out of it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "canary_hist.h"
#include "stats.h"

/* Every value lands in the bucket whose [lower, lower + width) holds it. */
static void test_bucket_bounds(void **state)
{
	__u64 v;
	__u32 idx, prev = 0;

	(void)state;
	for (v = 0; v < (1ULL << CANARY_HIST_MAX_EXP); v += 1 + v / 97) {
		idx = canary_hist_bucket(v);
		assert_true(idx < CANARY_HIST_BUCKETS);
		assert_true(idx >= prev); /* monotonic */
		assert_true(canary_hist_lower(idx) <= v);
		assert_true(v < canary_hist_lower(idx) + canary_hist_width(idx));
		prev = idx;
	}
	assert_int_equal(canary_hist_bucket(1ULL << CANARY_HIST_MAX_EXP), CANARY_HIST_BUCKETS - 1);
	assert_int_equal(canary_hist_bucket(~0ULL), CANARY_HIST_BUCKETS - 1);
}

/* Bucket edges are contiguous: no gap, no overlap. */
static void test_bucket_contiguous(void **state)
{
	__u32 i;

	(void)state;
	for (i = 0; i + 1 < CANARY_HIST_BUCKETS; i++)
		assert_int_equal(canary_hist_lower(i) + canary_hist_width(i),
				 canary_hist_lower(i + 1));
}

/* The relative width of a bucket above the linear range is at most 1/16. */
static void test_bucket_resolution(void **state)
{
	__u32 i;

	(void)state;
	for (i = CANARY_HIST_SUB; i < CANARY_HIST_BUCKETS; i++)
		assert_true((double)canary_hist_width(i) / (double)canary_hist_lower(i) <=
			    1.0 / CANARY_HIST_SUB + 1e-12);
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* Percentiles from the histogram are within 5% of the exact ones. */
static void check_quantiles(__u64 *samples, size_t n)
{
	static const double qs[] = { 0.5, 0.9, 0.95, 0.99 };
	struct canary_metrics *m = calloc(1, sizeof(*m));
	size_t i;

	assert_non_null(m);
	for (i = 0; i < n; i++)
		m->latency_hist[canary_hist_bucket(samples[i])]++;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double exact = (double)samples[(size_t)ceil(qs[i] * n) - 1];
		double est = stats_latency_quantile_us(m, qs[i]);

		assert_true(fabs(est - exact) <= 0.05 * exact + 1.0);
	}
	free(m);
}

static void test_quantiles_lognormal(void **state)
{
	enum { N = 100000 };
	__u64 *s = malloc(N * sizeof(*s));
	unsigned int seed = 42;
	size_t i;

	(void)state;
	assert_non_null(s);
	/* Log-uniform over 50 us .. 2 s: every octave of the range is exercised. */
	for (i = 0; i < N; i++) {
		double u = (double)rand_r(&seed) / RAND_MAX;

		s[i] = (__u64)(50.0 * pow(40000.0, u));
	}
	check_quantiles(s, N);
	free(s);
}

static void test_quantiles_bimodal(void **state)
{
	enum { N = 20000 };
	__u64 *s = malloc(N * sizeof(*s));
	unsigned int seed = 7;
	size_t i;

	(void)state;
	assert_non_null(s);
	/* 97% fast (~300 us), 3% slow (~150 ms): p99 must find the slow mode. */
	for (i = 0; i < N; i++)
		s[i] = (i % 100 < 97) ? 250 + rand_r(&seed) % 100 : 150000 + rand_r(&seed) % 5000;
	check_quantiles(s, N);
	free(s);
}

static void test_quantile_empty_and_delta(void **state)
{
	struct canary_metrics *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)),
			      *d = calloc(1, sizeof(*d));

	(void)state;
	assert_true(a && b && d);
	assert_true(stats_latency_quantile_us(a, 0.5) < 0);
	a->requests = 10;
	a->responses[5] = 3;
	a->responses[2] = 7;
	b->requests = 25;
	b->responses[5] = 4;
	b->responses[2] = 21;
	stats_delta(b, a, d);
	assert_int_equal(d->requests, 15);
	assert_int_equal(d->responses[5], 1);
	assert_int_equal(stats_responses(d), 15);
	free(a);
	free(b);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_bounds),
		cmocka_unit_test(test_bucket_contiguous),
		cmocka_unit_test(test_bucket_resolution),
		cmocka_unit_test(test_quantiles_lognormal),
		cmocka_unit_test(test_quantiles_bimodal),
		cmocka_unit_test(test_quantile_empty_and_delta),
	};

	return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
