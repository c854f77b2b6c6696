/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One instant query against a Prometheus server's HTTP API (libcurl). */
#ifndef CANARY_PROMQUERY_H
#define CANARY_PROMQUERY_H

#include <stddef.h>

#include "config.h"

#define PROMQUERY_TIMEOUT_MS 2000

/*
 * GET address/api/v1/query?query=... and the value of its first sample
 * (a vector's first element, or a scalar). An unreachable server, an HTTP
 * or API error, an empty result or a value that is not a number is an
 * error (-1, with the reason in err). auth (may be NULL) gives the CA, the
 * client certificate and the bearer token file for an https address; the
 * token file is read on every call and refused when group or others may
 * read it.
 */
int promquery(const char *address, const struct prom_tls_auth *auth, const char *query,
	      double *value, char *err, size_t errlen);

#endif /* CANARY_PROMQUERY_H */
