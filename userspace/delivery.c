// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"

/*
 * Histogram boundaries in seconds. Rollouts last minutes to hours; a
 * rollback is meant to take well under a second, but a slow one (a
 * Prometheus-only metric, a long interval) takes a minute or more.
 */
static const double duration_bounds_s[] = { 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400 };
static const double rollback_bounds_s[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300 };
#define N_DURATION (sizeof(duration_bounds_s) / sizeof(duration_bounds_s[0]))
#define N_ROLLBACK (sizeof(rollback_bounds_s) / sizeof(rollback_bounds_s[0]))

struct histogram {
	__u64 count;
	double sum;
	__u64 le[N_DURATION > N_ROLLBACK ? N_DURATION : N_ROLLBACK]; /* cumulative per bound */
};

struct delivery_stats {
	char rollout[CANARY_NAME_LEN];
	__u64 outcomes[OUTCOME_COUNT];
	struct histogram duration[OUTCOME_COUNT];
	struct histogram rollback;
	__u64 aborts_at_step[CONFIG_MAX_STEPS + 1];
};

static const char *const outcome_names[OUTCOME_COUNT] = {
	[OUTCOME_PROMOTED] = "promoted",
	[OUTCOME_ABORTED] = "aborted",
	[OUTCOME_SUPERSEDED] = "superseded",
};

const char *delivery_outcome_name(enum delivery_outcome o)
{
	return o < OUTCOME_COUNT ? outcome_names[o] : "unknown";
}

int delivery_init(struct delivery *d, const char *state_dir)
{
	memset(d, 0, sizeof(*d));
	d->state_dir = state_dir;
	return -pthread_mutex_init(&d->lock, NULL);
}

void delivery_destroy(struct delivery *d)
{
	free(d->stats);
	d->stats = NULL;
	d->n_stats = 0;
	pthread_mutex_destroy(&d->lock);
}

static struct delivery_stats *stats_of(struct delivery *d, const char *rollout)
{
	struct delivery_stats *grown;
	size_t i;

	for (i = 0; i < d->n_stats; i++)
		if (!strcmp(d->stats[i].rollout, rollout))
			return &d->stats[i];
	grown = realloc(d->stats, (d->n_stats + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	d->stats = grown;
	memset(&d->stats[d->n_stats], 0, sizeof(d->stats[0]));
	snprintf(d->stats[d->n_stats].rollout, sizeof(d->stats[0].rollout), "%s", rollout);
	return &d->stats[d->n_stats++];
}

static void observe(struct histogram *h, const double *bounds, size_t n, double v)
{
	size_t i;

	h->count++;
	h->sum += v;
	for (i = 0; i < n; i++)
		if (v <= bounds[i])
			h->le[i]++;
}

static void count_record(struct delivery *d, const struct delivery_record *rec)
{
	struct delivery_stats *s = stats_of(d, rec->rollout);

	if (!s)
		return;
	s->outcomes[rec->outcome]++;
	if (rec->started_ms > 0 && rec->ended_ms >= rec->started_ms)
		observe(&s->duration[rec->outcome], duration_bounds_s, N_DURATION,
			(double)(rec->ended_ms - rec->started_ms) / 1000);
	if (rec->outcome != OUTCOME_ABORTED)
		return;
	if (rec->rollback_ms >= 0)
		observe(&s->rollback, rollback_bounds_s, N_ROLLBACK,
			(double)rec->rollback_ms / 1000);
	s->aborts_at_step[rec->step >= 0 && rec->step < CONFIG_MAX_STEPS ? rec->step :
									   CONFIG_MAX_STEPS]++;
}

static json_t *ms_or_null(__s64 ms)
{
	return ms >= 0 ? json_real((double)ms / 1000) : json_null();
}

static json_t *record_json(const struct delivery_record *rec)
{
	__s64 duration = rec->started_ms > 0 && rec->ended_ms >= rec->started_ms ?
				 rec->ended_ms - rec->started_ms :
				 -1;

	return json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:i, s:f, s:s, s:o}", "revision",
			 rec->revision, "outcome", delivery_outcome_name(rec->outcome),
			 "started_ms", (json_int_t)rec->started_ms, "ended_ms",
			 (json_int_t)rec->ended_ms, "duration_s", ms_or_null(duration),
			 "time_to_rollback_s", ms_or_null(rec->rollback_ms), "step", rec->step,
			 "weight", rec->weight_bp / 100.0, "message", rec->message, "verdicts",
			 rec->verdicts ? json_incref(rec->verdicts) : json_array());
}

