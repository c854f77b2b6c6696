/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Between the Rollout schema (config.c) and file loading (config_load.c);
 * not for other modules, which use config.h.
 */
#ifndef CANARY_CONFIG_INTERNAL_H
#define CANARY_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config.h"
#include "yamltree.h"

#define CONFIG_MAX_FILE_SIZE ((size_t)1024 * 1024)

/* One load: rollouts so far, handed over only on success, and the error. */
struct loader {
	struct rollout_cfg *v;
	size_t n, cap;
	char err[CONFIG_ERR_LEN];
};

/* For problems of a whole file (cannot open, too large): no position to give. */
#define file_fail(ld, file, ...) yfail_file((ld)->err, sizeof((ld)->err), (file), __VA_ARGS__)

/* Every Rollout document of buf (named file in messages) into ld. */
int config_parse_stream(struct loader *ld, const char *file, const char *buf, size_t len);
/* Hands ld's rollouts to out when rc is 0, else copies the error and frees them. */
int config_finish(struct loader *ld, int rc, struct config *out, char *err, size_t errlen);

#endif /* CANARY_CONFIG_INTERNAL_H */
