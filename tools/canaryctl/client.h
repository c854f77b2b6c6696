/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* canaryctl's HTTP client for the agent's API (libcurl). */
#ifndef CANARYCTL_CLIENT_H
#define CANARYCTL_CLIENT_H

#include <jansson.h>

struct client {
	const char *socket_path; /* UNIX socket (default), or ... */
	const char *server;	 /* ... "http://host:port" with a bearer token */
	const char *token_file;
};

/*
 * method path [body] -> HTTP status and the parsed JSON reply (NULL if the
 * reply was not JSON). Returns -1 when the agent could not be reached, with
 * the reason on stderr.
 */
int client_call(const struct client *c, const char *method, const char *path, const char *body,
		long *status, json_t **reply);

#endif /* CANARYCTL_CLIENT_H */
