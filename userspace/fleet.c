// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The running fleet: what the tick reads and leaves (under f->mu, never
 * waiting on the network), a request thread that writes what the tick left
 * and keeps the session, and a watch thread that keeps the shared view.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "log.h"
#include "worker.h"

struct fleet_rollout {
	char name[CANARY_NAME_LEN];
	__u64 followed_ms; /* when the tick last looked: a rollout no longer configured stops */
	__u64 fingerprint; /* of the canary configured here */
	/* The shared state as last read or watched. */
	struct fleet_shared shared;
	__s64 shared_rev;
	__u64 state_gen; /* refresh generation that saw it */
	char leader[COORD_NODE_LEN];
	__s64 leader_rev; /* create revision of the leader record: the fence */
	__s64 leader_mod_rev;
	__u64 leader_gen;
	/* This node. */
	__s64 my_leader_rev; /* while this node leads, as far as it knows */
	__u64 campaign_ms;
	struct fleet_evidence mine;
	__u64 published_ms;
	/* Every node's evidence, this one's included. */
	struct fleet_evidence nodes[FLEET_MAX_NODES];
	__u64 node_gen[FLEET_MAX_NODES];
	__s64 node_rev[FLEET_MAX_NODES]; /* mod revision of each node's record as last seen */
	/* What the request thread is to write (JSON text, malloc'd), and on what. */
	char *publish;
	char *abort_json;
	char *proposal;
	__s64 proposal_base;
	__s64 proposed_on; /* 1 + the shared revision a proposal was made on; 0: none */
	char *verb_json;
	__s64 verb_base;
	char *view; /* the leader's view for people (publish_view) */
	__u64 view_ms;
	__s64 view_generation; /* the spec generation the last view said */
	/* The leader's judgement of the pooled counts. */
	struct analysis_state pooled;
	__s64 lead_wait_since_ms;
	/* This node's own judgement: the analysis settings with its share of alpha. */
	struct analysis_cfg local_cfg;
	enum analysis_decision pooled_decision;
	__u32 pooled_epoch;
	__u32 local_epoch; /* the epoch of this node's own evidence */
	int n_nodes;
	bool configured;
	bool have_shared;
	bool pooled_on;
	/* This node aborted and the fleet's state does not say so yet: hold on to it. */
	bool abort_unseen;
};

struct fleet {
	struct coord coord;
	char node[COORD_NODE_LEN];
	pthread_mutex_t mu;
	struct fleet_rollout *rollouts[FLEET_MAX_ROLLOUTS];
	int n_rollouts;
	/* Session */
	bool session;
	__s64 session_ttl_s;
	__u64 session_valid_until_ms; /* monotonic */
	__u64 renewed_ms;
	bool reachable;
	__u64 refreshed_ms;
	__u64 refresh_gen;
	bool first_read;
	struct worker *requests;
	pthread_t watch_thread;
	bool watch_started;
	atomic_bool stop;
};

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

static __s64 wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__s64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Until when this node may act as a leader, under f->mu: short of its session's end. */
static __u64 lead_deadline(const struct fleet *f)
{
	return f->session_valid_until_ms > FLEET_LEASE_MARGIN_MS ?
		       f->session_valid_until_ms - FLEET_LEASE_MARGIN_MS :
		       0;
}

/* Under f->mu. NULL when the table is full. */
static struct fleet_rollout *rollout_of(struct fleet *f, const char *name)
{
	struct fleet_rollout *fr;
	int i;

	for (i = 0; i < f->n_rollouts; i++)
		if (!strcmp(f->rollouts[i]->name, name))
			return f->rollouts[i];
	if (f->n_rollouts == FLEET_MAX_ROLLOUTS)
		return NULL;
	fr = calloc(1, sizeof(*fr));
	if (!fr)
		return NULL;
	snprintf(fr->name, sizeof(fr->name), "%s", name);
	f->rollouts[f->n_rollouts++] = fr;
	return fr;
}

static struct fleet_evidence *node_of(struct fleet_rollout *fr, const char *node)
{
	int i;

	for (i = 0; i < fr->n_nodes; i++)
		if (!strcmp(fr->nodes[i].node, node))
			return &fr->nodes[i];
	if (fr->n_nodes == FLEET_MAX_NODES)
		return NULL;
	memset(&fr->nodes[fr->n_nodes], 0, sizeof(fr->nodes[0]));
	snprintf(fr->nodes[fr->n_nodes].node, COORD_NODE_LEN, "%s", node);
	return &fr->nodes[fr->n_nodes++];
}

