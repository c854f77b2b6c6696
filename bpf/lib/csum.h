/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ones'-complement helpers for XDP, where no csum_replace helper exists.
 * Plain arithmetic, no helper call: on the established path of an XDP
 * program the two checksum updates were two bpf_csum_diff() calls, each
 * costing more than the sum it computes.
 */
#ifndef CANARY_BPF_CSUM_H
#define CANARY_BPF_CSUM_H

#include "common.h"

/* Fold a sum of 16-bit words (at most 32 bits wide) to 16 bits and complement it. */
__canary_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * RFC 1624 incremental update, HC' = ~(~HC + ~m + m'), of a checksum for
 * one changed 32-bit word. The halves are added as the machine reads them
 * from the packet, like the checksum itself: ones'-complement sums do not
 * depend on byte order. A 16-bit field passed zero-extended adds its own
 * word and 0 (~0 is 0xffff, the other zero).
 */
__canary_inline __u16 csum_replace4(__u16 check, __be32 from, __be32 to)
{
	__u32 nfrom = ~(__u32)from;
	__u64 sum = (__u16)~check;

	sum += (nfrom & 0xffff) + (nfrom >> 16);
	sum += ((__u32)to & 0xffff) + ((__u32)to >> 16);
	return csum_fold(sum);
}

/*
 * The IPv4 header from its checksum on: the checksum and both addresses are
 * adjacent, so a rewrite stores all three at once.
 */
struct ipv4_check_addrs {
	__u16 check;
	__be32 saddr;
	__be32 daddr;
} __attribute__((packed));

/*
 * The same through the L4 ports, for a header without options: the ports
 * then follow the addresses, and one store writes them all.
 */
struct ipv4_check_addrs_ports {
	struct ipv4_check_addrs ip;
	__be16 sport;
	__be16 dport;
} __attribute__((packed));

#endif /* CANARY_BPF_CSUM_H */
