/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An HTTP response body collected by libcurl into memory: the canaryctl
 * client's replies and the Prometheus answers of external metrics.
 */
#ifndef CANARY_HTTPBODY_H
#define CANARY_HTTPBODY_H

#include <stdbool.h>
#include <stddef.h>

struct http_body {
	char *data; /* NUL-terminated; NULL until the first byte; the caller frees it */
	size_t len;
	size_t max; /* a longer body fails the transfer: no answer we expect is that large */
};

/* CURLOPT_WRITEFUNCTION, with a struct http_body as CURLOPT_WRITEDATA. */
size_t http_body_write(char *ptr, size_t size, size_t nmemb, void *arg);

/* One complete line of a stream; false stops the stream. */
typedef bool (*http_line_fn)(void *arg, const char *line, size_t len);

/*
 * A chunk of a newline-delimited stream (the etcd and Kubernetes watches):
 * each complete, non-empty line goes to fn; a partial one waits in line
 * for the next chunk. Returns n, or 0 (which ends a libcurl transfer) when
 * fn stops the stream or a line grows past line->max.
 */
size_t http_lines_feed(struct http_body *line, char *p, size_t n, http_line_fn fn, void *arg);

#endif /* CANARY_HTTPBODY_H */
