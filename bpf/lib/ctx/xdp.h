/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet operations of the XDP hook (struct xdp_md), the same set as skb.h
 * under ctx_xdp_*: the frame is one linear buffer, read and written in place,
 * and checksums are updated by RFC 1624 arithmetic (csum.h), as the skb helpers
 * would. Lengths are constants after inlining.
 */
#ifndef CANARY_BPF_CTX_XDP_H
#define CANARY_BPF_CTX_XDP_H

#include "../common.h"
#include "../csum.h"

/* A bound on offsets the verifier can see; every offset we use is far below it. */
#define CTX_XDP_MAX_OFF 0x3fff

/* The bytes [off, off + len) of the frame, or NULL when they are not all there. */
__canary_inline void *ctx_xdp_ptr(struct xdp_md *xdp, __u32 off, __u32 len)
{
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	void *p;

	if (off > CTX_XDP_MAX_OFF)
		return NULL;
	p = data + off;
	if (p + len > data_end)
		return NULL;
	return p;
}

__canary_inline int ctx_xdp_load_bytes(struct xdp_md *xdp, __u32 off, void *to, __u32 len)
{
	void *p = ctx_xdp_ptr(xdp, off, len);

	if (!p)
		return -1;
	__builtin_memcpy(to, p, len);
	return 0;
}

__canary_inline int ctx_xdp_store_bytes(struct xdp_md *xdp, __u32 off, const void *from, __u32 len)
{
	void *p = ctx_xdp_ptr(xdp, off, len);

	if (!p)
		return -1;
	__builtin_memcpy(p, from, len);
	return 0;
}

/*
 * As bpf_l4_csum_replace(): BPF_F_PSEUDO_HDR changes nothing here (no device
 * completes the sum, the pseudo-header is one more word of it), and with
 * BPF_F_MARK_MANGLED_0 (UDP) a zero checksum means "none" and stays so,
 * while a computed zero is sent as 0xffff.
 */
__canary_inline int ctx_xdp_l4_csum_replace(struct xdp_md *xdp, __u32 off, __u32 from, __u32 to,
					    __u64 flags)
{
	__u16 *check = ctx_xdp_ptr(xdp, off, sizeof(*check));
	int mangled_0 = !!(flags & BPF_F_MARK_MANGLED_0);

	if (!check)
		return -1;
	if (mangled_0 && !*check)
		return 0;
	*check = csum_replace4(*check, from, to);
	if (mangled_0 && !*check)
		*check = 0xffff;
	return 0;
}

#endif /* CANARY_BPF_CTX_XDP_H */
