/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The JSON view of a rollout that the API serves and canaryctl shows. Field
 * names are stable and documented in docs/api.md.
 */
#ifndef CANARY_REPORT_H
#define CANARY_REPORT_H

#include <jansson.h>

#include "agent.h"

/*
 * r with the counters read now (cumulative), at now_ms (monotonic) and
 * wall_ms (for the pause time left).
 */
json_t *report_rollout(const struct agent_rollout *r,
		       const struct canary_metrics now[CANARY_V_COUNT], __u64 now_ms,
		       __s64 wall_ms);
json_t *report_verdict(const struct verdict *v);
/* The steps of a rollout as written in the config: [{"setWeight": 10}, {"pause": {...}}]. */
json_t *report_steps(const struct rollout_cfg *cfg);

#endif /* CANARY_REPORT_H */
