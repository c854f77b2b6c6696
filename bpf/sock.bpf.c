// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Clients on the node itself (bpf/lib/socklb.h). Attached to a cgroup v2
 * (by default the root, so every process of the node) by the agent
 * (userspace/hostsock.c):
 *
 *   cgroup/connect4, cgroup/sendmsg4: a connect() or a datagram to a VIP
 *     goes to the backend chosen for the socket, once;
 *   cgroup/getpeername4, cgroup/recvmsg4: the backend shows as the VIP.
 *
 * And two socket iterators the agent runs when a rollout aborts with
 * "connections: reset": they destroy the host's canary sockets chosen at
 * or before the reset epoch (bpf_sock_destroy, Linux 6.5 and later).
 */
#include "lib/common.h"
#include "lib/socklb.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Set by the agent before loading: with --host-netns-only, the cookie of
 * its own network namespace, and sockets of other namespaces (pods, which
 * may have a sidecar proxy of their own) are left alone. 0: every socket.
 */
const volatile __u64 host_netns_cookie = 0;

/* Sockets the last reset pass destroyed, for the agent's log. */
__u64 sockets_destroyed = 0;

__canary_inline int sock_in_scope(struct bpf_sock_addr *ctx)
{
	return !host_netns_cookie || bpf_get_netns_cookie(ctx) == host_netns_cookie;
}

SEC("cgroup/connect4")
int canary_sock_connect4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	if (sk && sock_in_scope(ctx))
		socklb_translate(ctx, sk->src_ip4, (__u8)ctx->protocol);
	return 1;
}

SEC("cgroup/sendmsg4")
int canary_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol == IPPROTO_UDP && sock_in_scope(ctx))
		socklb_translate(ctx, ctx->msg_src_ip4, IPPROTO_UDP);
	return 1;
}

SEC("cgroup/recvmsg4")
int canary_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	socklb_restore(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int canary_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	socklb_restore(ctx);
	return 1;
}

/* Only the pointers' types matter to the verifier; the kernel's BTF has the rest. */
struct bpf_iter_meta {
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
	volatile unsigned char skc_state;
} __attribute__((preserve_access_index));

/* sk_state of a connected UDP socket, as of an established TCP one. */
#define CANARY_SK_ESTABLISHED 1

struct sock;
struct tcp_sock;
struct udp_sock;

struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
} __attribute__((preserve_access_index));

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/*
 * Destroy a socket when its abort asks for it: for TCP, tcp_abort (an RST
 * to the backend, ECONNABORTED to the client). sk is the socket as the
 * storage helper takes it, skc the iterator's own (trusted) pointer to it,
 * which is what bpf_sock_destroy takes.
 */
__canary_inline void sock_reset_one(void *sk, struct sock_common *skc)
{
	struct canary_sock_lb *st = bpf_sk_storage_get(&CANARY_MAP(sock_lb), sk, 0, 0);

	if (st && socklb_reset_wanted(st) && !bpf_sock_destroy(skc))
		sockets_destroyed += 1;
}

SEC("iter/tcp")
int canary_sock_reset_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	/* Host sockets are split for IPv4 only. */
	if (!skc || skc->skc_family != CANARY_AF_INET)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (tp)
		sock_reset_one(tp, skc);
	return 0;
}

/*
 * Connected UDP sockets only: an unconnected one chooses again at its next
 * datagram after the reset epoch (socklb_keep), and destroying it would
 * only fail its next call.
 */
SEC("iter/udp")
int canary_sock_reset_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	struct sock_common *skc = (struct sock_common *)up;

	if (up && skc->skc_state == CANARY_SK_ESTABLISHED)
		sock_reset_one(up, skc);
	return 0;
}
