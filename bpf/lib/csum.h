/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ones'-complement helpers for XDP, where no csum_replace helper exists. */
#ifndef CANARY_BPF_CSUM_H
#define CANARY_BPF_CSUM_H

#include "common.h"

__canary_inline __u16 csum_fold(__s64 csum)
{
	__u64 sum = (__u64)csum & 0xffffffffULL;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1624 incremental update of a checksum for one changed 32-bit word. */
__canary_inline __u16 csum_replace4(__u16 check, __be32 from, __be32 to)
{
	return csum_fold(bpf_csum_diff(&from, sizeof(from), &to, sizeof(to), (__u16)~check));
}

#endif /* CANARY_BPF_CSUM_H */
