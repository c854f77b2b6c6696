// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stddef.h>

#include "canary_hist.h"
#include "stats.h"

double stats_latency_quantile_us(const struct canary_metrics *m, double q)
{
	__u64 total = 0, cum = 0;
	double rank;
	__u32 i;

	for (i = 0; i < CANARY_HIST_BUCKETS; i++)
		total += m->latency_hist[i];
	if (total == 0 || q <= 0 || q > 1)
		return -1;
	rank = q * (double)total;
	for (i = 0; i < CANARY_HIST_BUCKETS; i++) {
		__u64 n = m->latency_hist[i];

		if (n && (double)(cum + n) >= rank) {
			double frac = (rank - (double)cum) / (double)n;

			if (i == CANARY_HIST_BUCKETS - 1)
				return (double)canary_hist_lower(i); /* open-ended */
			return (double)canary_hist_lower(i) + frac * (double)canary_hist_width(i);
		}
		cum += n;
	}
	return (double)canary_hist_lower(CANARY_HIST_BUCKETS - 1);
}

void stats_delta(const struct canary_metrics *cur, const struct canary_metrics *prev,
		 struct canary_metrics *out)
{
	const __u64 *c = (const __u64 *)cur, *p = (const __u64 *)prev;
	__u64 *o = (__u64 *)out;
	size_t i;

	/* Counters only grow; a reset (new service id) reads as the new value. */
	for (i = 0; i < sizeof(*out) / sizeof(__u64); i++)
		o[i] = c[i] >= p[i] ? c[i] - p[i] : c[i];
}

__u64 stats_responses(const struct canary_metrics *m)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < CANARY_STATUS_CLASSES; i++)
		n += m->responses[i];
	return n;
}