/* ---- records from the coordinator (both threads), under f->mu ---- */

static void take_state(struct fleet_rollout *fr, const struct coord_record *rec, __u64 gen)
{
	struct fleet_shared s;

	if (!rec->value) {
		if (rec->mod_revision >= fr->shared_rev)
			fr->have_shared = false;
		return;
	}
	if (rec->mod_revision < fr->shared_rev || fleet_shared_from_json(rec->value, &s))
		return; /* older than what we have (a slow read), or not ours to read */
	snprintf(s.st.name, sizeof(s.st.name), "%s", fr->name);
	if (s.st.phase == PHASE_DEGRADED)
		fr->abort_unseen = false;
	fr->shared = s;
	fr->shared_rev = rec->mod_revision;
	fr->have_shared = true;
	fr->state_gen = gen;
}

static void take_leader(struct fleet_rollout *fr, const struct coord_record *rec, __u64 gen)
{
	if (rec->mod_revision < fr->leader_mod_rev)
		return;
	fr->leader_mod_rev = rec->mod_revision;
	fr->leader_gen = gen;
	if (!rec->value) {
		fr->leader[0] = '\0';
		fr->leader_rev = 0;
	} else {
		snprintf(fr->leader, sizeof(fr->leader), "%s", rec->value);
		fr->leader_rev = rec->create_revision;
	}
	if (fr->my_leader_rev && fr->leader_rev != fr->my_leader_rev) {
		log_event(CLOG_WARN, "fleet: no longer the leader", "rollout", fr->name, "leader",
			  fr->leader[0] ? fr->leader : "none");
		fr->my_leader_rev = 0;
	}
}

static void take_node(struct fleet_rollout *fr, const struct coord_record *rec, __u64 gen)
{
	struct fleet_evidence *e = node_of(fr, rec->node), ev;
	long i = e ? e - fr->nodes : 0;

	/* A slow full read may bring an older version than the watch did. */
	if (!e || rec->mod_revision < fr->node_rev[i])
		return;
	fr->node_rev[i] = rec->mod_revision;
	fr->node_gen[i] = gen;
	if (!rec->value) {
		e->live = false; /* its last counts still count for their epoch */
		return;
	}
	if (fleet_evidence_from_json(rec->value, &ev))
		return;
	snprintf(ev.node, sizeof(ev.node), "%s", rec->node);
	ev.live = true;
	*e = ev;
}

struct take_ctx {
	struct fleet *f;
	__u64 gen;
};

static void take_record(const struct coord_record *rec, void *arg)
{
	struct take_ctx *tc = arg;
	struct fleet *f = tc->f;
	struct fleet_rollout *fr;

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, rec->rollout);
	if (fr && rec->kind == COORD_STATE)
		take_state(fr, rec, tc->gen);
	else if (fr && rec->kind == COORD_LEADER)
		take_leader(fr, rec, tc->gen);
	else if (fr)
		take_node(fr, rec, tc->gen);
	pthread_mutex_unlock(&f->mu);
}

/* After a full read at revision rev: what it did not contain is gone. */
static void forget_missing(struct fleet *f, __u64 gen, __s64 rev)
{
	struct coord_record gone = { .mod_revision = rev };
	int i, n;

	for (i = 0; i < f->n_rollouts; i++) {
		struct fleet_rollout *fr = f->rollouts[i];

		if (fr->have_shared && fr->state_gen != gen && fr->shared_rev < rev)
			take_state(fr, &gone, gen);
		if (fr->leader_gen != gen && fr->leader_mod_rev < rev && fr->leader_rev)
			take_leader(fr, &gone, gen);
		for (n = 0; n < fr->n_nodes; n++)
			if (fr->node_gen[n] != gen && fr->node_rev[n] < rev)
				fr->nodes[n].live = false;
	}
}

static int read_everything(struct fleet *f, void *be, __s64 *rev)
{
	struct take_ctx tc = { .f = f };
	int err;

	pthread_mutex_lock(&f->mu);
	tc.gen = ++f->refresh_gen;
	pthread_mutex_unlock(&f->mu);
	err = f->coord.ops->read_all(be, take_record, &tc, rev);
	pthread_mutex_lock(&f->mu);
	if (!err) {
		forget_missing(f, tc.gen, *rev);
		f->first_read = true;
	}
	f->reachable = !err;
	pthread_mutex_unlock(&f->mu);
	return err;
}

