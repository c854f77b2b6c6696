// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rollout.h"
#include "utf8text.h"

static const char *const phase_names[] = {
	[PHASE_PROGRESSING] = "Progressing",
	[PHASE_PAUSED] = "Paused",
	[PHASE_HEALTHY] = "Healthy",
	[PHASE_DEGRADED] = "Degraded",
};

static const char *const verb_names[VERB_COUNT] = {
	[VERB_PROMOTE] = "promote",	  [VERB_PROMOTE_FULL] = "promote-full",
	[VERB_PAUSE] = "pause",		  [VERB_RESUME] = "resume",
	[VERB_ABORT] = "abort",		  [VERB_RETRY] = "retry",
	[VERB_SET_WEIGHT] = "set-weight",
};

const char *rollout_phase_name(enum rollout_phase phase)
{
	return phase <= PHASE_DEGRADED ? phase_names[phase] : "Unknown";
}

int rollout_phase_parse(const char *s, enum rollout_phase *phase)
{
	int i;

	for (i = 0; i <= PHASE_DEGRADED; i++) {
		if (!strcmp(s, phase_names[i])) {
			*phase = i;
			return 0;
		}
	}
	return -1;
}

const char *rollout_verb_name(enum rollout_verb verb)
{
	return verb < VERB_COUNT ? verb_names[verb] : "?";
}

int rollout_verb_parse(const char *s, enum rollout_verb *verb)
{
	int i;

	for (i = 0; i < VERB_COUNT; i++) {
		if (!strcmp(s, verb_names[i])) {
			*verb = i;
			return 0;
		}
	}
	return -1;
}

static __u64 fnv1a(__u64 h, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len--)
		h = (h ^ *p++) * 1099511628211ULL;
	return h;
}

#define FNV_OFFSET 14695981039346656037ULL

__u64 rollout_legacy_fingerprint(const struct rollout_cfg *cfg)
{
	__u64 h = FNV_OFFSET;

	h = fnv1a(h, &cfg->service.key, sizeof(cfg->service.key));
	h = fnv1a(h, cfg->canary.revision, strlen(cfg->canary.revision));
	return fnv1a(h, cfg->canary.endpoints,
		     cfg->canary.n_endpoints * sizeof(cfg->canary.endpoints[0]));
}

__u64 rollout_canary_fingerprint(const struct rollout_cfg *cfg)
{
	__u64 h = FNV_OFFSET;

	h = fnv1a(h, &cfg->service.key, sizeof(cfg->service.key));
	/* The terminating NUL keeps "v1" + nothing apart from a longer revision. */
	return fnv1a(h, cfg->canary.revision, strlen(cfg->canary.revision) + 1);
}

__u64 rollout_steps_fingerprint(const struct rollout_cfg *cfg)
{
	__u64 h = FNV_OFFSET;
	int i;

	/* Field by field: padding inside struct step_cfg must not count. */
	for (i = 0; i < cfg->n_steps; i++) {
		const struct step_cfg *s = &cfg->steps[i];
		__u32 kind = s->kind;

		h = fnv1a(h, &kind, sizeof(kind));
		h = fnv1a(h, &s->weight_bp, sizeof(s->weight_bp));
		h = fnv1a(h, &s->pause_ms, sizeof(s->pause_ms));
	}
	return h;
}

void rollout_init(struct rollout_state *st, const struct rollout_cfg *cfg)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", cfg->name);
	st->canary_fingerprint = rollout_canary_fingerprint(cfg);
	st->steps_fingerprint = rollout_steps_fingerprint(cfg);
	snprintf(st->canary_revision, sizeof(st->canary_revision), "%s", cfg->canary.revision);
	st->phase = PHASE_PROGRESSING;
}

__u16 rollout_effective_weight(const struct rollout_state *st)
{
	if (st->phase == PHASE_HEALTHY || st->phase == PHASE_DEGRADED)
		return 0;
	return st->weight_bp;
}

static void set_message(struct rollout_state *st, const char *fmt, const char *arg)
{
	snprintf(st->message, sizeof(st->message), fmt, arg ? arg : "");
	utf8_repair(st->message); /* arg may be outside text cut anywhere */
}

static void next_step(struct rollout_state *st)
{
	st->step++;
	st->step_started = false;
	st->pause_until_ms = 0;
	st->pause_left_ms = 0;
	st->wait_since_ms = 0;
}

