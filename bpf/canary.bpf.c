// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * canaryd's kernel programs.
 *
 *   ingress (tc clsact ingress, or XDP): a packet to a VIP is sent to the
 *     backend its flow is pinned to; a new flow first picks stable or canary
 *     by weight and a backend inside that version.
 *   egress (tc clsact egress): a reply from a backend gets the VIP back as
 *     its source, after routing, so reverse-path filtering only ever sees
 *     real backend addresses.
 *
 * Both count per service and version what the agent needs to judge a canary.
 */
#include "lib/clock.h"
#include "lib/common.h"
#include "lib/conntrack.h"
#include "lib/ctx.h"
#include "lib/flowcache.h"
#include "lib/http.h"
#include "lib/icmp.h"
#include "lib/lb.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/nat.h"
#include "lib/parse.h"
#include "lib/svcgen.h"
#include "lib/synstate.h"
#include "lib/vipfilter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* What the ingress half decided for one packet. */
struct ingress_verdict {
	__be32 addr; /* rewrite the destination to this backend ... */
	__be16 port;
	__u8 translate; /* ... when set; otherwise pass the packet untouched */
	__u8 drop;	/* a flow of ours that could not be tracked */
	__u8 half_open; /* the flow's entry is in the half-open table */
};

/*
 * A flow the agent asked to reset (an aborted canary) is re-steered to a
 * stable backend. That backend has no such connection and answers with a
 * RST, which the egress program restores to the VIP: the client sees the
 * reset on its next packet instead of hanging.
 */
__canary_inline void ingress_resteer(const struct canary_pkt *pkt, struct canary_ct_entry *e,
				     const struct canary_service *svc, __u64 now)
{
	const struct canary_backend *be;
	__u8 version = CANARY_V_STABLE;

	be = lb_pick_backend(svc, &pkt->tuple, &version);
	if (!be || version != CANARY_V_STABLE)
		return;
	if (ct_put_reverse(&pkt->tuple, be, e->svc_id, e->svc_gen, e->version, e->flags, now,
			   ct_stats()))
		return;
	e->nat_addr = be->addr;
	e->nat_port = be->port;
	ct_set_flags(e, CANARY_CT_F_RESTEERED);
	reason_count(CANARY_R_RESET_STEERED);
}

/*
 * Reset asked for this flow: by the reset epoch reset_ns of its service
 * svc_id (a canary flow that began at or before it), or by the flag older
 * agents set on the entry. Flows already re-steered or over need nothing.
 */
__canary_inline int ingress_reset_wanted(const struct canary_ct_entry *e, __u32 svc_id,
					 __u64 reset_ns)
{
	if (e->flags & (CANARY_CT_F_RESTEERED | CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN))
		return 0;
	if (e->flags & CANARY_CT_F_RESET_REQ)
		return 1;
	return e->version == CANARY_V_CANARY && e->svc_id == svc_id && reset_ns &&
	       e->created_ns <= reset_ns;
}

/*
 * The common case, decided without reading the service: a tracked flow whose
 * entry carries its service's current generation, that is not a new flow on
 * a reused port and owes no reset. Anything else takes the full path.
 */
__canary_inline int ingress_flow_current(const struct canary_pkt *pkt,
					 const struct canary_ct_entry *e)
{
	const struct canary_svc_gen *g =
		svcgen_entry_current(e, pkt->tuple.daddr, pkt->tuple.dport, pkt->tuple.proto);

	return g && !ct_is_port_reuse(pkt, e) && !ingress_reset_wanted(e, e->svc_id, g->reset_ns);
}

/*
 * First packet of a flow (or one whose entry was lost): choose and record,
 * and give the caller the counters of the flow's service and version in *mp
 * (NULL if none), so that a SYN looks them up once.
 * A SYN with no conntrack entry is recorded in the half-open table; a SYN
 * reusing the port of a tracked flow replaces that flow's entries in
 * conntrack, as before, so no stale forward entry shadows the new flow.
 * When the entries cannot be written, v says to drop the packet: sent on
 * untranslated it would reach whatever else answers for the VIP, and its
 * replies could not be restored. The client retransmits; Cilium drops too.
 */
