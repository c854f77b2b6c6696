/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The loader library: loads canaryd's kernel programs (reusing pinned maps),
 * and reads and writes those maps. Used by the agent, and by canaryctl,
 * which opens only the pinned maps so it works while the agent is down.
 */
#ifndef CANARY_DATAPLANE_H
#define CANARY_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "canary_structs.h"
#include "defaults.h"

enum dp_map {
	DP_MAP_SERVICES,
	DP_MAP_CONNTRACK,
	DP_MAP_OVERRIDES,
	DP_MAP_METRICS,
	DP_MAP_REASONS,
	DP_MAP_CT_STATS,
	DP_MAP_FRAGS,
	DP_MAP_CT_EXPIRED,
	DP_MAP_KILLSWITCH,
	DP_MAP_CT_SYN,
	DP_MAP_VIP_FILTER,
	DP_MAP_SVC_GENS,
	DP_MAP_BACKEND_FILTER,
	DP_MAP_COUNT,
};

enum dp_prog {
	DP_PROG_TC_INGRESS,
	DP_PROG_TC_EGRESS,
	DP_PROG_XDP_INGRESS,
	DP_PROG_COUNT,
};

struct canary_dp;

/*
 * Bounds of the conntrack map's size (entries; a flow takes two). The kernel
 * keeps up to 128 free entries per CPU for its LRU, so a small map on a node
 * with many CPUs starts to evict before it looks full. The largest is 2M
 * flows, 512 MiB of locked memory.
 */
#define DP_CT_ENTRIES_MIN 1024
#define DP_CT_ENTRIES_MAX (1 << 22)

/*
 * Load the programs; maps are reused from bpffs when pinned there, else
 * pinned. ct_entries sizes a new conntrack map (0: CANARY_CT_MAX_ENTRIES);
 * a pinned one keeps its size, and its flows.
 */
int dp_load(const char *bpffs, __u32 ct_entries, struct canary_dp **out);
/* Open the pinned maps only (no programs): for tools that read or patch state. */
int dp_open_pinned(const char *bpffs, struct canary_dp **out);
void dp_close(struct canary_dp *dp);
/* Unpin every map under bpffs and remove the directory if it is then empty. */
int dp_unpin(const char *bpffs);
/*
 * Pin again every map whose pin under bpffs is gone (removed by hand): the
 * maps themselves live on in the programs and in dp. *restored counts them.
 */
int dp_repin_missing(struct canary_dp *dp, const char *bpffs, unsigned int *restored);

const char *dp_map_name(enum dp_map map);
int dp_map_fd(const struct canary_dp *dp, enum dp_map map);
/* The conntrack map's size in entries, as the kernel has it. */
__u32 dp_ct_capacity(const struct canary_dp *dp);
/* -1 when opened with dp_open_pinned. */
int dp_prog_fd(const struct canary_dp *dp, enum dp_prog prog);

/*
 * Write a service. The id and generation are managed here: an existing
 * service keeps its id (its metrics go on), a new one gets a free id with
 * zeroed metrics. svc->id is set on return.
 */
int dp_service_put(struct canary_dp *dp, const struct canary_service_key *key,
		   struct canary_service *svc);
int dp_service_get(const struct canary_dp *dp, const struct canary_service_key *key,
		   struct canary_service *svc);
/* Delete a service and its overrides; its established flows run on. */
int dp_service_delete(struct canary_dp *dp, const struct canary_service_key *key);
/* Find a service by its rollout name. Returns -ENOENT when there is none. */
int dp_service_find(const struct canary_dp *dp, const char *name, struct canary_service_key *key,
		    struct canary_service *svc);
/* Call fn for every service; stops early when fn returns non-zero. */
int dp_service_each(const struct canary_dp *dp,
		    int (*fn)(const struct canary_service_key *, const struct canary_service *,
			      void *),
		    void *arg);

int dp_override_put(struct canary_dp *dp, __u32 svc_id, __be32 addr, __u8 prefixlen,
		    enum canary_version version);
