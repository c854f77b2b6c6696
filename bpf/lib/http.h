/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Request/response turns on a TCP flow. A request starts when client data
 * arrives on an idle flow and ends at the first byte of the backend's answer;
 * the difference is the latency sample. New data is told from retransmitted
 * data by the highest sequence number seen in each direction, so a
 * retransmitted segment never counts twice.
 *
 * Each direction keeps its mark in the entry its own program holds: the
 * client's in the forward entry (ingress), the backend's in the reverse
 * entry (egress). The two directions of a flow often run on two CPUs, and
 * a mark written on every data packet into one shared entry would move its
 * cache line between them each time; the forward entry is written from
 * egress only when a turn ends. During the handshake both marks are in the
 * half-open forward entry, which syn_promote() moves into conntrack.
 */
#ifndef CANARY_BPF_HTTP_H
#define CANARY_BPF_HTTP_H

#include "conntrack.h"
#include "ctx.h"
#include "metrics.h"

/* TLS records start 0x16 0x03; HTTP/2 with prior knowledge starts "PRI ". */
__canary_inline int payload_is_opaque(const char *b)
{
	if (b[0] == 0x16 && b[1] == 0x03)
		return 1;
	return b[0] == 'P' && b[1] == 'R' && b[2] == 'I' && b[3] == ' ';
}

/*
 * Is this segment new data, past everything seen before in its direction?
 * Updates the mark when it is.
 */
__canary_inline int seq_advance(struct canary_ct_entry *e, __u32 *mark, __u32 valid_flag,
				const struct canary_pkt *pkt)
{
	__u32 end = pkt_seq_end(pkt);

	if ((e->flags & valid_flag) && !seq_after(end, *mark))
		return 0;
	*mark = end;
	if (!(e->flags & valid_flag))
		ct_set_flags(e, valid_flag);
	return 1;
}

/* Classify a flow by its first client bytes, once. Returns 1 if opaque. */
__canary_inline int http_probe(void *ctx, enum canary_ctx_kind kind, const struct canary_pkt *pkt,
			       struct canary_ct_entry *e)
{
	char buf[SNIFF_LEN] = {};

	if (e->flags & CANARY_CT_F_PROBED)
		return (e->flags & CANARY_CT_F_OPAQUE) != 0;
	/* Segments shorter than SNIFF_LEN cannot start a TLS or HTTP/2 flow we care about. */
	if (pkt->payload_len >= SNIFF_LEN && !ctx_load_sniff(ctx, kind, pkt->payload_off, buf) &&
	    payload_is_opaque(buf)) {
		ct_set_flags(e, CANARY_CT_F_PROBED | CANARY_CT_F_OPAQUE);
		reason_count(CANARY_R_OPAQUE);
		return 1;
	}
	ct_set_flags(e, CANARY_CT_F_PROBED);
	return 0;
}

/* Client -> backend data: maybe the start of a request. */
__canary_inline void http_on_request_data(void *ctx, enum canary_ctx_kind kind,
					  const struct canary_pkt *pkt, struct canary_ct_entry *e,
					  struct canary_metrics *m)
{
	if (!(e->flags & CANARY_CT_F_HTTP) || pkt->payload_len == 0)
		return;
	if (http_probe(ctx, kind, pkt, e))
		return;
	if (!seq_advance(e, &e->client_seq_end, CANARY_CT_F_CSEQ_VALID, pkt))
		return;
	/* Pipelined or continued request data while one is in flight: same turn. */
	if (e->flags & CANARY_CT_F_IN_REQUEST)
		return;
	e->req_start_ns = bpf_ktime_get_ns(); /* precise: latency is measured from it */
	ct_set_flags(e, CANARY_CT_F_IN_REQUEST);
	if (m)
		m->requests += 1;
}

/*
 * The client closes its side (FIN) or resets while a request is still
 * unanswered: it gave up waiting (its timeout, a user going away). The
 * request counts as a failed turn of its version, a 5xx with the time it
 * waited as latency, as a proxy answering its own client reports a 504 for
 * an upstream that never answered: a hanging canary otherwise counts
 * requests and no error. nginx treats a client's FIN during a request the
 * same way (499). The atomic fetch makes one CPU count it; a response that
 * comes after the close ends no turn.
 */
__canary_inline void http_on_client_close(const struct canary_pkt *pkt, struct canary_ct_entry *e,
					  struct canary_metrics *m)
{
	__u32 old;

	if (!(pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) ||
	    !(e->flags & CANARY_CT_F_IN_REQUEST))
		return;
	old = __sync_fetch_and_and(&e->flags, ~CANARY_CT_F_IN_REQUEST);
	if (!(old & CANARY_CT_F_IN_REQUEST) || !m)
		return;
	m->responses[5] += 1;
	metrics_latency(m, bpf_ktime_get_ns() - e->req_start_ns);
}

/*
 * Backend -> client data: maybe the first byte of the response. An interim
 * response (1xx but 101) does not end the request: the final status will.
 * 101 Switching Protocols does, and what follows is another protocol
 * (WebSocket, h2c): the flow goes opaque, TCP-level metrics only. e is the
 * forward entry; mark_e holds the backend's sequence mark: the reverse
 * entry, or during the handshake e itself.
 */
__canary_inline void http_on_response_data(struct __sk_buff *skb, const struct canary_pkt *pkt,
					   struct canary_ct_entry *e,
					   struct canary_ct_entry *mark_e, struct canary_metrics *m)
{
	char buf[SNIFF_LEN] = {};
	__u32 status = 0, class;

	if (!(e->flags & CANARY_CT_F_HTTP) || (e->flags & CANARY_CT_F_OPAQUE) ||
	    pkt->payload_len == 0)
		return;
	if (!seq_advance(mark_e, &mark_e->server_seq_end, CANARY_CT_F_SSEQ_VALID, pkt))
		return;
	if (!(e->flags & CANARY_CT_F_IN_REQUEST))
		return;
	if (pkt->payload_len >= SNIFF_LEN &&
	    !ctx_load_sniff(skb, CANARY_CTX_TC, pkt->payload_off, buf))
		status = http_status_code(buf);
	if (status / 100 == 1 && status != HTTP_SWITCHING_PROTOCOLS)
		return;
	ct_clear_flags(e, CANARY_CT_F_IN_REQUEST);
	if (status == HTTP_SWITCHING_PROTOCOLS)
		ct_set_flags(e, CANARY_CT_F_OPAQUE);
	if (!m)
		return;
	class = status / 100;
	/* The verifier bounds the index only if the check is on class itself. */
	asm volatile("" : "+r"(class));
	if (class >= CANARY_STATUS_CLASSES)
		class = CANARY_STATUS_OTHER;
	m->responses[class] += 1;
	metrics_latency(m, bpf_ktime_get_ns() - e->req_start_ns);
}

#endif /* CANARY_BPF_HTTP_H */
