// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"

/* Bumped whenever struct canary_metrics or the saved fields change meaning. */
#define EVIDENCE_FORMAT 1
#define METRICS_WORDS	(sizeof(struct canary_metrics) / sizeof(__u64))

static json_t *metrics_json(const struct canary_metrics *m)
{
	const __u64 *w = (const __u64 *)m;
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < METRICS_WORDS; i++)
		json_array_append_new(arr, json_integer((json_int_t)w[i]));
	return arr;
}

static json_t *versions_json(const struct canary_metrics m[CANARY_V_COUNT])
{
	return json_pack("{s:o, s:o}", "stable", metrics_json(&m[CANARY_V_STABLE]), "canary",
			 metrics_json(&m[CANARY_V_CANARY]));
}

static json_t *u32s_json(const __u32 *v, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_integer(v[i]));
	return arr;
}

static json_t *doubles_json(const double *v, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_real(v[i]));
	return arr;
}

static json_t *bools_json(const bool *v, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_boolean(v[i]));
	return arr;
}

json_t *evidence_to_json(const struct analysis_state *st, __u64 mono_ms, __s64 wall_ms)
{
	return json_pack("{s:i, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "format",
			 EVIDENCE_FORMAT, "started_wall_ms",
			 (json_int_t)(wall_ms - (__s64)(mono_ms - st->started_ms)), "base",
			 versions_json(st->base), "window_base", versions_json(st->window_base),
			 "last_tick", versions_json(st->prev), "failures",
			 u32s_json(st->failures, ANALYSIS_MAX_VERDICTS), "measured",
			 u32s_json(st->measured, ANALYSIS_MAX_VERDICTS), "inconclusive_run",
			 u32s_json(st->inconclusive_run, ANALYSIS_MAX_VERDICTS), "err_llr",
			 doubles_json(st->err_llr, ANALYSIS_ERR_GRID), "crossed",
			 bools_json(st->crossed, ANALYSIS_MAX_VERDICTS), "crossed_at",
			 doubles_json(st->crossed_at, ANALYSIS_MAX_VERDICTS), "ext_passed",
			 bools_json(st->ext_passed, ANALYSIS_MAX_VERDICTS));
}

/* An array of exactly n numbers (integers, or reals when real). */
static int read_numbers(json_t *arr, size_t n, bool real, double *out)
{
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) != n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);

		if (real ? !json_is_number(v) : !json_is_integer(v))
			return -EINVAL;
		out[i] = json_number_value(v);
	}
	return 0;
}

static int read_metrics(json_t *obj, const char *version, struct canary_metrics *m)
{
	json_t *arr = json_object_get(obj, version);
	__u64 *w = (__u64 *)m;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) != METRICS_WORDS)
		return -EINVAL;
	for (i = 0; i < METRICS_WORDS; i++) {
		json_t *v = json_array_get(arr, i);

		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -EINVAL;
		w[i] = (__u64)json_integer_value(v);
	}
	return 0;
}

static int read_versions(json_t *obj, const char *key, struct canary_metrics m[CANARY_V_COUNT])
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_object(v) || read_metrics(v, "stable", &m[CANARY_V_STABLE]))
		return -EINVAL;
	return read_metrics(v, "canary", &m[CANARY_V_CANARY]);
}

static int read_u32s(json_t *obj, const char *key, __u32 *out)
{
	double v[ANALYSIS_MAX_VERDICTS];
	int i, err = read_numbers(json_object_get(obj, key), ANALYSIS_MAX_VERDICTS, false, v);

	for (i = 0; !err && i < ANALYSIS_MAX_VERDICTS; i++) {
		if (v[i] < 0 || v[i] > 4294967295.0)
			return -EINVAL;
		out[i] = (__u32)v[i];
	}
	return err;
}

static int read_bools(json_t *obj, const char *key, bool *out)
{
	json_t *arr = json_object_get(obj, key);
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) != ANALYSIS_MAX_VERDICTS)
		return -EINVAL;
	for (i = 0; i < ANALYSIS_MAX_VERDICTS; i++) {
		if (!json_is_boolean(json_array_get(arr, i)))
			return -EINVAL;
		out[i] = json_is_true(json_array_get(arr, i));
	}
	return 0;
}

static int read_evidence(json_t *obj, struct analysis_state *st)
{
	json_int_t format = 0;
	int err;

	if (json_unpack(obj, "{s:I}", "format", &format) || format != EVIDENCE_FORMAT)
		return -EINVAL;
	err = read_versions(obj, "base", st->base);
	if (!err)
		err = read_versions(obj, "window_base", st->window_base);
	if (!err)
		err = read_versions(obj, "last_tick", st->prev);
	if (!err)
		err = read_u32s(obj, "failures", st->failures);
	if (!err)
		err = read_u32s(obj, "measured", st->measured);
	if (!err)
		err = read_u32s(obj, "inconclusive_run", st->inconclusive_run);
	if (!err)
		err = read_numbers(json_object_get(obj, "err_llr"), ANALYSIS_ERR_GRID, true,
				   st->err_llr);
	if (!err)
		err = read_bools(obj, "crossed", st->crossed);
	if (!err)
		err = read_numbers(json_object_get(obj, "crossed_at"), ANALYSIS_MAX_VERDICTS, true,
				   st->crossed_at);
	if (!err)
		err = read_bools(obj, "ext_passed", st->ext_passed);
	return err;
}

int evidence_from_json(json_t *obj, struct analysis_state *st, __u64 mono_ms, __s64 wall_ms)
{
	struct analysis_state *tmp;
	json_int_t started = 0;
	__s64 age;
	int err;

	if (!json_is_object(obj) || json_unpack(obj, "{s:I}", "started_wall_ms", &started))
		return -EINVAL;
	tmp = calloc(1, sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	err = read_evidence(obj, tmp);
	if (!err) {
		/* The step began that long ago on the wall clock; keep its age. */
		age = wall_ms > started ? wall_ms - started : 0;
		tmp->started_ms = mono_ms > (__u64)age ? mono_ms - (__u64)age : 0;
		/* The open window closes at the next tick: it judges the downtime. */
		tmp->window_start_ms = tmp->started_ms;
		*st = *tmp;
	}
	free(tmp);
	return err;
}
