/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The analysis evidence of a step, saved with the rollout's state so that a
 * restarted agent judges what the kernel counted while it was down instead
 * of starting the step over. What is kept is counts, not only statistics:
 * the kernel counters at the step's start (base), at each open gate
 * window's start and at the last tick, so that evidence can also be summed
 * across nodes; plus the per-metric failures and the comparisons' running
 * statistics (likelihood ratios, dispersion sums).
 */
#ifndef CANARY_EVIDENCE_H
#define CANARY_EVIDENCE_H

#include <jansson.h>
#include <linux/types.h>

#include "analysis.h"

/*
 * The evidence as JSON, for the analysis cfg it was gathered under; mono_ms
 * and wall_ms: now, on both clocks. NULL on ENOMEM.
 */
json_t *evidence_to_json(const struct analysis_state *st, const struct analysis_cfg *cfg,
			 __u64 mono_ms, __s64 wall_ms);

/*
 * Restore st from obj (counters the kernel counted meanwhile are judged on
 * the next tick; gate windows keep their age, so the next tick closes them
 * over the downtime). Returns 0, or -EINVAL (st untouched) for evidence that
 * does not fit this build or was gathered under another analysis cfg: then
 * the caller starts the step's analysis afresh.
 */
int evidence_from_json(json_t *obj, struct analysis_state *st, const struct analysis_cfg *cfg,
		       __u64 mono_ms, __s64 wall_ms);

#endif /* CANARY_EVIDENCE_H */
