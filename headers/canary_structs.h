/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map keys and values shared by the kernel programs and the agent. This is
 * the only place a map layout is defined. Every field is fixed-size and
 * explicitly padded so both sides and bpftool's BTF dump agree byte for byte.
 * Addresses and ports are in network byte order (__be*), everything else in
 * host order.
 */
#ifndef CANARY_STRUCTS_H
#define CANARY_STRUCTS_H

#include <linux/types.h>
#include "canary_consts.h"

/* services_v<N> key: a service is VIP:port/proto. */
struct canary_service_key {
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct canary_backend {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/*
 * services_v<N> value. The whole state of a service is one hash value, so the
 * agent replaces it atomically for every CPU with one update: the map is
 * BPF_F_NO_PREALLOC, so an update links a new element and frees the old one
 * after an RCU grace period, and a program never reads a value half old,
 * half new (a preallocated hash recycles the old element at once).
 */
struct canary_service {
	__u32 id;	  /* slot in metrics_v<N>, 0..CANARY_MAX_SERVICES-1 */
	__u32 generation; /* bumped by the agent on every change */
	__u32 seed;	  /* hash seed, so two services split independently */
	__u16 weight;	  /* canary share in basis points, 0..10000 */
	__u8 affinity;	  /* enum canary_affinity */
	__u8 flags;	  /* CANARY_SVC_F_* */
	__u8 n_backends[CANARY_V_COUNT];
	__u8 pad[2];
	char name[CANARY_NAME_LEN]; /* rollout name, for people reading the map */
	/*
	 * backends[v][0..n_backends[v]) get new flows. The slots after them
	 * that hold an address are draining backends (terminating endpoints
	 * still serving): no new flow goes there, flows already on one stay.
	 * Every slot after the last draining one is zero. Writers have always
	 * zeroed the value before filling it, so a value written before
	 * draining existed has no draining backend: same bytes, same layout.
	 */
	struct canary_backend backends[CANARY_V_COUNT][CANARY_MAX_BACKENDS];
	__u32 pad2;
	/*
	 * Reset epoch (CLOCK_MONOTONIC_COARSE ns, 0: never): canary flows of
	 * this service created at or before it are reset on their next packet.
	 * The agent writes it with the rest of the value; the data path never
	 * writes a service, so no write of either side can undo the other's.
	 */
	__u64 reset_ns;
};

/*
 * svc_gens_v<N> value, indexed by canary_service.id: the fields of a live
 * service an established flow checks on every packet, copied there by the
 * writer of the service (headers/canary_svcindex.h).
 */
struct canary_svc_gen {
	__u32 generation; /* canary_service.generation; 0: no service has this id */
	/*
	 * The service's key: an entry is current only for the service of its
	 * own VIP, as when the service itself is read.
	 */
	struct canary_service_key key;
	__u32 pad;
	__u64 reset_ns; /* canary_service.reset_ns */
};

/* clock_cache_v<N> value (per-CPU, not pinned): bpf/lib/clock.h. */
struct canary_clock_cache {
	__u64 jiffies;	 /* bpf_jiffies64() when coarse_ns was read */
	__u64 coarse_ns; /* bpf_ktime_get_coarse_ns() then */
};

/*
 * killswitch_v<N> value, keyed by canary_service_key: the operator's emergency
 * rollback. Only canaryctl sets and clears it; the agent only reads it. While
 * engaged, the data path sends no new flow of the service to the canary,
 * whatever the service's weight, overrides or backend lists say, so no write
 * of the service (the agent's, the health checks', a stale canaryctl's) can
 * undo a rollback.
 */
struct canary_killswitch {
	__u32 engaged; /* 1: canary weight is 0 for new flows */
};

/* conntrack_v<N> key: the tuple as the packet carries it. */
struct canary_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/*
 * conntrack_v<N> value. A flow has two entries: the forward one, keyed
 * client -> VIP, holds the backend and the request state; the reverse one,
 * keyed backend -> client, holds the VIP to restore on replies.
 */
struct canary_ct_entry {
	__be32 nat_addr; /* forward: backend address; reverse: VIP */
	__be16 nat_port;
	__u8 version; /* enum canary_version */
	__u8 pad;
	__u32 flags; /* CANARY_CT_F_*, changed with atomic or/and */
	__u32 svc_id;
	__u64 created_ns;
	__u64 last_seen_ns;
	__u64 req_start_ns;   /* forward: when the request in flight started */
	__u32 client_seq_end; /* forward: highest client seq + len seen */
	/*
	 * reverse: highest backend seq + len seen (bpf/lib/http.h); forward:
	 * the backend's ISN + 1 from its SYN-ACK, and in the half-open table
	 * the highest backend seq + len seen in the handshake.
	 */
	__u32 server_seq_end;
	/*
	 * The service's generation when this entry last checked its backend
	 * against the service's lists (bpf/lib/svcgen.h): a different one in
	 * services_v<N> means the lists, the weight or the service itself may
	 * have changed since.
	 */
	__u32 svc_gen;
	__u32 pad2;
};

/*
 * flow_cache_v<N> value (per-CPU, not pinned): headers/canary_flowcache.h,
 * bpf/lib/flowcache.h. The fields of a conntrack entry its flow's packets
 * read, copied from it.
 */
struct canary_flow_cache {
	struct canary_ct_key key; /* the entry's; all zero in a slot never filled */
	__be32 nat_addr;
	__be16 nat_port;
	__u8 version;
	__u8 reverse; /* 1: a reverse entry's copy (egress), 0: a forward entry's (ingress) */
	__u32 svc_id;
	__u32 svc_gen;
	__u32 slot_gen; /* fc_gens_v<N>[slot] when the copy was made */
	__u8 http;	/* 1: a flow tracked as HTTP: serves packets without payload only */
	__u8 pad2[3];
	__u64 created_ns;
	__u64 last_seen_ns;
};

/*
 * ct_stats_v<N> value (per-CPU array, one entry): how conntrack entries came
 * into the map. canaryd never deletes an entry, only the kernel's LRU evicts
 * one, so entries_created minus the entries in the map is the evictions.
 */
struct canary_ct_stats {
	__u64 entries_created;	/* written under a key that was not in the map */
	__u64 entries_replaced; /* written over a key in use: a port reused by a new flow */
};

/*
 * frags_v<N> key: one fragmented IP datagram, as each of its fragments names
 * it (RFC 791: source, destination, protocol and identification).
 */
struct canary_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

/* frags_v<N> value: the ports the datagram's first fragment carried. */
struct canary_frag_ports {
	__be16 sport;
	__be16 dport;
};

/* Context of the canary_ct_count program (BPF_PROG_TEST_RUN in and out). */
struct canary_ct_count_args {
	__s64 entries; /* conntrack_v<N>'s element count, as the kernel keeps it */
};

/*
 * Context of the canary_ct_expire program: now_ns in (the clock of the
 * entries' times, CLOCK_MONOTONIC_COARSE), the entries it removed out.
 */
struct canary_ct_expire_args {
	__u64 now_ns;
	__u64 expired;	   /* conntrack entries */
	__u64 syn_expired; /* half-open entries (ct_syn_v<N>) */
};

/* ct_expired_v<N> value (array, one entry): entries the expiry passes removed, ever. */
struct canary_ct_expired {
	__u64 entries;
};

/* overrides_v<N> (LPM trie) key: prefixlen counts svc_id's 32 bits too. */
struct canary_override_key {
	__u32 prefixlen;
	__u32 svc_id;
	__be32 addr;
};

struct canary_override {
	__u32 version; /* enum canary_version */
};

/*
 * metrics_v<N> value (per-CPU array, index svc_id * CANARY_V_COUNT + version).
 * The agent sums the CPUs. Bytes and packets count whole IP datagrams.
 */
struct canary_metrics {
	__u64 conns_opened;  /* SYN of a new flow (or a new UDP flow) */
	__u64 conns_refused; /* backend answered the SYN with a RST */
	__u64 conns_reset;   /* backend reset an established flow */
	__u64 requests;
	__u64 responses[CANARY_STATUS_CLASSES]; /* [1..5] = 1xx..5xx, [0] other */
	__u64 bytes_in;				/* client -> backend */
	__u64 bytes_out;			/* backend -> client */
	__u64 packets_in;
	__u64 packets_out;
	__u64 latency_count;
	__u64 latency_sum_us;
	__u64 latency_hist[CANARY_HIST_BUCKETS];
};

/*
 * sock_lb_v<N> value (socket storage, one per socket): what a host-local
 * client's connect() or first sendmsg() chose for it (bpf/sock.bpf.c). The
 * socket itself only knows the backend; getpeername() and recvmsg() give
 * the VIP back from here, and an abort finds the canary sockets by it.
 */
struct canary_sock_lb {
	__be32 vip;
	__be32 backend;
	__be16 vport;
	__be16 bport;
	__u32 svc_id;
	__u8 version; /* enum canary_version */
	__u8 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[6];
	__u64 created_ns; /* CLOCK_MONOTONIC_COARSE, compared with a service's reset_ns */
};

#endif /* CANARY_STRUCTS_H */