__canary_inline struct canary_ct_entry *
ingress_new_flow(const struct canary_pkt *pkt, const struct canary_service *svc, int tracked,
		 __u64 now, struct ingress_verdict *v, struct canary_metrics **mp)
{
	const struct canary_backend *be;
	struct canary_metrics *m;
	struct canary_ct_entry *e;
	int opening;
	__u8 version;

	if (!svc) {
		reason_count(CANARY_R_NO_SERVICE);
		return NULL;
	}
	opening = pkt->tuple.proto == IPPROTO_UDP ||
		  (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	be = NULL;
	if (!opening) {
		reason_count(CANARY_R_CT_MISS_NON_SYN);
		/* Lost only its forward entry: back to its backend, whatever the weight. */
		be = ct_backend_of_reverse(svc, pkt, &version);
	}
	if (!be) {
		version = lb_pick_version(svc, &pkt->tuple);
		be = lb_pick_allowed(svc, &pkt->tuple, &version);
	}
	if (!be) {
		reason_count(CANARY_R_NO_BACKEND);
		return NULL;
	}
	v->half_open = opening && pkt->tuple.proto == IPPROTO_TCP && !tracked;
	e = v->half_open ? syn_create(pkt, svc, be, version, now) :
			   ct_create(pkt, svc, be, version, now);
	if (!e) {
		reason_count(CANARY_R_CT_FULL);
		v->drop = 1;
		return NULL;
	}
	reason_count(CANARY_R_NEW_FLOW);
	m = metrics_of(svc->id, version);
	if (m && opening)
		m->conns_opened += 1;
	*mp = m;
	return e;
}

/*
 * A packet of a flow still in its handshake: its half-open entry, or the
 * conntrack entry it was just promoted to when this is the client's ACK of
 * the SYN-ACK.
 */
__canary_inline struct canary_ct_entry *ingress_half_open(const struct canary_pkt *pkt,
							  struct canary_ct_entry *half, __u64 now,
							  struct ingress_verdict *v)
{
	struct canary_ct_entry *e;

	if (syn_handshake_done(pkt, half)) {
		e = syn_promote(pkt, half, now);
		if (e)
			return e;
	}
	v->half_open = 1;
	return half;
}

/* An unfragmented ICMP message parse_ipv4() declined: maybe an error about a flow. */
__canary_inline int pkt_is_icmp(int reason, const struct canary_pkt *pkt)
{
	return reason == CANARY_R_NOT_TCP_UDP && pkt->tuple.proto == IPPROTO_ICMP;
}

/*
 * What every packet of a tracked flow does once its entry e is settled:
 * state flags, the entry's age, counters (m, or e's own when m is NULL and
 * count says so), HTTP turns, and the verdict to send it to e's backend.
 */
__canary_inline void ingress_forward(void *ctx, enum canary_ctx_kind kind,
				     const struct canary_pkt *pkt, struct canary_ct_entry *e,
				     struct canary_metrics *m, enum svcgen_verdict count, __u64 now,
				     struct ingress_verdict *v)
{
	if (pkt->tcp_flags & TCP_FLAG_FIN)
		ct_set_flags(e, CANARY_CT_F_FIN_SEEN | CANARY_CT_F_CLIENT_FIN);
	if (pkt->tcp_flags & TCP_FLAG_RST)
		ct_set_flags(e, CANARY_CT_F_CLOSED);
	if (v->half_open)
		ct_touch(e, now); /* its reverse entry is in the half-open table */
	else
		ct_refresh_forward(pkt, e, now);

	if (!m && count == SVCGEN_COUNT)
		m = metrics_of(e->svc_id, e->version);
	if (m) {
		m->packets_in += 1;
		m->bytes_in += pkt->ip_len;
	}
	if (pkt->tuple.proto == IPPROTO_TCP) {
		/* A request in flight before this segment, abandoned by it. */
		http_on_client_close(pkt, e, m);
		http_on_request_data(ctx, kind, pkt, e, m);
	}

	v->addr = e->nat_addr;
	v->port = e->nat_port;
	v->translate = 1;
}

/* ingress_forward() for a packet its flow's cached copy c settles (flowcache.h). */
__canary_inline void ingress_forward_cached(const struct canary_pkt *pkt,
					    const struct canary_flow_cache *c,
					    struct ingress_verdict *v)
{
	struct canary_metrics *m = metrics_of(c->svc_id, c->version);

	reason_count(CANARY_R_FORWARD);
	if (m) {
		m->packets_in += 1;
		m->bytes_in += pkt->ip_len;
	}
	v->addr = c->nat_addr;
	v->port = c->nat_port;
	v->translate = 1;
}

/*
 * A packet whose flow is not settled: no conntrack entry (e NULL), or one
 * that is stale, owes a reset or is reused by a new flow; a handshake. It
 * chooses, re-checks or promotes. Returns 1 when it may have written a
 * forward entry, 0 when it left without touching one.
 */
__canary_inline int ingress_settle(void *ctx, enum canary_ctx_kind kind, struct canary_pkt *pkt,
				   struct canary_ct_entry *e, struct ingress_verdict *v)
{
	enum svcgen_verdict count = SVCGEN_COUNT;
	struct canary_service *svc;
	struct canary_metrics *m = NULL;
	int tracked = e != NULL;
	__u64 now;

	if (!e) {
		e = syn_lookup(&pkt->tuple);
		if (e && (e->flags & CANARY_CT_F_REVERSE))
			return 0; /* a backend's packet, in its flow's handshake */
	}
	svc = svcgen_service(pkt->tuple.daddr, pkt->tuple.dport, pkt->tuple.proto);
	if (!e && !svc) {
		reason_count(CANARY_R_NO_SERVICE);
		return 0; /* not ours: no clock read for it */
	}
	now = clock_coarse_ns(); /* conntrack ages need no more precision */
	if (e && !tracked)
		e = ingress_half_open(pkt, e, now, v);
	if (!e || ct_is_port_reuse(pkt, e)) {
		e = ingress_new_flow(pkt, svc, tracked, now, v, &m);
	} else {
		reason_count(CANARY_R_FORWARD);
		count = svcgen_check_forward(pkt, e, svc, now);
	}
	if (!e)
		return 1;

	/* A half-open flow is reset, if asked, once its handshake moves it to conntrack. */
	if (svc && !v->half_open && ingress_reset_wanted(e, svc->id, svc->reset_ns))
		ingress_resteer(pkt, e, svc, now);
	/* A new flow's counters are those ingress_new_flow() found: same svc_id and version. */
	ingress_forward(ctx, kind, pkt, e, m, count, now, v);
	return 1;
}

/*
 * Decide for one packet, parsed by the caller into pkt with parse result
 * reason; pkt is left as it is for the caller's rewrite. Three ways, from
 * the cheapest: the flow's cached copy, its current conntrack entry (which
 * the packet then copies to the cache), ingress_settle().
 */
__canary_inline void ingress_handle(void *ctx, enum canary_ctx_kind kind, int reason,
				    struct canary_pkt *pkt, struct ingress_verdict *v)
{
	struct canary_flow_cache *c;
	struct canary_ct_entry *e;
	__u32 slot_gen = 0;

	if (reason != PARSE_OK) {
		/* ICMP is counted by icmp_ingress(), which the caller runs. */
		if (!pkt_is_icmp(reason, pkt))
			reason_count(reason);
		return;
	}
	if (!vip_filter_may_match(&pkt->tuple)) {
		/* No service's VIP, so no flow of ours: forward entries are keyed by the VIP. */
		reason_count(CANARY_R_NO_SERVICE);
		return;
	}
	c = fc_lookup(&pkt->tuple, &slot_gen);
	if (fc_hit(c, slot_gen, pkt, FC_FORWARD)) {
		ingress_forward_cached(pkt, c, v);
		return;
	}
	e = bpf_map_lookup_elem(&CANARY_MAP(conntrack), &pkt->tuple);
	if (e && (e->flags & CANARY_CT_F_REVERSE))
		return; /* a backend's packet seen on ingress: not ours to change */
	if (e && ingress_flow_current(pkt, e)) {
		reason_count(CANARY_R_FORWARD);
		ingress_forward(ctx, kind, pkt, e, NULL, SVCGEN_COUNT, clock_coarse_ns(), v);
		fc_fill_forward(c, slot_gen, pkt, e);
		return;
	}
	if (ingress_settle(ctx, kind, pkt, e, v))
		fc_invalidate(&pkt->tuple);
}

/* TCP flags on a reply: handshake completion, refusals and resets. */
__canary_inline void egress_tcp_state(const struct canary_pkt *pkt, struct canary_ct_entry *fwd,
				      struct canary_metrics *m)
{
	if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK)) {
		fwd->server_seq_end = pkt->seq + 1;
		ct_set_flags(fwd, CANARY_CT_F_ESTABLISHED | CANARY_CT_F_SSEQ_VALID);
		return;
	}
	if (pkt->tcp_flags & TCP_FLAG_FIN)
		ct_set_flags(fwd, CANARY_CT_F_FIN_SEEN | CANARY_CT_F_SERVER_FIN);
	if (!(pkt->tcp_flags & TCP_FLAG_RST) || (fwd->flags & CANARY_CT_F_RST_SEEN))
		return;
	ct_set_flags(fwd, CANARY_CT_F_RST_SEEN | CANARY_CT_F_CLOSED);
	/* The RST we provoked ourselves by re-steering is not the backend's fault. */
	if (!m || (fwd->flags & CANARY_CT_F_RESTEERED))
		return;
	/* A connection set up before its entry was lost is reset, not refused. */
	if (fwd->flags & (CANARY_CT_F_ESTABLISHED | CANARY_CT_F_MIDFLOW))
		m->conns_reset += 1;
	else
		m->conns_refused += 1;
}

