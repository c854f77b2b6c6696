/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The HTTP API (libmicrohttpd), in its own threads so that no client can
 * delay the tick loop. Control goes over a UNIX socket (mode 0600); an
 * optional TCP listener serves /metrics, health and the read-only routes,
 * and the mutating routes only with the bearer token of --token-file.
 * Routes and fields: docs/api.md.
 */
#ifndef CANARY_API_H
#define CANARY_API_H

#include "agent.h"
#include "defaults.h"

struct api_opts {
	const char *socket_path; /* NULL or "": no UNIX socket */
	const char *listen;	 /* "ADDR:PORT", or NULL for no TCP listener */
	const char *token_file;	 /* bearer token for mutating routes over TCP */
	const char *tls_cert;	 /* PEM certificate (chain) for TLS on the TCP listener */
	const char *tls_key;	 /* its PEM private key; both or neither */
	int tick_ms;		 /* the tick interval: /healthz fails when ticks stop */
};

/* Renders GET /metrics; set by the metrics module. */
typedef char *(*api_metrics_fn)(struct agent *a, size_t *len);

struct api_server;

int api_start(struct agent *a, const struct api_opts *o, api_metrics_fn metrics,
	      struct api_server **out);
void api_stop(struct api_server *s);

/* Request handling without sockets, for tests and fuzzing. */
struct api_reply {
	unsigned int status;
	char *body; /* malloc'ed JSON or text; caller frees */
	const char *content_type;
	const char *allow; /* 405: the methods the route takes */
	char tick_age[24]; /* /healthz, /readyz: seconds since the last tick ended, or "" */
};
void api_handle(struct agent *a, const char *method, const char *url, const char *body,
		size_t body_len, bool control, struct api_reply *reply);

#endif /* CANARY_API_H */
