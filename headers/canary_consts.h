/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Constants shared by the kernel programs and the agent. Changing one of the
 * sizes below changes a map layout: bump CANARY_LAYOUT_VERSION with it so an
 * old pinned map is never misread.
 */
#ifndef CANARY_CONSTS_H
#define CANARY_CONSTS_H

/*
 * Appended to every pinned map name, e.g. "services_v<N>". The one place the
 * version is spelt: C uses CANARY_MAP()/CANARY_MAP_NAME() below, scripts
 * read this line (canary_pin_suffix in tests/e2e/lib.sh, canaryd
 * --print-pins). A plain decimal literal: it is pasted into identifiers.
 */
#ifndef CANARY_LAYOUT_VERSION
#define CANARY_LAYOUT_VERSION 2
#endif

#define CANARY_PIN_STR_(x) #x
#define CANARY_PIN_STR(x)  CANARY_PIN_STR_(x)
#define CANARY_MAP_(n, v)  n##_v##v
#define CANARY_MAP__(n, v) CANARY_MAP_(n, v)

/* The map's identifier in BPF C and in the skeleton: services_v<N>. */
#define CANARY_MAP(n) CANARY_MAP__(n, CANARY_LAYOUT_VERSION)
/* The pin's file name, a string literal: CANARY_MAP_NAME("services"). */
#define CANARY_MAP_NAME(s) s "_v" CANARY_PIN_STR(CANARY_LAYOUT_VERSION)
/* "_v<N>", for names built at run time. */
#define CANARY_PIN_SUFFIX     "_v" CANARY_PIN_STR(CANARY_LAYOUT_VERSION)

#define CANARY_MAX_SERVICES   1024
#define CANARY_MAX_BACKENDS   16 /* per version */
#define CANARY_MAX_OVERRIDES  4096
#define CANARY_CT_MAX_ENTRIES 262144 /* forward + reverse, so 128k flows */
#define CANARY_NAME_LEN	      32
#define CANARY_MAX_FRAGS      8192 /* IP datagrams in fragments at once */

/* Half-open table (ct_syn_v<N>): forward + reverse, so 8,192 handshakes. */
#define CANARY_CT_SYN_MAX_ENTRIES 16384

/*
 * VIP filter (vip_filter_v<N>): 2^CANARY_VIP_FILTER_BITS bits in 64-bit
 * words. With every service slot in use, 1 packet in 256 for no service
 * still takes the full lookups (headers/canary_svcindex.h).
 */
#define CANARY_VIP_FILTER_BITS	18
#define CANARY_VIP_FILTER_WORDS (1U << (CANARY_VIP_FILTER_BITS - 6))

/* Weights are basis points: 10000 = 100%, so 1 = 0.01%. */
#define CANARY_WEIGHT_MAX 10000

enum canary_version {
	CANARY_V_STABLE = 0,
	CANARY_V_CANARY = 1,
	CANARY_V_COUNT = 2,
};

enum canary_affinity {
	CANARY_AFFINITY_NONE = 0,
	CANARY_AFFINITY_CLIENT_IP = 1,
};

/* struct canary_service.flags */
#define CANARY_SVC_F_HTTP (1U << 0) /* sniff HTTP/1.x requests and status codes */

/* struct canary_ct_entry.flags */
#define CANARY_CT_F_REVERSE	(1U << 0) /* key is backend -> client (reply side) */
#define CANARY_CT_F_ESTABLISHED (1U << 1) /* backend answered the SYN */
#define CANARY_CT_F_OPAQUE	(1U << 2) /* TLS or HTTP/2: TCP-level metrics only */
#define CANARY_CT_F_IN_REQUEST	(1U << 3) /* request sent, no response byte yet */
#define CANARY_CT_F_RESET_REQ	(1U << 4) /* agent asked to reset this flow */
#define CANARY_CT_F_RESTEERED	(1U << 5) /* sent to a stable backend to get a RST */
#define CANARY_CT_F_RST_SEEN	(1U << 6) /* a RST was counted for this flow */
#define CANARY_CT_F_FIN_SEEN	(1U << 7)
#define CANARY_CT_F_CSEQ_VALID	(1U << 8)  /* client_seq_end is set */
#define CANARY_CT_F_SSEQ_VALID	(1U << 9)  /* server_seq_end is set */
#define CANARY_CT_F_PROBED	(1U << 10) /* first client payload was classified */
#define CANARY_CT_F_HTTP	(1U << 11) /* service speaks HTTP/1.x: sniff it */
#define CANARY_CT_F_MIDFLOW	(1U << 12) /* created by a mid-flow packet: handshake unseen */
#define CANARY_CT_F_CLIENT_FIN	(1U << 13)
#define CANARY_CT_F_SERVER_FIN	(1U << 14)
#define CANARY_CT_F_CLOSED	(1U << 15) /* RST either way: the flow is over */
#define CANARY_CT_F_PLAIN	(1U << 16) /* reverse entry of a flow not tracked as HTTP */

