/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One rollout across a fleet of nodes, through a coordinator (coord.h).
 * The rules (docs/architecture.md, "A fleet of nodes"):
 *
 *  - The shared state is the truth: every node applies the phase, step and
 *    weight it reads (or is told by a watch); the local state file is a cache.
 *  - An abort needs no leader: a node whose own evidence fails zeroes its
 *    weight first, then writes the abort; every node applies it on watch.
 *  - One leader per rollout advances steps, with writes fenced on its
 *    leadership and on the state it judged.
 *  - Evidence is pooled to pass (the leader sums every node's per-version
 *    counts of the current weight and judges them) and local to fail (a
 *    node fails on its own counts at confidence 1 - alpha/N over N nodes).
 *  - Fail static: while the coordinator is unreachable nothing moves but
 *    local aborts, which are written when it is back.
 *
 * The agent calls the fleet from its tick under its own lock; the fleet
 * does its I/O on two threads of its own (requests, and the watch), so a
 * slow or dead coordinator never holds up a tick.
 */
#ifndef CANARY_FLEET_H
#define CANARY_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "analysis.h"
#include "coord.h"
#include "rollout.h"

#define FLEET_MAX_NODES	   32
#define FLEET_MAX_ROLLOUTS 256
/* Session (lease) TTL asked for; etcd raises it to 1.5 election timeouts at least. */
#define FLEET_SESSION_TTL_S    2
#define FLEET_PUBLISH_EVERY_MS 1000
#define FLEET_REFRESH_EVERY_MS 1000
/*
 * The leader's view (verdicts, nodes) at most this often: each write is a
 * new version of the Rollout on Kubernetes, an event to every watcher.
 */
#define FLEET_VIEW_EVERY_MS 5000
/* A leader stops proposing this long before its session could have expired. */
#define FLEET_LEASE_MARGIN_MS 300
/* A rollout the tick has not looked at for this long is no longer run here. */
#define FLEET_UNCONFIGURED_MS 3000

/* The shared rollout, as written to the coordinator. */
struct fleet_shared {
	struct rollout_state st;
	__u32 epoch;	     /* +1 at every weight change: evidence of one epoch adds up */
	__s64 epoch_wall_ms; /* when the epoch began */
	char writer[COORD_NODE_LEN];
	__s64 written_ms; /* the writer's wall clock when it wrote: for people and tests */
};

/* One node's evidence: what it counted since the current epoch began. */
struct fleet_evidence {
	char node[COORD_NODE_LEN];
	__u64 fingerprint; /* of the canary judged */
	__u32 epoch;
	__u16 weight_bp;
	enum analysis_decision decision; /* its own, local, decision */
	struct canary_metrics delta[CANARY_V_COUNT];
	__s64 wall_ms;
	bool live; /* its record is there (its session lives) */
};

/* ---- pure parts ---- */

/* The confidence of one node's own tests so that N nodes together keep alpha. */
double fleet_node_confidence(double confidence, unsigned int nodes);

/* out = sum of every evidence of this canary and epoch (departed nodes' last ones too). */
void fleet_pool(const struct fleet_evidence *ev, int n, __u64 fingerprint, __u32 epoch,
		struct canary_metrics out[CANARY_V_COUNT]);

/* Is this node's leadership usable now? (held, seen as held, session not expired) */
bool fleet_may_lead(__s64 my_leader_rev, __s64 seen_leader_rev, __u64 now_ms,
		    __u64 session_valid_until_ms);

/*
 * What a node must do to follow the shared state from its local one
 * (local_epoch: the epoch its evidence is of). fx->changed: adopt it at all.
 */
void fleet_adopt_effects(const struct rollout_state *local, __u32 local_epoch,
			 const struct fleet_shared *shared, const struct rollout_cfg *cfg,
			 struct rollout_effects *fx);

/*
 * An operator's verb (not abort) on the shared state cur, as any writer
 * judges it (an agent's fleet_verb, or kubectl canary on the API server):
 * rollout_verb on cur's state, and a new epoch when the weight changes or
 * the rollout is retried, so that every node judges it afresh. next is the
 * state to write, by writer at now_ms. 0, or as rollout_verb (err says why).
 */
int fleet_verb_next(const struct fleet_shared *cur, const struct rollout_cfg *cfg,
		    enum rollout_verb verb, __u16 weight_bp, const char *writer, __s64 now_ms,
		    struct fleet_shared *next, char *err, size_t errlen);

json_t *fleet_shared_to_json(const struct fleet_shared *s);
int fleet_shared_from_json(const char *text, struct fleet_shared *s);
json_t *fleet_evidence_to_json(const struct fleet_evidence *e);
/* A version's failed requests as the fleet shows them: 5xx, resets, refused connections. */
__u64 fleet_errors(const struct canary_metrics *m);
/*
 * The leader's view of a rollout for people, at wall time now_ms:
 * {"verdicts": [its verdicts of the pooled counts], "nodes": [each node's
 * evidence in short], "observedGeneration": generation (when > 0: the
 * Rollout object's generation the leader runs)}, as the Rollout's status
 * carries them.
 */
json_t *fleet_view_json(const struct verdict *v, int n_verdicts, const struct fleet_evidence *nodes,
			int n_nodes, __s64 generation, __s64 now_ms);
int fleet_evidence_from_json(const char *text, struct fleet_evidence *e);

/* ---- the running fleet ---- */

struct fleet;

/*
 * Start the fleet's threads on coordinator c (which the fleet then owns),
 * and wait up to wait_ms for a first read of the shared state, so that a
 * (re)starting node knows it before it touches its maps.
 */
int fleet_start(struct coord *c, const char *node, long wait_ms, struct fleet **out);
/* Resign every leadership, end the session, join the threads, free. */
void fleet_stop(struct fleet *f);

/* The analysis settings of this node's own judgement (alpha split over the nodes). */
const struct analysis_cfg *fleet_local_cfg(struct fleet *f, const struct rollout_cfg *cfg);

/*
 * A shared state newer than what this node applied, for this canary: true
 * with out (the state to take) and fx (what to do).
 */
bool fleet_follow(struct fleet *f, const struct rollout_cfg *cfg, const struct rollout_state *local,
		  struct rollout_state *out, struct rollout_effects *fx);

/*
 * After the node judged its own counts: publish them (at most once a
 * second) and, on the leader, judge the pooled counts and propose the next
 * state. base: the counters the node's analysis started from.
 */
void fleet_after_tick(struct fleet *f, const struct rollout_cfg *cfg,
		      const struct rollout_state *st,
		      const struct canary_metrics now[CANARY_V_COUNT],
		      const struct canary_metrics base[CANARY_V_COUNT],
		      enum analysis_decision local);

/* This node aborted (st is the aborted state): record it for the fleet. */
void fleet_abort(struct fleet *f, const struct rollout_cfg *cfg, const struct rollout_state *st);

/*
 * An operator's verb (not abort) on the fleet's rollout: judged against the
 * shared state and written if nobody changed it meanwhile. 0, or as
 * rollout_verb; -EAGAIN when the shared state is not known yet.
 */
int fleet_verb(struct fleet *f, const struct rollout_cfg *cfg, enum rollout_verb verb,
	       __u16 weight_bp, char *err, size_t errlen);

/* The fleet's view of a rollout, for the API: leader, nodes, their evidence. */
json_t *fleet_status_json(struct fleet *f, const char *rollout);

/* The canaryd_fleet_* families for /metrics, every sample labelled by node. */
void fleet_metrics(struct fleet *f, FILE *out);

#endif /* CANARY_FLEET_H */
