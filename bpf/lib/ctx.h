/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Context-neutral access to packet bytes beyond the parsed headers. */
#ifndef CANARY_BPF_CTX_H
#define CANARY_BPF_CTX_H

#include "common.h"

/* Longest sniffed prefix: "HTTP/1.1 503" */
#define SNIFF_LEN 12
/* Bound on a payload offset: Ethernet + IP options + TCP options. */
#define MAX_PAYLOAD_OFF (ETH_HLEN + 60 + 60)

/*
 * Copy SNIFF_LEN bytes at off into buf. tc uses bpf_skb_load_bytes, which
 * also reads non-linear skbs; XDP reads the linear buffer directly.
 */
__canary_inline int ctx_load_sniff(void *ctx, enum canary_ctx_kind kind, __u32 off, char *buf)
{
	if (kind == CANARY_CTX_TC)
		return bpf_skb_load_bytes(ctx, off, buf, SNIFF_LEN);

	struct xdp_md *xdp = ctx;
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	char *p;

	if (off > MAX_PAYLOAD_OFF)
		return -1;
	p = data + off;
	if ((void *)(p + SNIFF_LEN) > data_end)
		return -1;
	__builtin_memcpy(buf, p, SNIFF_LEN);
	return 0;
}

#endif /* CANARY_BPF_CTX_H */
