/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Service generations on established flows. Every conntrack entry keeps the
 * generation of its service at the time it last checked its backend. The
 * agent bumps the generation on every change of a service (weights, backend
 * lists after a promotion, a config change or a health-check removal), and a
 * new service starts at a random one, so an entry of a deleted service never
 * matches the service that reuses its VIP or its id by chance.
 *
 * On a packet whose entry's generation differs, the flow's backend is looked
 * up in the service's lists: still listed, selectable or draining
 * (backends.h), the entry takes the new generation (and the version whose
 * list holds the backend now); gone, the flow is sent
 * to another backend, of its own version first, as Cilium and Katran do for
 * a backend removed from a service. A flow whose service is gone is still
 * translated, to let it end, but counted nowhere: its packets must not be
 * judged as the traffic of whichever service now has its metrics slot.
 */
#ifndef CANARY_BPF_SVCGEN_H
#define CANARY_BPF_SVCGEN_H

#include "backends.h"
#include "conntrack.h"
#include "lb.h"
#include "metrics.h"

/* What the check says about a flow's packet. */
enum svcgen_verdict {
	SVCGEN_COUNT = 0, /* the entry is current: count into its svc_id/version */
	SVCGEN_STALE = 1, /* the service or the backend is gone: count nothing */
};

/* The service a flow's VIP:port names now, or NULL. */
__canary_inline struct canary_service *svcgen_service(__be32 vip, __be16 port, __u8 proto)
{
	struct canary_service_key skey = { .vip = vip, .port = port, .proto = proto };

	return bpf_map_lookup_elem(&CANARY_MAP(services), &skey);
}

/*
 * The svc_gens_v<N> record of service svc_id (headers/canary_svcindex.h)
 * when svc_gen is the current generation of the service at vip:port/proto:
 * the service has not changed since an entry that carries them last
 * checked its backend, so the entry needs no lookup of it. NULL otherwise,
 * also for a slot holding 0 (no service, or an index older than it) or
 * another service's key.
 */
__canary_inline const struct canary_svc_gen *
svcgen_record_current(__u32 svc_id, __u32 svc_gen, __be32 vip, __be16 port, __u8 proto)
{
	const struct canary_svc_gen *g = bpf_map_lookup_elem(&CANARY_MAP(svc_gens), &svc_id);

	if (!g || !g->generation || g->generation != svc_gen)
		return NULL;
	return g->key.vip == vip && g->key.port == port && g->key.proto == proto ? g : NULL;
}

/* The same for what entry e says of its service. */
__canary_inline const struct canary_svc_gen *
svcgen_entry_current(const struct canary_ct_entry *e, __be32 vip, __be16 port, __u8 proto)
{
	return svcgen_record_current(e->svc_id, e->svc_gen, vip, port, proto);
}

__canary_inline int svcgen_current(const struct canary_service *svc,
				   const struct canary_ct_entry *e)
{
	return e->svc_gen == svc->generation && e->svc_id == svc->id;
}

/*
 * Choose another backend for a flow whose backend left svc's lists: its own
 * version first. Writes the reverse entry the replies of the new backend
 * need, then points the forward entry at it. A TCP flow is marked RESTEERED:
 * the new backend knows no such connection and resets it, which is what
 * the client needs to hear, and not a refusal to count against the backend.
 */
__canary_inline int svcgen_resteer(const struct canary_pkt *pkt, struct canary_ct_entry *e,
				   const struct canary_service *svc, __u64 now)
{
	const struct canary_backend *be;
	__u8 version = e->version;

	be = lb_pick_allowed(svc, &pkt->tuple, &version);
	if (!be)
		return -1;
	if (ct_put_reverse(&pkt->tuple, be, svc->id, svc->generation, version, e->flags, now,
			   ct_stats()))
		return -1;
	e->nat_addr = be->addr;
	e->nat_port = be->port;
	e->version = version;
	if (pkt->tuple.proto == IPPROTO_TCP)
		ct_set_flags(e, CANARY_CT_F_RESTEERED);
	reason_count(CANARY_R_CT_RESTEERED);
	return 0;
}

/*
 * Ingress, a packet of a known flow (forward entry e). Returns whether the
 * packet is counted; may re-point e to another backend of svc.
 */
__canary_inline enum svcgen_verdict svcgen_check_forward(const struct canary_pkt *pkt,
							 struct canary_ct_entry *e,
							 const struct canary_service *svc,
							 __u64 now)
{
	int v;

	if (!svc) {
		reason_count(CANARY_R_SVC_STALE);
		return SVCGEN_STALE;
	}
	if (svcgen_current(svc, e))
		return SVCGEN_COUNT;
	v = backend_version(svc, e->nat_addr, e->nat_port);
	if (v >= 0)
		e->version = (__u8)v;
	else if (svcgen_resteer(pkt, e, svc, now))
		return SVCGEN_STALE; /* nothing to go to: try again on the next packet */
	e->svc_id = svc->id;
	e->svc_gen = svc->generation;
	return SVCGEN_COUNT;
}

/*
 * Egress, a reply of reverse entry rev from backend addr:port: counted when
 * the backend is still one of the service's. Late replies of a removed
 * backend are still restored (the client may need its FIN or RST) but not
 * counted.
 */
__canary_inline enum svcgen_verdict svcgen_check_reverse(struct canary_ct_entry *rev,
							 const struct canary_service *svc,
							 __be32 addr, __be16 port)
{
	int v;

	if (svc && svcgen_current(svc, rev))
		return SVCGEN_COUNT;
	v = svc ? backend_version(svc, addr, port) : -1;
	if (v < 0) {
		reason_count(CANARY_R_SVC_STALE);
		return SVCGEN_STALE;
	}
	rev->version = (__u8)v;
	rev->svc_id = svc->id;
	rev->svc_gen = svc->generation;
	return SVCGEN_COUNT;
}

#endif /* CANARY_BPF_SVCGEN_H */
