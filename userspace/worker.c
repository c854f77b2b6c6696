// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "worker.h"

struct worker {
	worker_step_fn step;
	void *arg;
	long idle_ms;
	pthread_t thread;
	atomic_bool stop;
};

static void *run(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&w->stop)) {
		struct timespec ts = { .tv_sec = w->idle_ms / 1000,
				       .tv_nsec = (w->idle_ms % 1000) * 1000000L };

		if (!w->step(w->arg))
			nanosleep(&ts, NULL);
	}
	return NULL;
}

int worker_start(worker_step_fn step, void *arg, long idle_ms, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	w->step = step;
	w->arg = arg;
	w->idle_ms = idle_ms;
	atomic_init(&w->stop, false);
	err = pthread_create(&w->thread, NULL, run, w);
	if (err) {
		free(w);
		return -err;
	}
	*out = w;
	return 0;
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL); /* at most one step away */
	free(w);
}
