/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Webhooks that decide, in Flagger's sense: webhook metrics (an HTTP
 * endpoint called every analysis interval; 2xx passes, another status is a
 * failed check, no answer an error) and the pre-promotion hook (asked once
 * every step passed; completion waits for a 2xx). A worker thread of their
 * own calls them, so a slow endpoint never holds up the tick.
 */
#ifndef CANARY_HOOKS_H
#define CANARY_HOOKS_H

#include "agent.h"
#include "worker.h"

int hooks_start(struct agent *a, struct worker **out);

#endif /* CANARY_HOOKS_H */
