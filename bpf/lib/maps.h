/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The maps, pinned by name under the agent's bpffs root (default
 * /sys/fs/bpf/canaryd). Names carry the layout version of headers/.
 */
#ifndef CANARY_BPF_MAPS_H
#define CANARY_BPF_MAPS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CANARY_MAX_SERVICES);
	/* Updates replace the element under RCU: no torn reads (canary_structs.h). */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct canary_service_key);
	__type(value, struct canary_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(services) SEC(".maps");

/*
 * Every VIP a service has had, as a Bloom filter: packets for none skip all
 * hash lookups (headers/canary_svcindex.h). An array, so a lookup is a few
 * inlined instructions.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CANARY_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(vip_filter) SEC(".maps");

/*
 * Every backend address a service has had, the same kind of filter: a
 * packet on egress from none is no reply of ours and skips all lookups.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CANARY_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(be_filter) SEC(".maps");

/* Each service's generation and reset epoch by id: established flows check these. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CANARY_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct canary_svc_gen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(svc_gens) SEC(".maps");

/* The operator's kill switch per service: written by canaryctl only. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CANARY_MAX_SERVICES);
	__type(key, struct canary_service_key);
	__type(value, struct canary_killswitch);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(killswitch) SEC(".maps");

/* Shared, not per-CPU: a reply may be handled on another CPU than its request. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CANARY_CT_MAX_ENTRIES);
	__type(key, struct canary_ct_key);
	__type(value, struct canary_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(conntrack) SEC(".maps");

/*
 * Half-open TCP flows: a SYN's choice (forward entry) and the VIP of its
 * SYN-ACK (reverse entry), kept out of conntrack until the client's ACK
 * answers the SYN-ACK (bpf/lib/synstate.h). Spoofed SYNs churn this small
 * table only, not the established flows'. Same key and value as conntrack.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CANARY_CT_SYN_MAX_ENTRIES);
	__type(key, struct canary_ct_key);
	__type(value, struct canary_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(ct_syn) SEC(".maps");

/* Ports of fragmented datagrams, learnt from their first fragment. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CANARY_MAX_FRAGS);
	__type(key, struct canary_frag_key);
	__type(value, struct canary_frag_ports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(frags) SEC(".maps");

/* Written by the agent's expiry pass only (canary_ct_expire), one run at a time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct canary_ct_expired);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(ct_expired) SEC(".maps");

/* Per-CPU: every CPU's new-flow path counts without contention. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct canary_ct_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(ct_stats) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CANARY_MAX_OVERRIDES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct canary_override_key);
	__type(value, struct canary_override);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(overrides) SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CANARY_MAX_SERVICES *CANARY_V_COUNT);
	__type(key, __u32);
	__type(value, struct canary_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(metrics) SEC(".maps");

/*
 * Each CPU's last reading of the coarse clock (clock.h). Not pinned: it is
 * a cache of the programs, which a new load may start empty.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct canary_clock_cache);
} CANARY_MAP(clock_cache) SEC(".maps");

/*
 * The flow cache's maps are declared where they are used (fcgen.h,
 * flowcache.h): not pinned, and per CPU, they would otherwise be created
 * for every object that includes this file.
 */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CANARY_R_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(reasons) SEC(".maps");

#endif /* CANARY_BPF_MAPS_H */