/* The skb's length when it is a GSO packet (what BIG TCP's length is), else 0. */
__canary_inline __u32 skb_gso_len(const struct __sk_buff *skb)
{
	return skb->gso_size ? skb->len : 0;
}

/*
 * Headers must be linear for direct access. Pull only when the skb has more
 * bytes than its linear part holds: pulling is not free. Returns whether it
 * pulled (data pointers are then to be read again).
 */
__canary_inline int skb_pull_headers(struct __sk_buff *skb)
{
	__u32 linear = skb->data_end - skb->data;

	if (linear >= skb->len || linear >= MAX_PAYLOAD_OFF)
		return 0;
	return !bpf_skb_pull_data(skb, skb->len < MAX_PAYLOAD_OFF ? skb->len : MAX_PAYLOAD_OFF);
}

/*
 * Parse on tc. Most packets have their headers in the linear part, so the
 * pull is tried only when they ran past it (MALFORMED): after VXLAN or
 * Geneve decapsulation, or from drivers that build skbs from page fragments
 * (napi_gro_frags, virtio-net past 128 bytes), the TCP header may sit in the
 * fragments. Pulling is not free, and on a cloned skb (tcpdump running) it
 * copies the data: traffic that is not IPv4 TCP/UDP, or whose headers are
 * linear, is never pulled. Whatever else failed, a pull would not change.
 */
