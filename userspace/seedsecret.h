/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef CANARY_SEEDSECRET_H
#define CANARY_SEEDSECRET_H

#include <stdbool.h>
#include <linux/types.h>

#include "canary_secret.h"

/*
 * The secret pinned at bpffs/secret_v<N>: read when it is there, else
 * created from getrandom() and pinned. Returns the map's descriptor (kept
 * to pin it again, see seed_secret_repin) or -errno; *created says which.
 * A pin of another shape is refused (-EINVAL), never reused.
 */
int seed_secret_open(const char *bpffs, struct canary_secret *out, bool *created);

/* Pins fd again when its pin was removed: 1 pinned again, 0 present, -errno. */
int seed_secret_repin(int fd, const char *bpffs);

/* A rollout's hash seed: the low 32 bits of SipHash-2-4(secret, name). */
__u32 seed_secret_seed(const struct canary_secret *s, const char *name);

#endif /* CANARY_SEEDSECRET_H */
