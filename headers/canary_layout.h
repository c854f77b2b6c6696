/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * layout_v<N>: the agent's record of the layout each pinned map was created
 * with, written after every load. Reading a pinned map's own BTF needs
 * CAP_SYS_ADMIN; this record lets an agent without it still refuse a pin
 * of another layout. The programs never read it.
 */
#ifndef CANARY_LAYOUT_H
#define CANARY_LAYOUT_H

#include <linux/types.h>

#define CANARY_LAYOUT_MAX_MAPS 32

/* Key: a map's name, as the kernel keeps it (at most 15 characters). */
struct canary_layout_key {
	char name[16];
};

/* Value: a 64-bit digest of the map's key and value types (btflayout.c). */
struct canary_layout_val {
	__u64 digest;
};

#endif /* CANARY_LAYOUT_H */
