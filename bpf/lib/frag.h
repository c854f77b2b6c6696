/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragmented datagrams. Only the first fragment carries the TCP/UDP ports;
 * it leaves them in frags_v<N> under the datagram's identity, where the later
 * fragments find them, so every fragment follows the flow's translation.
 * A later fragment that arrives before its first one cannot be placed and
 * passes untouched, as in Cilium's IPv4 fragment tracking.
 */
#ifndef CANARY_BPF_FRAG_H
#define CANARY_BPF_FRAG_H

#include "maps.h"

#define IP_MF		  0x2000 /* more fragments */
#define IP_OFFSET_MASK	  0x1fff /* fragment offset, in 8-byte units */
#define IP_MF_OFFSET_MASK (IP_MF | IP_OFFSET_MASK)

__canary_inline int ip_is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF_OFFSET_MASK)) != 0;
}

/* A fragment past the first: no L4 header in it. */
__canary_inline int ip_is_later_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) != 0;
}

__canary_inline void frag_key_of(const struct iphdr *ip, struct canary_frag_key *key)
{
	key->saddr = ip->saddr;
	key->daddr = ip->daddr;
	key->id = ip->id;
	key->proto = ip->protocol;
	key->pad = 0;
}

__canary_inline void frag_remember(const struct iphdr *ip, __be16 sport, __be16 dport)
{
	struct canary_frag_ports ports = { .sport = sport, .dport = dport };
	struct canary_frag_key key;

	frag_key_of(ip, &key);
	bpf_map_update_elem(&CANARY_MAP(frags), &key, &ports, BPF_ANY);
}

/* Ports of the datagram a later fragment belongs to, or NULL if unknown. */
__canary_inline const struct canary_frag_ports *frag_recall(const struct iphdr *ip)
{
	struct canary_frag_key key;

	frag_key_of(ip, &key);
	return bpf_map_lookup_elem(&CANARY_MAP(frags), &key);
}

#endif /* CANARY_BPF_FRAG_H */
