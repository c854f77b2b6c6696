// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "external.h"
#include "promquery.h"

/* How often the worker looks for a query that is due. */
#define POLL_MS 100

struct external_worker {
	struct agent *agent;
	pthread_t thread;
	atomic_bool stop;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *run(void *arg)
{
	struct external_worker *w = arg;
	struct external_job job;

	while (!atomic_load(&w->stop)) {
		char err[256] = "";
		double value = 0;
		int rc;

		if (!agent_external_next(w->agent, &job)) {
			sleep_ms(POLL_MS);
			continue;
		}
		rc = promquery(job.address, job.query, &value, err, sizeof(err));
		agent_external_result(w->agent, &job, rc == 0, value, err);
	}
	return NULL;
}

int external_start(struct agent *a, struct external_worker **out)
{
	struct external_worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	w->agent = a;
	atomic_init(&w->stop, false);
	err = pthread_create(&w->thread, NULL, run, w);
	if (err) {
		free(w);
		return -err;
	}
	*out = w;
	return 0;
}

void external_stop(struct external_worker *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL); /* at most one query's timeout away */
	free(w);
}
