/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Log-linear latency buckets, shared so the kernel (which fills them) and
 * the agent (which reads percentiles out of them) can never disagree.
 */
#ifndef CANARY_HIST_H
#define CANARY_HIST_H

#include <linux/types.h>
#include "canary_consts.h"

#ifndef __canary_inline
#define __canary_inline static inline __attribute__((always_inline))
#endif

/* Index of the highest set bit, v > 0. No clz: the BPF ISA has none. */
__canary_inline __u32 canary_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* Bucket of a latency in microseconds. */
__canary_inline __u32 canary_hist_bucket(__u64 us)
{
	__u32 exp;

	if (us < CANARY_HIST_SUB)
		return (__u32)us;
	if (us >= (1ULL << CANARY_HIST_MAX_EXP))
		return CANARY_HIST_BUCKETS - 1;
	exp = canary_log2(us);
	return (exp - CANARY_HIST_SUB_BITS + 1) * CANARY_HIST_SUB +
	       (__u32)((us >> (exp - CANARY_HIST_SUB_BITS)) & (CANARY_HIST_SUB - 1));
}

/* Smallest latency (us) that falls into bucket idx. */
__canary_inline __u64 canary_hist_lower(__u32 idx)
{
	__u32 exp, sub;

	if (idx < CANARY_HIST_SUB)
		return idx;
	exp = idx / CANARY_HIST_SUB + CANARY_HIST_SUB_BITS - 1;
	sub = idx % CANARY_HIST_SUB;
	return (__u64)(CANARY_HIST_SUB + sub) << (exp - CANARY_HIST_SUB_BITS);
}

/* Width (us) of bucket idx; the last bucket is open-ended. */
__canary_inline __u64 canary_hist_width(__u32 idx)
{
	if (idx < CANARY_HIST_SUB)
		return 1;
	return 1ULL << (idx / CANARY_HIST_SUB - 1);
}

#endif /* CANARY_HIST_H */
