/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Active TCP checks of the stable endpoints (spec.healthCheck), in a worker
 * thread: a check connects and closes, nothing more.
 */
#ifndef CANARY_HEALTHCHECK_H
#define CANARY_HEALTHCHECK_H

#include <stdbool.h>

#include "agent.h"
#include "worker.h"

int health_start(struct agent *a, struct worker **out);

/* Connect to every endpoint at once; ok[i] when endpoint i accepted within timeout_ms. */
void health_probe(const struct canary_backend *endpoints, int n, __s64 timeout_ms, bool *ok);

#endif /* CANARY_HEALTHCHECK_H */
