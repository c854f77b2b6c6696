/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where the agent finds the Kubernetes API: a kubeconfig file (--kubeconfig,
 * outside a cluster) or the pod's service account (in-cluster). Of a
 * kubeconfig the current context's server, CA (certificate-authority, a
 * file, or certificate-authority-data), credentials (token or tokenFile, a
 * client certificate and key as files or *-data, or an exec credential
 * plugin, which kubeexec.c runs) and namespace are read. auth-provider
 * plugins, basic auth and insecure-skip-tls-verify are refused with a
 * message naming the field, never silently ignored.
 */
#ifndef CANARY_KUBECONFIG_H
#define CANARY_KUBECONFIG_H

#include <limits.h>
#include <stddef.h>

#include "config.h"
#include "kube.h"

/* A client-go credential plugin (user.exec), as the kubeconfig gives it. */
#define KUBE_EXEC_MAX_ARGS 16
#define KUBE_EXEC_MAX_ENV  16
#define KUBE_EXEC_ARG_LEN  512
struct kube_exec {
	char api_version[64];	/* client.authentication.k8s.io/v1, v1beta1 */
	char command[PATH_MAX]; /* "": none; with a '/', relative to the kubeconfig */
	char args[KUBE_EXEC_MAX_ARGS][KUBE_EXEC_ARG_LEN];
	size_t n_args;
	char env[KUBE_EXEC_MAX_ENV][KUBE_EXEC_ARG_LEN]; /* NAME=value */
	size_t n_env;
};

struct kube_conn {
	char server[KUBE_URL_LEN];
	char ca_file[PATH_MAX];	       /* "": the system's CAs */
	char token_file[PATH_MAX];     /* read again on every change (rotation) */
	char token[KUBE_TOKEN_LEN];    /* inline token of a kubeconfig (token_file empty) */
	char ns[CONFIG_KUBE_NAME_LEN]; /* the context's or the pod's namespace ("": none) */
	struct kube_tls tls;	       /* *-data fields and a client certificate */
	struct kube_exec exec;	       /* a credential plugin to run (command "": none) */
};

/* Parse a kubeconfig. 0, or -1 with "path: field: what" in err. */
int kubeconfig_load(const char *path, struct kube_conn *out, char *err, size_t errlen);
/* The service account of the pod (sa_dir) and KUBERNETES_SERVICE_HOST/PORT. 0 or -1, err. */
int kube_conn_in_cluster(struct kube_conn *out, const char *sa_dir, char *err, size_t errlen);
/* A client for one thread. 0, -EINVAL, -ENOMEM. */
int kube_conn_client(const struct kube_conn *k, struct kube_client *c);

#endif /* CANARY_KUBECONFIG_H */
