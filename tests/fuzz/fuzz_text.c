// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the way outside text reaches JSON: any bytes as a
 * Prometheus query error, through analysis_external() into a verdict's
 * detail and, by an abort, into the rollout's message; and through the
 * utf8text helpers directly. Contracts, each an abort when broken:
 *   - the detail and the message are accepted by jansson (valid UTF-8);
 *   - utf8_repair() output is accepted by jansson, and leaves text jansson
 *     already accepts unchanged;
 *   - utf8_copy() into every smaller buffer gives valid UTF-8 that fits and
 *     is a prefix of the repaired whole: it only ever cuts between characters.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "config.h"
#include "rollout.h"
#include "utf8text.h"

#define MAX_TEXT 1024

static void must_be_json_text(const char *s)
{
	json_t *str = json_string(s);

	if (!str)
		abort();
	json_decref(str);
}

static void check_helpers(const char *text)
{
	static char repaired[MAX_TEXT + 1], cut[MAX_TEXT + 1];
	json_t *orig = json_string(text);
	size_t size, len = strlen(text);

	memcpy(repaired, text, len + 1);
	utf8_repair(repaired);
	must_be_json_text(repaired);
	if (orig && strcmp(repaired, text) != 0)
		abort();
	json_decref(orig);
	for (size = 1; size <= len + 1; size++) {
		utf8_copy(cut, size, text);
		must_be_json_text(cut);
		if (strlen(cut) >= size || strncmp(cut, repaired, strlen(cut)) != 0)
			abort();
	}
}

/* The path the issue was found on: a query error, then the abort it causes. */
static void check_analysis_path(const char *text)
{
	static struct analysis_state an;
	static struct rollout_state st;
	struct rollout_cfg cfg = { .name = "web", .n_steps = 1 };
	struct canary_metrics now[CANARY_V_COUNT] = { 0 };
	struct metric_cfg *m = &cfg.analysis.metrics[0];
	struct rollout_effects fx;

	cfg.steps[0] = (struct step_cfg){ .kind = STEP_SET_WEIGHT, .weight_bp = 1000 };
	cfg.analysis.n_metrics = 1;
	m->kind = METRIC_PROMETHEUS;
	m->consecutive_error_limit = 0;
	analysis_restart(&an, now, 0);
	analysis_external(&an, &cfg.analysis, 0, false, 0, text);
	must_be_json_text(an.last[0].detail);
	rollout_init(&st, &cfg);
	rollout_tick(&st, &cfg, ANALYSIS_FAIL, an.last[0].detail, 1000, &fx);
	must_be_json_text(st.message);
	rollout_init(&st, &cfg);
	rollout_tick(&st, &cfg, ANALYSIS_FAIL, text, 1000, &fx);
	must_be_json_text(st.message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[MAX_TEXT + 1];

	if (size > MAX_TEXT)
		size = MAX_TEXT;
	memcpy(text, data, size);
	text[size] = '\0'; /* C strings: the text ends at its first NUL */
	check_helpers(text);
	check_analysis_path(text);
	return 0;
}
