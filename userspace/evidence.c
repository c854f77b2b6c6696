// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"

/* Bumped whenever struct canary_metrics or the saved fields change meaning. */
#define EVIDENCE_FORMAT 2
#define METRICS_WORDS	(sizeof(struct canary_metrics) / sizeof(__u64))

/* The analysis the evidence was gathered for: other settings, other meaning. */
static __u64 analysis_fingerprint(const struct analysis_cfg *cfg)
{
	const unsigned char *p = (const unsigned char *)cfg;
	__u64 h = 14695981039346656037ULL;
	size_t i;

	/* Configs are zeroed before parsing, so padding is zero too. */
	for (i = 0; i < sizeof(*cfg); i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int n_metrics(const struct analysis_cfg *cfg)
{
	return cfg->n_metrics < ANALYSIS_MAX_VERDICTS ? cfg->n_metrics : ANALYSIS_MAX_VERDICTS;
}

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

static json_t *numbers_json(const double *v, size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_real(v[i]));
	return arr;
}

/* Per metric: failures, windows, comparison state, gate window starts and counts. */
static json_t *per_metric_json(const struct analysis_state *st, int i, __u64 mono_ms, __s64 wall_ms)
{
	double nums[] = { st->failures[i],  st->measured[i],   st->inconclusive_run[i],
			  st->crossed[i],   st->crossed_at[i], st->ext_passed[i],
			  st->ext_errors[i] };

	return json_pack("{s:o, s:I, s:o}", "numbers", numbers_json(nums, 7), "gate_start_wall_ms",
			 (json_int_t)(wall_ms - (__s64)(mono_ms - st->gate_start_ms[i])),
			 "gate_base", metrics_json(&st->gate_base[i]));
}

static json_t *dispersions_json(const struct analysis_state *st)
{
	json_t *arr = json_array();
	int v;

	for (v = 0; arr && v < CANARY_V_COUNT; v++) {
		double nums[] = { st->err_disp[v].events,      st->err_disp[v].exposures,
				  st->err_disp[v].sq_per_exp,  st->err_disp[v].ticks,
				  st->lat_disp[v].samples,     st->lat_disp[v].sum,
				  st->lat_disp[v].sum_sq,      st->lat_disp[v].ticks,
				  st->tail_disp[v].events,     st->tail_disp[v].exposures,
				  st->tail_disp[v].sq_per_exp, st->tail_disp[v].ticks };

		json_array_append_new(arr, numbers_json(nums, sizeof(nums) / sizeof(nums[0])));
	}
	return arr;
}

json_t *evidence_to_json(const struct analysis_state *st, const struct analysis_cfg *cfg,
			 __u64 mono_ms, __s64 wall_ms)
{
	json_t *metrics = json_array();
	char fp[24];
	int i;

	for (i = 0; metrics && i < n_metrics(cfg); i++)
		json_array_append_new(metrics, per_metric_json(st, i, mono_ms, wall_ms));
	snprintf(fp, sizeof(fp), "%016llx", (unsigned long long)analysis_fingerprint(cfg));
	return json_pack("{s:i, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "format", EVIDENCE_FORMAT,
			 "analysis", fp, "started_wall_ms",
			 (json_int_t)(wall_ms - (__s64)(mono_ms - st->started_ms)), "base",
			 versions_json(st->base), "last_tick", versions_json(st->prev), "metrics",
			 metrics, "err_llr", numbers_json(st->err_llr, ANALYSIS_ERR_GRID),
			 "tail_llr", numbers_json(st->tail_llr, ANALYSIS_ERR_GRID), "dispersion",
			 dispersions_json(st));
}

/* An array of exactly n numbers. */
static int read_numbers(json_t *arr, size_t n, double *out)
{
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) != n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		json_t *v = json_array_get(arr, i);

		if (!json_is_number(v))
			return -EINVAL;
		out[i] = json_number_value(v);
	}
	return 0;
}

static int read_metrics(json_t *arr, struct canary_metrics *m)
{
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

	if (!json_is_object(v) || read_metrics(json_object_get(v, "stable"), &m[CANARY_V_STABLE]))
		return -EINVAL;
	return read_metrics(json_object_get(v, "canary"), &m[CANARY_V_CANARY]);
}