__canary_inline int tc_parse(struct __sk_buff *skb, struct canary_pkt *pkt)
{
	int reason = parse_ipv4((void *)(long)skb->data, (void *)(long)skb->data_end,
				skb_gso_len(skb), pkt);

	if (reason == CANARY_R_MALFORMED && skb_pull_headers(skb))
		reason = parse_ipv4((void *)(long)skb->data, (void *)(long)skb->data_end,
				    skb_gso_len(skb), pkt);
	return reason;
}

SEC("tc")
int canary_tc_ingress(struct __sk_buff *skb)
{
	struct ingress_verdict v = {};
	struct canary_pkt pkt = {};

	ingress_handle(skb, CANARY_CTX_TC, tc_parse(skb, &pkt), &pkt, &v);
	if (pkt.tuple.proto == IPPROTO_ICMP) {
		icmp_pull_tc(skb);
		return icmp_ingress(skb, CANARY_CTX_TC, (void *)(long)skb->data,
				    (void *)(long)skb->data_end, &pkt) ?
			       TC_ACT_SHOT :
			       TC_ACT_OK;
	}
	if (v.drop)
		return TC_ACT_SHOT;
	if (!v.translate)
		return TC_ACT_OK;
	if (nat_rewrite(skb, CANARY_CTX_TC, &pkt, NAT_DST, v.addr, v.port))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("xdp")
int canary_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ingress_verdict v = {};
	struct canary_pkt pkt = {};

	ingress_handle(ctx, CANARY_CTX_XDP, parse_ipv4(data, data_end, 0, &pkt), &pkt, &v);
	if (pkt.tuple.proto == IPPROTO_ICMP)
		return icmp_ingress(ctx, CANARY_CTX_XDP, data, data_end, &pkt) ? XDP_DROP :
										 XDP_PASS;
	if (v.drop)
		return XDP_DROP;
	if (!v.translate)
		return XDP_PASS;
	if (nat_rewrite(ctx, CANARY_CTX_XDP, &pkt, NAT_DST, v.addr, v.port))
		return XDP_DROP;
	return XDP_PASS;
}

