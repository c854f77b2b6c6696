/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A kubeconfig's credential plugin (user.exec), run as client-go runs it:
 * the command with its args and env, KUBERNETES_EXEC_INFO describing the
 * call, stdin from /dev/null (never interactive), stderr passed through so
 * that its messages reach the user, and an ExecCredential read from
 * stdout. Used by `kubectl canary`; the agent refuses exec (its sandbox
 * forbids running programs).
 */
#ifndef CANARY_KUBEEXEC_H
#define CANARY_KUBEEXEC_H

#include <stddef.h>

#include "kubeconfig.h"

/* How long a plugin may take (a browser login may be slow) and print. */
#define KUBE_EXEC_TIMEOUT_MS 60000
#define KUBE_EXEC_MAX_OUTPUT ((size_t)256 * 1024)

/*
 * Run k->exec and put the credential it prints into k: status.token as the
 * bearer token, status.clientCertificateData and clientKeyData as the
 * client certificate. 0, or -1 with "user.exec: what" in err.
 */
int kube_exec_credential(struct kube_conn *k, char *err, size_t errlen);

/*
 * The ExecCredential text a plugin printed, checked against the apiVersion
 * asked for, into k. 0, or -1 with err. (Pure: unit-tested on its own.)
 */
int kube_exec_parse(const char *text, size_t len, struct kube_conn *k, char *err, size_t errlen);

#endif /* CANARY_KUBEEXEC_H */
