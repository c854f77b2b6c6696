// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The conntrack map's entry count, for the agent, in O(1), and its expiry
 * pass (canary_ct_expire, below).
 *
 * Hash maps keep a per-CPU element count (Linux 6.6 and later), which the
 * bpf_map_sum_elem_count kfunc sums. The agent runs this program with
 * BPF_PROG_TEST_RUN once a tick, in microseconds; reading the map's 262,144
 * entries from user space instead takes tens of milliseconds even in batches.
 * With the entries created (ct_stats_v<N>), the count gives the LRU's evictions.
 *
 * A kernel without the kfunc refuses this object, not the data path's: the
 * agent then falls back to walking the map.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/metrics.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Only the pointer's type matters to the kfunc; the kernel's BTF has the rest. */
struct bpf_map {
	__u32 id;
} __attribute__((preserve_access_index));

extern __s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym;

SEC("syscall")
int canary_ct_count(struct canary_ct_count_args *args)
{
	args->entries = bpf_map_sum_elem_count((const struct bpf_map *)&CANARY_MAP(conntrack));
	return 0;
}

/*
 * Conntrack expiry, run by the agent once a second: the LRU only makes room
 * when the table is full, so without lifetimes every entry stays until
 * evicted, and turnover is the table's size over the insert rate. A forward
 * entry is judged by its flow's state, and its reverse entry goes with it.
 * A reverse entry carries no state: it goes after CANARY_CT_ORPHAN_NS
 * without a reply, and a live flow's forward entry writes it again when the
 * client next speaks (ct_refresh_forward). Half-open entries (ct_syn_v<N>)
 * go after the SYN lifetime, or the closed one once refused. The pass looks nothing up: a BPF
 * lookup marks an LRU entry as used, and marking every entry once a second
 * would leave the LRU no idea which flows are quiet.
 */
struct expire_ctx {
	__u64 now;
	__u64 expired;
};

/*
 * The lifetimes, set by the agent before it loads this object (canaryd
 * --conntrack-lifetimes); the defaults are Cilium's.
 */
const volatile __u64 ct_closed_ns = CANARY_CT_CLOSED_NS;
const volatile __u64 ct_syn_ns = CANARY_CT_SYN_NS;
const volatile __u64 ct_tcp_ns = CANARY_CT_TCP_NS;
const volatile __u64 ct_udp_ns = CANARY_CT_UDP_NS;
const volatile __u64 ct_reply_ns = CANARY_CT_ORPHAN_NS;

static int ct_is_closed(const struct canary_ct_entry *e)
{
	__u32 closed_fins = CANARY_CT_F_CLIENT_FIN | CANARY_CT_F_SERVER_FIN;

	return (e->flags & CANARY_CT_F_CLOSED) || (e->flags & closed_fins) == closed_fins;
}

static __u64 ct_lifetime_ns(const struct canary_ct_key *key, const struct canary_ct_entry *e)
{
	if (e->flags & CANARY_CT_F_REVERSE)
		return ct_reply_ns;
	if (key->proto != IPPROTO_TCP)
		return ct_udp_ns;
	if (ct_is_closed(e))
		return ct_closed_ns;
	if (!(e->flags & (CANARY_CT_F_ESTABLISHED | CANARY_CT_F_MIDFLOW)))
		return ct_syn_ns;
	return ct_tcp_ns;
}

/*
 * A half-open entry lives as a handshake never answered does, whatever its
 * flags say: a SYN-ACK without the client's ACK is still no connection.
 */
static __u64 syn_lifetime_ns(const struct canary_ct_entry *e)
{
	if (ct_is_closed(e))
		return ct_closed_ns;
	return ct_syn_ns;
}

static __u64 idle_ns(const struct expire_ctx *c, const struct canary_ct_entry *e)
{
	return c->now > e->last_seen_ns ? c->now - e->last_seen_ns : 0;
}

