/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet operations for helpers compiled into both hooks: load, store and
 * checksum replace under one name set, each taking the program's
 * compile-time enum canary_ctx_kind. They call the hook's own set
 * (ctx/skb.h for tc, ctx/xdp.h for XDP); after inlining only that one is
 * left.
 */
#ifndef CANARY_BPF_CTX_H
#define CANARY_BPF_CTX_H

#include "common.h"
#include "ctx/skb.h"
#include "ctx/xdp.h"

__canary_inline int ctx_load_bytes(void *ctx, enum canary_ctx_kind kind, __u32 off, void *to,
				   __u32 len)
{
	if (kind == CANARY_CTX_TC)
		return ctx_skb_load_bytes(ctx, off, to, len);
	return ctx_xdp_load_bytes(ctx, off, to, len);
}

__canary_inline int ctx_store_bytes(void *ctx, enum canary_ctx_kind kind, __u32 off,
				    const void *from, __u32 len)
{
	if (kind == CANARY_CTX_TC)
		return ctx_skb_store_bytes(ctx, off, from, len);
	return ctx_xdp_store_bytes(ctx, off, from, len);
}

/* The TCP/UDP checksum at off; flags as bpf_l4_csum_replace()'s. */
__canary_inline int ctx_l4_csum_replace(void *ctx, enum canary_ctx_kind kind, __u32 off, __u32 from,
					__u32 to, __u64 flags)
{
	if (kind == CANARY_CTX_TC)
		return ctx_skb_l4_csum_replace(ctx, off, from, to, flags);
	return ctx_xdp_l4_csum_replace(ctx, off, from, to, flags);
}

/* Longest sniffed prefix: "HTTP/1.1 503" */
#define SNIFF_LEN 12
/* Bound on a payload offset: Ethernet + IP options + TCP options. */
#define MAX_PAYLOAD_OFF (ETH_HLEN + 60 + 60)

/*
 * Copy SNIFF_LEN bytes at off into buf. tc also reads non-linear skbs; XDP
 * reads the linear buffer, up to the furthest a payload can start.
 */
__canary_inline int ctx_load_sniff(void *ctx, enum canary_ctx_kind kind, __u32 off, char *buf)
{
	if (kind == CANARY_CTX_XDP && off > MAX_PAYLOAD_OFF)
		return -1;
	return ctx_load_bytes(ctx, kind, off, buf, SNIFF_LEN);
}

#endif /* CANARY_BPF_CTX_H */
