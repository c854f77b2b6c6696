/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Notifications: a JSON POST to each webhook of spec.notifications on the
 * transitions it asks for. The agent only queues them (a copy, under its
 * lock, never waiting); a thread of their own sends them, each with its
 * timeout, and retries a failed one with backoff (0.5, 1, 2, 4 s), so a down
 * or slow receiver never holds up a tick or a rollback. The queue is
 * bounded: past NOTIFY_QUEUE_MAX the oldest waiting notification is dropped
 * (and counted). docs/configuration.md#notifications has the payloads.
 */
#ifndef CANARY_NOTIFY_H
#define CANARY_NOTIFY_H

#include <stdio.h>

#include <jansson.h>
#include <linux/types.h>

#include "config.h"

#define NOTIFY_QUEUE_MAX 256
#define NOTIFY_ATTEMPTS	 5

/* What happened to a rollout, for the payload. */
struct notify_info {
	const char *rollout;
	const char *revision;
	enum notify_event event;
	const char *phase;
	int step;
	__u16 weight_bp;
	const char *message;
	json_t *verdicts; /* borrowed; may be NULL */
};

struct notifier;

/*
 * A queue that takes notifications at once; its thread starts with
 * notifier_run, once the agent has dropped its capabilities (a thread
 * started before would keep them).
 */
int notifier_create(struct notifier **out);
int notifier_run(struct notifier *n);
/* Stop the thread; what is still queued is dropped. */
void notifier_destroy(struct notifier *n);

/* Queue the event for every webhook of cfg that asks for it. Never blocks on I/O. */
void notifier_send(struct notifier *n, const struct notify_cfg *cfg, int n_cfg,
		   const struct notify_info *info);

/* canaryd_notifications_total{result=sent|failed|dropped}, and the queue's length. */
void notifier_render(struct notifier *n, FILE *f);

/* The body for one webhook (exposed for tests). Caller frees. */
char *notify_payload(const struct notify_cfg *cfg, const struct notify_info *info, __s64 wall_ms);

#endif /* CANARY_NOTIFY_H */
