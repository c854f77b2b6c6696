/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Two small indexes of services_v<N> that let a packet skip hash lookups:
 *
 *   vip_filter_v<N> (array of 64-bit words): a one-hash Bloom filter of
 *     every VIP:port/proto a service has had since the map was created. A
 *     packet whose destination has no bit set is not for a service and
 *     belongs to no flow of one (a forward entry is keyed by the VIP the
 *     client sent to), so it skips the conntrack, half-open and service
 *     lookups. Bits are set, never cleared: the flows of a deleted
 *     service still need their entries until they end. A false positive
 *     only costs the lookups the filter would have spared.
 *
 *   be_filter_v<N> (the same layout and hash): every backend
 *     address:port/proto a service has had, stable, canary or draining. A
 *     packet on egress whose source has no bit set is no backend's reply
 *     (a reverse entry is keyed by the backend's address), so it skips the
 *     conntrack and half-open lookups. Set and never cleared, as above.
 *
 *   svc_gens_v<N> (array indexed by service id, struct canary_svc_gen in
 *     canary_structs.h): each live service's
 *     generation and reset epoch, the two fields an established flow checks
 *     on every packet. A flow whose entry carries its service's current
 *     generation needs no service lookup (bpf/lib/svcgen.h). A deleted
 *     service's slot holds generation 0, which no entry carries.
 *
 * Writers update services_v<N> first and the indexes after it
 * (userspace/svcindex.c), so a program that sees a new generation here
 * finds the new service value there.
 */
#ifndef CANARY_SVCINDEX_H
#define CANARY_SVCINDEX_H

#include <linux/types.h>
#include "canary_consts.h"

#ifndef __canary_inline
#define __canary_inline static inline __attribute__((always_inline))
#endif

/*
 * Fibonacci hashing of VIP:port/proto (or, for be_filter_v<N>, a
 * backend's address:port/proto) as the packet carries them (network
 * order, read as integers: the same bits on both sides of the map).
 */
__canary_inline __u64 canary_vip_hash(__be32 vip, __be16 port, __u8 proto)
{
	__u64 key = ((__u64)vip << 32) | ((__u64)port << 16) | proto;

	return key * 0x9e3779b97f4a7c15ULL;
}

/* The word of the filter a hash falls in: its top bits. */
__canary_inline __u32 canary_vip_word(__u64 hash)
{
	return (__u32)(hash >> (64 - (CANARY_VIP_FILTER_BITS - 6)));
}

/* The bit inside that word: six bits below the word's. */
__canary_inline __u64 canary_vip_bit(__u64 hash)
{
	return 1ULL << ((hash >> (64 - CANARY_VIP_FILTER_BITS)) & 63);
}

#endif /* CANARY_SVCINDEX_H */
