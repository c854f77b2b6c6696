// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Programs that do nothing, attached in place of canaryd's in the
 * benchmarks: the difference in cost is what canaryd itself adds.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* bpf_helpers.h defines SEC; this is for analysers that skip system headers. */
#ifndef SEC
#define SEC(name) __attribute__((section(name), used))
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	(void)skb;
	return TC_ACT_OK;
}

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}
