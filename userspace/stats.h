/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Numbers derived from the kernel's counters: percentiles, rates. */
#ifndef CANARY_STATS_H
#define CANARY_STATS_H

#include "canary_structs.h"

/*
 * The q-quantile (0 < q <= 1) of the latency histogram in microseconds,
 * interpolated linearly inside its bucket. Negative when there is no sample.
 */
double stats_latency_quantile_us(const struct canary_metrics *m, double q);

/* cur - prev, field by field: the counts of one time window. */
void stats_delta(const struct canary_metrics *cur, const struct canary_metrics *prev,
		 struct canary_metrics *out);

/* Responses of any class. */
__u64 stats_responses(const struct canary_metrics *m);

#endif /* CANARY_STATS_H */
