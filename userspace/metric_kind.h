/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The words of the analysis' metrics: each kind's name as the Rollout
 * schema spells it, and successCondition's operators. The schema reads them
 * (config.c); analysis, the reports and canaryctl print and evaluate them
 * through config.h's metric_kind_name() and metric_condition_*(), defined in
 * metric_kind.c so that none of those needs the YAML parser.
 */
#ifndef CANARY_METRIC_KIND_H
#define CANARY_METRIC_KIND_H

#include <stddef.h>

#include "config.h"

extern const char *const metric_kind_names[METRIC_KIND_COUNT];

struct cond_op_text {
	const char *text;
	enum cond_op op;
};

/* Two-character operators first, so "<=" is not read as "<". */
extern const struct cond_op_text cond_op_texts[];
extern const size_t cond_op_count;

#endif /* CANARY_METRIC_KIND_H */
