/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * External metrics (Prometheus queries) run in worker threads: a slow or
 * unreachable Prometheus can hold up its own results, never the tick loop,
 * and, with several workers and never two of one metric's queries at once,
 * not the queries of other rollouts either.
 */
#ifndef CANARY_EXTERNAL_H
#define CANARY_EXTERNAL_H

#include "agent.h"

struct external;

int external_start(struct agent *a, struct external **out);
/* Stops after the queries in progress (each bounded by its timeout). */
void external_stop(struct external *e);

#endif /* CANARY_EXTERNAL_H */
