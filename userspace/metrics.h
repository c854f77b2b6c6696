/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * GET /metrics: Prometheus text exposition format 0.0.4. Every name is
 * listed in docs/metrics.md.
 */
#ifndef CANARY_METRICS_H
#define CANARY_METRICS_H

#include <stddef.h>

#include "agent.h"

/* The exposition text, malloc'ed; *len is its length. NULL when out of memory. */
char *metrics_render(struct agent *a, size_t *len);

/*
 * Samples at or below le_us, from the kernel's log-linear histogram, with
 * a kernel bucket that straddles le_us counted in proportion.
 */
double metrics_hist_cumulative(const struct canary_metrics *m, double le_us);

#endif /* CANARY_METRICS_H */
