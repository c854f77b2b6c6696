/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * External metrics (Prometheus queries) run in a worker thread: a slow or
 * unreachable Prometheus can hold up its own results, never the tick loop.
 */
#ifndef CANARY_EXTERNAL_H
#define CANARY_EXTERNAL_H

#include "agent.h"
#include "worker.h"

int external_start(struct agent *a, struct worker **out);

#endif /* CANARY_EXTERNAL_H */
