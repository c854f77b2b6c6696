// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The conntrack map's entry count, for the agent, in O(1).
 *
 * Hash maps keep a per-CPU element count (Linux 6.6 and later), which the
 * bpf_map_sum_elem_count kfunc sums. The agent runs this program with
 * BPF_PROG_TEST_RUN once a tick, in microseconds; reading the map's 262,144
 * entries from user space instead takes tens of milliseconds even in batches.
 * With the entries created (ct_stats_v1), the count gives the LRU's evictions.
 *
 * A kernel without the kfunc refuses this object, not the data path's: the
 * agent then falls back to walking the map.
 */
#include "lib/common.h"
#include "lib/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Only the pointer's type matters to the kfunc; the kernel's BTF has the rest. */
struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));

extern __s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym;

SEC("syscall")
int canary_ct_count(struct canary_ct_count_args *args)
{
	args->entries = bpf_map_sum_elem_count((const struct bpf_map *)&conntrack_v1);
	return 0;
}
