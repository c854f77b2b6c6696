/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rollout state on disk: one JSON file per rollout in the state directory,
 * replaced atomically (write, fsync, rename, fsync the directory), so a
 * kill -9 at any moment leaves either the old or the new state.
 */
#ifndef CANARY_STATE_H
#define CANARY_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "defaults.h"
#include "rollout.h"

/* Create the directory (mode 0700) if needed. */
int state_dir_prepare(const char *dir);
/*
 * Save st, with the analysis evidence (may be NULL) alongside. sync: fsync
 * the file and the directory (transitions); periodic evidence saves skip it.
 */
int state_save(const char *dir, const struct rollout_state *st, json_t *evidence, bool sync);
/*
 * Returns -ENOENT when there is no state for name, -EPROTONOSUPPORT for a
 * newer format, -EINVAL if it is unreadable. *evidence (may be NULL) gets the
 * saved evidence, or NULL; the caller json_decref()s it.
 */
int state_load(const char *dir, const char *name, struct rollout_state *st, json_t **evidence);
/*
 * Keep a state file out of the way under a new name, NAME.json.SUFFIX, so
 * that nothing is lost: an unreadable file, or a removed rollout's.
 */
int state_set_aside(const char *dir, const char *name, const char *suffix);
/* Bring back a state file set aside with SUFFIX (-ENOENT when there is none). */
int state_take_back(const char *dir, const char *name, const char *suffix);
int state_remove(const char *dir, const char *name);

#endif /* CANARY_STATE_H */
