/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow cache (bpf/lib/flowcache.h): per CPU, a direct-mapped copy of
 * the few fields of a conntrack entry (forward for ingress, reverse for
 * egress) that a packet of a settled flow needs, in front of the conntrack
 * lookup. Two maps, neither pinned:
 *
 *   flow_cache_v<N> (per-CPU array of struct canary_flow_cache): the
 *     copies, one slot per key hash.
 *
 *   fc_gens_v<N> (array of __u32, shared by all CPUs): each slot's
 *     generation. A copy is used only while its slot's generation is the
 *     one it was filled under. Whatever writes a conntrack entry, or
 *     changes one other than in its age and flags, adds one to the
 *     generation of the entry's slot after the change, which drops every
 *     CPU's copy of it.
 *
 * The slot is chosen here, and keys compared, so that a writer outside the
 * programs (a test that edits conntrack) and the benchmarks do the same.
 */
#ifndef CANARY_FLOWCACHE_H
#define CANARY_FLOWCACHE_H

#include <linux/types.h>
#include "canary_structs.h"

#ifndef __canary_inline
#define __canary_inline static inline __attribute__((always_inline))
#endif

/* 4096 slots: 224 KiB per CPU. */
#define CANARY_FLOW_CACHE_BITS	  12
#define CANARY_FLOW_CACHE_ENTRIES (1U << CANARY_FLOW_CACHE_BITS)

/*
 * Fibonacci hashing of the key's addresses, xor its ports and protocol
 * shifted up by 7 bits so that the ports do not only flip the addresses'
 * low bits. Read as integers in host order: the same on both sides of the
 * map.
 */
__canary_inline __u32 canary_flow_cache_slot(const struct canary_ct_key *key)
{
	__u64 lo = ((__u64)key->daddr << 32) | key->saddr;
	__u64 hi = ((__u64)key->proto << 32) | ((__u64)key->dport << 16) | key->sport;

	return (__u32)(((lo ^ (hi << 7)) * 0x9e3779b97f4a7c15ULL) >> (64 - CANARY_FLOW_CACHE_BITS));
}

/* Whether two conntrack keys name the same entry (their padding aside). */
__canary_inline int canary_ct_key_equal(const struct canary_ct_key *a,
					const struct canary_ct_key *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
}

#endif /* CANARY_FLOWCACHE_H */
