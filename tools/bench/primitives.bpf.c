// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The operations canaryd's paths are made of, each alone in a tc program,
 * so that pktcost can print what one of them costs on this machine in the
 * same run as the paths: a floor under any goal for a path that needs it.
 * The maps have conntrack's key and value types; the programs change
 * neither the frame nor (but for the full-table inserts) any state.
 */
#include "lib/csum.h"

/* Offsets in pktcost's frames: Ethernet, a 20-byte IPv4 header, TCP. */
#define PRIM_IP_CHECK_OFF  (14 + 10)
#define PRIM_TCP_CHECK_OFF (14 + 20 + 16)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CANARY_CT_SYN_MAX_ENTRIES);
	__type(key, struct canary_ct_key);
	__type(value, struct canary_ct_entry);
} prim_lookup SEC(".maps");

/* Kept full by the insert program: every insert evicts, as in a SYN flood. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CANARY_CT_SYN_MAX_ENTRIES);
	__type(key, struct canary_ct_key);
	__type(value, struct canary_ct_entry);
} prim_insert SEC(".maps");

/* The same with an LRU list per CPU (BPF_F_NO_COMMON_LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CANARY_CT_SYN_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct canary_ct_key);
	__type(value, struct canary_ct_entry);
} prim_insert_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} prim_array SEC(".maps");

/* The key pktcost stores in prim_lookup; the miss looks up another. */
const volatile struct canary_ct_key prim_hit_key = { .proto = 6 };
volatile __u64 prim_sink;
__u32 prim_next;

SEC("tc")
int prim_hash_hit(struct __sk_buff *skb)
{
	struct canary_ct_key k = prim_hit_key;
	struct canary_ct_entry *e = bpf_map_lookup_elem(&prim_lookup, &k);

	(void)skb;
	if (e)
		prim_sink = e->last_seen_ns;
	return TC_ACT_OK;
}

SEC("tc")
int prim_hash_miss(struct __sk_buff *skb)
{
	struct canary_ct_key k = prim_hit_key;
	struct canary_ct_entry *e;

	(void)skb;
	k.sport ^= 1;
	e = bpf_map_lookup_elem(&prim_lookup, &k);
	if (e)
		prim_sink = e->last_seen_ns;
	return TC_ACT_OK;
}

SEC("tc")
int prim_array_read(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&prim_array, &zero);

	(void)skb;
	if (v)
		prim_sink = *v;
	return TC_ACT_OK;
}

SEC("tc")
int prim_helper_call(struct __sk_buff *skb)
{
	(void)skb;
	prim_sink = bpf_ktime_get_coarse_ns();
	return TC_ACT_OK;
}

/* A key no earlier run used: into a full table, every insert evicts. */
static __always_inline void insert_new_key(void *map)
{
	struct canary_ct_key k = { .saddr = prim_next++, .proto = 6 };
	struct canary_ct_entry e = { .nat_port = 1 };

	bpf_map_update_elem(map, &k, &e, BPF_ANY);
}

SEC("tc")
int prim_lru_insert(struct __sk_buff *skb)
{
	(void)skb;
	insert_new_key(&prim_insert);
	return TC_ACT_OK;
}

SEC("tc")
int prim_lru_insert_percpu(struct __sk_buff *skb)
{
	(void)skb;
	insert_new_key(&prim_insert_percpu);
	return TC_ACT_OK;
}

/* An insert into a table with room (the key deleted again): no eviction. */
SEC("tc")
int prim_lru_insert_room(struct __sk_buff *skb)
{
	struct canary_ct_key k = { .saddr = prim_next++, .proto = 17 };
	struct canary_ct_entry e = { .nat_port = 1 };

	(void)skb;
	if (!bpf_map_update_elem(&prim_lookup, &k, &e, BPF_NOEXIST))
		bpf_map_delete_elem(&prim_lookup, &k);
	return TC_ACT_OK;
}

/*
 * The tc rewrite of one address, as nat_rewrite() does it: the L4 checksum
 * by its helper, then the IPv4 checksum (computed here) and the address in
 * one store, writing back the same values.
 */
