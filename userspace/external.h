/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * External metrics (Prometheus queries) run in worker threads: a slow or
 * unreachable Prometheus can hold up its own results, never the tick loop,
 * and, with several workers and never two of one metric's queries at once,
 * not the queries of other rollouts either.
 */
#ifndef CANARY_EXTERNAL_H
#define CANARY_EXTERNAL_H

#include <linux/types.h>

#include "config.h"

struct agent;
struct external;

/* When each of a rollout's external metrics is next queried, monotonic ms. */
struct external_schedule {
	__u64 next_ms[CONFIG_MAX_METRICS];
};

/*
 * The first external metric of an that is due at now (monotonic ms), its
 * next query scheduled an analysis interval later; -1 when none is due.
 */
int external_due(struct external_schedule *s, const struct analysis_cfg *an, __u64 now);

int external_start(struct agent *a, struct external **out);
/* Stops after the queries in progress (each bounded by its timeout). */
void external_stop(struct external *e);

#endif /* CANARY_EXTERNAL_H */
