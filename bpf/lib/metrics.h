/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counters: plain increments, the agent sums the CPUs. */
#ifndef CANARY_BPF_METRICS_H
#define CANARY_BPF_METRICS_H

#include "maps.h"

__canary_inline void reason_count(enum canary_reason reason)
{
	__u32 key = reason;
	__u64 *val = bpf_map_lookup_elem(&CANARY_MAP(reasons), &key);

	if (val)
		*val += 1;
}

__canary_inline struct canary_metrics *metrics_of(__u32 svc_id, __u8 version)
{
	__u32 key = svc_id * CANARY_V_COUNT + (version & 1);

	return bpf_map_lookup_elem(&CANARY_MAP(metrics), &key);
}

__canary_inline void metrics_latency(struct canary_metrics *m, __u64 ns)
{
	__u64 us = ns / 1000;
	__u32 idx = canary_hist_bucket(us);

	m->latency_count += 1;
	m->latency_sum_us += us;
	if (idx < CANARY_HIST_BUCKETS)
		m->latency_hist[idx] += 1;
}

#define HTTP_SWITCHING_PROTOCOLS 101

/* Status code from the first response bytes "HTTP/1.x NNN" (100..599); 0 if not one. */
__canary_inline __u32 http_status_code(const char *b)
{
	if (b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' || b[4] != '/' ||
	    b[5] != '1' || b[6] != '.' || b[8] != ' ')
		return 0;
	if (b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9')
		return 0;
	return (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
}

#endif /* CANARY_BPF_METRICS_H */
