/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The rollout state machine, as in Argo Rollouts:
 *
 *   Progressing(step i) -> Paused -> Progressing ... -> Healthy (promoted)
 *                                                    \-> Degraded (aborted)
 *
 * It is pure: it takes the configuration, the analysis decision and the
 * time, changes the state and says what the caller must do (struct
 * rollout_effects). It does no I/O, so it is tested with a fake clock.
 * Times are wall-clock milliseconds, so a pause deadline survives a restart.
 */
#ifndef CANARY_ROLLOUT_H
#define CANARY_ROLLOUT_H

#include <stdbool.h>
#include <linux/types.h>

#include "analysis.h"
#include "config.h"

enum rollout_phase {
	PHASE_PROGRESSING,
	PHASE_PAUSED,
	PHASE_HEALTHY,	/* completed: the canary is the new stable */
	PHASE_DEGRADED, /* aborted: weight 0 until retried */
};

#define ROLLOUT_MESSAGE_LEN 256

struct rollout_state {
	char name[CANARY_NAME_LEN];
	__u64 canary_fingerprint; /* which canary this rollout is about */
	enum rollout_phase phase;
	int step;	      /* index into the steps; n_steps once complete */
	__u16 weight_bp;      /* weight last applied */
	bool step_started;    /* the current pause step has begun */
	__s64 pause_until_ms; /* timed pause deadline (wall clock) */
	__s64 pause_left_ms;  /* time left of a pause frozen by the pause verb */
	bool user_paused;     /* the pause verb, until resume */
	__u32 aborts;
	char message[ROLLOUT_MESSAGE_LEN];
	/* Wall ms since the current step waits for a passing decision; 0: not waiting. */
	__s64 wait_since_ms;
	/* The steps changed under a running rollout: its weight must pass once first. */
	bool rejudge;
	__u64 steps_fingerprint; /* of the step list this state follows */
	__s64 started_ms;	 /* wall ms the rollout began running; 0: unknown */
	bool awaiting_promotion; /* every step passed; the pre-promotion hook has not said yes */
	char canary_revision[CONFIG_REVISION_LEN];
};

/* What the caller must do after a transition. */
struct rollout_effects {
	bool apply_weight;	 /* write weight_bp into the service */
	bool restart_analysis;	 /* samples from now on judge the new weight */
	bool reset_canary_flows; /* abort with connections: reset */
	bool promoted;		 /* the canary's endpoints are the stable set now */
	bool changed;		 /* state changed: persist it */
	const char *event;	 /* log event name of the transition, or NULL */
};

enum rollout_verb {
	VERB_PROMOTE,	   /* skip the current pause / step */
	VERB_PROMOTE_FULL, /* straight to 100% and completion */
	VERB_PAUSE,
	VERB_RESUME,
	VERB_ABORT,
	VERB_RETRY,
	VERB_SET_WEIGHT,
	VERB_COUNT,
};

/*
 * A rollout's identity: its service and canary revision. Endpoints are not
 * part of it: a pod that moves to another address is the same canary.
 */
__u64 rollout_canary_fingerprint(const struct rollout_cfg *cfg);
/* The identity as state files of format 1 recorded it (revision and endpoints). */
__u64 rollout_legacy_fingerprint(const struct rollout_cfg *cfg);
/* Fingerprint of the step list, to notice that a reload changed it. */
__u64 rollout_steps_fingerprint(const struct rollout_cfg *cfg);

/*
 * The step list changed under st (a reload, or a restart with a new list).
 * The weight stays; the analysis must restart (fx->restart_analysis) and pass
 * once at that weight. Then the rollout goes on at the step after the last
 * setWeight equal to the current weight, or else at the first setWeight above it: it
 * never jumps over a weight, nor to completion, without a passing judgement.
 */
void rollout_steps_changed(struct rollout_state *st, const struct rollout_cfg *cfg,
			   struct rollout_effects *fx);

/* A new rollout at step 0 for this configuration. */
void rollout_init(struct rollout_state *st, const struct rollout_cfg *cfg);

/* One tick: follow the steps, gated by the analysis decision. */
void rollout_tick(struct rollout_state *st, const struct rollout_cfg *cfg,
		  enum analysis_decision decision, const char *why, __s64 now_ms,
		  struct rollout_effects *fx);

/* What the world says now: strategy.trafficPolicy (traffic.c), the pre-promotion hook. */
struct rollout_conditions {
	bool peak;		   /* smaller steps, longer pauses */
	bool blackout;		   /* no step forward */
	const char *blackout_why;  /* the open window, for the message */
	bool promotion_approved;   /* the pre-promotion hook answered 2xx */
	const char *promotion_why; /* its last answer, for the message */
};

/*
 * rollout_tick under a traffic policy. At peak, a setWeight step raises the
 * weight by at most peak.maxStepIncrease at a time, each intermediate weight
 * judged like a step of its own, and a pause that starts lasts pauseFactor
 * times longer. In a blackout window nothing moves forward (no new weight, no
 * pause begun or ended, no completion) and the progress deadline does not
 * run; an analysis failure still aborts.
 */
void rollout_tick_traffic(struct rollout_state *st, const struct rollout_cfg *cfg,
			  enum analysis_decision decision, const char *why, __s64 now_ms,
			  const struct rollout_conditions *traffic, struct rollout_effects *fx);

/*
 * An operator's verb. Returns 0, or -EPERM (as HTTP 409) when the verb makes
 * no sense in this phase, -EINVAL for a bad weight; err says why.
 */
int rollout_verb(struct rollout_state *st, const struct rollout_cfg *cfg, enum rollout_verb verb,
		 __u16 weight_bp, __s64 now_ms, struct rollout_effects *fx, char *err,
		 size_t errlen);

/* The weight the service must carry in this state (0 when done or aborted). */
__u16 rollout_effective_weight(const struct rollout_state *st);

const char *rollout_phase_name(enum rollout_phase phase);
int rollout_phase_parse(const char *s, enum rollout_phase *phase);
const char *rollout_verb_name(enum rollout_verb verb);
int rollout_verb_parse(const char *s, enum rollout_verb *verb);

#endif /* CANARY_ROLLOUT_H */
