// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Metric kinds and success conditions at run time (metric_kind.h): no YAML
 * here, so a program that only prints or judges metrics does not link the
 * parser.
 */
#include <stdbool.h>
#include <stdio.h>

#include "metric_kind.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *const metric_kind_names[METRIC_KIND_COUNT] = {
	[METRIC_ERROR_RATE] = "errorRate",
	[METRIC_RESET_RATE] = "resetRate",
	[METRIC_LATENCY_P50] = "latencyP50",
	[METRIC_LATENCY_P95] = "latencyP95",
	[METRIC_LATENCY_P99] = "latencyP99",
	[METRIC_COMPARE_ERROR_RATE] = "compareErrorRate",
	[METRIC_COMPARE_LATENCY] = "compareLatency",
	[METRIC_COMPARE_LATENCY_TAIL] = "compareLatencyTail",
	[METRIC_PROMETHEUS] = "prometheus",
	[METRIC_WEBHOOK] = "webhook",
};

const struct cond_op_text cond_op_texts[] = {
	{ "<=", COND_LE }, { ">=", COND_GE }, { "==", COND_EQ },
	{ "!=", COND_NE }, { "<", COND_LT },  { ">", COND_GT },
};
const size_t cond_op_count = ARRAY_SIZE(cond_op_texts);

const char *metric_kind_name(enum metric_kind kind)
{
	return (unsigned int)kind < METRIC_KIND_COUNT ? metric_kind_names[kind] : "unknown";
}

bool metric_condition_holds(const struct metric_cfg *m, double v)
{
	switch (m->cond_op) {
	case COND_LT:
		return v < m->cond_value;
	case COND_LE:
		return v <= m->cond_value;
	case COND_GT:
		return v > m->cond_value;
	case COND_GE:
		return v >= m->cond_value;
	case COND_EQ:
		return v == m->cond_value;
	case COND_NE:
		return v != m->cond_value;
	}
	return false;
}

void metric_condition_format(const struct metric_cfg *m, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < cond_op_count; i++)
		if (cond_op_texts[i].op == m->cond_op)
			break;
	snprintf(buf, len, "result %s %g", i < cond_op_count ? cond_op_texts[i].text : "?",
		 m->cond_value);
}
