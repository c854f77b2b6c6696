/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Delivery records: how each rollout ended (promoted, aborted, superseded),
 * how long it took, how long a bad canary kept traffic after the first
 * failing evidence, and the verdicts that decided. They feed the delivery
 * metrics (canaryd_rollouts_total, rollout duration and time-to-rollback
 * histograms, aborts by step: docs/metrics.md) and the history that
 * `canaryctl history NAME` shows, kept in the state directory as
 * NAME.history.json, newest last, at most DELIVERY_HISTORY_MAX records.
 */
#ifndef CANARY_DELIVERY_H
#define CANARY_DELIVERY_H

#include <pthread.h>
#include <stdio.h>

#include <jansson.h>
#include <linux/types.h>

#include "canary_consts.h"
#include "config.h"

#define DELIVERY_HISTORY_MAX 50

enum delivery_outcome {
	OUTCOME_PROMOTED,
	OUTCOME_ABORTED,
	OUTCOME_SUPERSEDED,
	OUTCOME_COUNT,
};

/* One ended rollout. Times are wall-clock ms; -1 where unknown. */
struct delivery_record {
	char rollout[CANARY_NAME_LEN];
	char revision[CONFIG_REVISION_LEN];
	enum delivery_outcome outcome;
	__s64 started_ms;
	__s64 ended_ms;
	__s64 rollback_ms; /* first failing evidence -> weight 0; -1: not an automatic abort */
	int step;	   /* the step it ended at */
	__u16 weight_bp;   /* the canary's weight when it ended */
	char message[256];
	json_t *verdicts; /* the verdicts that decided (a JSON array), or NULL; owned */
};

/* Per-rollout delivery metrics since the agent started. */
struct delivery_stats;

struct delivery {
	pthread_mutex_t lock;
	const char *state_dir;
	struct delivery_stats *stats;
	size_t n_stats;
};

int delivery_init(struct delivery *d, const char *state_dir);
void delivery_destroy(struct delivery *d);

/*
 * Count rec in the metrics and append it to the rollout's history file
 * (rewritten atomically, oldest records dropped past the bound). Takes
 * ownership of rec->verdicts. Returns 0 or -errno (the metrics count it
 * all the same).
 */
int delivery_record(struct delivery *d, struct delivery_record *rec);

/* The rollout's history as a JSON array (empty when none); NULL on ENOMEM. */
json_t *delivery_history(struct delivery *d, const char *rollout);

/* Append the delivery metric families in Prometheus text format. */
void delivery_render(struct delivery *d, FILE *f);

const char *delivery_outcome_name(enum delivery_outcome o);

#endif /* CANARY_DELIVERY_H */
