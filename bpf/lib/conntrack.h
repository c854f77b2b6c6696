/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking: one shared LRU, two entries per flow. The forward
 * entry (client -> VIP) pins the flow to its backend; the reverse entry
 * (backend -> client) tells the egress program which VIP to restore.
 */
#ifndef CANARY_BPF_CONNTRACK_H
#define CANARY_BPF_CONNTRACK_H

#include "backends.h"
#include "fcgen.h"
#include "maps.h"
#include "parse.h"

/* Refresh last_seen_ns at most this often, to keep the entry's cache line quiet. */
#define CT_TOUCH_INTERVAL_NS 1000000000ULL

/* Several programs on several CPUs update one entry's flags: use atomics. */
__canary_inline void ct_set_flags(struct canary_ct_entry *e, __u32 flags)
{
	__sync_fetch_and_or(&e->flags, flags);
}

__canary_inline void ct_clear_flags(struct canary_ct_entry *e, __u32 flags)
{
	__sync_fetch_and_and(&e->flags, ~flags);
}

/* Is e's age due for a refresh (and the once-a-second checks that go with it)? */
__canary_inline int ct_touch_due(const struct canary_ct_entry *e, __u64 now)
{
	return now - e->last_seen_ns > CT_TOUCH_INTERVAL_NS;
}

__canary_inline void ct_touch(struct canary_ct_entry *e, __u64 now)
{
	if (ct_touch_due(e, now))
		e->last_seen_ns = now;
}

/* Key of the reply direction of a flow sent to backend be. */
__canary_inline void ct_reverse_key(struct canary_ct_key *rkey, const struct canary_ct_key *fwd,
				    const struct canary_backend *be)
{
	rkey->saddr = be->addr;
	rkey->sport = be->port;
	rkey->daddr = fwd->saddr;
	rkey->dport = fwd->sport;
	rkey->proto = fwd->proto;
	rkey->pad[0] = rkey->pad[1] = rkey->pad[2] = 0;
}

/* Key of the forward direction, rebuilt from a reply and its reverse entry. */
__canary_inline void ct_forward_key_of_reply(struct canary_ct_key *fkey,
					     const struct canary_ct_key *reply,
					     const struct canary_ct_entry *rev)
{
	fkey->saddr = reply->daddr;
	fkey->sport = reply->dport;
	fkey->daddr = rev->nat_addr;
	fkey->dport = rev->nat_port;
	fkey->proto = reply->proto;
	fkey->pad[0] = fkey->pad[1] = fkey->pad[2] = 0;
}

__canary_inline struct canary_ct_stats *ct_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&CANARY_MAP(ct_stats), &zero);
}

/*
 * Write one entry and count whether its key was new: the agent derives the
 * LRU's evictions from that count, which a plain BPF_ANY write would hide.
 * A key evicted between the two writes is created by the third. Every
 * write drops the flow cache's copies of the key (fcgen.h).
 */
__canary_inline int ct_put(const struct canary_ct_key *key, const struct canary_ct_entry *val,
			   struct canary_ct_stats *st)
{
	long err = bpf_map_update_elem(&CANARY_MAP(conntrack), key, val, BPF_NOEXIST);

	if (err == -EEXIST) {
		err = bpf_map_update_elem(&CANARY_MAP(conntrack), key, val, BPF_EXIST);
		if (!err) {
			if (st)
				st->entries_replaced += 1;
			fc_invalidate(key);
			return 0;
		}
		if (err == -ENOENT)
			err = bpf_map_update_elem(&CANARY_MAP(conntrack), key, val, BPF_NOEXIST);
	}
	if (!err && st)
		st->entries_created += 1;
	if (!err)
		fc_invalidate(key);
	return err;
}

/*
 * Does a flow whose forward entry has fwd_flags keep nothing there that its
 * replies change, but its TCP state? Not while it is tracked as HTTP: a
 * reply may end a request turn. Once opaque (TLS, HTTP/2, an upgrade) it
 * has no more turns.
 */
__canary_inline int ct_flow_is_plain(__u32 fwd_flags)
{
	return !(fwd_flags & CANARY_CT_F_HTTP) || (fwd_flags & CANARY_CT_F_OPAQUE);
}

/*
 * Flags of the reverse entry of a flow whose forward entry has fwd_flags:
 * PLAIN when the flow is (canary_tc_egress then reads the forward entry
 * only for a SYN-ACK, FIN or RST, and once a second).
 */
__canary_inline __u32 ct_reverse_flags(__u32 fwd_flags)
{
	return CANARY_CT_F_REVERSE | (ct_flow_is_plain(fwd_flags) ? CANARY_CT_F_PLAIN : 0);
}

/*
 * The reverse entry of a flow of tuple fwd; fwd_flags are the flow's
 * forward entry's (ct_reverse_flags()).
 */