/*
 * Does a reply need its flow's forward entry? A SYN-ACK, a FIN or a RST
 * changes the flow's TCP state there, and every reply of an HTTP flow may
 * end a request turn; a half-open flow's replies are all of its handshake.
 * Any other reply (PLAIN reverse entry, or UDP) reads it only to find it
 * evicted and write it again: checked once a second per flow, when the
 * reverse entry's age is refreshed, as ingress checks the reverse entry
 * (ct_refresh_forward()). In between, a TCP client's packet that finds no
 * forward entry goes back to its backend through the reverse one; a UDP
 * datagram is chosen again, as it was whenever no reply came between the
 * eviction and it.
 */
__canary_inline int egress_needs_forward(const struct canary_pkt *pkt,
					 const struct canary_ct_entry *rev, int half_open,
					 __u64 now)
{
	if (half_open || ct_touch_due(rev, now))
		return 1;
	if (pkt->tuple.proto != IPPROTO_TCP)
		return 0;
	return !(rev->flags & CANARY_CT_F_PLAIN) ||
	       (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST));
}

/*
 * A reply's part in its flow's forward entry (egress_needs_forward()):
 * found from the reverse entry rev, written again if it was evicted alone,
 * then the TCP state and the HTTP turn; rev becomes PLAIN when the flow
 * did. svc is the reply's service if the caller looked it up, else NULL;
 * m its counters.
 */
__canary_inline void egress_reply_state(struct __sk_buff *skb, const struct canary_pkt *pkt,
					struct canary_ct_entry *rev, int half_open,
					const struct canary_service *svc, struct canary_metrics *m,
					__u64 now)
{
	struct canary_ct_entry *fwd;
	struct canary_ct_key fkey;

	ct_forward_key_of_reply(&fkey, &pkt->tuple, rev);
	fwd = half_open ? syn_lookup(&fkey) : bpf_map_lookup_elem(&CANARY_MAP(conntrack), &fkey);
	/*
	 * A reverse entry outlives its flow when the client port is reused for
	 * a flow to another backend: a late packet of the old backend must not
	 * touch the new flow's state. A forward entry evicted alone is written
	 * again from the reverse one.
	 */
	if (fwd && (fwd->nat_addr != pkt->tuple.saddr || fwd->nat_port != pkt->tuple.sport)) {
		reason_count(CANARY_R_REPLY_NO_FORWARD);
		fwd = NULL;
	} else if (!fwd) {
		reason_count(CANARY_R_REPLY_NO_FORWARD);
		if (!svc)
			svc = svcgen_service(rev->nat_addr, rev->nat_port, pkt->tuple.proto);
		/*
		 * A handshake's lost forward entry is the client's SYN to
		 * retransmit; a late reply of an older flow on a client port
		 * now in its handshake again must not take that flow over.
		 */
		fwd = svc && !half_open && !syn_lookup(&fkey) ?
			      ct_rebuild_forward(&fkey, pkt, rev, svc, now) :
			      NULL;
	}
	if (fwd && pkt->tuple.proto == IPPROTO_TCP) {
		egress_tcp_state(pkt, fwd, m);
		http_on_response_data(skb, pkt, fwd, half_open ? fwd : rev, m);
		/* An HTTP flow gone opaque: its next replies need the entry no more. */
		if (!(rev->flags & CANARY_CT_F_PLAIN) && ct_flow_is_plain(fwd->flags))
			ct_set_flags(rev, CANARY_CT_F_PLAIN);
	}
}

/*
 * Parse a packet on egress (tc_parse()). An IPv4 TCP/UDP packet that cannot
 * be read counts its reason: were it a reply, it would leave with the
 * backend's address.
 */
__canary_inline int egress_parse(struct __sk_buff *skb, struct canary_pkt *pkt)
{
	int reason = tc_parse(skb, pkt);

	if (reason == CANARY_R_MALFORMED || reason == CANARY_R_FRAGMENT)
		reason_count(reason);
	return reason;
}

/* A reply its flow's cached copy c settles: counted as its reverse entry would count it. */
__canary_inline void egress_count_cached(const struct canary_pkt *pkt,
					 const struct canary_flow_cache *c)
{
	struct canary_metrics *m = metrics_of(c->svc_id, c->version);

	reason_count(CANARY_R_REPLY);
	if (m) {
		m->packets_out += 1;
		m->bytes_out += pkt->ip_len;
	}
}

