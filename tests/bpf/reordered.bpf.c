// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A services map whose value has two same-size fields swapped (generation
 * before id): type, key and value sizes, entries and flags all match the
 * product's, so libbpf alone would reuse its pin and the programs would read
 * the generation as the metrics slot. tests/e2e/test_pin_layout.sh pins it
 * (bpftool prog loadall ... pinmaps) and checks that canaryd refuses it.
 * No pinning attribute: bpftool pins it where the test says.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "canary_consts.h"
#include "canary_structs.h"

#ifndef SEC
#define SEC(name) __attribute__((section(name), used))
#endif

struct canary_service_reordered {
	__u32 generation; /* swapped with id */
	__u32 id;
	__u32 seed;
	__u16 weight;
	__u8 affinity;
	__u8 flags;
	__u8 n_backends[CANARY_V_COUNT];
	__u8 pad[2];
	char name[CANARY_NAME_LEN];
	struct canary_backend backends[CANARY_V_COUNT][CANARY_MAX_BACKENDS];
	__u32 pad2;
	__u64 reset_ns;
};

_Static_assert(sizeof(struct canary_service_reordered) == sizeof(struct canary_service),
	       "the reorder must keep the size, or libbpf's own check would catch it");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CANARY_MAX_SERVICES);
	__type(key, struct canary_service_key);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* as the product's */
	__type(value, struct canary_service_reordered);
} CANARY_MAP(services) SEC(".maps");

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int reordered_tc(struct __sk_buff *skb)
{
	struct canary_service_key key = { .vip = skb->mark };

	return bpf_map_lookup_elem(&CANARY_MAP(services), &key) ? TC_ACT_OK : TC_ACT_UNSPEC;
}
