/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Half-open TCP flows, kept apart from conntrack until the handshake is
 * real, as Cilium keeps SYN state apart from established flows. A SYN that
 * opens a flow writes its choice to ct_syn_v<N> (forward entry: backend and
 * version; reverse entry: the VIP its SYN-ACK gets back); retransmitted SYNs
 * find it there and keep their backend. The client's ACK of the SYN-ACK
 * moves both entries to conntrack (syn_promote).
 *
 * Why the client's ACK and not the SYN-ACK: a backend answers every SYN,
 * spoofed ones too (with SYN cookies under a flood), so the SYN-ACK proves
 * nothing about the client. Only a client that received the SYN-ACK can
 * acknowledge its sequence number; spoofed SYNs never get that far, so a
 * SYN flood churns this small table and never evicts an established flow.
 */
#ifndef CANARY_BPF_SYNSTATE_H
#define CANARY_BPF_SYNSTATE_H

#include "conntrack.h"

/*
 * How far behind the backend's highest sequence number the promoting ACK may
 * be: a server with TCP Fast Open sends data before the client's ACK, which
 * then acknowledges less than all of it. A blind guess passes 1 in 65,536.
 */
#define SYN_ACK_WINDOW 65536U

/* The half-open entry of a key: forward (client -> VIP) or reverse (backend -> client). */
__canary_inline struct canary_ct_entry *syn_lookup(const struct canary_ct_key *key)
{
	return bpf_map_lookup_elem(&CANARY_MAP(ct_syn), key);
}

/* The half-open forward entry of a client's packet, or NULL. */
__canary_inline struct canary_ct_entry *syn_lookup_forward(const struct canary_ct_key *key)
{
	struct canary_ct_entry *e = syn_lookup(key);

	return e && !(e->flags & CANARY_CT_F_REVERSE) ? e : NULL;
}

/*
 * Record a SYN's choice. The reverse entry goes first, so a SYN-ACK never
 * finds a forward entry without it. Writes replace: the table is an LRU,
 * and nothing in it is counted by the agent. Returns the forward entry as
 * stored, or NULL.
 */
__canary_inline struct canary_ct_entry *syn_create(const struct canary_pkt *pkt,
						   const struct canary_service *svc,
						   const struct canary_backend *be, __u8 version,
						   __u64 now)
{
	struct canary_ct_entry fwd, rev = {
		.nat_addr = pkt->tuple.daddr,
		.nat_port = pkt->tuple.dport,
		.version = version,
		.flags = CANARY_CT_F_REVERSE,
		.svc_id = svc->id,
		.created_ns = now,
		.last_seen_ns = now,
		.svc_gen = svc->generation,
	};
	struct canary_ct_key rkey;

	ct_forward_init(&fwd, pkt, svc, be, version, now);
	ct_reverse_key(&rkey, &pkt->tuple, be);
	if (bpf_map_update_elem(&CANARY_MAP(ct_syn), &rkey, &rev, BPF_ANY))
		return NULL;
	if (bpf_map_update_elem(&CANARY_MAP(ct_syn), &pkt->tuple, &fwd, BPF_ANY))
		return NULL;
	return syn_lookup(&pkt->tuple);
}

/*
 * The client acknowledges the SYN-ACK the egress program saw: a plain ACK
 * (no SYN, no RST) whose acknowledgment number is the backend's ISN + 1, or
 * up to SYN_ACK_WINDOW beyond it when the backend sent data already.
 */
__canary_inline int syn_handshake_done(const struct canary_pkt *pkt,
				       const struct canary_ct_entry *e)
{
	if (pkt->tuple.proto != IPPROTO_TCP)
		return 0;
	if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) != TCP_FLAG_ACK)
		return 0;
	if (!(e->flags & CANARY_CT_F_ESTABLISHED) || !(e->flags & CANARY_CT_F_SSEQ_VALID))
		return 0;
	return e->server_seq_end - pkt->ack_seq < SYN_ACK_WINDOW;
}

/*
 * Move a handshake that completed to conntrack: both entries are written
 * there (counted like any new entry) and removed from the half-open table.
 * The forward entry keeps everything the handshake set (the client's
 * sequence mark, a Fast Open request); the reverse entry takes the
 * backend's mark. Returns the conntrack forward entry, or NULL when
 * conntrack refused it (the flow then goes on from the half-open entry).
 */
__canary_inline struct canary_ct_entry *syn_promote(const struct canary_pkt *pkt,
						    const struct canary_ct_entry *half, __u64 now)
{
	struct canary_backend be = { .addr = half->nat_addr, .port = half->nat_port };
	struct canary_ct_stats *st = ct_stats();
	struct canary_ct_entry fwd = *half, rev;
	struct canary_ct_key rkey;

	fwd.last_seen_ns = now;
	ct_reverse_init(&rev, &pkt->tuple, fwd.svc_id, fwd.svc_gen, fwd.version, fwd.flags, now);
	/* An HTTP flow's backend sequence mark moves to the entry that holds it in conntrack. */
	if (!ct_flow_is_plain(fwd.flags)) {
		rev.server_seq_end = fwd.server_seq_end;
		rev.flags |= fwd.flags & CANARY_CT_F_SSEQ_VALID;
	}
	ct_reverse_key(&rkey, &pkt->tuple, &be);
	if (ct_store_reverse(&rkey, &rev, st))
		return NULL;
	if (ct_put(&pkt->tuple, &fwd, st))
		return NULL;
	bpf_map_delete_elem(&CANARY_MAP(ct_syn), &rkey);
	bpf_map_delete_elem(&CANARY_MAP(ct_syn), &pkt->tuple);
	return bpf_map_lookup_elem(&CANARY_MAP(conntrack), &pkt->tuple);
}

#endif /* CANARY_BPF_SYNSTATE_H */
