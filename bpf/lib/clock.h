/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The conntrack clock: CLOCK_MONOTONIC_COARSE in ns, as
 * bpf_ktime_get_coarse_ns() reads it, mostly without calling it. The coarse
 * clock only moves when the tick updates the timekeeping, and jiffies moves
 * with it; reading jiffies is a load the verifier inlines, while the helper
 * is a call that costs more than the rest of a packet's bookkeeping. So each
 * CPU keeps the value it read during the current jiffy and reuses it for
 * every packet of that jiffy.
 *
 * A value read just as a tick ran (jiffies already moved, the clock not
 * yet) lags by that one tick for the rest of the jiffy: a few ms, against
 * conntrack ages checked to the second and reset epochs the agent takes
 * from the same clock.
 */
#ifndef CANARY_BPF_CLOCK_H
#define CANARY_BPF_CLOCK_H

#include "maps.h"

__canary_inline __u64 clock_coarse_ns(void)
{
	struct canary_clock_cache *c;
	__u32 zero = 0;
	__u64 j = bpf_jiffies64();
	__u64 ns;

	c = bpf_map_lookup_elem(&CANARY_MAP(clock_cache), &zero);
	if (c && c->jiffies == j)
		return c->coarse_ns;
	ns = bpf_ktime_get_coarse_ns();
	if (c) {
		c->jiffies = j;
		c->coarse_ns = ns;
	}
	return ns;
}

#endif /* CANARY_BPF_CLOCK_H */
