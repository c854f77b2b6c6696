// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "external.h"
#include "promquery.h"
#include "worker.h"

/* How long a worker rests when no query is due. */
#define IDLE_MS 100
/*
 * Queries run side by side: a Prometheus that accepts connections and never
 * answers holds one worker for PROMQUERY_TIMEOUT_MS per metric, and the
 * others go on serving every other rollout.
 */
#define EXTERNAL_WORKERS 4

struct external {
	struct agent *agent;
	pthread_mutex_t lock;
	/* The metric each worker is querying, so that no two query the same one. */
	struct external_job busy[EXTERNAL_WORKERS];
	bool busy_used[EXTERNAL_WORKERS];
	struct worker *workers[EXTERNAL_WORKERS];
};

static bool same_metric(const struct external_job *a, const struct external_job *b)
{
	return a->metric == b->metric && !strcmp(a->rollout, b->rollout);
}

/*
 * One Prometheus address never holds every worker: a black-holed server
 * queried by many rollouts leaves one worker to the other servers.
 */
#define PER_ADDRESS_MAX (EXTERNAL_WORKERS - 1)

/*
 * Claim job's metric; -1 if another worker is still querying it (a black
 * hole: its next query waits for the one in flight, the job is dropped),
 * or if its address already has PER_ADDRESS_MAX queries in flight (the
 * job is dropped too: the metric is queried again an interval later).
 */
static int claim(struct external *e, const struct external_job *job)
{
	int i, slot = -1, same_address = 0;

	pthread_mutex_lock(&e->lock);
	for (i = 0; i < EXTERNAL_WORKERS; i++) {
		if (e->busy_used[i] && same_metric(&e->busy[i], job)) {
			slot = -1;
			break;
		}
		if (e->busy_used[i] && !strcmp(e->busy[i].address, job->address))
			same_address++;
		if (!e->busy_used[i] && slot < 0)
			slot = i;
	}
	if (same_address >= PER_ADDRESS_MAX)
		slot = -1;
	if (slot >= 0) {
		e->busy[slot] = *job;
		e->busy_used[slot] = true;
	}
	pthread_mutex_unlock(&e->lock);
	return slot;
}

static void release(struct external *e, int slot)
{
	pthread_mutex_lock(&e->lock);
	e->busy_used[slot] = false;
	pthread_mutex_unlock(&e->lock);
}

/* Run the next due query, if any, and hand its result to the rollout. */
static bool external_step(void *arg)
{
	struct external *e = arg;
	struct external_job job;
	char err[256] = "";
	double value = 0;
	int rc, slot;

	if (!agent_external_next(e->agent, &job))
		return false;
	slot = claim(e, &job);
	if (slot < 0)
		return true;
	rc = promquery(job.address, &job.auth, job.query, &value, err, sizeof(err));
	agent_external_result(e->agent, &job, rc == 0, value, err);
	release(e, slot);
	return true;
}

int external_start(struct agent *a, struct external **out)
{
	struct external *e = calloc(1, sizeof(*e));
	int i, err = 0;

	if (!e)
		return -ENOMEM;
	e->agent = a;
	pthread_mutex_init(&e->lock, NULL);
	for (i = 0; i < EXTERNAL_WORKERS && !err; i++)
		err = worker_start(external_step, e, IDLE_MS, &e->workers[i]);
	if (err) {
		external_stop(e);
		return err;
	}
	*out = e;
	return 0;
}

void external_stop(struct external *e)
{
	int i;

	if (!e)
		return;
	for (i = 0; i < EXTERNAL_WORKERS; i++)
		worker_stop(e->workers[i]);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

int external_due(struct external_schedule *s, const struct analysis_cfg *an, __u64 now)
{
	int m;

	for (m = 0; m < an->n_metrics && m < CONFIG_MAX_METRICS; m++) {
		if (an->metrics[m].kind != METRIC_PROMETHEUS || s->next_ms[m] > now)
			continue;
		s->next_ms[m] = now + (__u64)(an->interval_ms > 0 ? an->interval_ms : 1000);
		return m;
	}
	return -1;
}