/* ---- the watch thread ---- */

static void watch_record(const struct coord_record *rec, void *arg)
{
	struct take_ctx tc = { .f = arg, .gen = 0 };

	take_record(rec, &tc);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *watch_main(void *arg)
{
	struct fleet *f = arg;
	__s64 rev = 0;

	while (!atomic_load(&f->stop)) {
		bool resync = false;
		int err;

		if (!rev && read_everything(f, f->coord.be_watch, &rev)) {
			rev = 0;
			sleep_ms(200);
			continue;
		}
		err = f->coord.ops->watch(f->coord.be_watch, rev + 1, watch_record, f, &f->stop,
					  &resync, &rev);
		if (resync) {
			log_event(CLOG_INFO, "fleet: watch history compacted: reading again");
			rev = 0;
		} else if (err && err != -ETIMEDOUT) {
			sleep_ms(100);
		}
	}
	return NULL;
}

/* ---- the request thread ---- */

static void session_lost(struct fleet *f)
{
	int i;

	pthread_mutex_lock(&f->mu);
	f->session = false;
	for (i = 0; i < f->n_rollouts; i++) {
		f->rollouts[i]->my_leader_rev = 0;
		f->rollouts[i]->published_ms = 0; /* the records went with the session */
	}
	pthread_mutex_unlock(&f->mu);
}

/* Open or renew the session a third of its TTL after the last renewal. */
static void keep_session(struct fleet *f)
{
	__u64 now = mono_ms();
	__s64 granted = 0;
	int err;

	if (f->session && now - f->renewed_ms < (__u64)f->session_ttl_s * 1000 / 3)
		return;
	err = f->session ? f->coord.ops->session_renew(f->coord.be) :
			   f->coord.ops->session_open(f->coord.be, FLEET_SESSION_TTL_S, &granted);
	pthread_mutex_lock(&f->mu);
	if (!err) {
		if (!f->session) {
			f->session_ttl_s = granted;
			log_event(CLOG_INFO, "fleet: session opened", "node", f->node);
		}
		f->session = true;
		f->renewed_ms = now;
		f->session_valid_until_ms = now + (__u64)f->session_ttl_s * 1000;
	}
	f->reachable = !err || err == -ENOENT;
	pthread_mutex_unlock(&f->mu);
	if (err == -ENOENT) {
		log_event(CLOG_WARN, "fleet: session expired: opening a new one", "node", f->node);
		session_lost(f);
	}
}

/* Take a pending item out of the table, under f->mu. */
static char *take(char **slot)
{
	char *s = *slot;

	*slot = NULL;
	return s;
}

/* Give an item back for another try, unless a newer one took its place. */
static void give_back(struct fleet *f, char **slot, char *s)
{
	pthread_mutex_lock(&f->mu);
	if (!*slot)
		*slot = s;
	else
		free(s);
	pthread_mutex_unlock(&f->mu);
}

static bool send_abort(struct fleet *f, struct fleet_rollout *fr)
{
	char *json;
	int err;

	pthread_mutex_lock(&f->mu);
	json = take(&fr->abort_json);
	pthread_mutex_unlock(&f->mu);
	if (!json)
		return false;
	err = f->coord.ops->write_abort(f->coord.be, fr->name, json);
	if (err) {
		give_back(f, &fr->abort_json, json); /* fail static: written when it is back */
		return false;
	}
	log_event(CLOG_INFO, "fleet: abort recorded", "rollout", fr->name, "node", f->node);
	free(json);
	return true;
}

static bool send_proposal(struct fleet *f, struct fleet_rollout *fr)
{
	__s64 fence, base;
	char *json;
	bool ok = false;
	int err;

	pthread_mutex_lock(&f->mu);
	json = take(&fr->proposal);
	fence = fr->my_leader_rev;
	base = fr->proposal_base;
	/* Checked again here: the process may have been stopped since the tick. */
	if (json && !fleet_may_lead(fence, fr->leader_rev, mono_ms(), lead_deadline(f))) {
		free(json);
		json = NULL;
		fr->proposed_on = 0;
	}
	pthread_mutex_unlock(&f->mu);
	if (!json)
		return false;
	err = f->coord.ops->write_fenced(f->coord.be, fr->name, json, fence, base, &ok);
	pthread_mutex_lock(&f->mu);
	if (err || !ok)
		fr->proposed_on = 0; /* judged again on what the next read shows */
	pthread_mutex_unlock(&f->mu);
	if (!err && !ok)
		log_event(CLOG_INFO, "fleet: step write fenced off (state or leadership changed)",
			  "rollout", fr->name, "node", f->node);
	free(json);
	return true;
}

static bool send_verb(struct fleet *f, struct fleet_rollout *fr)
{
	__s64 base;
	char *json;
	bool ok = false;
	int err;

	pthread_mutex_lock(&f->mu);
	json = take(&fr->verb_json);
	base = fr->verb_base;
	pthread_mutex_unlock(&f->mu);
	if (!json)
		return false;
	err = f->coord.ops->write_if(f->coord.be, fr->name, json, base, &ok);
	if (err || !ok)
		log_event(CLOG_WARN, "fleet: verb not written", "rollout", fr->name, "error",
			  err ? strerror(-err) : "the shared state changed meanwhile");
	free(json);
	return true;
}

static bool send_evidence(struct fleet *f, struct fleet_rollout *fr)
{
	char *json;
	int err;

	pthread_mutex_lock(&f->mu);
	json = f->session ? take(&fr->publish) : NULL;
	pthread_mutex_unlock(&f->mu);
	if (!json)
		return false;
	err = f->coord.ops->publish_evidence(f->coord.be, fr->name, json);
	pthread_mutex_lock(&f->mu);
	if (err)
		fr->published_ms = 0; /* again at the next tick */
	pthread_mutex_unlock(&f->mu);
	free(json);
	return true;
}

static bool send_view(struct fleet *f, struct fleet_rollout *fr)
{
	char *json;

	pthread_mutex_lock(&f->mu);
	json = take(&fr->view);
	pthread_mutex_unlock(&f->mu);
	if (!json)
		return false;
	/* A view lost is replaced by the next one: the backend logs a refusal. */
	f->coord.ops->publish_view(f->coord.be, fr->name, json);
	free(json);
	return true;
}

static bool campaign(struct fleet *f, struct fleet_rollout *fr)
{
	__u64 now = mono_ms();
	__s64 rev = 0;
	bool due, won = false;
	int err;

	pthread_mutex_lock(&f->mu);
	due = f->session && fr->configured && now - fr->followed_ms < FLEET_UNCONFIGURED_MS &&
	      !fr->leader[0] && !fr->my_leader_rev && now - fr->campaign_ms >= 100;
	if (due)
		fr->campaign_ms = now;
	pthread_mutex_unlock(&f->mu);
	if (!due)
		return false;
	err = f->coord.ops->campaign(f->coord.be, fr->name, &won, &rev);
	if (err || !won)
		return true;
	pthread_mutex_lock(&f->mu);
	fr->my_leader_rev = rev;
	if (rev >= fr->leader_mod_rev) {
		snprintf(fr->leader, sizeof(fr->leader), "%s", f->node);
		fr->leader_rev = rev;
		fr->leader_mod_rev = rev;
	}
	fr->pooled_on = false; /* judged afresh by this leader */
	pthread_mutex_unlock(&f->mu);
	log_event(CLOG_INFO, "fleet: leading", "rollout", fr->name, "node", f->node);
	return true;
}

/* A rollout this node no longer runs (removed from its config): let another lead it. */
static bool resign_unconfigured(struct fleet *f, struct fleet_rollout *fr)
{
	__s64 fence;

	pthread_mutex_lock(&f->mu);
	fence = fr->my_leader_rev && mono_ms() - fr->followed_ms >= FLEET_UNCONFIGURED_MS ?
			fr->my_leader_rev :
			0;
	if (fence)
		fr->my_leader_rev = 0;
	pthread_mutex_unlock(&f->mu);
	if (!fence)
		return false;
	f->coord.ops->resign(f->coord.be, fr->name, fence);
	log_event(CLOG_INFO, "fleet: resigned (rollout no longer configured here)", "rollout",
		  fr->name, "node", f->node);
	return true;
}

static bool requests_step(void *arg)
{
	struct fleet *f = arg;
	bool busy = false;
	__s64 rev;
	int i, n;

	keep_session(f);
	if (mono_ms() - f->refreshed_ms >= FLEET_REFRESH_EVERY_MS) {
		f->refreshed_ms = mono_ms();
		read_everything(f, f->coord.be, &rev);
	}
	pthread_mutex_lock(&f->mu);
	n = f->n_rollouts;
	pthread_mutex_unlock(&f->mu);
	/* Aborts first: they are what the other nodes wait for. */
	for (i = 0; i < n; i++)
		busy |= send_abort(f, f->rollouts[i]);
	for (i = 0; i < n; i++) {
		busy |= send_proposal(f, f->rollouts[i]);
		busy |= send_verb(f, f->rollouts[i]);
		busy |= campaign(f, f->rollouts[i]);
		busy |= resign_unconfigured(f, f->rollouts[i]);
		busy |= send_evidence(f, f->rollouts[i]);
		busy |= send_view(f, f->rollouts[i]);
	}
	return busy;
}

/* ---- start and stop ---- */

int fleet_start(struct coord *c, const char *node, long wait_ms, struct fleet **out)
{
	struct fleet *f = calloc(1, sizeof(*f));
	__u64 deadline = mono_ms() + (__u64)wait_ms;
	int err;

	if (!f)
		return -ENOMEM;
	f->coord = *c;
	memset(c, 0, sizeof(*c));
	snprintf(f->node, sizeof(f->node), "%s", node);
	atomic_init(&f->stop, false);
	err = -pthread_mutex_init(&f->mu, NULL);
	if (!err)
		err = -pthread_create(&f->watch_thread, NULL, watch_main, f);
	f->watch_started = !err;
	if (!err)
		err = worker_start(requests_step, f, 20, &f->requests);
	if (err) {
		fleet_stop(f);
		return err;
	}
	while (!f->first_read && mono_ms() < deadline)
		sleep_ms(20);
	log_event(f->first_read ? CLOG_INFO : CLOG_WARN,
		  f->first_read ? "fleet: shared state read" :
				  "fleet: coordinator unreachable: going on with the local state",
		  "node", node, "coordinator", f->coord.ops->name);
	*out = f;
	return 0;
}

static void free_rollout(struct fleet_rollout *fr)
{
	free(fr->publish);
	free(fr->abort_json);
	free(fr->proposal);
	free(fr->view);
	free(fr->verb_json);
	free(fr);
}

void fleet_stop(struct fleet *f)
{
	int i;

	if (!f)
		return;
	atomic_store(&f->stop, true);
	worker_stop(f->requests);
	if (f->watch_started)
		pthread_join(f->watch_thread, NULL);
	for (i = 0; i < f->n_rollouts; i++) {
		struct fleet_rollout *fr = f->rollouts[i];

		if (fr->abort_json)
			send_abort(f, fr); /* a last try: other nodes wait for it */
		if (fr->my_leader_rev)
			f->coord.ops->resign(f->coord.be, fr->name, fr->my_leader_rev);
		free_rollout(fr);
	}
	if (f->session)
		f->coord.ops->session_close(f->coord.be);
	coord_close(&f->coord);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* ---- the tick's side ---- */

static unsigned int live_nodes(const struct fleet_rollout *fr, const char *me)
{
	unsigned int n = 1; /* this one */
	int i;

	for (i = 0; i < fr->n_nodes; i++)
		n += fr->nodes[i].live && strcmp(fr->nodes[i].node, me) != 0;
	return n;
}

const struct analysis_cfg *fleet_local_cfg(struct fleet *f, const struct rollout_cfg *cfg)
{
	struct fleet_rollout *fr;

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, cfg->name);
	if (fr) {
		fr->local_cfg = cfg->analysis;
		fr->local_cfg.confidence = fleet_node_confidence(
			cfg->analysis.confidence > 0 ? cfg->analysis.confidence : 0.99,
			live_nodes(fr, f->node));
	}
	pthread_mutex_unlock(&f->mu);
	/* The entry lives as long as the fleet; only this thread writes local_cfg. */
	return fr ? &fr->local_cfg : &cfg->analysis;
}

bool fleet_follow(struct fleet *f, const struct rollout_cfg *cfg, const struct rollout_state *local,
		  struct rollout_state *out, struct rollout_effects *fx)
{
	struct fleet_rollout *fr;
	bool follow = false;

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, cfg->name);
	if (fr) {
		fr->configured = true;
		fr->followed_ms = mono_ms();
		fr->fingerprint = local->canary_fingerprint;
	}
	/* A local abort is never undone by a shared state written before it. */
	if (fr && fr->have_shared && !fr->abort_unseen) {
		fleet_adopt_effects(local, fr->local_epoch, &fr->shared, cfg, fx);
		follow = fx->changed;
		if (follow) {
			*out = fr->shared.st;
			out->steps_fingerprint = local->steps_fingerprint;
			out->wait_since_ms = local->wait_since_ms;
			fr->local_epoch = fr->shared.epoch;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return follow;
}

static void sub_metrics(struct canary_metrics *d, const struct canary_metrics *now,
			const struct canary_metrics *base)
{
	const __u64 *n = (const __u64 *)now, *b = (const __u64 *)base;
	__u64 *o = (__u64 *)d;
	size_t i;

	/* Every field is a __u64 counter: subtract them all alike. */
	for (i = 0; i < sizeof(*d) / sizeof(__u64); i++)
		o[i] = n[i] >= b[i] ? n[i] - b[i] : 0;
}

static void keep_mine(struct fleet *f, struct fleet_rollout *fr, const struct rollout_state *st,
		      const struct canary_metrics now[CANARY_V_COUNT],
		      const struct canary_metrics base[CANARY_V_COUNT],
		      enum analysis_decision local)
{
	struct fleet_evidence *e = &fr->mine;
	__u64 t = mono_ms();
	json_t *j;
	int v;

	snprintf(e->node, sizeof(e->node), "%s", f->node);
	e->fingerprint = st->canary_fingerprint;
	e->epoch = fr->local_epoch;
	e->weight_bp = rollout_effective_weight(st);
	e->decision = local;
	e->wall_ms = wall_ms();
	e->live = true;
	for (v = 0; v < CANARY_V_COUNT; v++)
		sub_metrics(&e->delta[v], &now[v], &base[v]);
	if (fr->published_ms && t - fr->published_ms < FLEET_PUBLISH_EVERY_MS)
		return;
	j = fleet_evidence_to_json(e);
	if (!j)
		return;
	free(fr->publish);
	fr->publish = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	fr->published_ms = t;
}

/* The pooled counts of this epoch: every node's last, this one's as of now. */
static enum analysis_decision judge_pooled(struct fleet *f, struct fleet_rollout *fr,
					   const struct rollout_cfg *cfg)
{
	struct canary_metrics sum[CANARY_V_COUNT];
	__u64 now = mono_ms();
	__s64 age = wall_ms() - fr->shared.epoch_wall_ms;
	struct fleet_evidence *me = node_of(fr, f->node);

	if (me)
		*me = fr->mine;
	fleet_pool(fr->nodes, fr->n_nodes, fr->fingerprint, fr->shared.epoch, sum);
	if (!fr->pooled_on || fr->pooled_epoch != fr->shared.epoch) {
		struct canary_metrics zero[CANARY_V_COUNT] = { 0 };

		/* The counts cover the epoch since it began: so does the judgement. */
		age = age < 0 ? 0 : age > 3600000 ? 3600000 : age;
		analysis_restart(&fr->pooled, zero, now > (__u64)age ? now - (__u64)age : 0);
		fr->pooled_on = true;
		fr->pooled_epoch = fr->shared.epoch;
	}
	if (sum[CANARY_V_CANARY].requests < fr->pooled.prev[CANARY_V_CANARY].requests ||
	    sum[CANARY_V_STABLE].requests < fr->pooled.prev[CANARY_V_STABLE].requests)
		analysis_restart(&fr->pooled, sum, now); /* a node started over: from here on */
	return analysis_tick(&fr->pooled, &cfg->analysis, sum, now);
}

/* The state the leader starts from: the shared one, or this node's for a new canary. */
static void lead_base(struct fleet *f, struct fleet_rollout *fr, const struct rollout_state *st,
		      struct fleet_shared *next)
{
	if (fr->have_shared && fr->shared.st.canary_fingerprint == st->canary_fingerprint) {
		*next = fr->shared;
		return;
	}
	memset(next, 0, sizeof(*next));
	next->st = *st;
	next->epoch = (fr->have_shared ? fr->shared.epoch : 0) + 1;
	next->epoch_wall_ms = wall_ms();
	(void)f;
}

static void queue_json(char **slot, json_t *j)
{
	free(*slot);
	*slot = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
}

/*
 * The leader's view of what it just judged, for a backend that keeps one:
 * every FLEET_VIEW_EVERY_MS, and at once when it runs a newer spec, so that
 * observedGeneration soon says which spec the fleet runs.
 */
static void queue_view(struct fleet *f, struct fleet_rollout *fr, const struct rollout_cfg *cfg)
{
	__u64 t = mono_ms();
	bool new_spec = cfg->generation != fr->view_generation;

	if (!f->coord.ops->publish_view ||
	    (!new_spec && fr->view_ms && t - fr->view_ms < FLEET_VIEW_EVERY_MS))
		return;
	fr->view_ms = t;
	fr->view_generation = cfg->generation;
	queue_json(&fr->view, fleet_view_json(fr->pooled.last, fr->pooled.n_last, fr->nodes,
					      fr->n_nodes, cfg->generation, wall_ms()));
}

static void lead(struct fleet *f, struct fleet_rollout *fr, const struct rollout_cfg *cfg,
		 const struct rollout_state *st)
{
	bool seed = !fr->have_shared || fr->shared.st.canary_fingerprint != st->canary_fingerprint;
	struct fleet_shared next;
	struct rollout_effects fx = { .changed = seed };

	if (!fleet_may_lead(fr->my_leader_rev, fr->leader_rev, mono_ms(), lead_deadline(f)) ||
	    fr->proposal || fr->proposed_on == fr->shared_rev + 1)
		return;
	lead_base(f, fr, st, &next);
	if (!seed) {
		enum analysis_decision d = fr->pooled_decision = judge_pooled(f, fr, cfg);

		queue_view(f, fr, cfg);

		/* Pooled evidence passes; failing is each node's own business. */
		if (d == ANALYSIS_FAIL)
			d = ANALYSIS_HOLD;
		next.st.wait_since_ms = fr->lead_wait_since_ms;
		rollout_tick(&next.st, cfg, d, fr->pooled.reason, wall_ms(), &fx);
		fr->lead_wait_since_ms = next.st.wait_since_ms;
		if (fx.apply_weight || fx.restart_analysis) {
			next.epoch++;
			next.epoch_wall_ms = wall_ms();
		}
	}
	if (!fx.changed)
		return;
	snprintf(next.writer, sizeof(next.writer), "%s", f->node);
	next.written_ms = wall_ms();
	queue_json(&fr->proposal, fleet_shared_to_json(&next));
	fr->proposal_base = fr->have_shared ? fr->shared_rev : 0;
	fr->proposed_on = fr->shared_rev + 1;
}

void fleet_after_tick(struct fleet *f, const struct rollout_cfg *cfg,
		      const struct rollout_state *st,
		      const struct canary_metrics now[CANARY_V_COUNT],
		      const struct canary_metrics base[CANARY_V_COUNT],
		      enum analysis_decision local)
{
	struct fleet_rollout *fr;

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, cfg->name);
	if (fr && fr->configured) {
		keep_mine(f, fr, st, now, base, local);
		lead(f, fr, cfg, st);
	}
	pthread_mutex_unlock(&f->mu);
}

void fleet_abort(struct fleet *f, const struct rollout_cfg *cfg, const struct rollout_state *st)
{
	struct fleet_rollout *fr;
	struct fleet_shared s = { .st = *st };

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, cfg->name);
	if (fr) {
		bool same = fr->have_shared &&
			    fr->shared.st.canary_fingerprint == st->canary_fingerprint;

		s.epoch = (same ? fr->shared.epoch : fr->local_epoch) + 1;
		s.epoch_wall_ms = wall_ms();
		snprintf(s.writer, sizeof(s.writer), "%s", f->node);
		s.written_ms = s.epoch_wall_ms;
		queue_json(&fr->abort_json, fleet_shared_to_json(&s));
		fr->abort_unseen = true;
		fr->local_epoch = s.epoch; /* this node is there already */
	}
	pthread_mutex_unlock(&f->mu);
}

