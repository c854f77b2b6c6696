/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * `kubectl canary`: canaryctl run as kubectl-canary speaks to the API
 * server with the user's kubeconfig instead of an agent's socket.
 */
#ifndef CANARYCTL_PLUGIN_H
#define CANARYCTL_PLUGIN_H

#include <stdbool.h>

/* The name that makes canaryctl the kubectl plugin (argv[0]'s basename). */
#define PLUGIN_PROG "kubectl-canary"

bool plugin_invoked(const char *argv0);
int plugin_main(int argc, char **argv);

#endif /* CANARYCTL_PLUGIN_H */
