/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Active TCP checks of the stable endpoints (spec.healthCheck), in a worker
 * thread: a check connects and closes, nothing more.
 */
#ifndef CANARY_HEALTHCHECK_H
#define CANARY_HEALTHCHECK_H

#include <stdbool.h>

#include "canary_structs.h"
#include "config.h"

struct agent;
struct worker;

/* One rollout's view of its stable endpoints, from the checks. */
struct health_state {
	__u64 next_ms;			    /* when the next check is due, monotonic ms */
	__u8 failures[CANARY_MAX_BACKENDS]; /* failed checks in a row */
	bool down[CANARY_MAX_BACKENDS];	    /* left out of new connections */
};

int health_start(struct agent *a, struct worker **out);

/* Is a check due at now (monotonic ms)? If so, the next one is scheduled. */
bool health_due(struct health_state *h, const struct health_cfg *cfg, __u64 now);
/* Count one check of endpoint i; true when its up/down state changed. */
bool health_update(struct health_state *h, const struct health_cfg *cfg, int i, bool ok);
/* A new stable set: what was known of the old one's endpoints is moot. */
void health_forget(struct health_state *h);
/* Carry what is known of the endpoints over to a reloaded rollout (same endpoints). */
void health_keep(struct health_state *h, const struct health_state *old);

/* Connect to every endpoint at once; ok[i] when endpoint i accepted within timeout_ms. */
void health_probe(const struct canary_backend *endpoints, int n, __s64 timeout_ms, bool *ok);

#endif /* CANARY_HEALTHCHECK_H */
