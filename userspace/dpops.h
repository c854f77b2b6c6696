/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the agent asks of the data plane, as a table of functions: the
 * kernel's (dp_ops_kernel, over dataplane.c) in canaryd, an in-memory
 * double of this interface in the agent's unit tests. Only the calls the
 * agent makes are here; canaryctl and the BPF suite use dataplane.h.
 */
#ifndef CANARY_DPOPS_H
#define CANARY_DPOPS_H

#include <stdbool.h>

#include "dataplane.h"

typedef int (*dp_service_fn)(const struct canary_service_key *key, const struct canary_service *svc,
			     void *arg);

struct dp_ops {
	int (*service_put)(void *dp, const struct canary_service_key *key,
			   struct canary_service *svc);
	int (*service_get)(void *dp, const struct canary_service_key *key,
			   struct canary_service *svc);
	int (*service_delete)(void *dp, const struct canary_service_key *key);
	int (*service_each)(void *dp, dp_service_fn fn, void *arg);
	int (*override_sync)(void *dp, __u32 svc_id, const __be32 *addrs, const __u8 *prefixlens,
			     const enum canary_version *versions, int n);
	int (*reset_canary_flows)(void *dp, __u32 svc_id, unsigned int *count);
	bool (*killswitch_engaged)(void *dp, const struct canary_service_key *key);
	int (*metrics_read)(void *dp, __u32 svc_id, enum canary_version version,
			    struct canary_metrics *out);
	/* Conntrack, for the data-path watcher. */
	__u32 (*ct_capacity)(void *dp);
	bool (*flow_count_is_cheap)(void *dp);
	int (*ct_read)(void *dp, unsigned int *entries, long long *created);
	int (*ct_expire)(void *dp, unsigned int *expired);
	__u64 (*ct_expired)(void *dp);
	/* Pin again what someone removed from bpffs. */
	int (*repin_missing)(void *dp, const char *bpffs, unsigned int *restored);
};

/* The kernel's maps: dp is a struct canary_dp *. */
extern const struct dp_ops dp_ops_kernel;

#endif /* CANARY_DPOPS_H */
