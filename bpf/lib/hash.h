/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow hashing. A 32-bit multiply-xorshift mixer: cheap in BPF, and every
 * input bit affects every output bit, so "hash % 10000 < weight" splits
 * evenly even when only the client port changes.
 */
#ifndef CANARY_BPF_HASH_H
#define CANARY_BPF_HASH_H

#include "common.h"

__canary_inline __u32 hash_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x7feb352dU;
	h ^= h >> 15;
	h *= 0x846ca68bU;
	h ^= h >> 16;
	return h;
}

__canary_inline __u32 hash_client(__be32 saddr, __u32 seed)
{
	return hash_mix(hash_mix(seed) ^ saddr);
}

__canary_inline __u32 hash_tuple(const struct canary_ct_key *t, __u32 seed)
{
	__u32 h = hash_client(t->saddr, seed);

	h = hash_mix(h ^ t->daddr);
	h = hash_mix(h ^ (((__u32)t->sport << 16) | t->dport));
	return hash_mix(h ^ t->proto);
}

#endif /* CANARY_BPF_HASH_H */
