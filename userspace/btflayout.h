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
 * Every map of obj (opened, not loaded) that has a pin already: its key and
 * value types in the kernel's BTF against the object's. Returns 0 when all
 * agree or have no pin, 1 with why naming the map and the first difference,
 * or -errno (why says what failed).
 */
int btf_layout_check_pins(const struct bpf_object *obj, char *why, size_t len);

#endif /* CANARY_BTFLAYOUT_H */
