/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The coordinator on the Kubernetes API (coord_kube.c; docs/kubernetes.md):
 *
 *   state   the Rollout NAME's .status.shared (the fleet's JSON, as text),
 *           with phase, step and weight beside it for `kubectl get`
 *   leader  the Lease canaryd-NAME.leader: holderIdentity is the leader
 *   node    the Lease canaryd-NAME.node.NODE: its annotation
 *           canaryd.io/evidence is the node's evidence
 *
 * Revisions are resourceVersions read as integers (etcd revisions under
 * the API server, so they order). A Lease past renewTime + duration, or
 * with no holder, reads as absent: the deletion etcd's lease would do.
 * The pure functions are here for tests/unit/test_kube.c.
 */
#ifndef CANARY_COORD_KUBE_H
#define CANARY_COORD_KUBE_H

#include <jansson.h>

#include "coord.h"
#include "kube.h"

/* A Lease's duration; renewed every third of it (fleet.c). See docs/kubernetes.md. */
#define COORD_KUBE_LEASE_S	 15

#define COORD_KUBE_LABEL_MANAGED "app.kubernetes.io/managed-by"
#define COORD_KUBE_LABEL_ROLLOUT "canaryd.io/rollout"
#define COORD_KUBE_LABEL_ROLE	 "canaryd.io/role"
#define COORD_KUBE_LABEL_NODE	 "canaryd.io/node"
#define COORD_KUBE_ANN_EVIDENCE	 "canaryd.io/evidence"
/* The resourceVersion that made this holder the holder: the leader's fence. */
#define COORD_KUBE_ANN_TENURE "canaryd.io/tenure"

/* "123" -> 123; -1 when it is not a positive decimal number. */
__s64 coord_kube_rv(const char *rv);
/* RFC 3339 with microseconds (a MicroTime), UTC, to and from microseconds. */
int coord_kube_time_parse(const char *s, __s64 *us);
void coord_kube_time_format(__s64 us, char *buf, size_t len);

/* The Lease's names: "canaryd-ROLLOUT.leader", "canaryd-ROLLOUT.node.NODE". */
int coord_kube_lease_name(char *buf, size_t len, const char *rollout, const char *node);

/*
 * Can NAME be this node's name with kube? A node's name goes into a Lease's
 * name (a DNS subdomain) and into a label value (at most 63 characters), so
 * 1..63 characters of [a-z0-9.-], each dot-separated part starting and ending
 * with a letter or digit: what Kubernetes itself allows a node, up to 63.
 */
bool coord_kube_node_name_ok(const char *name);

/* Does the Lease hold nobody now (no holder, or renewTime + duration < now)? */
bool coord_kube_lease_expired(const json_t *lease, __s64 now_us);

/*
 * A Lease of ours as a record; *rec->value points into lease (NULL when it
 * expired). 0, or -EINVAL when it is not one of ours.
 */
int coord_kube_lease_record(const json_t *lease, __s64 now_us, struct coord_record *rec);
/*
 * A Rollout as the state record. -ENOENT: it has no shared state yet.
 * rec->value points into rollout, or, when an operator set status.abort on
 * a running rollout (kubectl patch, as `kubectl argo rollouts abort` does),
 * to an aborted copy of the shared state in *owned, which the caller frees.
 */
int coord_kube_rollout_record(const json_t *rollout, struct coord_record *rec, char **owned);
/*
 * The shared state (JSON text) aborted by an operator: phase Degraded at
 * weight 0, one more abort, the message saying who. NULL when it is not a
 * running rollout (nothing to abort) or on -ENOMEM. The caller frees it.
 */
char *coord_kube_operator_abort(const char *shared);

struct coord_kube_lease {
	const char *ns, *rollout, *node; /* node NULL: the leader Lease */
	const char *holder;		 /* NULL: released */
	long duration_s;
	__s64 acquire_us, renew_us;
	long transitions;
	__s64 rv;     /* > 0: the precondition of an update */
	__s64 tenure; /* > 0: kept in the tenure annotation */
	const char *evidence;
};

json_t *coord_kube_lease_json(const struct coord_kube_lease *l);
/* A merge patch of a Rollout's status with the shared JSON (rv > 0: a precondition). */
char *coord_kube_status_patch(const char *shared, __s64 rv);
/* A merge patch of a Rollout's status with the leader's view (fleet_view_json's text). */
char *coord_kube_view_patch(const char *view);

/* Which write of the shared state an Event records. */
enum coord_kube_write {
	COORD_KUBE_WRITE_STEP,	/* the leader's fenced step */
	COORD_KUBE_WRITE_VERB,	/* an operator's verb, versioned */
	COORD_KUBE_WRITE_ABORT, /* a node's abort on its own evidence */
};

struct coord_kube_event {
	const char *ns, *rollout, *uid, *node;
	const char *shared; /* the state written */
	enum coord_kube_write write;
	__s64 now_us;
};

/*
 * The core/v1 Event that records a write of the shared state on the
 * Rollout (reason from the phase the write leads to; Warning for an
 * abort), or NULL when the state cannot be read. key (len bytes) gets what
 * tells it from the previous Event: rollout, reason, step and message.
 */
json_t *coord_kube_event_json(const struct coord_kube_event *e, char *key, size_t len);

/* The backend: client settings, namespace, this node's name, Lease duration (0: default). */
int coord_kube_open(struct coord *c, const struct kube_client *proto, const char *ns,
		    const char *node, long lease_s);

#endif /* CANARY_COORD_KUBE_H */
