/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow cache's slot generations (headers/canary_flowcache.h): what a
 * writer of conntrack needs of the cache. Kept apart from flowcache.h,
 * which reads conntrack, so that conntrack.h can include it.
 */
#ifndef CANARY_BPF_FCGEN_H
#define CANARY_BPF_FCGEN_H

#include "maps.h"

/*
 * One generation per slot, shared by the CPUs. Not pinned: it guards the
 * copies of flowcache.h, which a new load starts empty.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CANARY_FLOW_CACHE_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} CANARY_MAP(fc_gens) SEC(".maps");

/*
 * The conntrack entry of key changed (or may have): drop every CPU's copy
 * of it. Called after the change: a copy made from the entry as it was
 * carries an older generation.
 */
__canary_inline void fc_invalidate(const struct canary_ct_key *key)
{
	__u32 slot = canary_flow_cache_slot(key);
	__u32 *gen = bpf_map_lookup_elem(&CANARY_MAP(fc_gens), &slot);

	if (gen)
		__sync_fetch_and_add(gen, 1);
}

#endif /* CANARY_BPF_FCGEN_H */