/* A count, within __u32. */
static __u32 count_of(double v)
{
	return v > 0 && v < 4294967295.0 ? (__u32)v : 0;
}

static int read_metric(json_t *obj, struct analysis_state *st, int i, __u64 mono_ms, __s64 wall_ms)
{
	json_int_t start = 0;
	double nums[7];
	__s64 age;

	if (!json_is_object(obj) || read_numbers(json_object_get(obj, "numbers"), 7, nums) ||
	    json_unpack(obj, "{s:I}", "gate_start_wall_ms", &start) ||
	    read_metrics(json_object_get(obj, "gate_base"), &st->gate_base[i]))
		return -EINVAL;
	st->failures[i] = count_of(nums[0]);
	st->measured[i] = count_of(nums[1]);
	st->inconclusive_run[i] = count_of(nums[2]);
	st->crossed[i] = nums[3] != 0;
	st->crossed_at[i] = nums[4];
	st->ext_passed[i] = nums[5] != 0;
	st->ext_errors[i] = count_of(nums[6]);
	/* The window keeps its age: what the kernel counted meanwhile is in it. */
	age = wall_ms > start ? wall_ms - start : 0;
	st->gate_start_ms[i] = mono_ms > (__u64)age ? mono_ms - (__u64)age : 0;
	return 0;
}

static int read_dispersions(json_t *arr, struct analysis_state *st)
{
	double n[12];
	int v;

	if (!json_is_array(arr) || json_array_size(arr) != CANARY_V_COUNT)
		return -EINVAL;
	for (v = 0; v < CANARY_V_COUNT; v++) {
		if (read_numbers(json_array_get(arr, (size_t)v), 12, n))
			return -EINVAL;
		st->err_disp[v] = (struct count_dispersion){ n[0], n[1], n[2], count_of(n[3]) };
		st->lat_disp[v] = (struct placement_dispersion){ n[4], n[5], n[6], count_of(n[7]) };
		st->tail_disp[v] = (struct count_dispersion){ n[8], n[9], n[10], count_of(n[11]) };
	}
	return 0;
}

static int read_evidence(json_t *obj, const struct analysis_cfg *cfg, struct analysis_state *st,
			 __u64 mono_ms, __s64 wall_ms)
{
	json_t *metrics = json_object_get(obj, "metrics");
	const char *fp = NULL;
	json_int_t format = 0;
	char want[24];
	int i, err;

	snprintf(want, sizeof(want), "%016llx", (unsigned long long)analysis_fingerprint(cfg));
	if (json_unpack(obj, "{s:I, s:s}", "format", &format, "analysis", &fp) ||
	    format != EVIDENCE_FORMAT || strcmp(fp, want) != 0 || !json_is_array(metrics) ||
	    json_array_size(metrics) != (size_t)n_metrics(cfg))
		return -EINVAL;
	err = read_versions(obj, "base", st->base);
	if (!err)
		err = read_versions(obj, "last_tick", st->prev);
	for (i = 0; !err && i < n_metrics(cfg); i++)
		err = read_metric(json_array_get(metrics, (size_t)i), st, i, mono_ms, wall_ms);
	if (!err)
		err = read_numbers(json_object_get(obj, "err_llr"), ANALYSIS_ERR_GRID, st->err_llr);
	if (!err)
		err = read_numbers(json_object_get(obj, "tail_llr"), ANALYSIS_ERR_GRID,
				   st->tail_llr);
	if (!err)
		err = read_dispersions(json_object_get(obj, "dispersion"), st);
	return err;
}

int evidence_from_json(json_t *obj, struct analysis_state *st, const struct analysis_cfg *cfg,
		       __u64 mono_ms, __s64 wall_ms)
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
	err = read_evidence(obj, cfg, tmp, mono_ms, wall_ms);
	if (!err) {
		/* The step began that long ago on the wall clock; keep its age. */
		age = wall_ms > started ? wall_ms - started : 0;
		tmp->started_ms = mono_ms > (__u64)age ? mono_ms - (__u64)age : 0;
		*st = *tmp;
	}
	free(tmp);
	return err;
}
