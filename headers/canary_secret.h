/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * secret_v<N>: a one-entry array (key 0) pinned beside the data path's maps.
 * The agent creates it on its first start with random bytes and keeps it
 * across restarts; each rollout's hash seeds are SipHash-2-4 of the rollout
 * name under this key, so the name alone does not say which source ports
 * land on the canary, and a restarted agent splits exactly as before.
 * The programs never read it: the seeds reach them in services_v<N>.
 */
#ifndef CANARY_SECRET_H
#define CANARY_SECRET_H

#include <linux/types.h>

#define CANARY_SECRET_LEN 16

struct canary_secret {
	__u8 key[CANARY_SECRET_LEN]; /* SipHash-2-4 key */
};

#endif /* CANARY_SECRET_H */
