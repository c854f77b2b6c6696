/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first question for every packet: could its destination be a VIP?
 * Answered from vip_filter_v<N> (headers/canary_svcindex.h) without a hash
 * lookup, so traffic that is no service's pays a few instructions only.
 */
#ifndef CANARY_BPF_VIPFILTER_H
#define CANARY_BPF_VIPFILTER_H

#include "maps.h"

/* 0 when no service ever had the tuple's destination; 1 when one may have. */
__canary_inline int vip_filter_may_match(const struct canary_ct_key *tuple)
{
	__u64 h = canary_vip_hash(tuple->daddr, tuple->dport, tuple->proto);
	__u32 word = canary_vip_word(h);
	__u64 *bits = bpf_map_lookup_elem(&CANARY_MAP(vip_filter), &word);

	return bits && (*bits & canary_vip_bit(h));
}

#endif /* CANARY_BPF_VIPFILTER_H */