/* Stop for a person: as the pause verb, with why in the message. */
static void pause_for_person(struct rollout_state *st, const char *event, const char *why,
			     struct rollout_effects *fx)
{
	st->user_paused = true;
	st->phase = PHASE_PAUSED;
	snprintf(st->message, sizeof(st->message),
		 "%.200s; resume to wait longer, promote or abort", why);
	fx->changed = true;
	fx->event = event;
}

static void format_duration(char *buf, size_t len, __s64 ms)
{
	if (ms % 60000 == 0)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else
		snprintf(buf, len, "%.1fs", (double)ms / 1000);
}

/*
 * The step waits for a passing decision. Past progressDeadline it stops
 * for a person (Argo's progressDeadline), saying what it waits for, rather
 * than sitting at a weight for ever with nothing said.
 */
static void note_wait(struct rollout_state *st, const struct rollout_cfg *cfg, const char *why,
		      __s64 now_ms, struct rollout_effects *fx)
{
	char deadline[32], msg[ROLLOUT_MESSAGE_LEN];

	if (!st->wait_since_ms) {
		st->wait_since_ms = now_ms;
		return;
	}
	if (cfg->progress_deadline_ms <= 0 ||
	    now_ms - st->wait_since_ms < cfg->progress_deadline_ms)
		return;
	format_duration(deadline, sizeof(deadline), cfg->progress_deadline_ms);
	snprintf(msg, sizeof(msg), "no passing analysis for %s at %u.%02u%%: %.150s", deadline,
		 st->weight_bp / 100, st->weight_bp % 100, why ? why : "not enough evidence");
	pause_for_person(st, "progress deadline exceeded", msg, fx);
}

static void set_weight(struct rollout_state *st, __u16 weight_bp, struct rollout_effects *fx)
{
	st->weight_bp = weight_bp;
	fx->apply_weight = true;
	fx->restart_analysis = true;
}

/* The canary becomes the new stable; the weight goes back to 0. */
static void complete(struct rollout_state *st, const struct rollout_cfg *cfg,
		     struct rollout_effects *fx)
{
	st->phase = PHASE_HEALTHY;
	st->step = cfg->n_steps;
	st->step_started = false;
	st->user_paused = false;
	st->rejudge = false;
	st->wait_since_ms = 0;
	st->awaiting_promotion = false;
	st->weight_bp = 0;
	set_message(st, "promoted: canary %s is the new stable", cfg->canary.revision);
	fx->apply_weight = true;
	fx->promoted = true;
	fx->changed = true;
	fx->event = "promoted";
}

static void do_abort(struct rollout_state *st, const struct rollout_cfg *cfg, const char *why,
		     struct rollout_effects *fx)
{
	st->phase = PHASE_DEGRADED;
	st->weight_bp = 0;
	st->user_paused = false;
	st->awaiting_promotion = false;
	st->aborts++;
	set_message(st, "aborted: %s", why);
	fx->apply_weight = true;
	fx->reset_canary_flows = cfg->abort_connections == ABORT_CONNECTIONS_RESET;
	fx->changed = true;
	fx->event = "aborted";
}

/* Begin a pause step: timed (stretched at peak traffic), or indefinite until promote. */
static void start_pause(struct rollout_state *st, const struct step_cfg *step, double factor,
			__s64 now_ms, struct rollout_effects *fx)
{
	st->step_started = true;
	st->pause_until_ms = step->pause_ms == CONFIG_PAUSE_INDEFINITE ?
				     0 :
				     now_ms + (__s64)((double)step->pause_ms * factor);
	st->phase = PHASE_PAUSED;
	st->message[0] = '\0';
	fx->changed = true;
	fx->event = "paused";
}

/* The next weight of a setWeight step: its own, or less at peak traffic. */
static __u16 next_weight(const struct rollout_state *st, const struct rollout_cfg *cfg,
			 __u16 target, const struct rollout_conditions *traffic)
{
	__u16 cap = cfg->traffic.peak_max_increase_bp;

	if (!traffic->peak || !cap || target <= st->weight_bp || target - st->weight_bp <= cap)
		return target;
	return (__u16)(st->weight_bp + cap);
}

static void apply_step_weight(struct rollout_state *st, __u16 weight_bp, struct rollout_effects *fx)
{
	set_weight(st, weight_bp, fx);
	st->step_started = true;
	st->phase = PHASE_PROGRESSING;
	st->message[0] = '\0';
	st->wait_since_ms = 0;
	fx->changed = true;
	fx->event = "weight set";
}