/*
 * A request unanswered for CANARY_HTTP_TIMEOUT_NS while its client stays
 * connected: a failed turn of its version (a 5xx, the time waited as its
 * latency), as a proxy's read timeout answers 504. A hanging canary
 * otherwise shows requests and nothing else. The atomic fetch makes the
 * data path's response, or the client's close, and this pass count it once.
 * The request's start is CLOCK_MONOTONIC, read here with the same clock.
 */
static void request_timeout(struct canary_ct_entry *e)
{
	struct canary_metrics *m;
	__u64 now = bpf_ktime_get_ns();
	__u32 old;

	if (!(e->flags & CANARY_CT_F_IN_REQUEST) || now - e->req_start_ns <= CANARY_HTTP_TIMEOUT_NS)
		return;
	old = __sync_fetch_and_and(&e->flags, ~CANARY_CT_F_IN_REQUEST);
	m = metrics_of(e->svc_id, e->version);
	if (!(old & CANARY_CT_F_IN_REQUEST) || !m)
		return;
	m->responses[5] += 1;
	metrics_latency(m, now - e->req_start_ns);
}

static void expire_key(const struct canary_ct_key *key, struct expire_ctx *c)
{
	if (!bpf_map_delete_elem(&CANARY_MAP(conntrack), key))
		c->expired++;
}

/* The key of the other direction of an entry's flow. */
static void other_key(struct canary_ct_key *other, const struct canary_ct_key *key,
		      const struct canary_ct_entry *e)
{
	__builtin_memset(other, 0, sizeof(*other));
	other->saddr = e->nat_addr;
	other->sport = e->nat_port;
	other->daddr = key->saddr;
	other->dport = key->sport;
	other->proto = key->proto;
}

static long expire_one(struct bpf_map *map, struct canary_ct_key *key, struct canary_ct_entry *e,
		       struct expire_ctx *c)
{
	struct canary_ct_key rkey;

	(void)map;
	request_timeout(e);
	if (idle_ns(c, e) <= ct_lifetime_ns(key, e))
		return 0;
	if (!(e->flags & CANARY_CT_F_REVERSE)) {
		other_key(&rkey, key, e);
		expire_key(&rkey, c); /* the flow's reply side goes with it */
	}
	expire_key(key, c);
	return 0;
}

static void expire_half_open_key(const struct canary_ct_key *key, struct expire_ctx *c)
{
	if (!bpf_map_delete_elem(&CANARY_MAP(ct_syn), key))
		c->expired++;
}

/* The same for the half-open table: a reverse entry outlives its forward one by no more. */
static long expire_half_open(struct bpf_map *map, struct canary_ct_key *key,
			     struct canary_ct_entry *e, struct expire_ctx *c)
{
	struct canary_ct_key rkey;

	(void)map;
	if (idle_ns(c, e) <= syn_lifetime_ns(e))
		return 0;
	if (!(e->flags & CANARY_CT_F_REVERSE)) {
		other_key(&rkey, key, e);
		expire_half_open_key(&rkey, c);
	}
	expire_half_open_key(key, c);
	return 0;
}

SEC("syscall")
int canary_ct_expire(struct canary_ct_expire_args *args)
{
	struct expire_ctx c = { .now = args->now_ns };
	struct expire_ctx half = { .now = args->now_ns };
	struct canary_ct_expired *total;
	__u32 zero = 0;

	bpf_for_each_map_elem(&CANARY_MAP(conntrack), expire_one, &c, 0);
	/* Not in ct_expired: that total is conntrack's, the evictions are derived from it. */
	bpf_for_each_map_elem(&CANARY_MAP(ct_syn), expire_half_open, &half, 0);
	args->expired = c.expired;
	args->syn_expired = half.expired;
	total = bpf_map_lookup_elem(&CANARY_MAP(ct_expired), &zero);
	if (total)
		__sync_fetch_and_add(&total->entries, c.expired);
	return 0;
}
