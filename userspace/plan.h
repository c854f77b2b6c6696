/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A step plan from the traffic a service has (canaryctl plan): how long a
 * step must last for the rollout's own analysis to catch a given regression
 * with a given power. The figures come from simulated steps run through the
 * real analysis code (analysis.c), with seeded random traffic shaped like
 * the measured one: Poisson arrivals, independent errors, lognormal
 * latencies fitted to the measured p50 and p99.
 */
#ifndef CANARY_PLAN_H
#define CANARY_PLAN_H

#include <linux/types.h>

#include "config.h"

struct plan_traffic {
	double rps;	     /* the service's requests per second, both versions */
	double canary_share; /* the step's weight, 0..1 */
	double err_p;	     /* stable's error ratio */
	double p50_us;	     /* stable's latency median */
	double p99_us;	     /* and 99th percentile */
};

struct plan_regression {
	double err_ratio;    /* the canary errs this many times as often (1: no change) */
	double lat_increase; /* the canary is this much slower (0.2: 20%) */
};

/*
 * Seconds within which `power` of `runs` simulated steps with this
 * regression were aborted by the analysis cfg, or -1 when they were not
 * within max_s. Deterministic for a seed.
 */
double plan_detect_time(const struct analysis_cfg *cfg, const struct plan_traffic *t,
			const struct plan_regression *reg, double power, int runs, double max_s,
			__u64 seed);

#endif /* CANARY_PLAN_H */
