/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Writing a service so that the data path's indexes of it stay true
 * (headers/canary_svcindex.h): the VIP and backend filters and the
 * generation records.
 * Every writer of services_v<N> goes through here: the loader library, the
 * BPF tests and the benchmarks alike.
 */
#ifndef CANARY_SVCINDEX_USER_H
#define CANARY_SVCINDEX_USER_H

#include <linux/types.h>

#include "canary_structs.h"

/* The maps' descriptors. filter, backends or gens is -1 with pins older than it. */
struct svcindex_fds {
	int services;
	int filter;   /* vip_filter_v<N> */
	int backends; /* be_filter_v<N> */
	int gens;
};

/* Set the bit of addr:port/proto in a filter (either). Bits are never cleared. */
int svcindex_mark(int filter_fd, __be32 addr, __be16 port, __u8 proto);

/*
 * Write svc under key with flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST): the
 * filter bits first (its VIP's and its backends'), then the service, then
 * its generation record. The
 * record is cleared before the service is written, so a failure on the way
 * leaves it 0 (full checks) and never an older generation.
 */
int svcindex_put(const struct svcindex_fds *fds, const struct canary_service_key *key,
		 const struct canary_service *svc, __u64 flags);

/* Delete the service of key, whose id is id, and clear its generation record. */
int svcindex_delete(const struct svcindex_fds *fds, const struct canary_service_key *key, __u32 id);

/* Set the filter bits and records of every service in the map (after a load). */
int svcindex_sync(const struct svcindex_fds *fds);

/*
 * Set, in filters created after the flows they must let through, the bits
 * of the flows of a conntrack-type map (conntrack_v<N> or ct_syn_v<N>):
 * each forward entry's VIP in filter_fd, each reverse entry's backend in
 * backend_fd. Either is -1 when it needs no bits. Walks at most max keys.
 */
int svcindex_mark_flows(int filter_fd, int backend_fd, int ct_fd, __u32 max);

#endif /* CANARY_SVCINDEX_USER_H */
