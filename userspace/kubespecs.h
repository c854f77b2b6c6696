/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's Rollouts from the Kubernetes API (canaryd --rollouts-from
 * kube): a thread lists and watches rollouts.canaryd.io/v1alpha1 in one
 * namespace through kube.h's list+watch loop, and keeps, for every object,
 * the last spec the agent accepted.
 *
 * Each object goes through the same schema as a file (config.h): its
 * metadata.name and metadata.namespace and its spec, field for field, so
 * that what the CRD's schema cannot check (two decimals of a weight, a
 * duration's upper bound, an endpoint equal to the VIP...) is refused as
 * it is in a file. A refused object is logged with its name and the field
 * (and the same said by a Warning Event on it, sent on a connection of its
 * own), and its last accepted spec stays in the set (a new object refused is
 * simply absent): one bad `kubectl apply` never takes a running rollout
 * away. A status change (the coordinator's writes) is not a change: only
 * the spec, the name and the namespace are compared.
 *
 * The tick loop asks kubespecs_changed() and, when the accepted set
 * changed, takes it with kubespecs_config() and applies it like a
 * reloaded config directory (agent_apply_config): only rollouts whose spec
 * changed restart, a deleted object's rollout is removed, and a 410's
 * re-list replaces the set wholesale.
 */
#ifndef CANARY_KUBESPECS_H
#define CANARY_KUBESPECS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "kube.h"
#include "kubeconfig.h"

#define KUBESPECS_API_PATH "/apis/canaryd.io/v1alpha1"

/* ---- pure parts, for tests ---- */

/*
 * One Rollout object (as the API server sends it) into out, through the
 * file schema; messages read "Rollout NS/NAME:LINE:COL: spec.FIELD: what"
 * (positions in the object's spec written as indented JSON). 0, or -1
 * with err set.
 */
int kubespecs_from_object(const json_t *obj, struct rollout_cfg *out, char *err, size_t errlen);

/* One object the agent knows of: what it last saw and what it accepted. */
struct kr_entry {
	char name[KUBE_NAME_LEN];
	char *seen;		/* the last spec seen (compact JSON with sorted keys) */
	bool good;		/* cfg holds an accepted spec */
	struct rollout_cfg cfg; /* the last accepted spec */
};

/* The set of Rollouts, by name. */
struct kr_set {
	struct kr_entry *v;
	size_t n;
	unsigned long generation; /* moves when the accepted set changes */
	unsigned long rejected;	  /* objects refused so far (each distinct spec once) */
	json_t *events;		  /* Events of refusals not sent yet (an array; NULL: none) */
};

/*
 * The core/v1 Event that says on a Rollout (obj) why its spec was refused:
 * type Warning, reason SpecRejected. Its name is the Rollout's and its
 * resourceVersion's, so that every node of a fleet that refuses the same
 * version creates the same Event: the first one wins, the others get 409.
 */
json_t *kubespecs_rejection_event(const json_t *obj, const char *why, bool kept, long now_s);

/*
 * Bring set up to objs (every Rollout the server has): new and changed
 * specs are converted, refused ones logged and their last accepted spec
 * kept, objects gone are dropped. Returns whether the accepted set
 * changed, or -ENOMEM.
 */
int kr_set_update(struct kr_set *set, const struct kube_objects *objs);
/* The accepted rollouts, sorted by name, into out (config_free it). 0 or -ENOMEM. */
int kr_set_config(const struct kr_set *set, struct config *out);
void kr_set_free(struct kr_set *set);

/* ---- the watcher ---- */

struct kubespecs;

/* ns: the namespace whose Rollouts the agent runs. 0, -EINVAL, -ENOMEM. */
int kubespecs_create(const struct kube_conn *conn, const char *ns, struct kubespecs **out);
/* Start the watch thread (after the agent dropped its privileges). 0 or -errno. */
int kubespecs_run(struct kubespecs *kr);
/* Stops the thread (within about a second) and frees everything. */
void kubespecs_destroy(struct kubespecs *kr);
/* Did the accepted set change since the last kubespecs_config()? */
bool kubespecs_changed(struct kubespecs *kr);
/*
 * The accepted set now, into out. -EAGAIN (err says so) until the first
 * list of the namespace succeeded: nothing is applied before that, so a
 * restart with the API server down keeps the pinned services.
 */
int kubespecs_config(struct kubespecs *kr, struct config *out, char *err, size_t errlen);
const char *kubespecs_namespace(const struct kubespecs *kr);

#endif /* CANARY_KUBESPECS_H */