/*
 * Conntrack lifetimes: an entry idle for longer is removed by the agent's
 * expiry pass (canary_ct_expire), as Cilium's CT garbage collector does with
 * the same defaults. A closed TCP flow (RST, or FIN both ways) goes after
 * 10 s, a handshake never answered after 60 s, an established TCP flow
 * after 6 h, a UDP flow after 60 s; a reverse entry (which has no state of
 * its own) after 60 s without a reply. A handshake's entries in ct_syn_v<N>
 * go after the SYN lifetime (the closed one once refused). The operator
 * sets each with canaryd --conntrack-lifetimes; these are the defaults.
 */
#define CANARY_CT_CLOSED_NS (10ULL * 1000000000ULL)
#define CANARY_CT_SYN_NS    (60ULL * 1000000000ULL)
#define CANARY_CT_TCP_NS    (21600ULL * 1000000000ULL)
#define CANARY_CT_UDP_NS    (60ULL * 1000000000ULL)
#define CANARY_CT_ORPHAN_NS (60ULL * 1000000000ULL)

/*
 * An HTTP request unanswered this long is a failed turn of its version,
 * counted by the expiry pass (60 s: nginx's proxy_read_timeout default).
 */
#define CANARY_HTTP_TIMEOUT_NS (60ULL * 1000000000ULL)

/*
 * Latency histogram: log-linear over microseconds. Values below
 * CANARY_HIST_SUB are counted exactly; above, each power of two is cut into
 * CANARY_HIST_SUB equal buckets, so a bucket is at most 1/16 = 6.25% wide and
 * its midpoint is within 3.2% of any value in it. The last bucket also takes
 * everything longer than 2^CANARY_HIST_MAX_EXP us (about 16.8 s).
 */
#define CANARY_HIST_SUB_BITS 4
#define CANARY_HIST_SUB	     (1U << CANARY_HIST_SUB_BITS)
#define CANARY_HIST_MAX_EXP  24
#define CANARY_HIST_BUCKETS  ((CANARY_HIST_MAX_EXP - CANARY_HIST_SUB_BITS + 1) * CANARY_HIST_SUB)

/* Response status classes 1xx..5xx, plus one for unparseable responses. */
#define CANARY_STATUS_CLASSES 6
#define CANARY_STATUS_OTHER   0

/*
 * Why a packet was passed untouched, dropped or handled. One per-CPU
 * counter each, so an operator can see where traffic goes.
 */
enum canary_reason {
	CANARY_R_NOT_IPV4 = 0,	   /* IPv6, ARP, ... */
	CANARY_R_MALFORMED,	   /* truncated or bad header */
	CANARY_R_FRAGMENT,	   /* IP fragment: ports unknown */
	CANARY_R_NOT_TCP_UDP,	   /* ICMP, ... */
	CANARY_R_NO_SERVICE,	   /* destination is not a VIP */
	CANARY_R_NO_BACKEND,	   /* VIP without a backend for the chosen version */
	CANARY_R_CT_MISS_NON_SYN,  /* mid-flow packet without an entry: re-chosen */
	CANARY_R_CT_FULL,	   /* conntrack insert failed: dropped */
	CANARY_R_NEW_FLOW,	   /* new connection or UDP flow translated */
	CANARY_R_FORWARD,	   /* packet of a known flow translated */
	CANARY_R_REPLY,		   /* reply reverse-translated */
	CANARY_R_OPAQUE,	   /* flow marked TLS/HTTP2: TCP metrics only */
	CANARY_R_RESET_STEERED,	   /* reset-requested flow sent to stable for a RST */
	CANARY_R_REPLY_NO_FORWARD, /* reply whose forward entry is gone */
	CANARY_R_CT_RESTEERED,	   /* flow's backend no longer listed: re-chosen */
	CANARY_R_SVC_STALE,	   /* flow of a deleted service or backend: not counted */
	CANARY_R_ICMP_ERROR_IN,	   /* ICMP error about a reply, sent on to its backend */
	CANARY_R_ICMP_ERROR_OUT,   /* ICMP error about a request, VIP restored in it */
	CANARY_R_ICMP_NO_FLOW,	   /* ICMP error quoting no flow of ours: untouched */
	CANARY_R_COUNT,
};

#endif /* CANARY_CONSTS_H */
