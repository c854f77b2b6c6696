/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first question for every packet: could it be ours? Ingress asks
 * whether its destination could be a VIP (vip_filter_v<N>), egress whether
 * its source could be a backend (be_filter_v<N>), both answered
 * without a hash lookup (headers/canary_svcindex.h), so traffic that is no
 * service's pays a few instructions only.
 */
#ifndef CANARY_BPF_VIPFILTER_H
#define CANARY_BPF_VIPFILTER_H

#include "maps.h"

/* 0 when addr:port/proto has no bit in filter; 1 when it may have been written. */
__canary_inline int filter_may_match(void *filter, __be32 addr, __be16 port, __u8 proto)
{
	__u64 h = canary_vip_hash(addr, port, proto);
	__u32 word = canary_vip_word(h);
	__u64 *bits = bpf_map_lookup_elem(filter, &word);

	return bits && (*bits & canary_vip_bit(h));
}

/* 0 when no service ever had the tuple's destination as its VIP. */
__canary_inline int vip_filter_may_match(const struct canary_ct_key *tuple)
{
	return filter_may_match(&CANARY_MAP(vip_filter), tuple->daddr, tuple->dport, tuple->proto);
}

/* 0 when no service ever had the tuple's source as a backend. */
__canary_inline int backend_filter_may_match(const struct canary_ct_key *tuple)
{
	return filter_may_match(&CANARY_MAP(be_filter), tuple->saddr, tuple->sport, tuple->proto);
}

#endif /* CANARY_BPF_VIPFILTER_H */
