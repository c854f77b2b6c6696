/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack lifetimes: how long an idle entry stays before the expiry pass
 * (bpf/ct_count.bpf.c) removes it. canaryd --conntrack-lifetimes sets them.
 */
#ifndef CANARY_CTLIFETIMES_H
#define CANARY_CTLIFETIMES_H

#include <stddef.h>
#include <linux/types.h>

struct ct_lifetimes {
	__u64 closed_ns;      /* TCP flow over: a RST, or a FIN each way */
	__u64 syn_ns;	      /* handshake not completed (half-open table) */
	__u64 established_ns; /* TCP flow set up */
	__u64 udp_ns;
	__u64 reply_ns; /* a reverse entry without a reply */
};

/* Bounds of one lifetime: the pass runs once a second; 30 days is plenty. */
#define CT_LIFETIME_MIN_S 1
#define CT_LIFETIME_MAX_S (30ULL * 24 * 3600)

/* The defaults of headers/canary_consts.h (Cilium's). */
void ct_lifetimes_default(struct ct_lifetimes *lt);

/*
 * Parse "closed=10s,syn=60s,established=6h,udp=60s,reply=60s", any subset
 * in any order, over lt (fields not named keep their value). Durations are
 * a whole number with a unit s, m, h or d. Returns 0, or -EINVAL with lt
 * untouched and a message naming the field in err.
 */
int ct_lifetimes_parse(const char *text, struct ct_lifetimes *lt, char *err, size_t err_size);

#endif /* CANARY_CTLIFETIMES_H */
