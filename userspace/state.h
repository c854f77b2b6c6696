/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rollout state on disk: one JSON file per rollout in the state directory,
 * replaced atomically (write, fsync, rename, fsync the directory), so a
 * kill -9 at any moment leaves either the old or the new state.
 */
#ifndef CANARY_STATE_H
#define CANARY_STATE_H

#include <stddef.h>

#include "rollout.h"

#define STATE_DEFAULT_DIR "/var/lib/canaryd"

/* Create the directory (mode 0700) if needed. */
int state_dir_prepare(const char *dir);
int state_save(const char *dir, const struct rollout_state *st);
/* Returns -ENOENT when there is no state for name; -EINVAL if it is unreadable. */
int state_load(const char *dir, const char *name, struct rollout_state *st);
int state_remove(const char *dir, const char *name);

#endif /* CANARY_STATE_H */
