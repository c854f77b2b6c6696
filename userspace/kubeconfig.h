/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The part of a kubeconfig file canaryd uses: the current context's
 * cluster (server, certificate-authority file) and user (token, or
 * tokenFile). Client certificates, exec plugins and inline *-data fields
 * are not read: the agent authenticates with a bearer token, as in a pod.
 */
#ifndef CANARY_KUBECONFIG_H
#define CANARY_KUBECONFIG_H

#include <stddef.h>

#include "kube.h"

/* Parse text (len bytes) named file into c. 0, or -EINVAL/-ENOMEM with err set. */
int kubeconfig_parse(const char *file, const char *text, size_t len, struct kube_client *c,
		     char *err, size_t errlen);
/* Read and parse the file at path. */
int kubeconfig_load(const char *path, struct kube_client *c, char *err, size_t errlen);

#endif /* CANARY_KUBECONFIG_H */