/*
 * The reverse entry of a backend's packet, in conntrack or the half-open
 * table (*half_open). A SYN-ACK or a RST answers a handshake, so the
 * half-open table is read first for those: a client port reused for a new
 * flow to the same backend leaves the older flow's reverse entry in
 * conntrack under the same key until the new flow's promotion replaces it,
 * and the handshake must not be settled against it. Other packets look in
 * conntrack first, where established flows are.
 */
__canary_inline struct canary_ct_entry *egress_reverse_entry(const struct canary_pkt *pkt,
							     int *half_open)
{
	int answers_syn =
		pkt->tuple.proto == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_RST));
	struct canary_ct_entry *rev;

	*half_open = 1;
	if (answers_syn) {
		rev = syn_lookup(&pkt->tuple);
		if (rev && (rev->flags & CANARY_CT_F_REVERSE))
			return rev;
	}
	rev = bpf_map_lookup_elem(&CANARY_MAP(conntrack), &pkt->tuple);
	if (rev) {
		*half_open = 0;
		return rev;
	}
	/* Data or a FIN before the handshake ends (a Fast Open answer). */
	return answers_syn ? NULL : syn_lookup(&pkt->tuple);
}

/*
 * A packet on egress that the flow cache did not settle: a reply when its
 * source has a reverse entry, in conntrack or the half-open table. Counts
 * it, keeps the flow's state, and copies the entry into slot c (read under
 * slot_gen) when its next replies may use a copy. Returns 1 with the VIP
 * to restore in *vip, *vport; 0 for a packet that is not a reply.
 */
__canary_inline int egress_reply(struct __sk_buff *skb, const struct canary_pkt *pkt,
				 struct canary_flow_cache *c, __u32 slot_gen, __be32 *vip,
				 __be16 *vport)
{
	struct canary_metrics *m = NULL;
	struct canary_service *svc;
	struct canary_ct_entry *rev;
	int half_open, check_forward, current;
	__u64 now;

	rev = egress_reverse_entry(pkt, &half_open);
	if (!rev || !(rev->flags & CANARY_CT_F_REVERSE))
		return 0;

	now = clock_coarse_ns();
	*vip = rev->nat_addr;
	*vport = rev->nat_port;
	check_forward = egress_needs_forward(pkt, rev, half_open, now);
	ct_touch(rev, now); /* after egress_needs_forward(): it resets the age */
	reason_count(CANARY_R_REPLY);
	svc = NULL; /* looked up only when the entry's generation is not current */
	current = svcgen_entry_current(rev, *vip, *vport, pkt->tuple.proto) != NULL;
	if (current) {
		m = metrics_of(rev->svc_id, rev->version);
	} else {
		svc = svcgen_service(*vip, *vport, pkt->tuple.proto);
		if (svcgen_check_reverse(rev, svc, pkt->tuple.saddr, pkt->tuple.sport) ==
		    SVCGEN_COUNT)
			m = metrics_of(rev->svc_id, rev->version);
	}
	if (m) {
		m->packets_out += 1;
		m->bytes_out += pkt->ip_len;
	}
	if (check_forward)
		egress_reply_state(skb, pkt, rev, half_open, svc, m, now);
	else if (current && !half_open)
		fc_fill_reverse(c, slot_gen, pkt, rev);
	return 1;
}

SEC("tc")
int canary_tc_egress(struct __sk_buff *skb)
{
	struct canary_flow_cache *c;
	struct canary_pkt pkt = {};
	__u32 slot_gen = 0;
	__be32 vip;
	__be16 vport;
	int reason;

	reason = egress_parse(skb, &pkt);
	if (pkt_is_icmp(reason, &pkt)) {
		icmp_pull_tc(skb);
		return icmp_egress(skb, &pkt) ? TC_ACT_SHOT : TC_ACT_OK;
	}
	if (reason != PARSE_OK)
		return TC_ACT_OK;
	if (!backend_filter_may_match(&pkt.tuple))
		return TC_ACT_OK; /* no backend's packet: no reverse entry is keyed by it */
	c = fc_lookup(&pkt.tuple, &slot_gen);
	if (fc_hit(c, slot_gen, &pkt, FC_REVERSE)) {
		egress_count_cached(&pkt, c);
		vip = c->nat_addr;
		vport = c->nat_port;
	} else if (!egress_reply(skb, &pkt, c, slot_gen, &vip, &vport)) {
		return TC_ACT_OK;
	}
	if (nat_rewrite(skb, CANARY_CTX_TC, &pkt, NAT_SRC, vip, vport))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