int fleet_verb(struct fleet *f, const struct rollout_cfg *cfg, enum rollout_verb verb,
	       __u16 weight_bp, char *err, size_t errlen)
{
	struct fleet_rollout *fr;
	struct fleet_shared next;
	int rc = -EAGAIN;

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, cfg->name);
	if (!fr || !fr->have_shared || fr->shared.st.canary_fingerprint != fr->fingerprint) {
		snprintf(err, errlen, "the fleet's state of this rollout is not known yet");
		goto out;
	}
	rc = fleet_verb_next(&fr->shared, cfg, verb, weight_bp, f->node, wall_ms(), &next, err,
			     errlen);
	if (rc)
		goto out;
	queue_json(&fr->verb_json, fleet_shared_to_json(&next));
	fr->verb_base = fr->shared_rev;
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static json_t *node_json(const struct fleet_evidence *e, __s64 now_wall)
{
	const struct canary_metrics *c = &e->delta[CANARY_V_CANARY],
				    *s = &e->delta[CANARY_V_STABLE];

	return json_pack("{s:s, s:b, s:i, s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "node", e->node,
			 "live", e->live, "epoch", (int)e->epoch, "weightBp",
			 (json_int_t)e->weight_bp, "decision", analysis_decision_name(e->decision),
			 "canaryRequests", (json_int_t)c->requests, "canaryErrors",
			 (json_int_t)(c->responses[5] + c->conns_reset + c->conns_refused),
			 "stableRequests", (json_int_t)s->requests, "stableErrors",
			 (json_int_t)(s->responses[5] + s->conns_reset + s->conns_refused), "ageMs",
			 (json_int_t)(now_wall - e->wall_ms));
}