SEC("tc")
int prim_tc_rewrite(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct ipv4_check_addrs ip;

	/* A direct read, no helper: only the two calls of the rewrite are timed. */
	if (data + PRIM_IP_CHECK_OFF + sizeof(ip) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(&ip, data + PRIM_IP_CHECK_OFF, sizeof(ip));
	if (bpf_l4_csum_replace(skb, PRIM_TCP_CHECK_OFF, ip.daddr, ip.daddr,
				BPF_F_PSEUDO_HDR | sizeof(ip.daddr)))
		return TC_ACT_SHOT;
	ip.check = csum_replace4(ip.check, ip.daddr, ip.daddr);
	if (bpf_skb_store_bytes(skb, PRIM_IP_CHECK_OFF, &ip, sizeof(ip), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/*
 * What both forms below do before their stores: read the header directly
 * (no helper, as prim_tc_rewrite does), the two L4 checksum updates of an
 * address and a port, and the IPv4 checksum, writing back the same values.
 */
static __always_inline int prim_port_rewrite_sums(struct __sk_buff *skb,
						  struct ipv4_check_addrs_ports *h)
{
	void *data = (void *)(long)skb->data;

	if (data + PRIM_IP_CHECK_OFF + sizeof(*h) > (void *)(long)skb->data_end)
		return -1;
	__builtin_memcpy(h, data + PRIM_IP_CHECK_OFF, sizeof(*h));
	if (bpf_l4_csum_replace(skb, PRIM_TCP_CHECK_OFF, h->ip.daddr, h->ip.daddr,
				BPF_F_PSEUDO_HDR | sizeof(h->ip.daddr)) ||
	    bpf_l4_csum_replace(skb, PRIM_TCP_CHECK_OFF, h->dport, h->dport, sizeof(h->dport)))
		return -1;
	h->ip.check = csum_replace4(h->ip.check, h->ip.daddr, h->ip.daddr);
	return 0;
}

/*
 * The tc rewrite of an address and a port as nat_rewrite() did it before
 * the port joined the header store: the IPv4 checksum and address, then
 * the port, in two stores.
 */
SEC("tc")
int prim_tc_rewrite_port_2stores(struct __sk_buff *skb)
{
	struct ipv4_check_addrs_ports h;

	if (prim_port_rewrite_sums(skb, &h) ||
	    bpf_skb_store_bytes(skb, PRIM_IP_CHECK_OFF, &h.ip, sizeof(h.ip), 0) ||
	    bpf_skb_store_bytes(skb,
				PRIM_IP_CHECK_OFF + offsetof(struct ipv4_check_addrs_ports, dport),
				&h.dport, sizeof(h.dport), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* The same as nat_rewrite() does it now: one store from the checksum to the ports. */
SEC("tc")
int prim_tc_rewrite_port(struct __sk_buff *skb)
{
	struct ipv4_check_addrs_ports h;

	if (prim_port_rewrite_sums(skb, &h) ||
	    bpf_skb_store_bytes(skb, PRIM_IP_CHECK_OFF, &h, sizeof(h), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/*
 * The flow cache's probe (bpf/lib/flowcache.h), on maps of its own types
 * and size: the slot chosen by canary_flow_cache_slot(), its generation
 * read, the key compared. The first run fills the slot; every later one
 * hits.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CANARY_FLOW_CACHE_ENTRIES);
	__type(key, __u32);
	__type(value, struct canary_flow_cache);
} prim_fc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CANARY_FLOW_CACHE_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} prim_fc_gens SEC(".maps");

SEC("tc")
int prim_flow_cache_hit(struct __sk_buff *skb)
{
	struct canary_ct_key k = prim_hit_key;
	__u32 slot = canary_flow_cache_slot(&k);
	struct canary_flow_cache *c = bpf_map_lookup_elem(&prim_fc, &slot);
	__u32 *g = bpf_map_lookup_elem(&prim_fc_gens, &slot);

	(void)skb;
	if (!c || !g)
		return TC_ACT_OK;
	if (c->slot_gen == *g && canary_ct_key_equal(&c->key, &k)) {
		prim_sink = c->last_seen_ns;
		return TC_ACT_OK;
	}
	c->key = k;
	c->slot_gen = *g;
	return TC_ACT_OK;
}
