/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow cache in front of conntrack (maps: headers/canary_flowcache.h).
 * A packet of an established flow used to pay most for one step: the hash
 * lookup of its conntrack entry, the forward one on ingress, the reverse
 * one on egress. What most of these packets need from the entry is
 * little: where to send it (the backend) or whose source to give it back
 * (the VIP), the service and version to count into, and whether anything
 * asks the flow to change. Each CPU keeps those in a slot chosen by the
 * entry's key, read by two array lookups the verifier inlines.
 *
 * A copy serves a packet that changes nothing in its flow: no SYN, FIN or
 * RST, and for a flow tracked as HTTP no payload either (its request turns
 * are kept in the entry; on egress such a flow's replies are not copied at
 * all, only a PLAIN reverse entry's). The flow owes no reset and is not
 * closing. And only while:
 *   - its slot's generation is the one it was filled under. Every write of
 *     a conntrack entry (ct_put()) and every packet that takes ingress's
 *     settling path (a new flow, a port reused, a flow re-steered, a
 *     handshake promoted) bumps the generation of the entry's slot when
 *     done (fc_invalidate()), which drops every CPU's copy of it;
 *   - its service's generation is the one it was copied with
 *     (svc_gens_v<N>, as for the entry itself). A copy is made only of an
 *     entry that owes no reset, and a new reset epoch comes with a new
 *     generation (dp_reset_canary_flows()), so this also drops the copies
 *     of the flows it resets;
 *   - the entry is not due for its once-a-second refresh. The packet that
 *     finds it due goes to conntrack, which refreshes the entry's age (and
 *     on ingress checks the reverse entry, on egress the forward one) and
 *     makes a new copy.
 * So no copy is used more than a second after its entry's last refresh.
 * An entry the LRU evicts is noticed within that second rather than at
 * the next packet (the flow keeps its backend meanwhile, as the other
 * entry would give it back). The expiry pass removes entries idle at
 * least a second, so it never removes a forward entry whose copy is in
 * use; it removes a reverse entry with its idle forward one, whose
 * replies a copy may then still restore for up to that second.
 */
#ifndef CANARY_BPF_FLOWCACHE_H
#define CANARY_BPF_FLOWCACHE_H

#include "clock.h"
#include "conntrack.h"
#include "parse.h"
#include "svcgen.h"

/* The copies, per CPU; not pinned: a new load of the programs starts empty. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CANARY_FLOW_CACHE_ENTRIES);
	__type(key, __u32);
	__type(value, struct canary_flow_cache);
} CANARY_MAP(flow_cache) SEC(".maps");

/* Flags of a forward entry whose packets need conntrack itself. */
#define FC_UNCACHEABLE_FLAGS                                                   \
	(CANARY_CT_F_REVERSE | CANARY_CT_F_RESET_REQ | CANARY_CT_F_RESTEERED | \
	 CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN | CANARY_CT_F_CLOSED)

/* The slot of key on this CPU, NULL if none; *slot_gen is its generation now. */
__canary_inline struct canary_flow_cache *fc_lookup(const struct canary_ct_key *key,
						    __u32 *slot_gen)
{
	__u32 slot = canary_flow_cache_slot(key);
	__u32 *gen = bpf_map_lookup_elem(&CANARY_MAP(fc_gens), &slot);

	if (!gen)
		return NULL;
	/* Read before conntrack is, so a change made after this read is seen. */
	*slot_gen = *(volatile __u32 *)gen;
	return bpf_map_lookup_elem(&CANARY_MAP(flow_cache), &slot);
}

/* Which entry a copy is of, as the program asking knows at compile time. */
enum fc_dir {
	FC_FORWARD = 0, /* ingress: client -> VIP, to a backend */
	FC_REVERSE = 1, /* egress: backend -> client, from the VIP */
};

/* May pkt go where copy c of its dir entry says, without conntrack? (The rules above.) */
__canary_inline int fc_hit(const struct canary_flow_cache *c, __u32 slot_gen,
			   const struct canary_pkt *pkt, enum fc_dir dir)
{
	__be32 vip;
	__be16 vport;

	if (!c || c->slot_gen != slot_gen || c->reverse != dir ||
	    !canary_ct_key_equal(&c->key, &pkt->tuple))
		return 0;
	if (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST))
		return 0;
	if (c->http && pkt->payload_len)
		return 0; /* maybe a request: http_on_request_data() needs the entry */
	vip = dir == FC_REVERSE ? c->nat_addr : pkt->tuple.daddr;
	vport = dir == FC_REVERSE ? c->nat_port : pkt->tuple.dport;
	if (!svcgen_record_current(c->svc_id, c->svc_gen, vip, vport, pkt->tuple.proto))
		return 0;
	return clock_coarse_ns() - c->last_seen_ns <= CT_TOUCH_INTERVAL_NS;
}

/* Copy entry e of pkt's flow into slot c, read under slot_gen. */
__canary_inline void fc_copy(struct canary_flow_cache *c, __u32 slot_gen,
			     const struct canary_pkt *pkt, const struct canary_ct_entry *e,
			     enum fc_dir dir)
{
	c->key = pkt->tuple;
	c->nat_addr = e->nat_addr;
	c->nat_port = e->nat_port;
	c->version = e->version;
	c->reverse = dir;
	c->svc_id = e->svc_id;
	c->svc_gen = e->svc_gen;
	c->slot_gen = slot_gen;
	c->http = dir == FC_FORWARD && !ct_flow_is_plain(e->flags);
	c->created_ns = e->created_ns;
	c->last_seen_ns = e->last_seen_ns;
}

/*
 * Ingress: copy forward entry e, current for pkt, if its packets may use a
 * copy. Called after the packet's own changes to e.
 */
__canary_inline void fc_fill_forward(struct canary_flow_cache *c, __u32 slot_gen,
				     const struct canary_pkt *pkt, const struct canary_ct_entry *e)
{
	if (c && !(e->flags & FC_UNCACHEABLE_FLAGS))
		fc_copy(c, slot_gen, pkt, e, FC_FORWARD);
}

/*
 * Egress: copy reverse entry rev, current for reply pkt, which did not
 * need the flow's forward entry (egress_needs_forward()): a PLAIN flow's
 * (or UDP) reply without SYN, FIN or RST. Its next such replies will not
 * need it either until the refresh a copy also waits for.
 */
__canary_inline void fc_fill_reverse(struct canary_flow_cache *c, __u32 slot_gen,
				     const struct canary_pkt *pkt,
				     const struct canary_ct_entry *rev)
{
	if (c)
		fc_copy(c, slot_gen, pkt, rev, FC_REVERSE);
}

#endif /* CANARY_BPF_FLOWCACHE_H */
