/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The command line of `kubectl canary` (canaryctl run as kubectl-canary):
 * the verbs and flags of `kubectl argo rollouts`. Pure, for
 * tests/unit/test_kubeplugin.c.
 */
#ifndef CANARYCTL_PLUGIN_ARGS_H
#define CANARYCTL_PLUGIN_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "rollout.h"

enum plugin_verb {
	PLUGIN_GET,
	PLUGIN_STATUS,
	PLUGIN_PROMOTE,
	PLUGIN_ABORT,
	PLUGIN_RETRY,
	PLUGIN_PAUSE,
	PLUGIN_RESUME,
	PLUGIN_SET_WEIGHT,
};

struct plugin_args {
	enum plugin_verb verb;
	const char *kubeconfig; /* --kubeconfig; NULL: $KUBECONFIG, else ~/.kube/config */
	const char *ns;		/* -n/--namespace; NULL: the context's, else "default" */
	const char *name;	/* NULL: every Rollout (get only) */
	bool json;		/* -o json */
	bool watch;		/* status --watch */
	bool full;		/* promote --full */
	long long timeout_ms;	/* status --timeout; 0: none */
	__u16 weight_bp;	/* set-weight */
	bool help, version;
};

/*
 * argv as the plugin got it (argv[0] its own name). 0, or -1 with what is
 * wrong in err (a usage error: exit 2). getopt permutes argv.
 */
int plugin_parse_args(int argc, char **argv, struct plugin_args *a, char *err, size_t errlen);

/* The rollout verb a plugin verb writes (promote --full: VERB_PROMOTE_FULL). */
enum rollout_verb plugin_rollout_verb(const struct plugin_args *a);

/* The name of a verb as typed. */
const char *plugin_verb_name(enum plugin_verb v);

#endif /* CANARYCTL_PLUGIN_ARGS_H */
