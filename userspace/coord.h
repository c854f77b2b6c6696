/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The coordinator: where the nodes of a fleet keep one shared record per
 * rollout. A backend (etcd: coord_etcd.c; the Kubernetes API:
 * coord_kube.c) implements these operations; the rules of the fleet
 * (userspace/fleet.c) use nothing else. Values are JSON text; revisions are the backend's (etcd store
 * revisions, or Kubernetes resourceVersions mapped to numbers).
 *
 * Per rollout there are three kinds of record:
 *   state   the shared rollout: phase, step, weight, abort, promoted revision
 *   leader  who advances its steps; bound to the holder's session
 *   node    one node's evidence (compact per-version counts); bound to its session
 */
#ifndef CANARY_COORD_H
#define CANARY_COORD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <linux/types.h>

#include "config.h"

#define COORD_NODE_LEN 64

enum coord_kind { COORD_STATE, COORD_LEADER, COORD_NODE };

/* One record, read or watched. value is NULL for a deletion. */
struct coord_record {
	enum coord_kind kind;
	char rollout[CANARY_NAME_LEN];
	char node[COORD_NODE_LEN]; /* COORD_NODE: whose evidence */
	const char *value;
	__s64 create_revision;
	__s64 mod_revision;
};

typedef void (*coord_record_fn)(const struct coord_record *rec, void *arg);

/*
 * Every call returns 0 or a negative errno; -ETIMEDOUT, -ECONNREFUSED and
 * -EIO mean "unreachable" (fail static), -ENOENT a lost session.
 */
struct coord_ops {
	const char *name;
	/* A session of about ttl_s seconds: records bound to it vanish with it. */
	int (*session_open)(void *be, __s64 ttl_s, __s64 *granted_ttl_s);
	int (*session_renew)(void *be);
	void (*session_close)(void *be);
	/* Every record, and the revision read at. */
	int (*read_all)(void *be, coord_record_fn fn, void *arg, __s64 *rev);
	/*
	 * Records changed after from_rev, until *stop or a broken stream.
	 * *resync is set when history was compacted: read_all again.
	 */
	int (*watch)(void *be, __s64 from_rev, coord_record_fn fn, void *arg,
		     const atomic_bool *stop, bool *resync, __s64 *last_rev);
	int (*publish_evidence)(void *be, const char *rollout, const char *value);
	/* Take the lead if nobody holds it: *won, and *leader_rev (the fence) if so. */
	int (*campaign)(void *be, const char *rollout, bool *won, __s64 *leader_rev);
	int (*resign)(void *be, const char *rollout, __s64 leader_rev);
	/*
	 * Write the state only if this node still leads (leader_rev) and the
	 * state is still the one it judged (base_rev; 0: there was none).
	 */
	int (*write_fenced)(void *be, const char *rollout, const char *value, __s64 leader_rev,
			    __s64 base_rev, bool *ok);
	/* An operator's verb: only if the state is still base_rev; no leader needed. */
	int (*write_if)(void *be, const char *rollout, const char *value, __s64 base_rev, bool *ok);
	/* An abort: unconditional, from any node. */
	int (*write_abort)(void *be, const char *rollout, const char *value);
	/*
	 * The leader's view for people (fleet_view_json: verdicts, nodes),
	 * beside the state, never a precondition of it. NULL: the backend
	 * keeps none (etcd: `GET /v1/rollouts/NAME` shows `fleet` on any node).
	 */
	int (*publish_view)(void *be, const char *rollout, const char *value);
	void (*destroy)(void *be);
};

struct coord {
	const struct coord_ops *ops;
	void *be;	/* the backend's state for the tick-side worker */
	void *be_watch; /* a second one for the watch thread: its own connection */
};

/* The etcd backend (coord_etcd.c); the Kubernetes one is in coord_kube.h. */
struct etcd_tls;
int coord_etcd_open(struct coord *c, const char *endpoints, const char *prefix, const char *node,
		    const struct etcd_tls *tls);
void coord_close(struct coord *c);

/* Parse "PREFIX/rollouts/NAME/{state,leader,nodes/NODE}" (pure, for tests). */
int coord_parse_key(const char *prefix, const char *key, struct coord_record *rec);

#endif /* CANARY_COORD_H */