/*
 * Returns true when the current step is done and the machine may go on
 * to the next one in the same tick.
 */
static bool run_step(struct rollout_state *st, const struct rollout_cfg *cfg,
		     enum analysis_decision decision, __s64 now_ms,
		     const struct rollout_conditions *traffic, struct rollout_effects *fx)
{
	const struct step_cfg *step = &cfg->steps[st->step];

	if (step->kind == STEP_SET_WEIGHT) {
		if (!st->step_started) {
			apply_step_weight(st, next_weight(st, cfg, step->weight_bp, traffic), fx);
			return false; /* judge the new weight from the next tick on */
		}
		/* Too little traffic holds the rollout: it never counts as a pass. */
		if (decision != ANALYSIS_PASS)
			return false;
		/* A smaller increase at peak passed: on to the next one. */
		if (st->weight_bp < step->weight_bp) {
			apply_step_weight(st, next_weight(st, cfg, step->weight_bp, traffic), fx);
			return false;
		}
		return true;
	}
	if (!st->step_started) {
		start_pause(st, step, traffic->peak ? cfg->traffic.pause_factor : 1, now_ms, fx);
		return false;
	}
	if (step->pause_ms == CONFIG_PAUSE_INDEFINITE)
		return false;
	return now_ms >= st->pause_until_ms && decision == ANALYSIS_PASS;
}

/* Is the rollout, after run_step said "not done", waiting on the analysis? */
static bool waits_on_analysis(const struct rollout_state *st, const struct rollout_cfg *cfg,
			      __s64 now_ms)
{
	const struct step_cfg *step;

	if (st->step >= cfg->n_steps || !st->step_started || st->user_paused)
		return false;
	step = &cfg->steps[st->step];
	if (step->kind == STEP_SET_WEIGHT)
		return true;
	return step->pause_ms != CONFIG_PAUSE_INDEFINITE && now_ms >= st->pause_until_ms;
}

/*
 * Every step passed, but strategy.prePromotion has not answered 2xx: wait
 * at the last weight (the agent asks it again every analysis interval), with
 * the progress deadline running, as Flagger's confirm-promotion hook does.
 */
static void await_promotion(struct rollout_state *st, const struct rollout_cfg *cfg,
			    const struct rollout_conditions *c, __s64 now_ms,
			    struct rollout_effects *fx)
{
	char msg[ROLLOUT_MESSAGE_LEN];

	snprintf(msg, sizeof(msg), "every step passed; waiting for the pre-promotion hook (%.160s)",
		 c->promotion_why && *c->promotion_why ? c->promotion_why : "not asked yet");
	if (!st->awaiting_promotion || strcmp(st->message, msg) != 0) {
		st->awaiting_promotion = true;
		snprintf(st->message, sizeof(st->message), "%s", msg);
		fx->changed = true;
		if (!fx->event)
			fx->event = "awaiting promotion";
	}
	note_wait(st, cfg, msg, now_ms, fx);
}

/* In a blackout window: hold, say so once, and let no deadline run. */
static void hold_for_blackout(struct rollout_state *st, const struct rollout_conditions *traffic,
			      struct rollout_effects *fx)
{
	char msg[ROLLOUT_MESSAGE_LEN];

	snprintf(msg, sizeof(msg), "held: blackout window %.200s",
		 traffic->blackout_why ? traffic->blackout_why : "");
	st->wait_since_ms = 0;
	if (!strcmp(st->message, msg))
		return;
	snprintf(st->message, sizeof(st->message), "%s", msg);
	fx->changed = true;
	fx->event = "blackout";
}

