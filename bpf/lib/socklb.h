/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket load balancing for clients on the node itself (bpf/sock.bpf.c).
 * Their packets to a VIP never cross an attached interface's ingress, so
 * the choice is made once, at connect() (or at a UDP socket's first
 * sendmsg()), by rewriting the socket's destination to the backend: the
 * same service map, weights, seeds, kill switch and version/backend choice
 * as the data path (lb.h). The socket storage remembers the VIP, so that
 * getpeername() and recvmsg() still show it, and so that an abort finds
 * the canary sockets.
 */
#ifndef CANARY_BPF_SOCKLB_H
#define CANARY_BPF_SOCKLB_H

#include "lb.h"
#include "metrics.h"

/* The uapi headers the programs use do not define the socket families. */
#define CANARY_AF_INET 2

/* sk_storage maps must be created with BPF_F_NO_PREALLOC. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct canary_sock_lb);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} CANARY_MAP(sock_lb) SEC(".maps");

__canary_inline struct canary_service *socklb_service(__be32 vip, __be16 port, __u8 proto)
{
	struct canary_service_key skey = { .vip = vip, .port = port, .proto = proto };

	return bpf_map_lookup_elem(&CANARY_MAP(services), &skey);
}

/*
 * The flow key a socket is hashed by. At connect() an unbound socket has
 * no source port yet: the socket cookie stands in for it, so every socket
 * is one flow of the 5-tuple split, and a UDP socket keeps its choice.
 */
__canary_inline void socklb_tuple(struct canary_ct_key *t, __be32 saddr, __be32 vip, __be16 vport,
				  __u8 proto, __u64 cookie)
{
	t->saddr = saddr;
	t->daddr = vip;
	t->sport = (__be16)hash_mix((__u32)cookie ^ (__u32)(cookie >> 32));
	t->dport = vport;
	t->proto = proto;
}

/*
 * Version for a new socket. A socket bound to a source address gets the
 * data path's choice, overrides included. An unbound one has no address
 * yet: with client-ip affinity its network namespace is the client (one
 * cohort per pod, and the host is one client), and overrides, which name
 * source addresses, do not apply.
 */
__canary_inline __u8 socklb_pick_version(const struct canary_service *svc,
					 const struct canary_ct_key *t, __u64 netns)
{
	__u32 h;

	if (t->saddr)
		return lb_pick_version(svc, t);
	if (svc->affinity == CANARY_AFFINITY_CLIENT_IP)
		h = hash_client((__u32)netns ^ (__u32)(netns >> 32), svc->seed);
	else
		h = hash_tuple(t, svc->seed);
	return (h % CANARY_WEIGHT_MAX) < svc->weight ? CANARY_V_CANARY : CANARY_V_STABLE;
}

/* Is addr:port still a backend of version v of svc? At most 16 compares. */
__canary_inline int socklb_listed(const struct canary_service *svc, __u8 v, __be32 addr,
				  __be16 port)
{
	__u32 i;

	v &= 1;
	for (i = 0; i < CANARY_MAX_BACKENDS && i < svc->n_backends[v]; i++) {
		if (svc->backends[v][i].addr == addr && svc->backends[v][i].port == port)
			return 1;
	}
	return 0;
}

/*
 * May a socket keep what it chose before (a UDP socket sending again, or
 * connecting again to the same VIP)? Not when its backend left the lists,
 * nor a canary choice after an abort (reset epoch) or under the kill switch.
 */
__canary_inline int socklb_keep(const struct canary_sock_lb *st, const struct canary_service *svc,
				const struct canary_ct_key *t)
{
	if (st->vip != t->daddr || st->vport != t->dport || st->proto != t->proto)
		return 0;
	if (st->svc_id != svc->id || !socklb_listed(svc, st->version, st->backend, st->bport))
		return 0;
	if (st->version != CANARY_V_CANARY)
		return 1;
	return !(svc->reset_ns && st->created_ns <= svc->reset_ns) && !lb_killed(t);
}

/* Choose for a socket that has no (valid) choice yet; counts the connection. */
__canary_inline int socklb_choose(struct canary_sock_lb *st, const struct canary_service *svc,
				  const struct canary_ct_key *t, __u64 netns)
{
	const struct canary_backend *be;
	struct canary_metrics *m;
	__u8 version;

	version = socklb_pick_version(svc, t, netns);
	be = lb_pick_allowed(svc, t, &version);
	if (!be)
		return -1;
	st->vip = t->daddr;
	st->vport = t->dport;
	st->proto = t->proto;
	st->backend = be->addr;
	st->bport = be->port;
	st->svc_id = svc->id;
	st->version = version;
	st->created_ns = bpf_ktime_get_coarse_ns();
	m = metrics_of(svc->id, version);
	if (m)
		m->conns_opened += 1;
	return 0;
}

/*
 * connect() or sendmsg() to ctx's destination: when it is a VIP, send the
 * socket to the backend chosen for it. A VIP with no backend to go to is
 * left as it is: the connection fails as it would without canaryd.
 */
__canary_inline void socklb_translate(struct bpf_sock_addr *ctx, __be32 saddr, __u8 proto)
{
	struct canary_service *svc;
	struct canary_sock_lb *st;
	struct canary_ct_key t;

	if (ctx->user_family != CANARY_AF_INET)
		return;
	svc = socklb_service(ctx->user_ip4, (__be16)ctx->user_port, proto);
	if (!svc)
		return;
	st = bpf_sk_storage_get(&CANARY_MAP(sock_lb), ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	socklb_tuple(&t, saddr, ctx->user_ip4, (__be16)ctx->user_port, proto,
		     bpf_get_socket_cookie(ctx));
	if (!socklb_keep(st, svc, &t) && socklb_choose(st, svc, &t, bpf_get_netns_cookie(ctx)))
		return;
	ctx->user_ip4 = st->backend;
	ctx->user_port = st->bport;
}

/* getpeername() and recvmsg(): the backend's address shows as the VIP. */
__canary_inline void socklb_restore(struct bpf_sock_addr *ctx)
{
	struct canary_sock_lb *st;

	st = bpf_sk_storage_get(&CANARY_MAP(sock_lb), ctx->sk, 0, 0);
	if (!st || st->backend != ctx->user_ip4 || st->bport != (__be16)ctx->user_port)
		return;
	ctx->user_ip4 = st->vip;
	ctx->user_port = st->vport;
}

/*
 * An abort's reset, for one socket: a canary choice made at or before its
 * service's reset epoch, while that service is the one it chose in.
 */
__canary_inline int socklb_reset_wanted(const struct canary_sock_lb *st)
{
	const struct canary_service *svc;

	if (st->version != CANARY_V_CANARY)
		return 0;
	svc = socklb_service(st->vip, st->vport, st->proto);
	return svc && svc->id == st->svc_id && svc->reset_ns && st->created_ns <= svc->reset_ns;
}

#endif /* CANARY_BPF_SOCKLB_H */