/* Remove every override of a service. */
int dp_override_clear(struct canary_dp *dp, __u32 svc_id);
/*
 * Make a service's overrides exactly these: new ones are written first and
 * stale ones removed after, so no client loses its override in between.
 */
int dp_override_sync(struct canary_dp *dp, __u32 svc_id, const __be32 *addrs,
		     const __u8 *prefixlens, const enum canary_version *versions, int n);

/*
 * Ask the kernel to reset every established canary flow of a service: sets
 * the service's reset epoch (reset_ns) to now, and the next packet of each
 * canary flow that began at or before it gets the client a RST. Conntrack
 * entries are not written. *count is how many such flows there were, in
 * conntrack and (still in their handshake) the half-open table.
 */
int dp_reset_canary_flows(struct canary_dp *dp, __u32 svc_id, unsigned int *count);
/*
 * The operator's kill switch of a service (killswitch_v<N>): while engaged the
 * data path sends no new flow to the canary. Only canaryctl sets and clears
 * it; the agent reads it. -ENOENT from set/clear when the pins predate it.
 */
int dp_killswitch_set(struct canary_dp *dp, const struct canary_service_key *key, bool engaged);
/* false when not engaged, or when the pins predate killswitch_v<N>. */
bool dp_killswitch_engaged(const struct canary_dp *dp, const struct canary_service_key *key);
/* Call fn for every conntrack entry; stops early when fn returns non-zero. */
int dp_flow_each(const struct canary_dp *dp,
		 int (*fn)(const struct canary_ct_key *, const struct canary_ct_entry *, void *),
		 void *arg);
/*
 * Number of conntrack entries (forward and reverse): O(1) where the kernel
 * can count them (dp_flow_count_is_cheap), else a walk of the whole map.
 */
int dp_flow_count(struct canary_dp *dp, unsigned int *count);
bool dp_flow_count_is_cheap(struct canary_dp *dp);
/* The same by walking the map, whatever the kernel offers (for tests and benchmarks). */
int dp_flow_count_walked(const struct canary_dp *dp, unsigned int *count);
/*
 * Entries in the conntrack and entries ever created (ct_stats_v<N>), read in
 * that order: an entry created between the two reads lowers created minus
 * entries, never raises it. *created is -1 with pins older than ct_stats_v<N>.
 */
int dp_ct_read(struct canary_dp *dp, unsigned int *entries, long long *created);
/*
 * Evictions so far, from entries created and entries in the map, never less
 * than prev: the two reads are not one snapshot, and a counter only grows.
 * Pass created minus dp_ct_expired(): entries the expiry removed were not
 * evicted.
 */
__u64 dp_ct_evictions(__u64 created, __u64 entries, __u64 prev);
/*
 * Remove expired conntrack entries (closed flows, idle ones: see
 * CANARY_CT_*_NS), at most once a second whatever the calls; *expired is
 * how many this call removed. -ENOTSUP where the kernel cannot run the pass.
 */
int dp_ct_expire(struct canary_dp *dp, unsigned int *expired);
/*
 * The lifetimes the expiry pass applies from now on (default: those of
 * headers/canary_consts.h). They are constants of its program, which is
 * loaded again on its next use.
 */
struct ct_lifetimes;
void dp_set_ct_lifetimes(struct canary_dp *dp, const struct ct_lifetimes *lt);
/* Entries the expiry passes ever removed (ct_expired_v<N>); 0 with older pins. */
__u64 dp_ct_expired(const struct canary_dp *dp);

/* Sum of the per-CPU metrics of one service version. */
/* Safe to call from several threads: the per-CPU buffer is locked inside. */
int dp_metrics_read(struct canary_dp *dp, __u32 svc_id, enum canary_version version,
		    struct canary_metrics *sum);
int dp_reasons_read(const struct canary_dp *dp, __u64 reasons[CANARY_R_COUNT]);
const char *dp_reason_name(enum canary_reason reason);

#endif /* CANARY_DATAPLANE_H */
