/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Choosing a version and a backend for a new flow. */
#ifndef CANARY_BPF_LB_H
#define CANARY_BPF_LB_H

#include "hash.h"
#include "maps.h"

/* A second seed so the backend choice is independent of the version choice. */
#define CANARY_BACKEND_SEED 0x9e3779b9U

/* The operator's kill switch for the service of tuple (a VIP:port/proto). */
__canary_inline int lb_killed(const struct canary_ct_key *tuple)
{
	struct canary_service_key skey = {
		.vip = tuple->daddr,
		.port = tuple->dport,
		.proto = tuple->proto,
	};
	const struct canary_killswitch *ks = bpf_map_lookup_elem(&CANARY_MAP(killswitch), &skey);

	return ks && ks->engaged;
}

/* Version for a new flow: override first, then the weighted hash. */
__canary_inline __u8 lb_pick_version(const struct canary_service *svc,
				     const struct canary_ct_key *tuple)
{
	struct canary_override_key okey = {
		.prefixlen = 32 + 32,
		.svc_id = svc->id,
		.addr = tuple->saddr,
	};
	struct canary_override *ovr;
	__u32 h;

	ovr = bpf_map_lookup_elem(&CANARY_MAP(overrides), &okey);
	if (ovr)
		return ovr->version == CANARY_V_CANARY ? CANARY_V_CANARY : CANARY_V_STABLE;

	if (svc->affinity == CANARY_AFFINITY_CLIENT_IP)
		h = hash_client(tuple->saddr, svc->seed);
	else
		h = hash_tuple(tuple, svc->seed);
	return (h % CANARY_WEIGHT_MAX) < svc->weight ? CANARY_V_CANARY : CANARY_V_STABLE;
}

/*
 * Backend of a version, by the 5-tuple hash: a flow whose conntrack entry
 * was lost maps back to the same backend while the lists are unchanged.
 * Falls back to the other version when this one has no backend.
 */
__canary_inline const struct canary_backend *
lb_pick_backend(const struct canary_service *svc, const struct canary_ct_key *tuple, __u8 *version)
{
	__u32 n, idx, v = *version & 1;

	if (svc->n_backends[v] == 0)
		v ^= 1;
	n = svc->n_backends[v];
	if (n == 0 || n > CANARY_MAX_BACKENDS)
		return NULL;
	idx = hash_tuple(tuple, svc->seed ^ CANARY_BACKEND_SEED) % n;
	/* The compiler knows idx < n; the verifier needs to see it checked. */
	asm volatile("" : "+r"(idx));
	if (idx >= CANARY_MAX_BACKENDS)
		return NULL;
	*version = v;
	return &svc->backends[v][idx];
}

/*
 * Backend for a new (or re-chosen) flow of version *version, never a canary
 * one while the kill switch is engaged: no fallback to the canary list then,
 * even when the stable list is empty. Only a canary choice can be vetoed, so
 * the switch is read for those alone: most new flows go to stable.
 */
__canary_inline const struct canary_backend *
lb_pick_allowed(const struct canary_service *svc, const struct canary_ct_key *tuple, __u8 *version)
{
	const struct canary_backend *be = lb_pick_backend(svc, tuple, version);

	if (!be || *version != CANARY_V_CANARY || !lb_killed(tuple))
		return be;
	*version = CANARY_V_STABLE;
	be = lb_pick_backend(svc, tuple, version);
	return be && *version == CANARY_V_STABLE ? be : NULL;
}

#endif /* CANARY_BPF_LB_H */
