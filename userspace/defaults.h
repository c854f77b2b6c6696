/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Default paths shared by the agent and canaryctl. On their own so that
 * canaryctl finds the agent's socket without including api.h, which pulls
 * in the agent and, at link time, libmicrohttpd.
 */
#ifndef CANARY_DEFAULTS_H
#define CANARY_DEFAULTS_H

#define API_DEFAULT_SOCKET "/run/canaryd/api.sock"
#define DP_DEFAULT_BPFFS   "/sys/fs/bpf/canaryd"
#define STATE_DEFAULT_DIR  "/var/lib/canaryd"

#endif
