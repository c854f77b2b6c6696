/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A Service's ClusterIP as a rollout's VIP (spec.service.fromService):
 * reading a core/v1 Service object into the data path's service key, and
 * following one Service by name (a list with a field selector, then a
 * watch from its resourceVersion), because a Service deleted and created
 * again gets a new ClusterIP. The parsing is pure, tested on recorded
 * objects (tests/unit/test_kubesvc.c).
 */
#ifndef CANARY_KUBESVC_H
#define CANARY_KUBESVC_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "canary_structs.h"
#include "kube.h"

/*
 * The VIP of Service obj for a rollout whose spec.service asks for port
 * (0: the Service's only port) and protocol (IPPROTO_TCP or IPPROTO_UDP):
 * key->vip is the ClusterIP, key->port the Service's port. 0, or -EINVAL
 * with err saying what is wrong with the Service: headless (clusterIP
 * None), no ClusterIP (ExternalName), an IPv6 ClusterIP, several ports and
 * no port asked for, no such port, or a port of another protocol.
 */
int kubesvc_vip_from_json(const json_t *obj, __u16 port, __u8 proto, struct canary_service_key *key,
			  char *err, size_t errlen);

/* Do a and b (NULL: no Service) give the same VIPs (ClusterIP and ports)? */
bool kubesvc_same_vip(const json_t *a, const json_t *b);

struct kubesvc_watch_opts {
	const char *ns;
	const char *name;
	long backoff_base_ms; /* 0: 200 */
	long backoff_max_ms;  /* 0: 30000 */
	/* Called with the Service after every list and event (NULL: there is none); false stops. */
	bool (*fn)(json_t *svc, void *arg);
	void *arg;
	const atomic_bool *stop;
};

/*
 * One list of the Service by name: *svc is the object (a reference the
 * caller json_decref()s) or NULL when there is no such Service; rv (at
 * least KUBE_RV_LEN) the list's resourceVersion. 0, or -EACCES (403),
 * -EIO (another status), -EINVAL (not a list), or kube_get's error.
 */
int kubesvc_list(struct kube_client *c, const char *ns, const char *name, json_t **svc, char *rv);

/*
 * List, then watch, until fn returns false or *stop: 0. Errors are retried
 * with backoff; a 410 lists again. Only -ENOMEM ends it early.
 */
int kubesvc_watch(struct kube_client *c, const struct kubesvc_watch_opts *o);

#endif /* CANARY_KUBESVC_H */
