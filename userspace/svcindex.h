/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Writing a service so that the data path's two indexes of it stay true
 * (headers/canary_svcindex.h): the VIP filter and the generation records.
 * Every writer of services_v<N> goes through here: the loader library, the
 * BPF tests and the benchmarks alike.
 */
#ifndef CANARY_SVCINDEX_USER_H
#define CANARY_SVCINDEX_USER_H

#include <linux/types.h>

#include "canary_structs.h"

/* The three maps' descriptors. filter or gens is -1 with pins older than it. */
struct svcindex_fds {
	int services;
	int filter;
	int gens;
};

/* Set the filter bit of a VIP:port/proto. Bits are never cleared. */
int svcindex_mark_vip(int filter_fd, __be32 vip, __be16 port, __u8 proto);

/*
 * Write svc under key with flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST): the
 * filter bit first, then the service, then its generation record. The
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
 * Set the filter bit of the VIP of every forward entry in a conntrack-type
 * map (conntrack_v<N> or ct_syn_v<N>): a filter created after the flows it
 * must let through. Walks at most max keys.
 */
int svcindex_mark_flows(int filter_fd, int ct_fd, __u32 max);

#endif /* CANARY_SVCINDEX_USER_H */
