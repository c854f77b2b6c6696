/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A background thread that runs one step after another, and sleeps a little
 * when a step finds nothing to do. The external-metric queries and the
 * health checks run this way, so a slow peer never holds up the tick loop.
 */
#ifndef CANARY_WORKER_H
#define CANARY_WORKER_H

#include <stdbool.h>

/* One unit of work; false when there was nothing to do (the worker then sleeps). */
typedef bool (*worker_step_fn)(void *arg);

struct worker;

int worker_start(worker_step_fn step, void *arg, long idle_ms, struct worker **out);
/* Stop after the step in progress and join the thread. */
void worker_stop(struct worker *w);

#endif /* CANARY_WORKER_H */