json_t *fleet_status_json(struct fleet *f, const char *rollout)
{
	json_t *o = NULL, *nodes = json_array();
	struct fleet_rollout *fr;
	__s64 now = wall_ms();
	int i;

	pthread_mutex_lock(&f->mu);
	fr = rollout_of(f, rollout);
	for (i = 0; fr && nodes && i < fr->n_nodes; i++)
		json_array_append_new(nodes, node_json(&fr->nodes[i], now));
	if (fr)
		o = json_pack("{s:s, s:s, s:b, s:b, s:I, s:i, s:i, s:s, s:o}", "node", f->node,
			      "leader", fr->leader, "leading",
			      fleet_may_lead(fr->my_leader_rev, fr->leader_rev, mono_ms(),
					     f->session_valid_until_ms),
			      "reachable", f->reachable, "sharedRevision",
			      (json_int_t)fr->shared_rev, "epoch", (int)fr->shared.epoch,
			      "liveNodes", (int)live_nodes(fr, f->node), "pooledDecision",
			      analysis_decision_name(fr->pooled_decision), "nodes", nodes);
	else
		json_decref(nodes);
	pthread_mutex_unlock(&f->mu);
	return o;
}

/* ---- /metrics ---- */

enum fleet_family { FAM_LEADER, FAM_LIVE, FAM_EPOCH, FAM_NODE_WEIGHT, FAM_COUNT };