void rollout_tick_traffic(struct rollout_state *st, const struct rollout_cfg *cfg,
			  enum analysis_decision decision, const char *why, __s64 now_ms,
			  const struct rollout_conditions *traffic, struct rollout_effects *fx)
{
	int guard;

	memset(fx, 0, sizeof(*fx));
	if (st->phase == PHASE_HEALTHY || st->phase == PHASE_DEGRADED)
		return;
	if (decision == ANALYSIS_FAIL) {
		do_abort(st, cfg, why ? why : "analysis failed", fx);
		return;
	}
	if (st->user_paused)
		return;
	if (decision == ANALYSIS_INCONCLUSIVE) {
		pause_for_person(st, "inconclusive", why ? why : "analysis inconclusive", fx);
		return;
	}
	if (traffic->blackout) {
		hold_for_blackout(st, traffic, fx);
		return;
	}
	if (!strncmp(st->message, "held: blackout", 14)) {
		st->message[0] = '\0'; /* the window closed */
		fx->changed = true;
	}
	if (st->rejudge) {
		if (decision != ANALYSIS_PASS) {
			note_wait(st, cfg, why, now_ms, fx);
			return;
		}
		st->rejudge = false;
		st->wait_since_ms = 0;
		fx->changed = true;
	}
	/* Each pass either waits or moves one step on: at most n_steps + 1. */
	for (guard = 0; guard <= cfg->n_steps; guard++) {
		if (st->step >= cfg->n_steps) {
			if (cfg->pre_promotion_url[0] && !traffic->promotion_approved)
				await_promotion(st, cfg, traffic, now_ms, fx);
			else
				complete(st, cfg, fx);
			return;
		}
		if (!run_step(st, cfg, decision, now_ms, traffic, fx)) {
			if (decision != ANALYSIS_PASS && waits_on_analysis(st, cfg, now_ms))
				note_wait(st, cfg, why, now_ms, fx);
			return;
		}
		next_step(st);
		fx->changed = true;
	}
}

void rollout_tick(struct rollout_state *st, const struct rollout_cfg *cfg,
		  enum analysis_decision decision, const char *why, __s64 now_ms,
		  struct rollout_effects *fx)
{
	static const struct rollout_conditions none;

	rollout_tick_traffic(st, cfg, decision, why, now_ms, &none, fx);
}

/* Where a rollout at weight_bp goes on in a changed step list. */
static int resume_index(const struct rollout_cfg *cfg, __u16 weight_bp)
{
	int i;

	/* The last setWeight at this weight: furthest on, never back to a lower one. */
	for (i = cfg->n_steps - 1; i >= 0; i--)
		if (cfg->steps[i].kind == STEP_SET_WEIGHT && cfg->steps[i].weight_bp == weight_bp)
			return i + 1;
	for (i = 0; i < cfg->n_steps; i++)
		if (cfg->steps[i].kind == STEP_SET_WEIGHT && cfg->steps[i].weight_bp > weight_bp)
			return i;
	return cfg->n_steps;
}

void rollout_steps_changed(struct rollout_state *st, const struct rollout_cfg *cfg,
			   struct rollout_effects *fx)
{
	memset(fx, 0, sizeof(*fx));
	st->steps_fingerprint = rollout_steps_fingerprint(cfg);
	fx->changed = true;
	if (st->phase == PHASE_HEALTHY || st->phase == PHASE_DEGRADED) {
		st->step = st->phase == PHASE_HEALTHY ? cfg->n_steps : 0;
		return;
	}
	st->step = st->weight_bp ? resume_index(cfg, st->weight_bp) : 0;
	st->step_started = false;
	st->pause_until_ms = 0;
	st->pause_left_ms = 0;
	st->wait_since_ms = 0;
	st->rejudge = st->weight_bp != 0;
	if (!st->user_paused)
		st->phase = PHASE_PROGRESSING;
	snprintf(st->message, sizeof(st->message),
		 "steps changed: %u.%02u%% is judged again, then step %d", st->weight_bp / 100,
		 st->weight_bp % 100, st->step);
	fx->restart_analysis = true;
	fx->event = "steps changed";
}

static int refuse(char *err, size_t errlen, const char *msg, const struct rollout_state *st)
{
	snprintf(err, errlen, "%s (rollout is %s)", msg, rollout_phase_name(st->phase));
	return -EPERM;
}

static int verb_promote(struct rollout_state *st, const struct rollout_cfg *cfg,
			struct rollout_effects *fx)
{
	st->user_paused = false;
	st->rejudge = false; /* an operator's word stands for the judgement */
	st->wait_since_ms = 0;
	/*
	 * A weight step skipped before it ran still sets its weight, as in Argo,
	 * where the weight is the last setWeight at or before the current step:
	 * two quick promotes from a pause must not leave the next pause at the
	 * old weight.
	 */
	if (st->step < cfg->n_steps && cfg->steps[st->step].kind == STEP_SET_WEIGHT &&
	    !st->step_started)
		set_weight(st, cfg->steps[st->step].weight_bp, fx);
	if (st->step < cfg->n_steps)
		next_step(st); /* skip the current pause, or the wait on a weight */
	st->phase = PHASE_PROGRESSING;
	snprintf(st->message, sizeof(st->message), "promoted to step %d by an operator", st->step);
	fx->changed = true;
	fx->event = "promote";
	return 0;
}