static int history_path(const struct delivery *d, const char *rollout, const char *suffix,
			char *buf, size_t len)
{
	if (snprintf(buf, len, "%s/%s.history.json%s", d->state_dir, rollout, suffix) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static json_t *load_history(const struct delivery *d, const char *rollout)
{
	char path[PATH_MAX];
	json_t *arr;

	if (history_path(d, rollout, "", path, sizeof(path)))
		return json_array();
	arr = json_load_file(path, 0, NULL);
	if (json_is_array(arr))
		return arr;
	json_decref(arr); /* missing or unreadable: start a new history */
	return json_array();
}

/* Write, fsync, rename: a crash leaves the old history or the new one. */
static int save_history(const struct delivery *d, const char *rollout, json_t *arr)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, err;

	err = history_path(d, rollout, "", path, sizeof(path));
	if (!err)
		err = history_path(d, rollout, ".tmp", tmp, sizeof(tmp));
	if (err)
		return err;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = json_dumpfd(arr, fd, JSON_INDENT(1)) ? -EIO : 0;
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int delivery_record(struct delivery *d, struct delivery_record *rec)
{
	json_t *arr;
	int err;

	pthread_mutex_lock(&d->lock);
	count_record(d, rec);
	arr = load_history(d, rec->rollout);
	err = arr ? json_array_append_new(arr, record_json(rec)) : -ENOMEM;
	while (!err && json_array_size(arr) > DELIVERY_HISTORY_MAX)
		json_array_remove(arr, 0);
	if (!err)
		err = save_history(d, rec->rollout, arr);
	json_decref(arr);
	pthread_mutex_unlock(&d->lock);
	json_decref(rec->verdicts);
	rec->verdicts = NULL;
	return err;
}

json_t *delivery_history(struct delivery *d, const char *rollout)
{
	json_t *arr;

	pthread_mutex_lock(&d->lock);
	arr = load_history(d, rollout);
	pthread_mutex_unlock(&d->lock);
	return arr;
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_histogram(FILE *f, const char *name, const char *labels,
			     const struct histogram *h, const double *bounds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bounds[i],
			(unsigned long long)h->le[i]);
	fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
	fprintf(f, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels,
		(unsigned long long)h->count);
}

static void render_outcomes(FILE *f, const struct delivery *d)
{
	char labels[128];
	size_t i;
	int o;

	family(f, "canaryd_rollouts_total", "counter",
	       "Rollouts ended since the agent started, by outcome.");
	for (i = 0; i < d->n_stats; i++)
		for (o = 0; o < OUTCOME_COUNT; o++)
			fprintf(f, "canaryd_rollouts_total{rollout=\"%s\",outcome=\"%s\"} %llu\n",
				d->stats[i].rollout, outcome_names[o],
				(unsigned long long)d->stats[i].outcomes[o]);
	family(f, "canaryd_rollout_duration_seconds", "histogram",
	       "From a rollout's start to its end, by outcome.");
	for (i = 0; i < d->n_stats; i++) {
		for (o = 0; o < OUTCOME_COUNT; o++) {
			snprintf(labels, sizeof(labels), "rollout=\"%s\",outcome=\"%s\"",
				 d->stats[i].rollout, outcome_names[o]);
			render_histogram(f, "canaryd_rollout_duration_seconds", labels,
					 &d->stats[i].duration[o], duration_bounds_s, N_DURATION);
		}
	}
}

static void render_rollbacks(FILE *f, const struct delivery *d)
{
	char labels[96];
	size_t i;
	int s;

	family(f, "canaryd_rollback_seconds", "histogram",
	       "From the first failing evidence to the canary's weight 0 in the kernel.");
	for (i = 0; i < d->n_stats; i++) {
		snprintf(labels, sizeof(labels), "rollout=\"%s\"", d->stats[i].rollout);
		render_histogram(f, "canaryd_rollback_seconds", labels, &d->stats[i].rollback,
				 rollback_bounds_s, N_ROLLBACK);
	}
	family(f, "canaryd_rollout_aborts_by_step_total", "counter",
	       "Aborts since the agent started, by the step (0-based) they happened at.");
	for (i = 0; i < d->n_stats; i++)
		for (s = 0; s <= CONFIG_MAX_STEPS; s++)
			if (d->stats[i].aborts_at_step[s])
				fprintf(f,
					"canaryd_rollout_aborts_by_step_total{rollout=\"%s\","
					"step=\"%d\"} %llu\n",
					d->stats[i].rollout, s,
					(unsigned long long)d->stats[i].aborts_at_step[s]);
}

void delivery_render(struct delivery *d, FILE *f)
{
	pthread_mutex_lock(&d->lock);
	render_outcomes(f, d);
	render_rollbacks(f, d);
	pthread_mutex_unlock(&d->lock);
}
