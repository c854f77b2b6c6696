/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * canaryd --probe PATH: one GET of /healthz or /readyz through the API's
 * UNIX socket, for exec probes. The socket is reachable only from the
 * node, so no remote client can starve the kubelet's probes the way it
 * can fill a TCP listener.
 */
#ifndef CANARY_PROBE_H
#define CANARY_PROBE_H

/* Prints the answer; returns the exit status: 0 for HTTP 200, 1 otherwise. */
int probe_run(const char *socket_path, const char *path, long timeout_ms);

#endif /* CANARY_PROBE_H */
