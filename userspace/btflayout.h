/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef CANARY_BTFLAYOUT_H
#define CANARY_BTFLAYOUT_H

#include <stddef.h>
#include <linux/types.h>

struct btf;
struct bpf_object;

/*
 * Compares type want_id of want (the program's) with have_id of have (a
 * pinned map's) member by member: names, offsets, sizes and types, through
 * nested structs, unions and arrays; typedefs and qualifiers are looked
 * through. Returns 0 when the layouts agree, 1 when they do not (why then
 * names the first difference, prefixed with path, e.g. "value
 * canary_service member 0 (offset 0): generation in the pinned map, id in
 * the program"), or -errno.
 */
int btf_layout_diff(const struct btf *want, __u32 want_id, const struct btf *have, __u32 have_id,
		    const char *path, char *why, size_t len);

/*
 * Every map of obj (opened, not loaded) that has a pin already: the layout
 * digest recorded in record_fd (layout_v<N>, -1: none) when there is one,
 * else its key and value types in the kernel's BTF (which needs
 * CAP_SYS_ADMIN: -EPERM without), against the object's. Returns 0 when all
 * agree or have no pin, 1 with why naming the map and the first difference,
 * or -errno (why says what failed).
 */
int btf_layout_check_pins(const struct bpf_object *obj, int record_fd, char *why, size_t len);

/* Records the digest of every pinned map of obj in record_fd: 0 or -errno. */
int btf_layout_record(const struct bpf_object *obj, int record_fd);

/*
 * A digest of a map's key and value layout (what btf_layout_diff compares):
 * equal layouts give equal digests. key_id 0: no key type. 0 or -errno.
 */
int btf_layout_digest(const struct btf *btf, __u32 key_id, __u32 value_id, __u64 *digest);

#endif /* CANARY_BTFLAYOUT_H */
