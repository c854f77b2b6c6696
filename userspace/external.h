/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * External metrics (Prometheus queries) run in a thread of their own: a
 * slow or unreachable Prometheus can hold up its own results, never the
 * tick loop.
 */
#ifndef CANARY_EXTERNAL_H
#define CANARY_EXTERNAL_H

#include "agent.h"

struct external_worker;

int external_start(struct agent *a, struct external_worker **out);
void external_stop(struct external_worker *w);

#endif /* CANARY_EXTERNAL_H */
