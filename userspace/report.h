/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The JSON view of a rollout that the API serves and canaryctl shows. Field
 * names are stable and documented in docs/api.md.
 */
#ifndef CANARY_REPORT_H
#define CANARY_REPORT_H

#include <jansson.h>

#include "analysis.h"
#include "config.h"
#include "rollout.h"

/* Counters 5..10 s ago, for the recent rates operators see. */
struct rate_window {
	struct canary_metrics prev[CANARY_V_COUNT];
	struct canary_metrics base[CANARY_V_COUNT];
	__u64 prev_ms;
	__u64 base_ms;
};

/* Take the counters now (monotonic ms) as the new base, every 5 s at most. */
void rate_window_roll(struct rate_window *w, const struct canary_metrics now[CANARY_V_COUNT],
		      __u64 now_ms);
/*
 * The service's requests per second over the last 5..10 s, both versions
 * (new connections for a service without HTTP requests).
 */
double rate_window_rps(const struct rate_window *w, const struct canary_metrics now[CANARY_V_COUNT],
		       __u64 now_ms);

/*
 * What the report and /metrics may read of one rollout: pointers into the
 * agent's rollout, valid while the agent's lock is held (agent_each_rollout).
 * Nothing here writes back into the agent.
 */
struct rollout_view {
	const struct rollout_cfg *cfg;
	const struct rollout_state *st;
	const struct analysis_state *an;
	const struct rate_window *rates;
	enum analysis_decision decision; /* of the last tick */
	const struct verdict *abort_verdicts;
	int n_abort_verdicts;
	double service_rps;
	bool at_peak;
	bool kill_switch; /* as read at the last tick */
	/* Verdicts evaluated, by metric and result. */
	const __u64 (*verdict_counts)[VERDICT_INCONCLUSIVE + 1];
};

/*
 * r with the counters read now (cumulative), at now_ms (monotonic) and
 * wall_ms (for the pause time left).
 */
json_t *report_rollout(const struct rollout_view *r,
		       const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms,
		       __s64 wall_ms);
json_t *report_verdict(const struct verdict *v);
/* The steps of a rollout as written in the config: [{"setWeight": 10}, {"pause": {...}}]. */
json_t *report_steps(const struct rollout_cfg *cfg);

#endif /* CANARY_REPORT_H */