__canary_inline void ct_reverse_init(struct canary_ct_entry *rev, const struct canary_ct_key *fwd,
				     __u32 svc_id, __u32 svc_gen, __u8 version, __u32 fwd_flags,
				     __u64 now)
{
	__builtin_memset(rev, 0, sizeof(*rev));
	rev->nat_addr = fwd->daddr;
	rev->nat_port = fwd->dport;
	rev->version = version;
	rev->flags = ct_reverse_flags(fwd_flags);
	rev->svc_id = svc_id;
	rev->created_ns = now;
	rev->last_seen_ns = now;
	rev->svc_gen = svc_gen;
}

/* Store the reverse entry rev under rkey. */
__canary_inline int ct_store_reverse(const struct canary_ct_key *rkey,
				     const struct canary_ct_entry *rev, struct canary_ct_stats *st)
{
	int err = ct_put(rkey, rev, st);

	if (err)
		return err;
	/*
	 * Read it once, as the forward entry is read after its write: the LRU
	 * marks an entry used only when it is looked up, and a full table
	 * evicts unmarked entries before marked ones, however new. Left
	 * unread, a new flow's reverse entry could go before its first reply,
	 * which would leave untranslated and be reset by the client.
	 */
	bpf_map_lookup_elem(&CANARY_MAP(conntrack), rkey);
	return 0;
}

/* Write the reverse entry (ct_reverse_init()) for a flow of tuple fwd that goes to backend be. */
__canary_inline int ct_put_reverse(const struct canary_ct_key *fwd, const struct canary_backend *be,
				   __u32 svc_id, __u32 svc_gen, __u8 version, __u32 fwd_flags,
				   __u64 now, struct canary_ct_stats *st)
{
	struct canary_ct_entry rev;
	struct canary_ct_key rkey;

	ct_reverse_init(&rev, fwd, svc_id, svc_gen, version, fwd_flags, now);
	ct_reverse_key(&rkey, fwd, be);
	return ct_store_reverse(&rkey, &rev, st);
}

/* The forward entry of a new flow of pkt, sent to backend be. */
__canary_inline void ct_forward_init(struct canary_ct_entry *fwd, const struct canary_pkt *pkt,
				     const struct canary_service *svc,
				     const struct canary_backend *be, __u8 version, __u64 now)
{
	__builtin_memset(fwd, 0, sizeof(*fwd));
	fwd->nat_addr = be->addr;
	fwd->nat_port = be->port;
	fwd->version = version;
	fwd->svc_id = svc->id;
	fwd->created_ns = now;
	fwd->last_seen_ns = now;
	fwd->svc_gen = svc->generation;
	if (svc->flags & CANARY_SVC_F_HTTP)
		fwd->flags |= CANARY_CT_F_HTTP;
	if (pkt->tuple.proto == IPPROTO_TCP && (pkt->tcp_flags & TCP_FLAG_SYN)) {
		/* The SYN takes one sequence number; data starts after it. */
		fwd->client_seq_end = pkt->seq + 1;
		fwd->flags |= CANARY_CT_F_CSEQ_VALID;
	} else if (pkt->tuple.proto == IPPROTO_TCP) {
		/* An entry lost and made again: the connection was set up before. */
		fwd->flags |= CANARY_CT_F_MIDFLOW;
	}
}

/*
 * Create both entries of a new flow. Returns the forward entry as stored in
 * the map, or NULL if the map refused the insert.
 */
__canary_inline struct canary_ct_entry *ct_create(const struct canary_pkt *pkt,
						  const struct canary_service *svc,
						  const struct canary_backend *be, __u8 version,
						  __u64 now)
{
	struct canary_ct_stats *st = ct_stats();
	struct canary_ct_entry fwd;

	ct_forward_init(&fwd, pkt, svc, be, version, now);
	if (ct_put_reverse(&pkt->tuple, be, svc->id, svc->generation, version, fwd.flags, now, st))
		return NULL;
	if (ct_put(&pkt->tuple, &fwd, st))
		return NULL;
	return bpf_map_lookup_elem(&CANARY_MAP(conntrack), &pkt->tuple);
}

/*
 * Write again the forward entry of a reply whose reverse entry rev survived
 * an eviction: the flow keeps its backend and version, whatever the weight
 * is when its client speaks next. Its handshake is unknown (MIDFLOW) unless
 * this reply is the SYN-ACK. svc is the service of the reply's VIP, rev
 * already checked against it. Returns the entry as stored, or NULL.
 */