static const char *const family_text[FAM_COUNT][2] = {
	{ "canaryd_fleet_leader", "The rollout's leader as this node sees it (label leader; "
				  "empty: none)." },
	{ "canaryd_fleet_live_nodes", "Nodes with a live record for the rollout." },
	{ "canaryd_fleet_epoch", "Weight changes of the shared rollout so far." },
	{ "canaryd_fleet_node_weight_ratio",
	  "Each live node's canary weight, as it published it." },
};

/* One family's samples for one rollout: every family stays one group. */
static void family_samples(FILE *out, const struct fleet *f, const struct fleet_rollout *fr,
			   enum fleet_family fam)
{
	const char *name = family_text[fam][0];
	int i;

	if (fam == FAM_LEADER)
		fprintf(out, "%s{rollout=\"%s\",node=\"%s\",leader=\"%s\"} 1\n", name, fr->name,
			f->node, fr->leader);
	else if (fam == FAM_LIVE)
		fprintf(out, "%s{rollout=\"%s\",node=\"%s\"} %u\n", name, fr->name, f->node,
			live_nodes(fr, f->node));
	else if (fam == FAM_EPOCH)
		fprintf(out, "%s{rollout=\"%s\",node=\"%s\"} %u\n", name, fr->name, f->node,
			fr->shared.epoch);
	for (i = 0; fam == FAM_NODE_WEIGHT && i < fr->n_nodes; i++)
		if (fr->nodes[i].live)
			fprintf(out, "%s{rollout=\"%s\",node=\"%s\",peer=\"%s\"} %.4f\n", name,
				fr->name, f->node, fr->nodes[i].node,
				fr->nodes[i].weight_bp / 10000.0);
}

void fleet_metrics(struct fleet *f, FILE *out)
{
	int fam, i;

	pthread_mutex_lock(&f->mu);
	fprintf(out,
		"# HELP canaryd_fleet_coordinator_up Whether the coordinator answered the last "
		"call (1) or not (0).\n# TYPE canaryd_fleet_coordinator_up gauge\n"
		"canaryd_fleet_coordinator_up{node=\"%s\"} %d\n",
		f->node, f->reachable);
	for (fam = 0; fam < FAM_COUNT; fam++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", family_text[fam][0],
			family_text[fam][1], family_text[fam][0]);
		for (i = 0; i < f->n_rollouts; i++)
			if (f->rollouts[i]->configured)
				family_samples(out, f, f->rollouts[i], (enum fleet_family)fam);
	}
	pthread_mutex_unlock(&f->mu);
}
