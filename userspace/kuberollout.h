/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A Rollout object of the API server as an operator outside the nodes acts
 * on it (`kubectl canary`, tools/canaryctl/plugin.c): its spec read by the
 * config module, its fleet state read as the agents read it (coord_kube.c,
 * an operator's status.abort included), the next state of a verb judged by
 * the fleet's own rule (fleet_verb_next) and written as the versioned status
 * patch the agents write. Pure: no I/O, tested in tests/unit/test_kubeplugin.c.
 */
#ifndef CANARY_KUBEROLLOUT_H
#define CANARY_KUBEROLLOUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <linux/types.h>

#include "config.h"
#include "fleet.h"
#include "rollout.h"

/* The writer named in a shared state that kubectl canary wrote. */
#define KUBEROLLOUT_WRITER "kubectl-canary"

/* The merge patch of an abort: what the agents honour from anyone (coord_kube.c). */
#define KUBEROLLOUT_ABORT_PATCH "{\"status\":{\"abort\":true}}"

/*
 * The Rollout's spec as a config file's: out holds one rollout_cfg
 * (config_free it). 0, or -1 with what is wrong in err.
 */
int kuberollout_config(const json_t *rollout, struct config *out, char *err, size_t errlen);

/*
 * The fleet's shared state of the Rollout, as every agent reads it (an
 * operator's status.abort on a running rollout reads as Degraded).
 * 0, -ENOENT (no agent wrote one yet), -EINVAL (unreadable).
 */
int kuberollout_shared(const json_t *rollout, struct fleet_shared *out);

/*
 * The status patch that applies verb (not abort) to the Rollout as read:
 * its spec, its shared state and, as the precondition, its resourceVersion.
 * 0 with *patch (the caller frees it), or with err saying why:
 * -ENOENT no shared state yet, -ESTALE the shared state is about another
 * canary than the spec, -EINVAL a bad spec or weight, -EPERM a verb that
 * makes no sense in this phase, -ENOMEM.
 */
int kuberollout_verb_patch(const json_t *rollout, enum rollout_verb verb, __u16 weight_bp,
			   __s64 now_ms, char **patch, char *err, size_t errlen);

/*
 * The core/v1 Event that records the write on the Rollout as the API
 * server answered it (rollout: the PATCH's answer), as an agent records its
 * own writes (coord_kube_event_json; source host KUBEROLLOUT_WRITER): so
 * that `kubectl describe` shows an operator's verbs too. abort: the
 * status.abort patch. NULL when the answer holds no shared state.
 */
json_t *kuberollout_event(const json_t *rollout, bool abort, __s64 now_us);

/* How a watched rollout stands, for `status --watch`. */
enum kuberollout_outcome {
	KUBEROLLOUT_RUNNING, /* Progressing or Paused, or no state yet */
	KUBEROLLOUT_HEALTHY,
	KUBEROLLOUT_DEGRADED,
};

enum kuberollout_outcome kuberollout_outcome(const json_t *rollout);

/* kubectl's age: 42s, 5m3s, 7h, 3d4h (kubectl's HumanDuration, short form). */
void kuberollout_age(__s64 seconds, char *buf, size_t len);

/* The table of `kubectl canary get`: NAME PHASE STEP WEIGHT AGE, one row per Rollout. */
void kuberollout_table_header(FILE *out);
void kuberollout_table_row(FILE *out, const json_t *rollout, __s64 now_s);

/* One line: "NAME: PHASE, step S of N, weight W%: MESSAGE" (status without --watch). */
void kuberollout_status_line(FILE *out, const json_t *rollout);

#endif /* CANARY_KUBEROLLOUT_H */