static int verb_pause(struct rollout_state *st, __s64 now_ms, struct rollout_effects *fx)
{
	if (st->user_paused)
		return 0;
	if (st->step_started && st->pause_until_ms > 0)
		st->pause_left_ms = st->pause_until_ms > now_ms ? st->pause_until_ms - now_ms : 0;
	st->user_paused = true;
	st->phase = PHASE_PAUSED;
	snprintf(st->message, sizeof(st->message), "paused by an operator");
	fx->changed = true;
	fx->event = "pause";
	return 0;
}

static int verb_resume(struct rollout_state *st, const struct rollout_cfg *cfg, __s64 now_ms,
		       struct rollout_effects *fx, char *err, size_t errlen)
{
	bool in_pause;

	if (!st->user_paused)
		return refuse(err, errlen, "not paused by an operator", st);
	in_pause = st->step < cfg->n_steps && st->step_started &&
		   cfg->steps[st->step].kind == STEP_PAUSE;
	/* A timed pause frozen by the pause verb goes on with the time it had left. */
	if (in_pause && st->pause_until_ms > 0)
		st->pause_until_ms = now_ms + st->pause_left_ms;
	st->pause_left_ms = 0;
	st->user_paused = false;
	st->wait_since_ms = 0; /* a deadline that paused the rollout starts again */
	st->phase = in_pause ? PHASE_PAUSED : PHASE_PROGRESSING;
	st->message[0] = '\0';
	fx->changed = true;
	fx->event = "resume";
	return 0;
}

static int verb_set_weight(struct rollout_state *st, __u16 weight_bp, struct rollout_effects *fx,
			   char *err, size_t errlen)
{
	char pct[16];

	if (weight_bp > CANARY_WEIGHT_MAX) {
		snprintf(err, errlen, "weight must be within 0..100");
		return -EINVAL;
	}
	/* A manual weight holds the steps, so the next one cannot override it. */
	set_weight(st, weight_bp, fx);
	st->user_paused = true;
	st->phase = PHASE_PAUSED;
	snprintf(pct, sizeof(pct), "%u.%02u", weight_bp / 100, weight_bp % 100);
	set_message(st, "weight set to %s%% by an operator; resume or promote to continue", pct);
	fx->changed = true;
	fx->event = "set-weight";
	return 0;
}

int rollout_verb(struct rollout_state *st, const struct rollout_cfg *cfg, enum rollout_verb verb,
		 __u16 weight_bp, __s64 now_ms, struct rollout_effects *fx, char *err,
		 size_t errlen)
{
	memset(fx, 0, sizeof(*fx));
	if (verb == VERB_RETRY) {
		__u32 aborts = st->aborts; /* a counter: it never goes back */

		if (st->phase != PHASE_DEGRADED)
			return refuse(err, errlen, "only an aborted rollout can be retried", st);
		rollout_init(st, cfg);
		st->aborts = aborts;
		snprintf(st->message, sizeof(st->message), "retried by an operator");
		fx->changed = true;
		/* The failed step's evidence must not judge the new attempt. */
		fx->restart_analysis = true;
		fx->event = "retry";
		return 0;
	}
	if (st->phase == PHASE_HEALTHY)
		return refuse(err, errlen, "the rollout is complete", st);
	if (st->phase == PHASE_DEGRADED)
		return refuse(err, errlen, "the rollout was aborted: retry it first", st);
	switch (verb) {
	case VERB_PROMOTE:
		return verb_promote(st, cfg, fx);
	case VERB_PROMOTE_FULL:
		complete(st, cfg, fx);
		return 0;
	case VERB_PAUSE:
		return verb_pause(st, now_ms, fx);
	case VERB_RESUME:
		return verb_resume(st, cfg, now_ms, fx, err, errlen);
	case VERB_ABORT:
		do_abort(st, cfg, "by an operator", fx);
		return 0;
	case VERB_SET_WEIGHT:
		return verb_set_weight(st, weight_bp, fx, err, errlen);
	default:
		snprintf(err, errlen, "unknown verb");
		return -EINVAL;
	}
}
