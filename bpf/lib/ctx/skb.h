/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet operations of the tc hook (struct __sk_buff): the kernel's helpers,
 * which also reach non-linear data and keep CHECKSUM_PARTIAL skbs right
 * (BPF_F_PSEUDO_HDR updates only the pseudo-header part a device will
 * complete). xdp.h has the same set under ctx_xdp_*; ../ctx.h picks one by
 * the program's enum canary_ctx_kind.
 */
#ifndef CANARY_BPF_CTX_SKB_H
#define CANARY_BPF_CTX_SKB_H

#include "../common.h"

__canary_inline int ctx_skb_load_bytes(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	return bpf_skb_load_bytes(skb, off, to, len);
}

__canary_inline int ctx_skb_store_bytes(struct __sk_buff *skb, __u32 off, const void *from,
					__u32 len)
{
	return bpf_skb_store_bytes(skb, off, from, len, 0);
}

/* The TCP/UDP checksum at off; flags: the field's size, BPF_F_PSEUDO_HDR, BPF_F_MARK_MANGLED_0. */
__canary_inline int ctx_skb_l4_csum_replace(struct __sk_buff *skb, __u32 off, __u32 from, __u32 to,
					    __u64 flags)
{
	return bpf_l4_csum_replace(skb, off, from, to, flags);
}

#endif /* CANARY_BPF_CTX_SKB_H */