__canary_inline struct canary_ct_entry *
ct_rebuild_forward(const struct canary_ct_key *fkey, const struct canary_pkt *reply,
		   const struct canary_ct_entry *rev, const struct canary_service *svc, __u64 now)
{
	struct canary_ct_entry fwd = {
		.nat_addr = reply->tuple.saddr,
		.nat_port = reply->tuple.sport,
		.version = rev->version,
		.svc_id = rev->svc_id,
		.created_ns = rev->created_ns, /* the flow's age, not the entry's */
		.last_seen_ns = now,
		.svc_gen = rev->svc_gen,
	};

	if (!svc || svc->id != rev->svc_id)
		return NULL; /* the service is gone or another: nothing to keep */
	if (svc->flags & CANARY_SVC_F_HTTP)
		fwd.flags |= CANARY_CT_F_HTTP;
	if (reply->tuple.proto == IPPROTO_TCP)
		fwd.flags |= CANARY_CT_F_MIDFLOW;
	if (ct_put(fkey, &fwd, ct_stats()))
		return NULL;
	return bpf_map_lookup_elem(&CANARY_MAP(conntrack), fkey);
}

/*
 * A forward entry used again after a quiet second or more: refresh its age
 * and make sure the flow's reverse entry is still there. The LRU evicts
 * entries one at a time; a flow idle long enough to lose only its reply side
 * would otherwise send its next replies out untranslated, and its client
 * would reset it. Checked once a second per flow, not on every packet.
 */
__canary_inline void ct_refresh_forward(const struct canary_pkt *pkt, struct canary_ct_entry *e,
					__u64 now)
{
	struct canary_backend be = { .addr = e->nat_addr, .port = e->nat_port };
	struct canary_ct_key rkey;

	if (!ct_touch_due(e, now))
		return;
	e->last_seen_ns = now;
	ct_reverse_key(&rkey, &pkt->tuple, &be);
	if (!bpf_map_lookup_elem(&CANARY_MAP(conntrack), &rkey))
		ct_put_reverse(&pkt->tuple, &be, e->svc_id, e->svc_gen, e->version, e->flags, now,
			       ct_stats());
}

/*
 * The backend a mid-flow packet's flow was on, found by its reverse entry
 * when only the forward one was lost (the LRU evicts entries one at a time):
 * each listed backend's reverse key, draining ones too, is probed, at most 2 x 16 lookups, on
 * this rare path only. NULL when none is there; *version is the list the
 * backend is in now.
 */
__canary_inline const struct canary_backend *
ct_backend_of_reverse(const struct canary_service *svc, const struct canary_pkt *pkt, __u8 *version)
{
	const struct canary_ct_entry *rev;
	const struct canary_backend *be;
	struct canary_ct_key rkey;
	__u32 v, i;

	for (v = 0; v < CANARY_V_COUNT; v++) {
		for (i = 0; i < CANARY_MAX_BACKENDS; i++) {
			be = &svc->backends[v][i];
			if (!backend_slot_used(be))
				continue;
			ct_reverse_key(&rkey, &pkt->tuple, be);
			rev = bpf_map_lookup_elem(&CANARY_MAP(conntrack), &rkey);
			if (rev && (rev->flags & CANARY_CT_F_REVERSE) &&
			    rev->nat_addr == pkt->tuple.daddr &&
			    rev->nat_port == pkt->tuple.dport) {
				*version = (__u8)v;
				return be;
			}
		}
	}
	return NULL;
}

/*
 * Sequence number after a segment's data: a SYN takes one number before its
 * data (TCP Fast Open carries a request on the SYN).
 */
__canary_inline __u32 pkt_seq_end(const struct canary_pkt *pkt)
{
	return pkt->seq + ((pkt->tcp_flags & TCP_FLAG_SYN) ? 1 : 0) + pkt->payload_len;
}

/*
 * How far past a SYN's sequence number + 1 the client's mark may be while
 * the SYN is still its flow's own: its Fast Open data, which a retransmitted
 * SYN may no longer carry. A SYN carries at most one segment.
 */
#define SYN_DATA_WINDOW 65536U

/*
 * A SYN on a tuple whose flow was established or is over opens a new flow,
 * and so does a SYN with another initial sequence number than the one
 * recorded: a client that gave up on an unanswered handshake and connects
 * again from the same port. A retransmitted SYN (same initial sequence
 * number, with or without its Fast Open data) keeps its backend, also when
 * the SYN-ACK it answers was lost after we saw it.
 */
__canary_inline int ct_is_port_reuse(const struct canary_pkt *pkt, const struct canary_ct_entry *e)
{
	if (pkt->tuple.proto != IPPROTO_TCP)
		return 0;
	if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return 0;
	if (e->flags & (CANARY_CT_F_RST_SEEN | CANARY_CT_F_FIN_SEEN | CANARY_CT_F_RESTEERED))
		return 1;
	if (e->flags & CANARY_CT_F_CSEQ_VALID)
		return e->client_seq_end - (pkt->seq + 1) >= SYN_DATA_WINDOW;
	return (e->flags & (CANARY_CT_F_ESTABLISHED | CANARY_CT_F_MIDFLOW)) != 0;
}

/* Sequence comparison that survives wrap-around. */
__canary_inline int seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

#endif /* CANARY_BPF_CONNTRACK_H */
