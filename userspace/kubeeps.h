/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The endpoints of Service-backed versions (spec.stable.service,
 * spec.canary.service): one watcher thread per Service follows its
 * EndpointSlices (kube.h) and keeps its READY endpoints, the only ones
 * that get new connections. The tick loop takes each change under a mutex
 * and a generation counter (kubeeps_deliver) and programs the maps.
 *
 * An endpoint that is terminating, not ready or gone leaves the list. An
 * empty ready set is never handed over: the last non-empty list stays (a
 * Service scaled to zero or an API hiccup must not empty a version), and
 * that is logged. Only IPv4 endpoints are taken (the data path's backends).
 *
 * A rollout's VIP may come from a Service too (spec.service.fromService):
 * its own watcher follows that Service (kubesvc.h), and a changed ClusterIP
 * or port asks for a reload, which moves the rollout to the new VIP.
 */
#ifndef CANARY_KUBEEPS_H
#define CANARY_KUBEEPS_H

#include <stdbool.h>
#include <stddef.h>

#include "canary_structs.h"
#include "config.h"
#include "kubeconfig.h"

struct kubeeps;

/* default_ns: for rollouts without metadata.namespace. 0 or -ENOMEM. */
int kubeeps_create(const struct kube_conn *conn, const char *default_ns, struct kubeeps **out);
/* Stops every watcher (each within about a second) and frees everything. */
void kubeeps_destroy(struct kubeeps *ke);

/*
 * Before cfg is applied: set each rollout's namespace to the one it uses,
 * fill every Service-backed version's endpoints with the ready ones known,
 * and every VIP from a Service with its ClusterIP and port, reading a
 * Service never read before once (a few seconds at most). -EAGAIN, err
 * naming the rollout and the Service, when one has no ready endpoint known
 * or gives no VIP (missing, headless, IPv6, several ports and none asked
 * for, a VIP another rollout has): that configuration must not be applied
 * yet; a reload is asked for (kubeeps_reload_wanted) once that Service
 * changes.
 */
int kubeeps_fill(struct kubeeps *ke, struct config *cfg, char *err, size_t errlen);

/*
 * Watch the Services cfg names (threads start only once kubeeps_run was
 * called). With prune, stop the watchers of Services cfg no longer names.
 */
int kubeeps_follow(struct kubeeps *ke, const struct config *cfg, bool prune);
/* Threads may start from now on (after the agent dropped its privileges). */
int kubeeps_run(struct kubeeps *ke);

typedef void (*kubeeps_fn)(const char *ns, const char *service, const struct canary_backend *b,
			   int n, void *arg);
/* Hand every Service whose ready set changed since the last call to fn (outside the lock). */
void kubeeps_deliver(struct kubeeps *ke, kubeeps_fn fn, void *arg);
/* A Service a refused configuration waited for has ready endpoints now (asked once). */
bool kubeeps_reload_wanted(struct kubeeps *ke);

/*
 * The IPv4 READY backends of b[0..n) into out (at most max), sorted as
 * given; *skipped counts the ready ones left out (IPv6, or beyond max).
 * Pure: for tests.
 */
int kubeeps_ready(const struct kube_backend *b, long n, struct canary_backend *out, int max,
		  int *skipped);

#endif /* CANARY_KUBEEPS_H */
