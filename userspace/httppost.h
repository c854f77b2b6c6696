/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A JSON POST with libcurl, for notifications and webhooks (never from the tick loop). */
#ifndef CANARY_HTTPPOST_H
#define CANARY_HTTPPOST_H

#include <stddef.h>
#include <linux/types.h>

/*
 * POST body (JSON) to url within timeout_ms. Returns 0 with the HTTP status
 * in *status (any status: the caller decides what passes), or -1 when no
 * answer came (err says why: refused, timed out, ...).
 */
int http_post_json(const char *url, const char *body, __s64 timeout_ms, long *status, char *err,
		   size_t errlen);

#endif /* CANARY_HTTPPOST_H */
